/* The user-mode system-call stub (kvm_pvm). There, `syscall` jumps to LSTAR without leaving CPL3,
 * so LSTAR points at this page, mapped user-executable and read-only at PHYS_USER_STUB. It holds
 * no secrets and no writable data. It answers the calls whose result is a constant of the
 * sandbox (identity, no-op bookkeeping) with no exit at all, forwards the rest with one `out`
 * (allowed to this port only, by the TSS I/O bitmap), and returns like sysret: SFMASK is 0 on
 * this path, so the flags are still the caller's. rcx and r11 are clobbered, as by `syscall`. */
#include "include/abi.h"

.text
.globl syscall_stub
syscall_stub:
  cmp $SYS_GETPID, %eax
  je ret_pid
  cmp $SYS_GETTID, %eax
  je ret_pid
  cmp $SYS_GETPPID, %eax
  je ret_ppid
  cmp $SYS_GETUID, %eax
  je ret_uid
  cmp $SYS_GETEUID, %eax
  je ret_uid
  cmp $SYS_GETGID, %eax
  je ret_gid
  cmp $SYS_GETEGID, %eax
  je ret_gid
  cmp $SYS_SET_TID_ADDRESS, %eax
  je ret_pid
  cmp $SYS_SET_ROBUST_LIST, %eax
  je ret_zero
  cmp $SYS_SCHED_YIELD, %eax
  je ret_zero
  cmp $SYS_RSEQ, %eax
  je ret_enosys
  /* Calls that change vCPU state, or end the program, always exit. */
  cmp $SYS_ARCH_PRCTL, %eax
  je by_exit
  cmp $SYS_EXIT_GROUP, %eax
  je by_exit
  cmp $SYS_EXIT, %eax
  je by_exit
  /* Exitless path: when a host thread is polling the ring page, post the call there and spin
   * for the answer (about a microsecond) instead of exiting (tens of microseconds here). */
  cmpl $0, PHYS_RING + RING_HOST_POLLING
  je by_exit
  mov %rax, PHYS_RING + RING_NR
  mov %rdi, PHYS_RING + RING_ARGS
  mov %rsi, PHYS_RING + RING_ARGS + 8
  mov %rdx, PHYS_RING + RING_ARGS + 16
  mov %r10, PHYS_RING + RING_ARGS + 24
  mov %r8, PHYS_RING + RING_ARGS + 32
  mov %r9, PHYS_RING + RING_ARGS + 40
  mov PHYS_RING + RING_REQ_SEQ, %r11d
  inc %r11d
  mov %r11d, PHYS_RING + RING_REQ_SEQ
  mov $RING_SPIN_LIMIT, %eax
1:
  cmp PHYS_RING + RING_RESP_SEQ, %r11d
  je 2f
  pause
  dec %eax
  jnz 1b
  /* No answer yet: wait in the host instead (it answers the posted call). */
  out %al, $HC_RING_WAIT_PORT
  jmp *%rcx
2:
  mov PHYS_RING + RING_RESULT, %rax
  jmp *%rcx
by_exit:
  out %al, $HC_SYSCALL_PORT
  jmp *%rcx
ret_pid:
  mov $GUEST_PID, %eax
  jmp *%rcx
ret_ppid:
  mov $GUEST_PPID, %eax
  jmp *%rcx
ret_uid:
  mov $GUEST_UID, %eax
  jmp *%rcx
ret_gid:
  mov $GUEST_GID, %eax
  jmp *%rcx
ret_zero:
  xor %eax, %eax
  jmp *%rcx
ret_enosys:
  mov $-ENOSYS, %rax
  jmp *%rcx

.org STUB_TRACED_OFFSET
/* With --trace every call goes to the host, so that every call is seen. */
.globl syscall_stub_traced
syscall_stub_traced:
  out %al, $HC_SYSCALL_PORT
  jmp *%rcx

.org STUB_PROBE_OFFSET
/* The start-up probe runs this in user mode with LSTAR = probe_entry (a kernel address). */
.globl probe_user
probe_user:
  syscall
  ud2
