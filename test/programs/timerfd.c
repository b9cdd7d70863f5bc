/* timerfd, and poll/select that time out. Everything is done twice: once alone (the sandbox
 * sleeps on the host) and once while a second thread is alive and blocked on a pipe (the sandbox
 * parks the caller in its scheduler and must wake it at the timer's expiry). Prints only what is
 * stable: error names, exact settings, and lower bounds of expiration counts. The output is the
 * same natively and in the sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000L

static const char *err(long r) {
  if (r >= 0) return "ok";
  switch (errno) {
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case EPERM: return "EPERM";
    default: return "other";
  }
}

static struct itimerspec spec(long value_ns, long interval_ns) {
  struct itimerspec s = {
    .it_value = { value_ns / 1000000000L, value_ns % 1000000000L },
    .it_interval = { interval_ns / 1000000000L, interval_ns % 1000000000L },
  };
  return s;
}

static long ns(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

static uint64_t read_count(int fd) {
  uint64_t n = 0;
  if (read(fd, &n, 8) != 8) return 0;
  return n;
}

/* Linux counts an expiry in its timer interrupt, which may come a little after settime even for
 * a time already past: wait for it before a nonblocking read. */
static void readable(int fd) {
  struct pollfd p = { .fd = fd, .events = POLLIN };
  poll(&p, 1, 2000);
}

/* The checks that do not wait: errors, settings, nonblocking reads. */
static void static_checks(void) {
  printf("create bad clock: %s\n", err(timerfd_create(123, 0)));
  printf("create bad flags: %s\n", err(timerfd_create(CLOCK_MONOTONIC, 0x10)));
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  printf("create: %s, cloexec %d, flags %#x\n", err(fd), fcntl(fd, F_GETFD) & FD_CLOEXEC, fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK));
  uint64_t n;
  printf("read disarmed: %s\n", err(read(fd, &n, 8)));
  char small[4];
  printf("read 4 bytes: %s\n", err(read(fd, small, sizeof small)));
  printf("write: %s\n", err(write(fd, &n, 8)));
  struct itimerspec cur;
  memset(&cur, 0x55, sizeof cur);
  int r = timerfd_gettime(fd, &cur);
  printf("gettime disarmed: %s %ld %ld\n", err(r), ns(cur.it_value), ns(cur.it_interval));
  struct itimerspec bad = spec(10 * MS, 0);
  bad.it_value.tv_nsec = 1000000000L;
  printf("settime nsec 1e9: %s\n", err(timerfd_settime(fd, 0, &bad, NULL)));
  bad = spec(10 * MS, 0);
  bad.it_interval.tv_nsec = -1;
  printf("settime interval nsec -1: %s\n", err(timerfd_settime(fd, 0, &bad, NULL)));
  bad = spec(10 * MS, 0);
  bad.it_value.tv_sec = -1;
  printf("settime sec -1: %s\n", err(timerfd_settime(fd, 0, &bad, NULL)));
  struct itimerspec s = spec(10 * MS, 0);
  printf("settime bad flags: %s\n", err(timerfd_settime(fd, 0x100, &s, NULL)));
  printf("settime bad pointer: %s\n", err(timerfd_settime(fd, 0, (struct itimerspec *)8, NULL)));
  printf("gettime bad pointer: %s\n", err(timerfd_gettime(fd, (struct itimerspec *)8)));
  printf("settime on stdout: %s\n", err(timerfd_settime(1, 0, &s, NULL)));
  printf("gettime on fd 999: %s\n", err(timerfd_gettime(999, &cur)));

  /* A periodic timer: gettime says the interval exactly and at most one interval to go. */
  s = spec(200 * MS, 100 * MS);
  printf("settime periodic: %s\n", err(timerfd_settime(fd, 0, &s, NULL)));
  timerfd_gettime(fd, &cur);
  printf("gettime: interval %ld, value in (0, 200ms]: %d\n", ns(cur.it_interval), ns(cur.it_value) > 0 && ns(cur.it_value) <= 200 * MS);
  printf("read before expiry: %s\n", err(read(fd, &n, 8)));
  /* Disarm, with the old value out; the count starts again. */
  struct itimerspec old, zero = spec(0, 0);
  memset(&old, 0x55, sizeof old);
  r = timerfd_settime(fd, 0, &zero, &old);
  printf("disarm: %s, old interval %ld, old value in (0, 200ms]: %d\n", err(r), ns(old.it_interval),
    ns(old.it_value) > 0 && ns(old.it_value) <= 200 * MS);
  timerfd_gettime(fd, &cur);
  printf("gettime after disarm: %ld %ld\n", ns(cur.it_value), ns(cur.it_interval));

  /* TFD_TIMER_ABSTIME in the past: expired at once; periodic, it counts every interval since. */
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  s = spec(ns(now) - 1000 * MS, 0);
  timerfd_settime(fd, TFD_TIMER_ABSTIME, &s, NULL);
  readable(fd);
  printf("abstime past, one-shot: %llu\n", (unsigned long long)read_count(fd));
  printf("then: %s\n", err(read(fd, &n, 8)));
  clock_gettime(CLOCK_MONOTONIC, &now);
  s = spec(ns(now) - 1000 * MS, 100 * MS);
  timerfd_settime(fd, TFD_TIMER_ABSTIME, &s, NULL);
  readable(fd);
  n = read_count(fd);
  printf("abstime past, periodic: at least 10: %d\n", n >= 10 && n < 1000);
  close(fd);
}

