// Signals of one task: raising, the default actions, delivery to handlers through a Linux x86-64
// rt_sigframe, and rt_sigreturn (docs/architecture.md, Signals).
//
// A signal is delivered when the task is about to re-enter the guest: after a system call, a
// fault, or a timer tick. The kernel (kernel.ts) hands over the user context it interrupted (the
// general registers, rip, rflags, and for a fault its vector, error code and address); delivery
// writes the frame into user memory and returns the context the handler starts with, which the
// machine loads as an iret would (Machine.enterUser).
//
// Everything read back from the frame by rt_sigreturn is user data: it is copied once, then the
// flags are masked to what user mode may set, rip must be a lower-half address, the selectors
// are the user ones whatever the frame says, and the mask can never block SIGKILL or SIGSTOP.
import type { Registers } from '../kvm/kvm.js';
import { PROT_READ, PROT_WRITE } from './address-space.js';
import { E, Errno, PTRACE_EVENT, SIGNAL_NAMES } from '../abi/linux.js';
import { WouldBlock } from '../fs/open-file.js';
import { GDT_USER_CS, GDT_USER_DS, GUEST_UID } from '../abi/abi.generated.js';
import type { Process } from './process.js';
import type { PendingInfo, Task } from './task.js';
import { MAX_QUEUED_SIGNALS } from './limits.js';
import type { PosixTimer } from './posix-timers.js';
import type { TraceStop } from './tracing.js';

export const NSIG = 64;
export const SIGKILL = 9, SIGSTOP = 19, SIGALRM = 14, SIGSEGV = 11;
/** Signals no mask can block. */
export const UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP);
/** Signals from faults: delivered before the others, as Linux does. */
const SYNCHRONOUS = bit(11) | bit(7) | bit(4) | bit(5) | bit(8);

export const SIGTTIN = 21, SIGTTOU = 22;
export const SA_SIGINFO = 4, SA_ONSTACK = 0x08000000, SA_RESTART = 0x10000000, SA_NODEFER = 0x40000000;
export const SA_RESETHAND = 0x80000000, SA_RESTORER = 0x04000000;
export const SI_USER = 0, SI_KERNEL = 0x80, SI_TKILL = -6, SI_TIMER = -2;
export const SIG_DFL = 0n, SIG_IGN = 1n;

/** What a signal does when its action is SIG_DFL. SIGCONT's continuing happens when it is raised,
 * whatever its action; a stop with no other process alive to continue it is ignored. */
export type DefaultAction = 'term' | 'core' | 'ignore' | 'stop';
const CORE = new Set([3, 4, 5, 6, 7, 8, 11, 24, 25, 31]);
const IGNORE = new Set([17, 18, 23, 28]);
export const SIGCHLD = 17, SIGCONT = 18;
const SIGHUP = 1;
/** SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU. */
const STOPS = bit(19) | bit(20) | bit(21) | bit(22);
export function defaultAction(sig: number): DefaultAction {
  return CORE.has(sig) ? 'core' : IGNORE.has(sig) ? 'ignore' : (STOPS & bit(sig)) !== 0n ? 'stop' : 'term';
}
/** si_code of SIGCHLD, and sa_flags bits that concern it. */
export const CLD_STOPPED = 5, CLD_CONTINUED = 6, SA_NOCLDSTOP = 1;

export function bit(sig: number): bigint {
  return 1n << BigInt(sig - 1);
}

/** struct sigaction as the kernel sees it (x86-64): handler, flags, restorer, mask. */
export interface SigAction { handler: bigint; flags: number; restorer: bigint; mask: bigint }
export function action(p: Process, sig: number): SigAction {
  const b = p.sigactions.get(sig);
  if (!b) return { handler: SIG_DFL, flags: 0, restorer: 0n, mask: 0n };
  return { handler: b.readBigUInt64LE(0), flags: Number(b.readBigUInt64LE(8) & 0xffffffffn), restorer: b.readBigUInt64LE(16), mask: b.readBigUInt64LE(24) };
}

/** Whether sig would be discarded at delivery (ignored by action or by default). */
function ignored(p: Process, sig: number): boolean {
  if (sig === SIGKILL) return false;
  const h = action(p, sig).handler;
  return h === SIG_IGN || (h === SIG_DFL && defaultAction(sig) === 'ignore');
}

/** The first real-time signal (Linux's SIGRTMIN; glibc keeps 32 and 33 for itself). */
export const SIGRTMIN = 32;

