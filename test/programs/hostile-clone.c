/* Hostile: try to create threads and processes. kvmbox runs one thread of one process: each
 * attempt must fail cleanly (an error, not a crash), and the program goes on. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  long r1 = syscall(SYS_clone, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD, 0, 0, 0, 0);
  int e1 = errno;
  long r2 = syscall(SYS_fork);
  int e2 = errno;
  long r3 = syscall(SYS_vfork);
  int e3 = errno;
  printf("clone=%ld/%d fork=%ld/%d vfork=%ld/%d\n", r1, e1, r2, e2, r3, e3);
  return (r1 == -1 && r2 == -1 && r3 == -1) ? 0 : 1;
}
