// Futex wait queues (futex(2) between the tasks of a sandbox). A word is named by its address
// space and address, so private and shared futexes of one process are the same queue, as they
// are for a process without shared memory; a word in MAP_SHARED memory is named by its place in
// that memory instead, so that the processes that map it wait and wake on the same queue (as
// Linux's shared futexes, keyed by inode and offset). A waiter parks its task (WouldBlock) until
// a wake chooses it; a chosen waiter's call returns 0 even if the word changed meanwhile.
import { E } from '../abi/linux.js';
import { WouldBlock } from '../fs/open-file.js';
import type { AddressSpace } from './address-space.js';
import type { SharedBacking } from '../kvm/shared-memory.js';
import type { Task } from './task.js';

/** A futex word: the address space (or shared memory) it lies in, and its address (or offset) there. */
export interface FutexKey { readonly owner: AddressSpace | SharedBacking; readonly word: number }

/** The key of the word at addr of space. */
export function futexKey(space: AddressSpace, addr: number): FutexKey {
  const r = space.memory.sharedAt(addr);
  return r ? { owner: r.backing, word: r.offset + (addr - r.start) } : { owner: space, word: addr };
}

/** A parked task, on the queue of key (a requeue moves it); piOwner: the tid a FUTEX_LOCK_PI waits for. */
interface Waiter { task: Task; bitset: number; key: FutexKey; piOwner?: number }

export class FutexQueues {
  private readonly spaces = new Map<AddressSpace | SharedBacking, Map<number, Waiter[]>>();

  /**
   * FUTEX_WAIT (the caller checked the word): 0 when t was already woken, else t parks until a
   * wake chooses it or timeoutMs passes (ETIMEDOUT).
   */
  wait(t: Task, key: FutexKey, timeoutMs: number | null, bitset: number): number {
    if (t.futexWoken) {
      t.futexWoken = false;
      return 0;
    }
    const entry: Waiter = { task: t, bitset, key };
    this.queue(key).push(entry);
    const leave = (): void => this.remove(entry);
    throw new WouldBlock('it waits on a futex', () => t.futexWoken,
      timeoutMs === null ? undefined : { at: performance.now() + timeoutMs, result: () => -E.ETIMEDOUT }, leave);
  }

  /**
   * FUTEX_LOCK_PI's wait for the holder owner (the caller set FUTEX_WAITERS): t parks until an
   * unlock hands it the lock (futexWoken), the holder ends without unlocking (piOwnerGone), or
   * timeoutMs passes (ETIMEDOUT).
   */
  waitPi(t: Task, key: FutexKey, timeoutMs: number | null, owner: number): number {
    const entry: Waiter = { task: t, bitset: -1, key, piOwner: owner };
    this.queue(key).push(entry);
    const leave = (): void => this.remove(entry);
    throw new WouldBlock('it waits for a PI futex', () => t.futexWoken || t.piOwnerGone,
      timeoutMs === null ? undefined : { at: performance.now() + timeoutMs, result: () => -E.ETIMEDOUT }, leave);
  }

  /** FUTEX_UNLOCK_PI: the first waiter on key, now the lock's owner (futexWoken), and whether others still wait; null when none waits. */
  handOver(key: FutexKey): { task: Task; more: boolean } | null {
    const q = this.spaces.get(key.owner)?.get(key.word);
    const e = q?.shift();
    if (!q || !e) return null;
    e.task.futexWoken = true;
    if (q.length === 0) this.drop(key);
    return { task: e.task, more: q.length > 0 };
  }

  /** Whether a task waits on key. */
  hasWaiters(key: FutexKey): boolean {
    return (this.spaces.get(key.owner)?.get(key.word)?.length ?? 0) > 0;
  }

  /** Task tid ended: those waiting in FUTEX_LOCK_PI for it leave their queues to take the lock over. */
  ownerEnded(tid: number): void {
    for (const words of this.spaces.values()) {
      for (const q of words.values()) {
        for (const e of q.filter((w) => w.piOwner === tid)) {
          e.task.piOwnerGone = true;
          this.remove(e);
        }
      }
    }
  }

  private remove(entry: Waiter): void {
    const list = this.spaces.get(entry.key.owner)?.get(entry.key.word);
    const i = list?.indexOf(entry) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list?.length === 0) this.drop(entry.key);
  }

  /**
   * Wake up to n waiters on the word key whose bitset meets bitset; with requeue, move up to
   * requeue.n of the rest to the word requeue.key. Returns how many were woken and moved.
   */
  wake(key: FutexKey, n: number, bitset: number, requeue?: { key: FutexKey; n: number }): number {
    const space = key.owner, addr = key.word;
    const words = this.spaces.get(space);
    const q = words?.get(addr);
    if (!words || !q) return 0;
    let woken = 0;
    for (let i = 0; i < q.length && woken < n;) {
      const e = q[i]!;
      if ((e.bitset & bitset) === 0) { i++; continue; }
      q.splice(i, 1);
      e.task.futexWoken = true;
      woken++;
    }
    let moved = 0;
    if (requeue && (requeue.key.owner !== space || requeue.key.word !== addr) && q.length > 0 && requeue.n > 0) {
      const to = this.queue(requeue.key);
      while (q.length > 0 && moved < requeue.n) {
        const e = q.shift()!;
        e.key = requeue.key;
        to.push(e);
        moved++;
      }
    }
    if (q.length === 0) this.drop(key);
    return woken + moved;
  }

  private queue(key: FutexKey): Waiter[] {
    let words = this.spaces.get(key.owner);
    if (!words) this.spaces.set(key.owner, words = new Map());
    let q = words.get(key.word);
    if (!q) words.set(key.word, q = []);
    return q;
  }

  private drop(key: FutexKey): void {
    const words = this.spaces.get(key.owner);
    words?.delete(key.word);
    if (words?.size === 0) this.spaces.delete(key.owner);
  }

  /** The address space is gone (its last process ended or exec'd): its queues with it. */
  forget(space: AddressSpace): void {
    this.spaces.delete(space);
  }
}
