// A guest process, as in a kernel: what its threads share. Its address space, descriptor table,
// working directory, umask, signal actions, limits, identity (pid, parent, children), name and
// exit status. The process does not load a program: exec (src/linux/exec.ts) gives it a fresh
// address space with one; the kernel (src/linux/kernel.ts) creates processes and runs their tasks.
//
// Every value that arrives from the guest (pointers, lengths, paths, fds) is untrusted: it is
// checked here (userBuffer, userString, pathAt) or in the system-call functions before use, and
// a bad one fails that call with an errno, never the host.
import type { MqNamespace } from './mqueue.js';
import type { CpuidEntry } from '../kvm/kvm.js';
import type { SharedBudget } from '../kvm/shared-memory.js';
import type { ShmDir } from '../fs/shm.js';
import type { UnixNames } from '../fs/unix-socket.js';
import type { Fifos } from '../fs/fifo.js';
import type { FileLocks } from '../fs/locks.js';
import type { AsyncIo } from './async-io.js';
import type { ShmSegment, SysvIpc } from './sysv-ipc.js';
import type { PtyTable } from '../fs/pty.js';
import type { TerminalModes } from './terminal.js';
import type { PosixTimer } from './posix-timers.js';
import type { FileMirrors } from './file-mirror.js';
import type { Machine } from '../machine/machine.js';
import { PAGE_SIZE } from '../machine/x86.js';
import { PROT_READ, type AddressSpace } from './address-space.js';
import { GUEST_PPID, RLIM_NLIMITS } from '../abi/abi.generated.js';
import type { StubCache } from './stub-cache.js';
import type { DirCache } from '../fs/dir-cache.js';
import type { MapPool } from './map-pool.js';
import type { FdTable, InputSource, OutputSink } from '../fs/open-file.js';
import { normalize, PATH_MAX, type Vfs } from '../fs/vfs.js';

/** Links a path may go through before ELOOP, as Linux's MAXSYMLINKS. */
const MAX_LINK_HOPS = 40;
import { AT_FDCWD, E, Errno, MQ_BYTES_MAX, SIG, SYSCALL_NAMES } from '../abi/linux.js';
import { nameOf } from '../abi/file-names.js';
import { MAX_QUEUED_SIGNALS, type SandboxLimits } from './limits.js';
import type { Task } from './task.js';
import { CpuTime } from './cpu-time.js';

/** The guest's identity (a plain user, like `docker run --user 1000`) is part of the ABI.
 * GUEST_PID and GUEST_PPID are the first process's pid and its parent's. */
export { GUEST_GID, GUEST_PID, GUEST_PPID, GUEST_UID } from '../abi/abi.generated.js';

/** What a sandbox runs: its first program, its files and its limits (src/linux/kernel.ts). */
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
  /** Polled on every timer tick (the APIC timer runs whenever this is set) and wherever the host
   * waits for the guest (sleeps, poll, stdin): true ends the run with ExitReason 'aborted'.
   * The asynchronous engine (src/api/engine.ts) sets it from an AbortSignal or kill(). */
  cancelled?: () => boolean;
  /**
   * Signals sent to the sandbox from outside (the CLI's own signals, Sandbox.sendSignal()),
   * taken wherever cancelled is polled; null when there are none. With it set, the guest timer
   * runs, and no wait of the guest counts as one that would last forever: a signal from outside
   * may end any.
   */
  outsideSignals?: () => OutsideSignal[] | null;
  /**
   * The first process was stopped (SIGTSTP, SIGSTOP...): its parent is outside the sandbox, and
   * only the outside can continue it. Called once nothing in the sandbox runs, with the host
   * terminal's modes put back as they were; when it returns, the process group is continued
   * (SIGCONT) and the program's modes applied again. The CLI stops itself here, as the program
   * would have stopped natively, and its shell's `fg` continues both.
   */
  onStopped?: (signal: number) => void;
  /** Processes the sandbox may hold at once (zombies included); fork past it fails with EAGAIN. */
  maxProcesses?: number;
  /** Most vCPUs the threads of a process run on in parallel (default: the host's CPUs, at most
   * MAX_VCPUS; always 1 on the user-stub path). */
  vcpus?: number;
}

