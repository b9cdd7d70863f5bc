// The kernel of one sandbox: it owns the machine, the processes and the pid allocator, and
// serves the hypercalls the machine's run loop hands it (HypercallHandler): a system call is
// dispatched through the table (syscalls/table.ts) for the task running on the vCPU, a fault
// ends or resumes that task's process, a timer tick checks the sandbox's limits.
//
// Every value that arrives from the guest (registers, pointers, lengths, paths, fds) is
// untrusted: it is checked here or in the system-call functions before use, and a bad one fails
// that call with an errno, never the host.
import type { Vcpu, VcpuExit } from '../kvm/kvm.js';
import type { Machine, HypercallHandler, HypercallResult } from '../machine/machine.js';
import { EXCEPTION_NAMES } from '../machine/x86.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from './address-space.js';
import {
  FAULT_KILL, FAULT_RETRY, GDT_USER_CS, GUEST_PID, Hypercall, KERNEL_VBASE, PHYS_KSTACK_BOTTOM, PHYS_KSTACK_TOP, PHYS_SHARED,
  PHYS_USER_STUB, STUB_SIZE, VEC_TIMER, SH_SAVE_RCX, SH_SAVE_RDI,
  SH_SAVE_RDX, SH_SAVE_RSI,
} from '../abi/abi.generated.js';
import { FdTable, HostFile, StdioFile, type OutputSink } from '../fs/open-file.js';
import { normalize } from '../fs/vfs.js';
import { E, Errno, O, SIG, SIGNAL_NAMES, SYS } from '../abi/linux.js';
import { exec } from './exec.js';
import { SandboxLimits } from './limits.js';
import { Process, type ExitReason, type ProcessOptions } from './process.js';
import { Task } from './task.js';
import { SYSCALLS } from './syscalls/table.js';
import type { SyscallArgs } from './syscalls/args.js';
import { formatSyscall } from './syscalls/trace.js';
import { bit, deliver, hasDeliverable, killWith, raise, sigreturn, type FpuAccess, type UserContext } from './signals.js';
import type { Registers } from '../kvm/kvm.js';

const FAULT_SIGNALS: Record<number, number> = {
  0: SIG.SIGFPE, 1: SIG.SIGTRAP, 3: SIG.SIGTRAP, 4: SIG.SIGSEGV, 5: SIG.SIGSEGV, 6: SIG.SIGILL,
  7: SIG.SIGSEGV, 10: SIG.SIGSEGV, 11: SIG.SIGBUS, 12: SIG.SIGBUS, 13: SIG.SIGSEGV, 14: SIG.SIGSEGV,
  16: SIG.SIGFPE, 17: SIG.SIGBUS, 19: SIG.SIGFPE,
};
/** Calls that never change a file's metadata: they leave the stub's stat cache valid. */
const KEEPS_STATS = new Set<number>([
  SYS.read, SYS.pread64, SYS.readv, SYS.preadv, SYS.getdents64, SYS.close, SYS.fstat, SYS.stat, SYS.lstat,
  SYS.newfstatat, SYS.statx, SYS.lseek, SYS.mmap, SYS.mprotect, SYS.munmap, SYS.brk, SYS.madvise, SYS.mremap,
  SYS.rt_sigaction, SYS.rt_sigprocmask, SYS.ioctl, SYS.access, SYS.faccessat, SYS.faccessat2, SYS.readlink,
  SYS.readlinkat, SYS.getcwd, SYS.chdir, SYS.fchdir, SYS.fcntl, SYS.dup, SYS.dup2, SYS.dup3, SYS.clock_gettime,
  SYS.gettimeofday, SYS.time, SYS.uname, SYS.getrandom, SYS.prlimit64, SYS.arch_prctl, SYS.exit_group, SYS.exit,
  SYS.poll, SYS.ppoll, SYS.getuid, SYS.getgid, SYS.geteuid, SYS.getegid, SYS.getpid, SYS.getppid,
  SYS.sysinfo, SYS.getrusage, SYS.times, SYS.statfs, SYS.fstatfs, SYS.nanosleep, SYS.clock_nanosleep, SYS.clock_getres,
  SYS.getpgrp, SYS.getpgid, SYS.getsid, SYS.sched_getaffinity, SYS.rt_sigreturn, SYS.sigaltstack, SYS.getresuid,
  SYS.getresgid, SYS.getgroups, SYS.futex, SYS.getitimer, SYS.setitimer, SYS.alarm, SYS.getpriority, SYS.sched_yield,
  SYS.set_robust_list, SYS.rseq, SYS.prctl, SYS.pipe, SYS.pipe2, SYS.select, SYS.pselect6, SYS.umask, SYS.getcpu,
  SYS.wait4, SYS.kill, SYS.tgkill,
]);
const SEGV_MAPERR = 1, SEGV_ACCERR = 2, FPE_INTDIV = 1, ILL_ILLOPN = 2, BUS_ADRALN = 1, TRAP_BRKPT = 1, SI_KERNEL = 0x80;
const PF_PRESENT = 1, SI_USER = 0;
/** Calls whose EPIPE comes with SIGPIPE. */
const WRITES = new Set<number>([SYS.write, SYS.writev, SYS.pwrite64, SYS.pwritev, SYS.sendfile, SYS.copy_file_range]);

