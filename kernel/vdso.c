/* The vDSO of the cpl0-entry path (hardware KVM): clock_gettime, gettimeofday and time without
 * leaving user mode, as Linux's own vDSO does. glibc and musl find it through AT_SYSINFO_EHDR
 * and call it instead of the system call; there, every `syscall` is a VM exit to the host.
 *
 * The host publishes in the vvar page (PHYS_VVAR, user read-only, the same page in every address
 * space) an anchor: a guest TSC value, the monotonic and real-time nanoseconds at that TSC, and
 * the TSC period as 32.32 fixed-point nanoseconds. A reader computes base + (rdtsc - tsc0) *
 * period. The host rewrites the anchor while other vCPUs may read it, under a sequence count:
 * odd while it writes, so a reader that sees an odd or changed count reads again. Clocks the
 * page does not give, and everything while VV_VALID is 0, go to the host as system calls.
 *
 * Built as a shared object with no relocations (test/abi.test.ts and the Makefile check), mapped
 * at PHYS_VDSO; flags as the stub's: no SSE, no data sections. */
#include <stdint.h>
#include "include/abi.h"

struct kernel_timespec { long tv_sec; long tv_nsec; };
struct kernel_timeval { long tv_sec; long tv_usec; };

#define VV32(off) (*(volatile const uint32_t *)(uintptr_t)(PHYS_VVAR + (off)))
#define VV64(off) (*(volatile const uint64_t *)(uintptr_t)(PHYS_VVAR + (off)))

static long sys2(long nr, long a, long b) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return r;
}

/* Nanoseconds on the monotonic (real = 0) or real-time (real = 1) clock; 0 when not published. */
static int now_ns(int real, uint64_t *out) {
  for (;;) {
    uint32_t seq = VV32(VV_SEQ);
    if (seq & 1) continue;
    if (!VV32(VV_VALID)) return 0;
    uint64_t mult = VV64(VV_MULT), tsc0 = VV64(VV_TSC0);
    uint64_t base = real ? VV64(VV_REAL0) : VV64(VV_MONO0);
    uint32_t lo, hi;
    /* lfence: the TSC is read after the loads above (rdtscp is not on every CPU). */
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    if (VV32(VV_SEQ) != seq) continue;
    uint64_t tsc = ((uint64_t)hi << 32) | lo;
    uint64_t delta = tsc > tsc0 ? tsc - tsc0 : 0;
    *out = base + (uint64_t)(((unsigned __int128)delta * mult) >> 32);
    return 1;
  }
}

/* Which clock a clock id reads from the page: 0 monotonic, 1 real time, -1 none (the host's). */
static int page_clock(long clock) {
  switch (clock) {
    case 1: case 4: case 6: case 7: return 0; /* MONOTONIC, MONOTONIC_RAW, MONOTONIC_COARSE, BOOTTIME */
    case 0: case 5: return 1;                 /* REALTIME, REALTIME_COARSE */
    default: return -1;
  }
}

long __vdso_clock_gettime(long clock, struct kernel_timespec *ts) {
  int which = page_clock(clock);
  uint64_t ns;
  if (which < 0 || !now_ns(which, &ns)) return sys2(SYS_CLOCK_GETTIME, clock, (long)ts);
  ts->tv_sec = (long)(ns / 1000000000u);
  ts->tv_nsec = (long)(ns % 1000000000u);
  return 0;
}

long __vdso_gettimeofday(struct kernel_timeval *tv, void *tz) {
  uint64_t ns;
  if (tz || !now_ns(1, &ns)) return sys2(SYS_GETTIMEOFDAY, (long)tv, (long)tz);
  if (tv) {
    tv->tv_sec = (long)(ns / 1000000000u);
    tv->tv_usec = (long)(ns % 1000000000u / 1000u);
  }
  return 0;
}

long __vdso_time(long *t) {
  uint64_t ns;
  if (!now_ns(1, &ns)) return sys2(SYS_TIME, (long)t, 0);
  long s = (long)(ns / 1000000000u);
  if (t) *t = s;
  return s;
}

long clock_gettime(long, struct kernel_timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
long gettimeofday(struct kernel_timeval *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