/**
 * A signal from outside the sandbox: to its first process ('process', as kill(2) of the program
 * would), or to the foreground process group of its terminal ('foreground', as a terminal's
 * Ctrl-C would; the first process's group until a shell moves it).
 */
export interface OutsideSignal { signal: number; to: 'process' | 'foreground' }

export type ExitReason =
  | { kind: 'exited'; status: number }
  | { kind: 'signaled'; signal: number; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'output-limit'; message: string }
  | { kind: 'vm-error'; message: string }
  /** Ended from outside: ProcessOptions.cancelled returned true (an AbortSignal, kill()). */
  | { kind: 'aborted'; message: string };

/** Exit status as `docker run` and `env` report it. */
export function exitStatusOf(r: ExitReason): number {
  switch (r.kind) {
    case 'exited': return r.status & 0xff;
    case 'signaled': return 128 + r.signal;
    case 'timeout': return 124;
    case 'output-limit': return 128 + SIG.SIGXFSZ;
    case 'vm-error': return 125;
    case 'aborted': return 128 + SIG.SIGKILL;
  }
}

/** Bytes of a process name (comm), with its NUL. */
export const TASK_COMM_LEN = 16;
const RLIMIT_CPU = 0, RLIMIT_FSIZE = 1, RLIMIT_STACK = 3, RLIMIT_CORE = 4, RLIMIT_NPROC = 6, RLIMIT_NOFILE = 7, RLIMIT_MEMLOCK = 8, RLIMIT_AS = 9, RLIMIT_SIGPENDING = 11;
const RLIMIT_MSGQUEUE = 12, RLIMIT_NICE = 13, RLIMIT_RTPRIO = 14;
/** RLIMIT_MEMLOCK as Linux gives an unprivileged user (8 MiB). */
const MEMLOCK_BYTES = 8n << 20n;
const RLIM_INFINITY = 0xffffffffffffffffn;

/**
 * What system calls ask of the kernel that owns the process tree (src/linux/kernel.ts implements
 * it): the calls that create, replace, end, wait for and signal processes.
 */
