/* The user-mode system-call stub (kvm_pvm). There, `syscall` jumps to LSTAR without leaving CPL3,
 * so LSTAR points into this page, mapped user-executable and read-only at PHYS_USER_STUB. An exit
 * costs tens of microseconds on kvm_pvm, so the stub answers what it can without one:
 *  - calls whose result is a constant of the sandbox (identity, no-op bookkeeping), or of the
 *    process and thread: pid, tid and ppid, which the host writes in the shared page at exec;
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
/* Header read by the host: [start, end) of each user-mode access to the program's memory whose
 * faults become EFAULT, then a zero pair. */
stub_header:
  .quad copy_start, copy_end
  .quad path_copy_start, path_copy_end
  .quad dir_copy_start, dir_copy_end
  .quad clock_store_start, clock_store_end
  .quad gtod_store_start, gtod_store_end
  .quad time_store_start, time_store_end
  .quad random_copy_start, random_copy_end
  .quad getfs_store_start, getfs_store_end
  .quad out_copy_start, out_copy_end
  .quad rlimit_store_start, rlimit_store_end
  .quad exe_copy_start, exe_copy_end
  .quad 0, 0

.org STUB_ENTRY_OFFSET
.globl syscall_stub
syscall_stub:
  test %eax, %eax            /* SYS_READ */
  jz read_fast
  cmp $SYS_WRITE, %eax
  je write_fast
  cmp $SYS_NEWFSTATAT, %eax
  je dir_call
  cmp $SYS_OPENAT, %eax
  je dir_call
  cmp $SYS_GETDENTS64, %eax
  je dir_call
  cmp $SYS_CLOSE, %eax
  je dir_call
  cmp $SYS_FSTAT, %eax
  je dir_call
  cmp $SYS_MMAP, %eax
  je dir_call
  cmp $SYS_MUNMAP, %eax
  je dir_call
  cmp $SYS_BRK, %eax
  je brk_fast
  cmp $SYS_ARCH_PRCTL, %eax
  je arch_fast
  cmp $SYS_PRLIMIT64, %eax
  je prlimit_fast
  cmp $SYS_READLINK, %eax
  je readlink_fast
  cmp $SYS_GETRANDOM, %eax
  je random_fast
  cmp $SYS_CLOCK_GETTIME, %eax
  je clock_fast
  cmp $SYS_GETTIMEOFDAY, %eax
  je gtod_fast
  cmp $SYS_TIME, %eax
  je time_fast
  cmp $SYS_GETPID, %eax
  je ret_pid
  cmp $SYS_GETTID, %eax
  je ret_tid
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
  je set_tid_fast
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
  mov %rdx, SH(SH_SAVE_RDX)
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

/* The directory and stat cache and the pool of anonymous mappings (kernel/dstub.c): openat of a
 * listed directory, getdents64, fstat and close of the descriptors it hands out, newfstatat of
 * listed paths, and mmap/munmap of anonymous memory the host left mapped for reuse. The path
 * argument is copied into the shared page here, in user mode where a fault becomes EFAULT; the C
 * code then runs on the stub's own stack (the program's red zone stays untouched) and says what
 * to do: go to the host, return a value, or copy a result to the program and return a value. */
dir_call:
  cmpl $0, SH(SH_DC_ON)
  je to_host
  mov %rdi, SH(SH_SAVE_RDI)
  mov %rsi, SH(SH_SAVE_RSI)
  mov %rdx, SH(SH_SAVE_RDX)
  mov %rcx, SH(SH_SAVE_RCX)
  mov %r8, SH(SH_SAVE_R8)
  mov %r9, SH(SH_SAVE_R9)
  mov %r10, SH(SH_SAVE_R10)
  mov %rax, SH(SH_SAVE_RAX)
  movb $0, SH(SH_PATH)
  cmp $SYS_OPENAT, %eax
  je 1f
  cmp $SYS_NEWFSTATAT, %eax
  jne 3f
1:
  mov $SH_PATH_MAX, %ecx
  mov $PHYS_SHARED + SH_PATH, %edi
