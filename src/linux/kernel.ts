// The kernel of one sandbox: it owns the machine, the processes and the pid allocator, and
// serves the hypercalls the machine's run loop hands it (HypercallHandler): a system call is
// dispatched through the table (syscalls/table.ts) for the task running on the vCPU, a fault
// ends or resumes that task's process, a timer tick checks the sandbox's limits.
//
// Every value that arrives from the guest (registers, pointers, lengths, paths, fds) is
// untrusted: it is checked here or in the system-call functions before use, and a bad one fails
// that call with an errno, never the host.
import { randomBytes } from 'node:crypto';
import { VcpuGroup, type Vcpu, type VcpuExit } from '../kvm/kvm.js';
import { hypercallOf, Machine, MachineError, type HypercallHandler, type HypercallResult, type SpaceMemory } from '../machine/machine.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from './address-space.js';
import {
  FAULT_KILL, FAULT_RETRY, GDT_USER_CS, GUEST_PID, Hypercall, KERNEL_VBASE, MAX_VCPUS, PHYS_KSTACK_TOP, PHYS_SHARED,
  PHYS_USER_STUB, STUB_SIZE, VEC_TIMER, SH_SAVE_RCX, SH_SAVE_RDI, SHARED_SIZE, SH_CACHE_FD,
  SH_SAVE_RDX, SH_SAVE_RSI,
} from '../abi/abi.generated.js';
import { FdTable, HostFile, StdioFile, WouldBlock, type OutputSink } from '../fs/open-file.js';
import { normalize, readWhole } from '../fs/vfs.js';
import { permitted } from '../fs/access.js';
import { AT_FDCWD, CLONE_NAMESPACES, E, Errno, O, SIG, SIGNAL_NAMES, STAT, STAT_SIZE, SYS } from '../abi/linux.js';
import * as libc from '../kvm/libc.js';
import { EXCEPTION_NAMES, MSR_FS_BASE, PAGE_SIZE } from '../machine/x86.js';
import { attachCaches, exec, type ExecEnv } from './exec.js';
import { NotRunnableError, parseElf } from './elf.js';
import { AsyncIo } from './async-io.js';
import { InterpreterNotFoundError, InterpreterNotGrantedError, MAX_SCRIPT_DEPTH, readInterpreter, scriptArgv, shebang } from './interp.js';
import { SandboxLimits } from './limits.js';
import { hostWaitedMs, pollBounded, pollfds, sleepBounded, WAIT_SLICE_MS } from './host-wait.js';
import { FileTooBig, Process, type CloneRequest, type ExitReason, type ProcessOptions, type ProcessTree } from './process.js';
import { Task, type SavedContext } from './task.js';
import { exitRobustList } from './robust.js';
import { FutexQueues, futexKey } from './futex.js';
import { MAX_SHARED_BACKINGS, type SharedBudget } from '../kvm/shared-memory.js';
import { ShmDir } from '../fs/shm.js';
import { FileMirrors } from './file-mirror.js';
import type { UnixNames } from '../fs/unix-socket.js';
import { Fifos } from '../fs/fifo.js';
import { FileLocks } from '../fs/locks.js';
import { SysvIpc } from './sysv-ipc.js';
import { PtyTable } from '../fs/pty.js';
import { TerminalModes } from './terminal.js';
import type { AddressSpace } from './address-space.js';
import { SYSCALLS } from './syscalls/table.js';
import { PidFd } from './syscalls/pidfd.js';
import type { SyscallArgs } from './syscalls/args.js';
import { formatFaultSignal, formatSyscall } from './syscalls/trace.js';
import { MqNamespace } from './mqueue.js';
import { screen } from './screen.js';
import { enterStop, exitStop, holdThreadExit, traceClone, tracedTaskEnded, traceExec, tracerEnded, report, hasTracee } from './ptrace.js';
import { callReturned, takeDue } from './tracing.js';
import {
  action, bit, CLD_CONTINUED, CLD_STOPPED, defaultAction, deliver, hasDeliverable, killWith, raise, sigreturn, SA_RESTART, SIG_DFL, SIG_IGN, type FpuAccess,
  type Delivery, type UserContext, checkTimers, dropTimerSignal, hangUpOrphans, linkedGroups, restoreSavedMask, stopComesNext,
  stoppedWithProcess, waitForContinue,
} from './signals.js';
import type { CpuidEntry, Registers } from '../kvm/kvm.js';
import { availableParallelism } from 'node:os';

const FAULT_SIGNALS: Record<number, number> = {
  0: SIG.SIGFPE, 1: SIG.SIGTRAP, 3: SIG.SIGTRAP, 4: SIG.SIGSEGV, 5: SIG.SIGSEGV, 6: SIG.SIGILL,
  7: SIG.SIGSEGV, 10: SIG.SIGSEGV, 11: SIG.SIGBUS, 12: SIG.SIGBUS, 13: SIG.SIGSEGV, 14: SIG.SIGSEGV,
  16: SIG.SIGFPE, 17: SIG.SIGBUS, 19: SIG.SIGFPE,
};
/** Calls that take rights away from mapped pages: other vCPUs must drop cached translations.
 * (User pages are identity-mapped, so a stale translation reaches only the same page of the same
 * process: this is for Linux's semantics, not the host's safety; SECURITY.md.) */
const SHRINKS_MAPPINGS = new Set<number>([SYS.munmap, SYS.mprotect, SYS.mremap, SYS.shmdt, SYS.shmat]);
/** How a sandbox ends when every task waits for another and no timer is left. */
const DEADLOCK = 'kvmbox: every process of the sandbox waits for another (a deadlock); the sandbox is stopped';
/** How often the run loop of several vCPUs looks at limits and time slices when no exit comes (ms). */
const LOOP_TICK_MS = 50;
/** A kicked vCPU still in the guest after this long is kicked again (ms). */
const KICK_AGAIN_MS = 200;

/**
 * One vCPU of the sandbox as the scheduler sees it. With one vCPU the kernel's own thread runs
 * it; with several (threads of a process in parallel), each runs on a native thread of the
 * helper library and the run loop serves their exits one at a time (docs/design.md).
 */
interface Cpu {
  readonly vcpu: Vcpu;
  readonly index: number;
  /** The task on it, null when idle. */
  task: Task | null;
  /** Resumed and not yet served: in the guest, or its exit waits to be served. */
  inGuest: boolean;
  /** Kicked since it was last resumed (a second kick would only repeat the first). */
  kicked: boolean;
  /** When it last entered the guest (performance.now() ms): its task's user time runs from here to the exit. */
  enteredAt: number;
  /** When it was last kicked (ms): a kick that has not made it leave by KICK_AGAIN_MS is repeated. */
  kickedAt: number;
  /**
   * Kicked at CPL0 and resumed to make the hypercall it was on its way to: not to be kicked again
   * before that exit. Kicked again at once, it would re-enter with immediate_exit set, leave
   * before running an instruction, and never reach the hypercall (a livelock seen as a hang of
   * fork beside a thread that makes system calls in a loop).
   */
  toHypercall: boolean;
  /** Its task must leave it at the next point where its context can be saved. */
  preempt: boolean;
  /** When its task got it (ms). */
  sliceStart: number;
  /**
   * The task that left this vCPU last, with the context it saved then, while nothing else has
   * run here since: its registers, FPU state and FS base are still the vCPU's (runTask resumes
   * it in place).
   */
  parked: { task: Task; ctx: SavedContext; rip: bigint } | null;
}

/** How often the vDSO's clock anchor is renewed (Machine.publishClock), in ms. */
const CLOCK_REANCHOR_MS = 1000;

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
const SEGV_MAPERR = 1, SEGV_ACCERR = 2, FPE_INTDIV = 1, ILL_ILLOPN = 2, BUS_ADRALN = 1, BUS_ADRERR = 2, TRAP_TRACE = 2, SI_KERNEL = 0x80;
const PF_PRESENT = 1, SI_USER = 0;
/** Calls whose EPIPE comes with SIGPIPE. */
const WRITES = new Set<number>([SYS.write, SYS.writev, SYS.pwrite64, SYS.pwritev, SYS.pwritev2, SYS.sendfile, SYS.copy_file_range,
  SYS.splice, SYS.tee, SYS.vmsplice]);