export interface ProcessTree {
  /** Tasks (threads, and processes not yet waited for) the sandbox may hold: RLIMIT_NPROC. */
  readonly maxProcesses: number;
  /** MAP_SHARED anonymous memory that stays shared across fork, and its budget; null where processes cannot share memory (kvm_pvm). */
  readonly sharedMemory: SharedBudget | null;
  /** The sandbox's /dev/shm (POSIX shared memory, memfd_create); null where sharedMemory is. */
  readonly shm: ShmDir | null;
  /** Names bound by the sandbox's AF_UNIX sockets. */
  readonly unixNames: UnixNames;
  /** Named pipes in the grants, served as pipes inside the sandbox (src/fs/fifo.ts). */
  readonly fifos: Fifos;
  /**
   * The terminal the sandbox's standard streams may be: the session it belongs to (the first
   * process's) and its foreground process group (tcgetpgrp, tcsetpgrp), kept in the sandbox:
   * the host terminal's own stays kvmbox's.
   */
  readonly terminal: { sid: number; pgrp: number };
  /** That terminal's modes as programs set them (tcsetattr), put back at the end. */
  readonly terminalModes: TerminalModes;
  /** The sandbox's pseudo-terminals (/dev/ptmx, /dev/pts/N). */
  readonly ptys: PtyTable;
  /** The advisory file locks (flock, fcntl) of the sandbox's processes. */
  readonly locks: FileLocks;
  /** Owners of open files' I/O signals, and the files with O_ASYNC (src/linux/async-io.ts). */
  readonly asyncIo: AsyncIo;
  /** The sandbox's POSIX message queues (src/linux/mqueue.ts). */
  readonly mqueues: MqNamespace;
  /** The sandbox's System V message queues, semaphores and shared memory (src/linux/sysv-ipc.ts). */
  readonly ipc: SysvIpc;
  /** Mirrors of host files mapped MAP_SHARED for writing; null where sharedMemory is. */
  readonly fileMirrors: FileMirrors | null;
  /** vCPUs the sandbox's threads may run on in parallel: the CPUs programs see (sched_getaffinity). */
  readonly maxVcpus: number;
  /** What the vCPUs answer to CPUID (/proc/cpuinfo). */
  readonly cpuid: readonly CpuidEntry[];
  /** The number of the vCPU t runs on (getcpu). */
  cpuOf(t: Task): number;
  /** The wall or monotonic clock as t's vDSO reads it now (Machine.guestClockNs); null without one. */
  guestClockNs(t: Task, realtime: boolean): bigint | null;
  /** Whether a task of another process may still run (or a signal come from outside): then a call can wait for it. */
  othersCanRun(p: Process): boolean;
  /** Whether anything could continue p once it stops (another process, or a signal from outside). */
  othersCouldContinue(p: Process): boolean;
  /**
   * Send sig with pid 0 (from outside, or from the kernel with code SI_KERNEL) to every live
   * process of group pgid (null: the first process); false when there is none.
   */
  signalGroup(pgid: number | null, sig: number, code?: number): boolean;
  /** Raise the signals sent from outside since the last look (ProcessOptions.outsideSignals). */
  takeOutsideSignals(): void;
  /** fork, vfork and clone without CLONE_VM (or with CLONE_VM|CLONE_VFORK); the child's pid. */
  clone(t: Task, req: CloneRequest): number;
  /** execve: on success the task continues in the new program (the call does not return). */
  execve(t: Task, dirfd: number, path: string, argv: string[], envp: string[], flags: number): number;
  /**
   * wait4/waitid: a child that ended (or, with WUNTRACED/WCONTINUED, stopped or continued), with
   * its status word and SIGCHLD si_code and si_status; null with WNOHANG when none has. Before
   * children, a stop or end of a tracee (ptrace) that which accepts, or with tid, the thread of
   * that id; id is then the tracee's thread id.
   */
  reap(t: Task, which: (c: Process) => boolean, options: number, tid?: number): { child: Process; status: number; code: number; value: number; id?: number } | null;
  /** kill: send sig to the processes the pid argument names; throws ESRCH when none. */
  kill(t: Task, pid: number, sig: number): void;
  /** Process by pid (live or not yet reaped). */
  find(pid: number): Process | undefined;
  /** 16 random bytes made with the sandbox: its boot id (/proc/sys/kernel/random/boot_id). */
  readonly bootId: Uint8Array;
  /** Every process, live or not yet reaped. */
  all(): Iterable<Process>;
  /** A live thread by tid. */
  findTask(tid: number): Task | undefined;
  /** exit(2) of one thread: the process ends with its last thread. */
  exitThread(t: Task, status: number): void;
  /**
   * membarrier: every vCPU but t's leaves the guest (a full barrier on each) before t's call goes
   * on; the call waits (runs again) while some are still in.
   */
  barrier(t: Task): void;
  /**
   * From now on every system call of the sandbox reaches the host, none is answered by the
   * user-mode stub (kvm_pvm): seccomp filters must see them all.
   */
  serveEveryCall(t: Task): void;
  /** FUTEX_WAIT: parks t until a wake on the word at addr of its address space (or the timeout, ms). */
  futexWait(t: Task, addr: number, timeoutMs: number | null, bitset: number): number;
  /** FUTEX_WAKE: wakes up to n waiters on addr (whose bitset meets bitset); with requeue, moves up to
   * requeue.n more waiters to requeue.addr. Returns how many were woken (and moved). */
  futexWake(t: Task, addr: number, n: number, bitset: number, requeue?: { addr: number; n: number }): number;
  /** FUTEX_LOCK_PI's wait for the holder owner of the word at addr (or the timeout, ms). */
  futexWaitPi(t: Task, addr: number, timeoutMs: number | null, owner: number): number;
  /** FUTEX_UNLOCK_PI: the first waiter on addr becomes the owner; null when none waits. */
  futexHandOver(t: Task, addr: number): { task: Task; more: boolean } | null;
  /** Whether a task waits on the word at addr. */
  futexHasWaiters(t: Task, addr: number): boolean;
  /** The live task with this tid, in any process of the sandbox. */
  findTask(tid: number): Task | undefined;
}

export interface CloneRequest {
  flags: bigint;
  /** The child's stack pointer (0: the parent's). */
  stack: bigint;
  parentTid: bigint;
  childTid: bigint;
  tls: bigint;
  /** CLONE_PIDFD: where the parent gets a pidfd for the child (clone: parent_tid; clone3: pidfd). */
  pidfd?: bigint;
}

