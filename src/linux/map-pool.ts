// Anonymous mappings the user-mode stub hands out again without an exit (kernel/dstub.c).
//
// Programs often map and unmap memory of one size over and over (glibc's opendir buffer when the
// heap is fragmented, large malloc blocks): each pair costs two exits here. When the host serves
// munmap of a whole private anonymous read-write mapping it made, it may keep the pages mapped
// and publish the region in a pool slot of the shared page as free; the stub then answers an
// mmap(NULL, same size, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) with it, zeroed, and
// the matching munmap by marking it free again.
//
// The price: memory the program has unmapped may stay readable and writable until the host
// reuses or reclaims it, where Linux would fault (the program can only reach its own zeroed
// pages). At most POOL_SLOTS regions of at most POOL_MAX_LEN bytes are kept.
//
// The host's copy of each slot's address and length is the truth; from the shared page it reads
// only the state (free or in use), and any state is safe: a pooled region is mapped read-write
// either way. Before the host changes a range by any other call (munmap, mprotect, mremap,
// mmap MAP_FIXED), it takes back the pooled regions overlapping it.
import type { GuestMemory } from '../machine/memory.js';
import { PAGE_SIZE } from '../machine/x86.js';
import type { AddressSpace } from './address-space.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from './address-space.js';
import { PHYS_SHARED, POOL_ADDR, POOL_LEN, POOL_MAX_LEN, POOL_SLOT_SIZE, POOL_SLOTS, POOL_STATE, SH_POOL } from '../abi/abi.generated.js';

const FREE = 1, USED = 2;
/** Anonymous mappings remembered as candidates (the most recent ones). */
const MAX_CANDIDATES = 64;

export class MapPool {
  private readonly slots: Array<{ addr: number; len: number } | null> = new Array<{ addr: number; len: number } | null>(POOL_SLOTS).fill(null);
  /** Private anonymous read-write mappings the host made, start -> length. */
  private readonly anon = new Map<number, number>();
  /** For tests and the bench profile. */
  readonly stats = { kept: 0, reclaimed: 0 };

  /** enabled: the program runs on the user-stub path without tracing. */
  constructor(private readonly mem: GuestMemory, readonly enabled: boolean) {}

  private slotAddr(i: number): number {
    return PHYS_SHARED + SH_POOL + i * POOL_SLOT_SIZE;
  }

  /** The host mapped [start, start+len) private, anonymous, read-write, where it chose. */
  noteAnonymous(start: number, len: number): void {
    if (!this.enabled || len > POOL_MAX_LEN) return;
    this.anon.set(start, len);
    if (this.anon.size > MAX_CANDIDATES) this.anon.delete(this.anon.keys().next().value!);
  }

  /** Before the host changes [start, start+len) otherwise: pooled regions there become ordinary again (free ones are unmapped). */
  reclaim(space: AddressSpace, start: number, len: number): void {
    if (!this.enabled) return;
    const end = start + len;
    for (const [a, l] of this.anon) if (a < end && start < a + l) this.anon.delete(a);
    for (let i = 0; i < POOL_SLOTS; i++) {
      const s = this.slots[i];
      if (!s || s.addr >= end || start >= s.addr + s.len) continue;
      if (this.mem.u32(this.slotAddr(i) + POOL_STATE) !== USED) space.unmap(s.addr, s.len);
      this.drop(i);
      this.stats.reclaimed++;
    }
  }

  private drop(i: number): void {
    this.slots[i] = null;
    this.mem.fill(this.slotAddr(i), POOL_SLOT_SIZE);
  }

  /**
   * munmap(start, len): when that is a whole mapping noted above, still read-write, keep it
   * mapped in a free slot instead; true when kept (the call then succeeds as it is).
   */
  keep(space: AddressSpace, start: number, len: number): boolean {
    if (!this.enabled || this.anon.get(start) !== len) return false;
    for (let a = start; a < start + len; a += PAGE_SIZE) {
      if ((space.paging.pageProt(a) & (PROT_READ | PROT_WRITE | PROT_EXEC)) !== (PROT_READ | PROT_WRITE)) return false;
    }
    let i = this.slots.indexOf(null);
    if (i < 0) {
      // Full: give back a free region.
      i = this.slots.findIndex((_, j) => this.mem.u32(this.slotAddr(j) + POOL_STATE) === FREE);
      if (i < 0) return false;
      const s = this.slots[i]!;
      space.unmap(s.addr, s.len);
      this.drop(i);
    }
    this.anon.delete(start);
    this.slots[i] = { addr: start, len };
    const a = this.slotAddr(i);
    this.mem.setU64(a + POOL_ADDR, BigInt(start));
    this.mem.setU32(a + POOL_LEN, len);
    this.mem.setU32(a + POOL_STATE, FREE);
    this.stats.kept++;
    return true;
  }
}
