// The guest side of the copy-on-write fault measurement (bench/fork-costs.ts): maps N pages
// read-only, then writes one byte to each and times it (under bench/fork-costs the host answers
// each write fault by making the page writable after a 4 KiB copy, and the write is retried), then
// writes them all again (no faults now) and times that. Prints both per page in nanoseconds: the
// difference is one copy-on-write fault round trip. Natively, or in kvmbox without the bench's
// handler, the first write kills the program with SIGSEGV.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 256;
  if (n < 1) return 2;
  volatile char *p = mmap(NULL, (size_t)n * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  double a = now_ns();
  for (long i = 0; i < n; i++) p[i * 4096] = 1;
  double b = now_ns();
  for (long i = 0; i < n; i++) p[i * 4096] = 2;
  double c = now_ns();
  printf("cowtouch n=%ld fault_ns_per_page=%.0f write_ns_per_page=%.0f\n", n, (b - a) / (double)n, (c - b) / (double)n);
  return 0;
}
