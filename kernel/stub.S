/* The user-mode system-call stub (kvm_pvm). There, `syscall` jumps to LSTAR without leaving CPL3,
 * so LSTAR points into this page, mapped user-executable and read-only at PHYS_USER_STUB. An exit
 * costs tens of microseconds on kvm_pvm, so the stub answers what it can without one:
 *  - calls whose result is a constant of the sandbox (identity, no-op bookkeeping);
 *  - read() from the file the host last read ahead into the cache (CACHE_BUF), copying in user
 *    mode; a bad buffer faults inside the copy, and the host turns that fault into EFAULT;
 *  - write() to a descriptor the host marked as /dev/null.
 * Everything else goes to the host with one `out` (allowed to this port only, by the TSS I/O
 * bitmap). It returns like sysret: SFMASK is 0 on this path, so the flags are still the
 * caller's; rcx and r11 are clobbered, as by `syscall`; every other register is preserved.
 * The shared page (PHYS_SHARED) and the cache are user memory: a program that scribbles on them
 * only changes what it reads itself; the host trusts nothing in them. */
#include "include/abi.h"

#define SH(field) (PHYS_SHARED + field)

.text
/* Header read by the host: the bounds of the user-mode copy whose faults become EFAULT. */
stub_header:
  .quad copy_start
  .quad copy_end
  .quad stat_copy_start
  .quad stat_copy_end

.org STUB_ENTRY_OFFSET
.globl syscall_stub
syscall_stub:
  test %eax, %eax            /* SYS_READ */
  jz read_fast
  cmp $SYS_WRITE, %eax
  je write_fast
  cmp $SYS_NEWFSTATAT, %eax
  je stat_fast
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
to_host:
  out %al, $HC_SYSCALL_PORT
  jmp *%rcx

/* read(fd=rdi, buf=rsi, count=rdx) from the read-ahead cache. */
read_fast:
  cmp SH(SH_CACHE_FD), %edi
  jne to_host
  mov SH(SH_CACHE_LEN), %r11
  sub SH(SH_CACHE_POS), %r11  /* bytes left in the cache */
  jbe to_host_read
  test %rdx, %rdx
  jz to_host_read
  cmp %rdx, %r11
  cmova %rdx, %r11           /* r11 = min(left, count) */
  mov %rdi, SH(SH_SAVE_RDI)
  mov %rsi, SH(SH_SAVE_RSI)
  mov %rcx, SH(SH_SAVE_RCX)
  mov %rsi, %rdi
  mov SH(SH_CACHE_POS), %rsi
  add $CACHE_BUF, %rsi
  mov %r11, %rcx
copy_start:
  rep movsb
copy_end:
  add %r11, SH(SH_CACHE_POS)
  mov %r11, %rax
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  mov SH(SH_SAVE_RCX), %rcx
  jmp *%rcx
to_host_read:
  xor %eax, %eax             /* SYS_READ again: the comparisons above kept rax, but be plain */
  out %al, $HC_SYSCALL_PORT
  jmp *%rcx

/* write(fd=rdi, buf, count=rdx) to /dev/null: count, without touching buf (as Linux). */
write_fast:
  cmp $64, %rdi
  jae to_host
  mov SH(SH_DEVNULL_MASK), %r11
  bt %rdi, %r11
  jnc to_host
  mov %rdx, %rax
  jmp *%rcx

/* newfstatat(AT_FDCWD, path=rsi, buf=rdx, 0 or AT_SYMLINK_NOFOLLOW) from the stat cache the host
 * filled when the program listed a directory or stat-ed an absolute path: entries of
 * STAT_ENTRY_SIZE bytes, a NUL-terminated path (its last byte: 1 if the entry answers a lookup
 * that follows symlinks) then a struct stat. The search starts where the last hit ended (programs stat entries in the
 * order they were listed). A fault on the path or buffer becomes EFAULT (host). */
stat_fast:
  cmp $AT_FDCWD_VALUE, %edi
  jne to_host
  cmp $AT_SYMLINK_NOFOLLOW_VALUE, %r10d
  je 1f
  test %r10d, %r10d          /* 0: follow symlinks */
  jne to_host
1:
  mov SH(SH_STAT_COUNT), %eax
  test %eax, %eax
  jz to_host_stat
  cmp $STAT_CACHE_ENTRIES, %eax
  ja to_host_stat
  mov %rdi, SH(SH_SAVE_RDI)
  mov %rsi, SH(SH_SAVE_RSI)
  mov %rcx, SH(SH_SAVE_RCX)
  mov SH(SH_STAT_NEXT), %r11d
  cmp SH(SH_STAT_COUNT), %r11d
  jb next_entry
  xor %r11d, %r11d
next_entry:
  mov %r11, %rdi
  shl $8, %rdi                /* STAT_ENTRY_SIZE */
  add $STAT_CACHE, %rdi
  mov SH(SH_SAVE_RSI), %rsi
stat_copy_start:
cmp_loop:
  movzbl (%rsi), %ecx
  cmpb %cl, (%rdi)
  jne mismatch
  test %cl, %cl
  jz match
  inc %rsi
  inc %rdi
  jmp cmp_loop
match:
  /* The entry's last path byte says which lookup it answers: 0 lstat (NOFOLLOW), 1 stat. */
  mov %r11, %rdi
  shl $8, %rdi
  movzbl STAT_CACHE + STAT_ENTRY_PATH_MAX - 1(%rdi), %ecx
  test %r10d, %r10d
  jz want_follow
  test %ecx, %ecx
  jnz mismatch
  jmp flags_ok
want_follow:
  cmp $1, %ecx
  jne mismatch
flags_ok:
  lea 1(%r11), %eax
  mov %eax, SH(SH_STAT_NEXT)
  mov %r11, %rsi
  shl $8, %rsi
  add $STAT_CACHE + STAT_ENTRY_PATH_MAX, %rsi
  mov %rdx, %rdi
  mov $STAT_SIZE, %ecx
  rep movsb
stat_copy_end:
  xor %eax, %eax
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  mov SH(SH_SAVE_RCX), %rcx
  jmp *%rcx
mismatch:
  inc %r11d
  cmp SH(SH_STAT_COUNT), %r11d
  jb 1f
  xor %r11d, %r11d
1:
  dec %eax
  jnz next_entry
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  mov SH(SH_SAVE_RCX), %rcx
to_host_stat:
  mov $SYS_NEWFSTATAT, %eax
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