path_copy_start:
2:
  movzbl (%rsi), %eax
  mov %al, (%rdi)
  test %al, %al
  jz 3f
  inc %rsi
  inc %rdi
  dec %ecx
  jnz 2b
path_copy_end:
  movb $1, SH(SH_PATH)          /* too long for the cache (and not ""): the host answers */
3:
  mov %rsp, SH(SH_SAVE_RSP)
  mov $STUB_STACK_TOP, %esp
  call stub_dir_call
  mov SH(SH_SAVE_RSP), %rsp
  mov SH(SH_SAVE_R8), %r8
  mov SH(SH_SAVE_R9), %r9
  mov SH(SH_SAVE_R10), %r10
  cmp $1, %eax
  je dir_value
  jb dir_host
  mov SH(SH_DS_DST), %rdi
  mov SH(SH_DS_LEN), %rcx
dir_copy_start:
  cmp $2, %eax
  jne 1f
  mov SH(SH_DS_SRC), %rsi
  rep movsb                  /* 2: copy a result to the program */
  jmp 2f
1:
  xor %eax, %eax
  rep stosb                  /* 3: zero memory handed out again by mmap */
2:
dir_copy_end:
dir_value:
  mov SH(SH_DS_VALUE), %rax
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  mov SH(SH_SAVE_RDX), %rdx
  mov SH(SH_SAVE_RCX), %rcx
  jmp *%rcx
dir_host:
  mov SH(SH_SAVE_RAX), %rax
host_saved_args:             /* to the host with the arguments SAVE_ARGS kept, rax already set */
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  mov SH(SH_SAVE_RDX), %rdx
  mov SH(SH_SAVE_RCX), %rcx
  out %al, $HC_SYSCALL_PORT
  jmp *%rcx

/* Clocks without an exit, like a vDSO: the host publishes a base (guest TSC, monotonic and
 * real-time nanoseconds) and the TSC's period as a 32.32 fixed-point number of nanoseconds. */
.macro NOW_NS base
  mov SH(\base), %r11
  rdtsc
  shl $32, %rdx
  or %rdx, %rax
  sub SH(SH_TIME_TSC0), %rax
  mulq SH(SH_TIME_MULT)
  shrd $32, %rdx, %rax
  add %r11, %rax
.endm
/* rax = nanoseconds -> rax = seconds, rdx = nanoseconds within the second (clobbers rcx). */
.macro SPLIT_SECONDS
  mov $1000000000, %ecx
  xor %edx, %edx
  div %rcx
.endm
.macro SAVE_ARGS
  mov %rdi, SH(SH_SAVE_RDI)
  mov %rsi, SH(SH_SAVE_RSI)
  mov %rdx, SH(SH_SAVE_RDX)
  mov %rcx, SH(SH_SAVE_RCX)
.endm
.macro RETURN_RESTORED
  mov SH(SH_SAVE_RDX), %rdx
  mov SH(SH_SAVE_RCX), %rcx
  jmp *%rcx
.endm

/* clock_gettime(clock=rdi, ts=rsi) */
clock_fast:
  cmpl $0, SH(SH_TIME_VALID)
  je to_host
  cmp $1, %edi                /* CLOCK_MONOTONIC */
  je clock_mono
  cmp $4, %edi                /* CLOCK_MONOTONIC_RAW */
  je clock_mono
  cmp $6, %edi                /* CLOCK_MONOTONIC_COARSE */
  je clock_mono
  cmp $7, %edi                /* CLOCK_BOOTTIME */
  je clock_mono
  test %edi, %edi             /* CLOCK_REALTIME */
  je clock_real
  cmp $5, %edi                /* CLOCK_REALTIME_COARSE */
  je clock_real
  jmp to_host
clock_mono:
  SAVE_ARGS
  NOW_NS SH_TIME_MONO0
  jmp clock_split
clock_real:
  SAVE_ARGS
  NOW_NS SH_TIME_REAL0
