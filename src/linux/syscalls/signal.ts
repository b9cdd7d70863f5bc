// Signal system calls: the sources (kill, tkill, tgkill to the process itself or to others of
// the sandbox; alarm and setitimer's ITIMER_REAL), the waits a signal ends (pause,
// rt_sigsuspend), rt_sigpending and sigaltstack. Delivery itself, and rt_sigreturn, happen on
// the way back into the guest (src/linux/signals.ts, src/linux/kernel.ts).
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno } from '../../abi/linux.js';
import { sleepBounded } from '../host-wait.js';
import { WouldBlock } from '../../fs/open-file.js';
import {
  NSIG, SIGKILL, SI_TKILL, SI_USER, UNBLOCKABLE, altStackFlags, bit, checkTimers, hasDeliverable, killWith, raise,
  restoreSavedMask, takePending,
} from '../signals.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { int, size, type SyscallGroup } from './args.js';
import { timeoutFromTimespec } from './io.js';

const ITIMER_REAL = 0, ITIMER_VIRTUAL = 1, ITIMER_PROF = 2;
const SS_ONSTACK = 1, SS_DISABLE = 2, SS_AUTODISARM = 1 << 31;
const MINSIGSTKSZ = 2048n;
const US = 1_000_000;
/** How often a wait for a signal looks at the timers (ms). */
const SIGNAL_POLL_MS = 5;

/** struct siginfo, as the kernel copies it. */
export const SIGINFO_SIZE = 128;

/** Send sig to the calling task from itself (kill, tkill, tgkill). */
function sendSelf(t: Task, sig: number, code: number): number {
  if (sig < 0 || sig > NSIG) throw new Errno(E.EINVAL);
  if (sig === 0) return 0;
  if (sig === SIGKILL) {
    killWith(t.process, SIGKILL, '(it sent the signal to itself)');
    return 0;
  }
  raise(t, sig, { code, pid: t.process.pid });
  return 0;
}

/**
 * rt_sigqueueinfo (tid null) and rt_tgsigqueueinfo: send sig with the caller's own siginfo (as
 * sigqueue does, with a value), to process tgid or its thread tid. The siginfo is copied once;
 * only its signal number is set here. As on Linux, a process may not make its signal look like
 * the kernel's or kill's (si_code >= 0, or SI_TKILL) to another process: EPERM. EAGAIN when the
 * target's queue is full (MAX_QUEUED_SIGNALS).
 */
function sendQueued(t: Task, tgid: number, tid: number | null, sig: number, infoAddr: bigint): number {
  if (sig < 0 || sig > NSIG) throw new Errno(E.EINVAL);
  return sendQueuedInfo(t, tgid, tid, sig, Buffer.from(t.process.userBuffer(infoAddr, SIGINFO_SIZE, PROT_READ)));
}

/** sendQueued with the siginfo already copied (also pidfd_send_signal's). */
export function sendQueuedInfo(t: Task, tgid: number, tid: number | null, sig: number, raw: Buffer): number {
  const p = t.process;
  const code = raw.readInt32LE(8);
  if ((code >= 0 || code === SI_TKILL) && tgid !== p.pid) throw new Errno(E.EPERM);
  if (tgid <= 0 || (tid !== null && tid <= 0)) throw new Errno(tid === null ? E.ESRCH : E.EINVAL);
  const q = p.kernel.find(tgid);
  if (!q) throw new Errno(E.ESRCH);
  const target = tid === null ? (q.zombie ? null : q.signalTarget(sig)) : q.tasks.find((x) => x.tid === tid && x.state !== 'dead');
  if (tid !== null && !target) throw new Errno(E.ESRCH);
  if (sig === 0 || !target) return 0;
  if (sig === SIGKILL) {
    if (q === p) killWith(p, SIGKILL, '(it sent the signal to itself)');
    else raise(target, sig, { code, pid: p.pid });
    return 0;
  }
  if (!raise(target, sig, { code, pid: raw.readInt32LE(16), raw })) throw new Errno(E.EAGAIN);
  return 0;
}

/** kill(pid, sig) (also pidfd_send_signal's, without a siginfo). */
export function killProcess(t: Task, pid: number, sig: number): number {
  // To its own process: the caller unless it blocks the signal, then a thread that does not, or
  // one waiting for it in sigwait (Linux's process-wide pending set).
  if (pid === t.process.pid) {
    const blocked = sig > 0 && sig <= NSIG && (t.sigmask & bit(sig)) !== 0n;
    return sendSelf(blocked ? t.process.signalTarget(sig) ?? t : t, sig, SI_USER);
  }
  t.process.kernel.kill(t, pid, sig);
  return 0;
}