/**
 * Raise sig for task t (kill, tgkill, a fault, a timer): make it pending. An ignored signal is
 * dropped at once, unless t blocks it or waits for it in sigwait: as on Linux, it stays pending
 * then (sigpending, sigwait and signalfd see it), and is discarded only if it is still ignored
 * when it is unblocked (hasDeliverable). A real-time signal queues each time it is sent, with its
 * siginfo; past MAX_QUEUED_SIGNALS queued ones, one sent by kill (SI_USER) still becomes pending,
 * as Linux, and any other is dropped: then false (sigqueue's EAGAIN).
 */
export function raise(t: Task, sig: number, info: { code: number; pid?: number; addr?: bigint; status?: number; raw?: Buffer; timer?: PosixTimer }): boolean {
  const p = t.process;
  // SIGCONT continues a stopped process whatever its action; a stop cancels a pending SIGCONT.
  if (sig === SIGCONT) {
    t.pending &= ~STOPS;
    if (p.stopped) {
      p.stopped = 0;
      p.waitEvent = { status: 0xffff, code: CLD_CONTINUED, value: SIGCONT };
      notifyParent(p, CLD_CONTINUED, SIGCONT);
    }
  } else if (STOPS & bit(sig)) {
    t.pending &= ~bit(SIGCONT);
  }
  // A tracer sees even an ignored signal (a signal-delivery stop), as on Linux.
  if (!t.trace && ignored(p, sig) && ((t.sigmask | t.sigwaitSet) & bit(sig)) === 0n) return true;
  const entry: PendingInfo = { code: info.code, pid: info.pid ?? 0, addr: info.addr ?? 0n, status: info.status ?? 0 };
  if (info.raw) entry.raw = info.raw;
  if (info.timer) entry.timer = info.timer;
  const queue = t.pendingInfo.get(sig);
  if (!queue) {
    t.pendingInfo.set(sig, [entry]);
  } else if (sig >= SIGRTMIN) {
    let queued = 0;
    for (const [s, q] of t.pendingInfo) if (s >= SIGRTMIN) queued += q.length;
    if (queued < MAX_QUEUED_SIGNALS) queue.push(entry);
    else if (info.code !== SI_USER) return false;
  }
  t.pending |= bit(sig);
  return true;
}

/** SIGCHLD to p's parent for a stop or a continue, unless the parent asked not to (SA_NOCLDSTOP). */
export function notifyParent(p: Process, code: number, sig: number): void {
  const parent = p.parent;
  const pt = parent?.tasks[0];
  if (!parent || !pt || parent.zombie) return;
  if (action(parent, SIGCHLD).flags & SA_NOCLDSTOP) return;
  raise(pt, SIGCHLD, { code, pid: p.pid, status: sig });
}

/**
 * Fire the process's timers that are due: ITIMER_REAL (SIGALRM pending to t, the timer re-armed
 * or disarmed) and its POSIX timers (src/linux/posix-timers.ts).
 */
/** The signal each interval timer raises: ITIMER_REAL SIGALRM, ITIMER_VIRTUAL SIGVTALRM, ITIMER_PROF SIGPROF. */
const ITIMER_SIGNALS = [SIGALRM, 26, 27];
const SIGXCPU = 24;

export function checkTimers(t: Task, now = performance.now()): void {
  const p = t.process;
  p.itimers.forEach((timer, which) => {
    const at = which === 0 ? now : p.itimerNow(which);
    if (!timer || at < timer.due) return;
    // The next expiry is the first period after now (periods missed meanwhile give one signal,
    // as Linux's hrtimer_forward): an expiry at `at` itself would be due again at the next exit
    // (the handler's rt_sigreturn), a storm of signals that starves the program.
    const { due, interval } = timer;
    p.itimers[which] = interval > 0 ? { due: due + (Math.floor((at - due) / interval) + 1) * interval, interval } : null;
    const sig = ITIMER_SIGNALS[which]!;
    raise(p.signalTarget(sig) ?? t, sig, { code: SI_KERNEL });
  });
  for (const pt of p.timers.values()) {
    if (pt.wakeAt > now) continue;
    const n = pt.expire(now);
    if (n > 0) fireTimer(p, pt, n);
  }
  // RLIMIT_CPU, on the process's CPU time: SIGKILL at the hard limit; at the soft one SIGXCPU,
  // again each CPU second after (Linux raises the soft limit by one second each time).
  const cpuLimit = p.cpuLimitMs();
  if (cpuLimit) {
    const used = p.itimerNow(2);
    if (used >= cpuLimit[1]) {
      killWith(p, SIGKILL, '(CPU time limit exceeded)');
    } else if (used >= cpuLimit[0]) {
      p.nextCpuSecond();
      raise(p.signalTarget(SIGXCPU) ?? t, SIGXCPU, { code: SI_KERNEL });
    }
  }
}

