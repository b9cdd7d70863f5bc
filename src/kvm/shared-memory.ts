// Host memory that several guest address spaces map at once (MAP_SHARED between processes): a
// memfd that only kvmbox holds; the guest never gets its descriptor. No one else can truncate it,
// so a host access through a mapping of it never faults (SIGBUS), as one through a mapping of a
// host file could when that file shrinks. It never shrinks either: a smaller size asked for is
// the caller's to record (the pages beyond are zeroed, not taken away).
import * as libc from './libc.js';

/**
 * What the shared memory of one sandbox may hold in all: bytes (its --memory), and backings,
 * each a host descriptor (a sandbox must not use up the host process's descriptors).
 */
export interface SharedBudget { used: number; readonly limit: number; count: number; readonly maxCount: number }

/** Backings one sandbox may hold at once (Linux's limit on mappings, vm.max_map_count, is 65530). */
export const MAX_SHARED_BACKINGS = 1024;

export class SharedBacking {
  private holders = 1;
  private constructor(readonly fd: number, private bytes: number, private readonly budget: SharedBudget) {}

  /** A new backing of size bytes (zero), held once; null when the budget has no room for it. */
  static create(size: number, budget: SharedBudget): SharedBacking | null {
    if (budget.used + size > budget.limit || budget.count >= budget.maxCount) return null;
    const fd = libc.memfdCreate('kvmbox-shared');
    if (libc.ftruncate(fd, BigInt(size)) < 0) {
      libc.closeFd(fd);
      return null;
    }
    budget.used += size;
    budget.count++;
    return new SharedBacking(fd, size, budget);
  }

  /**
   * A sealed copy of data (a program's or library's file), held once; null when the budget has
   * no room. Its size is data's rounded up to whole pages (the tail is zero), and nothing can
   * change its bytes or size afterwards (memfd seals): mappings of it are private (copy on write).
   */
  static sealedCopy(data: Uint8Array, budget: SharedBudget): SharedBacking | null {
    const size = Math.ceil(data.length / 4096) * 4096;
    if (size === 0 || budget.used + size > budget.limit || budget.count >= budget.maxCount) return null;
    const fd = libc.memfdCreate('kvmbox-image', true);
    try {
      const t = libc.ftruncate(fd, BigInt(size));
      if (t < 0) throw new libc.SysError('ftruncate', -t);
      for (let done = 0; done < data.length;) {
        const r = libc.pwrite(fd, data.subarray(done), BigInt(done));
        if (r <= 0) throw new libc.SysError('pwrite', -r);
        done += r;
      }
      libc.addSeals(fd, libc.F_SEAL_SHRINK | libc.F_SEAL_GROW | libc.F_SEAL_WRITE | libc.F_SEAL_SEAL);
    } catch (e) {
      libc.closeFd(fd);
      throw e;
    }
    budget.used += size;
    budget.count++;
    return new SharedBacking(fd, size, budget);
  }

  get size(): number { return this.bytes; }

  /** Grow to at least size bytes (new bytes are zero); false when the budget has no room. */
  grow(size: number): boolean {
    if (size <= this.bytes) return true;
    if (this.budget.used + size - this.bytes > this.budget.limit) return false;
    if (libc.ftruncate(this.fd, BigInt(size)) < 0) return false;
    this.budget.used += size - this.bytes;
    this.bytes = size;
    return true;
  }

  /** One more holder (a mapping, an open file, a name). */
  hold(): this {
    if (this.holders <= 0) throw new Error('kvmbox: internal error: a released shared backing held again');
    this.holders++;
    return this;
  }

  /** One holder fewer; the last one's release frees the memory. */
  release(): void {
    if (--this.holders > 0) return;
    if (this.holders < 0) throw new Error('kvmbox: internal error: a shared backing released twice');
    this.budget.used -= this.bytes;
    this.budget.count--;
    libc.closeFd(this.fd);
  }
}