/** tgkill/tkill: send sig to thread tid (of thread group tgid when given): the caller, or another process's only thread. */
function sendToThread(t: Task, tgid: number | null, tid: number, sig: number): number {
  if (tid <= 0 || (tgid !== null && tgid <= 0)) throw new Errno(E.EINVAL);
  if (sig < 0 || sig > NSIG) throw new Errno(E.EINVAL);
  if (tid === t.tid && (tgid === null || tgid === t.process.pid)) return sendSelf(t, sig, SI_TKILL);
  const target = t.process.kernel.findTask(tid);
  if (!target || (tgid !== null && target.process.pid !== tgid)) throw new Errno(E.ESRCH);
  if (sig !== 0) raise(target, sig, { code: SI_TKILL, pid: t.process.pid });
  return 0;
}

/**
 * Wait, in the kernel, for a signal: the task is parked until one can be delivered, which ends
 * the call with EINTR (pause and sigsuspend are never restarted).
 */
function parkForSignal(t: Task): never {
  throw new WouldBlock('it waits for a signal', () => false);
}

/**
 * rt_sigtimedwait(set, info, timeout, sigsetsize) (sigwait, sigwaitinfo, sigtimedwait): take a
 * pending signal of set (the program blocks them), waiting for one until the timeout (EAGAIN);
 * another signal that can be delivered ends the wait with EINTR. Parked in the kernel while
 * another task can run (the sender is usually a thread or another process), else on the host.
 */
function sigtimedwait(t: Task, a: bigint[]): number {
  if (size(a[3]!) !== 8) throw new Errno(E.EINVAL);
  const p = t.process;
  const set = p.userBuffer(a[0]!, 8, PROT_READ).readBigUInt64LE(0) & ~UNBLOCKABLE;
  const timeoutMs = timeoutFromTimespec(p, a[2]!, false);
  const infoOut = a[1] === 0n ? null : p.userBuffer(a[1]!, 128, PROT_WRITE);
  const take = (): number => {
    const got = takePending(t, set);
    if (!got) return 0;
    t.sigwaitSet = 0n;
    infoOut?.set(got.info);
    return got.sig;
  };
  if (p.hasTimers) checkTimers(t);
  const now = take();
  if (now) return now;
  if (timeoutMs === 0) throw new Errno(E.EAGAIN);
  if (hasDeliverable(t)) throw new Errno(E.EINTR);
  const deadline = timeoutMs === null ? Infinity : performance.now() + timeoutMs;
  if (p.kernel.othersCanRun(p)) {
    t.sigwaitSet = set;
    throw new WouldBlock('it waits for a signal of a set', () => (t.pending & set) !== 0n,
      deadline === Infinity ? undefined : { at: deadline, result: () => -E.EAGAIN }, () => { t.sigwaitSet = 0n; });
  }
  for (;;) {
    const due = p.timerDue;
    const left = deadline - performance.now();
    if (left <= 0) throw new Errno(E.EAGAIN);
    if (due === Infinity && deadline === Infinity && p.timeLeftMs() === null) {
      // Nothing can ever raise a signal: the wait would never end.
      p.exit = { kind: 'timeout', message: 'kvmbox: the program would wait forever: sigwait with no timer armed and no other task; program stopped' };
      throw new Errno(E.EINTR);
    }
    const ms = Math.max(0, Math.min(SIGNAL_POLL_MS, left, due - performance.now()));
    if (!sleepBounded(p, ms)) throw new Errno(E.EINTR);
    if (p.hasTimers) checkTimers(t);
    const sig = take();
    if (sig) return sig;
    if (hasDeliverable(t)) throw new Errno(E.EINTR);
  }
}

/**
 * Wait on the host until a signal can be delivered (then EINTR: the handler runs on the way
 * back, and the call is not restarted, as pause and sigsuspend never are), or the run ends.
 */
export function waitForSignal(t: Task): never {
  if (t.process.kernel.othersCanRun(t.process)) parkForSignal(t);
  for (;;) {
    if (hasDeliverable(t)) throw new Errno(E.EINTR);
    const ms = Math.max(0, Math.min(SIGNAL_POLL_MS, t.process.timerDue - performance.now()));
    if (!sleepBounded(t.process, ms)) throw new Errno(E.EINTR);
    if (t.process.hasTimers) checkTimers(t);
    if (t.process.timerDue === Infinity && t.process.timeLeftMs() === null && !hasDeliverable(t)) {
      // Nothing can ever raise a signal: the wait would never end (as a time limit would stop it).
      t.process.exit = { kind: 'timeout', message: 'kvmbox: the program would wait forever: pause with no timer armed; program stopped' };
      throw new Errno(E.EINTR);
    }
  }
}

/** A struct itimerval's value and interval in ms (struct timeval: seconds, microseconds). */
function readItimerval(p: Process, addr: bigint): { interval: number; value: number } {
  const b = Buffer.from(p.userBuffer(addr, 32, PROT_READ));
  const tv = (off: number): number => {
    const s = b.readBigInt64LE(off), u = b.readBigInt64LE(off + 8);
    if (s < 0n || u < 0n || u >= BigInt(US)) throw new Errno(E.EINVAL);
    return Number(s) * 1000 + Number(u) / 1000;
  };
  return { interval: tv(0), value: tv(16) };
}

