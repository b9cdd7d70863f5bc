// Guest physical memory as seen by the host: one view over the memslot's mapping, with every
// access bounds-checked. Nothing outside this class indexes the raw buffer, so a guest-supplied
// address or length can never reach host memory outside the guest.
import type { MemoryRegion } from '../kvm/kvm.js';
import type { SharedBacking } from '../kvm/shared-memory.js';
import { USER_BASE } from '../abi/abi.generated.js';

/** A guest address range does not lie inside guest memory. */
export class GuestMemoryRangeError extends RangeError {
  constructor(readonly address: number, readonly length: number, size: number) {
    super(`guest range 0x${address.toString(16)}+0x${length.toString(16)} is outside guest memory (0x${size.toString(16)} bytes)`);
    this.name = 'GuestMemoryRangeError';
  }
}

/**
 * Pages [start, end) of a view (byte addresses) that are a backing's, from its byte offset:
 * shared with every other mapping of it, or (copyOnWrite) an image's pages that this view
 * has not written (see privatize).
 */
export interface SharedRange {
  readonly start: number;
  readonly end: number;
  readonly backing: SharedBacking;
  readonly offset: number;
  readonly copyOnWrite: boolean;
}

/** Runs of at least this many resident pages are released rather than cleared on reset. */
const RELEASE_RUN_PAGES = 1024;

export class GuestMemory {
  readonly size: number;
  /** The whole of this view's own mapping. Of a process's view (with low), only [USER_BASE, size) is guest memory. */
  readonly bytes: Buffer;
  private readonly view: DataView;
  /** The first address of this view's own memory: 0, or USER_BASE for a process's (below it: low's). */
  private readonly floor: number;
  /** The ranges of this view's own memory that are shared host memory (share), sorted, disjoint; each holds its backing once. */
  private sharedRanges: SharedRange[] = [];

  /**
   * The memory of region. With low: the memory of one process's address space
   * (Machine.newSpace), where the addresses below USER_BASE are low's (the kernel's and the stub's
   * pages, the same for every process) and the others this region's; a range may not straddle
   * USER_BASE.
   */
  constructor(private readonly region: MemoryRegion, private readonly low: GuestMemory | null = null) {
    this.size = region.size;
    this.bytes = Buffer.from(region.mapping.buffer, 0, region.size);
    this.view = new DataView(region.mapping.buffer, 0, region.size);
    this.floor = low ? USER_BASE : 0;
  }

  /** True when [address, address+length) lies inside guest memory. */
  contains(address: number, length: number): boolean {
    return Number.isSafeInteger(address) && Number.isSafeInteger(length) && address >= 0 && length >= 0 &&
      address + length <= this.size && (this.low === null || address >= USER_BASE || address + length <= USER_BASE);
  }

  check(address: number, length: number): void {
    if (!this.contains(address, length)) throw new GuestMemoryRangeError(address, length, this.size);
  }

  /** The view that holds [address, address+length): this one, or low below USER_BASE (checked). */
  private at(address: number, length: number): GuestMemory {
    this.check(address, length);
    return address < this.floor ? this.low! : this;
  }

  /** A live (no-copy) window onto guest memory. */
  slice(address: number, length: number): Buffer {
    const m = this.at(address, length);
    return m.bytes.subarray(address, address + length);
  }

  /** Copy length bytes from src to dest (both ranges checked; they may overlap). */
  copyWithin(dest: number, src: number, length: number): void {
    this.slice(src, length).copy(this.slice(dest, length));
  }

  /** A live window of `count` 32-bit words at a 4-byte aligned address (page tables). */
  words32(address: number, count: number): Uint32Array {
    const m = this.at(address, count * 4);
    if (address % 4) throw new GuestMemoryRangeError(address, count * 4, this.size);
    return new Uint32Array(m.bytes.buffer, m.bytes.byteOffset + address, count);
  }

