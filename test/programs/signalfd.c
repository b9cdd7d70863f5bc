/* signalfd (test/signals.test.ts compares this with its native run): blocked signals read as
 * records instead of delivered: kill's (the sender's pid), sigqueue's (its value), a child's
 * SIGCHLD (its pid and exit status); poll sees the descriptor readable; a non-blocking read with
 * nothing pending is EAGAIN, a buffer smaller than a record EINVAL; signalfd on an existing
 * descriptor changes its mask. A blocked SIGCHLD stays pending though ignored, and is discarded
 * when it is unblocked rather than end a wait. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(int fd, const char *what) {
  struct signalfd_siginfo r[4];
  ssize_t n = read(fd, r, sizeof r);
  if (n < 0) { printf("%s: %s\n", what, errno == EAGAIN ? "EAGAIN" : errno == EINVAL ? "EINVAL" : strerror(errno)); return; }
  printf("%s: %zd records\n", what, n / (ssize_t)sizeof r[0]);
  for (ssize_t i = 0; i < n / (ssize_t)sizeof r[0]; i++) {
    const char *name = r[i].ssi_signo == SIGUSR1 ? "SIGUSR1" : r[i].ssi_signo == SIGCHLD ? "SIGCHLD" : (int)r[i].ssi_signo == SIGRTMIN ? "SIGRTMIN" : "other";
    printf("  %s code %d from %s", name, r[i].ssi_code, r[i].ssi_pid == (unsigned)getpid() ? "self" : r[i].ssi_pid > 0 ? "another" : "none");
    if (r[i].ssi_signo == SIGCHLD) printf(" status %d", r[i].ssi_status);
    if (r[i].ssi_code == SI_QUEUE) printf(" value %d", r[i].ssi_int);
    printf("\n");
  }
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig) { alarmed = sig == SIGALRM; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  printf("signalfd: %d\n", fd >= 0);
  show(fd, "nothing pending");
  kill(getpid(), SIGUSR1);
  sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 5});
  struct pollfd pfd = {fd, POLLIN, 0};
  int ready = poll(&pfd, 1, 1000);
  printf("poll: %d revents POLLIN %d\n", ready, !!(pfd.revents & POLLIN));
  char small[8];
  ssize_t r = read(fd, small, sizeof small);
  printf("small buffer: %zd %s\n", r, errno == EINVAL ? "EINVAL" : "?");
  show(fd, "kill and sigqueue");
  pid_t pid = fork();
  if (pid == 0) _exit(5);
  poll(&pfd, 1, 5000);
  show(fd, "a child's exit");
  waitpid(pid, NULL, 0);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, SIGCHLD);
  printf("new mask: %d\n", signalfd(fd, &only, 0) == fd);
  kill(getpid(), SIGUSR1);
  show(fd, "SIGUSR1 no longer in the mask");
  sigset_t pend;
  sigpending(&pend);
  printf("SIGUSR1 still pending: %d\n", sigismember(&pend, SIGUSR1));
  int bad = signalfd(-1, &set, 0x1234);
  printf("bad flags: %d %s\n", bad, errno == EINVAL ? "EINVAL" : "?");

  /* A signalfd is readable for the process that polls it, with that process's own signals: a
   * child that inherits it does not see its parent's pending signal, and sees its own. */
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, NULL);
  int fd2 = signalfd(-1, &usr2, SFD_NONBLOCK);
  kill(getpid(), SIGUSR2);
  pid = fork();
  if (pid == 0) {
    struct pollfd c = {fd2, POLLIN, 0};
    printf("child polls its parent's signal: %d\n", poll(&c, 1, 0));
    kill(getpid(), SIGUSR2);
    printf("child polls its own: %d\n", poll(&c, 1, 0));
    struct signalfd_siginfo one;
    printf("child reads it: %d\n", read(fd2, &one, sizeof one) == sizeof one && one.ssi_pid == (unsigned)getpid());
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  struct pollfd pp = {fd2, POLLIN, 0};
  printf("parent polls its own: %d\n", poll(&pp, 1, 0));
  struct signalfd_siginfo mine;
  printf("parent reads it: %d\n", read(fd2, &mine, sizeof mine) == sizeof mine && mine.ssi_pid == (unsigned)getpid());
  close(fd2);

  /* A blocked SIGCHLD (ignored by default) stays pending; unblocked, it is discarded and does not
   * end a sigsuspend, which waits for the SIGALRM that comes after it. */
  close(fd);
  signal(SIGUSR1, SIG_IGN); /* the SIGUSR1 still pending goes */
  pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, NULL, 0);
  sigpending(&pend);
  printf("blocked SIGCHLD pending: %d\n", sigismember(&pend, SIGCHLD));
  signal(SIGALRM, on_alarm);
  alarm(1);
  sigset_t none;
  sigemptyset(&none);
  sigsuspend(&none);
  printf("sigsuspend ended by SIGALRM: %d\n", (int)alarmed);
  sigpending(&pend);
  printf("SIGCHLD pending after: %d\n", sigismember(&pend, SIGCHLD));
  return 0;
}
