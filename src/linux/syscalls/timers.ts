// POSIX timers: timer_create, timer_settime, timer_gettime, timer_getoverrun and timer_delete.
// The timers themselves are src/linux/posix-timers.ts; they fire where ITIMER_REAL does
// (src/linux/signals.ts checkTimers). Every value from the guest is hostile: the sigevent and the
// itimerspec are copied once before they are parsed; a bad clock, notification, signal, thread
// or timer id is EINVAL, as on Linux.
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno } from '../../abi/linux.js';
import type { Process } from '../process.js';
import { PosixTimer, type TimerNotify } from '../posix-timers.js';
import { NSIG, dropTimerSignal } from '../signals.js';
import { deadlineNow } from './time.js';
import { ITIMERSPEC_SIZE, readItimerspec, writeItimerspec } from './timerfd.js';
import { int, type SyscallGroup } from './args.js';

const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2, CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_BOOTTIME = 7, CLOCK_REALTIME_ALARM = 8, CLOCK_BOOTTIME_ALARM = 9, CLOCK_TAI = 11;
const SIGEV_SIGNAL = 0, SIGEV_NONE = 1, SIGEV_THREAD_ID = 4;
const SIGALRM = 14;
const TIMER_ABSTIME = 1;
/** struct sigevent: sigev_value (8), sigev_signo (4), sigev_notify (4), then the thread id. */
const SIGEVENT_SIZE = 64;
/** Timers one process may hold (Linux bounds them by RLIMIT_SIGPENDING): EAGAIN beyond. */
export const MAX_TIMERS = 1024;

/** How a timer created with the sigevent at addr notifies (null: SIGALRM to the process, with the id as value). */
function readSigevent(p: Process, addr: bigint, id: number): { notify: TimerNotify; value: bigint } {
  if (addr === 0n) return { notify: { kind: 'signal', sig: SIGALRM }, value: BigInt(id) };
  const b = Buffer.from(p.userBuffer(addr, SIGEVENT_SIZE, PROT_READ));
  const value = b.readBigUInt64LE(0), sig = b.readInt32LE(8), how = b.readInt32LE(12), tid = b.readInt32LE(16);
  if (how === SIGEV_NONE) return { notify: { kind: 'none' }, value };
  if (how !== SIGEV_SIGNAL && how !== SIGEV_THREAD_ID) throw new Errno(E.EINVAL);
  if (sig < 1 || sig > NSIG) throw new Errno(E.EINVAL);
  if (how === SIGEV_SIGNAL) return { notify: { kind: 'signal', sig }, value };
  // The thread must be one of the caller's own process.
  if (!p.tasks.some((t) => t.tid === tid && t.state !== 'dead')) throw new Errno(E.EINVAL);
  return { notify: { kind: 'thread', sig, tid }, value };
}

function timerOf(p: Process, id: number): PosixTimer {
  const pt = p.timers.get(id);
  if (!pt) throw new Errno(E.EINVAL);
  return pt;
}

/** A timer's setting now: its interval and the time to its next expiry (0 while disarmed), in ns. */
function current(pt: PosixTimer): { interval: bigint; value: bigint } {
  const now = performance.now();
  // A timer that notifies no one is only ever looked at here: move it past now.
  if (pt.notify.kind === 'none') pt.expire(now);
  const ns = (ms: number): bigint => BigInt(Math.max(0, Math.round(ms * 1e6)));
  // Expired, its signal not yet handled: 1 ns left, as Linux reports it.
  const value = pt.next === null ? 0n : pt.next > now ? ns(pt.next - now) || 1n : 1n;
  return { interval: ns(pt.interval), value };
}

export const timerSyscalls: SyscallGroup = {
  timer_create: ({ process: p }, a) => {
    const clock = int(a[0]);
    // The CPU-time clocks run as clock_gettime reports them: the time since the program started.
    const known = [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, CLOCK_BOOTTIME, CLOCK_TAI,
      CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM];
    if (!known.includes(clock)) throw new Errno(E.EINVAL);
    // The alarm clocks need CAP_WAKE_ALARM, which the guest's plain user lacks.
    if (clock === CLOCK_REALTIME_ALARM || clock === CLOCK_BOOTTIME_ALARM) throw new Errno(E.EPERM);
    if (p.timers.size >= MAX_TIMERS) throw new Errno(E.EAGAIN);
    let id = p.nextTimerId;
    while (p.timers.has(id)) id = (id + 1) & 0x7fffffff;
    const { notify, value } = readSigevent(p, a[1], id);
    const out = p.userBuffer(a[2], 4, PROT_WRITE);
    p.nextTimerId = (id + 1) & 0x7fffffff;
    p.timers.set(id, new PosixTimer(id, clock, notify, value));
    out.writeInt32LE(id);
    return 0;
  },
  timer_settime: (t, a) => {
    const p = t.process;
    const pt = timerOf(p, int(a[0]));
    const flags = int(a[1]);
    const spec = readItimerspec(p, a[2]);
    const out = a[3] !== 0n ? p.userBuffer(a[3], ITIMERSPEC_SIZE, PROT_WRITE) : null;
    if (out) writeItimerspec(out, current(pt));
    const now = performance.now();
    pt.interval = Number(spec.interval) / 1e6;
    pt.overrun = 0;
    if (spec.value === 0n) {
      pt.next = null;
    } else {
      // An absolute time is on the timer's own clock: its distance from that clock's now is kept.
      const ns = flags & TIMER_ABSTIME ? spec.value - deadlineNow(t, pt.clock) : spec.value;
      pt.next = now + Number(ns) / 1e6;
    }
    return 0;
  },
  timer_gettime: ({ process: p }, a) => {
    const pt = timerOf(p, int(a[0]));
    writeItimerspec(p.userBuffer(a[1], ITIMERSPEC_SIZE, PROT_WRITE), current(pt));
    return 0;
  },
  timer_getoverrun: ({ process: p }, a) => timerOf(p, int(a[0])).lastOverrun,
  timer_delete: ({ process: p }, a) => {
    const pt = timerOf(p, int(a[0]));
    dropTimerSignal(p, pt);
    p.timers.delete(pt.id);
    return 0;
  },
};
