// Calls that glibc, its ld.so and the programs built on them make at start-up or on their way
// out, answered for kvmbox's single thread of one process:
// - futex: with other tasks alive (threads, issue 16, or processes), waits park in the kernel and
//   wakes wake them (src/linux/futex.ts through Kernel.futexWait/futexWake). With one task no one else waits or wakes. FUTEX_WAKE wakes nobody (0); a wait on a
//   changed word returns EAGAIN; a wait with a timeout sleeps it out (ETIMEDOUT); a wait that
//   only another thread could end would wait forever, and the program is stopped, as a time
//   limit would stop it.
// - fadvise64: advice only, accepted for any open file.
// - membarrier: every other vCPU of the sandbox leaves the guest (Kernel.barrier: an exit is a
//   full barrier), for the global and the private expedited commands alike; the private ones
//   need their registration first (EPERM), kept per process as Linux keeps it per mm. No rseq,
//   so no MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ.
// - the extended attributes family: EOPNOTSUPP, as a file system without xattrs (ls -l asks
//   for ACLs and SELinux labels).
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno } from '../../abi/linux.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { deadlineNow } from './time.js';
import { int, type SyscallGroup } from './args.js';
import { sleepBounded } from '../host-wait.js';

const FUTEX_WAIT = 0, FUTEX_WAKE = 1, FUTEX_REQUEUE = 3, FUTEX_CMP_REQUEUE = 4, FUTEX_WAKE_OP = 5;
const FUTEX_WAIT_BITSET = 9, FUTEX_WAKE_BITSET = 10;
const FUTEX_LOCK_PI = 6, FUTEX_UNLOCK_PI = 7, FUTEX_TRYLOCK_PI = 8, FUTEX_LOCK_PI2 = 13;
const FUTEX_WAITERS = 0x80000000, FUTEX_OWNER_DIED = 0x40000000, FUTEX_TID_MASK = 0x3fffffff;
const FUTEX_PRIVATE_FLAG = 128, FUTEX_CLOCK_REALTIME = 256;
const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1;
const NS = 1_000_000_000n;

/** The futex word: 4 bytes, aligned, readable. */
function futexWord(p: Process, addr: bigint): number {
  if (addr % 4n !== 0n) throw new Errno(E.EINVAL);
  return p.userBuffer(addr, 4, PROT_READ).readUInt32LE(0);
}

/** Nanoseconds to wait from a struct timespec, relative (FUTEX_WAIT) or absolute (the bitset ops). */
function timeout(t: Task, addr: bigint, absolute: boolean, realtime: boolean): bigint {
  const ts = Buffer.from(t.process.userBuffer(addr, 16, PROT_READ));
  const sec = ts.readBigInt64LE(0), nsec = ts.readBigInt64LE(8);
  if (sec < 0n || nsec < 0n || nsec >= NS) throw new Errno(E.EINVAL);
  const ns = sec * NS + nsec;
  return absolute ? ns - deadlineNow(t, realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC) : ns;
}

