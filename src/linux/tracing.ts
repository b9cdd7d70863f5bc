// The state of a traced task (Task.trace) and of its stops: what the kernel, the signal code
// and the ptrace requests share. It raises no signal and touches no memory; src/linux/ptrace.ts
// does that. Kept apart so that task.ts and signals.ts see it without reaching ptrace.ts, which
// needs signals.ts.
import type { ExitReason, Process } from './process.js';
import type { PendingInfo, SavedContext, Task } from './task.js';
import { PTRACE_EVENT, PTRACE_O, SIG } from '../abi/linux.js';

/**
 * signal: before a signal's delivery (the tracer may suppress it or pass another); entry and
 * exit: of a system call; event: PTRACE_EVENT_* (and the stops of PTRACE_INTERRUPT, of a seized
 * child's start and of a group stop's end); group: the process stopped by a stop signal.
 */
export type StopKind = 'signal' | 'entry' | 'exit' | 'event' | 'group';

export interface TraceStop {
  readonly kind: StopKind;
  /** The wait status the tracer gets: 0x7f, the signal in bits 8-15, the event in bits 16-23. */
  readonly status: number;
  /** orig_rax: the call's number at a system-call stop (the tracer may change it at entry), -1 elsewhere. */
  origRax: bigint;
  /** A signal stop's siginfo (PTRACE_SETSIGINFO may replace it). */
  info: PendingInfo | null;
  /** What PTRACE_GETEVENTMSG gives once the stop is taken (an event's pid or former tid). */
  readonly message: bigint | null;
  /** wait has reported it (it is not reported twice). */
  reported: boolean;
  /** PTRACE_LISTEN: the tracee stays stopped until SIGCONT, which makes it trap again. */
  listening: boolean;
  /**
   * An exit stop of a call that a signal interrupted and that will run again: rax shows
   * -ERESTARTSYS meanwhile, as on Linux, and gets back this (the call's number) at resume.
   */
  restartRax: bigint | null;
}

/** A wait status for a stop with signal sig and event. */
function wstatus(sig: number, event = 0): number {
  return (event << 16) | (sig << 8) | 0x7f;
}

function makeStop(kind: StopKind, sig: number, event = 0, origRax = -1n, info: PendingInfo | null = null, message: bigint | null = null): TraceStop {
  return { kind, status: wstatus(sig, event), origRax, info, message, reported: false, listening: false, restartRax: null };
}

/** The signal of a stop (WSTOPSIG). */
export function stopSignal(s: TraceStop): number {
  return (s.status >> 8) & 0xff;
}

/** The event of a stop (status >> 16), 0 for none. */
export function stopEvent(s: TraceStop): number {
  return s.status >>> 16;
}

/** A traced task's tracer and where it stands with it (Task.trace). */
export class Tracing {
  /** The stop the task is in, null while it runs. */
  stop: TraceStop | null = null;
  /** Resumed with PTRACE_SYSCALL: the next system-call entry and exit stop. */
  syscalls = false;
  /** Inside a call the tracer saw enter: its exit stop comes when it returns, if syscalls. */
  inCall = false;
  /** PTRACE_GETEVENTMSG. */
  message = 0n;
  /** Stops due before the task runs user code again (an event, then a system-call exit), in order. */
  readonly due: TraceStop[] = [];
  /** A signal the tracer passed when resuming from a signal stop: delivered next, with no stop. */
  inject: { sig: number; info: PendingInfo } | null = null;
  /** PTRACE_INTERRUPT: stop at the next chance (a waiting call ends, to be restarted). */
  interrupt = false;
  /** Resumed with PTRACE_SINGLESTEP: the trap flag is set in its flags (and cleared at the next resume). */
  stepping = false;
  /** The end of its process (or, 'thread', its own exit), held while it is in its PTRACE_EVENT_EXIT stop. */
  exiting: ExitReason | { kind: 'thread'; status: number } | null = null;
  /** Its PTRACE_EVENT_EXIT stop was taken: the exit goes on at the next try. */
  exitStopped = false;

  constructor(readonly tracer: Process, public options: number, readonly seized: boolean) {}

  /** The stop at a system call's entry or exit: SIGTRAP, with 0x80 under PTRACE_O_TRACESYSGOOD. */
  syscallStop(kind: 'entry' | 'exit', nr: bigint): TraceStop {
    return makeStop(kind, SIG.SIGTRAP | (this.options & PTRACE_O.TRACESYSGOOD ? 0x80 : 0), 0, nr);
  }

  /** A signal-delivery stop for sig with its siginfo. */
  signalStop(sig: number, info: PendingInfo): TraceStop {
    return makeStop('signal', sig, 0, -1n, info);
  }

  /** An event stop (PTRACE_EVENT_*): SIGTRAP, or sig for PTRACE_EVENT_STOP. */
  eventStop(event: number, message: bigint | null = null, sig: number = SIG.SIGTRAP): TraceStop {
    return makeStop('event', sig, event, -1n, null, message);
  }

  /** A group stop by sig: PTRACE_EVENT_STOP for a seized tracee. */
  groupStop(sig: number): TraceStop {
    return makeStop('group', sig, this.seized ? PTRACE_EVENT.STOP : 0);
  }

}

const SIGKILL_BIT = 1n << BigInt(SIG.SIGKILL - 1);

/** The next stop due for t before it runs user code, taken off the queue (none once SIGKILL is pending). */
export function takeDue(t: Task): TraceStop | null {
  const tr = t.trace;
  if (!tr || tr.due.length === 0) return null;
  if (t.pending & SIGKILL_BIT) {
    tr.due.length = 0;
    return null;
  }
  return tr.due.shift()!;
}

const ERESTARTSYS = 512n;

/**
 * t's call returned (result in its registers): its exit stop is due if the tracer saw it enter
 * and wants it. restart: the context of a call that a signal interrupted and that runs again.
 */
export function callReturned(t: Task, nr: bigint, restart: SavedContext | null = null): void {
  const tr = t.trace;
  if (!tr?.inCall) return;
  tr.inCall = false;
  if (!tr.syscalls) return;
  const stop = tr.syscallStop('exit', nr);
  if (restart) {
    stop.restartRax = restart.regs.rax;
    restart.regs.rax = -ERESTARTSYS;
  }
  tr.due.push(stop);
}

