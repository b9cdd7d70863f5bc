/* Hostile: never ends. argv[1]: spin (a user-mode loop with no system calls), sleep (a very long
 * nanosleep), or write (output forever). The sandbox's limits must stop it. */
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "spin";
  if (!strcmp(mode, "sleep")) {
    struct timespec ts = { 1000000, 0 };
    nanosleep(&ts, 0);
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
