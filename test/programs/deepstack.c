/* Recurses through KIB kibibytes of stack (argv[1]) and says it came back: a stack larger than
 * RLIMIT_STACK's soft limit at the exec ends in SIGSEGV, as on Linux. Prints the limit it was
 * started with, in KiB ("unlimited" for RLIM_INFINITY). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static long down(long kib) {
  volatile char frame[1024];
  frame[0] = (char)kib;
  if (kib <= 1) return frame[0];
  return down(kib - 1) + frame[0];
}

int main(int argc, char **argv) {
  struct rlimit rl;
  getrlimit(RLIMIT_STACK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY) printf("limit unlimited\n");
  else printf("limit %llu KiB\n", (unsigned long long)rl.rlim_cur / 1024);
  fflush(stdout);
  long kib = argc > 1 ? atol(argv[1]) : 1;
  long r = down(kib);
  printf("came back from %ld KiB (%ld)\n", kib, r & 1);
  return 0;
}
