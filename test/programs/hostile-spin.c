/* Hostile: never ends. argv[1]: spin (a user-mode loop with no system calls), sleep (a very long
 * nanosleep), futex (a FUTEX_WAIT with a very long timeout, that nothing wakes), or write (output
 * forever). The sandbox's limits must stop it. */
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "spin";
  if (!strcmp(mode, "sleep")) {
    struct timespec ts = { 1000000, 0 };
    nanosleep(&ts, 0);
    return 0;
  }
  if (!strcmp(mode, "futex")) {
    static int word;
    enum { FUTEX_WAIT = 0 }; /* musl has no <linux/futex.h> */
    struct timespec ts = { 1000000, 0 };
    syscall(SYS_futex, &word, FUTEX_WAIT, 0, &ts, 0, 0);
    return 0;
  }
  if (!strcmp(mode, "write")) {
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    for (;;) write(1, buf, sizeof buf);
  }
  volatile unsigned long i = 0;
  for (;;) i++;
}
