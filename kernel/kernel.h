/* Declarations shared by the guest kernel's files. The kernel is deliberately tiny: the host
 * builds the page tables, GDT, IDT and TSS before the first instruction runs (every CPL0
 * instruction costs ~0.6 us on kvm_pvm), and Linux system calls are served by the host. What
 * runs here is the boot hop into user mode, the trap path, and the timer. */
#ifndef KVMBOX_KERNEL_H
#define KVMBOX_KERNEL_H

#include "include/abi.h"

typedef unsigned long u64;
typedef unsigned int u32;

/* Saved on the kernel stack by entry.S, lowest address first. */
struct trapframe {
  u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
  u64 vector, error;
  /* pushed by the CPU */
  u64 rip, cs, rflags, rsp, ss;
};

/* A hypercall is an `out` to the port that names it; arguments travel in the Linux
 * system-call registers (rdi rsi rdx r10 r8), the result comes back in rax. */
#define DEFINE_HYPERCALL(fn, port)                                                        \
  static inline u64 fn(u64 a0, u64 a1, u64 a2, u64 a3, u64 a4) {                          \
    u64 ret;                                                                              \
    register u64 r10 asm("r10") = a3;                                                     \
    register u64 r8 asm("r8") = a4;                                                       \
    asm volatile("out %%al, %[p]"                                                         \
                 : "=a"(ret)                                                              \
                 : [p] "i"(port), "a"(0), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8)    \
                 : "memory");                                                             \
    return ret;                                                                           \
  }
DEFINE_HYPERCALL(hc_fault, HC_FAULT_PORT)
DEFINE_HYPERCALL(hc_timer, HC_TIMER_PORT)
DEFINE_HYPERCALL(hc_panic, HC_PANIC_PORT)

static inline void wrmsr(u32 msr, u64 v) {
  asm volatile("wrmsr" ::"c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}
static inline u64 read_cr2(void) {
  u64 v;
  asm volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}
static inline void invlpg(u64 va) { asm volatile("invlpg (%0)" ::"r"(va) : "memory"); }

void trap(struct trapframe *tf);
void timer_start(u64 initial_count);
void timer_eoi(void);

#endif
