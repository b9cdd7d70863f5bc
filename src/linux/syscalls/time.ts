// Clocks and sleeping, from the host's clocks.
import { PROT_WRITE, PROT_READ } from '../address-space.js';
import { E, Errno } from '../../abi/linux.js';
import { WouldBlock } from '../../fs/open-file.js';
import { sleepBounded } from '../host-wait.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { hasDeliverable } from '../signals.js';
import { int, type SyscallGroup } from './args.js';
import { realtimeNs } from '../../machine/machine.js';
import { CLK_TCK, msTicks, type CpuTime } from '../cpu-time.js';
import { bootNs } from '../special-files.js';

const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2, CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_MONOTONIC_RAW = 4, CLOCK_REALTIME_COARSE = 5, CLOCK_MONOTONIC_COARSE = 6, CLOCK_BOOTTIME = 7, CLOCK_TAI = 11;
const NS = 1_000_000_000n;
const RUSAGE_SELF = 0, RUSAGE_CHILDREN = -1, RUSAGE_THREAD = 1;

/** CPU time (ms, CpuTime) as nanoseconds. */
export function cpuNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

/** A CPU-time clock's reading: user and system time, or (virtual) user time alone. */
function cpuClockNs(c: CpuTime, virtual = false): bigint {
  return cpuNs(virtual ? c.user : c.user + c.sys);
}

/**
 * The CPU-time clock a negative clock id names (clock_getcpuclockid, pthread_getcpuclockid):
 * ~id >> 3 is a pid (0: the caller's), bit 2 makes it a thread's (a tid), the low two bits say
 * which time (0 PROF and 2 SCHED: user and system; 1 VIRT: user). Another sandbox's ids and
 * the host's are never seen: a pid or tid outside the sandbox is EINVAL, as one that does not exist.
 */
function cpuClockOf(t: Task, clock: number): bigint {
  const id = ~(clock >> 3), which = clock & 3, perThread = (clock & 4) !== 0;
  if (which === 3) throw new Errno(E.EINVAL);
  const k = t.process.kernel;
  let c: CpuTime | undefined;
  if (perThread) c = id === 0 ? t.cpu : k.findTask(id)?.cpu;
  else c = id === 0 ? t.process.cpu : k.find(id)?.cpu;
  if (c === undefined) throw new Errno(E.EINVAL);
  return cpuClockNs(c, which === 1);
}

/**
 * The time on a clock, in nanoseconds. t: the calling thread, for the CPU-time clocks (without
 * one, as for a timerfd, those read 0).
 */
export function clockNs(t: Task | null, clock: number): bigint {
  switch (clock) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE:
      return realtimeNs();
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE: case CLOCK_BOOTTIME:
      return process.hrtime.bigint();
    case CLOCK_PROCESS_CPUTIME_ID:
      return t ? cpuClockNs(t.process.cpu) : 0n;
    case CLOCK_THREAD_CPUTIME_ID:
      return t ? cpuClockNs(t.cpu) : 0n;
    default:
      if (clock < 0 && t) return cpuClockOf(t, clock);
      throw new Errno(E.EINVAL);
  }
}

/**
 * Now on clock, as the base an absolute time (TIMER_ABSTIME, FUTEX_WAIT_BITSET) is measured from:
 * for the clocks the vDSO serves, the guest's own reading of it where it has one, so that a
 * deadline the program computed from its clock is never met early by the host's clock (the two
 * differed by milliseconds under the lane's emulation: an absolute POSIX timer fired "early");
 * else clockNs. CLOCK_TAI counts as the wall clock (the sandbox has no leap seconds).
 */
export function deadlineNow(t: Task, clock: number): bigint {
  const c = clock === CLOCK_TAI ? CLOCK_REALTIME : clock;
  const realtime = c === CLOCK_REALTIME || c === CLOCK_REALTIME_COARSE;
  const monotonic = c === CLOCK_MONOTONIC || c === CLOCK_MONOTONIC_RAW || c === CLOCK_MONOTONIC_COARSE || c === CLOCK_BOOTTIME;
  if (realtime || monotonic) {
    const guest = t.process.kernel.guestClockNs(t, realtime);
    if (guest !== null) return guest;
  }
  return clockNs(t, c);
}