/** si_code for a fault: what Linux reports for the exception. */
function faultCode(vector: number, error: number): number {
  switch (vector) {
    case 14: return error & PF_PRESENT ? SEGV_ACCERR : SEGV_MAPERR;
    case 0: return FPE_INTDIV;
    case 6: return ILL_ILLOPN;
    case 17: return BUS_ADRALN;
    case 1: case 3: return TRAP_BRKPT;
    default: return SI_KERNEL;
  }
}
const OPEN_WRITES = O.WRONLY | O.RDWR | O.CREAT | O.TRUNC;

/** Whether a call may change what stat returns for some file (then the stat cache is dropped). */
function mayChangeFiles(nr: number, a: SyscallArgs, p: Process): boolean {
  if (KEEPS_STATS.has(nr)) return false;
  if (nr === SYS.openat) return (Number(BigInt.asIntN(32, a[2])) & OPEN_WRITES) !== 0;
  if (nr === SYS.open) return (Number(BigInt.asIntN(32, a[1])) & OPEN_WRITES) !== 0;
  if (nr === SYS.write || nr === SYS.writev) return p.fds.peek(Number(BigInt.asIntN(32, a[0]))) instanceof HostFile;
  return true;
}

/** struct trapframe (kernel/kernel.h): offsets of the fields the host may rewrite. */
const TF = { rax: 0, rcx: 16, rdx: 24, rsi: 32, rdi: 40, rip: 136, cs: 144 } as const;
/** A user-mode trap with an error code: 15 saved registers, vector, error, then the CPU's 5 words. */
const TRAPFRAME_SIZE = 22 * 8;
const PF_WRITE = 2;
const PF_INSTR = 16;
/** APIC timer ticks per millisecond (KVM's APIC bus runs at 1 GHz) and the tick period used for limits. */
const APIC_TICKS_PER_MS = 1_000_000;
const TIMER_PERIOD_MS = 50;

export class Kernel implements HypercallHandler {
  readonly machine: Machine;
  readonly opts: ProcessOptions;
  readonly limits: SandboxLimits;
  /** Live processes by pid. */
  readonly processes = new Map<number, Process>();
  /** The first process: the sandbox ends with it, and its end is the run's result. */
  init: Process | null = null;
  /** The task on the vCPU (one vCPU so far). */
  current: Task | null = null;
  syscallCount = 0;
  private nextPid = GUEST_PID;
  private faultRetries = 0;
  private lastFaultAddress = -1;