  /** A copy of [address, address+length), in a buffer of its own (not the small-buffer pool). */
  read(address: number, length: number): Buffer {
    const copy = Buffer.allocUnsafeSlow(length);
    this.slice(address, length).copy(copy);
    return copy;
  }

  write(address: number, data: Uint8Array): void {
    this.at(address, data.length).bytes.set(data, address);
  }

  fill(address: number, length: number, value = 0): void {
    this.slice(address, length).fill(value);
  }

  /** Return pages to the host (they read as zero after). Page-aligned range. */
  discard(address: number, length: number): void {
    this.at(address, length).region.discard(address, length);
  }

  /**
   * Zero every page of [address, address+length) that the host has in memory; the rest already
   * reads as zero. Short runs are cleared in place (they stay resident, so the next program does
   * not pay for first touches again); long runs are given back to the host, so an idle machine
   * does not hold on to a large program's memory. Returns the page runs [start, end) kept in
   * place (page numbers of guest memory).
   */
  zeroResident(address: number, length: number): Array<[number, number]> {
    if (this.at(address, length) !== this) return this.low!.zeroResident(address, length);
    const kept: Array<[number, number]> = [];
    const pages = length / 4096;
    const vec = new Uint8Array(pages);
    this.region.residency(address, length, vec);
    // mincore gives 1 for a resident page, 0 otherwise: find runs at memchr speed.
    let i = vec.indexOf(1);
    while (i >= 0 && i < pages) {
      let j = vec.indexOf(0, i);
      if (j < 0) j = pages;
      if (j - i >= RELEASE_RUN_PAGES) this.discard(address + i * 4096, (j - i) * 4096);
      else {
        this.bytes.fill(0, address + i * 4096, address + j * 4096);
        kept.push([address / 4096 + i, address / 4096 + j]);
      }
      i = vec.indexOf(1, j);
    }
    return kept;
  }

  /**
   * The runs [first, end) of pages (page numbers of guest memory) in [address, address+length)
   * that the host holds: pages never touched, or given back, read as zero and need no copy.
   */
  residentRuns(address: number, length: number): Array<[number, number]> {
    if (this.at(address, length) !== this) return this.low!.residentRuns(address, length);
    const pages = length / 4096;
    const vec = new Uint8Array(pages);
    this.region.residency(address, length, vec);
    const runs: Array<[number, number]> = [];
    let i = vec.indexOf(1);
    while (i >= 0 && i < pages) {
      let j = vec.indexOf(0, i);
      if (j < 0) j = pages;
      runs.push([address / 4096 + i, address / 4096 + j]);
      i = vec.indexOf(1, j);
    }
    return runs;
  }

  /**
   * Make KVM drop its translations of [address, address+length), keeping the pages and their
   * contents (see MemoryRegion.dropTranslations). Page-aligned range.
   */
  dropTranslations(address: number, length: number): void {
    this.at(address, length).region.dropTranslations(address, length);
  }

  /**
   * Make the page-aligned [address, address+length) of this view's own memory the backing's
   * bytes from offset, shared with every other view (of this or another address space) that
   * maps them. What was there is dropped.
   */
  share(address: number, length: number, backing: SharedBacking, offset: number, copyOnWrite = false): void {
    if (this.at(address, length) !== this || address % 4096 || length % 4096 || length <= 0 || offset + length > backing.size) {
      throw new GuestMemoryRangeError(address, length, this.size);
    }
    this.unshare(address, length);
    this.region.shareFrom(address, length, backing.fd, offset, copyOnWrite);
    const r: SharedRange = { start: address, end: address + length, backing: backing.hold(), offset, copyOnWrite };
    this.sharedRanges.push(r);
    this.sharedRanges.sort((a, b) => a.start - b.start);
  }

