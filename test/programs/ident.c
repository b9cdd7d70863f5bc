/* The process and thread as the program sees them: pid, tid, ppid (libc and raw system calls),
 * process group and session, the name (prctl PR_SET_NAME/PR_GET_NAME), a signal action and the
 * signal mask. argv[1], if given, is the name to set. Used by test/process.test.ts. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char **argv) {
  printf("pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
  printf("raw pid=%ld tid=%ld ppid=%ld\n", syscall(SYS_getpid), syscall(SYS_gettid), syscall(SYS_getppid));
  int tid_word = 0;
  printf("set_tid_address=%ld\n", syscall(SYS_set_tid_address, &tid_word));
  printf("pgrp=%d sid=%d\n", (int)getpgrp(), (int)getsid(0));

  char name[16] = {0};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  printf("comm0=%s\n", name);
  if (argc > 1) {
    prctl(PR_SET_NAME, argv[1], 0, 0, 0);
    memset(name, 0, sizeof name);
    prctl(PR_GET_NAME, name, 0, 0, 0);
    printf("comm1=%s\n", name);
  }

  struct sigaction sa, old;
  sigaction(SIGUSR1, NULL, &old);
  printf("usr1-before=%s\n", old.sa_handler == SIG_DFL ? "default" : "set");
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR1, NULL, &old);
  printf("usr1-after=%s\n", old.sa_handler == on_usr1 ? "handler" : "other");

  sigset_t block, now;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  sigprocmask(SIG_BLOCK, &block, NULL);
  sigprocmask(SIG_BLOCK, NULL, &now);
  printf("usr2-blocked=%d\n", sigismember(&now, SIGUSR2));
  return 0;
}