  /** machine: fresh or reset (see src/machine/pool.ts); the kernel does not own it. */
  constructor(machine: Machine, opts: ProcessOptions) {
    this.machine = machine;
    this.opts = opts;
    this.limits = new SandboxLimits(opts.timeoutMs, opts.maxOutputBytes, machine.memory.size, opts.cancelled);
  }

  /** A new pid: the first is GUEST_PID, then counting up (no reuse so far). */
  allocPid(): number {
    return this.nextPid++;
  }

  /**
   * Create the first process, with the sandbox's stdin, stdout and stderr as fds 0-2, and exec
   * program in it. Throws NotRunnableError when the program cannot run.
   */
  exec(program: Buffer): Process {
    if (this.init) throw new Error('kvmbox: this sandbox already has its first process');
    const opts = this.opts;
    const limits = this.limits;
    const fds = new FdTable(opts.maxOpenFiles ?? 1024);
    // While a host fd takes nothing, the writer asks whether the run is ending (src/api/run.ts).
    const stop = () => this.current?.process.checkDeadline() ?? true;
    const limit = (s: OutputSink): OutputSink => {
      let kept = 0;
      return {
        // With an output limit every write is counted when it happens: none is deferred.
        tty: s.tty, hostFd: s.hostFd, deferrable: s.deferrable && opts.maxOutputBytes === undefined,
        write: (b) => {
          limits.outputBytes += b.length;
          if (s.limit !== undefined && kept + b.length > s.limit) {
            // A capture full: keep what fits, then stop the program (the host's memory for
            // captured output is bounded by the limit, whatever the program writes).
            if (kept < s.limit) s.write(b.subarray(0, s.limit - kept), stop);
            kept = s.limit;
            const p = this.current?.process;
            if (p && (!p.exit || p.exit.kind === 'exited')) {
              p.exit = { kind: 'output-limit', message: `kvmbox: captured output limit of ${s.limit} bytes reached; program stopped` };
            }
            return;
          }
          kept += b.length;
          s.write(b, stop);
        },
      };
    };
    fds.install(new StdioFile('pipe:[stdin]', O.RDONLY, null, opts.stdin));
    fds.install(new StdioFile('pipe:[stdout]', O.WRONLY, limit(opts.stdout), null));
    fds.install(new StdioFile('pipe:[stderr]', O.WRONLY, limit(opts.stderr), null));
    const p = new Process({
      pid: this.allocPid(), parent: null, machine: this.machine, vfs: opts.vfs, fds, cwd: normalize(opts.cwd), limits,
    });
    this.processes.set(p.pid, p);
    this.init = p;
    const t = new Task(p, p.pid, this.machine.vcpu);
    p.tasks.push(t);
    this.current = t;
    exec(t, program, { argv: opts.argv, envp: opts.envp, exePath: opts.exePath }, {
      traced: opts.trace !== undefined,
      patchSyscalls: opts.patchSyscalls !== false,
      timerCount: opts.timeoutMs || (opts.cancelled && this.machine.hasTimer) ? TIMER_PERIOD_MS * APIC_TICKS_PER_MS : 0,
    });
    return p;
  }

  /** Run to the end of the first process. */
  run(): ExitReason {
    const init = this.init;
    if (!init) throw new Error('kvmbox: nothing to run: exec a program first');
    this.limits.start();
    try {
      this.machine.run(this);
      // Output the stub buffered before the end (exit, a fault, a limit): delivered as on Linux.
      init.stubCache.drainOutput(init.fds);
    } catch (e) {
      init.exit = { kind: 'vm-error', message: `kvmbox: internal error: ${(e as Error).stack ?? e}` };
    }
    return init.exit ?? { kind: 'vm-error', message: 'kvmbox: the VM stopped without an exit' };
  }

  /** Close every process's files. The machine is the caller's. */
  close(): void {
    for (const p of this.processes.values()) p.close();
    this.processes.clear();
  }

  /** The task on the vCPU; hypercalls come only while one runs. */
  private task(): Task {
    if (!this.current) throw new Error('kvmbox: a hypercall with no task on the vCPU');
    return this.current;
  }

