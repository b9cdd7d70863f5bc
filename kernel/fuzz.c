/* A hostile guest kernel, for the test suite only: it issues hypercalls with random port numbers
 * (inside and around the hypercall range) and random register contents, forever. The host must
 * answer each one with an error or end the VM cleanly; it must never crash or touch memory
 * outside the guest. The host starts it instead of _start (see test/hostile.test.ts). */
#include "kernel.h"

static u64 state;

static u64 next(void) {
  /* xorshift64* */
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545f4914f6cdd1dUL;
}

/* Values that tend to break range checks. */
static u64 interesting(void) {
  static const u64 table[] = {
    0, 1, 0xfff, 0x1000, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000UL, 0x7fffffffffffffffUL,
    0x8000000000000000UL, 0xffffffffffffffffUL, 0xfffffffffffff000UL, KERNEL_VBASE, KERNEL_VBASE + PHYS_KERNEL,
    USER_BASE, USER_BASE + 0x1000, PHYS_USER_STUB, 0x00007ffffffff000UL, 0x0000800000000000UL, 4096, 65536,
  };
  u64 r = next();
  switch (r & 3) {
  case 0: return table[(r >> 8) % (sizeof table / sizeof table[0])];
  case 1: return next() & 0xffff;
  case 2: return table[(r >> 8) % (sizeof table / sizeof table[0])] + ((r >> 32) & 0xff) - 0x80;
  default: return next();
  }
}

void fuzz_hypercalls(u64 seed) {
  state = seed | 1;
  for (;;) {
    /* Mostly system calls (the richest surface); now and then any port in and around the range. */
    u64 port = (next() & 15) ? HC_SYSCALL_PORT : HC_PORT_BASE - 2 + next() % (HC_COUNT + 4);
    register u64 r10 asm("r10") = interesting();
    register u64 r8 asm("r8") = interesting();
    register u64 r9 asm("r9") = interesting();
    u64 rax = (next() & 7) ? next() % 340 : interesting();
    asm volatile("out %%al, %%dx"
                 : "+a"(rax)
                 : "d"(port), "D"(interesting()), "S"(interesting()), "r"(r10), "r"(r8), "r"(r9)
                 : "memory", "rcx", "r11");
  }
}