/** The futex calls once another task is alive: waits park in the kernel, wakes wake them. */
function futexShared(t: Task, a: bigint[]): number {
  const p = t.process;
  const op = int(a[1]!);
  const cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
  const addr = Number(a[0]!);
  const k = p.kernel;
  switch (cmd) {
    case FUTEX_WAIT: case FUTEX_WAIT_BITSET: {
      const bitset = cmd === FUTEX_WAIT_BITSET ? int(a[5]!) : -1;
      if (bitset === 0) throw new Errno(E.EINVAL);
      // A wake that chose this task ends its wait even if the word changed since.
      if (t.futexWoken) return k.futexWait(t, addr, null, bitset);
      if (futexWord(p, a[0]!) !== (int(a[2]!) >>> 0)) throw new Errno(E.EAGAIN);
      let ms: number | null = null;
      if (a[3] !== 0n) {
        const ns = timeout(t, a[3]!, cmd === FUTEX_WAIT_BITSET, (op & FUTEX_CLOCK_REALTIME) !== 0);
        if (ns <= 0n) throw new Errno(E.ETIMEDOUT);
        ms = Number(ns) / 1e6;
      }
      return k.futexWait(t, addr, ms, bitset);
    }
    case FUTEX_WAKE: case FUTEX_WAKE_BITSET: {
      futexWord(p, a[0]!);
      const bitset = cmd === FUTEX_WAKE_BITSET ? int(a[5]!) : -1;
      if (bitset === 0) throw new Errno(E.EINVAL);
      return k.futexWake(t, addr, Math.max(0, int(a[2]!)), bitset);
    }
    case FUTEX_REQUEUE: case FUTEX_CMP_REQUEUE:
      futexWord(p, a[4]!);
      if (cmd === FUTEX_CMP_REQUEUE && futexWord(p, a[0]!) !== (int(a[5]!) >>> 0)) throw new Errno(E.EAGAIN);
      futexWord(p, a[0]!);
      // For the requeue ops the 4th argument is a count, not a timeout.
      return k.futexWake(t, addr, Math.max(0, int(a[2]!)), -1, { addr: Number(a[4]!), n: Math.max(0, Number(BigInt.asIntN(32, a[3]!))) });
    case FUTEX_LOCK_PI: case FUTEX_LOCK_PI2: case FUTEX_TRYLOCK_PI: return lockPi(t, a, cmd, op);
    case FUTEX_UNLOCK_PI: return unlockPi(t, a);
    case FUTEX_WAKE_OP: {
      futexWord(p, a[0]!);
      const old = wakeOp(p, a[4]!, int(a[5]!));
      let n = k.futexWake(t, addr, Math.max(0, int(a[2]!)), -1);
      if (wakeOpCondition(old, int(a[5]!))) n += k.futexWake(t, Number(a[4]!), Math.max(0, Number(BigInt.asIntN(32, a[3]!))), -1);
      return n;
    }
    default:
      throw new Errno(E.ENOSYS);
  }
}

/**
 * A PI futex word, read and changed with atomic operations: threads on other vCPUs take and
 * release the lock in user mode (compare-and-swap of 0 and their tid) while the host looks.
 */
function piWord(p: Process, addr: bigint): Int32Array {
  if (addr % 4n !== 0n) throw new Errno(E.EINVAL);
  const b = p.userBuffer(addr, 4, PROT_READ | PROT_WRITE);
  return new Int32Array(b.buffer, b.byteOffset, 1);
}

/** Set w to to if it still holds from; whether it did. */
function swap(w: Int32Array, from: number, to: number): boolean {
  return Atomics.compareExchange(w, 0, from | 0, to | 0) === (from | 0);
}

/**
 * FUTEX_LOCK_PI, LOCK_PI2 and TRYLOCK_PI: take the lock whose word holds its owner's tid, as
 * Linux does for glibc's priority-inheritance mutexes (priorities themselves mean nothing here:
 * every thread has the same). A free word gets the caller's tid (keeping FUTEX_OWNER_DIED); a
 * held one gets FUTEX_WAITERS and the caller waits until the holder's FUTEX_UNLOCK_PI hands the
 * lock over, or the holder ends (then the lock is the waiter's). EDEADLK for the caller's own
 * lock, ESRCH for a holder that does not exist, EAGAIN for a held lock under TRYLOCK.
 */
