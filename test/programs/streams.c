/* What the third survey of everyday programs found different from Linux, each checked for the
 * results Linux gives:
 * - a blocking write to a pipe or stream socket returns only when all of it is in, however much
 *   larger than the pipe it is (unzip took a short count for the end of its write and lost the
 *   rest of its output), and a signal that interrupts it part-way gives the count so far;
 * - execve takes 128 KiB and more of arguments (xargs passes that much), and E2BIG past a quarter
 *   of RLIMIT_STACK, with the caller still running;
 * - mremap with MREMAP_DONTUNMAP;
 * - a non-blocking TCP connect over loopback is EINPROGRESS, then writable with SO_ERROR 0;
 * - linkat of /proc/self/fd/N (an O_TMPFILE made visible), and openat2 with its RESOLVE_ flags,
 *   in argv[1], a writable directory.
 * argv[1] "args": print the argument count (the exec'd copy). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define BIG (4 << 20)

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + (i >> 12)); }

/* A child reads fd in 4 KiB pieces, slowly, and checks every byte; the parent writes BIG bytes
 * in one call through write, writev (two pieces) or send. */
static void whole(const char *what, int rfd, int wfd, int how) {
  unsigned char *buf = malloc(BIG);
  for (size_t i = 0; i < BIG; i++) buf[i] = pattern(i);
  pid_t pid = fork();
  if (pid == 0) {
    close(wfd);
    static unsigned char piece[4096];
    size_t got = 0;
    int bad = 0;
    for (;;) {
      for (volatile int s = 0; s < 20000; s++) {}
      ssize_t n = read(rfd, piece, sizeof piece);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; i++) bad += piece[i] != pattern(got + i);
      got += n;
    }
    printf("%s: the reader got %zu bytes, %s\n", what, got, bad ? "some wrong" : "all in order");
    fflush(stdout);
    _exit(0);
  }
  close(rfd);
  ssize_t n;
  if (how == 0) {
    n = write(wfd, buf, BIG);
  } else if (how == 1) {
    struct iovec v[2] = {{buf, BIG / 2}, {buf + BIG / 2, BIG / 2}};
    n = writev(wfd, v, 2);
  } else {
    n = send(wfd, buf, BIG, 0);
  }
  printf("%s: one call wrote %zd of %d\n", what, n, BIG);
  fflush(stdout);
  close(wfd);
  waitpid(pid, NULL, 0);
  free(buf);
}

static void on_alarm(int s) { (void)s; }

/* Nobody reads (a child that holds the read end sleeps, or, alone, the process itself holds
 * it): the write fills the pipe and waits; SIGALRM (no SA_RESTART) ends it with the count so
 * far, more than nothing and less than all. Alone, a read of the empty pipe ends with EINTR. */
static void interrupted(int alone) {
  int p[2];
  pipe(p);
  pid_t sleeper = alone ? -1 : fork();
  if (sleeper == 0) {
    pause();
    _exit(0);
  }
  printf("%s:\n", alone ? "alone" : "beside a sleeping child");
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  size_t len = 8 << 20;
  char *buf = calloc(1, len);
  alarm(1);
  ssize_t n = write(p[1], buf, len);
  printf("interrupted write: %s\n", n > 0 && (size_t)n < len ? "part of it" : n < 0 ? strerror(errno) : "all of it");
  alarm(1);
  n = write(p[1], buf, len);
  printf("then, the pipe full: %s\n", n < 0 && errno == EINTR ? "EINTR" : "something else");
  if (alone) {
    char c;
    int left;
    while (ioctl(p[0], FIONREAD, &left) == 0 && left > 0) read(p[0], buf, (size_t)left);
    alarm(1);
    n = read(p[0], &c, 1);
    printf("a read of the empty pipe: %s\n", n < 0 && errno == EINTR ? "EINTR" : "something else");
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    alarm(1);
    int r = poll(&pf, 1, -1);
    printf("a poll of it: %s\n", r < 0 && errno == EINTR ? "EINTR" : "something else");
  } else {
    kill(sleeper, SIGKILL);
    waitpid(sleeper, NULL, 0);
  }
  free(buf);
  close(p[0]);
  close(p[1]);
}

