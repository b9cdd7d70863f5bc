/* Hostile: scribble over the user-mode stub's shared page (its saved registers, directory slots,
 * fd bitmap, mapping pool) between system calls that use it, on kvm_pvm where that page is user
 * memory. Whatever the program does to itself, the host must keep serving it (or end it with a
 * signal) and never fail: kvmbox trusts nothing it reads back from that page.
 *   hostile-stubstate DIR SEED ROUNDS */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SHARED ((volatile unsigned char *)0xe000)
#define SHARED_SIZE 0x2000

static unsigned long rng;
static unsigned long next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const unsigned long nasty[] = {0, 1, 3, 0x7fffffff, 0xffffffff, 0xffffffff80000000ul, 0x7000, 0xe000,
                                      0x100000, 0x400000, 1024, 4096, 0x100000000ul, (unsigned long)-1};

static void scribble(void) {
  int n = (int)(next() % 64) + 1;
  for (int i = 0; i < n; i++) {
    unsigned off = (unsigned)(next() % (0x1000 - 8)) & ~7u; /* the first page: state, not the stub's stack */
    unsigned long v = next() % 3 ? nasty[next() % (sizeof nasty / sizeof *nasty)] : next();
    *(volatile unsigned long *)(SHARED + off) = v;
  }
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  const char *dir = argv[1];
  rng = strtoul(argv[2], 0, 0) | 1;
  int rounds = atoi(argv[3]);
  char path[4096], buf[4096];
  struct stat st;
  for (int r = 0; r < rounds; r++) {
    scribble();
    snprintf(path, sizeof path, "%s/d%lu", dir, next() % 8);
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    scribble();
    if (fd >= 0) {
      syscall(SYS_getdents64, fd, buf, next() % 2 ? sizeof buf : 40);
      scribble();
      fstat(fd, &st);
      scribble();
      close(fd);
    }
    scribble();
    lstat(path, &st);
    void *p = mmap(NULL, 4096 * (1 + next() % 4), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    scribble();
    if (p != MAP_FAILED) munmap(p, 4096);
    scribble();
    close((int)(next() % 64));
  }
  printf("survived\n");
  return 0;
}
