// One guest program: its machine, memory map, files and identity, and the hypercall handler
// that serves it. Every value that arrives from the guest (registers, pointers, lengths, paths,
// fds) is untrusted: it is checked here or in the system-call functions before use, and a bad
// one fails that call with an errno, never the host.
import type { Vcpu, VcpuExit } from '../kvm/kvm.js';
import type { Machine, HypercallHandler, HypercallResult, PatchLayout } from '../machine/machine.js';
import { EXCEPTION_NAMES, PAGE_SIZE } from '../machine/x86.js';
import { AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE } from './address-space.js';
import {
  FAULT_KILL, FAULT_RETRY, GDT_USER_CS, RLIM_NLIMITS, Hypercall, KERNEL_VBASE, PHYS_KSTACK_TOP, PHYS_SHARED, SH_SAVE_RCX, SH_SAVE_RDI,
  SH_SAVE_RDX, SH_SAVE_RSI,
} from '../abi/abi.generated.js';
import { StubCache } from './stub-cache.js';
import { DirCache } from '../fs/dir-cache.js';
import { MapPool } from './map-pool.js';
import { FdTable, HostFile, StdioFile, type InputSource, type OutputSink } from '../fs/open-file.js';
import { normalize, PATH_MAX, Vfs } from '../fs/vfs.js';
import { AT_FDCWD, E, Errno, O, SIG, SIGNAL_NAMES, STAT_SIZE, SYS, SYSCALL_NAMES } from '../abi/linux.js';
import { loadProgram } from './exec.js';
import { readInterpreter } from './interp.js';
import { planPatches, type PatchPlan } from './site-patch.js';
import { SYSCALLS, type SyscallArgs } from './syscalls/table.js';
// After the table, which loads fs.js in the order the syscall modules need.
import { openPath, permitted } from './syscalls/fs.js';
import { rlimit } from './syscalls/proc.js';
import { formatSyscall } from './syscalls/trace.js';

export interface ProcessOptions {
  vfs: Vfs;
  argv: readonly string[];
  envp: readonly string[];
  /** Guest path of the program (AT_EXECFN, /proc/self/exe). */
  exePath: string;
  cwd: string;
  stdin: InputSource | null;
  stdout: OutputSink;
  stderr: OutputSink;
  /** Called with one line per system call when tracing. */
  trace?: (line: string) => void;
  timeoutMs?: number;
  maxOpenFiles?: number;
  /** Bytes of output (stdout+stderr) after which the program is stopped. */
  maxOutputBytes?: number;
  /** Rewrite the program's `syscall` and `cpuid` sites into direct jumps to the user-mode stub
   * where that is provably safe (src/linux/site-patch.ts); default true. Only on the user-stub path. */
  patchSyscalls?: boolean;
}

export type ExitReason =
  | { kind: 'exited'; status: number }
  | { kind: 'signaled'; signal: number; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'output-limit'; message: string }
  | { kind: 'vm-error'; message: string };

/** Exit status as `docker run` and `env` report it. */
export function exitStatusOf(r: ExitReason): number {
  switch (r.kind) {
    case 'exited': return r.status & 0xff;
    case 'signaled': return 128 + r.signal;
    case 'timeout': return 124;
    case 'output-limit': return 128 + SIG.SIGXFSZ;
    case 'vm-error': return 125;
  }
}

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
/** The guest's identity (a plain user, like `docker run --user 1000`) is part of the ABI: the
 * user-mode stub answers getpid/getuid... itself. */
import { GUEST_GID, GUEST_UID } from '../abi/abi.generated.js';
export { GUEST_GID, GUEST_PID, GUEST_PPID, GUEST_UID } from '../abi/abi.generated.js';
/** APIC timer ticks per millisecond (KVM's APIC bus runs at 1 GHz) and the tick period used for limits. */
const APIC_TICKS_PER_MS = 1_000_000;
/** Heap mapped beyond a break the host moves, for the stub to move it in (glibc's malloc grows
 * the heap by 132 KiB and more at a time). */
const BRK_SLACK = 512 * 1024;
/** Patch plans per program image (the image cache in src/api/run.ts keeps one Buffer per file). */
const patchPlans = new WeakMap<Buffer, { bias: number; layout: PatchLayout; plan: PatchPlan }>();
const TIMER_PERIOD_MS = 50;

