/* AVX state across signal handlers (test/signals.test.ts compares this with its native run).
 * A handler may use every vector register; the interrupted code must find its YMM registers
 * whole when the handler returns, whether the signal came at a system call (kill to itself) or
 * at any instruction (another thread's tgkill while a loop checks its registers). The frame holds
 * the XSAVE image as Linux writes it: UC_FP_XSTATE in uc_flags, FP_XSTATE_MAGIC1 in the software
 * bytes of the FXSAVE area, FP_XSTATE_MAGIC2 after the image. Go's preemption signals and glibc's
 * AVX memcpy need this. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef UC_FP_XSTATE
#define UC_FP_XSTATE 1
#endif
#ifndef FP_XSTATE_MAGIC1
#define FP_XSTATE_MAGIC1 0x46505853u
#endif
#ifndef FP_XSTATE_MAGIC2
#define FP_XSTATE_MAGIC2 0x46505845u
#endif

static int have_avx(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0; /* OSXSAVE, AVX */
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 6) == 6;
}

static volatile int frame_flag, frame_magic1, frame_magic2, frame_size_ok;
static atomic_int handled;

static void handler(int sig, siginfo_t *si, void *ucp) {
  (void)sig;
  (void)si;
  ucontext_t *uc = ucp;
  const char *fp = (const char *)uc->uc_mcontext.fpregs;
  frame_flag = (uc->uc_flags & UC_FP_XSTATE) != 0;
  const unsigned *sw = (const unsigned *)(fp + 464);
  frame_magic1 = sw[0] == FP_XSTATE_MAGIC1;
  if (frame_magic1) {
    unsigned size = sw[4];
    frame_size_ok = sw[1] == size + 4 && size >= 576 + 256;
    frame_magic2 = *(const unsigned *)(fp + size) == FP_XSTATE_MAGIC2;
  }
  /* Use the vector registers the interrupted code holds values in. */
  __asm__ volatile("vpcmpeqb %%ymm0, %%ymm0, %%ymm0\n\tvpcmpeqb %%ymm2, %%ymm2, %%ymm2\n\tvpxor %%ymm3, %%ymm3, %%ymm3"
                   ::: "xmm0", "xmm2", "xmm3");
  atomic_fetch_add(&handled, 1);
}

/* Return from a handler through a frame whose FPU state XRSTOR refuses: Linux kills with SIGSEGV. */
static int corrupt_what;
static void corrupting(int sig, siginfo_t *si, void *ucp) {
  (void)sig;
  (void)si;
  char *fp = (char *)((ucontext_t *)ucp)->uc_mcontext.fpregs;
  if (corrupt_what == 0) *(unsigned long long *)(fp + 520) = 1;           /* XCOMP_BV */
  else if (corrupt_what == 1) *(unsigned long long *)(fp + 512) |= 1ull << 62; /* XSTATE_BV: no such state */
  else *(unsigned *)(fp + 24) |= 1u << 20;                               /* MXCSR: a reserved bit */
}

static unsigned char pattern[32] __attribute__((aligned(32)));
static atomic_int stop;
static pid_t main_tid;

static void *sender(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    syscall(SYS_tgkill, getpid(), main_tid, SIGUSR2);
    usleep(2000);
  }
  return NULL;
}

/* n rounds that each compare ymm2 and ymm3 (loaded from pattern once) with pattern: mismatches seen. */
static int check_loop(long n) {
  int bad;
  __asm__ volatile(
      "vmovdqa %[p], %%ymm2\n\t"
      "vmovdqa %[p], %%ymm3\n\t"
      "xor %[bad], %[bad]\n\t"
      "1:\n\t"
      "vpcmpeqb %[p], %%ymm2, %%ymm4\n\t"
      "vpcmpeqb %[p], %%ymm3, %%ymm5\n\t"
      "vpand %%ymm4, %%ymm5, %%ymm4\n\t"
      "vpmovmskb %%ymm4, %%eax\n\t"
      "cmp $-1, %%eax\n\t"
      "je 2f\n\t"
      "inc %[bad]\n\t"
      "vmovdqa %[p], %%ymm2\n\t"
      "vmovdqa %[p], %%ymm3\n\t"
      "2:\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [bad] "=&r"(bad), [n] "+r"(n)
      : [p] "m"(pattern)
      : "rax", "xmm2", "xmm3", "xmm4", "xmm5", "cc");
  return bad;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!have_avx()) {
    printf("no AVX\n");
    return 0;
  }
  if (argc > 1) {
    /* corrupt N: the handler spoils its frame's FPU state (0 XCOMP_BV, 1 XSTATE_BV, 2 MXCSR;
     * Linux 6.1 clears MXCSR's reserved bits, later kernels kill). */
    corrupt_what = argv[2] ? argv[2][0] - '0' : 0;
    struct sigaction c;
    memset(&c, 0, sizeof c);
    c.sa_sigaction = corrupting;
    c.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &c, NULL);
    raise(SIGUSR1);
    printf("survived a corrupt frame\n");
    return 0;
  }
  for (int i = 0; i < 32; i++) pattern[i] = (unsigned char)(i * 7 + 1);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);

  /* At a system call: ymm0 holds the pattern across kill(getpid(), SIGUSR1). */
  unsigned char out[32] __attribute__((aligned(32)));
  long pid = getpid();
  __asm__ volatile(
      "vmovdqa %[p], %%ymm0\n\t"
      "mov %[nr], %%eax\n\t"
      "mov %[pid], %%rdi\n\t"
      "mov %[sig], %%esi\n\t"
      "syscall\n\t"
      "vmovdqa %%ymm0, %[o]\n\t"
      "vzeroupper\n\t"
      : [o] "=m"(out)
      : [p] "m"(pattern), [nr] "i"(SYS_kill), [pid] "r"(pid), [sig] "i"(SIGUSR1)
      : "rax", "rdi", "rsi", "rcx", "r11", "xmm0", "memory");
  printf("handler ran: %d\n", atomic_load(&handled) == 1);
  printf("frame: UC_FP_XSTATE %d, magic1 %d, sizes %d, magic2 %d\n", frame_flag, frame_magic1, frame_size_ok, frame_magic2);
  printf("ymm0 whole after a signal at a system call: %d\n", memcmp(out, pattern, 32) == 0);

  /* At any instruction: another thread interrupts a loop that checks ymm2 and ymm3. */
  main_tid = (pid_t)syscall(SYS_gettid);
  pthread_t th;
  pthread_create(&th, NULL, sender, NULL);
  int bad = 0, rounds = 0;
  while (atomic_load(&handled) < 30 && rounds < 100000) {
    bad += check_loop(200000);
    rounds++;
  }
  atomic_store(&stop, 1);
  pthread_join(th, NULL);
  printf("signals in the loop: %d\n", atomic_load(&handled) >= 30);
  printf("ymm2 and ymm3 whole all along: %d\n", bad == 0);
  return 0;
}
