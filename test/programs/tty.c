/* The terminal as a program on it sees it: run with the standard streams on a terminal
 * (test/terminal.test.ts runs it on a pseudo-terminal, natively and in kvmbox). ttyname, /dev/tty,
 * the session and the foreground process group (tcgetpgrp, tcsetpgrp, tcgetsid), what a shell
 * with job control does with them, and ENOTTY after setsid. Prints no pids and no device names. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const char *ename(int e) {
  switch (e) {
  case 0: return "ok";
  case ENOTTY: return "ENOTTY";
  case EPERM: return "EPERM";
  case EINVAL: return "EINVAL";
  case ESRCH: return "ESRCH";
  default: return strerror(e);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("isatty: %d %d %d\n", isatty(0), isatty(1), isatty(2));
  const char *name = ttyname(0);
  printf("ttyname: %s\n", name && !strncmp(name, "/dev/", 5) ? "a /dev path" : name ? name : strerror(errno));
  struct stat a, b;
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
  printf("/dev/tty opens: %s\n", fd >= 0 ? "yes" : strerror(errno));
  printf("ttyname's file is stdin's: %s\n", name && stat(name, &a) == 0 && fstat(0, &b) == 0 && a.st_rdev == b.st_rdev && a.st_ino == b.st_ino ? "yes" : "no");
  printf("a character device: %s\n", fstat(0, &b) == 0 && S_ISCHR(b.st_mode) ? "yes" : "no");
  printf("foreground group is ours: %s\n", tcgetpgrp(0) == getpgrp() ? "yes" : "no");
  printf("session is ours: %s\n", tcgetsid(0) == getsid(0) ? "yes" : "no");
  printf("tcsetpgrp to our group: %s\n", ename(tcsetpgrp(0, getpgrp()) < 0 ? errno : 0));
  printf("tcsetpgrp to no group: %s\n", ename(tcsetpgrp(0, 999999) < 0 ? errno : 0));
  /* What a shell with job control does: a child in a group of its own gets the terminal, then
     the shell takes it back. SIGTTOU is ignored, as shells do, so that setting it from the
     background does not stop us. */
  signal(SIGTTOU, SIG_IGN);
  int go[2];
  if (pipe(go)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    printf("child: foreground group is the child's: %s\n", tcgetpgrp(0) == getpgrp() ? "yes" : "no");
    _exit(0);
  }
  setpgid(pid, pid);
  printf("tcsetpgrp to the child's group: %s\n", ename(tcsetpgrp(0, pid) < 0 ? errno : 0));
  if (write(go[1], "g", 1) != 1) return 1;
  int st;
  waitpid(pid, &st, 0);
  int back = tcsetpgrp(0, getpgrp()) < 0 ? errno : 0;
  printf("tcsetpgrp back: %s, foreground group is ours again: %s\n", ename(back), tcgetpgrp(0) == getpgrp() ? "yes" : "no");
  /* A process in a session of its own has no controlling terminal. */
  pid = fork();
  if (pid == 0) {
    setsid();
    printf("after setsid: tcgetpgrp %s\n", ename(tcgetpgrp(0) < 0 ? errno : 0));
    _exit(0);
  }
  waitpid(pid, &st, 0);
  struct termios t;
  printf("tcgetattr: %s\n", ename(tcgetattr(0, &t) < 0 ? errno : 0));
  return 0;
}