export interface ProcessInit {
  pid: number;
  kernel: ProcessTree;
  parent: Process | null;
  machine: Machine;
  vfs: Vfs;
  fds: FdTable;
  cwd: string[];
  limits: SandboxLimits;
}

const EMPTY = Buffer.alloc(0);

/** EFBIG from RLIMIT_FSIZE: the kernel raises SIGXFSZ in the calling thread with it. */
export class FileTooBig extends Errno {
  constructor() { super(E.EFBIG); }
}

export class Process {
  readonly pid: number;
  /** Its parent; the first process when the parent ended first (reparenting). */
  parent: Process | null;
  readonly children = new Set<Process>();
  readonly kernel: ProcessTree;
  /** Process group and session: the first process leads both; a child inherits its parent's. */
  pgid: number;
  sid: number;
  /** The signal its parent gets when it ends (clone's low byte; SIGCHLD for fork). */
  exitSignal = 17;
  /** PR_SET_CHILD_SUBREAPER: its orphaned descendants become its children (else the first process's). */
  childSubreaper = false;
  /** PR_SET_PDEATHSIG: the signal it gets when its parent ends (0: none). */
  parentDeathSignal = 0;
  /** Ended and not yet waited for: the status word wait4 reports. */
  zombie: { status: number } | null = null;
  /** A vfork child until it execs or ends: the parent waits for that. */
  vforkParentWaits = false;
  /** The signal that stopped it (0: not stopped). */
  stopped = 0;
  /** A stop or continue its parent has not waited for yet (WUNTRACED, WCONTINUED). */
  waitEvent: { status: number; code: number; value: number } | null = null;
  /** Its threads; tasks[0] is the thread group leader (tid = pid). */
  readonly tasks: Task[] = [];
  /** Its program's auxiliary vector (/proc/PID/auxv), set by exec and kept by fork. */
  auxv: Buffer = Buffer.alloc(0);
  /** The threads of other processes this process traces (ptrace; src/linux/ptrace.ts). */
  readonly tracees = new Set<Task>();
  /** Ends of tracees that its wait reports and the parent's zombie does not (threads, others' children). */
  readonly traceExits: Array<{ task: Task; status: number }> = [];
  /** The machine whose memory holds the address space. */
  readonly machine: Machine;
  /** Set by exec: a fresh one per program. */
  space!: AddressSpace;
  fds: FdTable;
  readonly vfs: Vfs;
  cwd: string[];
  umask = 0o022;
  /** The nice value (getpriority, setpriority): kept and inherited, with no effect on scheduling. */
  nice = 0;
  /**
   * The most memory the process has had (KiB: getrusage's ru_maxrss), and the most any child it
   * waited for had (RUSAGE_CHILDREN). Its memory is its pages mapped with some right (the commit
   * charge, src/machine/paging.ts): kvmbox does not see which pages the guest has touched.
   */
  peakRssKb = 0;
  childrenPeakRssKb = 0;
  /**
   * CPU time of all its threads, live and ended (CLOCK_PROCESS_CPUTIME_ID, RUSAGE_SELF), and of
   * the children it waited for with theirs (RUSAGE_CHILDREN, times' cutime and cstime). Kept
   * across execve; a fork's child starts at zero.
   */
  readonly cpu = new CpuTime();
  readonly childCpu = new CpuTime();
  /** The I/O priority (ioprio_set, ioprio_get): kept and inherited, with no effect. */
  ioprio = 0;
  /** membarrier's registrations (MEMBARRIER_CMD_REGISTER_*): inherited by fork, gone at execve. */
  membarriers = 0;
  /** The execution domain and its flags (personality): kept, inherited, with no effect. */
  persona = 0;
  /** The NUMA memory policy (set_mempolicy): its mode with flags, and its nodes (bit 0: the only node). Inherited; no effect. */
  memPolicy = { mode: 0, nodes: 0n };
  /** System V shared memory it attached (shmat), by address: inherited by fork, gone at exec. */
  shmAttached = new Map<number, ShmSegment>();
  /** The scheduling policy (sched_setscheduler): SCHED_OTHER, SCHED_BATCH or SCHED_IDLE, kept and inherited, with no effect either. */
  schedPolicy = 0;
  /** Signal actions the program set (struct sigaction as the program passed it), by signal. */
  readonly sigactions = new Map<number, Buffer>();
  /**
   * The interval timers, by `which`: ITIMER_REAL (alarm, setitimer), ITIMER_VIRTUAL and
   * ITIMER_PROF: when each fires next and its period (0: once), in ms on its clock (itimerNow);
   * null when disarmed. Checked before each re-entry and on timer ticks (signals.ts); kept
   * across execve, not inherited by fork, as Linux's.
   */
  readonly itimers: Array<{ due: number; interval: number } | null> = [null, null, null];

