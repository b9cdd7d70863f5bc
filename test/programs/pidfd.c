/* Process file descriptors: pidfd_open, pidfd_send_signal (with and without a siginfo),
 * pidfd_getfd, waitid(P_PIDFD), clone and clone3 with CLONE_PIDFD, and a pidfd's readiness in
 * poll and epoll (POLLIN at the exit), with Linux's errors. Prints only
 * what does not depend on pid numbers, so that the output compares with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

struct clone_args_v0 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int pidfd_open(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
static int send_sig(int fd, int sig, siginfo_t *info, unsigned flags) {
  return (int)syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static int getfd(int fd, int target, unsigned flags) { return (int)syscall(SYS_pidfd_getfd, fd, target, flags); }

static const char *errname(int e) {
  switch (e) {
  case EINVAL: return "EINVAL"; case ESRCH: return "ESRCH"; case EBADF: return "EBADF";
  case EPERM: return "EPERM"; case EAGAIN: return "EAGAIN"; case ECHILD: return "ECHILD";
  case ENOSYS: return "ENOSYS"; case EFAULT: return "EFAULT";
  default: return "other";
  }
}

static void result(const char *what, long r) {
  if (r < 0) printf("%s: -1 %s\n", what, errname(errno));
  else printf("%s: ok\n", what);
}

static int revents(int fd, int timeout) {
  struct pollfd p = { .fd = fd, .events = POLLIN };
  int n = poll(&p, 1, timeout);
  return n <= 0 ? n : p.revents;
}

static void waited(const char *what, int fd, pid_t child) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = waitid(P_PIDFD, fd, &si, WEXITED);
  if (r < 0) { result(what, r); return; }
  printf("%s: pid %s, code %d, status %d\n", what, si.si_pid == child ? "right" : "wrong", si.si_code, si.si_status);
}

static void *idle_thread(void *arg) {
  int *tid = arg;
  *tid = (int)syscall(SYS_gettid);
  pause();
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* SIGUSR1 is taken with sigwaitinfo and sigtimedwait below: blocked in every thread. */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);

  /* pidfd_open: its flags, errors, close-on-exec, the name of its file. */
  int r;
  int self = pidfd_open(getpid(), 0);
  result("pidfd_open(self)", self);
  printf("cloexec: %d\n", (fcntl(self, F_GETFD) & FD_CLOEXEC) != 0);
  char link[64], name[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", self);
  ssize_t n = readlink(link, name, sizeof name - 1);
  name[n > 0 ? n : 0] = 0;
  printf("link: %s\n", name);
  printf("self ready: %d\n", revents(self, 0));
  result("pidfd_open(bad flags)", pidfd_open(getpid(), 1));
  result("pidfd_open(-1)", pidfd_open(-1, 0));
  result("pidfd_open(no such pid)", pidfd_open(4000000, 0));
  pthread_t th;
  volatile int tid = 0;
  pthread_create(&th, NULL, idle_thread, (void *)&tid);
  while (!tid) usleep(1000);
  /* EINVAL until Linux 6.9, ENOENT since. */
  r = pidfd_open(tid, 0);
  printf("pidfd_open(a thread): %s\n", r < 0 && (errno == EINVAL || errno == ENOENT) ? "refused" : "taken");
  char buf[8];
  result("read(pidfd)", read(self, buf, sizeof buf));
  result("waitid(P_PIDFD, self)", waitid(P_PIDFD, self, &(siginfo_t){0}, WEXITED));
  result("waitid(P_PIDFD, not a pidfd)", waitid(P_PIDFD, 0, &(siginfo_t){0}, WEXITED));

  /* A child that waits for a pipe to close: not ready, then POLLIN, waited, then POLLHUP. */
  int go[2];
  if (pipe(go)) return 1;
  pid_t c = fork();
  if (c == 0) { close(go[1]); read(go[0], buf, 1); _exit(7); }
  close(go[0]);
  int fd = pidfd_open(c, 0);
  printf("alive ready: %d\n", revents(fd, 0));
  int nb = pidfd_open(c, PIDFD_NONBLOCK);
  result("waitid(nonblocking pidfd, alive)", waitid(P_PIDFD, nb, &(siginfo_t){0}, WEXITED));
  siginfo_t none;
  memset(&none, 0, sizeof none);
  r = waitid(P_PIDFD, fd, &none, WEXITED | WNOHANG);
  printf("WNOHANG: %d pid %d\n", r, none.si_pid);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 42 }, got;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  printf("epoll before: %d\n", epoll_wait(ep, &got, 1, 0));
  close(go[1]);
  printf("exited ready: %d\n", revents(fd, -1));
  int ready = epoll_wait(ep, &got, 1, -1);
  printf("epoll after: %d %u %x\n", ready, got.data.u32, got.events);
  result("pidfd_send_signal(zombie, 0)", send_sig(fd, 0, NULL, 0));
  waited("waitid(P_PIDFD)", fd, c);
  /* POLLIN; Linux 6.9 and later add POLLHUP. */
  printf("reaped ready: %d\n", (revents(fd, 0) & POLLIN) != 0);
  result("pidfd_send_signal(reaped)", send_sig(fd, SIGTERM, NULL, 0));
  result("waitid(P_PIDFD, reaped)", waitid(P_PIDFD, fd, &(siginfo_t){0}, WEXITED));
  close(fd);
  close(nb);

  /* pidfd_send_signal: kill's siginfo; its errors; a siginfo of the caller's own. */
  c = fork();
  if (c == 0) { pause(); _exit(0); }
  fd = pidfd_open(c, 0);
  /* Linux 6.9 gave meaning to flags 1, 2 and 4; 0x100 has none. */
  result("pidfd_send_signal(flags 0x100)", send_sig(fd, SIGTERM, NULL, 0x100));
  result("pidfd_send_signal(not a pidfd)", send_sig(0, SIGTERM, NULL, 0));
  result("pidfd_send_signal(signal 99)", send_sig(fd, 99, NULL, 0));
  result("pidfd_send_signal(SIGTERM)", send_sig(fd, SIGTERM, NULL, 0));
  waited("killed", fd, c);
  close(fd);

  /* An open /proc/PID directory names its process for pidfd_send_signal too (psmisc's killall
   * signals through them); a /proc/PID/task/TID directory does not, nor do waitid and getfd
   * take one. */
  c = fork();
  if (c == 0) { pause(); _exit(0); }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d", c);
  int dir = open(path, O_RDONLY | O_DIRECTORY);
  snprintf(path, sizeof path, "/proc/%d/task/%d", c, c);
  int tdir = open(path, O_RDONLY | O_DIRECTORY);
  printf("opened /proc dirs: %d %d\n", dir >= 0, tdir >= 0);
  result("pidfd_send_signal(/proc/PID/task/TID)", send_sig(tdir, SIGTERM, NULL, 0));
  result("waitid(P_PIDFD, /proc/PID)", waitid(P_PIDFD, dir, &(siginfo_t){0}, WEXITED));
  result("pidfd_getfd(/proc/PID)", getfd(dir, 0, 0));
  result("pidfd_send_signal(/proc/PID, SIGTERM)", send_sig(dir, SIGTERM, NULL, 0));
  int st = 0;
  waitpid(c, &st, 0);
  printf("killed through /proc/PID: %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
  result("pidfd_send_signal(/proc/PID, reaped)", send_sig(dir, 0, NULL, 0));
  close(dir);
  close(tdir);

  int back[2];
  if (pipe(back)) return 1;
  c = fork();
  if (c == 0) {
    siginfo_t si;
    if (sigwaitinfo(&usr1, &si) < 0) _exit(1);
    char line[64];
    int len = snprintf(line, sizeof line, "code %d value %d pid %s\n", si.si_code, si.si_value.sival_int,
                       si.si_pid == getppid() ? "parent" : "other");
    write(back[1], line, len);
    _exit(0);
  }
  fd = pidfd_open(c, 0);
  siginfo_t info;
  memset(&info, 0, sizeof info);
  info.si_signo = SIGUSR2;
  info.si_code = SI_QUEUE;
  result("pidfd_send_signal(info of another signal)", send_sig(fd, SIGUSR1, &info, 0));
  info.si_signo = SIGUSR1;
  info.si_code = SI_USER;
  result("pidfd_send_signal(info posing as kill)", send_sig(fd, SIGUSR1, &info, 0));
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_int = 1234;
  result("pidfd_send_signal(SI_QUEUE info)", send_sig(fd, SIGUSR1, &info, 0));
  n = read(back[0], buf, 0);
  char line[64] = {0};
  n = read(back[0], line, sizeof line - 1);
  printf("child got: %s", n > 0 ? line : "nothing\n");
  waited("queued", fd, c);
  close(fd);
  /* To itself a process may pose as kill. */
  info.si_code = SI_USER;
  info.si_value.sival_int = 5;
  result("pidfd_send_signal(self, SI_USER info)", send_sig(self, SIGUSR1, &info, 0));
  siginfo_t mine;
  struct timespec zero = { 0, 0 };
  int s = sigtimedwait(&usr1, &mine, &zero);
  printf("self got: %d code %d\n", s, mine.si_code);

  /* pidfd_getfd: a descriptor of the child's, read here. */
  int nums[2];
  if (pipe(nums)) return 1;
  c = fork();
  if (c == 0) {
    int p[2];
    if (pipe(p)) _exit(1);
    write(p[1], "hello", 5);
    write(nums[1], &p[0], sizeof p[0]);
    pause();
    _exit(0);
  }
  int theirs = -1;
  read(nums[0], &theirs, sizeof theirs);
  fd = pidfd_open(c, 0);
  result("pidfd_getfd(flags 0x100)", getfd(fd, theirs, 0x100));
  result("pidfd_getfd(no such fd)", getfd(fd, 900, 0));
  result("pidfd_getfd(not a pidfd)", getfd(0, theirs, 0));
  int mine_fd = getfd(fd, theirs, 0);
  result("pidfd_getfd", mine_fd);
  printf("getfd cloexec: %d\n", (fcntl(mine_fd, F_GETFD) & FD_CLOEXEC) != 0);
  memset(buf, 0, sizeof buf);
  n = read(mine_fd, buf, 5);
  printf("read through it: %zd %.5s\n", n, buf);
  send_sig(fd, SIGKILL, NULL, 0);
  waited("getfd child", fd, c);
  close(fd);

  /* clone and clone3 with CLONE_PIDFD. */
  int cfd = -1;
  long k = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &cfd, 0, 0);
  if (k == 0) _exit(3);
  printf("clone: pidfd %s\n", cfd > 2 ? "set" : "unset");
  printf("clone pidfd cloexec: %d\n", (fcntl(cfd, F_GETFD) & FD_CLOEXEC) != 0);
  printf("clone exited: %d\n", revents(cfd, -1));
  waited("clone child", cfd, (pid_t)k);
  close(cfd);
  result("clone(CLONE_PIDFD|CLONE_PARENT_SETTID)", syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &cfd, 0, 0));
  struct clone_args_v0 ca;
  memset(&ca, 0, sizeof ca);
  cfd = -1;
  ca.flags = CLONE_PIDFD;
  ca.pidfd = (uintptr_t)&cfd;
  ca.exit_signal = SIGCHLD;
  k = syscall(SYS_clone3, &ca, sizeof ca);
  if (k == 0) _exit(4);
  printf("clone3: %s, pidfd %s\n", k > 0 ? "ok" : errname(errno), cfd > 2 ? "set" : "unset");
  if (k > 0) waited("clone3 child", cfd, (pid_t)k);
  return 0;
}
