/* POSIX timers (test/signals.test.ts compares this with its native run): timer_create with a
 * real-time signal and a value, taken with sigwaitinfo (SI_TIMER, the timer's id and value); a
 * periodic timer whose signal waits blocked counts the expirations meanwhile as overruns
 * (si_overrun, timer_getoverrun); timer_gettime; the default notification (SIGALRM to a handler,
 * the id as value); SIGEV_NONE; SIGEV_THREAD (libc's helper thread, SIGEV_THREAD_ID underneath);
 * an absolute CLOCK_REALTIME expiry; timer_delete; a fork's child without its parent's timers;
 * and the errors Linux gives. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void ms_sleep(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void arm(timer_t t, long value_ms, long interval_ms) {
  struct itimerspec its = {{interval_ms / 1000, (interval_ms % 1000) * 1000000L}, {value_ms / 1000, (value_ms % 1000) * 1000000L}};
  if (timer_settime(t, 0, &its, NULL) != 0) perror("timer_settime");
}

static volatile sig_atomic_t alarms, alarm_value = -1;
static void on_alarm(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  alarms++;
  alarm_value = si->si_code == SI_TIMER ? si->si_value.sival_int : -2;
}

static volatile sig_atomic_t thread_value = -1;
static void on_thread(union sigval v) { thread_value = v.sival_int; }

/* SIGEV_THREAD_ID's thread: the field after sigev_notify (glibc and musl name it differently). */
static void set_thread_id(struct sigevent *sev, pid_t tid) { memcpy((char *)sev + 16, &tid, sizeof tid); }

static struct sigevent event(int notify, int sig, int value) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = notify;
  sev.sigev_signo = sig;
  sev.sigev_value.sival_int = value;
  return sev;
}

static const char *err(int r) { return r == 0 ? "0" : errno == EINVAL ? "EINVAL" : errno == EPERM ? "EPERM" : strerror(errno); }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &set, NULL);

  struct sigevent sev = event(SIGEV_SIGNAL, SIGRTMIN, 7);
  timer_t t1;
  printf("create: %s\n", err(timer_create(CLOCK_MONOTONIC, &sev, &t1)));
  arm(t1, 20, 0);
  siginfo_t si;
  int sig = sigwaitinfo(&set, &si);
  printf("one-shot: SIGRTMIN %d, SI_TIMER %d, value %d, its id %d, overrun %d\n", sig == SIGRTMIN, si.si_code == SI_TIMER,
         si.si_value.sival_int, si.si_timerid == (int)(long)t1, si.si_overrun);
  struct itimerspec cur;
  timer_gettime(t1, &cur);
  printf("after it fired: value %ld.%09ld interval %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec, (long)cur.it_interval.tv_nsec);

  arm(t1, 5, 5);
  ms_sleep(120);
  sig = sigwaitinfo(&set, &si);
  int over = timer_getoverrun(t1);
  printf("periodic, blocked 120 ms: one signal with overrun > 5: %d, getoverrun the same: %d\n", si.si_overrun > 5, over == si.si_overrun);
  arm(t1, 0, 0);
  struct timespec zero = {0, 0};
  sigset_t pend;
  ms_sleep(10);
  sigpending(&pend);
  if (sigismember(&pend, SIGRTMIN)) sigtimedwait(&set, &si, &zero);
  timer_gettime(t1, &cur);
  printf("disarmed: value %ld interval %ld\n", cur.it_value.tv_nsec, cur.it_interval.tv_nsec);

  arm(t1, 5000, 1000);
  timer_gettime(t1, &cur);
  printf("armed for 5 s every 1 s: value in (4, 5] s %d, interval %ld s\n", cur.it_value.tv_sec == 4 || (cur.it_value.tv_sec == 5 && cur.it_value.tv_nsec == 0),
         (long)cur.it_interval.tv_sec);
  arm(t1, 0, 0);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_alarm;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGALRM, &sa, NULL);
  timer_t t2;
  timer_create(CLOCK_REALTIME, NULL, &t2);
  arm(t2, 10, 10);
  while (alarms < 3) ms_sleep(5);
  arm(t2, 0, 0);
  printf("default notification: SIGALRM, value %d, id %ld\n", (int)alarm_value, (long)t2);

  sev = event(SIGEV_NONE, 0, 0);
  timer_t t3;
  timer_create(CLOCK_MONOTONIC, &sev, &t3);
  arm(t3, 30, 0);
  ms_sleep(10);
  timer_gettime(t3, &cur);
  printf("SIGEV_NONE: counting down %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec < 30000000);
  ms_sleep(40);
  timer_gettime(t3, &cur);
  printf("SIGEV_NONE: expired %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);

  sev = event(SIGEV_THREAD, 0, 9);
  sev.sigev_notify_function = on_thread;
  timer_t t4;
  printf("SIGEV_THREAD create: %s\n", err(timer_create(CLOCK_MONOTONIC, &sev, &t4)));
  arm(t4, 10, 0);
  for (int i = 0; i < 500 && thread_value < 0; i++) ms_sleep(10);
  printf("SIGEV_THREAD: the function ran with value %d\n", (int)thread_value);
  timer_delete(t4);

  sev = event(SIGEV_SIGNAL, SIGRTMIN, 11);
  timer_t t5;
  timer_create(CLOCK_REALTIME, &sev, &t5);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  now.tv_nsec += 30000000;
  if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
  struct itimerspec abs = {{0, 0}, now};
  timer_settime(t5, TIMER_ABSTIME, &abs, NULL);
  sig = sigwaitinfo(&set, &si);
  struct timespec after;
  clock_gettime(CLOCK_REALTIME, &after);
  printf("absolute: value %d, not early %d\n", si.si_value.sival_int,
         after.tv_sec > now.tv_sec || (after.tv_sec == now.tv_sec && after.tv_nsec >= now.tv_nsec - 1000000));

  arm(t5, 1, 0);
  ms_sleep(20);
  sigpending(&pend);
  printf("expired while blocked: pending %d\n", sigismember(&pend, SIGRTMIN));
  /* What becomes of it at timer_delete changed in Linux 6.13 (it stays pending, never delivered):
   * not compared. */
  timer_delete(t5);

  pid_t pid = fork();
  if (pid == 0) {
    printf("child: parent's timer %s\n", err(timer_gettime(t1, &cur)));
    _exit(0);
  }
  waitpid(pid, NULL, 0);

  printf("settime of a deleted timer: %s\n", err(timer_settime(t5, 0, &abs, NULL)));
  timer_t bad;
  printf("create on clock 99: %s\n", err(timer_create(99, NULL, &bad)));
  sev = event(SIGEV_SIGNAL, 0, 0);
  printf("create with signal 0: %s\n", err(timer_create(CLOCK_MONOTONIC, &sev, &bad)));
  sev.sigev_signo = SIGRTMIN;
  sev.sigev_notify = SIGEV_THREAD_ID;
  set_thread_id(&sev, 999999);
  printf("create for no such thread: %s\n", err(timer_create(CLOCK_MONOTONIC, &sev, &bad)));
  sev.sigev_notify = 42;
  printf("create with notify 42: %s\n", err(timer_create(CLOCK_MONOTONIC, &sev, &bad)));
  sev.sigev_notify = SIGEV_THREAD_ID;
  set_thread_id(&sev, (pid_t)syscall(SYS_gettid));
  timer_t t6;
  printf("create for its own thread: %s\n", err(timer_create(CLOCK_MONOTONIC, &sev, &t6)));
  return 0;
}
