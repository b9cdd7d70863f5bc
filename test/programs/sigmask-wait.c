/* Waits with a signal mask of their own: pselect, ppoll and epoll_pwait unblock SIGCHLD only while
 * they wait (GNU make's jobserver loop waits in pselect so). For each call:
 *   - a child that exits while the call waits ends it with EINTR, after the handler ran;
 *   - a SIGCHLD already pending (blocked) when the call starts ends it at once;
 *   - a call that times out returns 0;
 * and each time the mask afterwards is the one from before (SIGCHLD blocked again). A plain
 * select interrupted by a handler leaves its fd sets as they were. select, pselect6 and ppoll
 * write the time left back in place of their timeout (glibc's pselect and ppoll hide that from
 * their callers, so those two are called raw): after a child made the pipe readable, after a
 * timeout, and after a handler interrupted the wait; nanosleep and clock_nanosleep the time left
 * after a handler interrupted them. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static void on_chld(int sig) { (void)sig; hits++; }

static int fds[2], ep;

static int call(const char *which, const sigset_t *mask, int ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  if (!strcmp(which, "pselect")) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fds[0], &r);
    return pselect(fds[0] + 1, &r, NULL, NULL, ms < 0 ? NULL : &ts, mask);
  }
  if (!strcmp(which, "ppoll")) {
    struct pollfd p = { fds[0], POLLIN, 0 };
    return ppoll(&p, 1, ms < 0 ? NULL : &ts, mask);
  }
  struct epoll_event e;
  return epoll_pwait(ep, &e, 1, ms, mask);
}

static const char *blocked_after(void) {
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  return sigismember(&now, SIGCHLD) ? "blocked" : "UNBLOCKED";
}

static void spawn(int delay_ms) {
  pid_t pid = fork();
  if (pid == 0) {
    if (delay_ms) usleep(delay_ms * 1000);
    _exit(0);
  }
}

/* A child that writes a byte to the pipe after delay_ms, then exits. */
static void spawn_writer(int delay_ms) {
  if (fork() == 0) {
    usleep(delay_ms * 1000);
    if (write(fds[1], "x", 1) != 1) _exit(1);
    _exit(0);
  }
}

/* The byte spawn_writer's child wrote, and the child. */
static void take_writers_byte(void) {
  char c;
  if (read(fds[0], &c, 1) != 1) printf("read failed\n");
  while (waitpid(-1, NULL, 0) > 0) {}
}

/* The time left that a call wrote back: "none" (0), "some" (between 3 and 5 s of the 5 given) or the value. */
static const char *left(long sec, long frac, long unit) {
  static char buf[64];
  if (sec == 0 && frac == 0) return "none";
  if (sec >= 3 && sec < 5) return "some";
  snprintf(buf, sizeof buf, "%ld.%0*ld", sec, unit == 1000000 ? 6 : 9, frac);
  return buf;
}

