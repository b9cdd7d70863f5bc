// N system calls that no one but the host can answer (number 500: ENOSYS), timed inside the
// program. Prints the mean cost of one in nanoseconds: under kvmbox, one exit to the host and back.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) syscall(500);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
  printf("nullcall n=%ld ns_per_call=%.0f\n", n, n > 0 ? ns / (double)n : 0.0);
  return 0;
}