/** A struct timespec (or, with usec, a struct timeval) of ns at addr; EFAULT where it cannot be written. */
function writeTimespec(p: Process, addr: bigint, ns: bigint, usec = false): void {
  const out = p.userBuffer(addr, 16, PROT_WRITE);
  out.writeBigInt64LE(ns / NS, 0);
  out.writeBigInt64LE(usec ? (ns % NS) / 1000n : ns % NS, 8);
}

/**
 * Sleep ns, ended early when a signal becomes deliverable (then the handler runs on the way back
 * and the call fails with EINTR, as nanosleep does whatever SA_RESTART says). Returns the ns left
 * when interrupted, or null when the sleep ran out. With one process only its timers can raise a
 * signal meanwhile, so the sleep wakes at most at their next expiry. A sleep parked in the kernel
 * that a signal ends gives interrupted the ns left, for the caller to write back.
 */
function sleepInterruptible(t: Task, ns: bigint, interrupted?: (left: bigint) => void): bigint | null {
  const end = performance.now() + Number(ns) / 1e6;
  const leftNs = () => BigInt(Math.max(0, Math.round((end - performance.now()) * 1e6)));
  // While another process may run, the sleep is the kernel's: the task is parked until its end
  // (the call then returns 0), or until a signal interrupts it (EINTR, and the time left).
  if (t.process.kernel.othersCanRun(t.process)) {
    throw new WouldBlock('it sleeps', () => false, { at: end, result: () => 0 }, (why) => { if (why === 'signal') interrupted?.(leftNs()); });
  }
  for (;;) {
    const now = performance.now();
    if (hasDeliverable(t)) return leftNs();
    const left = end - now;
    if (left <= 0) return null;
    const ms = Math.min(left, Math.max(0.5, t.process.timerDue - now));
    if (!sleepBounded(t.process, Math.ceil(ms))) return null;
  }
}

/**
 * The time left of a call that ends (a timespec, or a timeval with usec), left undone where the
 * memory cannot be written, as Linux does: the call's own result stands (EINTR, a count, 0).
 */
export function writeTimeLeft(p: Process, addr: bigint, ns: bigint, usec = false): void {
  try {
    writeTimespec(p, addr, ns, usec);
  } catch (e) {
    if (!(e instanceof Errno)) throw e;
  }
}

/** A struct timespec from user memory, in nanoseconds; EINVAL when malformed (negative, or nsec past a second). */
export function readTimespec(p: Process, addr: bigint): bigint {
  const b = p.userBuffer(addr, 16, PROT_READ);
  const s = b.readBigInt64LE(0), n = b.readBigInt64LE(8);
  if (s < 0n || n < 0n || n >= NS) throw new Errno(E.EINVAL);
  return s * NS + n;
}

