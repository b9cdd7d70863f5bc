/* rt_sigtimedwait (sigwait, sigwaitinfo, sigtimedwait): blocked signals taken synchronously, from
 * another thread, another process, the calling thread itself and ITIMER_REAL; a timeout gives
 * EAGAIN. Prints the same natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_t main_thread;
static void *sender(void *arg) {
  (void)arg;
  usleep(100000);
  pthread_kill(main_thread, SIGUSR1);
  return NULL;
}

/* kill(getpid()) from a thread that blocks the signal too (Python's threading.Timer does so). */
static void *killer(void *arg) {
  (void)arg;
  usleep(100000);
  kill(getpid(), SIGUSR2);
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGALRM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  siginfo_t si;
  int sig;

  /* From the thread itself: already pending. */
  raise(SIGUSR2);
  sig = sigwaitinfo(&set, &si);
  printf("pending: %s, code %d, pid %s\n", strsignal(sig), si.si_code, si.si_pid == getpid() ? "self" : "other");

  /* From another thread, while waiting. */
  main_thread = pthread_self();
  pthread_t t;
  pthread_create(&t, NULL, sender, NULL);
  int r = sigwait(&set, &sig);
  printf("from a thread: %d %s\n", r, strsignal(sig));
  pthread_join(t, NULL);
  pthread_create(&t, NULL, killer, NULL);
  sig = sigwaitinfo(&set, &si);
  printf("kill from a thread: %s, code %d\n", strsignal(sig), si.si_code);
  pthread_join(t, NULL);

  /* A timeout. */
  struct timespec ts = { 0, 100000000 };
  sigset_t two;
  sigemptyset(&two);
  sigaddset(&two, SIGUSR2);
  r = sigtimedwait(&two, &si, &ts);
  printf("timeout: %d %s\n", r, r < 0 ? strerror(errno) : "");
  struct timespec zero = { 0, 0 };
  r = sigtimedwait(&two, &si, &zero);
  printf("poll: %d %s\n", r, r < 0 ? strerror(errno) : "");

  /* From another process. */
  pid_t pid = fork();
  if (pid == 0) {
    usleep(100000);
    kill(getppid(), SIGUSR1);
    _exit(0);
  }
  sig = sigwaitinfo(&set, &si);
  printf("from a child: %s, code %s, pid %s\n", strsignal(sig), si.si_code == SI_USER ? "SI_USER" : "other", si.si_pid == pid ? "the child's" : "other");
  waitpid(pid, NULL, 0);

  /* ITIMER_REAL, with no other task. */
  alarm(1);
  sig = sigwaitinfo(&set, &si);
  printf("alarm: %s, code %s\n", strsignal(sig), si.si_code == SI_KERNEL ? "SI_KERNEL" : "other");
  return 0;
}