export class Process implements HypercallHandler {
  readonly machine: Machine;
  readonly space: AddressSpace;
  readonly fds: FdTable;
  readonly vfs: Vfs;
  cwd: string[];
  umask = 0o022;
  fsBase = 0n;
  exit: ExitReason | null = null;
  readonly opts: ProcessOptions;
  syscallCount = 0;
  private stubCache!: StubCache;
  /** The user-mode stub's directory and stat cache (exported for tests and the bench profile). */
  dirCache!: DirCache;
  /** Anonymous mappings the stub hands out again (src/linux/map-pool.ts). */
  mapPool!: MapPool;
  outputBytes = 0;
  private deadline = 0;
  private faultRetries = 0;
  private lastFaultAddress = -1;

  /** machine: fresh or reset (see src/machine/pool.ts); the Process does not own it. */
  constructor(machine: Machine, opts: ProcessOptions, program: Buffer) {
    this.opts = opts;
    this.vfs = opts.vfs;
    this.cwd = normalize(opts.cwd);
    this.machine = machine;
    {
      this.space = new AddressSpace(this.machine.memory, this.machine.paging);
      const hwcap = this.machine.hwcap;
      const loaded = loadProgram(this.space, program, opts.exePath, {
        argv: opts.argv, envp: opts.envp, execfn: opts.exePath, uid: GUEST_UID, gid: GUEST_GID, hwcap,
        readInterpreter: (path) => readInterpreter(opts.vfs, path, opts.exePath),
      });
      this.fds = new FdTable(opts.maxOpenFiles ?? 1024);
      const limit = (s: OutputSink): OutputSink => ({
        // With an output limit every write is counted when it happens: none is deferred.
        tty: s.tty, hostFd: s.hostFd, deferrable: s.deferrable && opts.maxOutputBytes === undefined,
        write: (b) => { this.outputBytes += b.length; s.write(b); },
      });
      this.fds.install(new StdioFile('pipe:[stdin]', O.RDONLY, null, opts.stdin));
      this.fds.install(new StdioFile('pipe:[stdout]', O.WRONLY, limit(opts.stdout), null));
      this.fds.install(new StdioFile('pipe:[stderr]', O.WRONLY, limit(opts.stderr), null));
      const timerCount = opts.timeoutMs ? TIMER_PERIOD_MS * APIC_TICKS_PER_MS : 0;
      const fast = machine.syscallPath === 'user-stub' && opts.trace === undefined;
      this.stubCache = new StubCache(machine.memory, fast);
      this.mapPool = new MapPool(machine.memory, fast);
      // The stub moves the break within what the host mapped beyond it (kernel/stub.S brk_fast).
      if (fast) {
        this.space.brkSlack = BRK_SLACK;
        this.space.growHeap();
      }
      this.dirCache = new DirCache(machine.memory, fast, {
        reopen: (path, flags) => openPath(this, normalize(path), flags, 0),
        listable: (st) => permitted(st, 4 | 1),
        readOnly: (path) => {
          try {
            const loc = this.vfs.locate(normalize(path));
            return loc.kind === 'host' && !loc.grant.writable;
          } catch {
            return false;
          }
        },
      });
      if (fast && opts.patchSyscalls !== false) this.patchSites(program, loaded.bias);
      this.machine.start(loaded.entry, loaded.stackPointer, timerCount, opts.trace !== undefined,
        [[this.space.stackLimit, this.space.stackBottom]]);
      this.stubCache.publishFdMasks(this.fds);
      this.dirCache.start(this.fds);
      this.stubCache.publishClock(machine.vcpu);
      this.stubCache.publishRandom();
      this.stubCache.publishFsBase(machine.userFsBase);
      this.stubCache.publishIdentity(Array.from({ length: RLIM_NLIMITS }, (_, r) => rlimit(this, r)), opts.exePath);
      this.stubCache.publishBrk(this.space);
    }
  }

  private patchSites(program: Buffer, bias: number): void {
    const m = this.machine;
    const layout = m.patchLayout;
    let entry = patchPlans.get(program);
    if (!entry || entry.bias !== bias || JSON.stringify(entry.layout) !== JSON.stringify(layout)) {
      entry = { bias, layout, plan: planPatches(program, bias, layout) };
      patchPlans.set(program, entry);
    }
    m.installTrampolines(entry.plan.trampolines);
    for (const s of entry.plan.sites) m.memory.write(s.addr, s.bytes);
  }