clock_split:
  SPLIT_SECONDS
clock_store_start:
  mov %rax, (%rsi)
  mov %rdx, 8(%rsi)
clock_store_end:
  xor %eax, %eax
  RETURN_RESTORED

/* gettimeofday(tv=rdi, tz=rsi): only the common case, tv set and tz NULL. */
gtod_fast:
  cmpl $0, SH(SH_TIME_VALID)
  je to_host
  test %rsi, %rsi
  jne to_host
  test %rdi, %rdi
  je to_host
  SAVE_ARGS
  NOW_NS SH_TIME_REAL0
  SPLIT_SECONDS
  mov %rax, %r11
  mov %rdx, %rax
  mov $1000, %ecx
  xor %edx, %edx
  div %rcx
gtod_store_start:
  mov %r11, (%rdi)
  mov %rax, 8(%rdi)
gtod_store_end:
  xor %eax, %eax
  RETURN_RESTORED

/* time(tloc=rdi) */
time_fast:
  cmpl $0, SH(SH_TIME_VALID)
  je to_host
  SAVE_ARGS
  NOW_NS SH_TIME_REAL0
  SPLIT_SECONDS
  test %rdi, %rdi
  je time_done
time_store_start:
  mov %rax, (%rdi)
time_store_end:
time_done:
  RETURN_RESTORED

/* brk(rdi) up inside the heap the host has mapped (SH_BRK_TOP, 0 when it has not published one):
 * move the break there; below the heap's start (brk(0) included), report it. Beyond, the host
 * maps more; down, the host clears what a later rise must find zeroed (glibc's calloc counts on
 * it). The host reads the break back at its next exit, clamped to what it mapped. */
brk_fast:
  mov SH(SH_BRK_TOP), %r11
  test %r11, %r11
  jz to_host
  cmp SH(SH_BRK_START), %rdi
  jb 1f
  cmp %r11, %rdi
  ja to_host
  cmp SH(SH_BRK_CUR), %rdi
  jb to_host
  mov %rdi, SH(SH_BRK_CUR)
1:
  mov SH(SH_BRK_CUR), %rax
  jmp *%rcx

/* arch_prctl(ARCH_SET_FS / ARCH_GET_FS, rsi) with the FS base instructions, where the host
 * found that user mode may use them (SH_FSBASE_OK: kvm_pvm runs user mode with the host's CR4).
 * An address Linux refuses, and every other code, go to the host. */
arch_fast:
  cmpl $0, SH(SH_FSBASE_OK)
  je to_host
  cmp $ARCH_SET_FS_VALUE, %edi
  je 1f
  cmp $ARCH_GET_FS_VALUE, %edi
  jne to_host
  SAVE_ARGS                  /* a fault in the store becomes EFAULT with these */
  rdfsbase %r11
getfs_store_start:
  mov %r11, (%rsi)
getfs_store_end:
  xor %eax, %eax
  jmp *%rcx
1:
  mov $USER_ADDR_LIMIT, %r11
  cmp %r11, %rsi
  jae to_host
  wrfsbase %rsi
  xor %eax, %eax
  jmp *%rcx

/* prlimit64(pid=rdi, resource=rsi, new=rdx, old=r10) of this process that only reads: the
 * limits the host published (SH_RLIMITS, 16 bytes each). Setting limits, another pid, or a
 * resource Linux does not have go to the host. */
prlimit_fast:
  cmpl $0, SH(SH_RLIMITS_OK)
  je to_host
  test %edi, %edi              /* pid_t */
  jnz to_host
  test %rdx, %rdx
  jnz to_host
  cmp $RLIM_NLIMITS, %esi      /* unsigned int */
  jae to_host
  test %r10, %r10
  jz 1f
  SAVE_ARGS
  mov %esi, %r11d
  shl $4, %r11
  mov SH(SH_RLIMITS)(%r11), %rax
  mov SH(SH_RLIMITS + 8)(%r11), %rdx
rlimit_store_start:
  mov %rax, (%r10)
  mov %rdx, 8(%r10)
