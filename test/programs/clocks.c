/* Clocks answered in the guest (vDSO-like) must agree with the host's and with sleeping.
 * Prints realtime (ns) from clock_gettime, gettimeofday and time, and the monotonic time a
 * 100 ms nanosleep took; then checks a bad timespec pointer gives EFAULT. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  struct timespec r, a, b;
  struct timeval tv;
  clock_gettime(CLOCK_REALTIME, &r);
  gettimeofday(&tv, NULL);
  time_t t = time(NULL);
  clock_gettime(CLOCK_MONOTONIC, &a);
  struct timespec nap = { 0, 100 * 1000 * 1000 };
  nanosleep(&nap, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long slept = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
  long efault = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)0xffffffff80020000UL) == -1 && errno == EFAULT;
  long efault2 = syscall(SYS_gettimeofday, (void *)0xffffffff80020000UL, NULL) == -1 && errno == EFAULT;
  printf("realtime_ns=%ld%09ld gtod_us=%ld%06ld time=%ld slept_ns=%ld efault=%ld efault_gtod=%ld\n",
         (long)r.tv_sec, r.tv_nsec, (long)tv.tv_sec, (long)tv.tv_usec, (long)t, slept, efault, efault2);
  return 0;
}