function lockPi(t: Task, a: bigint[], cmd: number, op: number): number {
  const p = t.process;
  const k = p.kernel;
  if (t.futexWoken) {
    // An unlock handed the lock over, the word already names this task.
    t.futexWoken = false;
    t.piOwnerGone = false;
    return 0;
  }
  const takeOver = t.piOwnerGone;
  t.piOwnerGone = false;
  const addr = Number(a[0]!);
  const w = piWord(p, a[0]!);
  let owner: number;
  for (;;) {
    const v = w[0]! >>> 0;
    owner = v & FUTEX_TID_MASK;
    if (owner === t.tid) throw new Errno(E.EDEADLK);
    const alive = owner !== 0 && k.findTask(owner) !== undefined;
    if (owner === 0 || (!alive && takeOver)) {
      const next = ((v & FUTEX_OWNER_DIED) | t.tid | (k.futexHasWaiters(t, addr) ? FUTEX_WAITERS : 0)) >>> 0;
      if (swap(w, v, next)) return 0;
      continue;
    }
    if (!alive) throw new Errno(E.ESRCH);
    if (cmd === FUTEX_TRYLOCK_PI) throw new Errno(E.EAGAIN);
    if (v & FUTEX_WAITERS || swap(w, v, (v | FUTEX_WAITERS) >>> 0)) break;
  }
  let ms: number | null = null;
  if (cmd !== FUTEX_TRYLOCK_PI && a[3] !== 0n) {
    // An absolute time: on CLOCK_REALTIME for LOCK_PI, for LOCK_PI2 on CLOCK_MONOTONIC unless asked.
    const ns = timeout(t, a[3]!, true, cmd === FUTEX_LOCK_PI || (op & FUTEX_CLOCK_REALTIME) !== 0);
    if (ns <= 0n) throw new Errno(E.ETIMEDOUT);
    ms = Number(ns) / 1e6;
  }
  return k.futexWaitPi(t, addr, ms, owner);
}

/** FUTEX_UNLOCK_PI: the owner's unlock; the first waiter becomes the owner, else the word is 0. EPERM from another task. */
function unlockPi(t: Task, a: bigint[]): number {
  const p = t.process;
  const addr = Number(a[0]!);
  const w = piWord(p, a[0]!);
  for (;;) {
    const v = w[0]! >>> 0;
    if ((v & FUTEX_TID_MASK) !== t.tid) throw new Errno(E.EPERM);
    const next = p.kernel.futexHandOver(t, addr);
    // As Linux, the new owner's word always carries FUTEX_WAITERS: its unlock comes here.
    if (next) {
      Atomics.store(w, 0, (next.task.tid | FUTEX_WAITERS) | 0);
      return 0;
    }
    if (swap(w, v, 0)) return 0;
  }
}

/** FUTEX_WAKE_OP's comparison of the second word's old value. */
function wakeOpCondition(old: number, encoded: number): boolean {
  const cmp = (encoded >>> 24) & 15;
  const arg = encoded & 0xfff;
  switch (cmp) {
    case 0: return old === arg;
    case 1: return old !== arg;
    case 2: return old < arg;
    case 3: return old <= arg;
    case 4: return old > arg;
    case 5: return old >= arg;
    default: return false;
  }
}

function futex(t: Task, a: bigint[]): number {
  const p = t.process;
  const op = int(a[1]!);
  const cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
  switch (cmd) {
    case FUTEX_WAKE: case FUTEX_WAKE_BITSET:
      futexWord(p, a[0]!);
      return 0;
    case FUTEX_REQUEUE: case FUTEX_CMP_REQUEUE:
      futexWord(p, a[4]!);
      if (cmd === FUTEX_CMP_REQUEUE && futexWord(p, a[0]!) !== (int(a[5]!) >>> 0)) throw new Errno(E.EAGAIN);
      futexWord(p, a[0]!);
      return 0;
    case FUTEX_WAKE_OP:
      futexWord(p, a[0]!);
      wakeOp(p, a[4]!, int(a[5]!));
      return 0;
    case FUTEX_LOCK_PI: case FUTEX_LOCK_PI2: case FUTEX_TRYLOCK_PI: return lockPi(t, a, cmd, op);
    case FUTEX_UNLOCK_PI: return unlockPi(t, a);
    case FUTEX_WAIT: case FUTEX_WAIT_BITSET: {
      if (cmd === FUTEX_WAIT_BITSET && int(a[5]!) === 0) throw new Errno(E.EINVAL);
      if (futexWord(p, a[0]!) !== (int(a[2]!) >>> 0)) throw new Errno(E.EAGAIN);
      if (a[3] === 0n) {
        // As a time limit would end it (the same as a read of its own empty pipe, syscalls/io.ts).
        p.exit = { kind: 'timeout', message: 'kvmbox: the program would wait forever: a futex no other thread can wake; program stopped' };
        return 0;
      }
      const ns = timeout(t, a[3]!, cmd === FUTEX_WAIT_BITSET, (op & FUTEX_CLOCK_REALTIME) !== 0);
      // In slices, so that a time limit, kill() or abort ends the wait (src/linux/host-wait.ts).
      if (ns > 0n && !sleepBounded(p, Number(ns / 1_000_000n))) return 0;
      throw new Errno(E.ETIMEDOUT);
    }
    default:
      throw new Errno(E.ENOSYS);
  }
}

