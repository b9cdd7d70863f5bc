// Futex wait queues (futex(2) between the tasks of a sandbox). A queue is keyed by address space
// and word address, so private and shared futexes of one process are the same queue, as they
// are for a process without shared memory. A waiter parks its task (WouldBlock) until a wake
// chooses it; a chosen waiter's call returns 0 even if the word changed meanwhile.
import { E } from '../abi/linux.js';
import { WouldBlock } from '../fs/open-file.js';
import type { AddressSpace } from './address-space.js';
import type { Task } from './task.js';

interface Waiter { task: Task; bitset: number }

export class FutexQueues {
  private readonly spaces = new Map<AddressSpace, Map<number, Waiter[]>>();

  /**
   * FUTEX_WAIT (the caller checked the word): 0 when t was already woken, else t parks until a
   * wake chooses it or timeoutMs passes (ETIMEDOUT).
   */
  wait(t: Task, addr: number, timeoutMs: number | null, bitset: number): number {
    if (t.futexWoken) {
      t.futexWoken = false;
      return 0;
    }
    const space = t.process.space;
    let words = this.spaces.get(space);
    if (!words) this.spaces.set(space, words = new Map());
    let q = words.get(addr);
    if (!q) words.set(addr, q = []);
    const entry = { task: t, bitset };
    q.push(entry);
    const leave = (): void => {
      const list = this.spaces.get(space)?.get(addr);
      const i = list?.indexOf(entry) ?? -1;
      if (list && i >= 0) list.splice(i, 1);
    };
    throw new WouldBlock('it waits on a futex', () => t.futexWoken,
      timeoutMs === null ? undefined : { at: performance.now() + timeoutMs, result: () => -E.ETIMEDOUT }, leave);
  }

  /**
   * Wake up to n waiters on addr in space whose bitset meets bitset; with requeue, move up to
   * requeue.n of the rest to requeue.addr. Returns how many were woken and moved.
   */
  wake(space: AddressSpace, addr: number, n: number, bitset: number, requeue?: { addr: number; n: number }): number {
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
    if (requeue && requeue.addr !== addr) {
      let to = words.get(requeue.addr);
      if (!to) words.set(requeue.addr, to = []);
      while (q.length > 0 && moved < requeue.n) {
        to.push(q.shift()!);
        moved++;
      }
    }
    if (q.length === 0) words.delete(addr);
    return woken + moved;
  }

  /** The address space is gone (its last process ended or exec'd): its queues with it. */
  forget(space: AddressSpace): void {
    this.spaces.delete(space);
  }
}