/* A pipe in packet mode (pipe2 O_DIRECT): a read takes one packet at most, dropping what it
 * does not take; a write over PIPE_BUF is several packets; F_SETFL turns the mode off. */
static void packets(void) {
  int p[2];
  if (pipe2(p, O_DIRECT) != 0) { printf("pipe2 O_DIRECT: %s\n", strerror(errno)); return; }
  printf("packet pipe: O_DIRECT in F_GETFL: read end %d, write end %d\n", (fcntl(p[0], F_GETFL) & O_DIRECT) != 0, (fcntl(p[1], F_GETFL) & O_DIRECT) != 0);
  char buf[8192];
  write(p[1], "ab", 2);
  write(p[1], "cd", 2);
  ssize_t a = read(p[0], buf, sizeof buf);
  ssize_t b = read(p[0], buf + 10, 1);
  printf("  reads %zd \"%.2s\", %zd \"%c\"\n", a, buf, b, buf[10]);
  memset(buf, 'x', sizeof buf);
  write(p[1], buf, 5000);
  a = read(p[0], buf, sizeof buf);
  b = read(p[0], buf, sizeof buf);
  printf("  5000 bytes read as %zd and %zd\n", a, b);
  fcntl(p[1], F_SETFL, 0);
  write(p[1], "ef", 2);
  write(p[1], "gh", 2);
  a = read(p[0], buf, sizeof buf);
  printf("  without O_DIRECT: %zd \"%.4s\"\n", a, buf);
  close(p[0]);
  close(p[1]);
}

/* prctl's timer slack (50 us at first, inherited by a child, 0 for the default again), and
 * /proc/filesystems, where programs look for proc. */
