/* POSIX message queues: mq_open with attributes and its errors, priorities (highest first, in
 * order within one), the size and priority limits, O_NONBLOCK through mq_setattr, absolute
 * timeouts, the status line a read gives, poll, mq_notify with a signal (SI_MESGQ, its value,
 * EBUSY for a second process), a receiver in a child woken by the parent's send, mq_unlink with
 * the queue still open, close-on-exec. Names carry the pid, as a native run shares the host's
 * namespace. "priv:" lines depend on privilege and on the user's other queues. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char names[4][64];

static const char *err(int e) {
  switch (e) {
    case EEXIST: return "EEXIST"; case ENOENT: return "ENOENT"; case EACCES: return "EACCES"; case EINVAL: return "EINVAL";
    case EMSGSIZE: return "EMSGSIZE"; case EAGAIN: return "EAGAIN"; case ETIMEDOUT: return "ETIMEDOUT"; case EBUSY: return "EBUSY";
    case EBADF: return "EBADF"; case EMFILE: return "EMFILE"; case ENOSPC: return "ENOSPC";
    default: { static char b[16]; snprintf(b, sizeof b, "errno %d", e); return b; }
  }
}

static void show(const char *what, long r) {
  if (r < 0) printf("%s: %s\n", what, err(errno));
  else printf("%s: %ld\n", what, r);
}

static void attrs(mqd_t q) {
  struct mq_attr a;
  mq_getattr(q, &a);
  printf("  flags %s maxmsg %ld msgsize %ld curmsgs %ld\n", a.mq_flags & O_NONBLOCK ? "O_NONBLOCK" : "0", a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
}

static struct timespec in_ms(long ms) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_nsec += (ms % 1000) * 1000000;
  t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000;
  t.tv_nsec %= 1000000000;
  return t;
}

static volatile int got_sig, got_code, got_value, got_pid_ok;

static void on_usr1(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  got_sig = sig;
  got_code = si->si_code;
  got_value = si->si_value.sival_int;
  got_pid_ok = si->si_pid == getpid();
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 0; i < 4; i++) snprintf(names[i], sizeof names[i], "/kvmbox-mq-%d-%d", (int)getpid(), i);
  struct mq_attr small = {0, 4, 64, 0, {0}};
  mqd_t q = mq_open(names[0], O_CREAT | O_EXCL | O_RDWR, 0600, &small);
  show("mq_open", q < 0 ? -1 : 0);
  attrs(q);
  show("close-on-exec", fcntl(q, F_GETFD) & FD_CLOEXEC);

  show("send low", mq_send(q, "low", 3, 1));
  show("send high1", mq_send(q, "high1", 5, 5));
  show("send high2", mq_send(q, "high2", 5, 5));
  attrs(q);
  char buf[128];
  unsigned prio;
  for (int i = 0; i < 3; i++) {
    long n = mq_receive(q, buf, sizeof buf, &prio);
    printf("  received %ld \"%.*s\" prio %u\n", n, (int)(n > 0 ? n : 0), buf, prio);
  }
  show("receive into too small a buffer", mq_receive(q, buf, 63, &prio));
  show("send past msgsize", mq_send(q, buf, 65, 0));
  show("send at MQ_PRIO_MAX", mq_send(q, "x", 1, 32768));

  for (int i = 0; i < 4; i++) mq_send(q, "fill", 4, 0);
  struct mq_attr nb = {O_NONBLOCK, 0, 0, 0, {0}}, old;
  show("mq_setattr O_NONBLOCK", mq_setattr(q, &nb, &old));
  printf("  old flags %ld\n", old.mq_flags);
  show("send to a full queue, O_NONBLOCK", mq_send(q, "x", 1, 0));
  struct mq_attr bad = {O_NONBLOCK | O_APPEND, 0, 0, 0, {0}};
  show("mq_setattr other flags", mq_setattr(q, &bad, NULL));
  struct mq_attr blocking = {0, 0, 0, 0, {0}};
  mq_setattr(q, &blocking, NULL);
  struct timespec past = in_ms(-1000);
  show("timed send to a full queue, past deadline", mq_timedsend(q, "x", 1, 0, &past));
  struct timespec soon = in_ms(50);
  show("timed send to a full queue", mq_timedsend(q, "x", 1, 0, &soon));
  struct timespec badts = {0, 2000000000};
  show("timed send, bad timespec", mq_timedsend(q, "x", 1, 0, &badts));
  for (int i = 0; i < 4; i++) mq_receive(q, buf, sizeof buf, NULL);
  soon = in_ms(50);
  show("timed receive from an empty queue", mq_timedreceive(q, buf, sizeof buf, NULL, &soon));
  mq_setattr(q, &nb, NULL);
  show("receive from an empty queue, O_NONBLOCK", mq_receive(q, buf, sizeof buf, NULL));
  mq_setattr(q, &blocking, NULL);

  struct pollfd pf = {q, POLLIN | POLLOUT, 0};
  poll(&pf, 1, 0);
  printf("poll empty: %s%s\n", pf.revents & POLLIN ? "in " : "", pf.revents & POLLOUT ? "out" : "");
  mq_send(q, "hello", 5, 0);
  poll(&pf, 1, 0);
  printf("poll one message: %s%s\n", pf.revents & POLLIN ? "in " : "", pf.revents & POLLOUT ? "out" : "");
  char status[128] = {0};
  long n = read(q, status, sizeof status - 1);
  printf("read: %ld %.*s", n, (int)(strchr(status, 'N') ? strchr(status, 'N') - status + 20 : 0), status);
  printf("\n");
  mq_receive(q, buf, sizeof buf, NULL);

  /* Notification: the first message into the empty queue signals the registered process. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, NULL);
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR1;
  ev.sigev_value.sival_int = 77;
  show("mq_notify", mq_notify(q, &ev));
  memset(status, 0, sizeof status);
  lseek(q, 0, SEEK_SET);
  n = read(q, status, sizeof status - 1);
  char *pidat = strstr(status, "NOTIFY_PID:");
  printf("read after mq_notify: %.*s pid %s\n", pidat ? (int)(pidat - status) : 0, status,
         pidat && atoi(pidat + 11) == getpid() ? "mine" : "other");
  pid_t c = fork();
  if (c == 0) {
    mqd_t cq = mq_open(names[0], O_WRONLY);
    show("child's mq_notify while the parent's holds", mq_notify(cq, &ev));
    _exit(0);
  }
  waitpid(c, NULL, 0);
  show("send into the empty queue", mq_send(q, "ping", 4, 3));
  printf("signal %d code %d value %d pid %s\n", got_sig, got_code, got_value, got_pid_ok ? "mine" : "other");
  got_sig = 0;
  mq_receive(q, buf, sizeof buf, NULL);
  mq_send(q, "again", 5, 0);
  printf("a second message: signal %d (the registration was used up)\n", got_sig);
  mq_receive(q, buf, sizeof buf, NULL);
  show("mq_notify again", mq_notify(q, &ev));
  show("mq_notify(NULL)", mq_notify(q, NULL));
  mq_send(q, "quiet", 5, 0);
  printf("after mq_notify(NULL): signal %d\n", got_sig);
  mq_receive(q, buf, sizeof buf, NULL);

  /* A receiver in a child, woken by the parent. */
  c = fork();
  if (c == 0) {
    mqd_t cq = mq_open(names[0], O_RDONLY);
    unsigned p2;
    long m = mq_receive(cq, buf, sizeof buf, &p2);
    printf("child received %ld \"%.*s\" prio %u\n", m, (int)(m > 0 ? m : 0), buf, p2);
    fflush(stdout);
    _exit(0);
  }
  usleep(20000);
  mq_send(q, "to the child", 12, 9);
  waitpid(c, NULL, 0);

  show("O_EXCL on an existing queue", mq_open(names[0], O_CREAT | O_EXCL | O_RDWR, 0600, NULL) < 0 ? -1 : 0);
  show("open a missing queue", mq_open(names[1], O_RDWR) < 0 ? -1 : 0);
  char sub[80];
  snprintf(sub, sizeof sub, "%s/sub", names[1]);
  show("a name with a slash inside", mq_open(sub, O_CREAT | O_RDWR, 0600, NULL) < 0 ? -1 : 0);
  struct mq_attr zero = {0, 0, 64, 0, {0}}, zsize = {0, 4, 0, 0, {0}}, eleven = {0, 11, 64, 0, {0}};
  show("maxmsg 0", mq_open(names[1], O_CREAT | O_RDWR, 0600, &zero) < 0 ? -1 : 0);
  show("msgsize 0", mq_open(names[1], O_CREAT | O_RDWR, 0600, &zsize) < 0 ? -1 : 0);
  mqd_t big = mq_open(names[1], O_CREAT | O_RDWR, 0600, &eleven);
  printf("priv: maxmsg 11: %s\n", big < 0 ? err(errno) : "ok");
  if (big >= 0) { mq_close(big); mq_unlink(names[1]); }
  mqd_t ro = mq_open(names[2], O_CREAT | O_RDONLY, 0400, &small);
  show("send on a read-only descriptor", mq_send(ro, "x", 1, 0));
  mqd_t w = mq_open(names[2], O_WRONLY);
  printf("priv: reopen for writing without the right: %s\n", w < 0 ? err(errno) : "ok");
  mq_close(ro);
  show("mq_unlink", mq_unlink(names[2]));
  show("mq_unlink again", mq_unlink(names[2]));
  show("mq_unlink while open", mq_unlink(names[0]));
  show("send after unlink", mq_send(q, "still", 5, 0));
  n = mq_receive(q, buf, sizeof buf, NULL);
  printf("  received %ld\n", n);
  show("send on a closed descriptor", mq_send(999, "x", 1, 0));
  show("send on a pipe", ({ int p[2]; pipe(p) ? -1 : mq_send(p[1], "x", 1, 0); }));
  mq_close(q);

  /* RLIMIT_MSGQUEUE: default queues until EMFILE (the user's other queues count natively). */
  int count = 0;
  char nm[80];
  for (; count < 100; count++) {
    snprintf(nm, sizeof nm, "/kvmbox-mq-%d-many-%d", (int)getpid(), count);
    mqd_t m = mq_open(nm, O_CREAT | O_RDWR, 0600, NULL);
    if (m < 0) break;
    mq_close(m);
  }
  printf("priv: default queues: %d then %s\n", count, err(errno));
  for (int i = 0; i < count; i++) {
    snprintf(nm, sizeof nm, "/kvmbox-mq-%d-many-%d", (int)getpid(), i);
    mq_unlink(nm);
  }
  return 0;
}
