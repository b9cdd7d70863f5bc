/* Writes to stdout and stderr as the user-mode stub may buffer them when the host only captures
 * them (kernel/stub.S write_fast): the bytes, their order on each stream, EFAULT for a bad
 * buffer, large writes, writev through the host in between, and output written just before a
 * crash must all come out as on Linux. argv[1] = "crash": end with SIGSEGV. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char line[64];
  for (int i = 0; i < 2000; i++) {
    int n = snprintf(line, sizeof line, "line %d\n", i);
    if (write(1, line, n) != n) return 2;
    if (i % 100 == 0) {
      n = snprintf(line, sizeof line, "err %d\n", i);
      if (write(2, line, n) != n) return 3;
    }
    if (i % 500 == 0) {
      struct iovec v[2] = {{"vec ", 4}, {"write\n", 6}};
      if (writev(1, v, 2) != 10) return 4;
    }
  }
  errno = 0;
  long r = write(1, (void *)16, 10);
  printf("bad buffer: %ld %s\n", r, strerror(errno));
  fflush(stdout);
  static char big[200000];
  memset(big, 'B', sizeof big - 1);
  big[sizeof big - 1] = '\n';
  if (write(1, big, sizeof big) != (long)sizeof big) return 5;
  if (write(1, "", 0) != 0) return 6;
  if (write(1, "last\n", 5) != 5) return 7;
  if (argc > 1 && strcmp(argv[1], "crash") == 0) *(volatile int *)8 = 1;
  return 0;
}
