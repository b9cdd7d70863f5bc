/* inotify on a directory: events of changes made by the program, by a child process while the
 * program blocks in read, and (mode "wait") by someone outside; errors; poll, epoll and FIONREAD;
 * rm_watch and IN_IGNORED; a watch on /. Prints no watch numbers or cookies (they differ between
 * hosts), only what Linux must give: the output is the same natively and in the sandbox.
 *   inotify DIR          the checks
 *   inotify wait DIR     print "watching", then the first event's mask and name (the test's host side
 *                        makes a file)
 *   inotify limits       how many instances the program gets before an error, and the error */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(void) {
  switch (errno) {
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EBADF: return "EBADF";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case EACCES: return "EACCES";
    default: return strerror(errno);
  }
}

static void names(unsigned mask, char *out) {
  static const struct { unsigned bit; const char *name; } bits[] = {
    { IN_ACCESS, "ACCESS" }, { IN_MODIFY, "MODIFY" }, { IN_ATTRIB, "ATTRIB" }, { IN_CLOSE_WRITE, "CLOSE_WRITE" },
    { IN_CLOSE_NOWRITE, "CLOSE_NOWRITE" }, { IN_OPEN, "OPEN" }, { IN_MOVED_FROM, "MOVED_FROM" },
    { IN_MOVED_TO, "MOVED_TO" }, { IN_CREATE, "CREATE" }, { IN_DELETE, "DELETE" }, { IN_DELETE_SELF, "DELETE_SELF" },
    { IN_IGNORED, "IGNORED" }, { IN_ISDIR, "ISDIR" }, { IN_Q_OVERFLOW, "Q_OVERFLOW" },
  };
  out[0] = 0;
  for (unsigned i = 0; i < sizeof bits / sizeof bits[0]; i++) {
    if (!(mask & bits[i].bit)) continue;
    if (out[0]) strcat(out, "|");
    strcat(out, bits[i].name);
  }
}

/* Read what is queued and print each event; a MOVED_TO whose cookie matches the last MOVED_FROM says so. */
static void drain(int fd, const char *what) {
  char buf[4096] __attribute__((aligned(8)));
  unsigned last_cookie = 0;
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0) { printf("%s: read %s\n", what, err()); return; }
  for (char *p = buf; p < buf + n;) {
    struct inotify_event *e = (struct inotify_event *)p;
    char m[256];
    names(e->mask, m);
    printf("%s: %s %s%s\n", what, m, e->len ? e->name : "-",
           (e->mask & IN_MOVED_TO) && e->cookie && e->cookie == last_cookie ? " (same cookie)" : "");
    if (e->mask & IN_MOVED_FROM) last_cookie = e->cookie;
    p += sizeof *e + e->len;
  }
}

static int limits(void) {
  int n = 0;
  for (;;) {
    if (inotify_init1(IN_CLOEXEC) < 0) { printf("instances: %d, then %s\n", n, err()); return 0; }
    n++;
    if (n > 100000) { printf("no limit\n"); return 1; }
  }
}

static int wait_for_host(const char *dir) {
  int fd = inotify_init1(IN_CLOEXEC);
  if (fd < 0 || inotify_add_watch(fd, dir, IN_CREATE) < 0) { printf("watch: %s\n", err()); return 1; }
  printf("watching\n");
  fflush(stdout);
  drain(fd, "host change");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "limits") == 0) return limits();
  if (argc == 3 && strcmp(argv[1], "wait") == 0) return wait_for_host(argv[2]);
  if (argc != 2) { fprintf(stderr, "usage: inotify DIR | wait DIR | limits\n"); return 2; }
  const char *dir = argv[1];
  char a[4096], b[4096], sub[4096];
  snprintf(a, sizeof a, "%s/a", dir);
  snprintf(b, sizeof b, "%s/b", dir);
  snprintf(sub, sizeof sub, "%s/sub", dir);

  printf("init1 bad flags: %s\n", inotify_init1(1) < 0 ? err() : "ok");
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) { printf("init1: %s\n", err()); return 1; }
  char one;
  printf("empty read: %s\n", read(fd, &one, 1) < 0 ? err() : "data");
  printf("no such path: %s\n", inotify_add_watch(fd, "/no/such/path", IN_CREATE) < 0 ? err() : "ok");
  printf("mask 0: %s\n", inotify_add_watch(fd, dir, 0) < 0 ? err() : "ok");
  printf("not an inotify fd: %s\n", inotify_add_watch(1, dir, IN_CREATE) < 0 ? err() : "ok");
  printf("write: %s\n", write(fd, "x", 1) < 0 ? err() : "ok");

  int wd = inotify_add_watch(fd, dir, IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE);
  printf("watch dir: %s\n", wd < 0 ? err() : "ok");
  int again = inotify_add_watch(fd, dir, IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE);
  printf("watch again: same wd %s\n", again == wd ? "yes" : "no");

  int f = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (write(f, "hello", 5) != 5) printf("write a failed\n");
  close(f);
  printf("only-dir on a file: %s\n", inotify_add_watch(fd, a, IN_MODIFY | IN_ONLYDIR) < 0 ? err() : "ok");
  int avail = 0;
  ioctl(fd, FIONREAD, &avail);
  printf("FIONREAD > 0: %s\n", avail > 0 ? "yes" : "no");
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  int np = poll(&pfd, 1, 0);
  printf("poll: %d revents 0x%x\n", np, pfd.revents);
  printf("small buffer: %s\n", read(fd, &one, 1) < 0 ? err() : "data");
  drain(fd, "create");

  rename(a, b);
  mkdir(sub, 0755);
  rmdir(sub);
  unlink(b);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 }, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  int ne = epoll_wait(ep, &got, 1, 1000);
  printf("epoll: %d data %llu\n", ne, ne == 1 ? (unsigned long long)got.data.u64 : 0ULL);
  drain(fd, "rename, mkdir, rmdir, unlink");

  /* A blocking read that a child process ends. */
  int bfd = inotify_init1(IN_CLOEXEC);
  inotify_add_watch(bfd, dir, IN_CREATE);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(100000);
    close(open(a, O_WRONLY | O_CREAT, 0644));
    _exit(0);
  }
  drain(bfd, "blocking, child creates");
  waitpid(pid, NULL, 0);
  unlink(a);
  close(bfd);

  printf("rm_watch: %s\n", inotify_rm_watch(fd, wd) < 0 ? err() : "ok");
  drain(fd, "after rm_watch");
  printf("rm_watch again: %s\n", inotify_rm_watch(fd, wd) < 0 ? err() : "ok");

  int root = inotify_add_watch(fd, "/", IN_CREATE | IN_DELETE);
  printf("watch /: %s\n", root < 0 ? err() : "ok");
  printf("rm_watch /: %s\n", inotify_rm_watch(fd, root) < 0 ? err() : "ok");
  drain(fd, "after rm_watch /");
  printf("empty again: %s\n", read(fd, &one, 1) < 0 ? err() : "data");
  close(fd);
  return 0;
}