function writeItimerval(p: Process, addr: bigint, which: number): void {
  const t = p.itimers[which];
  const out = p.userBuffer(addr, 32, PROT_WRITE);
  out.fill(0);
  if (!t) return;
  const put = (ms: number, off: number): void => {
    const us = Math.max(0, Math.round(ms * 1000));
    out.writeBigInt64LE(BigInt(Math.floor(us / US)), off);
    out.writeBigInt64LE(BigInt(us % US), off + 8);
  };
  put(t.interval, 0);
  // A timer due now still reads as armed, with a tiny value, as on Linux.
  put(Math.max(0.001, t.due - p.itimerNow(which)), 16);
}

export const signalSyscalls: SyscallGroup = {
  tgkill: (t, a) => sendToThread(t, int(a[0]), int(a[1]), int(a[2])),
  rt_sigqueueinfo: (t, a) => sendQueued(t, int(a[0]), null, int(a[1]), a[2]),
  rt_tgsigqueueinfo: (t, a) => sendQueued(t, int(a[0]), int(a[1]), int(a[2]), a[3]),
  tkill: (t, a) => sendToThread(t, null, int(a[0]), int(a[1])),
  kill: (t, a) => killProcess(t, int(a[0]), int(a[1])),
  rt_sigpending: (t, a) => {
    if (size(a[1]) > 8) throw new Errno(E.EINVAL);
    const out = t.process.userBuffer(a[0], 8, PROT_WRITE);
    out.writeBigUInt64LE(t.pending & t.sigmask);
    return 0;
  },
  pause: (t) => waitForSignal(t),
  rt_sigtimedwait: (t, a) => sigtimedwait(t, a),
  rt_sigsuspend: (t, a) => {
    if (size(a[1]) !== 8) throw new Errno(E.EINVAL);
    const mask = t.process.userBuffer(a[0], 8, PROT_READ).readBigUInt64LE(0);
    // The handler's frame saves the mask from before the call (t.savedMask), restored on its return.
    if (t.savedMask === null) t.savedMask = t.sigmask;
    t.sigmask = mask & ~UNBLOCKABLE;
    try {
      return waitForSignal(t);
    } catch (e) {
      // Parked (WouldBlock): the mask stays until a signal ends the wait.
      if (!(e instanceof WouldBlock) && !hasDeliverable(t)) restoreSavedMask(t);
      throw e;
    }
  },
  alarm: (t, a) => {
    const p = t.process;
    const old = p.realTimer;
    const left = old ? Math.max(1, Math.round((old.due - performance.now()) / 1000)) : 0;
    const s = Number(BigInt.asUintN(32, a[0]));
    p.realTimer = s > 0 ? { due: performance.now() + s * 1000, interval: 0 } : null;
    return left;
  },
  setitimer: (t, a) => {
    const p = t.process;
    const which = int(a[0]);
    if (which !== ITIMER_REAL && which !== ITIMER_VIRTUAL && which !== ITIMER_PROF) throw new Errno(E.EINVAL);
    const next = a[1] !== 0n ? readItimerval(p, a[1]) : null;
    if (a[2] !== 0n) writeItimerval(p, a[2], which);
    if (next) p.itimers[which] = next.value > 0 ? { due: p.itimerNow(which) + next.value, interval: next.interval } : null;
    return 0;
  },
  getitimer: (t, a) => {
    const which = int(a[0]);
    if (which !== ITIMER_REAL && which !== ITIMER_VIRTUAL && which !== ITIMER_PROF) throw new Errno(E.EINVAL);
    writeItimerval(t.process, a[1], which);
    return 0;
  },
  sigaltstack: (t, a) => {
    const p = t.process;
    const sp = t.vcpu.reg('rsp');
    const next = a[0] !== 0n ? Buffer.from(p.userBuffer(a[0], 24, PROT_READ)) : null;
    if (a[1] !== 0n) {
      const out = p.userBuffer(a[1], 24, PROT_WRITE);
      out.fill(0);
      out.writeBigUInt64LE(t.altStack.sp, 0);
      out.writeInt32LE(altStackFlags(t, sp), 8);
      out.writeBigUInt64LE(t.altStack.size, 16);
    }
    if (next) {
      const flags = next.readInt32LE(8) & ~SS_AUTODISARM;
      if (flags !== 0 && flags !== SS_DISABLE && flags !== SS_ONSTACK) throw new Errno(E.EINVAL);
      if (altStackFlags(t, sp) === SS_ONSTACK) throw new Errno(E.EPERM);
      if (flags === SS_DISABLE) {
        t.altStack = { sp: 0n, size: 0n, disabled: true };
      } else {
        const base = next.readBigUInt64LE(0), len = next.readBigUInt64LE(16);
        if (len < MINSIGSTKSZ) throw new Errno(E.ENOMEM);
        t.altStack = { sp: base, size: len, disabled: false };
      }
    }
    return 0;
  },
};
