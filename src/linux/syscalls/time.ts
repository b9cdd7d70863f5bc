// Clocks and sleeping, from the host's clocks.
import { PROT_WRITE, PROT_READ } from '../address-space.js';
import { E, Errno } from '../../abi/linux.js';
import type { Process } from '../process.js';
import { int, type SyscallGroup } from './args.js';

const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2, CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_MONOTONIC_RAW = 4, CLOCK_REALTIME_COARSE = 5, CLOCK_MONOTONIC_COARSE = 6, CLOCK_BOOTTIME = 7;
const NS = 1_000_000_000n;
/** Linux's USER_HZ: the unit of times(2) and /proc tick counts. */
const CLK_TCK = 100n;
const RUSAGE_SELF = 0, RUSAGE_CHILDREN = -1, RUSAGE_THREAD = 1;

export function clockNs(p: Process | null, clock: number): bigint {
  switch (clock) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE:
      return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
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

/** Sleep, but never past the program's time limit: the next check ends the program. */
function sleepNs(p: Process, ns: bigint): void {
  if (ns <= 0n) return;
  let ms = Number(ns / 1_000_000n);
  const left = p.timeLeftMs();
  if (left !== null) ms = Math.min(ms, Math.max(0, left));
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  p.checkDeadline();
}

function readTimespec(p: Process, addr: bigint): bigint {
  const b = p.userBuffer(addr, 16, PROT_READ);
  const s = b.readBigInt64LE(0), n = b.readBigInt64LE(8);
  if (s < 0n || n < 0n || n >= NS) throw new Errno(E.EINVAL);
  return s * NS + n;
}

export const timeSyscalls: SyscallGroup = {
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
  nanosleep: ({ process: p }, a) => {
    sleepNs(p, readTimespec(p, a[0]));
    if (a[1] !== 0n) writeTimespec(p, a[1], 0n);
    return 0;
  },
  clock_nanosleep: ({ process: p }, a) => {
    const clock = int(a[0]);
    const ns = readTimespec(p, a[2]);
    const TIMER_ABSTIME = 1;
    sleepNs(p, int(a[1]) & TIMER_ABSTIME ? ns - clockNs(p, clock) : ns);
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
    }
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
    const total = BigInt(p.space.memory.size);
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
