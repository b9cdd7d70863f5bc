/* Keys one at a time from a terminal (test/terminal.test.ts runs it on a pseudo-terminal,
 * natively and in kvmbox): non-canonical mode without echo set with tcsetattr, as editors and
 * line editors do, and Ctrl-C still a signal (ISIG), caught by a handler that ends the wait
 * (ppoll) with EINTR. 'q' ends it. With the argument "leave" it exits without putting the modes
 * back (kvmbox must put them back itself). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_signal(int sig) { got = sig; }

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct termios before, raw, now;
  if (tcgetattr(0, &before)) { perror("tcgetattr"); return 1; }
  raw = before;
  raw.c_lflag &= ~(ICANON | ECHO);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (tcsetattr(0, TCSAFLUSH, &raw)) { perror("tcsetattr"); return 1; }
  if (tcgetattr(0, &now)) { perror("tcgetattr"); return 1; }
  printf("non-canonical, no echo: %s\n", (now.c_lflag & (ICANON | ECHO)) == 0 && (now.c_lflag & ISIG) ? "yes" : "no");
  printf("speed kept: %s\n", cfgetospeed(&now) == cfgetospeed(&before) ? "yes" : "no");
  /* SIGINT is blocked except inside ppoll, so that one arriving between two waits is not lost. */
  sigset_t block, during;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &during);
  sigdelset(&during, SIGINT);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  printf("tcdrain: %s\n", tcdrain(1) == 0 ? "ok" : strerror(errno));
  printf("ready\n");
  for (;;) {
    struct pollfd pfd = { .fd = 0, .events = POLLIN };
    if (ppoll(&pfd, 1, NULL, &during) < 0) {
      if (errno != EINTR) { perror("ppoll"); return 1; }
      printf("wait: EINTR after signal %d\n", (int)got);
      continue;
    }
    char c;
    if (read(0, &c, 1) != 1) break;
    printf("key %d\n", c);
    if (c == 'q') break;
  }
  if (argc > 1 && !strcmp(argv[1], "leave")) return 4;
  if (tcsetattr(0, TCSANOW, &before)) { perror("tcsetattr"); return 1; }
  return 0;
}
