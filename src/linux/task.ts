// A Task is one thread of a guest process, as in a kernel: the vCPU it runs on and the state
// that is its own rather than its process's (the FS base, its id, its signal mask and pending
// signals, the address set_tid_address gave). Everything it shares with the other threads of
// its process (memory, files, signal actions...) is on t.process (src/linux/process.ts).
//
// The kernel (src/linux/kernel.ts) puts tasks on the sandbox's vCPUs: processes take turns,
// and the threads of the process in guest memory may run in parallel, one per vCPU.
import type { Registers, Vcpu } from '../kvm/kvm.js';
import type { WouldBlock } from '../fs/open-file.js';
import { CpuTime } from './cpu-time.js';
import type { Process } from './process.js';
import type { PosixTimer } from './posix-timers.js';
import type { SeccompState } from './seccomp.js';

/** Linux's default timer slack: 50 µs. */
export const DEFAULT_TIMER_SLACK_NS = 50_000n;
import type { Tracing } from './tracing.js';

/**
 * What a pending signal's siginfo says: its code, the sender's pid, a fault's address or a
 * child's status; or, from rt_sigqueueinfo, the sender's whole siginfo (raw, 128 bytes); or the
 * POSIX timer that sent it (its overrun is in status once it is taken).
 */
export interface PendingInfo { code: number; pid: number; addr: bigint; status: number; raw?: Buffer; timer?: PosixTimer }

/** A task's user-mode state while it is off the vCPU: what it continues from. */
/** fpu: the whole XSAVE area (x87, SSE, the upper halves of AVX registers and the rest), so
 * that a switch between tasks loses no register state. */
export interface SavedContext { regs: Registers; fpu: Buffer; fsBase: bigint }

/**
 * running: on the vCPU. ready: may run (after fork, or preempted). waiting: parked in a system
 * call until its wait is ready (or a signal or the wait's timeout ends it). dead: exited.
 */
export type TaskState = 'running' | 'ready' | 'waiting' | 'dead';


export class Task {
  /** The FS base (ARCH_SET_FS): the thread pointer of the program's libc. */
  fsBase = 0n;
  /**
   * The thread's own name (prctl PR_SET_NAME, pthread_setname_np, /proc/PID/task/TID/comm), for
   * a thread other than the group leader; null: the process's (Process.comm), which is the leader's.
   */
  comm: Buffer | null = null;
  /** The thread's CPU time (CLOCK_THREAD_CPUTIME_ID, RUSAGE_THREAD); its process's counts it too. */
  readonly cpu = new CpuTime();
  /** prctl PR_SET_NO_NEW_PRIVS: set for good, inherited by threads and forks, kept across execve. */
  noNewPrivs = false;
  /** prctl PR_SET_TIMERSLACK: its timer slack in ns (kept and reported; waits here are exact), inherited. */
  timerSlackNs = DEFAULT_TIMER_SLACK_NS;
  /** Its seccomp mode and filters (src/linux/seccomp.ts), inherited and kept as noNewPrivs is; null: none. */
  seccomp: SeccompState | null = null;
  /** Its tracer and ptrace state (src/linux/tracing.ts); null when it is not traced. */
  trace: Tracing | null = null;

  /** Count ms of user and system time to the thread and its process. */
  charge(user: number, sys: number): void {
    this.cpu.user += user;
    this.cpu.sys += sys;
    this.process.cpu.user += user;
    this.process.cpu.sys += sys;
  }

  /** The thread's name: its own, or the process's (the leader's). */
  name(): Buffer {
    return this.comm ?? this.process.comm;
  }

  /** Name the thread (up to 15 bytes); the leader's name is the process's, as /proc/PID/comm shows. */
  setName(name: Buffer): void {
    if (this.tid === this.process.pid) {
      this.process.setComm(name);
      return;
    }
    this.comm = this.process.commBuffer(name);
  }
  /** Blocked signals (rt_sigprocmask), bit n-1 for signal n. */
  sigmask = 0n;
  /** Signals raised for this thread and not yet delivered (src/linux/signals.ts). */
  pending = 0n;
  /**
   * The siginfo of each pending signal: one for a standard signal (they do not queue), every one
   * sent for a real-time signal (32-64), oldest first.
   */
  readonly pendingInfo = new Map<number, PendingInfo[]>();
  /** The mask to restore after the handler when rt_sigsuspend replaced it (null: none). */
  savedMask: bigint | null = null;
  /** The signals a parked rt_sigtimedwait waits for (0n otherwise): a signal its process blocks everywhere comes here. */
  sigwaitSet = 0n;
  /** sigaltstack: base, size, and whether it is disabled. */
  altStack = { sp: 0n, size: 0n, disabled: true };
  /** set_tid_address: where to clear the tid and wake a futex when the thread exits. */
  clearChildTid = 0n;
  /** set_robust_list: the head of the thread's list of held robust futexes, walked when it ends
   * (src/linux/robust.ts); 0 when none. Its length is always ROBUST_LIST_HEAD_SIZE. */
  robustList = 0n;
  /** Set by a FUTEX_WAKE that chose this task while it waited; its FUTEX_WAIT then returns 0. */
  futexWoken = false;
  /** Set when the owner of the PI futex this task waits on (FUTEX_LOCK_PI) ended without unlocking it. */
  piOwnerGone = false;

  state: TaskState = 'running';
  /** While off the vCPU: the context it continues from (rax is its call's result once known). */
  saved: SavedContext | null = null;
  /** While waiting: what it waits for, and the system call to run again when that is ready
   * (null: the call is complete and the task only waits, as a vfork parent does). */
  wait: { why: WouldBlock | { ready: () => boolean; what: string; timeout?: undefined }; call: { nr: bigint; args: [bigint, bigint, bigint, bigint, bigint, bigint] } | null } | null = null;

  /** The registers live in the vCPU while the task runs there; saved holds them otherwise. vcpu is
   * the one it runs on, or last ran on: a task may move between the sandbox's vCPUs. */
  constructor(readonly process: Process, readonly tid: number, public vcpu: Vcpu) {}
}
