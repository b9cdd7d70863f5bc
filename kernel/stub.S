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