/**
 * A POSIX timer expired n times: its signal (SI_TIMER, its id and value) to its thread or to the
 * process, unless the last one is still queued, when they count as overruns.
 */
function fireTimer(p: Process, pt: PosixTimer, n: number): void {
  const how = pt.notify;
  if (how.kind === 'none') return;
  pt.overrun = Math.min(pt.overrun + n - 1, 0x7fffffff);
  const target = how.kind === 'thread' ? p.tasks.find((x) => x.tid === how.tid && x.state !== 'dead') : p.signalTarget(how.sig);
  if (!target) return;
  raise(target, how.sig, { code: SI_TIMER, pid: pt.id, timer: pt });
  // Queued unless it was ignored, or a standard signal already pending took its place.
  pt.queued = target.pendingInfo.get(how.sig)?.some((e) => e.timer === pt) ?? false;
}

/**
 * timer_delete and exec: a timer's signal still queued goes with it, as Linux before 6.13 has it
 * (later ones leave it pending but never deliver it).
 */
export function dropTimerSignal(p: Process, pt: PosixTimer): void {
  if (pt.notify.kind === 'none') return;
  const sig = pt.notify.sig;
  for (const t of p.tasks) {
    const queue = t.pendingInfo.get(sig);
    if (!queue?.some((e) => e.timer === pt)) continue;
    const rest = queue.filter((e) => e.timer !== pt);
    if (rest.length) {
      t.pendingInfo.set(sig, rest);
    } else {
      t.pendingInfo.delete(sig);
      t.pending &= ~bit(sig);
    }
  }
  pt.queued = false;
}

/** Discard sig pending on t (its new action ignores it): a POSIX timer's may fire again. */
export function discardPending(t: Task, sig: number): void {
  for (const e of t.pendingInfo.get(sig) ?? []) e.timer?.taken();
  t.pending &= ~bit(sig);
  t.pendingInfo.delete(sig);
}

/**
 * ppoll, pselect6, epoll_pwait and epoll_pwait2 with a signal mask (Linux's set_user_sigmask):
 * the call waits with that mask in place of the task's, so that a program can unblock a signal
 * (SIGCHLD, say) only while it waits. A signal the mask lets through ends the call with EINTR, at
 * once or while parked. The mask from before (t.savedMask) comes back when the call ends, or,
 * when a handler runs first, when the handler returns: its frame saves it (buildFrame). A parked
 * call that runs again keeps the mask first saved.
 */
export function withSigmask(t: Task, maskAddr: bigint, setsize: bigint, call: () => number): number {
  if (maskAddr === 0n) return call();
  if (setsize !== 8n) throw new Errno(E.EINVAL);
  const mask = t.process.userBuffer(maskAddr, 8, PROT_READ).readBigUInt64LE(0);
  if (t.savedMask === null) t.savedMask = t.sigmask;
  t.sigmask = mask & ~UNBLOCKABLE;
  try {
    if (hasDeliverable(t)) throw new Errno(E.EINTR);
    const r = call();
    restoreSavedMask(t);
    return r;
  } catch (e) {
    // Parked, or ended by a signal to deliver: the mask stays until then.
    if (!(e instanceof WouldBlock) && !hasDeliverable(t)) restoreSavedMask(t);
    throw e;
  }
}

/** A call that waited with a mask of its own ended with no handler to run: the mask from before comes back. */
export function restoreSavedMask(t: Task): void {
  if (t.savedMask === null) return;
  t.sigmask = t.savedMask;
  t.savedMask = null;
}

/**
 * Whether untraced t is held by its process's stop: every thread of a stopped process stops,
 * wherever it was (a thread in a call goes on with it after SIGCONT), until SIGCONT or SIGKILL.
 */
export function stoppedWithProcess(t: Task): boolean {
  return t.process.stopped !== 0 && !t.trace && (t.pending & bit(SIGKILL)) === 0n;
}

/** The wait of t, stopped with its process by a stop signal: until SIGCONT continues it, or SIGKILL. */
export function waitForContinue(t: Task): void {
  const p = t.process;
  t.state = 'waiting';
  t.wait = { why: { what: 'SIGCONT', ready: () => p.stopped === 0 || (t.pending & bit(SIGKILL)) !== 0n }, call: null };
}

