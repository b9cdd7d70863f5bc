/* Signals from outside the sandbox (test/signals-outside.test.ts: kvmbox's CLI receives them, or
 * Sandbox.sendSignal() sends them): handlers for SIGTERM, SIGUSR1, SIGHUP and SIGINT print the
 * signal; SIGTERM then ends the program with status 3. It waits in sigsuspend() (the signals
 * blocked in between, so that none is missed), which nothing inside the sandbox could end. "default" installs no handler, so the first such
 * signal ends it as its default action does. "child" forks a child in the same process group
 * that reports SIGINT too (a group's signal reaches both). "stop" stops its own process group
 * with SIGTSTP, as a program that handles Ctrl-Z itself does, and says when it goes on. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t last;
static void on_signal(int sig) { last = sig; }

static const char *name(int sig) {
  switch (sig) {
  case SIGTERM: return "SIGTERM";
  case SIGUSR1: return "SIGUSR1";
  case SIGHUP: return "SIGHUP";
  case SIGINT: return "SIGINT";
  default: return "?";
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *mode = argc > 1 ? argv[1] : "handle";
  if (strcmp(mode, "default")) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    int sigs[] = { SIGTERM, SIGUSR1, SIGHUP, SIGINT };
    sigset_t block;
    sigemptyset(&block);
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
      sigaction(sigs[i], &sa, NULL);
      sigaddset(&block, sigs[i]);
    }
    sigprocmask(SIG_BLOCK, &block, NULL);
  }
  sigset_t none;
  sigemptyset(&none);
  if (!strcmp(mode, "stop")) {
    printf("stopping\n");
    kill(0, SIGTSTP);
    printf("continued\n");
    return 0;
  }
  pid_t child = -1;
  if (!strcmp(mode, "child")) {
    child = fork();
    if (child == 0) {
      for (;;) {
        sigsuspend(&none);
        if (last) { printf("child got %s\n", name(last)); if (last == SIGTERM) _exit(0); last = 0; }
      }
    }
  }
  printf("ready\n");
  for (;;) {
    sigsuspend(&none);
    int sig = last;
    last = 0;
    if (!sig) continue;
    printf("got %s\n", name(sig));
    if (sig == SIGTERM) {
      if (child > 0) { kill(child, SIGTERM); waitpid(child, NULL, 0); }
      return 3;
    }
  }
}
