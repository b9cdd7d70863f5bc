// POSIX timers (timer_create, timer_settime...): per-process timers that raise a signal when they
// expire. Like ITIMER_REAL and timerfd they are kept lazily: the next expiry is a number, looked
// at wherever the kernel looks for ITIMER_REAL (before each re-entry, on guest timer ticks, in the
// scheduler's and the host waits' wake-up times: src/linux/signals.ts checkTimers). As on Linux, a
// timer whose signal is still queued does not queue another: its expirations meanwhile count as
// overruns, reported in the signal's si_overrun and by timer_getoverrun; so a timer needs no
// wake-up while its signal waits, however short its interval.

/** How the timer notifies: a signal to the process or to one of its threads, or nothing. */
export type TimerNotify = { kind: 'signal'; sig: number } | { kind: 'thread'; sig: number; tid: number } | { kind: 'none' };

export class PosixTimer {
  /** The next expiry (performance.now() ms); null while disarmed. */
  next: number | null = null;
  /** The period in ms (0: once). */
  interval = 0;
  /** Expirations since its signal was queued, beyond the one it stands for. */
  overrun = 0;
  /** overrun when its last signal was taken: timer_getoverrun's answer. */
  lastOverrun = 0;
  /** Its signal is queued and not taken yet. */
  queued = false;

  constructor(readonly id: number, readonly clock: number, readonly notify: TimerNotify, readonly value: bigint) {}

  /** Expirations due by now, the timer moved to its next expiry after now (or disarmed). */
  expire(now: number): number {
    if (this.next === null || now < this.next) return 0;
    if (this.interval <= 0) {
      this.next = null;
      return 1;
    }
    const n = Math.floor((now - this.next) / this.interval) + 1;
    this.next += n * this.interval;
    return n;
  }

  /** When it needs looking at next: never while its signal is queued or it notifies no one. */
  get wakeAt(): number {
    return this.next === null || this.queued || this.notify.kind === 'none' ? Infinity : this.next;
  }

  /**
   * Its signal was taken: the expirations while it waited (not looked at meanwhile: wakeAt) are
   * overruns too, all of them that signal's, and the count starts again.
   */
  taken(now = performance.now()): number {
    if (this.queued) this.overrun = Math.min(this.overrun + this.expire(now), 0x7fffffff);
    this.queued = false;
    this.lastOverrun = this.overrun;
    this.overrun = 0;
    return this.lastOverrun;
  }
}
