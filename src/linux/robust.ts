// Robust futex lists (set_robust_list(2)). A thread registers the head of a list, in its own
// memory, of the futexes it holds (glibc's and musl's robust mutexes). When it ends (exit, the end
// of its process, or execve) the list is walked as Linux's exit_robust_list does: each futex word
// that still names the thread as its owner gets FUTEX_OWNER_DIED, and one waiter is woken if there
// were waiters, so that the next pthread_mutex_lock returns EOWNERDEAD instead of waiting forever.
//
// The list is the guest's and hostile: the walk is bounded (ROBUST_LIST_LIMIT entries, so a loop
// ends), each guest word is read once into a copy, and a bad pointer ends the walk quietly, as on
// Linux. A priority-inheritance futex (bit 0 of a pointer) is marked but not woken: kvmbox has no
// PI futexes, so nothing can wait on one.
import { PROT_READ, PROT_WRITE } from './address-space.js';
import { Errno } from '../abi/linux.js';
import type { Task } from './task.js';

/** sizeof(struct robust_list_head): next, futex_offset, list_op_pending. */
export const ROBUST_LIST_HEAD_SIZE = 24;
/** The most entries Linux walks (ROBUST_LIST_LIMIT). */
const ROBUST_LIST_LIMIT = 2048;
const FUTEX_WAITERS = 0x80000000, FUTEX_OWNER_DIED = 0x40000000, FUTEX_TID_MASK = 0x3fffffff;
const U64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** A copy of len bytes of t's memory at addr, or null when it is not readable. */
function copyIn(t: Task, addr: bigint, len: number): Buffer | null {
  try {
    return Buffer.from(t.process.userBuffer(addr, len, PROT_READ));
  } catch (e) {
    if (e instanceof Errno) return null;
    throw e;
  }
}

/** Linux's handle_futex_death for the word at uaddr (nothing when the word cannot be reached). */
function futexDeath(t: Task, uaddr: bigint, pi: boolean, pendingOp: boolean): void {
  if (uaddr % 4n !== 0n) return;
  const word = copyIn(t, uaddr, 4);
  if (!word) return;
  const uval = word.readUInt32LE(0);
  const wake = (): void => { t.process.kernel.futexWake(t, Number(uaddr), 1, -1); };
  // A lock or unlock interrupted before the word was set: a waiter may sleep on a free word.
  if (pendingOp && !pi && uval === 0) {
    wake();
    return;
  }
  if ((uval & FUTEX_TID_MASK) !== t.tid) return;
  try {
    t.process.userBuffer(uaddr, 4, PROT_WRITE).writeUInt32LE(((uval & FUTEX_WAITERS) | FUTEX_OWNER_DIED) >>> 0, 0);
  } catch (e) {
    if (e instanceof Errno) return;
    throw e;
  }
  if (!pi && (uval & FUTEX_WAITERS) !== 0) wake();
}

/**
 * Walk t's robust list (if it registered one) as its thread ends, and forget it. Needs t's
 * address space in guest memory (the caller's: the task is on the vCPU, or its process is resident).
 */
export function exitRobustList(t: Task): void {
  const head = t.robustList;
  t.robustList = 0n;
  if (head === 0n) return;
  const h = copyIn(t, head, ROBUST_LIST_HEAD_SIZE);
  if (!h) return;
  const first = h.readBigUInt64LE(0);
  const offset = h.readBigInt64LE(8);
  const pendingRaw = h.readBigUInt64LE(16);
  const pending = pendingRaw & ~1n;
  let entry = first & ~1n, pi = (first & 1n) !== 0n;
  for (let limit = ROBUST_LIST_LIMIT; entry !== head;) {
    const next = copyIn(t, entry, 8)?.readBigUInt64LE(0) ?? null;
    // The entry being locked or unlocked is dealt with last, as pending.
    if (entry !== pending) futexDeath(t, U64(entry + offset), pi, false);
    if (next === null) return;
    entry = next & ~1n;
    pi = (next & 1n) !== 0n;
    if (--limit === 0) break;
  }
  if (pending !== 0n) futexDeath(t, U64(pending + offset), (pendingRaw & 1n) !== 0n, true);
}
