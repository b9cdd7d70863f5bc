/* Kernel entry points: the header the host reads, the boot hop to user mode, the interrupt
 * vectors, and the hardware-KVM system-call entry. */
#include "include/abi.h"

#define VEC_GP 13
#define RFLAGS_IOPL 0x3000
#define RFLAGS_NT 0x4000

.section .head, "a"
/* struct kernel_header, read by src/machine/kernel-image.ts */
.globl kernel_header
kernel_header:
  .quad KERNEL_MAGIC
  .quad HC_ABI_VERSION
  .quad _start
  .quad syscall_entry_hw
  .quad probe_entry
  .quad vector_table
  .quad IDT_VECTORS
  .quad fuzz_hypercalls

.text
/* The host enters here at CPL0 with rsp pointing at an iretq frame for the user entry point,
 * and rdi = initial count of the timer (0: no timer). */
.globl _start
_start:
  /* Drop every cached translation: the host may have rebuilt the page tables for this run. */
  mov %cr3, %rax
  mov %rax, %cr3
  test %rdi, %rdi
  jz 1f
  call timer_start
1:
  xor %eax, %eax
  xor %edi, %edi
  xor %edx, %edx
  xor %ecx, %ecx
  xor %esi, %esi
  iretq

/* Hardware KVM: `syscall` lands here at CPL0 with IF clear (SFMASK) and the user's rsp. The host
 * serves the call during the `out` exit and leaves the result in rax; rcx/r11 carry the return.
 * Both may have been set by the host (from guest data, e.g. a signal frame), so before sysretq:
 * - r11 loses IOPL and NT: sysretq loads them from r11, and IOPL 3 would let user code `out`
 *   to any hypercall port;
 * - rcx must be a lower-half address: on Intel, sysretq to a non-canonical rcx raises #GP at
 *   CPL0 on the user's stack. Such a return is reported as the user's #GP instead. */
.globl syscall_entry_hw
syscall_entry_hw:
  out %al, $HC_SYSCALL_PORT
  and $~(RFLAGS_IOPL | RFLAGS_NT), %r11
  cmp user_rip_end(%rip), %rcx
  jae 1f
  sysretq
1:mov $VEC_GP, %edi
  xor %esi, %esi
  xor %edx, %edx
  mov %rcx, %r10
  mov %rsp, %r8
  out %al, $HC_FAULT_PORT
2:hlt
  jmp 2b

/* Start-up probe: reached only if `syscall` switches to CPL0. */
.globl probe_entry
probe_entry:
  out %al, $HC_PROBE_PORT
1:hlt
  jmp 1b

/* Interrupt vectors. Exceptions with a CPU error code push only the vector. */
.macro VEC n, has_error
vec\n:
  .if \has_error == 0
  push $0
  .endif
  push $\n
  jmp trap_common
.endm
VEC 0,0
VEC 1,0
VEC 2,0
VEC 3,0
VEC 4,0
VEC 5,0
VEC 6,0
VEC 7,0
VEC 8,1
VEC 9,0
VEC 10,1
VEC 11,1
VEC 12,1
VEC 13,1
VEC 14,1
VEC 15,0
VEC 16,0
VEC 17,1
VEC 18,0
VEC 19,0
VEC 20,0
VEC 21,1
VEC 22,0
VEC 23,0
VEC 24,0
VEC 25,0
VEC 26,0
VEC 27,0
VEC 28,0
VEC 29,1
VEC 30,1
VEC 31,0
VEC 64,0

.section .rodata
/* Entry addresses for IDT vectors 0..31 and VEC_TIMER (last); the host builds the IDT from it. */
vector_table:
  .irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,64
  .quad vec\n
  .endr
/* The first non-canonical address: sysretq only returns below it. */
user_rip_end:
  .quad 0x0000800000000000

.text
trap_common:
  push %r15
  push %r14
  push %r13
  push %r12
  push %r11
  push %r10
  push %r9
  push %r8
  push %rbp
  push %rdi
  push %rsi
  push %rdx
  push %rcx
  push %rbx
  push %rax
  mov %rsp, %rdi
  call trap
  pop %rax
  pop %rbx
  pop %rcx
  pop %rdx
  pop %rsi
  pop %rdi
  pop %rbp
  pop %r8
  pop %r9
  pop %r10
  pop %r11
  pop %r12
  pop %r13
  pop %r14
  pop %r15
  add $16, %rsp
  iretq
