/* Hostile: unknown and out-of-range system-call numbers. Each must return ENOSYS. */
#include <errno.h>
#include <stdio.h>

static long raw(long nr) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(nr) : "rcx", "r11", "memory");
  return r;
}

int main(void) {
  long nrs[] = { -1, 335, 450, 511, 512, 1000, 0x7fffffff, 0x80000000L, 0xffffffffL, -4096 };
  int failures = 0;
  for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
    long r = raw(nrs[i]);
    if (r != -ENOSYS) { printf("FAIL nr=%ld r=%ld\n", nrs[i], r); failures++; }
    else printf("ok nr=%ld\n", nrs[i]);
  }
  printf("failures=%d\n", failures);
  return failures;
}
