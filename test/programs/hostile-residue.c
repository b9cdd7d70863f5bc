/* Hostile: look for what a previous program left in a reused VM. argv[1] = "write": fill the heap,
 * an mmap region, the stack and the vector registers with a marker, and use the stack deeper
 * than it starts. "check": look for the marker in the same places and in xmm/ymm registers at
 * start, and hand that deep stack to a system call: the previous program's translations must be
 * gone, so that this one faults its stack in as on a fresh machine and the host knows the pages
 * are mapped (with a stale translation it used them unseen, and the host refused them: EFAULT).
 * Exit 0 when nothing is found. "fork-exec": write, then fork a child that execs this program
 * with "check" (an execve inside the sandbox must leave the new program nothing of the old one
 * either), and check that the parent's own pages still hold the marker when it runs again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARK 0x5ec12e75ec12e75eULL
#define SIZE (4 << 20)
/* Deeper than the stack kvmbox maps at start (128 KiB, src/linux/exec.ts): grown on a fault. */
#define DEEP (512 << 10)

static int regs_clean(void) {
  unsigned long long v[4 * 16] = {0};
  __asm__ volatile(
    "vmovdqu %%ymm0, 0(%0)\n vmovdqu %%ymm1, 32(%0)\n vmovdqu %%ymm2, 64(%0)\n vmovdqu %%ymm3, 96(%0)\n"
    "vmovdqu %%ymm4, 128(%0)\n vmovdqu %%ymm5, 160(%0)\n vmovdqu %%ymm6, 192(%0)\n vmovdqu %%ymm7, 224(%0)\n"
    "vmovdqu %%ymm8, 256(%0)\n vmovdqu %%ymm9, 288(%0)\n vmovdqu %%ymm10, 320(%0)\n vmovdqu %%ymm11, 352(%0)\n"
    "vmovdqu %%ymm12, 384(%0)\n vmovdqu %%ymm13, 416(%0)\n vmovdqu %%ymm14, 448(%0)\n vmovdqu %%ymm15, 480(%0)\n"
    :: "r"(v) : "memory");
  for (int i = 0; i < 64; i++) if (v[i] == MARK) return 0;
  return 1;
}

static void regs_fill(void) {
  unsigned long long m[4] = { MARK, MARK, MARK, MARK };
  __asm__ volatile(
    "vmovdqu (%0), %%ymm0\n vmovdqu (%0), %%ymm1\n vmovdqu (%0), %%ymm7\n vmovdqu (%0), %%ymm15\n"
    :: "r"(m) : "xmm0", "xmm1", "xmm7", "xmm15");
}

static int scan(unsigned long long *p, size_t n) {
  for (size_t i = 0; i < n / 8; i++) if (p[i] == MARK) return 1;
  return 0;
}

/* Touch the lowest page of a deep frame; when checking, have the host write into it: 0, or errno. */
static __attribute__((noinline)) int deep_stack(int check) {
  volatile char deep[DEEP];
  deep[0] = 1;
  if (!check) return 0;
  return getcwd((char *)deep, 64) ? 0 : errno;
}

int main(int argc, char **argv) {
  int avx = __builtin_cpu_supports("avx");
  int clean = avx ? regs_clean() : 1;
  int check = argc > 1 && !strcmp(argv[1], "check");
  unsigned long long *heap = malloc(SIZE);
  unsigned long long *map = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned long long stack[8192];
  if (check) {
    int found = 0;
    if (scan(heap, SIZE)) { printf("marker in heap\n"); found = 1; }
    if (scan(map, SIZE)) { printf("marker in mmap\n"); found = 1; }
    if (scan(stack, sizeof stack)) { printf("marker on stack\n"); found = 1; }
    if (!clean) { printf("marker in vector registers\n"); found = 1; }
    int deep = deep_stack(1);
    if (deep) { printf("deep stack refused by the host: errno %d\n", deep); found = 1; }
    printf("heap=%p map=%p stack=%p found=%d\n", (void *)heap, (void *)map, (void *)stack, found);
    return found;
  }
  for (size_t i = 0; i < SIZE / 8; i++) heap[i] = map[i] = MARK;
  for (size_t i = 0; i < 8192; i++) stack[i] = MARK;
  __asm__ volatile("" :: "r"(stack) : "memory");
  deep_stack(0);
  if (avx) regs_fill();
  printf("heap=%p map=%p stack=%p written\n", (void *)heap, (void *)map, (void *)stack);
  if (argc > 1 && !strcmp(argv[1], "fork-exec")) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      execl(argv[0], argv[0], "check", (char *)0);
      _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return 2;
    int intact = 1;
    for (size_t i = 0; i < SIZE / 8; i++) if (heap[i] != MARK || map[i] != MARK) intact = 0;
    for (size_t i = 0; i < 8192; i++) if (stack[i] != MARK) intact = 0;
    printf("parent's pages %s; child status %d\n", intact ? "intact" : "CHANGED", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return !intact || st != 0;
  }
  return 0;
}
