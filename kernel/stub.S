/* The user-mode system-call stub (kvm_pvm). There, `syscall` jumps to LSTAR without leaving CPL3,
 * so LSTAR points at this page, mapped user-executable and read-only at PHYS_USER_STUB. It holds
 * no secrets and no data: it answers what needs no host, forwards the rest with one `out`
 * (allowed to this port only, by the TSS I/O bitmap), and returns like sysret (SFMASK is 0 here,
 * so the flags are the caller's). */
#include "include/abi.h"

.text
.globl syscall_stub
syscall_stub:
  out %al, $HC_SYSCALL_PORT
  jmp *%rcx

.org STUB_PROBE_OFFSET
/* The start-up probe runs this in user mode with LSTAR = probe_entry (a kernel address). */
.globl probe_user
probe_user:
  syscall
  ud2