rlimit_store_end:
  mov SH(SH_SAVE_RDX), %rdx
1:
  xor %eax, %eax
  jmp *%rcx

/* readlink(path=rdi, buf=rsi, size=rdx) of "/proc/self/exe": the program's path as the host
 * published it (SH_EXE, when it fits), cut to size, not terminated (as Linux). The path is
 * compared byte by byte up to its end or the first difference; anything else goes to the host. */
readlink_fast:
  cmpl $0, SH(SH_EXE_LEN)
  je to_host
  test %edx, %edx              /* int bufsiz: not above 0 is EINVAL, from the host */
  jle to_host
  SAVE_ARGS
  mov %edx, %edx
  lea proc_self_exe(%rip), %r11
exe_copy_start:                /* both the compare and the copy read or write the program's memory */
2:
  movzbl (%rdi), %eax
  cmp (%r11), %al
  jne 3f
  test %al, %al
  jz 4f
  inc %rdi
  inc %r11
  jmp 2b
4:
  mov SH(SH_EXE_LEN), %ecx
  cmp %rdx, %rcx
  cmova %rdx, %rcx
  mov %rcx, %rax
  mov SH(SH_SAVE_RSI), %rdi
  lea PHYS_SHARED + SH_EXE, %rsi
  rep movsb
exe_copy_end:
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  RETURN_RESTORED
3:
  mov $SYS_READLINK, %eax
  jmp host_saved_args
proc_self_exe:
  .asciz "/proc/self/exe"

/* getrandom(buf=rdi, count=rsi, flags=rdx) from the bytes the host put in the shared page, used
 * once each; a larger request than what is left, or flags other than GRND_NONBLOCK and
 * GRND_INSECURE (GRND_RANDOM, unknown bits: the host checks them), go to the host. A bad buffer
 * faults inside the copy, which the host turns into EFAULT. */
random_fast:
  test $~(GRND_NONBLOCK | GRND_INSECURE), %edx
  jnz to_host
  mov SH(SH_RANDOM_LEN), %r11d
  sub SH(SH_RANDOM_POS), %r11d
  jbe to_host
  cmp %rsi, %r11
  jb to_host
  test %rsi, %rsi
  jz to_host
  SAVE_ARGS
  mov SH(SH_RANDOM_POS), %eax
  add %esi, SH(SH_RANDOM_POS)  /* used up before the copy: a fault does not give them again */
  lea PHYS_SHARED + SH_RANDOM(%rax), %rax
  mov %rsi, %rcx
  mov %rax, %rsi
random_copy_start:
  rep movsb
random_copy_end:
  mov SH(SH_SAVE_RSI), %rax  /* the count */
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  RETURN_RESTORED

/* write(fd=rdi, buf=rsi, count=rdx): to /dev/null, count without touching buf (as Linux); to a
 * descriptor whose output the host only collects (SH_OUT_MASK: a captured stdout or stderr), a
 * record { fd, count, bytes } appended to OUTBUF, which the host delivers at its next system call
 * or at the end. The record counts only once its bytes are in (SH_OUT_POS moves last), so a bad
 * buffer (EFAULT from the copy) or a stop half-way delivers nothing of it. */
write_fast:
  cmp $64, %rdi
  jae to_host
  mov SH(SH_DEVNULL_MASK), %r11
  bt %rdi, %r11
  jc 2f
  mov SH(SH_OUT_MASK), %r11
  bt %rdi, %r11
  jnc to_host
  test %rdx, %rdx
  jz to_host
  cmp $OUT_MAX_WRITE, %rdx
  ja to_host
  mov SH(SH_OUT_POS), %r11d
  lea OUT_RECORD_HEADER + 7(%r11,%rdx), %r11
  and $~7, %r11
  cmp $OUTBUF_SIZE, %r11
  ja to_host                 /* full: the host delivers what is there, then this write */
  SAVE_ARGS
  mov SH(SH_OUT_POS), %eax
  lea OUTBUF(%rax), %rdi
  mov SH(SH_SAVE_RDI), %rax
  mov %eax, (%rdi)           /* the record: fd, count */
  mov %edx, 4(%rdi)
  add $OUT_RECORD_HEADER, %rdi
  mov %rdx, %rcx