  /** End the run with a VM error (the sandbox's, reported through the first process). */
  private fail(message: string): void {
    const p = this.current?.process ?? this.init;
    if (p) p.exit = { kind: 'vm-error', message };
  }

  // ---- hypercalls ----

  hypercall(nr: number, vcpu: Vcpu): HypercallResult {
    switch (nr) {
      case Hypercall.SYSCALL: return this.syscall(this.task(), vcpu);
      case Hypercall.FAULT: return this.fault(this.task(), vcpu);
      case Hypercall.TIMER: return this.timer(vcpu);
      case Hypercall.PANIC: {
        const r = vcpu.getRegs();
        this.fail(`kvmbox: guest kernel fault: ${EXCEPTION_NAMES[Number(r.rdi)] ?? `vector ${r.rdi}`} at rip 0x${r.r10.toString(16)}, error code 0x${r.rsi.toString(16)}, address 0x${r.rdx.toString(16)}`);
        return { action: 'stop' };
      }
      default:
        this.fail(`kvmbox: unknown hypercall ${nr} from the guest`);
        return { action: 'stop' };
    }
  }

  unexpectedExit(exit: VcpuExit, vcpu: Vcpu): void {
    let where = '';
    try {
      const r = vcpu.getRegs();
      where = ` at rip 0x${r.rip.toString(16)}`;
    } catch { /* registers unavailable */ }
    const what = exit.kind === 'io' ? `${exit.direction} on port 0x${exit.port.toString(16)}`
      : exit.kind === 'mmio' ? `access to unbacked guest address 0x${exit.address.toString(16)}`
      : exit.kind === 'internal-error' ? `KVM internal error (suberror ${exit.suberror})`
      : exit.kind === 'fail-entry' ? `VM entry failure (reason 0x${exit.reason.toString(16)})`
      : exit.kind === 'shutdown' ? 'triple fault (the guest kernel could not handle an exception)'
      : exit.kind;
    this.fail(`kvmbox: the VM stopped: ${what}${where}`);
  }

  private syscall(t: Task, vcpu: Vcpu): HypercallResult {
    const a: SyscallArgs = [vcpu.reg('rdi'), vcpu.reg('rsi'), vcpu.reg('rdx'), vcpu.reg('r10'), vcpu.reg('r8'), vcpu.reg('r9')];
    if ((vcpu.reg('rax') & 0xffffffffn) === BigInt(SYS.rt_sigreturn) && this.userContextAtSyscall(vcpu)) return this.sigreturn(t, vcpu);
    const result = this.serve(t, vcpu.reg('rax'), a);
    if (t.process.exit) return { action: 'stop' };
    vcpu.setReg('rax', result);
    if (hasDeliverable(t)) {
      const regs = this.userContextAtSyscall(vcpu);
      // On the user-stub path an exit from the middle of the stub's own code has no user context
      // in the registers: the signal stays pending until the next plain exit.
      if (regs) return this.deliverTo(t, { regs, trapno: 0, err: 0, cr2: 0n }, true);
    }
    return { action: 'resume' };
  }

  /**
   * The user context of a system-call exit: the registers, with rip = rcx (where `syscall`
   * returns); rflags is r11 on the cpl0-entry path, where `syscall` saved it, and the live flags
   * on the user-stub path. On the user-stub path only the stub's plain exits qualify (the `out`
   * followed by `jmp *%rcx`, registers as the program left them); null otherwise.
   */
  private userContextAtSyscall(vcpu: Vcpu): Registers | null {
    const r = vcpu.getRegs();
    if (this.machine.syscallPath === 'user-stub') {
      const stub = BigInt(PHYS_USER_STUB);
      if (r.rip < stub || r.rip >= stub + BigInt(STUB_SIZE) - 1n) return null;
      const at = Number(r.rip);
      if (this.machine.memory.u8(at) !== 0xff || this.machine.memory.u8(at + 1) !== 0xe1) return null;
      return { ...r, rip: r.rcx };
    }
    return { ...r, rip: r.rcx, rflags: r.r11 };
  }

