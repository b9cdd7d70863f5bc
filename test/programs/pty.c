/* Pseudo-terminals (test/terminal.test.ts compares this with its native run): posix_openpt,
 * grantpt, unlockpt, ptsname and the slave's ttyname; the line discipline between the ends
 * (CR to NL and echo of the master's input, NL to CR NL of the slave's output, erase in
 * canonical mode, ^D at a line's start as end of file, raw mode, VMIN 0); a child that makes the slave
 * its controlling terminal (setsid, TIOCSCTTY) gets SIGINT from ^C and SIGWINCH from a new window
 * size; a session leader's exit hanging up its terminal's foreground group; openpty; and the
 * master reading EIO once the slaves are closed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Read the master into all until text has arrived (at most 5 s): the bytes read. */
static size_t gather(int master, const char *text, char *all, size_t size) {
  size_t n = 0;
  all[0] = 0;
  while (!strstr(all, text) && n < size - 1) {
    struct pollfd pfd = {master, POLLIN, 0};
    if (poll(&pfd, 1, 5000) <= 0) break;
    ssize_t r = read(master, all + n, size - 1 - n);
    if (r <= 0) break;
    n += r;
    all[n] = 0;
  }
  return n;
}

/* Read the master until text has arrived, and print what came, escaped. */
static void expect(int master, const char *what, const char *text) {
  char all[4096];
  size_t n = gather(master, text, all, sizeof all);
  printf("%s: ", what);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = all[i];
    if (c == '\r') printf("\\r");
    else if (c == '\n') printf("\\n");
    else if (c < 32 || c == 127) printf("\\x%02x", c);
    else putchar(c);
  }
  printf("\n");
}

/* Read the master until text has arrived, and say only whether it did. */
static void expect_line(int master, const char *what, const char *text) {
  char all[4096];
  gather(master, text, all, sizeof all);
  printf("%s: %s\n", what, strstr(all, text) ? "got it" : "missing");
}

static void slave_read(int slave, const char *what) {
  char buf[256];
  ssize_t r = read(slave, buf, sizeof buf - 1);
  if (r < 0) { printf("%s: %s\n", what, strerror(errno)); return; }
  buf[r] = 0;
  printf("%s: %zd [", what, r);
  for (ssize_t i = 0; i < r; i++) { if (buf[i] == '\n') printf("\\n"); else if (buf[i] == '\r') printf("\\r"); else putchar(buf[i]); }
  printf("]\n");
}

static volatile sig_atomic_t got;
static void on_signal(int sig) { got = sig; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) { perror("posix_openpt"); return 1; }
  printf("grantpt %d unlockpt %d\n", grantpt(master), unlockpt(master));
  char name[64];
  snprintf(name, sizeof name, "%s", ptsname(master));
  printf("ptsname is /dev/pts/N: %d\n", strncmp(name, "/dev/pts/", 9) == 0);
  int slave = open(name, O_RDWR | O_NOCTTY);
  printf("slave open: %d, isatty %d %d, ttyname matches %d\n", slave >= 0, isatty(master), isatty(slave), strcmp(ttyname(slave), name) == 0);

  if (write(master, "hello\r", 6) != 6) perror("write");
  slave_read(slave, "slave read");
  expect(master, "echo", "\n");
  if (write(slave, "out\n", 4) != 4) perror("write");
  expect(master, "slave's output", "\n");
  if (write(master, "abx\x7f" "c\n", 6) != 6) perror("write");
  slave_read(slave, "after erase");
  expect(master, "echo of erase", "c\r\n");
  if (write(master, "\x04", 1) != 1) perror("write");
  slave_read(slave, "EOF at line start");
  if (write(master, "part\x04", 5) != 5) perror("write");
  slave_read(slave, "EOF after part of a line");
  expect(master, "echo of that part", "part");

  struct termios t, raw;
  tcgetattr(slave, &t);
  printf("new pty: ICANON %d ECHO %d ISIG %d ICRNL %d ONLCR %d VINTR %d\n", !!(t.c_lflag & ICANON), !!(t.c_lflag & ECHO),
         !!(t.c_lflag & ISIG), !!(t.c_iflag & ICRNL), !!(t.c_oflag & ONLCR), t.c_cc[VINTR]);
  raw = t;
  cfmakeraw(&raw);
  tcsetattr(slave, TCSANOW, &raw);
  if (write(master, "k\r", 2) != 2) perror("write");
  slave_read(slave, "raw read");
  if (write(slave, "x\n", 2) != 2) perror("write");
  expect(master, "raw output (no echo before it)", "\n");
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  tcsetattr(slave, TCSANOW, &raw);
  char none[4];
  ssize_t got_none = read(slave, none, sizeof none);
  printf("VMIN 0, nothing typed: %zd\n", got_none);
  tcsetattr(slave, TCSANOW, &t);

  pid_t pid = fork();
  if (pid == 0) {
    close(master);
    setsid();
    if (ioctl(slave, TIOCSCTTY, 0) != 0) { perror("TIOCSCTTY"); _exit(1); }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    int tty = open("/dev/tty", O_RDWR);
    char line[128];
    snprintf(line, sizeof line, "child: /dev/tty %d, foreground is mine %d\n", tty >= 0, tcgetpgrp(slave) == getpid());
    if (write(slave, line, strlen(line)) < 0) _exit(2);
    while (!got) usleep(1000);
    snprintf(line, sizeof line, "child: signal %d\n", (int)got);
    got = 0;
    if (write(slave, line, strlen(line)) < 0) _exit(2);
    while (!got) usleep(1000);
    struct winsize ws;
    ioctl(tty, TIOCGWINSZ, &ws);
    snprintf(line, sizeof line, "child: signal %d, size %dx%d\n", (int)got, ws.ws_row, ws.ws_col);
    if (write(slave, line, strlen(line)) < 0) _exit(2);
    _exit(0);
  }
  expect(master, "child's first line", "mine 1\r\n");
  if (write(master, "\x03", 1) != 1) perror("write");
  /* Whether the ^C echo reaches the master depends on the kernel (the signal flushes the
   * output queue around it): only the child's line is compared. */
  expect_line(master, "after ^C", "child: signal 2\r\n");
  struct winsize ws = {30, 100, 0, 0};
  ioctl(master, TIOCSWINSZ, &ws);
  expect(master, "after the new size", "100\r\n");
  int st;
  waitpid(pid, &st, 0);
  printf("child exited %d\n", WEXITSTATUS(st));

  close(slave);
  char buf[16];
  ssize_t r = read(master, buf, sizeof buf);
  printf("master read with no slave open: %zd %s\n", r, r < 0 ? strerror(errno) : "");
  close(master);

  /* A session leader's exit hangs up its terminal's foreground group: its child there gets
   * SIGHUP (this process waits for it as their subreaper). */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int m3 = posix_openpt(O_RDWR | O_NOCTTY);
  grantpt(m3);
  unlockpt(m3);
  pid_t leader = fork();
  if (leader == 0) {
    setsid();
    if (open(ptsname(m3), O_RDWR) < 0) _exit(1);
    if (fork() == 0) {
      for (;;) pause();
    }
    _exit(0);
  }
  waitpid(leader, &st, 0);
  pid_t orphan = waitpid(-1, &st, 0);
  printf("the leader's child, reaped %d: ended by signal %d\n", orphan > 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  close(m3);

  int m2, s2;
  printf("openpty: %d\n", openpty(&m2, &s2, NULL, NULL, NULL));
  if (write(s2, "via openpty\n", 12) != 12) perror("write");
  expect(m2, "openpty output", "\n");
  return 0;
}
