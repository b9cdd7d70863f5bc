/* Hostile: fork children that each hold a copy of a large, touched heap, until fork fails.
 * argv[1] = MiB to touch. Each child checks that its copy holds the parent's pattern (every page
 * starts with its own index), reports on a pipe, and waits until the parent closes another pipe.
 * Prints "forks=N errno=E" (E = 0 when all 8 forks worked) and "copies ok=N", then ends the
 * children and exits 0. Inside kvmbox all processes' pages together stay within --memory: fork
 * fails with ENOMEM before 8 children of a 64 MiB heap fit in 256 MiB. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 8

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
  size_t size = mib << 20;
  unsigned long *heap = malloc(size);
  if (!heap) { printf("malloc failed\n"); return 2; }
  for (size_t i = 0; i < size / 4096; i++) heap[i * 512] = i;
  int report[2], hold[2];
  if (pipe(report) || pipe(hold)) return 2;
  int forks = 0, err = 0;
  pid_t kids[MAX_CHILDREN];
  for (; forks < MAX_CHILDREN; forks++) {
    pid_t pid = fork();
    if (pid < 0) { err = errno; break; }
    if (pid == 0) {
      close(report[0]);
      close(hold[1]);
      char ok = 1;
      for (size_t i = 0; i < size / 4096; i++) if (heap[i * 512] != i) ok = 0;
      if (write(report[1], &ok, 1) != 1) _exit(3);
      char c;
      (void)!read(hold[0], &c, 1);
      _exit(0);
    }
    kids[forks] = pid;
  }
  close(report[1]);
  close(hold[0]);
  int good = 0;
  for (int i = 0; i < forks; i++) {
    char ok = 0;
    if (read(report[0], &ok, 1) == 1 && ok) good++;
  }
  printf("forks=%d errno=%d\ncopies ok=%d\n", forks, err, good);
  close(hold[1]);
  for (int i = 0; i < forks; i++) waitpid(kids[i], 0, 0);
  return 0;
}