/** FUTEX_WAKE_OP's change to the second word; returns its old value. */
function wakeOp(p: Process, addr: bigint, encoded: number): number {
  if (addr % 4n !== 0n) throw new Errno(E.EINVAL);
  const word = p.userBuffer(addr, 4, PROT_READ | PROT_WRITE);
  const op = (encoded >>> 28) & 7, shift = (encoded >>> 28) & 8;
  let arg = (encoded << 8) >> 20; // sign-extended 12 bits
  if (shift) arg = 1 << (arg & 31);
  const old = word.readInt32LE(0);
  const ops = [arg, old + arg, old | arg, old & ~arg, old ^ arg];
  if (op >= ops.length) throw new Errno(E.ENOSYS);
  word.writeInt32LE(ops[op]! | 0, 0);
  return old;
}

const noXattrs = (): never => { throw new Errno(E.EOPNOTSUPP); };

const MEMBARRIER_CMD_QUERY = 0, MEMBARRIER_CMD_GLOBAL = 1, MEMBARRIER_CMD_GLOBAL_EXPEDITED = 2;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED = 4, MEMBARRIER_CMD_PRIVATE_EXPEDITED = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED = 16, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE = 32;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 64;
/** The commands above, as MEMBARRIER_CMD_QUERY reports them. */
const MEMBARRIER_SUPPORTED = 127;

function membarrier(t: Task, cmd: number, flags: number): number {
  const p = t.process;
  if (flags !== 0) throw new Errno(E.EINVAL);
  switch (cmd) {
    case MEMBARRIER_CMD_QUERY: return MEMBARRIER_SUPPORTED;
    case MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: case MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED:
    case MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE:
      p.membarriers |= cmd;
      return 0;
    case MEMBARRIER_CMD_PRIVATE_EXPEDITED: case MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE:
      // Each needs its own registration (the value of its REGISTER command is its own times two).
      if (!(p.membarriers & (cmd * 2))) throw new Errno(E.EPERM);
      p.kernel.barrier(t);
      return 0;
    case MEMBARRIER_CMD_GLOBAL: case MEMBARRIER_CMD_GLOBAL_EXPEDITED:
      p.kernel.barrier(t);
      return 0;
    default: throw new Errno(E.EINVAL);
  }
}

export const libcSupportSyscalls: SyscallGroup = {
  membarrier: (t, a) => membarrier(t, int(a[0]), int(a[1])),
  futex: (t, a) => (t.futexWoken || t.process.kernel.othersCanRun(t.process) ? futexShared(t, a) : futex(t, a)),
  fadvise64: ({ process: p }, a) => {
    p.fds.get(int(a[0]));
    if (int(a[3]) < 0 || int(a[3]) > 5) throw new Errno(E.EINVAL);
    return 0;
  },
  getxattr: noXattrs, lgetxattr: noXattrs, fgetxattr: noXattrs,
  listxattr: noXattrs, llistxattr: noXattrs, flistxattr: noXattrs,
  setxattr: noXattrs, lsetxattr: noXattrs, fsetxattr: noXattrs,
  removexattr: noXattrs, lremovexattr: noXattrs, fremovexattr: noXattrs,
};
