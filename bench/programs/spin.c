// CPU-bound, no system calls in its loop: argv[1] million rounds of an xorshift, then one line.
// Measures how sandboxes share the host's cores (the concurrency rows of npm run bench).
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  unsigned long rounds = (argc > 1 ? strtoul(argv[1], 0, 10) : 100) * 1000000UL;
  unsigned long x = 88172645463325252UL;
  for (unsigned long i = 0; i < rounds; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  printf("%lu\n", x);
  return 0;
}