  /** ITIMER_REAL's (alarm's) timer. */
  get realTimer(): { due: number; interval: number } | null { return this.itimers[0]!; }
  set realTimer(t: { due: number; interval: number } | null) { this.itimers[0] = t; }
  /** POSIX timers (timer_create), by id; ids count from 0 in each process. Gone at exec. */
  readonly timers = new Map<number, PosixTimer>();
  nextTimerId = 0;

  /** Whether a timer (an interval timer or a POSIX timer) may raise a signal: checkTimers has work. */
  get hasTimers(): boolean {
    return this.itimers.some((t) => t !== null) || this.timers.size > 0 || this.rlimits.has(RLIMIT_CPU);
  }

  /**
   * RLIMIT_CPU when the program set one: [soft, hard] in ms of the process's CPU time, Infinity
   * for none. Looked at with the timers (checkTimers): SIGXCPU at the soft limit, SIGKILL at the
   * hard one.
   */
  cpuLimitMs(): [number, number] | null {
    const l = this.rlimits.get(RLIMIT_CPU);
    if (!l) return null;
    const ms = (v: bigint) => (v === RLIM_INFINITY ? Infinity : Number(v) * 1000);
    return [ms(l[0]), ms(l[1])];
  }

  /** After a SIGXCPU: the soft limit one second on, so the next comes a CPU second later (as Linux). */
  nextCpuSecond(): void {
    const [soft, hard] = this.rlimit(RLIMIT_CPU);
    if (soft < hard) this.setRlimit(RLIMIT_CPU, soft + 1n, hard);
  }

  /**
   * The clock of interval timer `which`, in ms: ITIMER_REAL the monotonic clock
   * (performance.now()), ITIMER_VIRTUAL the process's user time, ITIMER_PROF its user and
   * system time (Process.cpu: counted at each exit, so they are looked at on the exits and
   * ticks of a busy program).
   */
  itimerNow(which: number): number {
    return which === 0 ? performance.now() : which === 1 ? this.cpu.user : this.cpu.user + this.cpu.sys;
  }

  /**
   * The earliest moment (performance.now() ms) a timer needs looking at; Infinity for none. A
   * CPU-time timer cannot expire sooner than its time left from now (one thread busy all along).
   */
  get timerDue(): number {
    let due = Infinity;
    this.itimers.forEach((t, which) => {
      if (t) due = Math.min(due, which === 0 ? t.due : performance.now() + t.due - this.itimerNow(which));
    });
    for (const pt of this.timers.values()) due = Math.min(due, pt.wakeAt);
    const cpuLimit = this.cpuLimitMs();
    if (cpuLimit) due = Math.min(due, performance.now() + Math.min(...cpuLimit) - this.itimerNow(2));
    return due;
  }
  /**
   * Whether a timer that runs on wall time is armed (ITIMER_REAL, a POSIX timer): one that
   * raises its signal while every task waits. CPU-time timers do not advance then.
   */
  get wallTimerArmed(): boolean {
    if (this.itimers[0]) return true;
    for (const pt of this.timers.values()) if (pt.wakeAt < Infinity) return true;
    return false;
  }
  /** The name (PR_SET_NAME, /proc/self/comm): the program's base name at exec, NUL-padded. */
  comm: Buffer = Buffer.alloc(TASK_COMM_LEN);
  /** What exec set: the program's argv, environment and guest path (symlinks resolved: /proc/self/exe). */
  argv: readonly string[] = [];
  envp: readonly string[] = [];
  exePath = '';
  /** Why it ended, once it has. */
  exit: ExitReason | null = null;
  readonly limits: SandboxLimits;
  /** The user-mode stub's caches in this process's memory (set by exec; src/linux/stub-cache.ts,
   * src/fs/dir-cache.ts, src/linux/map-pool.ts). */
  stubCache!: StubCache;
  dirCache!: DirCache;
  mapPool!: MapPool;
  private started: bigint | undefined;