/** Whether a signal could be delivered now (cheap: called before every re-entry). */
export function hasDeliverable(t: Task): boolean {
  if (t.process.hasTimers) checkTimers(t);
  const tr = t.trace;
  if (tr && (tr.inject || tr.interrupt)) return true;
  const ready = t.pending & ~t.sigmask;
  return ready !== 0n && (tr !== null || dropIgnored(t, ready) !== 0n);
}

/**
 * A signal that stayed pending while blocked and is ignored now that it is not: discarded, as
 * Linux does on the way out of the call that unblocked it, so that it never ends a wait with
 * EINTR. Returns what is left of ready.
 */
function dropIgnored(t: Task, ready: bigint): bigint {
  let left = ready;
  for (let sig = 1; sig <= NSIG; sig++) {
    if (!(ready & bit(sig)) || !ignored(t.process, sig)) continue;
    discardPending(t, sig);
    left &= ~bit(sig);
  }
  return left;
}

/** The user context the task was interrupted in; trapno/err/cr2 for a fault. */
export interface UserContext { regs: Registers; trapno: number; err: number; cr2: bigint }

/** How delivery ended: a context to enter (a handler), nothing to do, the end of the process, or
 * its stop (the caller takes the task off the vCPU until SIGCONT or SIGKILL). */
export type Delivery = { kind: 'handler'; regs: Registers } | { kind: 'none' } | { kind: 'exit' } | { kind: 'stop'; sig: number } |
  { kind: 'trace'; stop: TraceStop };

/** The vCPU's FPU state as delivery needs it: read the current, install the handler's. */
export interface FpuAccess {
  /** The XSAVE image frames hold (its size, the XCR0 features), or null: the FXSAVE area only. */
  readonly xstate: { readonly size: number; readonly features: bigint } | null;
  /** The current state: the XSAVE image of xstate.size bytes, or the 512-byte FXSAVE area. */
  get(): Buffer;
  /**
   * Load a frame's state: an XSAVE image with the components of features (the others initial),
   * an FXSAVE area (features undefined: x87 and SSE, the others initial), or (null) the initial
   * state. The image is the guest's: the implementation makes it safe to load.
   */
  set(image: Buffer | null, features?: bigint): void;
}

/**
 * Whether a stop signal with its default action stops p. Nothing could continue the only
 * process (its threads stop with it): the stop is ignored, as before processes. Job-control
 * stops of an orphaned process group are discarded (POSIX; Linux's is_current_pgrp_orphaned):
 * no one in its session could continue it.
 */
function stopTakesEffect(p: Process, sig: number): boolean {
  return p.kernel.othersCouldContinue(p) && (sig === SIGSTOP || !orphanedGroup(p));
}

/**
 * Whether the signal that deliver() would act on next stops untraced t's process by its default
 * action, so that no handler runs: a call that it interrupts then goes on after SIGCONT, as
 * Linux restarts it (restart_syscall, ERESTARTNOHAND).
 */
export function stopComesNext(t: Task): boolean {
  if (t.trace) return false;
  let ready = t.pending & ~t.sigmask;
  while (ready !== 0n) {
    const pick = (ready & SYNCHRONOUS) !== 0n ? ready & SYNCHRONOUS : ready;
    let sig = 1;
    while (!(pick & bit(sig))) sig++;
    ready &= ~bit(sig);
    if (sig === SIGKILL) return false;
    const act = action(t.process, sig);
    if (act.handler === SIG_IGN) continue;
    if (act.handler !== SIG_DFL) return false;
    const what = defaultAction(sig);
    if (what === 'ignore' || (what === 'stop' && !stopTakesEffect(t.process, sig))) continue;
    return what === 'stop';
  }
  return false;
}

/** The lowest deliverable signal, synchronous ones first; 0 when there is none. */
function next(t: Task): number {
  const ready = t.pending & ~t.sigmask;
  if (ready === 0n) return 0;
  const pick = (ready & SYNCHRONOUS) !== 0n ? ready & SYNCHRONOUS : ready;
  for (let s = 1; s <= NSIG; s++) if (pick & bit(s)) return s;
  return 0;
}

/**
 * Whether p's process group is orphaned: no live member has its parent in another group of the
 * same session. The first process's parent is outside the sandbox, where a shell that started
 * it would be: in another group of its session, so its group is not orphaned while it is in it.
 */
export function orphanedGroup(p: Process): boolean {
  return orphanedPgrp(p.kernel.all(), p.pgid);
}

function orphanedPgrp(all: Iterable<Process>, pgid: number): boolean {
  for (const q of all) {
    if (q.zombie || q.pgid !== pgid) continue;
    const parent = q.parent;
    if (!parent || (!parent.zombie && parent.pgid !== q.pgid && parent.sid === q.sid)) return false;
  }
  return true;
}

