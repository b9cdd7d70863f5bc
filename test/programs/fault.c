/*
 * fault: one deliberate CPU exception per run, to check that the sandbox
 * reports the fault (like Linux's death-by-signal) instead of hanging,
 * crashing the VMM, or letting user code act as the kernel.
 *
 * Usage: fault <what>. Prints "about to <what>" (flushed) and then:
 *   segv          write to (int *)0x10                 #PF  -> SIGSEGV (139)
 *   null          read *(int *)0                       #PF  -> SIGSEGV (139)
 *   ill           ud2                                  #UD  -> SIGILL  (132)
 *   fpe           integer divide by zero               #DE  -> SIGFPE  (136)
 *   kernel-read   read the guest kernel's image        #PF  -> SIGSEGV (139)
 *   kernel-write  write the guest kernel's image       #PF  -> SIGSEGV (139)
 *   kernel-exec   call into the guest kernel's image   #PF  -> SIGSEGV (139)
 *   hlt, cli, out, wrmsr, lidt, cr3
 *                 privileged instructions at CPL3      #GP  -> SIGSEGV (139)
 *   int3          breakpoint                           #BP  -> SIGTRAP (133)
 * The numbers are the shell statuses when run natively on Linux.
 * If the fault does not happen, prints "survived <what>" and exits 3;
 * an unknown <what> prints usage and exits 2.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Where kvmbox's guest kernel is linked (kernel/Makefile KERNEL_LOAD). It must
 * be unmapped or supervisor-only for user code. */
#define GUEST_KERNEL_ADDR 0xffffffff80020000UL

/* Addresses go through volatile variables so the compiler cannot prove the
 * access is undefined and replace it with its own trap (GCC turns a literal
 * NULL dereference into ud2, which would test the wrong exception), and the
 * pointees are volatile so an unused read is still performed. */
static volatile int *volatile segv_ptr = (int *)0x10;
static volatile int *volatile null_ptr = (int *)0;
static volatile uintptr_t kernel_addr = GUEST_KERNEL_ADDR;
static volatile int dividend = 42, zero = 0;

static void do_segv(void) { *segv_ptr = 1; }
static void do_null(void) { (void)*null_ptr; }
static void do_ill(void) { __asm__ volatile("ud2"); }
/* Not 1 / zero: GCC computes 1/x with compares, no div instruction. */
static void do_fpe(void) { volatile int r = dividend / zero; (void)r; }
static void do_kernel_read(void) { (void)*(volatile uint8_t *)kernel_addr; }
static void do_kernel_write(void) { *(volatile uint8_t *)kernel_addr = 0xcc; }
static void do_kernel_exec(void) { ((void (*)(void))kernel_addr)(); }
static void do_hlt(void) { __asm__ volatile("hlt"); }
static void do_cli(void) { __asm__ volatile("cli"); }
/* Port 0x80 (POST diagnostics): no I/O permission at CPL3 with IOPL 0. */
static void do_out(void) { __asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(0x80)); }
/* IA32_TSC_AUX (0xc0000103): any wrmsr faults at CPL3; a harmless MSR keeps
 * a sandbox bug visible as "survived" rather than a wrecked guest. */
static void do_wrmsr(void) { __asm__ volatile("wrmsr" : : "c"(0xc0000103), "a"(0), "d"(0)); }
static void do_lidt(void)
{
    static const struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr = { 0, 0 };
    __asm__ volatile("lidt %0" : : "m"(idtr));
}
/* Reading CR3 is enough: any mov from/to a control register faults at CPL3. */
static void do_cr3(void)
{
    uintptr_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    printf("cr3=%#lx\n", (unsigned long)v);
}
static void do_int3(void) { __asm__ volatile("int3"); }

static const struct {
    const char *name;
    void (*fn)(void);
} faults[] = {
    { "segv", do_segv },           { "null", do_null },
    { "ill", do_ill },             { "fpe", do_fpe },
    { "kernel-read", do_kernel_read }, { "kernel-write", do_kernel_write },
    { "kernel-exec", do_kernel_exec }, { "hlt", do_hlt },
    { "cli", do_cli },             { "out", do_out },
    { "wrmsr", do_wrmsr },         { "lidt", do_lidt },
    { "cr3", do_cr3 },             { "int3", do_int3 },
};

int main(int argc, char **argv)
{
    const size_t n = sizeof faults / sizeof faults[0];
    if (argc == 2) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(argv[1], faults[i].name) != 0)
                continue;
            printf("about to %s\n", faults[i].name);
            fflush(stdout);
            faults[i].fn();
            printf("survived %s\n", faults[i].name);
            return 3;
        }
    }
    fprintf(stderr, "usage: fault <what>; <what> is one of:");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", faults[i].name);
    fprintf(stderr, "\n");
    return 2;
}
