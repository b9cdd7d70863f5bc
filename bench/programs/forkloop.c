/* forkloop N PROGRAM [ARG...]: N times fork, execve(PROGRAM, ARGs) in the child and wait4 for it in
 * the parent (issue 15: the cost of one process start, per iteration). Prints the number of
 * iterations and how many children exited 0; exits 1 if any did not. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: forkloop N PROGRAM [ARG...]\n");
    return 2;
  }
  long n = atol(argv[1]);
  long ok = 0;
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("forkloop: fork");
      return 1;
    }
    if (pid == 0) {
      execve(argv[2], argv + 2, environ);
      _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) {
      perror("forkloop: waitpid");
      return 1;
    }
    ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  printf("forkloop iterations=%ld ok=%ld\n", n, ok);
  return ok == n ? 0 : 1;
}
