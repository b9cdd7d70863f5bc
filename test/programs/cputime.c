/* CPU time is time on a CPU, not time since the start: a sleep adds (almost) none, a busy loop
 * adds its length, a thread that sleeps has none of its busy sibling's, and a waited-for child's
 * shows in wait4's rusage, RUSAGE_CHILDREN, times() and /proc/self/stat. Prints one yes/no line
 * per check (the same natively). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long ms_of(clockid_t c) {
  struct timespec t;
  if (clock_gettime(c, &t) != 0) return -1;
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static long tv_ms(struct timeval tv) { return tv.tv_sec * 1000L + tv.tv_usec / 1000L; }

/* Spin until the process has had ms more milliseconds of CPU time. Each look at the clock is a
 * system call in the sandbox: few enough of them that user time dominates even where exits are
 * slow (an emulated host). */
static void burn(long ms) {
  long end = ms_of(CLOCK_PROCESS_CPUTIME_ID) + ms;
  volatile unsigned long x = 0;
  while (ms_of(CLOCK_PROCESS_CPUTIME_ID) < end)
    for (int i = 0; i < 3000000; i++) x += i;
}

static void *busy_thread(void *arg) {
  long ms = (long)arg;
  long end = ms_of(CLOCK_THREAD_CPUTIME_ID) + ms;
  volatile unsigned long x = 0;
  while (ms_of(CLOCK_THREAD_CPUTIME_ID) < end)
    for (int i = 0; i < 3000000; i++) x += i;
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* A sleep is not CPU time. */
  long c0 = ms_of(CLOCK_PROCESS_CPUTIME_ID);
  struct timespec nap = { 0, 400 * 1000 * 1000 };
  nanosleep(&nap, NULL);
  long slept = ms_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
  printf("sleep adds under 150 ms of CPU time: %s\n", slept >= 0 && slept < 150 ? "yes" : "no");

  /* A busy loop is, mostly user time; getrusage agrees with the clock. */
  burn(350);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long self = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime), clock = ms_of(CLOCK_PROCESS_CPUTIME_ID);
  printf("getrusage: at least 300 ms, mostly user: %s\n", self >= 300 && tv_ms(ru.ru_utime) * 2 > self ? "yes" : "no");
  printf("getrusage within 100 ms of the clock: %s\n", labs(clock - self) < 100 ? "yes" : "no");
  clockid_t mine;
  printf("clock_getcpuclockid(0) reads the same: %s\n",
         clock_getcpuclockid(0, &mine) == 0 && labs(ms_of(mine) - ms_of(CLOCK_PROCESS_CPUTIME_ID)) < 100 ? "yes" : "no");

  /* A thread's clock is its own: the main thread sleeps while another one is busy. */
  long mainBefore = ms_of(CLOCK_THREAD_CPUTIME_ID), procBefore = ms_of(CLOCK_PROCESS_CPUTIME_ID);
  pthread_t th;
  pthread_create(&th, NULL, busy_thread, (void *)350L);
  clockid_t theirs;
  int got = pthread_getcpuclockid(th, &theirs);
  long theirsMid = got == 0 ? ms_of(theirs) : -2;
  pthread_join(th, NULL);
  long mainDelta = ms_of(CLOCK_THREAD_CPUTIME_ID) - mainBefore, procDelta = ms_of(CLOCK_PROCESS_CPUTIME_ID) - procBefore;
  printf("the busy thread's time is the process's: %s\n", procDelta >= 300 ? "yes" : "no");
  /* Not "under so many ms": creating the first thread costs the host a vCPU, system time of the
   * main thread's that an emulated host makes long. The busy thread's 350 ms are not in it. */
  printf("the waiting main thread has little of it: %s\n", mainDelta + 300 <= procDelta ? "yes" : "no");
  printf("pthread_getcpuclockid reads: %s\n", theirsMid >= 0 ? "yes" : "no");
  /* The main thread's own time has its 350 ms burn but not the busy thread's 350 ms: compared
   * with the process's total, not with a margin over the burn, which a slow host's exits eat. */
  getrusage(RUSAGE_THREAD, &ru);
  long mainAll = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
  getrusage(RUSAGE_SELF, &ru);
  long procAll = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
  printf("RUSAGE_THREAD is the main thread's: %s\n", mainAll >= 300 && mainAll + 300 <= procAll ? "yes" : "no");

  /* A child's time comes back with it. */
  pid_t pid = fork();
  if (pid == 0) { burn(350); _exit(0); }
  int status;
  struct rusage cru;
  wait4(pid, &status, 0, &cru);
  printf("wait4's rusage has the child's 300 ms: %s\n", tv_ms(cru.ru_utime) + tv_ms(cru.ru_stime) >= 300 ? "yes" : "no");
  getrusage(RUSAGE_CHILDREN, &ru);
  printf("RUSAGE_CHILDREN has it: %s\n", tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime) >= 300 ? "yes" : "no");
  struct tms tm;
  clock_t ticks = times(&tm);
  long hz = sysconf(_SC_CLK_TCK);
  printf("times: cutime+cstime at least 300 ms, utime at least 600 ms: %s\n",
         ticks != (clock_t)-1 && (tm.tms_cutime + tm.tms_cstime) * 1000 / hz >= 300 && (tm.tms_utime + tm.tms_stime) * 1000 / hz >= 600 ? "yes" : "no");
  /* /proc/self/stat: fields 14-17 (utime stime cutime cstime), after the ")" of the name. */
  char buf[1024] = { 0 };
  FILE *f = fopen("/proc/self/stat", "r");
  if (f) { if (!fgets(buf, sizeof buf, f)) buf[0] = 0; fclose(f); }
  char *p = strrchr(buf, ')');
  long v[15] = { 0 };
  int n = p ? sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) : 0;
  printf("/proc/self/stat: utime+stime and cutime+cstime: %s\n",
         n == 4 && (v[0] + v[1]) * 1000 / hz >= 600 && (v[2] + v[3]) * 1000 / hz >= 300 ? "yes" : "no");
  return 0;
}
