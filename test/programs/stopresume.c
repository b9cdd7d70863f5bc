/* Calls that a stop interrupts go on after SIGCONT (Linux restarts them, since no handler ran),
 * as a job stopped with Ctrl-Z and continued with fg expects: a child blocked in read, in
 * recv on a socket, in wait4, in nanosleep, in poll and in sem_wait (a futex) is stopped with
 * SIGSTOP or SIGTSTP, continued, then given what it waits for. A handler without SA_RESTART
 * still ends the read with EINTR, and one with SA_RESTART restarts it. A stop stops every
 * thread of the process. Compared with its native run (test/processes.test.ts). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

static sem_t sem;

/* A thread that posts sem once the pipe fd has something (the parent writes after SIGCONT). */
static void *poster(void *arg) {
  char b[16];
  ssize_t n = read((int)(long)arg, b, sizeof b);
  if (n == 2) sem_post(&sem);
  return NULL;
}

/* Child: one blocking call on fd (0: read, 1: recv, 2: wait4 for a grandchild), reported. */
static void child(int kind, int fd) {
  char b[16];
  ssize_t n;
  if (kind == 2) {
    pid_t g = fork();
    if (g == 0) {
      n = read(fd, b, sizeof b); /* the grandchild ends when the parent writes */
      _exit(n == 2 ? 7 : 1);
    }
    int st;
    pid_t w = waitpid(g, &st, 0);
    printf("  wait4: %s, status %d\n", w == g ? "ok" : strerror(errno), WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    _exit(0);
  }
  if (kind == 3) {
    /* 1.2 s, stopped after 0.3 s and continued at once: the sleep ends at its time, with 0. */
    struct timespec ts = { 1, 200000000 };
    int r = nanosleep(&ts, NULL);
    printf("  nanosleep: %d %s\n", r, r < 0 ? strerror(errno) : "slept");
    _exit(0);
  }
  if (kind == 4) {
    struct pollfd pf = { fd, POLLIN, 0 };
    int r = poll(&pf, 1, 20000);
    printf("  poll: %d %s\n", r, r < 0 ? strerror(errno) : "ready");
    _exit(0);
  }
  if (kind == 5) {
    pthread_t th;
    sem_init(&sem, 0, 0);
    pthread_create(&th, NULL, poster, (void *)(long)fd);
    int r = sem_wait(&sem);
    printf("  sem_wait: %d %s\n", r, r < 0 ? strerror(errno) : "posted");
    pthread_join(th, NULL);
    _exit(0);
  }
  n = kind == 0 ? read(fd, b, sizeof b) : recv(fd, b, sizeof b, 0);
  printf("  %s: %zd %s\n", kind == 0 ? "read" : "recv", n, n < 0 ? strerror(errno) : "bytes");
  _exit(0);
}

static void run(const char *what, int kind, int stopsig, int handler) {
  printf("%s, stopped with %s%s:\n", what, stopsig == SIGSTOP ? "SIGSTOP" : "SIGTSTP",
         handler == 1 ? ", then SIGUSR1 to a handler" : handler == 2 ? ", then SIGUSR1 to an SA_RESTART handler" : "");
  int p[2];
  if (kind == 1 ? socketpair(AF_UNIX, SOCK_STREAM, 0, p) : pipe(p)) return;
  /* The child gets a process group of its own in our session, as a shell's job does, so that
     SIGTSTP is never discarded as sent to an orphaned group (whatever group we run in). */
  pid_t c = fork();
  if (c == 0) {
    setpgid(0, 0);
    if (handler) {
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = on_usr1;
      sa.sa_flags = handler == 2 ? SA_RESTART : 0;
      sigaction(SIGUSR1, &sa, NULL);
    }
    close(p[1]);
    child(kind, p[0]);
  }
  setpgid(c, c);
  close(p[0]);
  usleep(300000); /* the child is blocked by now */
  int st;
  kill(c, stopsig);
  pid_t w = waitpid(c, &st, WUNTRACED);
  printf("  stopped: %s\n", w == c && WIFSTOPPED(st) ? "yes" : "no");
  kill(c, SIGCONT);
  usleep(200000);
  if (handler) {
    kill(c, SIGUSR1);
    usleep(200000);
  }
  ssize_t wn = write(p[1], "hi", 2); /* EPIPE when the child has gone (EINTR case) */
  (void)wn;
  waitpid(c, &st, 0);
  close(p[1]);
}

/* A thread that writes a byte every 10 ms to fd, until the write fails. */
static void *ticker(void *arg) {
  while (write((int)(long)arg, "t", 1) == 1) usleep(10000);
  return NULL;
}

/* A child whose second thread keeps writing: while the child is stopped, nothing comes. */
static void threads_stop(void) {
  printf("a thread of a stopped process:\n");
  int p[2];
  if (pipe(p)) return;
  pid_t c = fork();
  if (c == 0) {
    setpgid(0, 0);
    close(p[0]);
    pthread_t th;
    pthread_create(&th, NULL, ticker, (void *)(long)p[1]);
    for (;;) pause();
  }
  setpgid(c, c);
  close(p[1]);
  char b[4096];
  if (read(p[0], b, 1) != 1) printf("  no first byte\n");
  int st;
  kill(c, SIGSTOP);
  pid_t w = waitpid(c, &st, WUNTRACED);
  printf("  stopped: %s\n", w == c && WIFSTOPPED(st) ? "yes" : "no");
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  while (read(p[0], b, sizeof b) > 0) {} /* what it wrote before it stopped */
  usleep(300000);
  ssize_t n = read(p[0], b, sizeof b);
  printf("  bytes while stopped: %zd\n", n < 0 ? 0 : n);
  kill(c, SIGCONT);
  struct pollfd pf = { p[0], POLLIN, 0 };
  printf("  writes again after SIGCONT: %s\n", poll(&pf, 1, 20000) == 1 ? "yes" : "no");
  kill(c, SIGKILL);
  waitpid(c, &st, 0);
  close(p[0]);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  run("read of a pipe", 0, SIGSTOP, 0);
  run("read of a pipe", 0, SIGTSTP, 0);
  run("recv of a socket", 1, SIGTSTP, 0);
  run("wait4", 2, SIGSTOP, 0);
  run("read of a pipe", 0, SIGSTOP, 1);
  run("read of a pipe", 0, SIGSTOP, 2);
  run("nanosleep", 3, SIGTSTP, 0);
  run("poll", 4, SIGSTOP, 0);
  run("sem_wait", 5, SIGSTOP, 0);
  threads_stop();
  return 0;
}