export const timeSyscalls: SyscallGroup = {
  // Setting the time needs CAP_SYS_TIME, which the sandbox's user lacks: EPERM once the
  // arguments pass Linux's checks (only CLOCK_REALTIME can be set; EINVAL for the others).
  clock_settime: (t, a) => {
    const p = t.process;
    const clock = int(a[0]);
    clockNs(t, clock);
    if (clock !== CLOCK_REALTIME) throw new Errno(E.EINVAL);
    readTimespec(p, a[1]);
    throw new Errno(E.EPERM);
  },
  settimeofday: ({ process: p }, a) => {
    if (a[0] !== 0n) {
      const tv = p.userBuffer(a[0], 16, PROT_READ);
      const usec = tv.readBigInt64LE(8);
      if (usec < 0n || usec >= 1_000_000n) throw new Errno(E.EINVAL);
    }
    if (a[1] !== 0n) p.userBuffer(a[1], 8, PROT_READ);
    throw new Errno(E.EPERM);
  },
  clock_gettime: (t, a) => { writeTimespec(t.process, a[1], clockNs(t, int(a[0]))); return 0; },
  clock_getres: (t, a) => {
    clockNs(t, int(a[0]));
    if (a[1] !== 0n) writeTimespec(t.process, a[1], 1n);
    return 0;
  },
  gettimeofday: ({ process: p }, a) => {
    if (a[0] !== 0n) {
      const ns = clockNs(null, CLOCK_REALTIME);
      const out = p.userBuffer(a[0], 16, PROT_WRITE);
      out.writeBigInt64LE(ns / NS, 0);
      out.writeBigInt64LE((ns % NS) / 1000n, 8);
    }
    if (a[1] !== 0n) p.userBuffer(a[1], 8, PROT_WRITE).fill(0);
    return 0;
  },
  time: ({ process: p }, a) => {
    const s = clockNs(null, CLOCK_REALTIME) / NS;
    if (a[0] !== 0n) p.userBuffer(a[0], 8, PROT_WRITE).writeBigInt64LE(s);
    return s;
  },
  nanosleep: (t, a) => {
    const p = t.process;
    const rem = (left: bigint) => { if (a[1] !== 0n) writeTimeLeft(p, a[1], left); };
    const left = sleepInterruptible(t, readTimespec(p, a[0]), rem);
    if (left !== null) {
      if (a[1] !== 0n) writeTimespec(p, a[1], left);
      throw new Errno(E.EINTR);
    }
    return 0;
  },
  clock_nanosleep: (t, a) => {
    const p = t.process;
    const clock = int(a[0]);
    const ns = readTimespec(p, a[2]);
    const TIMER_ABSTIME = 1;
    const absolute = (int(a[1]) & TIMER_ABSTIME) !== 0;
    const wait = absolute ? ns - deadlineNow(t, clock) : ns;
    const rem = (left: bigint) => { if (!absolute && a[3] !== 0n) writeTimeLeft(p, a[3], left); };
    const left = wait > 0n ? sleepInterruptible(t, wait, rem) : null;
    if (left !== null) {
      if (!absolute && a[3] !== 0n) writeTimespec(p, a[3], left);
      throw new Errno(E.EINTR);
    }
    return 0;
  },
  getrusage: (t, a) => {
    const p = t.process;
    const who = int(a[0]);
    if (who !== RUSAGE_SELF && who !== RUSAGE_CHILDREN && who !== RUSAGE_THREAD) throw new Errno(E.EINVAL);
    const out = p.userBuffer(a[1], RUSAGE_SIZE, PROT_WRITE);
    if (who !== RUSAGE_CHILDREN) p.rssBytes();
    const cpu = who === RUSAGE_CHILDREN ? p.childCpu : who === RUSAGE_THREAD ? t.cpu : p.cpu;
    writeRusage(out, cpu, who === RUSAGE_CHILDREN ? p.childrenPeakRssKb : p.peakRssKb);
    return 0;
  },
  times: ({ process: p }, a) => {
    if (a[0] !== 0n) {
      // struct tms: utime, stime, cutime, cstime (clock ticks)
      const out = p.userBuffer(a[0], 32, PROT_WRITE);
      [p.cpu.user, p.cpu.sys, p.childCpu.user, p.childCpu.sys].forEach((ms, i) => out.writeBigInt64LE(msTicks(ms), i * 8));
    }
    // Ticks since an arbitrary point: since boot, and the VM booted with the sandbox.
    return (process.hrtime.bigint() - bootNs(p)) * BigInt(CLK_TCK) / NS;
  },
  sysinfo: ({ process: p }, a) => {
    const out = p.userBuffer(a[0], SYSINFO_SIZE, PROT_WRITE);
    out.fill(0);
    const total = BigInt(p.space.memoryBytes);
    out.writeBigInt64LE(uptimeSeconds(p), 0); // uptime; loads[3] stay 0
    out.writeBigUInt64LE(total, 32); // totalram
    out.writeBigUInt64LE(total, 40); // freeram: the guest's memory is all its own
    out.writeUInt16LE(1, 80); // procs
    out.writeUInt32LE(1, 104); // mem_unit
    return 0;
  },
};

const RUSAGE_SIZE = 144;

/**
 * Fill a struct rusage (144 bytes): ru_utime and ru_stime (timevals) from cpu, ru_maxrss (KiB)
 * after them; what kvmbox does not count (faults, context switches...) is 0.
 */
export function writeRusage(out: Buffer, cpu: CpuTime, maxRssKb: number): void {
  out.fill(0);
  [cpu.user, cpu.sys].forEach((ms, i) => {
    const us = BigInt(Math.floor(ms * 1000));
    out.writeBigInt64LE(us / 1_000_000n, i * 16);
    out.writeBigInt64LE(us % 1_000_000n, i * 16 + 8);
  });
  out.writeBigInt64LE(BigInt(maxRssKb), 32);
}
const SYSINFO_SIZE = 112;

/** Seconds since the VM started, for sysinfo and /proc/uptime. */
export function uptimeSeconds(p: Process): bigint {
  return (process.hrtime.bigint() - bootNs(p)) / NS;
}