  private fpu(vcpu: Vcpu): FpuAccess {
    return {
      get: () => vcpu.getFxsave(),
      set: (fx) => { if (fx) vcpu.setFxsave(fx); else vcpu.resetFpu(); },
    };
  }

  /**
   * Deliver t's pending signals from ctx and enter the handler, or end the process. From a
   * system-call exit the handler is entered through the call's own return (sysretq to rcx with
   * flags r11 on the cpl0-entry path, the stub's `jmp *%rcx` on the user-stub path), which needs
   * no special registers; rcx and r11 are the call's to clobber. Otherwise as an iret would.
   */
  private deliverTo(t: Task, ctx: UserContext, fromSyscall = false): HypercallResult {
    const d = deliver(t, ctx, this.fpu(t.vcpu));
    if (d.kind === 'exit') return { action: 'stop' };
    if (d.kind === 'handler') {
      if (fromSyscall) {
        const cur = t.vcpu.getRegs();
        const stub = this.machine.syscallPath === 'user-stub';
        t.vcpu.setRegs({ ...d.regs, rcx: d.regs.rip, r11: d.regs.rflags, rip: cur.rip, rflags: stub ? d.regs.rflags : cur.rflags });
      } else {
        this.machine.enterUser(d.regs);
      }
    }
    return { action: 'resume' };
  }

  /** rt_sigreturn: restore the context saved in the frame, then deliver what became unblocked. */
  private sigreturn(t: Task, vcpu: Vcpu): HypercallResult {
    this.syscallCount++;
    const rsp = vcpu.reg('rsp');
    const regs = sigreturn(t, rsp, this.fpu(vcpu));
    if (this.opts.trace) this.opts.trace(formatSyscall(t.process, SYS.rt_sigreturn, [rsp, 0n, 0n, 0n, 0n, 0n], regs ? regs.rax : -E.EFAULT, false));
    if (!regs) {
      killWith(t.process, SIG.SIGSEGV, `bad signal frame at 0x${rsp.toString(16)} (rt_sigreturn)`);
      return { action: 'stop' };
    }
    if (hasDeliverable(t)) {
      const d = deliver(t, { regs, trapno: 0, err: 0, cr2: 0n }, this.fpu(vcpu));
      if (d.kind === 'exit') return { action: 'stop' };
      if (d.kind === 'handler') { this.machine.enterUser(d.regs); return { action: 'resume' }; }
    }
    this.machine.enterUser(regs);
    return { action: 'resume' };
  }

