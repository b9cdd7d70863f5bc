/* Hostile: ask for more memory than the sandbox has. Must fail with ENOMEM/NULL and the program
 * keeps running. argv[1]: malloc (touch 1 MiB chunks until NULL), mmap (huge and repeated
 * mappings), brk (grow the break until it stops), reserve (a PROT_NONE reservation far larger
 * than the memory, made accessible 8 MiB at a time until mprotect refuses), readonly (a 4 GiB
 * PROT_READ mapping, as Starlark makes: granted, as Linux does not charge pages never writable;
 * reading 128 MiB of it, also in a fork's child, gives the host nothing to hold; made writable
 * 8 MiB at a time until mprotect refuses). Exit 0 on the expected refusal. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "malloc";
  size_t total = 0;
  if (!strcmp(mode, "malloc")) {
    for (;;) {
      char *p = malloc(1 << 20);
      if (!p) break;
      memset(p, 0x5a, 1 << 20);
      total += 1 << 20;
      if (total > (64UL << 30)) return 2;
    }
  } else if (!strcmp(mode, "mmap")) {
    void *huge = mmap(NULL, 1UL << 40, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (huge != MAP_FAILED || errno != ENOMEM) { printf("huge mmap: %p errno=%d\n", huge, errno); return 3; }
    for (;;) {
      void *p = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) { if (errno != ENOMEM) return 4; break; }
      total += 64 << 20;
      if (total > (64UL << 30)) return 2;
    }
  } else if (!strcmp(mode, "reserve")) {
    size_t span = 2UL << 30, step = 8 << 20;
    char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) { printf("reserve: errno=%d\n", errno); return 5; }
    if (mprotect(r, span, PROT_READ | PROT_WRITE) == 0 || errno != ENOMEM) { printf("whole mprotect: errno=%d\n", errno); return 6; }
    while (total + step <= span) {
      if (mprotect(r + total, step, PROT_READ | PROT_WRITE)) { if (errno != ENOMEM) return 7; break; }
      memset(r + total, 0x5a, step);
      total += step;
    }
    /* PROT_NONE keeps the bytes, so it keeps their memory: still no room. */
    if (mprotect(r, total, PROT_NONE)) return 8;
    if (mprotect(r + total, step, PROT_READ | PROT_WRITE) == 0) { printf("PROT_NONE gave the memory back\n"); return 9; }
    if (mprotect(r, step, PROT_READ) || r[step - 1] != 0x5a) { printf("bytes lost under PROT_NONE\n"); return 10; }
    /* munmap does give it back. */
    if (munmap(r, span)) return 11;
    char *p = mmap(NULL, 32 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { printf("after munmap: errno=%d\n", errno); return 12; }
    memset(p, 1, 32 << 20);
  } else if (!strcmp(mode, "readonly")) {
    size_t span = 4UL << 30, step = 8 << 20, probe = 128UL << 20;
    volatile char *r = mmap(NULL, span, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) { printf("readonly mmap: errno=%d\n", errno); return 13; }
    unsigned sum = 0;
    for (size_t o = 0; o < probe; o += 4096) sum += r[o];
    pid_t pid = fork();
    if (pid == 0) {
      unsigned s = 0;
      for (size_t o = 0; o < probe; o += 4096) s += r[o];
      _exit(s != 0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || sum || !WIFEXITED(st) || WEXITSTATUS(st)) { printf("readonly: not zeros\n"); return 14; }
    if (mprotect((char *)r, span, PROT_READ | PROT_WRITE) == 0 || errno != ENOMEM) { printf("whole mprotect: errno=%d\n", errno); return 15; }
    while (total + step <= span) {
      if (mprotect((char *)r + total, step, PROT_READ | PROT_WRITE)) { if (errno != ENOMEM) return 7; break; }
      if (r[total + step - 1]) return 16;
      memset((char *)r + total, 0x5a, step);
      total += step;
    }
  } else {
    unsigned long start = syscall(SYS_brk, 0), cur = start;
    for (;;) {
      unsigned long want = cur + (16 << 20);
      unsigned long got = syscall(SYS_brk, want);
      if (got != want) break;
      cur = got;
      if (cur - start > (64UL << 30)) return 2;
    }
    total = cur - start;
  }
  printf("%s refused after %zu MiB\n", mode, total >> 20);
  return 0;
}
