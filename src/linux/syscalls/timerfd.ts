// timerfd: a timer read through a descriptor. The timer is kept lazily: its next expiry and
// interval are numbers, and the expirations up to now are counted whenever someone looks (read,
// poll, gettime, settime), so no host timer exists. A read takes the count (8 bytes), or waits
// for the next expiry: with another task alive the kernel parks the caller and wakes it then
// (WouldBlock's timeout is the expiry, src/fs/open-file.ts); alone, it sleeps on the host
// (syscalls/io.ts guarded). poll, select and epoll see it readable once the count is above 0 and
// wake at the expiry through OpenFile.readyAt.
//
// Every value from the guest is hostile: the itimerspec is copied once before it is parsed, a bad
// pointer is EFAULT, a bad clock, flag, or tv_nsec outside [0, 1e9) is EINVAL. Unlike Linux, which
// arms the timer and then fails with EFAULT, a bad old-value pointer is found before the timer changes.
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { POLLIN, WouldBlock } from '../../fs/open-file.js';
import { E, Errno, O } from '../../abi/linux.js';
import type { Process } from '../process.js';
import { AnonFile } from './anon-file.js';
import { deadlineNow } from './time.js';
import { int, type SyscallGroup } from './args.js';

const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_BOOTTIME = 7, CLOCK_REALTIME_ALARM = 8, CLOCK_BOOTTIME_ALARM = 9;
const TFD_TIMER_ABSTIME = 1, TFD_TIMER_CANCEL_ON_SET = 2;
/** struct itimerspec: it_interval then it_value, each a struct timespec (tv_sec, tv_nsec). */
export const ITIMERSPEC_SIZE = 32;
const NS = 1_000_000_000n;
/** Linux's longest time (KTIME_MAX): larger values are clamped to it. */
const KTIME_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

/** The host's monotonic time in ns, on the scale of performance.now(), which the kernel's waits use. */
const nowNs = (): bigint => BigInt(Math.round(performance.now() * 1e6));

export interface TimerSpec { interval: bigint; value: bigint }

export class TimerFd extends AnonFile {
  /** The next expiry (nowNs scale); null while disarmed. */
  private next: bigint | null = null;
  private interval = 0n;
  /** Expirations not read yet. */
  private ticks = 0n;

  constructor(readonly clock: number, statusFlags: number) {
    super('anon_inode:[timerfd]', statusFlags);
  }

  /** Count the expirations up to now; a periodic timer moves to its next expiry after now. */
  private update(now = nowNs()): void {
    if (this.next === null || now < this.next) return;
    if (this.interval > 0n) {
      const n = (now - this.next) / this.interval + 1n;
      this.ticks += n;
      this.next += n * this.interval;
    } else {
      this.ticks += 1n;
      this.next = null;
    }
    if (this.ticks > U64_MAX) this.ticks = U64_MAX;
  }

  /** timerfd_gettime: the interval and the time to the next expiry (0 while disarmed). */
  get(): TimerSpec {
    const now = nowNs();
    this.update(now);
    return { interval: this.interval, value: this.next === null ? 0n : this.next - now };
  }

  /** timerfd_settime: arm (value > 0) or disarm (value 0); the count starts again at 0. Returns the old setting. */
  set(spec: TimerSpec, absolute: boolean, clockNow: bigint): TimerSpec {
    const old = this.get();
    const now = nowNs();
    this.ticks = 0n;
    this.interval = spec.interval;
    if (spec.value === 0n) {
      this.next = null;
    } else {
      // An absolute time is on the timer's own clock: its distance from that clock's now is kept.
      this.next = now + (absolute ? spec.value - clockNow : spec.value);
    }
    return old;
  }

  read(buf: Buffer): number {
    if (buf.length < 8) throw new Errno(E.EINVAL);
    this.update();
    if (this.ticks === 0n) {
      if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      const self = this;
      // The wait ends at the next expiry; `at` follows settime meanwhile (Infinity while
      // disarmed), so the timeout's result is never reached before the count is above 0.
      throw new WouldBlock('it reads a timerfd that is not armed', () => self.pollMask() !== 0,
        { get at() { return self.readyAt(); }, result: () => -E.EAGAIN });
    }
    buf.writeBigUInt64LE(this.ticks, 0);
    this.ticks = 0n;
    return 8;
  }

  write(): number { throw new Errno(E.EINVAL); }

  pollMask(): number {
    this.update();
    return this.ticks > 0n ? POLLIN : 0;
  }

  readyAt(): number {
    if (this.ticks > 0n) return 0;
    return this.next === null ? Infinity : Number(this.next) / 1e6;
  }
}

/** A struct itimerspec from the guest, copied once, each timespec checked. */
export function readItimerspec(p: Process, addr: bigint): TimerSpec {
  const b = Buffer.from(p.userBuffer(addr, ITIMERSPEC_SIZE, PROT_READ));
  const ns = (off: number): bigint => {
    const sec = b.readBigInt64LE(off), nsec = b.readBigInt64LE(off + 8);
    if (sec < 0n || nsec < 0n || nsec >= NS) throw new Errno(E.EINVAL);
    const v = sec * NS + nsec;
    return v > KTIME_MAX ? KTIME_MAX : v;
  };
  return { interval: ns(0), value: ns(16) };
}

export function writeItimerspec(out: Buffer, spec: TimerSpec): void {
  const v = spec.value < 0n ? 0n : spec.value;
  out.writeBigInt64LE(spec.interval / NS, 0);
  out.writeBigInt64LE(spec.interval % NS, 8);
  out.writeBigInt64LE(v / NS, 16);
  out.writeBigInt64LE(v % NS, 24);
}

function timerOf(p: Process, fd: number): TimerFd {
  const f = p.fds.get(fd);
  if (!(f instanceof TimerFd)) throw new Errno(E.EINVAL);
  return f;
}

export const timerfdSyscalls: SyscallGroup = {
  timerfd_create: ({ process: p }, a) => {
    const clock = int(a[0]), flags = int(a[1]);
    const known = [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM];
    if (flags & ~(O.CLOEXEC | O.NONBLOCK) || !known.includes(clock)) throw new Errno(E.EINVAL);
    // The alarm clocks need CAP_WAKE_ALARM, which the guest's plain user lacks.
    if (clock === CLOCK_REALTIME_ALARM || clock === CLOCK_BOOTTIME_ALARM) throw new Errno(E.EPERM);
    return p.fds.install(new TimerFd(clock, O.RDWR | (flags & O.NONBLOCK)), (flags & O.CLOEXEC) !== 0);
  },
  timerfd_settime: (t, a) => {
    const p = t.process;
    const spec = readItimerspec(p, a[2]);
    const flags = int(a[1]);
    // TFD_TIMER_CANCEL_ON_SET: the sandbox's realtime clock is never set, so nothing cancels.
    if (flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) throw new Errno(E.EINVAL);
    const timer = timerOf(p, int(a[0]));
    const out = a[3] !== 0n ? p.userBuffer(a[3], ITIMERSPEC_SIZE, PROT_WRITE) : null;
    const absolute = (flags & TFD_TIMER_ABSTIME) !== 0;
    const old = timer.set(spec, absolute, absolute ? deadlineNow(t, timer.clock) : 0n);
    if (out) writeItimerspec(out, old);
    return 0;
  },
  timerfd_gettime: ({ process: p }, a) => {
    const timer = timerOf(p, int(a[0]));
    writeItimerspec(p.userBuffer(a[1], ITIMERSPEC_SIZE, PROT_WRITE), timer.get());
    return 0;
  },
};