/**
 * The groups p links to the rest of its session (p's own when its parent is in another group of
 * the session; a child's in another group of the session): those p's end may leave orphaned.
 * Taken before p ends; see hangUpOrphans.
 */
export function linkedGroups(p: Process): Set<number> {
  const groups = new Set<number>();
  const parent = p.parent;
  if (parent && !parent.zombie && parent.pgid !== p.pgid && parent.sid === p.sid) groups.add(p.pgid);
  for (const c of p.children) if (!c.zombie && c.pgid !== p.pgid && c.sid === p.sid) groups.add(c.pgid);
  return groups;
}

/**
 * After a process ended (a zombie, its children given to the first process): each of groups
 * (its linkedGroups) that is now orphaned and has a stopped member gets SIGHUP, then SIGCONT, in
 * every member (POSIX; Linux's kill_orphaned_pgrp): no one left in its session could continue it.
 */
export function hangUpOrphans(all: Iterable<Process>, groups: ReadonlySet<number>): void {
  const procs = [...all];
  for (const g of groups) {
    const members = procs.filter((q) => !q.zombie && q.pgid === g);
    if (!members.some((q) => q.stopped) || !orphanedPgrp(procs, g)) continue;
    for (const q of members) {
      const hup = q.signalTarget(SIGHUP);
      if (hup) raise(hup, SIGHUP, { code: SI_KERNEL });
      const cont = q.signalTarget(SIGCONT);
      if (cont) raise(cont, SIGCONT, { code: SI_KERNEL });
    }
  }
}

/** End the process with sig, with message detail. */
export function killWith(p: Process, sig: number, detail: string): void {
  if (p.exit) return;
  const name = SIGNAL_NAMES[sig] ?? `signal ${sig}`;
  const sep = detail === '' ? '' : detail.startsWith('(') ? ' ' : ': ';
  p.exit = { kind: 'signaled', signal: sig, message: `kvmbox: program killed by ${name}${sep}${detail}` };
}

/**
 * Deliver pending, unblocked signals to t, interrupted in ctx: discard ignored ones, apply
 * default actions, and for the first with a handler build its frame. One handler per re-entry;
 * the others are delivered at the next one (the handler's first system call, or its return).
 */
export function deliver(t: Task, ctx: UserContext, fpu: FpuAccess): Delivery {
  const p = t.process;
  const tr = t.trace;
  if (tr?.interrupt) {
    tr.interrupt = false;
    return { kind: 'trace', stop: tr.eventStop(PTRACE_EVENT.STOP) };
  }
  for (;;) {
    let sig: number, info: PendingInfo;
    if (tr?.inject) {
      // The signal the tracer passed at its signal stop: delivered with no second stop.
      ({ sig, info } = tr.inject);
      tr.inject = null;
    } else {
      sig = next(t);
      if (sig === 0) {
        // No handler runs (the signals were ignored): a call's own mask ends here (Linux's
        // restore_saved_sigmask).
        restoreSavedMask(t);
        return { kind: 'none' };
      }
      info = dequeue(t, sig);
      // A traced task stops before each signal but SIGKILL; its tracer decides what is delivered.
      if (tr && sig !== SIGKILL) return { kind: 'trace', stop: tr.signalStop(sig, info) };
    }
    const act = action(p, sig);
    if (sig !== SIGKILL && act.handler === SIG_IGN) continue;
    if (sig === SIGKILL || act.handler === SIG_DFL) {
      const what = sig === SIGKILL ? 'term' : defaultAction(sig);
      if (what === 'ignore') continue;
      if (what === 'stop') {
        if (!stopTakesEffect(p, sig)) continue;
        p.stopped = sig;
        p.waitEvent = { status: (sig << 8) | 0x7f, code: CLD_STOPPED, value: sig };
        notifyParent(p, CLD_STOPPED, sig);
        restoreSavedMask(t);
        return { kind: 'stop', sig };
      }
      killWith(p, sig, info.code === SI_USER || info.code === SI_TKILL ? '(it sent the signal to itself)' : info.code === SI_KERNEL && sig === SIGALRM ? '(its timer expired)' : '');
      return { kind: 'exit' };
    }
    const regs = buildFrame(t, sig, info, act, ctx, fpu);
    if (!regs) {
      // The frame does not fit where it must go: as Linux, the process dies of SIGSEGV.
      killWith(p, SIGSEGV, `no room for the ${SIGNAL_NAMES[sig] ?? `signal ${sig}`} frame`);
      return { kind: 'exit' };
    }
    return { kind: 'handler', regs };
  }
}

