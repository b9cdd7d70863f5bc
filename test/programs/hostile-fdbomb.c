/* Hostile: open descriptors until the sandbox refuses. Must end with EMFILE, not a host failure.
 * Prints the number opened; exit 0 when the last error was EMFILE. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  int n = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) {
      printf("opened=%d errno=%s\n", n, strerror(errno));
      return errno == EMFILE ? 0 : 1;
    }
    n++;
    if (n > 1000000) return 2;
  }
}