static void time_left(void) {
  fd_set r;
  /* Made readable by another process while the call waits. */
  struct timeval tv = { 5, 0 };
  FD_ZERO(&r);
  FD_SET(fds[0], &r);
  spawn_writer(100);
  int n = select(fds[0] + 1, &r, NULL, NULL, &tv);
  printf("select, readable after a while: %d, left %s\n", n, left(tv.tv_sec, tv.tv_usec, 1000000));
  take_writers_byte();
  struct timespec ts = { 5, 0 };
  struct pollfd p = { fds[0], POLLIN, 0 };
  spawn_writer(100);
  n = syscall(SYS_ppoll, &p, 1, &ts, NULL, 8);
  printf("ppoll, readable after a while: %d, left %s\n", n, left(ts.tv_sec, ts.tv_nsec, 1000000000));
  take_writers_byte();
  ts = (struct timespec){ 5, 0 };
  FD_ZERO(&r);
  FD_SET(fds[0], &r);
  spawn_writer(100);
  n = syscall(SYS_pselect6, fds[0] + 1, &r, NULL, NULL, &ts, NULL);
  printf("pselect6, readable after a while: %d, left %s\n", n, left(ts.tv_sec, ts.tv_nsec, 1000000000));
  take_writers_byte();
  /* Times out while another process runs. */
  tv = (struct timeval){ 0, 80000 };
  FD_ZERO(&r);
  FD_SET(fds[0], &r);
  spawn(300);
  n = select(fds[0] + 1, &r, NULL, NULL, &tv);
  printf("select, timeout: %d, left %s\n", n, left(tv.tv_sec, tv.tv_usec, 1000000));
  ts = (struct timespec){ 0, 80000000 };
  n = syscall(SYS_ppoll, &p, 1, &ts, NULL, 8);
  printf("ppoll, timeout: %d, left %s\n", n, left(ts.tv_sec, ts.tv_nsec, 1000000000));
  while (waitpid(-1, NULL, 0) > 0) {}
  /* Interrupted by a handler (SIGCHLD from a child that exits). */
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  tv = (struct timeval){ 5, 0 };
  FD_ZERO(&r);
  FD_SET(fds[0], &r);
  spawn(100);
  sigprocmask(SIG_UNBLOCK, &chld, NULL);
  n = select(fds[0] + 1, &r, NULL, NULL, &tv);
  int err = errno;
  sigprocmask(SIG_BLOCK, &chld, NULL);
  printf("select, interrupted: %d %s, left %s\n", n, n < 0 ? strerror(err) : "-", left(tv.tv_sec, tv.tv_usec, 1000000));
  while (waitpid(-1, NULL, 0) > 0) {}
  /* nanosleep and clock_nanosleep write the time left when a handler interrupts them. */
  struct timespec req = { 5, 0 }, rem = { 0, 0 };
  spawn(100);
  sigprocmask(SIG_UNBLOCK, &chld, NULL);
  n = nanosleep(&req, &rem);
  err = errno;
  sigprocmask(SIG_BLOCK, &chld, NULL);
  printf("nanosleep, interrupted: %d %s, left %s\n", n, n < 0 ? strerror(err) : "-", left(rem.tv_sec, rem.tv_nsec, 1000000000));
  while (waitpid(-1, NULL, 0) > 0) {}
  rem = (struct timespec){ 0, 0 };
  spawn(100);
  sigprocmask(SIG_UNBLOCK, &chld, NULL);
  n = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  printf("clock_nanosleep, interrupted: %s, left %s\n", n ? strerror(n) : "-", left(rem.tv_sec, rem.tv_nsec, 1000000000));
  while (waitpid(-1, NULL, 0) > 0) {}
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_chld;
  sigaction(SIGCHLD, &sa, NULL);
  sigset_t chld, during;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &during);
  sigdelset(&during, SIGCHLD);
  if (pipe(fds)) return 1;
  ep = epoll_create1(0);
  struct epoll_event e = { .events = EPOLLIN, .data.fd = fds[0] };
  epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &e);
  const char *calls[] = { "pselect", "ppoll", "epoll_pwait" };
  for (int i = 0; i < 3; i++) {
    const char *c = calls[i];
    /* The child exits while the call waits. */
    hits = 0;
    spawn(100);
    int r = call(c, &during, -1);
    int err = errno;
    printf("%s, child exits meanwhile: %d %s, handler ran %d, SIGCHLD %s\n", c, r, r < 0 ? strerror(err) : "-", hits, blocked_after());
    while (waitpid(-1, NULL, 0) > 0) {}
    /* SIGCHLD pending before the call. */
    hits = 0;
    spawn(0);
    while (waitpid(-1, NULL, 0) > 0) {}
    r = call(c, &during, -1);
    err = errno;
    printf("%s, SIGCHLD pending: %d %s, handler ran %d, SIGCHLD %s\n", c, r, r < 0 ? strerror(err) : "-", hits, blocked_after());
    /* Nothing happens: a timeout. */
    hits = 0;
    r = call(c, &during, 50);
    printf("%s, timeout: %d, handler ran %d, SIGCHLD %s\n", c, r, hits, blocked_after());
  }
  /* select interrupted by a handler leaves its sets as they were (cmake calls it again with them). */
  {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fds[0], &r);
    hits = 0;
    spawn(100);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    int n = select(fds[0] + 1, &r, NULL, NULL, NULL);
    int err = errno;
    sigprocmask(SIG_BLOCK, &chld, NULL);
    printf("select, child exits meanwhile: %d %s, handler ran %d, set kept %s\n", n, n < 0 ? strerror(err) : "-", hits, FD_ISSET(fds[0], &r) ? "yes" : "no");
    while (waitpid(-1, NULL, 0) > 0) {}
  }
  /* make's pattern: children exit while the parent waits for them in pselect, over and over. */
  int reaped = 0;
  for (int round = 0; round < 5; round++) {
    spawn(20);
    spawn(40);
    int live = 2;
    while (live > 0) {
      while (waitpid(-1, NULL, WNOHANG) > 0) { live--; reaped++; }
      if (live == 0) break;
      call("pselect", &during, -1);
    }
  }
  printf("reaped %d children, waiting in pselect\n", reaped);
  time_left();
  return 0;
}