/* The checks that wait for the timer. */
static void waiting_checks(const char *who) {
  printf("-- %s\n", who);
  int fd = timerfd_create(CLOCK_MONOTONIC, 0);
  struct itimerspec s = spec(20 * MS, 20 * MS);
  timerfd_settime(fd, 0, &s, NULL);
  printf("blocking read: at least 1: %d\n", read_count(fd) >= 1);
  usleep(100000);
  printf("after 100ms: at least 3: %d\n", read_count(fd) >= 3);

  /* One-shot, absolute on CLOCK_MONOTONIC, then on CLOCK_REALTIME and CLOCK_BOOTTIME. */
  static const clockid_t clocks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME };
  static const char *names[] = { "monotonic", "realtime", "boottime" };
  for (int i = 0; i < 3; i++) {
    int t = timerfd_create(clocks[i], 0);
    struct timespec now;
    clock_gettime(clocks[i], &now);
    s = spec(ns(now) + 30 * MS, 0);
    int r = timerfd_settime(t, TFD_TIMER_ABSTIME, &s, NULL);
    printf("abstime %s: %s, read %llu\n", names[i], err(r), (unsigned long long)read_count(t));
    close(t);
  }

  /* poll without a timeout wakes at the expiry. */
  s = spec(30 * MS, 0);
  timerfd_settime(fd, 0, &s, NULL);
  struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0x7777 };
  int r = poll(&pfd, 1, -1);
  printf("poll: %d revents %#x, read %llu\n", r, pfd.revents, (unsigned long long)read_count(fd));

  /* select with a timeout longer than the timer's. */
  timerfd_settime(fd, 0, &s, NULL);
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(fd, &rd);
  struct timeval tv = { 5, 0 };
  r = select(fd + 1, &rd, NULL, NULL, &tv);
  printf("select: %d isset %d, read %llu\n", r, FD_ISSET(fd, &rd) != 0, (unsigned long long)read_count(fd));

  /* epoll_wait without a timeout, on a periodic timer. */
  int ep = epoll_create1(0);
  struct epoll_event e = { .events = EPOLLIN, .data.u64 = 42 };
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  s = spec(20 * MS, 20 * MS);
  timerfd_settime(fd, 0, &s, NULL);
  for (int i = 0; i < 3; i++) {
    struct epoll_event out[2];
    memset(out, 0, sizeof out);
    r = epoll_wait(ep, out, 2, -1);
    printf("epoll_wait %d: %d events %#x data %llu, read at least 1: %d\n", i, r, out[0].events,
      (unsigned long long)out[0].data.u64, read_count(fd) >= 1);
  }
  /* Disarmed: an epoll_wait with a timeout ends with nothing. */
  struct itimerspec zero = spec(0, 0);
  timerfd_settime(fd, 0, &zero, NULL);
  struct epoll_event out[2];
  printf("epoll_wait disarmed: %d\n", epoll_wait(ep, out, 2, 50));
  close(ep);

  /* poll and select that time out: revents 0 and empty sets, whatever was there before. */
  int p[2];
  if (pipe(p)) return;
  struct pollfd two[2] = { { .fd = p[0], .events = POLLIN, .revents = 0x7777 }, { .fd = fd, .events = POLLIN, .revents = 0x5555 } };
  r = poll(two, 2, 30);
  printf("poll timeout: %d revents %#x %#x\n", r, two[0].revents, two[1].revents);
  two[0].revents = 0x7777;
  two[1].revents = 0x5555;
  struct timespec ts = { 0, 30 * MS };
  r = ppoll(two, 2, &ts, NULL);
  printf("ppoll timeout: %d revents %#x %#x\n", r, two[0].revents, two[1].revents);
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  FD_SET(fd, &rd);
  fd_set ex = rd;
  tv.tv_sec = 0;
  tv.tv_usec = 30000;
  r = select(fd + 1, &rd, NULL, &ex, &tv);
  printf("select timeout: %d isset %d %d %d %d\n", r, FD_ISSET(p[0], &rd) != 0, FD_ISSET(fd, &rd) != 0, FD_ISSET(p[0], &ex) != 0, FD_ISSET(fd, &ex) != 0);
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  r = pselect(p[0] + 1, &rd, NULL, NULL, &ts, NULL);
  printf("pselect timeout: %d isset %d\n", r, FD_ISSET(p[0], &rd) != 0);
  close(p[0]);
  close(p[1]);
  close(fd);
}

static int hold[2];

static void *blocked(void *arg) {
  (void)arg;
  char c;
  if (read(hold[0], &c, 1) != 1) return (void *)1;
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  static_checks();
  waiting_checks("alone");
  if (pipe(hold)) return 1;
  pthread_t th;
  if (pthread_create(&th, NULL, blocked, NULL)) return 2;
  waiting_checks("with a second thread");
  if (write(hold[1], "x", 1) != 1) return 3;
  void *res;
  pthread_join(th, &res);
  printf("joined: %d\n", res == NULL);
  return 0;
}