  /** An empty process: no program until exec loads one. */
  constructor(init: ProcessInit) {
    this.pid = init.pid;
    this.kernel = init.kernel;
    this.parent = init.parent;
    this.pgid = init.parent?.pgid ?? init.pid;
    this.sid = init.parent?.sid ?? init.pid;
    this.machine = init.machine;
    this.vfs = init.vfs;
    this.fds = init.fds;
    const locks = init.kernel.locks;
    this.fds.hooks = { closed: (f) => locks.closed(this, f), released: (f) => locks.released(f), ended: () => locks.ownerGone(this) };
    this.cwd = init.cwd;
    this.limits = init.limits;
    init.parent?.children.add(this);
  }

  /** The sandbox's mapped files, which its host files read and write through (FsTask). */
  get mappedFiles(): FileMirrors | null { return this.kernel.fileMirrors; }

  get ppid(): number {
    return this.parent?.pid ?? GUEST_PPID;
  }

  /** The thread a signal sent to the process goes to: one that does not block it, else any live one. */
  signalTarget(sig: number): Task | undefined {
    const live = this.tasks.filter((t) => t.state !== 'dead');
    const b = 1n << BigInt(sig - 1);
    return live.find((t) => (t.sigmask & b) === 0n) ?? live.find((t) => (t.sigwaitSet & b) !== 0n) ?? live[0];
  }

  /** Bytes of memory the process has now (0 once it ended), and its peak noted. */
  rssBytes(): number {
    if (this.zombie) return 0;
    const bytes = this.space.paging.committed;
    this.peakRssKb = Math.max(this.peakRssKb, Math.floor(bytes / 1024));
    return bytes;
  }

  /** The thread group leader. */
  get leader(): Task {
    const t = this.tasks[0];
    if (!t) throw new Error(`process ${this.pid} has no task`);
    return t;
  }

  /**
   * When the program started, on the monotonic clock: recorded at its first system call (the
   * first thing a program does).
   */
  startNs(): bigint {
    return (this.started ??= process.hrtime.bigint());
  }

  /** A name as comm holds it: its first 15 bytes, NUL-padded to TASK_COMM_LEN. */
  commBuffer(name: Buffer): Buffer {
    const b = Buffer.alloc(TASK_COMM_LEN);
    name.copy(b, 0, 0, TASK_COMM_LEN - 1);
    return b;
  }

  setComm(name: Buffer): void {
    this.comm = this.commBuffer(name);
  }

  /**
   * Limits the program set (setrlimit, prlimit64) other than RLIMIT_NOFILE (which is the fd
   * table's): kept, inherited and reported. RLIMIT_CPU is enforced (checkTimers) and
   * RLIMIT_MEMLOCK counted; for the others kvmbox enforces its own sandbox limits instead.
   */
  rlimits = new Map<number, [bigint, bigint]>();

  /**
   * RLIMIT_FSIZE for a write of len bytes at pos of a regular file: how many of them may be
   * written (all, when no limit is set); at or past the limit none, which is FileTooBig (as
   * Linux's generic_write_check_limits).
   */
  fileSizeRoom(pos: bigint, len: number): number {
    const l = this.rlimits.get(RLIMIT_FSIZE);
    if (!l || l[0] === RLIM_INFINITY || len === 0) return len;
    if (pos >= l[0]) throw new FileTooBig();
    return Math.min(len, Number(l[0] - pos));
  }

  /** RLIMIT_FSIZE for a regular file made size bytes long (ftruncate, truncate, fallocate): FileTooBig past it. */
  checkFileSize(size: bigint): void {
    if (size > 0n) this.fileSizeRoom(size - 1n, 1);
  }

  /** RLIMIT_STACK's soft limit in bytes where the process set one (Infinity: unlimited), for exec. */
  stackRlimit(): number | undefined {
    const l = this.rlimits.get(RLIMIT_STACK);
    return l === undefined ? undefined : l[0] === RLIM_INFINITY ? Infinity : Number(l[0]);
  }

  /** Whether the program set RLIMIT_FSIZE (writes to regular files then ask fileSizeRoom). */
  get limitsFileSize(): boolean { return this.rlimits.has(RLIMIT_FSIZE); }