static void slack(void) {
  printf("timer slack: %d\n", prctl(PR_GET_TIMERSLACK));
  printf("  set 1000: %d, then %d\n", prctl(PR_SET_TIMERSLACK, 1000UL), prctl(PR_GET_TIMERSLACK));
  pid_t c = fork();
  if (c == 0) _exit(prctl(PR_GET_TIMERSLACK) == 1000 ? 0 : 1);
  int st;
  waitpid(c, &st, 0);
  printf("  a child has it: %d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("  set 0: %d, then %d\n", prctl(PR_SET_TIMERSLACK, 0UL), prctl(PR_GET_TIMERSLACK));
  char buf[4096] = {0};
  int fd = open("/proc/filesystems", O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  printf("/proc/filesystems lists proc: %d\n", n > 0 && strstr(buf, "\tproc\n") != NULL);
  if (fd >= 0) close(fd);
}

static void bigargs(const char *self) {
  /* 20,000 arguments of 6 bytes: 260 KiB with their pointers. */
  int count = 20000;
  char **argv = calloc(count + 3, sizeof *argv);
  argv[0] = (char *)self;
  argv[1] = "args";
  for (int i = 0; i < count; i++) argv[2 + i] = "12345";
  pid_t pid = fork();
  if (pid == 0) {
    execv(self, argv);
    printf("exec of 20000 arguments: %s\n", strerror(errno));
    fflush(stdout);
    _exit(1);
  }
  int st;
  waitpid(pid, &st, 0);
  printf("its status: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  /* 3 MiB of arguments: more than a quarter of the 8 MiB stack limit. */
  static char huge[1 << 20];
  memset(huge, 'x', sizeof huge - 1);
  char *hv[] = {(char *)self, "args", huge, huge, huge, NULL};
  execv(self, hv);
  printf("exec of 3 MiB of arguments: %s, and the caller runs on\n", errno == E2BIG ? "E2BIG" : strerror(errno));
  /* One string over 128 KiB. */
  static char long1[200 << 10];
  memset(long1, 'y', sizeof long1 - 1);
  char *lv[] = {(char *)self, "args", long1, NULL};
  execv(self, lv);
  printf("exec of one 200 KiB argument: %s\n", errno == E2BIG ? "E2BIG" : strerror(errno));
  free(argv);
}

static void dontunmap(void) {
  size_t len = 4 * 4096;
  char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(a, 'q', len);
  char *b = mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
  if (b == MAP_FAILED) {
    printf("mremap DONTUNMAP: %s\n", strerror(errno));
    return;
  }
  int moved = b != a && b[0] == 'q' && b[len - 1] == 'q';
  int empty = a[0] == 0 && a[len - 1] == 0;
  a[5] = 1; /* still mapped, writable */
  printf("mremap DONTUNMAP: moved %d, old range mapped and empty %d\n", moved, empty);
  errno = 0;
  printf("  another length: %s\n", mremap(b, len, 2 * len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL) == MAP_FAILED && errno == EINVAL ? "EINVAL" : "moved");
  printf("  a hint not page-aligned: %s\n", mremap(b, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, (void *)123) == MAP_FAILED && errno == EINVAL ? "EINVAL" : "moved");
  printf("  without MAYMOVE: %s\n", mremap(b, len, len, MREMAP_DONTUNMAP, NULL) == MAP_FAILED && errno == EINVAL ? "EINVAL" : "moved");
}

static void connecting(void) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sin;
  bind(l, (struct sockaddr *)&sin, sizeof sin);
  listen(l, 4);
  getsockname(l, (struct sockaddr *)&sin, &sl);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(c, (struct sockaddr *)&sin, sizeof sin);
  printf("non-blocking connect: %s\n", r == 0 ? "0" : errno == EINPROGRESS ? "EINPROGRESS" : strerror(errno));
  struct pollfd pf = {c, POLLOUT, 0};
  int ready = poll(&pf, 1, 5000);
  printf("  poll: %d, revents %#x\n", ready, pf.revents);
  int err = -1;
  socklen_t el = sizeof err;
  getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el);
  printf("  SO_ERROR %d\n", err);
  r = connect(c, (struct sockaddr *)&sin, sizeof sin);
  printf("  connect again: %s\n", r == 0 ? "0" : errno == EISCONN ? "EISCONN" : strerror(errno));
  int a = accept(l, NULL, NULL);
  char m[8] = {0};
  send(c, "hi", 2, 0);
  recv(a, m, sizeof m, 0);
  printf("  then: %s\n", m);
  close(a);
  close(c);
  close(l);
}

/* In the writable directory: an O_TMPFILE made visible through /proc/self/fd (it was EXDEV). */
static void tmpfiles(void) {
  char path[64];
  struct stat st;
  int t = open(".", O_TMPFILE | O_RDWR, 0600);
  write(t, "tmp!", 4);
  snprintf(path, sizeof path, "/proc/self/fd/%d", t);
  printf("link an O_TMPFILE: %s\n", linkat(AT_FDCWD, path, AT_FDCWD, "made", AT_SYMLINK_FOLLOW) ? strerror(errno) : "ok");
  int r = stat("made", &st);
  printf("  the new name: %s, %ld bytes\n", r ? strerror(errno) : "ok", r ? -1L : (long)st.st_size);
  printf("  again: %s\n", linkat(AT_FDCWD, path, AT_FDCWD, "made", AT_SYMLINK_FOLLOW) ? strerror(errno) : "ok");
  int x = open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600);
  snprintf(path, sizeof path, "/proc/self/fd/%d", x);
  printf("  one opened O_EXCL: %s\n", linkat(AT_FDCWD, path, AT_FDCWD, "made2", AT_SYMLINK_FOLLOW) ? strerror(errno) : "ok");
  int f = open("reg", O_CREAT | O_RDWR, 0600);
  snprintf(path, sizeof path, "/proc/self/fd/%d", f);
  printf("link an open file: %s\n", linkat(AT_FDCWD, path, AT_FDCWD, "reg2", AT_SYMLINK_FOLLOW) ? strerror(errno) : "ok");
  r = stat("reg", &st);
  printf("  its links: %ld\n", r ? -1L : (long)st.st_nlink);
  int d = open(".", O_RDONLY | O_DIRECTORY);
  snprintf(path, sizeof path, "/proc/self/fd/%d", d);
  printf("link a directory: %s\n", linkat(AT_FDCWD, path, AT_FDCWD, "dd", AT_SYMLINK_FOLLOW) ? strerror(errno) : "ok");
  close(t), close(x), close(f), close(d);
}