// struct rt_sigframe (x86-64): pretcode, then ucontext, then siginfo.
const UC = 8;
const UC_SIZE = 304; // uc_flags, uc_link, uc_stack (24), uc_mcontext (256), uc_sigmask (8)
const INFO = UC + UC_SIZE;
const FRAME_SIZE = INFO + 128;
const MC = 40; // uc_mcontext in ucontext
const SIGMASK = MC + 256;
const FXSAVE_SIZE = 512;
/** struct _fpx_sw_bytes, in the FXSAVE area's software bytes: how an XSAVE frame says so (Linux's). */
const SW_BYTES = 464, SW_MAGIC1 = 0, SW_EXTENDED_SIZE = 4, SW_XFEATURES = 8, SW_XSTATE_SIZE = 16, SW_END = 48;
const FP_XSTATE_MAGIC1 = 0x46505853, FP_XSTATE_MAGIC2 = 0x46505845, FP_XSTATE_MAGIC2_SIZE = 4;
const UC_FP_XSTATE = 1;
const XSAVE_HEADER = 512, XSAVE_HEADER_SIZE = 64;
/** struct sigcontext's general registers in order (uc_mcontext). */
const SC_REGS = ['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rax', 'rcx', 'rsp', 'rip'] as const;
const SC_EFLAGS = 17 * 8, SC_SEGS = 18 * 8, SC_ERR = 19 * 8, SC_TRAPNO = 20 * 8, SC_OLDMASK = 21 * 8, SC_CR2 = 22 * 8, SC_FPSTATE = 23 * 8;
const UC_SIGCONTEXT_SS = 2, UC_STRICT_RESTORE_SS = 4;
const SS_ONSTACK = 1, SS_DISABLE = 2;
const RED_ZONE = 128n;
const USER_END = 0x800000000000n;
/** Flags user mode may change through rt_sigreturn (Linux's FIX_EFLAGS): CF PF AF ZF SF TF DF OF AC RF. */
const FIX_EFLAGS = 0x1n | 0x4n | 0x10n | 0x40n | 0x80n | 0x100n | 0x400n | 0x800n | 0x40000n | 0x10000n;
const RFLAGS_IF = 0x200n, RFLAGS_RESERVED1 = 0x2n, RFLAGS_TF = 0x100n, RFLAGS_DF = 0x400n, RFLAGS_RF = 0x10000n, RFLAGS_AC = 0x40000n;

/**
 * The most stack a signal frame takes (AT_MINSIGSTKSZ): the FPU state (the XSAVE image and its
 * magic, or the FXSAVE area) aligned to 64, the rt_sigframe aligned to 16, and the return slot.
 */
export function signalFrameBytes(xstate: FpuAccess['xstate']): number {
  const fp = xstate ? xstate.size + FP_XSTATE_MAGIC2_SIZE : FXSAVE_SIZE;
  const bytes = fp + 63 + FRAME_SIZE + 15 + 8;
  return Math.ceil(bytes / 16) * 16;
}

/** Whether sp is on t's alternate stack. */
function onAltStack(t: Task, sp: bigint): boolean {
  const a = t.altStack;
  return !a.disabled && sp > a.sp && sp - a.sp <= a.size;
}

/** sigaltstack's view of the current state for stack_t.ss_flags. */
export function altStackFlags(t: Task, sp: bigint): number {
  return t.altStack.disabled ? SS_DISABLE : onAltStack(t, sp) ? SS_ONSTACK : 0;
}

/** A siginfo_t (128 bytes): signo, errno, code, then the union (si_pid/si_uid for kill, si_addr for a fault). */
export function siginfo(sig: number, info: PendingInfo): Buffer {
  if (info.raw) {
    const b = Buffer.from(info.raw);
    b.writeInt32LE(sig, 0);
    return b;
  }
  const b = Buffer.alloc(128);
  if (info.timer) {
    b.writeInt32LE(sig, 0);
    b.writeInt32LE(SI_TIMER, 8);
    b.writeInt32LE(info.timer.id, 16);
    b.writeInt32LE(info.status, 20);
    b.writeBigUInt64LE(info.timer.value, 24);
    return b;
  }
  b.writeInt32LE(sig, 0);
  b.writeInt32LE(info.code, 8);
  if (info.code <= 0 || sig === SIGCHLD) {
    b.writeInt32LE(info.pid, 16);
    // si_uid: the sender's (the guest's one user) for kill, tgkill, sigqueue and a child's end.
    b.writeInt32LE(GUEST_UID, 20);
    if (sig === SIGCHLD) b.writeInt32LE(info.status, 24);
  } else {
    b.writeBigUInt64LE(info.addr, 16);
  }
  return b;
}