  /** Serve one Linux system call for task t; the result for rax (a value or -errno). */
  private serve(t: Task, rax: bigint, a: SyscallArgs): bigint {
    const p = t.process;
    // Like Linux, only the low 32 bits name the call.
    const nr = Number(rax & 0xffffffffn);
    p.stubCache.drain();
    p.stubCache.drainOutput(p.fds);
    p.stubCache.takeBrk(p.space);
    const clearTid = p.stubCache.clearTid();
    if (clearTid !== null) t.clearChildTid = clearTid;
    p.dirCache.sync(p.fds);
    if (mayChangeFiles(nr, a, p)) p.dirCache.forget();
    this.syscallCount++;
    const fn = SYSCALLS[nr];
    let result: number | bigint;
    if (!fn) {
      result = -E.ENOSYS;
    } else {
      try {
        result = fn(t, a);
      } catch (e) {
        if (e instanceof Errno) result = -e.errno;
        else throw e;
      }
    }
    if (this.opts.trace) this.opts.trace(formatSyscall(p, nr, a, result, !fn));
    // A write to a pipe with no reader also raises SIGPIPE (src/fs/open-file.ts leaves it to us).
    if (result === -E.EPIPE && WRITES.has(nr)) raise(t, SIG.SIGPIPE, { code: SI_USER, pid: p.pid });
    if (nr === SYS.getdents64 && BigInt(result) > 0n) {
      const f = p.fds.peek(Number(BigInt.asIntN(32, a[0])));
      if (f instanceof HostFile) p.dirCache.listStats(f, p.space.memory.slice(Number(a[1]), Number(result)));
    }
    if (nr === SYS.openat && BigInt(result) >= 0n && (Number(a[2] & 0xffffffffn) & (O.DIRECTORY | O.PATH)) === O.DIRECTORY) {
      const fd = Number(result);
      const f = p.fds.peek(fd);
      if (f instanceof HostFile) p.dirCache.openedDir(p.fds, fd, f);
    }
    if (nr === SYS.read && BigInt(result) > 0n && BigInt(result) === a[2]) {
      const fd = Number(BigInt.asIntN(32, a[0]));
      const f = p.fds.get(fd);
      if (f instanceof HostFile) p.stubCache.readAhead(fd, f);
    }
    p.stubCache.publishFdMasks(p.fds);
    p.stubCache.publishBrk(p.space);
    p.dirCache.afterServe(p.fds);
    if (!p.exit && this.limits.outputExceeded()) {
      p.exit = { kind: 'output-limit', message: `kvmbox: output limit of ${this.opts.maxOutputBytes} bytes reached; program stopped` };
    }
    return BigInt(result);
  }

  private fault(t: Task, vcpu: Vcpu): HypercallResult {
    const p = t.process;
    const vector = Number(vcpu.reg('rdi'));
    const error = Number(vcpu.reg('rsi'));
    const cr2 = vcpu.reg('rdx');
    const rip = vcpu.reg('r10');
    if (vector === 14 && cr2 < BigInt(Number.MAX_SAFE_INTEGER)) {
      // A page the host has mapped with the needed rights but the vCPU still saw as absent
      // (a cached translation): drop it and retry, a bounded number of times. Also inside the
      // stub's copies, before they turn into EFAULT.
      const addr = Number(cr2);
      const need = error & PF_WRITE ? PROT_WRITE : error & PF_INSTR ? PROT_EXEC : PROT_READ;
      if (p.space.growStack(addr)) {
        vcpu.setReg('rax', BigInt(FAULT_RETRY));
        return { action: 'resume' };
      }
      if (p.space.paging.accessible(addr, 1, need)) {
        this.faultRetries = addr === this.lastFaultAddress ? this.faultRetries + 1 : 0;
        this.lastFaultAddress = addr;
        if (this.faultRetries < 3) {
          vcpu.setReg('rax', BigInt(FAULT_RETRY));
          return { action: 'resume' };
        }
      }
    }
    // #PF, or #GP for a non-canonical address, inside one of the stub's copies: EFAULT, as Linux.
    if ((vector === 14 || vector === 13) && this.stubCopyFault(rip)) {
      vcpu.setReg('rax', BigInt(FAULT_RETRY));
      return { action: 'resume' };
    }
    const signal = FAULT_SIGNALS[vector] ?? SIG.SIGSEGV;
    const user = this.userTrapContext(vcpu, vector);
    if (user) {
      // A handler for the signal that is not blocked runs; a blocked or ignored fault signal
      // kills, as on Linux (force_sig_fault).
      const act = p.sigactions.get(signal)?.readBigUInt64LE(0) ?? 0n;
      if (act > 1n && (t.sigmask & bit(signal)) === 0n) {
        const code = faultCode(vector, error);
        const addr = vector === 14 ? cr2 : vector === 13 ? 0n : rip;
        raise(t, signal, { code, addr });
        return this.deliverTo(t, { regs: user, trapno: vector, err: error, cr2: vector === 14 ? cr2 : 0n });
      }
    }
    let detail = EXCEPTION_NAMES[vector] ?? `exception ${vector}`;
    if (vector === 14) {
      const access = error & PF_INSTR ? 'executing' : error & PF_WRITE ? 'writing' : 'reading';
      const kernel = cr2 >= KERNEL_VBASE ? ' (kernel memory)' : '';
      detail = `page fault ${access} address 0x${cr2.toString(16)}${kernel}`;
    }
    const message = `kvmbox: program killed by ${SIGNAL_NAMES[signal]}: ${detail} at rip 0x${rip.toString(16)}`;
    p.exit = { kind: 'signaled', signal, message };
    vcpu.setReg('rax', BigInt(FAULT_KILL));
    return { action: 'stop' };
  }

