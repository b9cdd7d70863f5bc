/* Real-time signals queue; standard ones do not (test/signals.test.ts compares this with its
 * native run). Blocked, SIGRTMIN sent three times with sigqueue (values 1, 2, 3) and SIGRTMIN+1
 * once arrive as four signals, lowest number first and each number in the order sent, with
 * their values; SIGUSR1 sent three times arrives once. A child's sigqueue reaches its parent
 * with the child's pid and the value, and a handler with SA_SIGINFO gets the value too. A
 * process may not pass off a siginfo as kill's (SI_USER) to another process (EPERM), but may to
 * itself; rt_tgsigqueueinfo reaches a thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t handled_value = -1, handled_code = 0;
static void on_rt(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  handled_value = si->si_value.sival_int;
  handled_code = si->si_code;
}

static void take(const sigset_t *set, int n) {
  for (int i = 0; i < n; i++) {
    siginfo_t si;
    struct timespec ts = {0, 300000000};
    int sig = sigtimedwait(set, &si, &ts);
    if (sig < 0) { printf("  none: %s\n", strerror(errno)); return; }
    const char *name = sig == SIGUSR1 ? "SIGUSR1" : sig == SIGRTMIN ? "SIGRTMIN" : sig == SIGRTMIN + 1 ? "SIGRTMIN+1" : "other";
    printf("  %s code=%s value=%d from %s\n", name, si.si_code == SI_QUEUE ? "SI_QUEUE" : si.si_code == SI_USER ? "SI_USER" : "other",
           si.si_code == SI_QUEUE ? si.si_value.sival_int : -1, si.si_pid == getpid() ? "self" : si.si_pid > 0 ? "other" : "none");
  }
}

static pid_t thread_tid;
static volatile sig_atomic_t thread_got;
static void on_thread_sig(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (syscall(SYS_gettid) == thread_tid) thread_got = sig == SIGRTMIN + 2 ? si->si_value.sival_int : -2;
}
static void *thread_main(void *arg) {
  (void)arg;
  thread_tid = syscall(SYS_gettid);
  while (!thread_got) usleep(1000);
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGRTMIN);
  sigaddset(&set, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &set, NULL);

  printf("queued to itself:\n");
  for (int i = 1; i <= 3; i++) sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i});
  sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = 9});
  for (int i = 0; i < 3; i++) kill(getpid(), SIGUSR1);
  sigset_t pend;
  sigpending(&pend);
  printf("  pending: USR1 %d RTMIN %d RTMIN+1 %d\n", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGRTMIN), sigismember(&pend, SIGRTMIN + 1));
  take(&set, 5);
  take(&set, 1);

  printf("from a child:\n");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    sigqueue(parent, SIGRTMIN, (union sigval){.sival_int = 42});
    sigqueue(parent, SIGRTMIN, (union sigval){.sival_int = 43});
    siginfo_t fake;
    memset(&fake, 0, sizeof fake);
    fake.si_signo = SIGRTMIN;
    fake.si_code = SI_USER;
    long r = syscall(SYS_rt_sigqueueinfo, parent, SIGRTMIN, &fake);
    printf("  child: rt_sigqueueinfo with SI_USER to its parent: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  take(&set, 3);
  siginfo_t own;
  memset(&own, 0, sizeof own);
  own.si_signo = SIGRTMIN;
  own.si_code = SI_USER;
  own.si_pid = getpid();
  printf("  rt_sigqueueinfo with SI_USER to itself: %ld\n", syscall(SYS_rt_sigqueueinfo, getpid(), SIGRTMIN, &own));
  take(&set, 1);

  printf("to a handler:\n");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN, &sa, NULL);
  sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 77});
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  printf("  handler: value=%d code=%s\n", (int)handled_value, handled_code == SI_QUEUE ? "SI_QUEUE" : "other");

  printf("to a thread:\n");
  sa.sa_sigaction = on_thread_sig;
  sigaction(SIGRTMIN + 2, &sa, NULL);
  pthread_t th;
  pthread_create(&th, NULL, thread_main, NULL);
  while (!thread_tid) usleep(1000);
  siginfo_t ti;
  memset(&ti, 0, sizeof ti);
  ti.si_signo = SIGRTMIN + 2;
  ti.si_code = SI_QUEUE;
  ti.si_pid = getpid();
  ti.si_value.sival_int = 5;
  printf("  rt_tgsigqueueinfo: %ld\n", syscall(SYS_rt_tgsigqueueinfo, getpid(), thread_tid, SIGRTMIN + 2, &ti));
  pthread_join(th, NULL);
  printf("  thread got value %d\n", (int)thread_got);
  long none = syscall(SYS_rt_tgsigqueueinfo, getpid(), 999999, SIGRTMIN + 2, &ti);
  printf("  to no such thread: %ld %s\n", none, strerror(errno));
  return 0;
}