/* openat2 in the writable directory (it was ENOSYS): struct open_how's checks and RESOLVE_ flags. */
static void openat2s(void) {
  struct { uint64_t flags, mode, resolve, extra; } how = {0};
  int d = open(".", O_RDONLY | O_DIRECTORY);
  mkdir("sub", 0700);
  symlink("../made", "sub/up");
  symlink("made", "ln");
  int sub = open("sub", O_RDONLY | O_DIRECTORY);
  char magic[64];
  snprintf(magic, sizeof magic, "/proc/self/fd/%d", open("made", O_RDONLY));
  struct { const char *what; int dirfd; const char *path; uint64_t flags, mode, resolve; size_t size, extra; } cases[] = {
    {"plain", d, "made", O_RDONLY, 0, 0, 24, 0},
    {"a 20-byte how", d, "made", O_RDONLY, 0, 0, 20, 0},
    {"a 32-byte how, zero tail", d, "made", O_RDONLY, 0, 0, 32, 0},
    {"a 32-byte how, a tail", d, "made", O_RDONLY, 0, 0, 32, 1},
    {"mode without O_CREAT", d, "made", O_RDONLY, 0600, 0, 24, 0},
    {"an unknown flag", d, "made", O_RDONLY | (1ULL << 40), 0, 0, 24, 0},
    {"an unknown resolve", d, "made", O_RDONLY, 0, 0x40, 24, 0},
    {"BENEATH and IN_ROOT", d, "made", O_RDONLY, 0, 0x18, 24, 0},
    {"BENEATH ../", sub, "../made", O_RDONLY, 0, 8, 24, 0},
    {"BENEATH absolute", d, "/proc/self/status", O_RDONLY, 0, 8, 24, 0},
    {"BENEATH x/../made", d, "sub/../made", O_RDONLY, 0, 8, 24, 0},
    {"BENEATH a symlink out", sub, "up", O_RDONLY, 0, 8, 24, 0},
    {"IN_ROOT /made", d, "/made", O_RDONLY, 0, 0x10, 24, 0},
    {"IN_ROOT ../../made", d, "../../made", O_RDONLY, 0, 0x10, 24, 0},
    {"NO_SYMLINKS a symlink", d, "ln", O_RDONLY, 0, 4, 24, 0},
    {"NO_SYMLINKS a file", d, "made", O_RDONLY, 0, 4, 24, 0},
    {"NO_MAGICLINKS /proc/self/fd/N", d, magic, O_RDONLY, 0, 2, 24, 0},
    {"/proc/self/fd/N", d, magic, O_RDONLY, 0, 0, 24, 0},
    {"NO_XDEV into /proc", d, "/proc/self/status", O_RDONLY, 0, 1, 24, 0},
    {"NO_XDEV a file", d, "made", O_RDONLY, 0, 1, 24, 0},
    {"CACHED with O_CREAT", d, "new", O_RDWR | O_CREAT, 0600, 0x20, 24, 0},
    {"O_CREAT with a mode", d, "new", O_RDWR | O_CREAT, 0640, 0, 24, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    how.flags = cases[i].flags, how.mode = cases[i].mode, how.resolve = cases[i].resolve, how.extra = cases[i].extra;
    long fd = syscall(437, cases[i].dirfd, cases[i].path, &how, cases[i].size);
    printf("openat2, %s: %s\n", cases[i].what, fd >= 0 ? "ok" : strerror(errno));
    if (fd >= 0) close(fd);
  }
  struct stat st;
  printf("  the new file's mode: %o\n", stat("new", &st) ? 0 : st.st_mode & 0777);
  close(d), close(sub);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "args") == 0) {
    printf("the new program has %d arguments\n", argc);
    return 0;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && chdir(argv[1]) == 0) {
    umask(022);
    tmpfiles();
    openat2s();
  }
  int p[2], s[2];
  pipe(p);
  whole("pipe, write", p[0], p[1], 0);
  pipe(p);
  whole("pipe, writev", p[0], p[1], 1);
  socketpair(AF_UNIX, SOCK_STREAM, 0, s);
  whole("socketpair, send", s[0], s[1], 2);
  socketpair(AF_UNIX, SOCK_STREAM, 0, s);
  whole("socketpair, write", s[0], s[1], 0);
  packets();
  slack();
  interrupted(0);
  interrupted(1);
  bigargs(argv[0]);
  dontunmap();
  connecting();
  return 0;
}