  /** [soft, hard] limit of a resource: what the program set, else what the sandbox gives. */
  rlimit(resource: number): [bigint, bigint] {
    if (resource === RLIMIT_NOFILE) return [BigInt(this.fds.limit), BigInt(this.fds.hardLimit)];
    const set = this.rlimits.get(resource);
    if (set) return set;
    switch (resource) {
      // Soft: the stack's reserve; hard: unlimited as on Linux, so that a shell may raise the soft
      // limit for the programs it runs (`ulimit -s`): exec sizes their stacks by it.
      case RLIMIT_STACK: return [BigInt(this.space.stackTop - this.space.stackLimit), RLIM_INFINITY];
      case RLIMIT_NPROC: return [BigInt(this.kernel.maxProcesses), BigInt(this.kernel.maxProcesses)];
      // Soft: the memory the sandbox has (what runtimes size their heaps by); hard: unlimited as
      // on Linux, so that a program may raise it again (only a lower one is enforced).
      case RLIMIT_AS: return [BigInt(this.space.memory.size), RLIM_INFINITY];
      case RLIMIT_MEMLOCK: return [MEMLOCK_BYTES, MEMLOCK_BYTES];
      case RLIMIT_SIGPENDING: return [BigInt(MAX_QUEUED_SIGNALS), BigInt(MAX_QUEUED_SIGNALS)];
      // Linux's defaults for a user's first process: no core files (kvmbox writes none anyway),
      // and no raised nice or real-time priority, which the guest's user may not take.
      case RLIMIT_CORE: return [0n, RLIM_INFINITY];
      case RLIMIT_MSGQUEUE: return [BigInt(MQ_BYTES_MAX), BigInt(MQ_BYTES_MAX)];
      case RLIMIT_NICE: case RLIMIT_RTPRIO: return [0n, 0n];
      default:
        if (resource < 0 || resource >= RLIM_NLIMITS) throw new Errno(E.EINVAL);
        return [RLIM_INFINITY, RLIM_INFINITY];
    }
  }

  /**
   * setrlimit/prlimit64: a limit may be lowered, never raised past its hard limit (EPERM: the
   * guest user is unprivileged), and soft never above hard (EINVAL). RLIMIT_NOFILE is enforced
   * (EMFILE at the new soft limit).
   */
  setRlimit(resource: number, cur: bigint, max: bigint): void {
    const [, hard] = this.rlimit(resource);
    if (cur > max) throw new Errno(E.EINVAL);
    if (max > hard) throw new Errno(E.EPERM);
    if (resource === RLIMIT_NOFILE) {
      this.fds.limit = Number(cur);
      this.fds.hardLimit = Number(max);
    } else {
      this.rlimits.set(resource, [cur, max]);
    }
    // A vfork child still runs in its parent's address space: its limit waits for its exec.
    if (resource === RLIMIT_AS && !this.vforkParentWaits) this.applyAddressLimit();
    this.stubCache.publishLimits(this.rlimitTable());
  }

  /**
   * RLIMIT_AS, when the program lowered it below the sandbox's (--memory), onto its address space
   * (AddressSpace.addressLimit). At the sandbox's own value it stays what it was: --memory
   * limits committed memory, and reservations beyond it are free (V8's, the JVM's). exec applies
   * it once the new program's own mappings are made: a limit below them leaves the program no
   * room to grow, where Linux would fail the exec.
   */
  applyAddressLimit(): void {
    const l = this.rlimits.get(RLIMIT_AS);
    this.space.addressLimit = l && l[0] < BigInt(this.space.memory.size) ? Number(l[0]) : Infinity;
  }

  /** Every resource's [soft, hard] limit, by number (what the user-mode stub answers prlimit64 with). */
  rlimitTable(): Array<[bigint, bigint]> {
    return Array.from({ length: RLIM_NLIMITS }, (_, r) => this.rlimit(r));
  }

  /** Milliseconds until the sandbox's time limit, or null when there is none. For calls that block. */
  timeLeftMs(): number | null {
    return this.limits.timeLeftMs();
  }