  /** Make what is shared in [address, address+length) private zero pages again. */
  unshare(address: number, length: number): void {
    if (this.sharedRanges.length === 0) return;
    const lo = address, hi = address + length;
    for (const r of this.sharedRanges) {
      if (r.end <= lo || r.start >= hi) continue;
      const a = Math.max(r.start, lo), b = Math.min(r.end, hi);
      this.region.unshare(a, b - a);
    }
    this.forget(lo, hi);
  }

  /** Drop the records of shared ranges within [lo, hi), whose pages are no longer the backings'. */
  private forget(lo: number, hi: number): void {
    const kept: SharedRange[] = [];
    for (const r of this.sharedRanges) {
      if (r.end <= lo || r.start >= hi) { kept.push(r); continue; }
      if (r.start < lo) kept.push({ ...r, end: lo, backing: r.backing.hold() });
      if (r.end > hi) kept.push({ ...r, start: hi, backing: r.backing.hold(), offset: r.offset + (hi - r.start) });
      r.backing.release();
    }
    this.sharedRanges = kept;
  }

  /**
   * Make the image pages (copyOnWrite ranges) of [address, address+length) ordinary private
   * memory with the same bytes: before they may become writable, so that every image range
   * stays as its backing holds it (a fork's child maps the backing again instead of copying).
   */
  privatize(address: number, length: number): void {
    const lo = address, hi = address + length;
    for (const r of [...this.sharedRanges]) {
      if (!r.copyOnWrite || r.end <= lo || r.start >= hi) continue;
      const a = Math.max(r.start, lo), b = Math.min(r.end, hi);
      // In one step: another vCPU may be running these pages.
      this.region.replace(a, this.read(a, b - a));
      this.forget(a, b);
    }
  }

  /** Make all of this view's shared memory private zero pages again. */
  unshareAll(): void {
    if (this.sharedRanges.length) this.unshare(this.floor, this.size - this.floor);
  }

  /** This view's shared ranges, sorted by address. */
  get shared(): readonly SharedRange[] { return this.sharedRanges; }

  /** The shared range that holds address, or null. */
  sharedAt(address: number): SharedRange | null {
    for (const r of this.sharedRanges) if (address >= r.start && address < r.end) return r;
    return null;
  }

  /** Bytes of guest memory the host currently holds (pages touched by guest or host), in this view's own memory. */
  residentBytes(): number {
    const pages = (this.size - this.floor) / 4096;
    const vec = new Uint8Array(pages);
    this.region.residency(this.floor, this.size - this.floor, vec);
    let n = 0;
    for (let i = 0; i < pages; i++) n += vec[i]! & 1;
    return n * 4096;
  }

  u8(a: number): number { return this.at(a, 1).view.getUint8(a); }
  u16(a: number): number { return this.at(a, 2).view.getUint16(a, true); }
  u32(a: number): number { return this.at(a, 4).view.getUint32(a, true); }
  u64(a: number): bigint { return this.at(a, 8).view.getBigUint64(a, true); }
  setU8(a: number, v: number): void { this.at(a, 1).view.setUint8(a, v); }
  setU16(a: number, v: number): void { this.at(a, 2).view.setUint16(a, v, true); }
  setU32(a: number, v: number): void { this.at(a, 4).view.setUint32(a, v >>> 0, true); }
  setU64(a: number, v: bigint): void { this.at(a, 8).view.setBigUint64(a, BigInt.asUintN(64, v), true); }
  setI64(a: number, v: number | bigint): void { this.setU64(a, BigInt(v)); }

  /** Read a NUL-terminated string of at most maxLength bytes; null if no NUL within reach. */
  cstring(address: number, maxLength: number): Buffer | null {
    if (!this.contains(address, 0)) return null;
    if (address < this.floor) return this.low!.cstring(address, Math.min(maxLength, this.floor - address));
    const end = Math.min(this.size, address + maxLength);
    const nul = this.bytes.subarray(address, end).indexOf(0);
    if (nul < 0) return null;
    return Buffer.from(this.bytes.subarray(address, address + nul));
  }
}