  /** Run to the end. */
  run(): ExitReason {
    if (this.opts.timeoutMs) this.deadline = performance.now() + this.opts.timeoutMs;
    try {
      this.machine.run(this);
      // Output the stub buffered before the end (exit, a fault, a limit): delivered as on Linux.
      this.stubCache.drainOutput(this.fds);
    } catch (e) {
      this.exit = { kind: 'vm-error', message: `kvmbox: internal error: ${(e as Error).stack ?? e}` };
    }
    return this.exit ?? { kind: 'vm-error', message: 'kvmbox: the VM stopped without an exit' };
  }

  /** Close the program's files. The machine is the caller's. */
  close(): void {
    this.dirCache?.close();
    this.fds?.closeAll();
  }

  // ---- hypercalls ----

  hypercall(nr: number, vcpu: Vcpu): HypercallResult {
    switch (nr) {
      case Hypercall.SYSCALL: return this.syscall(vcpu);
      case Hypercall.FAULT: return this.fault(vcpu);
      case Hypercall.TIMER: return this.timer();
      case Hypercall.PANIC: {
        const r = vcpu.getRegs();
        this.exit = {
          kind: 'vm-error',
          message: `kvmbox: guest kernel fault: ${EXCEPTION_NAMES[Number(r.rdi)] ?? `vector ${r.rdi}`} at rip 0x${r.r10.toString(16)}, error code 0x${r.rsi.toString(16)}, address 0x${r.rdx.toString(16)}`,
        };
        return { action: 'stop' };
      }
      default:
        this.exit = { kind: 'vm-error', message: `kvmbox: unknown hypercall ${nr} from the guest` };
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
    this.exit = { kind: 'vm-error', message: `kvmbox: the VM stopped: ${what}${where}` };
  }

  private syscall(vcpu: Vcpu): HypercallResult {
    const a: SyscallArgs = [vcpu.reg('rdi'), vcpu.reg('rsi'), vcpu.reg('rdx'), vcpu.reg('r10'), vcpu.reg('r8'), vcpu.reg('r9')];
    const result = this.serve(vcpu.reg('rax'), a);
    if (this.exit) return { action: 'stop' };
    vcpu.setReg('rax', result);
    return { action: 'resume' };
  }

  /** Serve one Linux system call; the result for rax (a value or -errno). */
  private serve(rax: bigint, a: SyscallArgs): bigint {
    // Like Linux, only the low 32 bits name the call.
    const nr = Number(rax & 0xffffffffn);
    this.stubCache.drain();
    this.stubCache.drainOutput(this.fds);
    this.stubCache.takeBrk(this.space);
    this.dirCache.sync(this.fds);
    if (mayChangeFiles(nr, a, this)) this.dirCache.forget();
    this.syscallCount++;
    const fn = SYSCALLS[nr];
    let result: number | bigint;
    if (!fn) {
      result = -E.ENOSYS;
    } else {
      try {
        result = fn(this, a);
      } catch (e) {
        if (e instanceof Errno) result = -e.errno;
        else throw e;
      }
    }
    if (this.opts.trace) this.opts.trace(formatSyscall(this, nr, a, result, !fn));
    if (nr === SYS.newfstatat && result === 0 && BigInt.asIntN(32, a[0]) === -100n && (a[3] === 0n || a[3] === 0x100n)) {
      this.dirCache.rememberStat(this.userString(a[1]), a[3] === 0n, this.userBuffer(a[2], STAT_SIZE));
    }
    if (nr === SYS.getdents64 && BigInt(result) > 0n) {
      const f = this.fds.peek(Number(BigInt.asIntN(32, a[0])));
      if (f instanceof HostFile) this.dirCache.listStats(f, this.machine.memory.slice(Number(a[1]), Number(result)));
    }
    if (nr === SYS.openat && BigInt(result) >= 0n && (Number(a[2] & 0xffffffffn) & (O.DIRECTORY | O.PATH)) === O.DIRECTORY) {
      const fd = Number(result);
      const f = this.fds.peek(fd);
      if (f instanceof HostFile) this.dirCache.openedDir(this.fds, fd, f);
    }
    if (nr === SYS.read && BigInt(result) > 0n && BigInt(result) === a[2]) {
      const fd = Number(BigInt.asIntN(32, a[0]));
      const f = this.fds.get(fd);
      if (f instanceof HostFile) this.stubCache.readAhead(fd, f);
    }
    this.stubCache.publishFdMasks(this.fds);
    this.stubCache.publishBrk(this.space);
    this.dirCache.afterServe(this.fds);
    if (!this.exit && this.opts.maxOutputBytes !== undefined && this.outputBytes > this.opts.maxOutputBytes) {
      this.exit = { kind: 'output-limit', message: `kvmbox: output limit of ${this.opts.maxOutputBytes} bytes reached; program stopped` };
    }
    return BigInt(result);
  }

  private fault(vcpu: Vcpu): HypercallResult {
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
      if (this.space.growStack(addr)) {
        vcpu.setReg('rax', BigInt(FAULT_RETRY));
        return { action: 'resume' };
      }
      if (this.space.paging.accessible(addr, 1, need)) {
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
    let detail = EXCEPTION_NAMES[vector] ?? `exception ${vector}`;
    if (vector === 14) {
      const access = error & PF_INSTR ? 'executing' : error & PF_WRITE ? 'writing' : 'reading';
      const kernel = cr2 >= KERNEL_VBASE ? ' (kernel memory)' : '';
      detail = `page fault ${access} address 0x${cr2.toString(16)}${kernel}`;
    }
    const message = `kvmbox: program killed by ${SIGNAL_NAMES[signal]}: ${detail} at rip 0x${rip.toString(16)}`;
    this.exit = { kind: 'signaled', signal, message };
    vcpu.setReg('rax', BigInt(FAULT_KILL));
    return { action: 'stop' };
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

  private timer(): HypercallResult {
    return this.checkDeadline() ? { action: 'stop' } : { action: 'resume' };
  }

  /** Milliseconds until the time limit, or null when there is none. For calls that block. */
  timeLeftMs(): number | null {
    return this.deadline ? this.deadline - performance.now() : null;
  }

  /** End the program if its time is up; true when it did. */
  checkDeadline(): boolean {
    if (this.deadline && performance.now() >= this.deadline && !this.exit) {
      this.exit = { kind: 'timeout', message: `kvmbox: time limit of ${(this.opts.timeoutMs! / 1000).toString()} s reached; program stopped` };
    }
    return this.exit !== null;
  }

  // ---- helpers for system calls: every guest pointer goes through these ----

  /** A live view of user memory [addr, addr+len), which must be mapped with prot. */
  userBuffer(addr: bigint | number, len: bigint | number, prot = PROT_READ): Buffer {
    const a = typeof addr === 'bigint' ? (addr > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(addr)) : addr;
    const n = typeof len === 'bigint' ? (len > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(len)) : len;
    if (!this.space.paging.accessible(a, n, prot)) throw new Errno(E.EFAULT);
    return this.machine.memory.slice(a, n);
  }

  /** A NUL-terminated string from user memory, at most max bytes. */
  userString(addr: bigint, max = PATH_MAX): string {
    if (addr > BigInt(Number.MAX_SAFE_INTEGER)) throw new Errno(E.EFAULT);
    let a = Number(addr);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const pageEnd = Math.floor(a / PAGE_SIZE) * PAGE_SIZE + PAGE_SIZE;
      const piece = this.userBuffer(a, pageEnd - a);
      const nul = piece.indexOf(0);
      const part = nul >= 0 ? piece.subarray(0, nul) : piece;
      chunks.push(part);
      total += part.length;
      if (total >= max) throw new Errno(E.ENAMETOOLONG);
      if (nul >= 0) break;
      a = pageEnd;
    }
    return Buffer.concat(chunks).toString();
  }

  /** Absolute guest path components for (dirfd, path). */
  pathAt(dirfd: number, path: string): string[] {
    if (path.startsWith('/')) return normalize(path);
    let base: string[];
    if (dirfd === AT_FDCWD) base = this.cwd;
    else {
      const f = this.fds.get(dirfd);
      if (!f.path.startsWith('/')) throw new Errno(E.ENOTDIR);
      base = normalize(f.path);
    }
    return normalize(base.join('/') + '/' + path);
  }

  /** The name of a system call for messages. */
  static syscallName(nr: number): string {
    return SYSCALL_NAMES[nr] ?? `syscall_${nr}`;
  }
}