  /**
   * End the program if its time is up or its owner cancelled it; true when it has ended. Signals
   * sent from outside are raised here too, as this is polled wherever the host waits.
   */
  checkDeadline(): boolean {
    if (this.exit) return true;
    this.kernel.takeOutsideSignals();
    if (this.limits.cancelled()) {
      this.exit = { kind: 'aborted', message: 'kvmbox: run aborted' };
    } else if (this.limits.timedOut()) {
      this.exit = { kind: 'timeout', message: `kvmbox: time limit of ${(this.limits.timeoutMs! / 1000).toString()} s reached; program stopped` };
    }
    return this.exit !== null;
  }

  /** Close the process's files and caches. The machine is the kernel's caller's. */
  close(): void {
    this.dirCache?.close();
    this.fds.closeAll();
    this.parent?.children.delete(this);
  }

  // ---- helpers for system calls: every guest pointer goes through these ----

  /** A live view of user memory [addr, addr+len), which must be mapped with prot. */
  userBuffer(addr: bigint | number, len: bigint | number, prot = PROT_READ): Buffer {
    const a = typeof addr === 'bigint' ? (addr > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(addr)) : addr;
    const n = typeof len === 'bigint' ? (len > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(len)) : len;
    // Zero bytes at any address are no access, as on Linux (read(fd, p, 0) is 0 for any p);
    // found by the fuzzer: a zero-length iovec past guest memory reached the slice below.
    if (n === 0) return EMPTY;
    if (!this.space.paging.accessible(a, n, prot)) {
      // Unfilled pages of a file mapping are filled where the file covers them (fillReserved).
      if (this.space.reservedIn(a, n).length === 0) throw new Errno(E.EFAULT);
      this.space.fillReserved(a, n);
      if (!this.space.paging.accessible(a, n, prot)) throw new Errno(E.EFAULT);
    }
    return this.space.memory.slice(a, n);
  }

  /** A NUL-terminated string from user memory, at most max bytes (as nameOf carries names). */
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
    return nameOf(Buffer.concat(chunks));
  }

  /** Absolute guest path components for (dirfd, path). */
  pathAt(dirfd: number, path: string): string[] {
    if (path.startsWith('/')) return this.throughProcLinks(normalize(path));
    let base: string[];
    if (dirfd === AT_FDCWD) base = this.cwd;
    else {
      const f = this.fds.get(dirfd);
      if (!f.path.startsWith('/')) throw new Errno(E.ENOTDIR);
      base = normalize(f.path);
    }
    return this.throughProcLinks(normalize(base.join('/') + '/' + path));
  }

  /**
   * A path that goes on through one of the made-up links to directories, /proc/PID/cwd,
   * /proc/PID/root, /proc/PID/fd/N and /dev/fd/N (PID: self or a process of the sandbox),
   * continues at the link's target, as Linux's path walk follows them: `cat /proc/self/cwd/f`.
   * The link itself (nothing after it) is left to the made-up file (readlink, stat, open). An fd
   * that is not a directory gives ENOTDIR; a gone process or fd, ENOENT.
   */
  private throughProcLinks(comps: string[]): string[] {
    for (let hops = 0; ; hops++) {
      if (hops > MAX_LINK_HOPS) throw new Errno(E.ELOOP);
      let q: Process | undefined = this, at = 2;
      if (comps[0] === 'proc' && comps.length > 3) {
        q = comps[1] === 'self' ? this : /^[1-9]\d*$/.test(comps[1]!) ? this.kernel.find(Number(comps[1])) : undefined;
      } else if (comps[0] === 'dev' && comps[1] === 'fd' && comps.length > 3) at = 1;
      else return comps;
      const link = comps[at];
      if (!q || (link !== 'cwd' && link !== 'root' && link !== 'fd') || (link === 'fd' && comps.length < at + 3)) return comps;
      if (q.zombie) throw new Errno(E.ENOENT);
      if (link === 'fd') {
        const fd = comps[at + 1]!;
        let target: string;
        try {
          target = q.fds.get(/^\d+$/.test(fd) ? Number(fd) : -1).path;
        } catch {
          throw new Errno(E.ENOENT);
        }
        if (!target.startsWith('/')) throw new Errno(E.ENOTDIR);
        comps = [...normalize(target), ...comps.slice(at + 2)];
      } else comps = [...(link === 'cwd' ? q.cwd : []), ...comps.slice(at + 1)];
    }
  }

  /** The name of a system call for messages. */
  static syscallName(nr: number): string {
    return SYSCALL_NAMES[nr] ?? `syscall_${nr}`;
  }
}