/** si_code for a fault: what Linux reports for the exception. */
function faultCode(vector: number, error: number): number {
  switch (vector) {
    case 14: return error & PF_PRESENT ? SEGV_ACCERR : SEGV_MAPERR;
    case 0: return FPE_INTDIV;
    case 6: return ILL_ILLOPN;
    case 17: return BUS_ADRALN;
    // A step (the trap flag) is TRAP_TRACE; int3 is the kernel's SIGTRAP, as Linux sends it.
    case 1: return TRAP_TRACE;
    case 3: return SI_KERNEL;
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

/** The shortest time slice of a process that makes no system call, when others can run (ms). */
const SLICE_MS = 100;
/** Bytes of program images execve keeps for the next exec of the same file (Kernel.readExecutable). */
const PROGRAM_CACHE_BYTES = 128 << 20;
/** serve's answer for a call that has to wait: the task is parked (Task.wait). */
const PARKED = Symbol('parked');
/** Processes a sandbox may hold at once (zombies count, as for RLIMIT_NPROC) unless told otherwise. */
export const DEFAULT_MAX_PROCESSES = 128;
const CLONE_VM = 0x100n, CLONE_FS = 0x200n, CLONE_FILES = 0x400n, CLONE_SIGHAND = 0x800n, CLONE_VFORK = 0x4000n;
const CLONE_PARENT = 0x8000n, CLONE_THREAD = 0x10000n, CLONE_SETTLS = 0x80000n, CLONE_PARENT_SETTID = 0x100000n;
const CLONE_CHILD_CLEARTID = 0x200000n, CLONE_CHILD_SETTID = 0x1000000n, CLONE_SYSVSEM = 0x40000n;
const CLONE_PIDFD = 0x1000n, CLONE_DETACHED = 0x400000n;
/** Flags kvmbox accepts and ignores for processes (namespaces are refused: EPERM, as for an unprivileged user). */
const CLONE_HARMLESS = CLONE_DETACHED | 0x2000n /* CLONE_PTRACE */ | 0x800000n /* CLONE_UNTRACED */ | 0x80000000n /* CLONE_IO */;
const CLD_EXITED = 1, CLD_KILLED = 2, CLD_DUMPED = 3;
const WNOHANG = 1, WUNTRACED = 2, WCONTINUED = 8, WNOWAIT = 0x01000000, SA_NOCLDWAIT = 2, AT_EMPTY_PATH = 0x1000;
/**
 * Calls Linux restarts after a handler with SA_RESTART, and after a signal that ran no handler
 * (a stop, then SIGCONT); the others fail with EINTR.
 */
const RESTARTABLE = new Set<number>([
  SYS.read, SYS.write, SYS.readv, SYS.writev, SYS.wait4, SYS.waitid, SYS.sendfile,
  SYS.recvfrom, SYS.recvmsg, SYS.sendto, SYS.sendmsg, SYS.accept, SYS.accept4, SYS.flock, SYS.ioctl,
]);
/**
 * Calls with a signal mask of their own that Linux runs again after a signal that ran no handler
 * (ERESTARTNOHAND), but not after a handler, even with SA_RESTART.
 */
const RESTARTED_WITHOUT_HANDLER = new Set<number>([SYS.rt_sigsuspend, SYS.ppoll, SYS.pselect6]);
/**
 * Waits that a stop signal with no handler leaves in place: after SIGCONT they go on to their
 * first deadline, as Linux restarts them with the time left (restart_syscall). A handler ends
 * them with EINTR.
 */
const KEPT_ACROSS_STOP = new Set<number>([SYS.nanosleep, SYS.clock_nanosleep, SYS.poll, SYS.select, SYS.futex, SYS.pause]);
/** What user mode may have in rflags (CF PF AF ZF SF TF DF OF AC ID); IF and bit 1 are always set. */
const USER_RFLAGS = 0x240dd5n, RFLAGS_FIXED = 0x202n;
/** execve: the longest `#!` line read, and how many interpreters may chain. */

/** vCPUs by default: one per host CPU, up to MAX_VCPUS. */
/** A vCPU with no task, as the scheduler starts it. */
function idleCpu(vcpu: Vcpu, index: number): Cpu {
  return { vcpu, index, task: null, inGuest: false, kicked: false, enteredAt: 0, kickedAt: 0, toHypercall: false, preempt: false, sliceStart: 0, parked: null };
}

function defaultVcpus(): number {
  return Math.min(MAX_VCPUS, availableParallelism());
}

export class Kernel implements HypercallHandler, ProcessTree {
  readonly machine: Machine;
  readonly opts: ProcessOptions;
  readonly limits: SandboxLimits;
  /** Live processes by pid. */
  readonly processes = new Map<number, Process>();
  /** The first process: the sandbox ends with it, and its end is the run's result. */
  init: Process | null = null;
  /** The task whose exit is being served (the task on this.cpu), or null. */
  current: Task | null = null;
  /** The sandbox's vCPUs; cpus[0] is the machine's first, where every program starts. */
  private readonly cpus: Cpu[];
  /** The vCPU whose exit is being served. */
  private cpu: Cpu;
  /** Set once the sandbox runs several vCPUs: their threads, whose exits the run loop waits for. */
  private group: VcpuGroup | null = null;
  /** Set by the first thread when vCPUs may be added: the run loop moves to several vCPUs. */
  private wantParallel = false;
  /** Most vCPUs the sandbox may use. */
  readonly maxVcpus: number;
  get cpuid(): readonly CpuidEntry[] {
    return this.machine.cpuid;
  }
  /** A task whose call (fork, execve) needs every other vCPU out of the guest; it runs first. */
  private exclusive: Task | null = null;
  syscallCount = 0;
  readonly maxProcesses: number;
  readonly bootId = randomBytes(16);
  /** The address space whose pages are in guest memory now. */
  private resident: AddressSpace | null = null;
  /** Set by a call that hands the vCPU to another task on its return (fork: the child first). */
  private yieldTo: Task | null = null;
  /** Set by execve: the vCPU already starts the new program; the call has no result to write. */
  private execed = false;
  /** Whether the sandbox has ever had a second process (trace lines then carry the pid). */
  private forked = false;
  /** Host bytes held by the images of address spaces not in guest memory. */
  private imageBytes = 0;
  /**
   * Each address space has memory and page tables of its own (Machine.newSpace), and a switch
   * between processes is a change of root: on the cpl0-entry path (hardware paging). On kvm_pvm
   * the processes take turns in the machine's memory (images).
   */
  private readonly ownSpaces: boolean;
  /**
   * MAP_SHARED memory of the sandbox's processes (host memory the address spaces map at once),
   * within --memory in all; null on kvm_pvm, where processes take turns in one memory and a
   * shared anonymous mapping is private to each process (docs/architecture.md).
   */
  readonly sharedMemory: SharedBudget | null;
  /** The sandbox's /dev/shm (src/fs/shm.ts), in sharedMemory; null where that is. */
  readonly shm: ShmDir | null;
  /** Mirrors of host files mapped MAP_SHARED for writing (file-mirror.ts), in sharedMemory; null where that is. */
  readonly fileMirrors: FileMirrors | null;
  /** Names bound by the sandbox's AF_UNIX sockets (src/fs/unix-socket.ts). */
  readonly unixNames: UnixNames = new Map();
  /** Named pipes (mkfifo) in the grants, as pipes inside the sandbox. */
  readonly fifos: Fifos;
  readonly locks = new FileLocks();
  readonly asyncIo = new AsyncIo();
  readonly ipc = new SysvIpc(() => this.processes.values());
  readonly mqueues = new MqNamespace();
  readonly ptys = new PtyTable();
  readonly terminal = { sid: 0, pgrp: 0 };
  readonly terminalModes = new TerminalModes();
  /** Address spaces of their own that ended: released once no vCPU can be running them. */
  private readonly endedHomes: SpaceMemory[] = [];
  private execEnv!: ExecEnv;
  /** The first program, as read by the front end: execve of its guest path finds it even where no grant shows it. */
  private firstProgram: { path: string; image: Buffer } | null = null;
  /** What the last address-space switch cost (ms). */
  private switchCostMs = 0;
  /** Round-robin position of the scheduler. */
  private lastPid = 0;
  private nextPid = GUEST_PID;
  private faultRetries = 0;
  private lastFaultAddress = -1;

  /** machine: fresh or reset (see src/machine/pool.ts); the kernel does not own it. */
  constructor(machine: Machine, opts: ProcessOptions) {
    this.machine = machine;
    this.opts = opts;
    this.limits = new SandboxLimits(opts.timeoutMs, opts.maxOutputBytes, machine.memoryLimit, opts.cancelled);
    this.ownSpaces = machine.syscallPath === 'cpl0-entry';
    this.sharedMemory = this.ownSpaces ? { used: 0, limit: machine.memoryLimit, count: 0, maxCount: MAX_SHARED_BACKINGS } : null;
    this.shm = this.sharedMemory ? new ShmDir(this.sharedMemory) : null;
    this.fifos = new Fifos(this.limits.pipeBudget);
    this.fileMirrors = this.sharedMemory ? new FileMirrors(this.sharedMemory) : null;
    this.maxProcesses = opts.maxProcesses ?? DEFAULT_MAX_PROCESSES;
    const cpus = machine.syscallPath === 'cpl0-entry' ? opts.vcpus ?? defaultVcpus() : 1;
    this.maxVcpus = Math.max(1, Math.min(MAX_VCPUS, Math.floor(cpus)));
    this.cpu = idleCpu(machine.vcpu, 0);
    this.cpus = [this.cpu];
  }

  /**
   * Raise the signals sent from outside since the last look: to the first process, or to every
   * process of the terminal's foreground group (the first process when that group is gone), as
   * kill(2) from outside the sandbox would (si_pid 0).
   */
  takeOutsideSignals(): void {
    const take = this.opts.outsideSignals;
    if (!take || this.takingOutside) return;
    const init = this.init;
    if (!init || init.exit) return;
    this.takingOutside = true;
    try {
      for (const { signal, to } of take() ?? []) {
        if (signal <= 0 || signal > 64) continue;
        if (to === 'process' || !this.signalGroup(this.terminal.pgrp, signal)) this.signalGroup(null, signal);
      }
    } finally {
      this.takingOutside = false;
    }
  }
  private takingOutside = false;
  /** Whether onStopped was called for the first process's present stop. */
  private stopReported = false;

  /** Raise sig at t (for src/linux/async-io.ts, which may not import signals.ts: a circle). */
  raiseSignal(t: Task, sig: number, info: { code: number; raw?: Buffer }): void {
    raise(t, sig, info);
  }

  signalGroup(pgid: number | null, sig: number, code = SI_USER): boolean {
    const targets = [...this.processes.values()].filter((q) => !q.zombie && (pgid === null ? q === this.init : q.pgid === pgid));
    for (const q of targets) {
      const qt = q.signalTarget(sig);
      if (qt) raise(qt, sig, { code, pid: 0 });
    }
    return targets.length > 0;
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
      pid: this.allocPid(), kernel: this, parent: null, machine: this.machine, vfs: opts.vfs, fds, cwd: normalize(opts.cwd), limits,
    });
    this.processes.set(p.pid, p);
    this.init = p;
    this.terminal.sid = this.terminal.pgrp = p.pid;
    const t = new Task(p, p.pid, this.machine.vcpu);
    p.tasks.push(t);
    this.current = t;
    this.cpu.task = t;
    this.execEnv = {
      traced: opts.trace !== undefined,
      patchSyscalls: opts.patchSyscalls !== false,
      timerCount: opts.timeoutMs || ((opts.cancelled || opts.outsideSignals) && this.machine.hasTimer) ? TIMER_PERIOD_MS * APIC_TICKS_PER_MS : 0,
    };
    this.firstProgram = { path: '/' + normalize(opts.exePath).join('/'), image: program };
    exec(t, program, { argv: opts.argv, envp: opts.envp, exePath: opts.exePath }, this.execEnv);
    this.resident = p.space;
    return p;
  }

  /** Run to the end of the first process. */
  run(): ExitReason {
    const init = this.init;
    if (!init) throw new Error('kvmbox: nothing to run: exec a program first');
    this.limits.start();
    try {
      this.loop();
      // Output the stub buffered before the end (exit, a fault, a limit): delivered as on Linux.
      init.stubCache.drainOutput(init.fds);
    } catch (e) {
      init.exit = { kind: 'vm-error', message: `kvmbox: internal error: ${(e as Error).stack ?? e}` };
    }
    return init.exit ?? { kind: 'vm-error', message: 'kvmbox: the VM stopped without an exit' };
  }

  /** Close every process's files. The machine is the caller's. */
  close(): void {
    this.terminalModes.restore();
    for (const p of this.processes.values()) p.close();
    this.asyncIo.close();
    this.init?.fds.closeLeftovers();
    this.processes.clear();
    this.shm?.clear();
    this.ipc.close();
    this.fileMirrors?.close();
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
    let r = this.hypercallOf(nr, vcpu);
    // A process other than the first that ends leaves the others running.
    while (r.action === 'stop' && this.current && this.current.process !== this.init && this.endsAlone(this.current.process.exit)) {
      this.endProcess(this.current.process);
      r = this.schedule();
    }
    if (r.action === 'stop') this.endSandbox();
    return r;
  }

  private hypercallOf(nr: number, vcpu: Vcpu): HypercallResult {
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
    const rax = vcpu.reg('rax');
    const isSigreturn = (rax & 0xffffffffn) === BigInt(SYS.rt_sigreturn);
    const tr = t.trace;
    // Under PTRACE_SYSCALL the call stops at its entry: the tracer sees (and may change) its
    // number and arguments, and the call runs when it resumes (runTask), rt_sigreturn too
    // (sigreturnFrom).
    if (tr?.syscalls && !tr.inCall) {
      const ctx = this.saveContext(vcpu);
      if (ctx) {
        ctx.regs.rax = BigInt(-E.ENOSYS);
        tr.inCall = true;
        enterStop(t, ctx, tr.syscallStop('entry', rax));
        return this.schedule();
      }
    }
    if (isSigreturn && this.userContextAtSyscall(vcpu)) return this.sigreturn(t, vcpu);
    const result = this.serve(t, rax, a, () => this.userContextAtSyscall(vcpu)?.rip ?? 0n);
    if (t.process.exit) {
      const ctx = t.trace ? this.saveContext(vcpu) : null;
      return ctx && exitStop(t, ctx) ? this.schedule() : { action: 'stop' };
    }
    if (t.state === 'dead') return this.schedule();
    if (result === PARKED) {
      const ctx = this.saveContext(vcpu);
      if (!ctx) return this.cannotPark(t);
      this.park(t, ctx, 'waiting');
      return this.schedule();
    }
    if (this.execed) {
      // The first vCPU starts the new program; a signal pending for it waits for its first exit.
      this.execed = false;
      if (this.cpu.index !== 0) return this.moveToFirstCpu(t);
      return this.stopIfDue(t, this.contextWith(vcpu, this.machine.startRegs())) ?? { action: 'resume' };
    }
    vcpu.setReg('rax', result);
    if (this.yieldTo) return this.handOver(t, vcpu);
    if (t.trace?.due.length) {
      const ctx = this.saveContext(vcpu);
      const stopped = ctx ? this.stopIfDue(t, ctx) : null;
      if (stopped) return stopped;
    }
    // Another task that later runs on this vCPU (a thread moved here, or time-sliced in) must
    // not find the caller's old translations either.
    const shrank = SHRINKS_MAPPINGS.has(Number(rax & 0xffffffffn));
    if (shrank) this.machine.flushBeforeNextContext(vcpu);
    if (this.group && shrank) {
      // The other vCPUs drop their translations before they next run user code: the idle ones
      // when they start, the busy ones are kicked out of the guest for it (reconcile), and the
      // caller waits until they have, as munmap returns on Linux only after its shootdown.
      const others = this.cpus.filter((c) => c !== this.cpu);
      this.machine.requestFlush(others.map((c) => c.vcpu));
      const busy = others.filter((c) => c.inGuest).map((c) => c.vcpu);
      const ctx = busy.length > 0 ? this.saveContext(vcpu) : null;
      if (ctx) {
        this.park(t, ctx, 'waiting');
        t.wait = { why: { what: 'the other vCPUs to drop their translations', ready: () => !busy.some((v) => this.machine.needsFlush(v)) }, call: null };
        return this.schedule();
      }
    }
    // sched_yield gives the vCPU to another task that can run; a preempted task leaves it; and a
    // task that has had its slice gives way at a system call too (with no guest timer, a busy
    // process that makes calls would otherwise keep the vCPU).
    if (this.mustLeave(t) || (this.forked && ((rax & 0xffffffffn) === BigInt(SYS.sched_yield) ||
        performance.now() - this.cpu.sliceStart >= this.slice()) && this.anotherCanRun(t))) {
      const ctx = this.saveContext(vcpu);
      if (ctx) {
        this.park(t, ctx, 'ready');
        return this.schedule();
      }
    }
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
    const xstate = this.machine.signalXstate;
    return {
      xstate,
      get: () => (xstate ? vcpu.getXsave().subarray(0, xstate.size) : vcpu.getFxsave()),
      set: (image, features) => {
        if (!image) vcpu.resetFpu();
        else if (xstate && features !== undefined) vcpu.setXsaveImage(image, features & xstate.features);
        else vcpu.setFxsave(image);
      },
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
    if (d.kind === 'stop' || d.kind === 'trace') {
      this.stopTask(t, ctx.regs, d);
      return this.schedule();
    }
    if (d.kind === 'handler') {
      if (fromSyscall) {
        const cur = t.vcpu.getRegs();
        const stub = this.machine.syscallPath === 'user-stub';
        t.vcpu.setRegs({ ...d.regs, rcx: d.regs.rip, r11: d.regs.rflags, rip: cur.rip, rflags: stub ? d.regs.rflags : cur.rflags });
      } else {
        this.machine.enterUser(d.regs, t.vcpu);
      }
    }
    return { action: 'resume' };
  }

  /**
   * rt_sigreturn's part for both paths: the registers the frame at rsp holds (its FPU state is
   * loaded into vcpu), or null when the frame is bad and the process is killed with SIGSEGV.
   */
  private restoreFrame(t: Task, vcpu: Vcpu, rsp: bigint): Registers | null {
    this.syscallCount++;
    const regs = sigreturn(t, rsp, this.fpu(vcpu));
    if (this.opts.trace) this.opts.trace(formatSyscall(t.process, SYS.rt_sigreturn, [rsp, 0n, 0n, 0n, 0n, 0n], regs ? regs.rax : -E.EFAULT, false, this.who(t)));
    if (!regs) killWith(t.process, SIG.SIGSEGV, `bad signal frame at 0x${rsp.toString(16)} (rt_sigreturn)`);
    return regs;
  }

  /**
   * rt_sigreturn served from t's saved context ctx, after its entry stop (runTask): the context
   * the frame holds (its FPU state through t's vCPU), or null when the process was killed.
   */
  private sigreturnFrom(t: Task, ctx: SavedContext): SavedContext | null {
    t.vcpu.setXsave(ctx.fpu);
    const regs = this.restoreFrame(t, t.vcpu, ctx.regs.rsp);
    return regs && { regs, fpu: t.vcpu.getXsave(), fsBase: ctx.fsBase };
  }

  /** rt_sigreturn: restore the context saved in the frame, then deliver what became unblocked. */
  private sigreturn(t: Task, vcpu: Vcpu): HypercallResult {
    const regs = this.restoreFrame(t, vcpu, vcpu.reg('rsp'));
    if (!regs) return { action: 'stop' };
    if (hasDeliverable(t)) {
      const d = deliver(t, { regs, trapno: 0, err: 0, cr2: 0n }, this.fpu(vcpu));
      if (d.kind === 'exit') return { action: 'stop' };
      if (d.kind === 'stop' || d.kind === 'trace') {
        this.stopTask(t, regs, d);
        return this.schedule();
      }
      if (d.kind === 'handler') { this.machine.enterUser(d.regs, vcpu); return { action: 'resume' }; }
    }
    this.machine.enterUser(regs, vcpu);
    return { action: 'resume' };
  }

  /** Serve one Linux system call for task t; the result for rax (a value or -errno). */
  private serve(t: Task, rax: bigint, a: SyscallArgs, ip: () => bigint): bigint | typeof PARKED {
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
    const screened = t.seccomp ? screen(t, t.seccomp, nr, a, ip()) : null;
    if (screened !== null) {
      result = screened;
    } else if (!fn) {
      result = -E.ENOSYS;
    } else {
      try {
        result = fn(t, a);
      } catch (e) {
        if (e instanceof WouldBlock && this.othersCanRun(p)) {
          t.wait = { why: e, call: { nr: rax, args: a } };
          return PARKED;
        }
        if (!(e instanceof Errno)) throw e;
        result = -e.errno;
        // RLIMIT_FSIZE's EFBIG comes with SIGXFSZ to the calling thread.
        if (e instanceof FileTooBig) raise(t, SIG.SIGXFSZ, { code: SI_USER, pid: p.pid });
      }
    }
    if (this.opts.trace) this.opts.trace(formatSyscall(p, nr, a, result, !fn, this.who(t)));
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
    // Why a page of a file mapping could not be filled (SIGBUS), if that is the fault.
    let unfilled: string | null = null;
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
      // An unfilled page of a file mapping, with the rights the access needs: filled where the
      // file covers it, else SIGBUS (below; EFAULT inside the stub's copies).
      const reserved = p.space.reservedAt(addr);
      if (reserved && (reserved.prot & need) === need) {
        if (p.space.fillReserved(addr, 1)) {
          vcpu.setReg('rax', BigInt(FAULT_RETRY));
          return { action: 'resume' };
        }
        const pastEnd = reserved.offset + (addr - (addr % PAGE_SIZE) - reserved.start) >= reserved.source.size();
        unfilled = pastEnd ? 'a file mapping past the end of its file' : 'no memory left under --memory to read a page of a file mapping in';
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
    const signal = unfilled ? SIG.SIGBUS : FAULT_SIGNALS[vector] ?? SIG.SIGSEGV;
    const user = this.userTrapContext(vcpu, vector);
    if (user) {
      // A handler for the signal that is not blocked runs; a blocked or ignored fault signal
      // kills, as on Linux (force_sig_fault).
      const act = p.sigactions.get(signal)?.readBigUInt64LE(0) ?? 0n;
      // A tracee's fault stops for its tracer first (a breakpoint's or a step's SIGTRAP too).
      if ((act > 1n && (t.sigmask & bit(signal)) === 0n) || t.trace) {
        const code = unfilled ? BUS_ADRERR : faultCode(vector, error);
        const addr = vector === 14 ? cr2 : vector === 13 ? 0n : rip;
        raise(t, signal, { code, addr });
        // As strace shows a signal: which, why, where (the handler's system calls follow).
        this.opts.trace?.(formatFaultSignal(this.who(t), SIGNAL_NAMES[signal] ?? String(signal), code, addr, rip, EXCEPTION_NAMES[vector] ?? `exception ${vector}`));
        return this.deliverTo(t, { regs: user, trapno: vector, err: error, cr2: vector === 14 ? cr2 : 0n });
      }
    }
    let detail = EXCEPTION_NAMES[vector] ?? `exception ${vector}`;
    if (vector === 14) {
      const access = error & PF_INSTR ? 'executing' : error & PF_WRITE ? 'writing' : 'reading';
      const kernel = cr2 >= KERNEL_VBASE ? ' (kernel memory)' : '';
      detail = `page fault ${access} address 0x${cr2.toString(16)}${kernel}${unfilled ? ` (${unfilled})` : ''}`;
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
    const stack = this.machine.trapStack(vcpu);
    if (rsp < KERNEL_VBASE + BigInt(stack.bottom) || rsp >= KERNEL_VBASE + BigInt(stack.top)) return null;
    const m = this.machine.memory;
    const frame = stack.top - TRAPFRAME_SIZE;
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
    // Time slices: a process that makes no system call gives the vCPU up on a tick when
    // another can run (the guest timer runs with a time limit or under the asynchronous API).
    // A slice lasts at least SLICE_MS and ten times what the last switch cost, so that copying
    // large images never takes the place of running them.
    if (t && (this.mustLeave(t) || (this.forked && performance.now() - this.cpu.sliceStart >= this.slice() && this.anotherCanRun(t)))) {
      const user = this.userTrapContext(vcpu, VEC_TIMER);
      if (user) {
        t.saved = this.contextWith(vcpu, user);
        t.state = 'ready';
        return this.schedule();
      }
    }
    return { action: 'resume' };
  }

  /** Whether a task other than t could run now. */
  private anotherCanRun(t: Task): boolean {
    const now = performance.now();
    return this.liveTasks().some((o) => o !== t && this.runnable(o, now));
  }

  /** Whether t, off every vCPU, may run now: ready, or its wait is over (ready, timed out, or a signal for it). */
  private runnable(t: Task, now: number): boolean {
    if (stoppedWithProcess(t)) return false;
    if (t.state === 'ready') return true;
    const w = t.wait;
    if (t.state !== 'waiting' || !w) return false;
    return w.why.ready() || (w.call !== null && hasDeliverable(t)) || (w.why.timeout !== undefined && now >= w.why.timeout.at);
  }

  /**
   * How long a task keeps a vCPU that others want: at least SLICE_MS and ten times what the last
   * switch cost, so that copying large images never takes the place of running them.
   */
  private slice(): number {
    return Math.max(SLICE_MS, 10 * this.switchCostMs);
  }

  /** Whether the task on this vCPU has to give it up at the next point where that is possible. */
  private mustLeave(t: Task): boolean {
    return this.cpu.preempt || (this.exclusive !== null && this.exclusive !== t) || stoppedWithProcess(t);
  }

  // ---- the run loop: one vCPU on this thread, or several on threads of their own ----

  /**
   * Serve exits until the sandbox ends. With one vCPU this thread runs it (no hand-over, the
   * fast path). The first thread of a process makes the sandbox move to several vCPUs, each on a
   * native thread; then exits are served one at a time as they come (parallelLoop).
   */
  private loop(): void {
    const cpu = this.cpus[0]!;
    cpu.enteredAt = performance.now();
    for (;;) {
      if (this.wantParallel) return this.parallelLoop();
      const r = this.onExit(cpu, cpu.vcpu.runOnce());
      if (r.action === 'stop') return;
      if (r.action === 'idle') throw new Error('kvmbox: internal error: the only vCPU went idle');
    }
  }

  private parallelLoop(): void {
    this.wantParallel = false;
    const group = new VcpuGroup();
    this.group = group;
    try {
      for (const c of this.cpus) group.attach(c.vcpu, c.index);
      const first = this.cpus[0]!;
      if (first.task) this.resumeCpu(first);
      let lastTick = performance.now();
      for (;;) {
        if (this.reconcile() === 'stop') return;
        const busy = this.cpus.some((c) => c.inGuest);
        if (!busy) {
          // Nothing runs and reconcile found nothing to run: as one vCPU would, sleep until
          // the earliest timer, or find a deadlock.
          this.cpu = this.cpus[0]!;
          const now = performance.now();
          const { task, earliest } = this.pick(now);
          if (task) continue;
          const init = this.init!;
          if (!this.idleWait(init, earliest, now)) {
            init.exit ??= { kind: 'timeout', message: DEADLOCK };
            return;
          }
          continue;
        }
        const exited = group.wait(this.loopTimeout());
        for (const v of exited) {
          const cpu = this.cpus.find((c) => c.vcpu === v)!;
          const r = this.onExit(cpu, v.takeExit());
          if (r.action === 'stop') return;
          if (r.action === 'resume') this.resumeCpu(cpu);
        }
        // Slices are looked at every tick even while exits keep coming (a thread in a loop of
        // system calls): else the others' tasks would never get their turn.
        const now = performance.now();
        if (exited.length === 0 || now - lastTick >= LOOP_TICK_MS) {
          lastTick = now;
          if (this.tick() === 'stop') return;
        }
      }
    } finally {
      this.group = null;
      for (const c of this.cpus) { c.inGuest = false; c.kicked = false; }
      group.close();
    }
  }

  /** How long the run loop waits for an exit before it looks at limits, slices and timers (ms). */
  private loopTimeout(): number {
    const now = performance.now();
    const { earliest } = this.pick(now);
    return Math.max(0, Math.min(LOOP_TICK_MS, Math.ceil(earliest - now)));
  }

  private resumeCpu(c: Cpu): void {
    c.inGuest = true;
    c.enteredAt = performance.now();
    // Resumed to make its hypercall (interruptedExit): it counts as kicked until that exit.
    c.kicked = c.toHypercall;
    c.toHypercall = false;
    c.vcpu.resume();
  }

  /** Make c's vCPU leave the guest (reconcile, tick). */
  private kick(c: Cpu): void {
    c.kicked = true;
    c.kickedAt = performance.now();
    c.vcpu.kick();
  }

  /**
   * Serve one exit of cpu's vCPU, and count the time: the task that ran gets the time since the
   * entry as user time, and the time serving it (less the host's waits meanwhile) as system time.
   */
  private onExit(cpu: Cpu, exit: VcpuExit): HypercallResult {
    const t0 = performance.now(), waited = hostWaitedMs();
    const ran = cpu.task;
    const r = this.serveExit(cpu, exit);
    // Signal-driven I/O: what this exit wrote or read may owe an owner its SIGIO.
    if (this.asyncIo.active) this.asyncIo.poll(this);
    const t1 = performance.now();
    ran?.charge(Math.max(0, t0 - cpu.enteredAt), Math.max(0, t1 - t0 - (hostWaitedMs() - waited)));
    cpu.enteredAt = t1;
    return r;
  }

  private serveExit(cpu: Cpu, exit: VcpuExit): HypercallResult {
    this.cpu = cpu;
    cpu.inGuest = false;
    cpu.kicked = false;
    if (this.group && this.machine.needsFlush(cpu.vcpu)) this.machine.flushTlb(cpu.vcpu);
    // The vDSO's clocks follow the TSC; about once a second they are anchored to the host's again.
    if (performance.now() - this.machine.clockPublishedAt > CLOCK_REANCHOR_MS) this.machine.publishClock(cpu.vcpu);
    const t = cpu.task;
    // Its task ended while it ran (exit_group, a signal, execve by another thread): nothing to serve.
    if (t && (t.state === 'dead' || t.process.zombie)) {
      cpu.task = null;
      this.current = null;
      return this.group ? { action: 'idle' } : this.schedule();
    }
    this.current = t;
    let r: HypercallResult;
    const nr = hypercallOf(exit);
    if (nr !== null) {
      r = this.hypercall(nr, cpu.vcpu);
    } else if (exit.kind === 'interrupted') {
      r = this.interruptedExit(cpu);
    } else {
      this.unexpectedExit(exit, cpu.vcpu);
      r = { action: 'stop' };
    }
    cpu.task = this.current;
    if (r.action === 'idle') cpu.task = null;
    return r;
  }

  /**
   * A vCPU came out of the guest because it was kicked (or a host signal): drop its cached
   * translations if asked, deliver a signal, or give up the vCPU. Kicked at CPL0, on its way to a
   * hypercall, it goes on to that hypercall, where all this happens as well.
   */
  private interruptedExit(cpu: Cpu): HypercallResult {
    const t = cpu.task;
    if (!t) return this.group ? { action: 'idle' } : this.schedule();
    const v = cpu.vcpu;
    const s = v.getSregs();
    if ((s.cs.selector & 3) !== 3) {
      cpu.toHypercall = true; // no second kick: the hypercall it is about to make comes first
      cpu.kickedAt = performance.now();
      return { action: 'resume' };
    }
    const regs = v.getRegs();
    if (this.mustLeave(t)) {
      this.park(t, this.contextWith(v, regs), 'ready');
      return this.schedule();
    }
    if (hasDeliverable(t)) return this.deliverTo(t, { regs, trapno: 0, err: 0, cr2: 0n });
    return { action: 'resume' };
  }

  /**
   * After each round of exits: put runnable tasks on idle vCPUs (adding vCPUs up to maxVcpus),
   * and kick the busy vCPUs whose task must see something now (its end, a signal, dropped
   * translations, a preemption).
   */
  private reconcile(): 'stop' | 'ok' {
    const init = this.init!;
    if (init.exit || init.checkDeadline()) return 'stop';
    for (let i = 0; i < this.cpus.length + 1; i++) {
      let c = this.cpus[i];
      if (!c) {
        // Every vCPU is busy and a task of the resident space could run: one more vCPU for it.
        if (this.cpus.length >= this.maxVcpus || this.exclusive) break;
        const now = performance.now();
        const want = this.liveTasks().some((t) => t.process.space === this.resident && this.runnable(t, now));
        if (!want) break;
        const vcpu = this.machine.addCpu();
        c = idleCpu(vcpu, this.cpus.length);
        this.cpus.push(c);
        this.group!.attach(vcpu, c.index);
      }
      if (c.inGuest) continue;
      if (c.task) {
        // Given a task while another vCPU was served (execve moves to the first vCPU).
        this.resumeCpu(c);
        continue;
      }
      this.cpu = c;
      this.current = null;
      const r = this.schedule();
      c.task = r.action === 'resume' ? this.current : null;
      if (r.action === 'stop') return 'stop';
      if (r.action === 'resume') this.resumeCpu(c);
    }
    // A task moved to a vCPU after that vCPU was looked at (execve moves to the first).
    for (const c of this.cpus) if (!c.inGuest && c.task) this.resumeCpu(c);
    this.kickWhereNeeded();
    return 'ok';
  }

  /**
   * Kick the busy vCPUs whose task must see something now (its end, a signal, dropped
   * translations, a preemption, another task's need to be alone); and again those kicked
   * KICK_AGAIN_MS ago that are still in the guest, so that a kick lost on the way cannot hold
   * the sandbox for good.
   */
  private kickWhereNeeded(): void {
    const now = performance.now();
    for (const c of this.cpus) {
      const t = c.task;
      if (!c.inGuest || !t) continue;
      if (c.kicked) {
        if (now - c.kickedAt >= KICK_AGAIN_MS) this.kick(c);
        continue;
      }
      if (t.state === 'dead' || t.process.zombie || t.process.exit || c.preempt || (this.exclusive && this.exclusive !== t) ||
          stoppedWithProcess(t) || hasDeliverable(t) || this.machine.needsFlush(c.vcpu)) {
        this.kick(c);
      }
    }
  }

  /**
   * When no exit came for a while: the limits, and time slices. A vCPU that has had its slice
   * gives way when a task it could hand the vCPU to is waiting (of the resident address space,
   * or of another one, which needs every vCPU out).
   */
  private tick(): 'stop' | 'ok' {
    const init = this.init!;
    if (init.exit || init.checkDeadline()) return 'stop';
    const now = performance.now();
    if (!this.liveTasks().some((t) => this.runnable(t, now))) return 'ok';
    for (const c of this.cpus) if (c.inGuest && c.task && now - c.sliceStart >= this.slice()) c.preempt = true;
    return 'ok';
  }

  /**
   * execve from a vCPU other than the first: the machine starts every program on the first (its
   * boot hop, its guest timer), and execve ran with every other vCPU out of the guest, so the
   * task moves there; the run loop resumes it.
   */
  private moveToFirstCpu(t: Task): HypercallResult {
    const first = this.cpus[0]!;
    first.parked = null; // the machine rewrote its registers for the new program
    if (first.task || first.inGuest) throw new Error('kvmbox: internal error: execve with the first vCPU busy');
    first.task = t;
    first.sliceStart = performance.now();
    t.vcpu = first.vcpu;
    this.current = null;
    return { action: 'idle' };
  }

  /** membarrier: as alone (an exit is a full barrier on each vCPU). */
  barrier(t: Task): void {
    this.alone(t);
  }

  /** A seccomp filter was installed: as after a fork, the stub answers no call itself. */
  serveEveryCall(t: Task): void {
    this.quiesceStub(t);
  }

  /**
   * Calls that replace or copy the address space (fork, execve) run with every other vCPU out
   * of the guest: with others busy, the caller waits (its call runs again) while they are
   * preempted, and it runs before anything else.
   */
  private alone(t: Task): void {
    if (!this.group || !this.cpus.some((c) => c !== this.cpu && c.inGuest)) return;
    this.exclusive = t;
    throw new WouldBlock('every other vCPU to leave the guest', () => !this.cpus.some((c) => c.inGuest));
  }

  // ---- processes: turns on the vCPU, fork, exec, exit, wait, kill (docs/design.md) ----

  /** How trace lines name t: nothing while the sandbox has had one task, then pid[.tid]. */
  private who(t: Task): string {
    if (!this.forked) return '';
    return t.tid === t.process.pid ? String(t.process.pid) : `${t.process.pid}.${t.tid}`;
  }

  /** Whether an end is one process's own (the others go on) rather than the sandbox's. */
  private endsAlone(r: ExitReason | null): boolean {
    return r !== null && (r.kind === 'exited' || r.kind === 'signaled');
  }

  /** The sandbox stops: an end that is the sandbox's (a limit, an error) becomes the run's result. */
  private endSandbox(): void {
    const init = this.init;
    const p = this.current?.process;
    if (init && p && p !== init && !init.exit && p.exit && !this.endsAlone(p.exit)) init.exit = p.exit;
  }

  /**
   * Whether anything could continue p once it stops: another process of the sandbox, or a
   * signal from outside (p's own threads stop with it).
   */
  othersCouldContinue(p: Process): boolean {
    if (this.opts.outsideSignals) return true;
    for (const q of this.processes.values()) if (q !== p && !q.zombie) return true;
    return false;
  }

  /**
   * Whether a task other than the one on the vCPU (a thread of p, or of another process) is
   * alive; always, when signals may come from outside or when p has a wall-time timer armed (then every
   * wait is the scheduler's, which a signal ends as it would end a wait for another process: a
   * lone program's read of its own empty pipe ends with alarm's SIGALRM, as on Linux).
   */
  othersCanRun(p: Process): boolean {
    if (this.opts.outsideSignals) return true;
    if (p.wallTimerArmed) return true;
    for (const q of this.processes.values()) {
      if (q.zombie) continue;
      for (const t of q.tasks) if (t !== this.current && t.state !== 'dead') return true;
    }
    return false;
  }

  /** Every live task, in pid then tid order. */
  private liveTasks(): Task[] {
    const out: Task[] = [];
    for (const q of [...this.processes.values()].sort((x, y) => x.pid - y.pid)) {
      if (q.zombie) continue;
      for (const t of q.tasks) if (t.state !== 'dead') out.push(t);
    }
    return out;
  }

  cpuOf(t: Task): number {
    return Math.max(0, this.machine.cpus.indexOf(t.vcpu));
  }

  guestClockNs(t: Task, realtime: boolean): bigint | null {
    return this.machine.guestClockNs(t.vcpu, realtime);
  }

  findTask(tid: number): Task | undefined {
    for (const q of this.processes.values()) {
      if (q.zombie) continue;
      const t = q.tasks.find((x) => x.tid === tid && x.state !== 'dead');
      if (t) return t;
    }
    return undefined;
  }

  exitThread(t: Task, status: number): void {
    const p = t.process;
    exitRobustList(t);
    this.futexes.ownerEnded(t.tid);
    if (!p.tasks.some((o) => o !== t && o.state !== 'dead')) {
      p.exit = { kind: 'exited', status };
      return;
    }
    // A traced thread under PTRACE_O_TRACEEXIT stops first (PTRACE_EVENT_EXIT), alive until
    // its tracer lets it go on (runTask ends it then).
    if (holdThreadExit(t, status)) return;
    // CLONE_CHILD_CLEARTID / set_tid_address: the word is cleared and one waiter woken (pthread_join).
    if (t.clearChildTid !== 0n) {
      const addr = Number(t.clearChildTid);
      try {
        p.userBuffer(addr, 4, PROT_WRITE).writeInt32LE(0);
        this.futexWake(t, addr, 1, -1);
      } catch (e) {
        if (!(e instanceof Errno)) throw e;
      }
    }
    tracedTaskEnded(t, (status & 0xff) << 8);
    t.state = 'dead';
    t.wait = null;
    t.saved = null;
    // A thread other than the leader leaves the list (the leader stays, as Linux keeps it until
    // the last thread ends): a loop of thread starts and exits must not grow it, nor the scans
    // of it at every clone and schedule.
    if (t !== p.tasks[0]) p.tasks.splice(p.tasks.indexOf(t), 1);
  }

  /** Futex waiters (futex.ts). */
  private readonly futexes = new FutexQueues();

  futexWait(t: Task, addr: number, timeoutMs: number | null, bitset: number): number {
    return this.futexes.wait(t, futexKey(t.process.space, addr), timeoutMs, bitset);
  }

  futexWaitPi(t: Task, addr: number, timeoutMs: number | null, owner: number): number {
    return this.futexes.waitPi(t, futexKey(t.process.space, addr), timeoutMs, owner);
  }

  futexHandOver(t: Task, addr: number): { task: Task; more: boolean } | null {
    return this.futexes.handOver(futexKey(t.process.space, addr));
  }

  futexHasWaiters(t: Task, addr: number): boolean {
    return this.futexes.hasWaiters(futexKey(t.process.space, addr));
  }

  futexWake(t: Task, addr: number, n: number, bitset: number, requeue?: { addr: number; n: number }): number {
    const space = t.process.space;
    return this.futexes.wake(futexKey(space, addr), n, bitset, requeue && { key: futexKey(space, requeue.addr), n: requeue.n });
  }

  find(pid: number): Process | undefined {
    return this.processes.get(pid);
  }

  all(): Iterable<Process> {
    return this.processes.values();
  }

  /** Memory of its own for one more address space; ENOMEM when the machine has no room for one. */
  private newHome(): SpaceMemory {
    this.releaseEndedHomes();
    try {
      return this.machine.newSpace();
    } catch (e) {
      if (e instanceof MachineError) throw new Errno(E.ENOMEM);
      throw e;
    }
  }

  /**
   * fork with address spaces of their own: the child's, a copy of parent's mappings and of the
   * pages the host holds. The pages of the other processes and the child's copy together stay
   * within --memory, with the sandbox's shared memory, else ENOMEM (as the images of the
   * processes not in guest memory do on kvm_pvm). Counted now: fork runs with no other vCPU in the guest (alone).
   */
  private forkSpace(parent: AddressSpace): SpaceMemory {
    const bytes = Machine.mappedResidentBytes(parent.memory, parent.paging);
    let others = 0;
    const seen = new Set<AddressSpace>([parent]);
    for (const q of this.processes.values()) {
      if (q.zombie || seen.has(q.space)) continue;
      seen.add(q.space);
      others += Machine.mappedResidentBytes(q.space.memory, q.space.paging);
    }
    // Shared memory (MAP_SHARED) is counted once, whoever maps it.
    if (others + bytes + (this.sharedMemory?.used ?? 0) > this.machine.memoryLimit) throw new Errno(E.ENOMEM);
    const home = this.newHome();
    this.machine.copySpace(parent.memory, parent.paging, home);
    return home;
  }

  /** Give back the memory of ended address spaces, while no vCPU but this one is in the guest. */
  private releaseEndedHomes(): void {
    if (this.endedHomes.length === 0 || this.cpus.some((c) => c !== this.cpu && c.inGuest)) return;
    for (const h of this.endedHomes.splice(0)) this.machine.releaseSpace(h);
  }

  /** Whether a live process other than `except` uses space. */
  private spaceInUse(space: AddressSpace, except: Process | null = null): boolean {
    for (const q of this.processes.values()) if (q !== except && !q.zombie && q.space === space) return true;
    return false;
  }

  /** t leaves this vCPU with context ctx, ready or waiting; nothing else has run here yet. */
  private park(t: Task, ctx: SavedContext, state: 'ready' | 'waiting'): void {
    t.saved = ctx;
    t.state = state;
    this.cpu.parked = { task: t, ctx, rip: ctx.regs.rip };
  }

  /** Traced t stops in ctx if a stop is due (an event, a system-call exit): the vCPU goes to another task. */
  private stopIfDue(t: Task, ctx: SavedContext): HypercallResult | null {
    const due = takeDue(t);
    if (!due) return null;
    enterStop(t, ctx, due);
    return this.schedule();
  }

  /** The task's user context at a system-call exit, with what it needs beside the registers. */
  private saveContext(vcpu: Vcpu): SavedContext | null {
    const regs = this.userContextAtSyscall(vcpu);
    return regs ? this.contextWith(vcpu, regs) : null;
  }

  /** A saved context of user registers regs, with the vCPU's FPU state and FS base. */
  private contextWith(vcpu: Vcpu, regs: Registers): SavedContext {
    return { regs, fpu: vcpu.getXsave(), fsBase: vcpu.getMsr(MSR_FS_BASE) };
  }

  private loadContext(t: Task, ctx: SavedContext): void {
    t.vcpu.setXsave(ctx.fpu);
    t.vcpu.setMsrs([[MSR_FS_BASE, ctx.fsBase]]);
    this.machine.enterUser({ ...ctx.regs, rflags: (ctx.regs.rflags & USER_RFLAGS) | RFLAGS_FIXED }, t.vcpu);
  }

  private cannotPark(t: Task): HypercallResult {
    t.process.exit = { kind: 'vm-error', message: 'kvmbox: a system call had to wait where its caller\'s context cannot be saved' };
    return { action: 'stop' };
  }

  /** Make space the one in guest memory, keeping the current one's pages if a process still uses them. */
  private switchSpace(space: AddressSpace): void {
    if (this.resident === space) return;
    const old = this.resident;
    if (this.ownSpaces) {
      // No vCPU runs the old one now (pick): ended ones can go.
      this.releaseEndedHomes();
      this.machine.activate(space.paging);
      this.resident = space;
      return;
    }
    if (old && !old.image && this.spaceInUse(old)) {
      old.image = this.machine.snapshotUser();
      this.imageBytes += old.image.bytes;
    }
    const img = space.image;
    if (!img) throw new Error('kvmbox: internal error: an address space with no pages to restore');
    this.machine.restoreUser(img, [[space.stackLimit, space.stackBottom]]);
    this.imageBytes -= img.bytes;
    space.image = null;
    this.resident = space;
  }

  /** After fork or vfork: the child runs first, the parent when the scheduler picks it. */
  private handOver(t: Task, vcpu: Vcpu): HypercallResult {
    const ctx = this.saveContext(vcpu);
    const child = ctx ? this.forkChild(t, ctx) : null;
    if (!child) return this.cannotPark(t);
    return this.schedule(child);
  }

  /** The child clone made (yieldTo), given its first context from the parent's ctx; the parent leaves the vCPU. */
  private forkChild(t: Task, ctx: SavedContext): Task | null {
    const child = this.yieldTo!;
    this.yieldTo = null;
    const fix = this.forkFixups.get(child);
    this.forkFixups.delete(child);
    if (!fix) return null;
    t.saved = ctx;
    t.state = t.wait ? 'waiting' : 'ready';
    child.saved = {
      regs: { ...ctx.regs, rax: 0n, rsp: fix.stack !== 0n ? fix.stack : ctx.regs.rsp },
      fpu: Buffer.from(ctx.fpu),
      fsBase: fix.tls ?? ctx.fsBase,
    };
    return child;
  }
  private readonly forkFixups = new Map<Task, { stack: bigint; tls: bigint | null }>();

  /**
   * Pick the next task and put it on this vCPU (prefer: fork's child). A waiting task runs once
   * its wait is ready, its timeout passed, or a signal interrupts it. With one vCPU and none able
   * to run, the host sleeps until the earliest timer; with several, the vCPU goes idle and the
   * run loop waits. Every process waiting for another with no timer left (and no vCPU running)
   * is a deadlock: the sandbox stops, as a time limit would stop it.
   */
  private schedule(prefer: Task | null = null): HypercallResult {
    const init = this.init!;
    this.current = null;
    for (;;) {
      if (init.exit || init.checkDeadline()) return { action: 'stop' };
      const now = performance.now();
      let chosen: Task | null = prefer;
      let earliest = Infinity;
      prefer = null;
      if (!chosen) ({ task: chosen, earliest } = this.pick(now));
      if (chosen) {
        const r = this.runTask(chosen);
        if (r === 'ran') return { action: 'resume' };
        if (r === 'moved') return { action: 'idle' };
        if (r === 'ended') {
          const p = chosen.process;
          if (p === init || !this.endsAlone(p.exit)) return { action: 'stop' };
          this.endProcess(p);
          this.current = null;
        }
        continue;
      }
      if (this.group) return { action: 'idle' };
      if (this.idleWait(init, earliest, now)) continue;
      init.exit = { kind: 'timeout', message: DEADLOCK };
      return { action: 'stop' };
    }
  }

  /**
   * Nothing can run: wait, for one slice at most, until the earliest timer of a parked call, or
   * until a host fd that one waits on (a terminal, an inherited stdin or stdout) is ready, then
   * let the caller look again. False, without waiting, when no wait could ever end: every process
   * waits for another and no signal can come from outside (a deadlock).
   */
  private idleWait(init: Process, earliest: number, now: number): boolean {
    const host = new Map<number, number>();
    for (const q of this.processes.values()) {
      for (const t of q.tasks) {
        if (t.state !== 'waiting') continue;
        const why = t.wait?.why;
        for (const h of (why instanceof WouldBlock ? why.hostFds : undefined) ?? []) host.set(h.fd, (host.get(h.fd) ?? 0) | h.events);
      }
    }
    // A stop is reported once; until the host's SIGCONT comes through, the wait below goes on.
    if (!init.stopped) this.stopReported = false;
    else if (this.opts.onStopped && !this.stopReported) {
      this.stopReported = true;
      this.terminalModes.suspend();
      this.opts.onStopped(init.stopped);
      this.terminalModes.resume();
      this.signalGroup(init.pgid, SIG.SIGCONT);
      return true;
    }
    if (earliest === Infinity && host.size === 0 && !this.opts.outsideSignals) return false;
    const ms = Math.max(1, Math.min(WAIT_SLICE_MS, Math.ceil(earliest - now)));
    if (host.size === 0) {
      sleepBounded(init, ms);
      return true;
    }
    pollBounded(init, pollfds(host), host.size, ms);
    return true;
  }

  /**
   * The task to run next on this vCPU, in round-robin order, or null; and the earliest time a
   * wait of the others ends. While another vCPU runs, only tasks of the address space in guest
   * memory qualify (a switch needs every vCPU out); a task that waits for that comes first.
   */
  private pick(now: number): { task: Task | null; earliest: number } {
    let earliest = Infinity;
    const othersBusy = this.cpus.some((c) => c !== this.cpu && c.inGuest);
    const x = this.exclusive;
    if (x && x.state !== 'dead' && !x.process.zombie) {
      return { task: !othersBusy && this.runnable(x, now) ? x : null, earliest };
    }
    this.exclusive = null;
    const live = this.liveTasks();
    // Timers first: one may raise a signal for a task looked at before it in the loop.
    for (const q of this.processes.values()) {
      const lead = q.hasTimers && !q.zombie ? q.tasks.find((o) => o.state !== 'dead') : undefined;
      if (lead) checkTimers(lead, now);
    }
    const start = live.findIndex((t) => t.tid > this.lastPid);
    const order = start < 0 ? live : [...live.slice(start), ...live.slice(0, start)];
    for (const t of order) {
      if (this.runnable(t, now)) {
        // Another process's turn: this vCPU waits idle for the busy ones to leave (their slices
        // end), rather than go to the resident process again and keep that turn from coming.
        if (othersBusy && t.process.space !== this.resident) return { task: null, earliest };
        return { task: t, earliest };
      }
      const w = t.wait;
      if (t.state !== 'waiting' || !w) continue;
      if (w.why.timeout) earliest = Math.min(earliest, w.why.timeout.at);
      if (t.process.hasTimers) earliest = Math.min(earliest, t.process.timerDue);
    }
    return { task: null, earliest };
  }

  /**
   * Put t on the vCPU: its address space, its registers, and the end of the call it waited in
   * (run again, timed out, or interrupted by a signal). 'waits' when the call has to wait
   * again, 'ended' when its process ended meanwhile.
   */
  private runTask(t: Task): 'ran' | 'waits' | 'ended' | 'moved' {
    const p = t.process;
    const t0 = performance.now();
    if (this.resident !== p.space) {
      this.switchSpace(p.space);
      this.switchCostMs = performance.now() - t0;
    }
    this.cpu.sliceStart = performance.now();
    this.cpu.preempt = false;
    if (this.exclusive === t) this.exclusive = null;
    t.vcpu = this.cpu.vcpu;
    this.current = t;
    this.lastPid = t.tid;
    t.state = 'running';
    let ctx = t.saved!;
    const w = t.wait;
    t.wait = null;
    if (t.trace?.exiting) {
      // Its tracer let it go on from PTRACE_EVENT_EXIT: the process ends as it was ending, or
      // the thread alone.
      const end = t.trace.exiting;
      t.trace.exiting = null;
      if (end.kind !== 'thread') {
        p.exit = end;
        return 'ended';
      }
      this.exitThread(t, end.status);
      return p.exit ? 'ended' : 'waits';
    }
    // Whatever happens next on this vCPU (even t's own stop or exec), the task parked here last
    // is no longer the last to have run on it.
    const here = this.cpu.parked;
    this.cpu.parked = null;
    if (w?.call && w.why.ready() && (w.call.nr & 0xffffffffn) === BigInt(SYS.rt_sigreturn)) {
      // rt_sigreturn after its entry stop: the frame's context replaces the saved one.
      const restored = this.sigreturnFrom(t, ctx);
      if (!restored) return exitStop(t, ctx) ? 'waits' : 'ended';
      ctx = t.saved = restored;
      callReturned(t, w.call.nr);
    } else if (w?.call) {
      if (w.why.ready()) {
        const r = this.serve(t, w.call.nr, w.call.args, () => ctx.regs.rip);
        if (r === PARKED) {
          t.state = 'waiting';
          return 'waits';
        }
        if (p.exit) return exitStop(t, ctx) ? 'waits' : 'ended';
        callReturned(t, w.call.nr);
        if (this.execed) {
          // execve ran again and succeeded (it waited for the other vCPUs, or its tracer let it
          // run): the first vCPU starts the new program.
          this.execed = false;
          t.saved = null;
          if (this.cpu.index === 0) {
            const due = takeDue(t);
            if (!due) return 'ran';
            enterStop(t, this.contextWith(t.vcpu, this.machine.startRegs()), due);
            return 'waits';
          }
          this.moveToFirstCpu(t);
          return 'moved';
        }
        ctx.regs.rax = BigInt(r);
        if (this.yieldTo) {
          // clone ran again and succeeded (it waited for the other vCPUs): the child first.
          const child = this.forkChild(t, ctx);
          if (!child) throw new Error('kvmbox: internal error: a clone child without its context');
          return this.runTask(child);
        }
      } else if (w.why.timeout && performance.now() >= w.why.timeout.at) {
        if (w.why instanceof WouldBlock) w.why.onCancel?.('timeout');
        ctx.regs.rax = BigInt(w.why.timeout.result());
        // A call that waited with a mask of its own (ppoll...) timed out: the mask from before.
        if (!hasDeliverable(t)) restoreSavedMask(t);
        callReturned(t, w.call.nr);
      } else if (KEPT_ACROSS_STOP.has(Number(w.call.nr & 0xffffffffn)) && stopComesNext(t)) {
        // A stop: the process stops with t in its call, which goes on waiting after SIGCONT.
        deliver(t, { regs: { ...ctx.regs }, trapno: 0, err: 0, cr2: 0n }, this.fpu(t.vcpu));
        t.wait = w;
        t.state = 'waiting';
        return 'waits';
      } else {
        if (w.why instanceof WouldBlock) w.why.onCancel?.('signal');
        // A write that moved part of its bytes before the signal returns that count, as on Linux.
        const partial = w.why instanceof WouldBlock ? w.why.partial?.() ?? 0 : 0;
        ctx.regs.rax = partial > 0 ? BigInt(partial) : this.interrupted(t, w.call.nr, ctx);
        callReturned(t, w.call.nr, partial === 0 && ctx.regs.rax === w.call.nr ? ctx : null);
      }
    } else if (w) {
      // Waiting with the call complete (a vfork parent): only readiness ends it.
      if (!w.why.ready()) {
        t.wait = w;
        t.state = 'waiting';
        return 'waits';
      }
    }
    const due = takeDue(t);
    if (due) {
      enterStop(t, ctx, due);
      return 'waits';
    }
    t.saved = null;
    p.stubCache.publishIds(p.pid, t.tid, p.ppid);
    if (here && here.task === t && here.ctx === ctx && here.rip === ctx.regs.rip && !t.trace && !hasDeliverable(t)) {
      // Nothing else ran on this vCPU since t left it there: it goes on where it stopped, with
      // its call's result (no register, FPU or MSR reload: the hand-back of a futex wake costs
      // no ioctl).
      if (this.machine.needsFlush(t.vcpu)) this.machine.flushTlb(t.vcpu);
      t.vcpu.setReg('rax', ctx.regs.rax);
      return 'ran';
    }
    this.loadContext(t, ctx);
    if (hasDeliverable(t)) {
      const d = deliver(t, { regs: { ...ctx.regs }, trapno: 0, err: 0, cr2: 0n }, this.fpu(t.vcpu));
      if (d.kind === 'exit') return 'ended';
      if (d.kind === 'stop' || d.kind === 'trace') {
        this.stopTask(t, ctx.regs, d);
        return 'waits';
      }
      if (d.kind === 'handler') this.machine.enterUser(d.regs, t.vcpu);
    }
    return 'ran';
  }

  /**
   * A signal ended a wait: EINTR, or, for a call Linux restarts (RESTARTABLE), the call again
   * (rip back on its `syscall` instruction) when the signal runs a handler with SA_RESTART or
   * runs none: a stop signal's default action, after which SIGCONT finds the call waiting again,
   * as a `cat` stopped by Ctrl-Z in a shell and continued with `fg` goes on reading. The calls of
   * RESTARTED_WITHOUT_HANDLER run again only in the second case.
   */
  private interrupted(t: Task, nr: bigint, ctx: SavedContext): bigint {
    const ready = t.pending & ~t.sigmask;
    let sig = 1;
    while (sig <= 64 && !(ready & bit(sig))) sig++;
    // No signal at all: PTRACE_INTERRUPT ended the wait, and the call restarts after the stop.
    const act = sig <= 64 ? action(t.process, sig) : null;
    const rip = ctx.regs.rip;
    const n = Number(nr & 0xffffffffn);
    // RESTARTED_WITHOUT_HANDLER: only for a stop (its default action) or PTRACE_INTERRUPT, never
    // for an ignored signal; their own mask goes back first, as the call sets it again.
    const stops = act === null || (act.handler === SIG_DFL && defaultAction(sig) === 'stop');
    const again = RESTARTED_WITHOUT_HANDLER.has(n) && stops;
    const restart = act && act.handler > SIG_IGN ? (act.flags & SA_RESTART) !== 0 && RESTARTABLE.has(n)
      : RESTARTABLE.has(n) || again;
    if (again) restoreSavedMask(t);
    if (restart && rip >= 2n &&
        t.process.space.paging.accessible(Number(rip) - 2, 2, PROT_EXEC | PROT_READ)) {
      const m = t.process.space.memory;
      if (m.u8(Number(rip) - 2) === 0x0f && m.u8(Number(rip) - 1) === 0x05) {
        ctx.regs.rip = rip - 2n;
        return nr;
      }
    }
    return BigInt(-E.EINTR);
  }

  /** p ended (exit, or a signal's default action): it becomes a zombie for its parent to wait for. */
  private endProcess(p: Process): void {
    const r = p.exit!;
    p.stubCache.drainOutput(p.fds);
    const status = r.kind === 'exited' ? (r.status & 0xff) << 8 : r.kind === 'signaled' ? r.signal & 0x7f : 0;
    p.rssBytes(); // its peak, before its memory goes
    for (const t of p.tasks) if (t.state !== 'dead') tracedTaskEnded(t, status);
    tracerEnded(p);
    if (this.ownSpaces || this.resident === p.space) for (const t of p.tasks) exitRobustList(t);
    for (const t of p.tasks) this.futexes.ownerEnded(t.tid);
    for (const t of p.tasks) { t.state = 'dead'; t.wait = null; t.saved = null; }
    p.fds.closeAll();
    p.dirCache.close();
    this.ipc.processEnded(p);
    p.itimers.fill(null);
    p.timers.clear();
    p.vforkParentWaits = false;
    // Its children go to the nearest live ancestor that is a child subreaper, else the first
    // process; those that asked get their parent-death signal.
    let reaper = p.parent;
    while (reaper && (reaper.zombie || !reaper.childSubreaper)) reaper = reaper.parent;
    const adopter = reaper ?? this.init!;
    const linked = linkedGroups(p);
    for (const c of p.children) {
      c.parent = adopter;
      adopter.children.add(c);
      const target = c.parentDeathSignal && !c.zombie ? c.signalTarget(c.parentDeathSignal) : null;
      if (target) raise(target, c.parentDeathSignal, { code: SI_USER, pid: p.pid });
    }
    p.children.clear();
    p.zombie = { status };
    // A session leader's end takes its pty from the session and hangs up the pty's foreground
    // group (Linux's disassociate_ctty on exit: SIGHUP only).
    const ctty = p.pid === p.sid ? this.ptys.ofSession(p.sid) : undefined;
    if (ctty) {
      const fg = ctty.pgrp;
      ctty.sid = 0;
      ctty.pgrp = 0;
      if (fg > 0) this.signalGroup(fg, SIG.SIGHUP, SI_KERNEL);
    }
    hangUpOrphans(this.processes.values(), linked);
    if (!this.spaceInUse(p.space)) {
      this.futexes.forget(p.space);
      p.space.dispose();
      if (p.space.home) this.endedHomes.push(p.space.home);
    }
    if (p.space.image && !this.spaceInUse(p.space)) {
      this.imageBytes -= p.space.image.bytes;
      p.space.image = null;
    }
    const parent = p.parent;
    if (!parent) return;
    const act = action(parent, SIG.SIGCHLD);
    if (act.handler === SIG_IGN || act.flags & SA_NOCLDWAIT) {
      this.release(p);
    } else if (p.exitSignal > 0 && p.exitSignal <= 64 && parent.signalTarget(p.exitSignal)) {
      const code = r.kind === 'exited' ? CLD_EXITED : defaultAction(status) === 'core' ? CLD_DUMPED : CLD_KILLED;
      raise(parent.signalTarget(p.exitSignal)!, p.exitSignal, { code, pid: p.pid, status: r.kind === 'exited' ? r.status & 0xff : status });
    }
  }

  /** Forget a zombie: its pid is free of it. */
  private release(c: Process): void {
    this.processes.delete(c.pid);
    c.parent?.children.delete(c);
  }

  clone(t: Task, req: CloneRequest): number {
    const p = t.process;
    const f = req.flags;
    if (f & CLONE_THREAD) return this.cloneThread(t, req);
    // A shared address space without vfork's wait is only offered as a thread.
    if (f & CLONE_VM && !(f & CLONE_VFORK)) throw new Errno(E.EINVAL);
    const known = 0xffn | CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID |
      CLONE_CHILD_SETTID | CLONE_HARMLESS | CLONE_PIDFD;
    if (f & (CLONE_FS | CLONE_FILES | CLONE_SIGHAND)) throw new Errno(E.EINVAL);
    if (f & CLONE_NAMESPACES) throw new Errno(E.EPERM);
    if (f & ~known || (f & CLONE_PIDFD && f & CLONE_DETACHED)) throw new Errno(E.EINVAL);
    if (this.taskCount() >= this.maxProcesses) throw new Errno(E.EAGAIN);
    // CLONE_PIDFD: a free descriptor (EMFILE), written to the parent before its memory is copied
    // (on kvm_pvm it is an image after), so the child's copy holds it too.
    const pidfdNo = f & CLONE_PIDFD ? p.fds.lowestFree() : -1;
    this.alone(t);
    const vfork = (f & CLONE_VFORK) !== 0n;
    this.quiesceStub(t);
    const pid = this.nextPid;
    if (f & CLONE_PARENT_SETTID) p.userBuffer(req.parentTid, 4, PROT_WRITE).writeInt32LE(pid);
    if (pidfdNo >= 0) p.userBuffer(req.pidfd ?? 0n, 4, PROT_WRITE).writeInt32LE(pidfdNo);
    if (f & CLONE_CHILD_SETTID && !vfork) p.userBuffer(req.childTid, 4, PROT_WRITE); // checked before anything changes
    let image = null;
    let forked: SpaceMemory | null = null;
    if (!vfork && this.ownSpaces) {
      forked = this.forkSpace(p.space);
    } else if (!vfork) {
      // fork copies the parent's pages (docs/design.md); all images together stay within --memory.
      image = this.machine.snapshotUser();
      if (this.imageBytes + image.bytes > this.machine.memoryLimit) throw new Errno(E.ENOMEM);
    }
    this.allocPid();
    const c = new Process({
      pid, kernel: this, parent: p, machine: this.machine, vfs: p.vfs, fds: p.fds.clone(), cwd: [...p.cwd], limits: p.limits,
    });
    c.umask = p.umask;
    c.nice = p.nice;
    c.ioprio = p.ioprio;
    c.membarriers = p.membarriers;
    c.persona = p.persona;
    c.memPolicy = { ...p.memPolicy };
    c.shmAttached = new Map(p.shmAttached);
    c.schedPolicy = p.schedPolicy;
    c.rlimits = new Map(p.rlimits);
    for (const [sig, b] of p.sigactions) c.sigactions.set(sig, Buffer.from(b));
    c.comm = Buffer.from(p.comm);
    c.argv = p.argv;
    c.envp = p.envp;
    c.exePath = p.exePath;
    c.auxv = p.auxv;
    c.exitSignal = Number(f & 0xffn);
    attachCaches(c, false);
    const ct = new Task(c, pid, t.vcpu);
    c.tasks.push(ct);
    ct.sigmask = t.sigmask;
    ct.noNewPrivs = t.noNewPrivs;
    ct.timerSlackNs = t.timerSlackNs;
    ct.seccomp = t.seccomp;
    ct.altStack = { ...t.altStack };
    ct.fsBase = f & CLONE_SETTLS ? req.tls : t.fsBase;
    ct.state = 'ready';
    if (f & CLONE_CHILD_CLEARTID) ct.clearChildTid = req.childTid;
    this.processes.set(pid, c);
    this.forked = true;
    if (vfork) {
      c.space = p.space;
      c.vforkParentWaits = true;
      t.wait = { why: { what: 'its vfork child', ready: () => !c.vforkParentWaits }, call: null };
    } else if (forked) {
      c.space = p.space.clone(forked);
      this.machine.activate(forked.paging);
      this.resident = c.space;
    } else {
      p.space.image = image;
      this.imageBytes += image!.bytes;
      c.space = p.space.clone();
      this.resident = c.space;
    }
    // Written in the child's memory (the parent's own, with vfork).
    if (f & CLONE_CHILD_SETTID) c.userBuffer(req.childTid, 4, PROT_WRITE).writeInt32LE(pid);
    // The parent's pidfd (not in the child's table: it was copied before).
    if (pidfdNo >= 0) p.fds.placeAt(pidfdNo, new PidFd(c, O.RDWR), true);
    c.stubCache.publishIds(pid, pid, p.pid);
    traceClone(t, ct, vfork, false, c.exitSignal);
    this.forkFixups.set(ct, { stack: req.stack, tls: f & CLONE_SETTLS ? req.tls : null });
    this.yieldTo = ct;
    return pid;
  }

  /** Tasks that count against maxProcesses: every live thread and every zombie (and traced ends not waited for). */
  private taskCount(): number {
    let n = 0;
    // Ends a tracer has not waited for count as zombies do.
    for (const q of this.processes.values()) n += (q.zombie ? 1 : q.tasks.filter((x) => x.state !== 'dead').length) + q.traceExits.length;
    return n;
  }

  /**
   * clone(CLONE_VM|CLONE_SIGHAND|CLONE_THREAD...): a new thread of t's process. It shares
   * everything of the process and takes turns on the vCPU with the others (they run
   * concurrently, not in parallel: one vCPU). It runs first, on the stack and TLS it was given.
   */
  private cloneThread(t: Task, req: CloneRequest): number {
    const p = t.process;
    const f = req.flags;
    const need = CLONE_VM | CLONE_SIGHAND;
    if ((f & need) !== need) throw new Errno(E.EINVAL);
    const known = CLONE_THREAD | CLONE_VM | CLONE_SIGHAND | CLONE_FS | CLONE_FILES | CLONE_SYSVSEM | CLONE_SETTLS |
      CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_HARMLESS;
    if (f & ~known || f & 0xffn) throw new Errno(E.EINVAL);
    if (this.taskCount() >= this.maxProcesses) throw new Errno(E.EAGAIN);
    this.quiesceStub(t);
    const tid = this.nextPid;
    if (f & CLONE_PARENT_SETTID) p.userBuffer(req.parentTid, 4, PROT_WRITE);
    if (f & CLONE_CHILD_SETTID) p.userBuffer(req.childTid, 4, PROT_WRITE);
    this.allocPid();
    if (f & CLONE_PARENT_SETTID) p.userBuffer(req.parentTid, 4, PROT_WRITE).writeInt32LE(tid);
    if (f & CLONE_CHILD_SETTID) p.userBuffer(req.childTid, 4, PROT_WRITE).writeInt32LE(tid);
    const ct = new Task(p, tid, t.vcpu);
    p.tasks.push(ct);
    ct.sigmask = t.sigmask;
    ct.noNewPrivs = t.noNewPrivs;
    ct.timerSlackNs = t.timerSlackNs;
    ct.seccomp = t.seccomp;
    ct.fsBase = f & CLONE_SETTLS ? req.tls : t.fsBase;
    ct.state = 'ready';
    if (f & CLONE_CHILD_CLEARTID) ct.clearChildTid = req.childTid;
    this.forked = true;
    // The first thread moves the sandbox to the run loop of vCPU threads where the machine allows
    // it: several vCPUs in parallel, and even with one, a loop that preempts a thread spinning
    // in user mode when no guest timer would (src/linux/kernel.ts tick).
    if (!this.group && this.machine.syscallPath === 'cpl0-entry') this.wantParallel = true;
    traceClone(t, ct, false, true, 0);
    this.forkFixups.set(ct, { stack: req.stack, tls: f & CLONE_SETTLS ? req.tls : null });
    this.yieldTo = ct;
    return tid;
  }

  /**
   * On the user-stub path the stub's caches are the program's alone: before a second process
   * exists, what they hold goes back to the host and every later call is served by the host.
   */
  private quiesceStub(t: Task): void {
    const p = t.process;
    if (this.machine.syscallPath !== 'user-stub' || !p.stubCache.enabled) return;
    p.dirCache.close();
    attachCaches(p, false);
    const m = this.machine.memory;
    m.fill(PHYS_SHARED, SHARED_SIZE);
    m.setU32(PHYS_SHARED + SH_CACHE_FD, 0xffffffff);
    p.stubCache.publishIds(p.pid, t.tid, p.ppid);
    this.machine.useTracedEntry();
    this.execEnv = { ...this.execEnv, traced: true };
  }

  /** Images of programs by host identity, for execve loops (a shell running the same command). */
  private readonly programs = new Map<string, Buffer>();
  private programBytes = 0;

  /** The program file at a guest path, as execve reads it: a regular file the guest may execute. */
  private readExecutable(p: Process, guestPath: string): Buffer {
    let file: { fd: number; size: number; identity: string };
    try {
      file = p.vfs.openRegular(guestPath);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      if (e.errno === E.ENOENT && this.firstProgram?.path === guestPath) return this.firstProgram.image;
      if (e.errno === E.EISDIR || e.errno === E.ENXIO) throw new Errno(E.EACCES);
      throw e;
    }
    try {
      const st = Buffer.alloc(STAT_SIZE);
      const r = libc.fstat(file.fd, st);
      if (r < 0) throw new Errno(-r);
      if (!permitted(st, 1) || (st.readUInt32LE(STAT.mode) & 0o111) === 0) throw new Errno(E.EACCES);
      const hit = this.programs.get(file.identity);
      if (hit) return hit;
      if (file.size > this.machine.memoryLimit) throw new Errno(E.ENOMEM);
      const image = readWhole(file.fd, file.size);
      if (!image) throw new Errno(E.EIO);
      // At most 8 images and PROGRAM_CACHE_BYTES in all, the oldest out first: what the guest
      // makes executable (a sparse file of --memory bytes, touched between execs) costs the host
      // no more than that.
      if (image.length <= PROGRAM_CACHE_BYTES) {
        for (const [k, v] of this.programs) {
          if (this.programs.size < 8 && this.programBytes + image.length <= PROGRAM_CACHE_BYTES) break;
          this.programs.delete(k);
          this.programBytes -= v.length;
        }
        this.programs.set(file.identity, image);
        this.programBytes += image.length;
      }
      return image;
    } finally {
      libc.closeFd(file.fd);
    }
  }

  execve(t: Task, dirfd: number, path: string, argv: string[], envp: string[], flags: number): number {
    const p = t.process;
    let guestPath: string;
    if (path === '') {
      if (!(flags & AT_EMPTY_PATH)) throw new Errno(E.ENOENT);
      guestPath = p.fds.get(dirfd).path;
      if (!guestPath.startsWith('/')) throw new Errno(E.EACCES);
    } else {
      guestPath = '/' + p.pathAt(dirfd, path).join('/');
    }
    // /proc/self/exe (how busybox runs its applets): the program the process runs.
    if (guestPath === '/proc/self/exe' || guestPath === `/proc/${p.pid}/exe`) guestPath = '/' + normalize(p.exePath).join('/');
    let args = argv;
    let image = this.readExecutable(p, guestPath);
    // A script's interpreter gets the script's path as execve had it, as on Linux (bprm->filename):
    // relative stays relative, and one reached through a dirfd is /dev/fd/N[/path].
    let shown = path.startsWith('/') || dirfd === AT_FDCWD ? path : path === '' ? `/dev/fd/${dirfd}` : `/dev/fd/${dirfd}/${path}`;
    for (let depth = 0; ; depth++) {
      // #!interpreter [one argument]: the interpreter runs the script, found in the guest's namespace.
      let line: ReturnType<typeof shebang>;
      try {
        line = shebang(image);
      } catch (e) {
        if (e instanceof NotRunnableError) throw new Errno(E.ENOEXEC);
        throw e;
      }
      if (!line) break;
      if (depth >= MAX_SCRIPT_DEPTH) throw new Errno(E.ELOOP);
      args = scriptArgv(line, shown, args);
      shown = line.interp;
      guestPath = '/' + p.pathAt(AT_FDCWD, line.interp).join('/');
      image = this.readExecutable(p, guestPath);
    }
    // Everything that can fail is checked while the old program is still there to get the error.
    let interp: string | undefined;
    try {
      interp = parseElf(image, guestPath).interp;
    } catch (e) {
      if (e instanceof NotRunnableError) throw new Errno(E.ENOEXEC);
      throw e;
    }
    if (interp !== undefined) {
      try {
        readInterpreter(p.vfs, interp, guestPath);
      } catch (e) {
        // Whether the host has an interpreter the grants hide is not the guest's to learn.
        if (e instanceof InterpreterNotFoundError || e instanceof InterpreterNotGrantedError) throw new Errno(E.ENOENT);
        if (e instanceof NotRunnableError) throw new Errno(E.EACCES);
        throw e;
      }
    }
    this.alone(t);
    // A vfork child's execve leaves the parent its memory: the new program gets memory of its own.
    let home: SpaceMemory | null = null;
    if (this.ownSpaces && this.spaceInUse(p.space, p)) home = this.newHome();
    // The point of no return. The other threads end; a vfork parent gets its memory back as it was.
    for (const o of p.tasks) exitRobustList(o);
    for (const o of p.tasks) if (o !== t) this.futexes.ownerEnded(o.tid);
    for (const o of p.tasks) if (o !== t) { o.state = 'dead'; o.wait = null; o.saved = null; }
    p.tasks.splice(0, p.tasks.length, t);
    // A vfork child's space is still its parent's, with the parent's futex waiters in it.
    if (!this.spaceInUse(p.space, p)) {
      this.futexes.forget(p.space);
      p.space.dispose();
    }
    const old = p.space;
    p.vforkParentWaits = false;
    if (!this.ownSpaces && this.resident === old && this.spaceInUse(old, p)) {
      old.image = this.machine.snapshotUser();
      this.imageBytes += old.image.bytes;
    }
    p.fds.closeOnExec();
    // POSIX timers end with the program, their queued signals with them.
    for (const pt of p.timers.values()) dropTimerSignal(p, pt);
    p.timers.clear();
    p.shmAttached.clear(); // the new program's memory has none of them
    // Handled signals go back to their default; ignored ones stay ignored.
    for (const [sig, b] of [...p.sigactions]) if (b.readBigUInt64LE(0) !== SIG_IGN) p.sigactions.delete(sig);
    t.altStack = { sp: 0n, size: 0n, disabled: true };
    t.clearChildTid = 0n;
    p.dirCache.close();
    if (!home && old.home) home = old.home;
    if (home) this.machine.resetSpace(home);
    else this.machine.reset({ lazy: true });
    try {
      exec(t, image, { argv: args, envp, exePath: guestPath }, this.execEnv, home);
    } catch (e) {
      if (!(e instanceof NotRunnableError)) throw e;
      if (home && home !== old.home) this.endedHomes.push(home);
      // Too late to return the error: the process ends, as Linux kills it.
      killWith(p, SIG.SIGKILL, `(execve of ${guestPath} failed: ${e.message})`);
      return 0;
    }
    this.resident = p.space;
    this.execed = true;
    traceExec(t, t.tid);
    return 0;
  }

  reap(t: Task, which: (c: Process) => boolean, options: number, tid?: number): { child: Process; status: number; code: number; value: number; id?: number } | null {
    const p = t.process;
    // Tracees first (ptrace stops, and ends the parent's zombie does not report): by thread id
    // when wait named one.
    const traced = (x: Task) => (tid !== undefined ? x.tid === tid : which(x.process));
    const stop = p.tracees.size > 0 || p.traceExits.length > 0 ? report(p, traced, (options & WNOWAIT) !== 0) : null;
    if (stop) return { child: stop.task.process, status: stop.status, code: stop.code, value: stop.value, id: stop.task.tid };
    const kids = [...p.children].filter(which);
    if (kids.length === 0 && !hasTracee(p, traced)) throw new Errno(E.ECHILD);
    const events = (c: Process): boolean => c.waitEvent !== null &&
      ((c.waitEvent.code === CLD_STOPPED && (options & WUNTRACED) !== 0) || (c.waitEvent.code === CLD_CONTINUED && (options & WCONTINUED) !== 0));
    for (const c of kids) {
      if (c.zombie) {
        const status = c.zombie.status;
        if (!(options & WNOWAIT)) {
          this.release(c);
          p.childrenPeakRssKb = Math.max(p.childrenPeakRssKb, c.peakRssKb, c.childrenPeakRssKb);
          p.childCpu.add(c.cpu);
          p.childCpu.add(c.childCpu);
        }
        const sig = status & 0x7f;
        return { child: c, status, code: sig === 0 ? CLD_EXITED : defaultAction(sig) === 'core' ? CLD_DUMPED : CLD_KILLED, value: sig === 0 ? (status >> 8) & 0xff : sig };
      }
      if (events(c)) {
        const e = c.waitEvent!;
        if (!(options & WNOWAIT)) c.waitEvent = null;
        return { child: c, ...e };
      }
    }
    if (options & WNOHANG) return null;
    throw new WouldBlock('it waits for a child', () => [...p.children].some((c) => which(c) && (c.zombie !== null || events(c))) ||
      (![...p.children].some(which) && !hasTracee(p, traced)) || report(p, traced, true) !== null);
  }

  /**
   * t's process stopped (a stop signal's default action) in user context regs: the task leaves
   * the vCPU until SIGCONT continues the process or SIGKILL ends it. A traced task stops for its
   * tracer instead: in the group stop, or in traced (a signal stop, PTRACE_INTERRUPT's).
   */
  private stopTask(t: Task, regs: Registers, d: Extract<Delivery, { kind: 'stop' | 'trace' }>): void {
    const p = t.process;
    const traced = d.kind === 'trace' ? d.stop : null;
    if (t.trace) {
      // A tracee stops for its tracer (a signal stop, PTRACE_INTERRUPT, or the group stop the
      // tracer reports itself), which alone resumes it.
      enterStop(t, this.contextWith(t.vcpu, regs), traced ?? t.trace.groupStop(p.stopped));
      if (!traced && p.parent === t.trace.tracer) p.waitEvent = null;
      return;
    }
    t.saved = this.contextWith(t.vcpu, regs);
    waitForContinue(t);
  }

  kill(t: Task, pid: number, sig: number): void {
    const p = t.process;
    if (sig < 0 || sig > 64) throw new Errno(E.EINVAL);
    const live = [...this.processes.values()];
    const targets = pid > 0 ? live.filter((q) => q.pid === pid)
      : pid === 0 ? live.filter((q) => q.pgid === p.pgid)
      : pid === -1 ? live.filter((q) => q !== this.init)
      : live.filter((q) => q.pgid === -pid);
    if (targets.length === 0) throw new Errno(E.ESRCH);
    if (sig === 0) return;
    for (const q of targets) {
      const qt = q.signalTarget(sig);
      if (q.zombie || !qt) continue;
      if (q === p && sig === SIG.SIGKILL) killWith(p, SIG.SIGKILL, '(it sent the signal to itself)');
      else raise(qt, sig, { code: SI_USER, pid: p.pid });
    }
  }
}
