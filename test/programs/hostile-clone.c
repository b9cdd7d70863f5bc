/* Hostile: clone with what kvmbox does not offer (a process sharing memory without vfork,
 * shared file tables or namespaces without a shared address space) must fail cleanly, with an errno; fork and
 * vfork work, and a fork bomb ends at the sandbox's process limit
 * (EAGAIN) with the program still in control. Prints one line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  /* A thread without CLONE_SIGHAND, and a shared address space that is neither a thread nor a
   * vfork: Linux refuses the first (EINVAL); kvmbox refuses both. */
  long r = syscall(SYS_clone, CLONE_VM | CLONE_THREAD, 0, 0, 0, 0);
  printf("thread without CLONE_SIGHAND=%ld errno=%s\n", r, r == -1 ? (errno == EINVAL ? "EINVAL" : "other") : "-");
  r = syscall(SYS_clone, CLONE_VM | SIGCHLD, 0, 0, 0, 0);
  printf("shared memory process=%ld refused=%d\n", r, r == -1);
  r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  printf("namespace clone=%ld ok=%d\n", r, r == -1 && (errno == EINVAL || errno == EPERM));
  long c = syscall(SYS_fork);
  if (c == 0) _exit(5);
  int st = 0;
  long w = waitpid((pid_t)c, &st, 0);
  printf("fork: waited=%d status=%d\n", w == c, WEXITSTATUS(st));
  /* libc's vfork: a raw vfork through syscall() would return into a frame the child then reuses. */
  c = vfork();
  if (c == 0) _exit(6);
  w = waitpid((pid_t)c, &st, 0);
  printf("vfork: waited=%d status=%d\n", w == c, WEXITSTATUS(st));
  if (argc > 1) {
    /* The bomb: children that wait to be killed, until fork fails. */
    int n = 0;
    pid_t kids[4096];
    for (;;) {
      pid_t k = fork();
      if (k < 0) { printf("bomb: stopped by %s after %d children\n", errno == EAGAIN ? "EAGAIN" : "other", n); break; }
      if (k == 0) { pause(); _exit(0); }
      if (n < 4096) kids[n] = k;
      n++;
    }
    for (int i = 0; i < n && i < 4096; i++) kill(kids[i], SIGKILL);
    int reaped = 0;
    while (wait(NULL) > 0) reaped++;
    printf("bomb: reaped %d\n", reaped);
  }
  return 0;
}