/** Take the lowest pending signal of set from t (rt_sigtimedwait): its number and siginfo, or null. */
export function takePending(t: Task, set: bigint): { sig: number; info: Buffer } | null {
  const ready = t.pending & set;
  if (ready === 0n) return null;
  let sig = 1;
  while (!(ready & bit(sig))) sig++;
  return { sig, info: siginfo(sig, dequeue(t, sig)) };
}

/** Take pending signal sig off t (the oldest of a real-time signal's queue): its siginfo fields (a kernel's, when none were kept). */
function dequeue(t: Task, sig: number): PendingInfo {
  const queue = t.pendingInfo.get(sig);
  const info = queue?.shift() ?? { code: SI_KERNEL, pid: 0, addr: 0n, status: 0 };
  if (info.timer) info.status = info.timer.taken();
  if (!queue || queue.length === 0) {
    t.pending &= ~bit(sig);
    t.pendingInfo.delete(sig);
  }
  return info;
}

/** Write the frame for sig and return the handler's registers, or null when it cannot be written. */
function buildFrame(t: Task, sig: number, info: PendingInfo, act: SigAction, ctx: UserContext, fpu: FpuAccess): Registers | null {
  const p = t.process;
  const r = ctx.regs;
  let sp = r.rsp - RED_ZONE;
  if (act.flags & SA_ONSTACK && !t.altStack.disabled && !onAltStack(t, r.rsp)) sp = t.altStack.sp + t.altStack.size;
  // The FPU state: Linux's XSAVE frame (the image, then FP_XSTATE_MAGIC2) where the guest has
  // XSAVE states, else the FXSAVE area; 64-byte aligned, as XRSTOR needs.
  const xs = fpu.xstate;
  const fpSize = xs ? xs.size + FP_XSTATE_MAGIC2_SIZE : FXSAVE_SIZE;
  const fpstate = (sp - BigInt(fpSize)) & ~63n;
  const frame = ((fpstate - BigInt(FRAME_SIZE)) & ~15n) - 8n;
  if (frame <= 0n || sp > USER_END) return null;
  const oldMask = t.savedMask ?? t.sigmask;
  const b = Buffer.alloc(FRAME_SIZE);
  b.writeBigUInt64LE(act.restorer, 0);
  // ucontext
  b.writeBigUInt64LE(BigInt(UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | (xs ? UC_FP_XSTATE : 0)), UC);
  b.writeBigUInt64LE(t.altStack.sp, UC + 16);
  b.writeInt32LE(altStackFlags(t, r.rsp), UC + 24);
  b.writeBigUInt64LE(t.altStack.size, UC + 32);
  const mc = UC + MC;
  SC_REGS.forEach((name, i) => b.writeBigUInt64LE(BigInt.asUintN(64, r[name]), mc + i * 8));
  b.writeBigUInt64LE(BigInt.asUintN(64, r.rflags), mc + SC_EFLAGS);
  b.writeUInt16LE(GDT_USER_CS, mc + SC_SEGS);
  b.writeUInt16LE(GDT_USER_DS, mc + SC_SEGS + 6);
  b.writeBigUInt64LE(BigInt(ctx.err), mc + SC_ERR);
  b.writeBigUInt64LE(BigInt(ctx.trapno), mc + SC_TRAPNO);
  b.writeBigUInt64LE(oldMask, mc + SC_OLDMASK);
  b.writeBigUInt64LE(ctx.cr2, mc + SC_CR2);
  b.writeBigUInt64LE(fpstate, mc + SC_FPSTATE);
  b.writeBigUInt64LE(oldMask, UC + SIGMASK);
  siginfo(sig, info).copy(b, INFO);
  const image = Buffer.alloc(fpSize);
  fpu.get().copy(image, 0, 0, xs ? xs.size : FXSAVE_SIZE);
  if (xs) {
    image.fill(0, SW_BYTES, SW_BYTES + SW_END);
    image.writeUInt32LE(FP_XSTATE_MAGIC1, SW_BYTES + SW_MAGIC1);
    image.writeUInt32LE(xs.size + FP_XSTATE_MAGIC2_SIZE, SW_BYTES + SW_EXTENDED_SIZE);
    image.writeBigUInt64LE(xs.features, SW_BYTES + SW_XFEATURES);
    image.writeUInt32LE(xs.size, SW_BYTES + SW_XSTATE_SIZE);
    image.writeUInt32LE(FP_XSTATE_MAGIC2, xs.size);
    // The header claims only the guest's states (KVM's area may also hold the host's PKRU), as
    // the guest's own XSAVE would.
    const bv = image.readBigUInt64LE(XSAVE_HEADER) & xs.features;
    image.fill(0, XSAVE_HEADER, XSAVE_HEADER + XSAVE_HEADER_SIZE);
    image.writeBigUInt64LE(bv, XSAVE_HEADER);
  }
  try {
    p.userBuffer(fpstate, fpSize, PROT_WRITE).set(image);
    p.userBuffer(frame, FRAME_SIZE, PROT_WRITE).set(b);
  } catch (e) {
    if (e instanceof Errno) return null;
    throw e;
  }
  t.savedMask = null;
  let mask = oldMask | act.mask;
  if (!(act.flags & SA_NODEFER)) mask |= bit(sig);
  t.sigmask = mask & ~UNBLOCKABLE;
  if (act.flags & SA_RESETHAND) p.sigactions.delete(sig);
  // The handler starts with the initial FPU state, as on Linux.
  fpu.set(null);
  return {
    ...r,
    rip: act.handler, rsp: frame, rdi: BigInt(sig), rsi: frame + BigInt(INFO), rdx: frame + BigInt(UC), rax: 0n,
    rflags: (r.rflags & ~(RFLAGS_TF | RFLAGS_DF | RFLAGS_RF | RFLAGS_AC)) | RFLAGS_IF | RFLAGS_RESERVED1,
  };
}