out_copy_start:
  rep movsb
out_copy_end:
  mov SH(SH_OUT_POS), %eax
  lea OUT_RECORD_HEADER + 7(%rax,%rdx), %rax
  and $~7, %eax
  mov %eax, SH(SH_OUT_POS)
  mov %rdx, %rax
  mov SH(SH_SAVE_RDI), %rdi
  mov SH(SH_SAVE_RSI), %rsi
  RETURN_RESTORED
2:
  mov %rdx, %rax
  jmp *%rcx

/* The ids the host wrote at exec (src/linux/stub-cache.ts publishIds). A program that overwrites
 * them only changes what it reads itself. 32-bit loads: the upper half of rax becomes 0. */
ret_pid:
  mov SH(SH_PID), %eax
  jmp *%rcx
ret_tid:
  mov SH(SH_TID), %eax
  jmp *%rcx
ret_ppid:
  mov SH(SH_PPID), %eax
  jmp *%rcx
/* set_tid_address(tidptr=rdi): keep the pointer for the host (it takes it at its next system
 * call and checks it when it uses it) and return the tid. */
set_tid_fast:
  mov %rdi, SH(SH_CLEAR_TID)
  mov SH(SH_TID), %eax
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

.org STUB_CPUID_OFFSET
/* cpuid without the trap (kvm_pvm: ~12 us at CPL3 on Intel hosts). Patched sites call this with
 * the stack already moved below the red zone (src/guest/site-patch.ts). Like the instruction: in
 * eax = leaf, ecx = subleaf; out eax, ebx, ecx, edx; every other register and the flags kept.
 * The answers come from the table the host wrote at PHYS_CPUID_TABLE (read-only to user mode):
 * entries of { leaf, subleaf or CPUID_ANY_SUBLEAF, eax, ebx, ecx, edx }, ended by leaf
 * CPUID_TABLE_END. A leaf not in the table runs the real instruction. */
.globl cpuid_emul
cpuid_emul:
  pushfq
  push %rsi
  mov $PHYS_CPUID_TABLE, %esi
1:
  cmpl $CPUID_TABLE_END, (%rsi)
  je 3f
  cmp (%rsi), %eax
  jne 2f
  cmpl $CPUID_ANY_SUBLEAF, 4(%rsi)
  je 4f
  cmp 4(%rsi), %ecx
  je 4f
2:
  add $CPUID_ENTRY_SIZE, %rsi
  jmp 1b
3:
  pop %rsi
  popfq
  cpuid
  ret
4:
  mov 8(%rsi), %eax
  mov 12(%rsi), %ebx
  mov 16(%rsi), %ecx
  mov 20(%rsi), %edx
  pop %rsi
  popfq
  ret

.org STUB_CPUID_FILL_OFFSET
/* Run once per host process before any program (src/machine/cpuid-table.ts): for each request
 * { leaf, subleaf, 4 answers } at rsi, ended by leaf CPUID_TABLE_END, the real instruction's
 * answers. Then a probe of the FS base instructions, ending in a fault the kernel reports to the
 * host: #BP when they work in user mode, #UD when not. */
.globl cpuid_fill
cpuid_fill:
  cmpl $CPUID_TABLE_END, (%rsi)
  je 1f
  mov (%rsi), %eax
  mov 4(%rsi), %ecx
  cpuid
  mov %eax, 8(%rsi)
  mov %ebx, 12(%rsi)
  mov %ecx, 16(%rsi)
  mov %edx, 20(%rsi)
  add $CPUID_ENTRY_SIZE, %rsi
  jmp cpuid_fill
1:
  /* Can user mode set its FS base itself? #UD here if not; int3 (#BP) if it can. */
  xor %eax, %eax
  wrfsbase %rax
  int3
