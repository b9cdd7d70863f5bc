/* A background process group and its terminal (SIGTTOU; test/terminal.test.ts runs it on a
 * pseudo-terminal, natively and in kvmbox). Run in the terminal's foreground group, it makes a
 * child in a group of its own and has it:
 *   1. tcsetattr: the child is stopped by SIGTTOU; given the terminal and continued, the call
 *      goes through;
 *   2. write with the terminal's TOSTOP mode set: stopped by SIGTTOU, and the write goes through
 *      once the child is in the foreground;
 *   3. tcsetattr with SIGTTOU ignored, and 4. blocked: it goes through at once;
 *   5. write without TOSTOP: it goes through at once.
 * The parent reports how each child stopped or ended, and gives the terminal back to itself with
 * SIGTTOU blocked, as shells do. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void child(int which, const struct termios *modes) {
  setpgid(0, 0);
  if (which == 3) signal(SIGTTOU, SIG_IGN);
  if (which == 4) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTTOU);
    sigprocmask(SIG_BLOCK, &s, NULL);
  }
  char line[64];
  if (which == 2 || which == 5) {
    snprintf(line, sizeof line, "case %d: child wrote\n", which);
    if (write(1, line, strlen(line)) < 0) _exit(2);
  } else {
    int r = tcsetattr(0, TCSANOW, modes);
    snprintf(line, sizeof line, "case %d: child's tcsetattr %d\n", which, r);
    if (write(1, line, strlen(line)) < 0) _exit(2);
  }
  _exit(0);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct termios modes;
  if (tcgetattr(0, &modes) != 0) { perror("tcgetattr"); return 1; }
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  for (int which = 1; which <= 5; which++) {
    struct termios use = modes;
    if (which == 2) use.c_lflag |= TOSTOP;
    if (tcsetattr(0, TCSANOW, &use) != 0) { perror("tcsetattr"); return 1; }
    pid_t pid = fork();
    if (pid == 0) child(which, &use);
    setpgid(pid, pid);
    int st;
    waitpid(pid, &st, WUNTRACED);
    if (WIFSTOPPED(st)) {
      printf("case %d: child stopped by %s\n", which, WSTOPSIG(st) == SIGTTOU ? "SIGTTOU" : strsignal(WSTOPSIG(st)));
      tcsetpgrp(0, pid);
      kill(pid, SIGCONT);
      waitpid(pid, &st, 0);
      sigprocmask(SIG_BLOCK, &ttou, &old);
      int r = tcsetpgrp(0, getpgrp());
      sigprocmask(SIG_SETMASK, &old, NULL);
      printf("case %d: terminal back: %d\n", which, r);
    }
    if (WIFEXITED(st)) printf("case %d: child exited %d\n", which, WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) printf("case %d: child killed by %d\n", which, WTERMSIG(st));
  }
  if (tcsetattr(0, TCSANOW, &modes) != 0) { perror("tcsetattr"); return 1; }
  printf("done\n");
  return 0;
}