/**
 * rt_sigreturn: the registers, FPU state and mask saved in the frame at rsp-8. Null when the
 * frame cannot be read or holds a context no return could enter (the process then dies of
 * SIGSEGV, as on Linux).
 */
export function sigreturn(t: Task, rsp: bigint, fpu: FpuAccess): Registers | null {
  const p = t.process;
  const frame = rsp - 8n;
  let uc: Buffer;
  let fx: Buffer | null = null;
  let features: bigint | undefined;
  try {
    uc = Buffer.from(p.userBuffer(frame + BigInt(UC), UC_SIZE, PROT_READ));
    const fpstate = uc.readBigUInt64LE(MC + SC_FPSTATE);
    if (fpstate !== 0n) {
      fx = Buffer.from(p.userBuffer(fpstate, FXSAVE_SIZE, PROT_READ));
      // An XSAVE frame as buildFrame writes it (the software bytes and both magics agree) gives
      // back every state it holds; anything else only x87 and SSE, as Linux's fx_only restore.
      const xs = fpu.xstate;
      if (xs && fx.readUInt32LE(SW_BYTES + SW_MAGIC1) === FP_XSTATE_MAGIC1 && fx.readUInt32LE(SW_BYTES + SW_XSTATE_SIZE) === xs.size &&
          fx.readUInt32LE(SW_BYTES + SW_EXTENDED_SIZE) === xs.size + FP_XSTATE_MAGIC2_SIZE) {
        const whole = Buffer.from(p.userBuffer(fpstate, xs.size + FP_XSTATE_MAGIC2_SIZE, PROT_READ));
        if (whole.readUInt32LE(xs.size) === FP_XSTATE_MAGIC2) {
          fx = whole.subarray(0, xs.size);
          features = fx.readBigUInt64LE(SW_BYTES + SW_XFEATURES);
          // What makes XRSTOR fault (Linux's restore then fails: SIGSEGV): a state XCR0 does not
          // enable, or bytes 8-23 of the header (XCOMP_BV and the next reserved bytes) not zero.
          if ((fx.readBigUInt64LE(XSAVE_HEADER) & ~xs.features) !== 0n || fx.readBigUInt64LE(XSAVE_HEADER + 8) !== 0n ||
              fx.readBigUInt64LE(XSAVE_HEADER + 16) !== 0n) return null;
        }
      }
    }
  } catch (e) {
    if (e instanceof Errno) return null;
    throw e;
  }
  const regs = {} as Registers;
  SC_REGS.forEach((name, i) => { regs[name] = uc.readBigUInt64LE(MC + i * 8); });
  if (regs.rip >= USER_END) return null;
  regs.rflags = (uc.readBigUInt64LE(MC + SC_EFLAGS) & FIX_EFLAGS) | RFLAGS_IF | RFLAGS_RESERVED1;
  t.sigmask = uc.readBigUInt64LE(SIGMASK) & ~UNBLOCKABLE;
  fpu.set(fx, features);
  return regs;
}
