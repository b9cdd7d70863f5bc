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

const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2, CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_MONOTONIC_RAW = 4, CLOCK_REALTIME_COARSE = 5, CLOCK_MONOTONIC_COARSE = 6, CLOCK_BOOTTIME = 7;
const NS = 1_000_000_000n;
/** Linux's USER_HZ: the unit of times(2) and /proc tick counts. */
const CLK_TCK = 100n;
const RUSAGE_SELF = 0, RUSAGE_CHILDREN = -1, RUSAGE_THREAD = 1;

export function clockNs(p: Process | null, clock: number): bigint {
  switch (clock) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE:
      return realtimeNs();
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE: case CLOCK_BOOTTIME:
      return process.hrtime.bigint();
    case CLOCK_PROCESS_CPUTIME_ID: case CLOCK_THREAD_CPUTIME_ID:
      return p ? process.hrtime.bigint() - p.startNs() : 0n;
    default:
      throw new Errno(E.EINVAL);
  }
}

function writeTimespec(p: Process, addr: bigint, ns: bigint): void {
  const out = p.userBuffer(addr, 16, PROT_WRITE);
  out.writeBigInt64LE(ns / NS, 0);
  out.writeBigInt64LE(ns % NS, 8);
}

/**
 * Sleep ns, ended early when a signal becomes deliverable (then the handler runs on the way back
 * and the call fails with EINTR, as nanosleep does whatever SA_RESTART says). Returns the ns left
 * when interrupted, or null when the sleep ran out. With one process only its timers can raise a
 * signal meanwhile, so the sleep wakes at most at their next expiry.
 */
function sleepInterruptible(t: Task, ns: bigint): bigint | null {
  const end = performance.now() + Number(ns) / 1e6;
  // While another process may run, the sleep is the kernel's: the task is parked until its end
  // (the call then returns 0), or until a signal interrupts it (EINTR; the time left is not reported).
  if (t.process.kernel.othersCanRun(t.process)) throw new WouldBlock('it sleeps', () => false, { at: end, result: () => 0 });
  for (;;) {
    const now = performance.now();
    if (hasDeliverable(t)) return BigInt(Math.max(0, Math.round((end - now) * 1e6)));
    const left = end - now;
    if (left <= 0) return null;
    const ms = Math.min(left, Math.max(0.5, t.process.timerDue - now));
    if (!sleepBounded(t.process, Math.ceil(ms))) return null;
  }
}

function readTimespec(p: Process, addr: bigint): bigint {
  const b = p.userBuffer(addr, 16, PROT_READ);
  const s = b.readBigInt64LE(0), n = b.readBigInt64LE(8);
  if (s < 0n || n < 0n || n >= NS) throw new Errno(E.EINVAL);
  return s * NS + n;
}

export const timeSyscalls: SyscallGroup = {
  // Setting the time needs CAP_SYS_TIME, which the sandbox's user lacks: EPERM once the
  // arguments pass Linux's checks (only CLOCK_REALTIME can be set; EINVAL for the others).
  clock_settime: ({ process: p }, a) => {
    const clock = int(a[0]);
    clockNs(p, clock);
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
  clock_gettime: ({ process: p }, a) => { writeTimespec(p, a[1], clockNs(p, int(a[0]))); return 0; },
  clock_getres: ({ process: p }, a) => {
    clockNs(p, int(a[0]));
    if (a[1] !== 0n) writeTimespec(p, a[1], 1n);
    return 0;
  },
  gettimeofday: ({ process: p }, a) => {
    if (a[0] !== 0n) {
      const ns = clockNs(p, CLOCK_REALTIME);
      const out = p.userBuffer(a[0], 16, PROT_WRITE);
      out.writeBigInt64LE(ns / NS, 0);
      out.writeBigInt64LE((ns % NS) / 1000n, 8);
    }
    if (a[1] !== 0n) p.userBuffer(a[1], 8, PROT_WRITE).fill(0);
    return 0;
  },
  time: ({ process: p }, a) => {
    const s = clockNs(p, CLOCK_REALTIME) / NS;
    if (a[0] !== 0n) p.userBuffer(a[0], 8, PROT_WRITE).writeBigInt64LE(s);
    return s;
  },
  nanosleep: (t, a) => {
    const p = t.process;
    const left = sleepInterruptible(t, readTimespec(p, a[0]));
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
    const wait = absolute ? ns - clockNs(p, clock) : ns;
    const left = wait > 0n ? sleepInterruptible(t, wait) : null;
    if (left !== null) {
      if (!absolute && a[3] !== 0n) writeTimespec(p, a[3], left);
      throw new Errno(E.EINTR);
    }
    return 0;
  },
  getrusage: ({ process: p }, a) => {
    const who = int(a[0]);
    if (who !== RUSAGE_SELF && who !== RUSAGE_CHILDREN && who !== RUSAGE_THREAD) throw new Errno(E.EINVAL);
    // struct rusage: ru_utime, ru_stime (timevals), then 14 longs (ru_maxrss in KiB...).
    const out = p.userBuffer(a[1], RUSAGE_SIZE, PROT_WRITE);
    out.fill(0);
    if (who !== RUSAGE_CHILDREN) {
      const ns = clockNs(p, CLOCK_PROCESS_CPUTIME_ID);
      out.writeBigInt64LE(ns / NS, 0);
      out.writeBigInt64LE((ns % NS) / 1000n, 8);
      p.rssBytes();
    }
    // ru_maxrss (KiB), after the two timevals.
    out.writeBigInt64LE(BigInt(who === RUSAGE_CHILDREN ? p.childrenPeakRssKb : p.peakRssKb), 32);
    return 0;
  },
  times: ({ process: p }, a) => {
    const ticks = (clockNs(p, CLOCK_PROCESS_CPUTIME_ID) * CLK_TCK) / NS;
    if (a[0] !== 0n) {
      // struct tms: utime, stime, cutime, cstime (clock ticks)
      const out = p.userBuffer(a[0], 32, PROT_WRITE);
      out.fill(0);
      out.writeBigInt64LE(ticks, 0);
    }
    // Ticks since an arbitrary point: since boot, and the VM booted with the program.
    return ticks;
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
const SYSINFO_SIZE = 112;

/** Seconds since the VM started, for sysinfo and /proc/uptime. */
export function uptimeSeconds(p: Process): bigint {
  return (process.hrtime.bigint() - p.startNs()) / NS;
}
