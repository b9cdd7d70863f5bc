// N getppid system calls (default 20000), made with syscall() so that no libc cache can answer.
// Prints the number of calls, which is the same under every runner (the parent's pid is not).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
  long calls = 0;
  for (long i = 0; i < n; i++) {
    if (syscall(SYS_getppid) >= 0) calls++; // 0 in a sandbox whose parent is outside it
  }
  printf("getppid calls=%ld\n", calls);
  return calls == n ? 0 : 1;
}