  /**
   * The user context a trap from user mode saved on the kernel stack (kernel/entry.S), for a
   * hypercall made from trap() (fault or timer); null when the trap did not come from the
   * program's own code (kernel mode, the stub's page, or the system-call entry's own #GP report,
   * which has no trap frame).
   */
  private userTrapContext(vcpu: Vcpu, vector: number): Registers | null {
    const rsp = vcpu.reg('rsp');
    const kstackBottom = KERNEL_VBASE + BigInt(PHYS_KSTACK_BOTTOM), kstackTop = KERNEL_VBASE + BigInt(PHYS_KSTACK_TOP);
    if (rsp < kstackBottom || rsp >= kstackTop) return null;
    const m = this.machine.memory;
    const frame = PHYS_KSTACK_TOP - TRAPFRAME_SIZE;
    const f = (i: number): bigint => m.u64(frame + i * 8);
    if (f(18) !== BigInt(GDT_USER_CS) || f(15) !== BigInt(vector)) return null;
    const rip = f(17);
    const stub = BigInt(PHYS_USER_STUB);
    if (rip >= stub && rip < stub + BigInt(STUB_SIZE)) return null;
    return {
      rax: f(0), rbx: f(1), rcx: f(2), rdx: f(3), rsi: f(4), rdi: f(5), rbp: f(6), r8: f(7), r9: f(8), r10: f(9),
      r11: f(10), r12: f(11), r13: f(12), r14: f(13), r15: f(14), rip, rflags: f(19), rsp: f(20),
    };
  }

  /**
   * A page fault inside one of the user-mode stub's copies from its caches means the program
   * passed a bad pointer (read's buffer, newfstatat's path or buffer): make the call return
   * EFAULT, as Linux would, by rewriting the
   * saved user context the kernel will iret to (return address and the registers the stub saved).
   */
  private stubCopyFault(rip: bigint): boolean {
    if (!this.machine.kernel.stubCopy.some(([start, end]) => rip >= BigInt(start) && rip < BigInt(end))) return false;
    const m = this.machine.memory;
    const frame = PHYS_KSTACK_TOP - TRAPFRAME_SIZE;
    if (m.u64(frame + TF.cs) !== BigInt(GDT_USER_CS)) return false;
    const ret = m.u64(PHYS_SHARED + SH_SAVE_RCX);
    m.setU64(frame + TF.rax, BigInt(-E.EFAULT));
    m.setU64(frame + TF.rcx, ret);
    m.setU64(frame + TF.rip, ret);
    m.setU64(frame + TF.rdi, m.u64(PHYS_SHARED + SH_SAVE_RDI));
    m.setU64(frame + TF.rsi, m.u64(PHYS_SHARED + SH_SAVE_RSI));
    m.setU64(frame + TF.rdx, m.u64(PHYS_SHARED + SH_SAVE_RDX));
    return true;
  }

  private timer(vcpu: Vcpu): HypercallResult {
    const t = this.current;
    const p = t?.process ?? this.init;
    if (!p || p.checkDeadline()) return { action: 'stop' };
    // SIGALRM (or anything else pending) for a program that makes no system calls.
    if (t && hasDeliverable(t)) {
      const user = this.userTrapContext(vcpu, VEC_TIMER);
      if (user) return this.deliverTo(t, { regs: user, trapno: 0, err: 0, cr2: 0n });
    }
    return { action: 'resume' };
  }
}
