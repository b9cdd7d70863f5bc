/* Threads and the AVX registers: the upper halves of ymm0-ymm15 must survive while other threads
 * run. Each of 4 threads fills them with its own pattern, spins (no memory access, no system call,
 * so only a preemption can switch it), then checks them; 40 rounds each. Prints the count of
 * registers found changed (0 natively); status 1 if any. Needs a CPU with AVX. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 40
static long bad[THREADS];

static void *worker(void *arg) {
  long id = (long)arg;
  for (int r = 0; r < ROUNDS; r++) {
    uint64_t pat[4] = {0x1111111111111111ull * (id + 1), 0x2222222222222222ull + id, 0x3333333333333333ull ^ r, 0x4444444444444444ull * (r + 1)};
    uint64_t out[16][4];
    __asm__ volatile(
      "vmovdqu (%[p]), %%ymm0\n"
      "vmovdqa %%ymm0, %%ymm1\n vmovdqa %%ymm0, %%ymm2\n vmovdqa %%ymm0, %%ymm3\n"
      "vmovdqa %%ymm0, %%ymm4\n vmovdqa %%ymm0, %%ymm5\n vmovdqa %%ymm0, %%ymm6\n vmovdqa %%ymm0, %%ymm7\n"
      "vmovdqa %%ymm0, %%ymm8\n vmovdqa %%ymm0, %%ymm9\n vmovdqa %%ymm0, %%ymm10\n vmovdqa %%ymm0, %%ymm11\n"
      "vmovdqa %%ymm0, %%ymm12\n vmovdqa %%ymm0, %%ymm13\n vmovdqa %%ymm0, %%ymm14\n vmovdqa %%ymm0, %%ymm15\n"
      "mov $1000000, %%rcx\n"
      "1: dec %%rcx\n jnz 1b\n"
      "vmovdqu %%ymm0, 0(%[o])\n vmovdqu %%ymm1, 32(%[o])\n vmovdqu %%ymm2, 64(%[o])\n vmovdqu %%ymm3, 96(%[o])\n"
      "vmovdqu %%ymm4, 128(%[o])\n vmovdqu %%ymm5, 160(%[o])\n vmovdqu %%ymm6, 192(%[o])\n vmovdqu %%ymm7, 224(%[o])\n"
      "vmovdqu %%ymm8, 256(%[o])\n vmovdqu %%ymm9, 288(%[o])\n vmovdqu %%ymm10, 320(%[o])\n vmovdqu %%ymm11, 352(%[o])\n"
      "vmovdqu %%ymm12, 384(%[o])\n vmovdqu %%ymm13, 416(%[o])\n vmovdqu %%ymm14, 448(%[o])\n vmovdqu %%ymm15, 480(%[o])\n"
      "vzeroupper\n"
      : : [p] "r"(pat), [o] "r"(out)
      : "rcx", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    for (int i = 0; i < 16; i++)
      if (memcmp(out[i], pat, 32) != 0) bad[id]++;
  }
  return NULL;
}

int main(void) {
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  long total = 0;
  for (int i = 0; i < THREADS; i++) { pthread_join(t[i], NULL); total += bad[i]; }
  printf("ymm registers changed under a thread: %ld of %d\n", total, THREADS * ROUNDS * 16);
  return total != 0;
}
