// Guest physical memory as seen by the host: views over the memslot's mapping, with every access
// bounds-checked. Nothing outside this class indexes the raw buffers, so a guest-supplied address
// or length can never reach host memory outside the guest.
import type { MemoryRegion } from '../kvm/kvm.js';
import type { SharedBacking } from '../kvm/shared-memory.js';
import { USER_BASE } from '../abi/abi.generated.js';

/** A guest address range does not lie inside guest memory. */
export class GuestMemoryRangeError extends RangeError {
  constructor(readonly address: number, readonly length: number, size: number, why = `is outside guest memory (0x${size.toString(16)} bytes)`) {
    super(`guest range 0x${address.toString(16)}+0x${length.toString(16)} ${why}`);
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

/**
 * Node 20 makes no ArrayBuffer over host memory larger than 4 GiB (N-API aborts), so memory
 * larger than that is seen through windows of WINDOW_BYTES that start every WINDOW_STEP bytes
 * and overlap by half: any range of at most WINDOW_STEP bytes lies whole in the window where it
 * starts, so a live slice of it is still one Buffer. The windows alias the same host pages and
 * cost no memory. MAX_SLICE_BYTES is the longest live slice; system calls move at most
 * MAX_RW_COUNT (2 GiB - 4 KiB) at a time, and the bulk copies below go in pieces.
 */
const WINDOW_BYTES = 4 * 1024 ** 3;
const WINDOW_STEP = 2 * 1024 ** 3;
export const MAX_SLICE_BYTES = WINDOW_STEP;
/** Bulk operations (copies, fills) work in pieces of this many bytes. */
export const PIECE_BYTES = 64 * 1024 ** 2;

/** One window: a Buffer and a DataView over [start, start + bytes.length) of a view's memory. */
interface Window {
  readonly start: number;
  readonly bytes: Buffer;
  readonly view: DataView;
}

export class GuestMemory {
  readonly size: number;
  /**
   * Windows onto this view's own mapping (see WINDOW_BYTES), made when first used: one for
   * memory up to 4 GiB. Of a process's view (with low), only [USER_BASE, size) is guest memory.
   */
  private readonly windows: Array<Window | undefined>;
  private readonly single: boolean;
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
    this.single = region.size <= WINDOW_BYTES;
    this.windows = new Array<Window | undefined>(this.single ? 1 : Math.ceil(region.size / WINDOW_STEP));
    this.floor = low ? USER_BASE : 0;
  }

  /** The window that holds [address, address + length) of this view's own memory (checked by the caller). */
  private window(address: number, length: number): Window {
    const k = this.single ? 0 : Math.floor(address / WINDOW_STEP);
    if (!this.single && length > WINDOW_STEP) {
      throw new GuestMemoryRangeError(address, length, this.size, `is longer than a live slice may be (${MAX_SLICE_BYTES} bytes in memory over 4 GiB)`);
    }
    let w = this.windows[k];
    if (w === undefined) {
      const start = k * WINDOW_STEP;
      const buffer = this.region.view(start, Math.min(WINDOW_BYTES, this.size - start));
      w = this.windows[k] = { start, bytes: Buffer.from(buffer), view: new DataView(buffer) };
    }
    return w;
  }

  /** The window holding [address, address + length), of this view or of low (checked). */
  private win(address: number, length: number): Window {
    return this.at(address, length).window(address, length);
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

  /** A live (no-copy) window onto guest memory, of at most MAX_SLICE_BYTES where memory is larger than 4 GiB. */
  slice(address: number, length: number): Buffer {
    const w = this.win(address, length);
    return w.bytes.subarray(address - w.start, address - w.start + length);
  }

  /** Copy length bytes from src to dest (both ranges checked; they may overlap). */
  copyWithin(dest: number, src: number, length: number): void {
    this.check(src, length);
    this.check(dest, length);
    if (length <= PIECE_BYTES) { this.slice(src, length).copy(this.slice(dest, length)); return; }
    // In pieces, in the order that reads each byte before it is overwritten.
    const pieces = Math.ceil(length / PIECE_BYTES);
    for (let i = 0; i < pieces; i++) {
      const k = dest > src ? pieces - 1 - i : i;
      const off = k * PIECE_BYTES, n = Math.min(PIECE_BYTES, length - off);
      this.slice(src + off, n).copy(this.slice(dest + off, n));
    }
  }

  /** Copy length bytes at address of this memory to the same address of dest (both checked). */
  copyTo(dest: GuestMemory, address: number, length: number): void {
    this.check(address, length);
    dest.check(address, length);
    for (let off = 0; off < length; off += PIECE_BYTES) {
      const n = Math.min(PIECE_BYTES, length - off);
      this.slice(address + off, n).copy(dest.slice(address + off, n));
    }
  }

  /** A live window of `count` 32-bit words at a 4-byte aligned address (page tables). */
  words32(address: number, count: number): Uint32Array {
    if (address % 4) throw new GuestMemoryRangeError(address, count * 4, this.size);
    const b = this.slice(address, count * 4);
    return new Uint32Array(b.buffer, b.byteOffset, count);
  }

  /** A copy of [address, address+length), in a buffer of its own (not the small-buffer pool). */
  read(address: number, length: number): Buffer {
    this.check(address, length);
    const copy = Buffer.allocUnsafeSlow(length);
    for (let off = 0; off < length; off += PIECE_BYTES) {
      const n = Math.min(PIECE_BYTES, length - off);
      this.slice(address + off, n).copy(copy, off);
    }
    return copy;
  }

  write(address: number, data: Uint8Array): void {
    this.check(address, data.length);
    for (let off = 0; off < data.length; off += PIECE_BYTES) {
      const n = Math.min(PIECE_BYTES, data.length - off);
      this.slice(address + off, n).set(data.subarray(off, off + n));
    }
  }

  fill(address: number, length: number, value = 0): void {
    this.check(address, length);
    for (let off = 0; off < length; off += PIECE_BYTES) this.slice(address + off, Math.min(PIECE_BYTES, length - off)).fill(value);
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
        this.fill(address + i * 4096, (j - i) * 4096);
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

  /** Per page of the page-aligned [address, address+length): 1 when the host holds it (mincore), else 0. */
  residency(address: number, length: number): Uint8Array {
    const mem = this.at(address, length);
    const vec = new Uint8Array(length / 4096);
    mem.region.residency(address, length, vec);
    for (let i = 0; i < vec.length; i++) vec[i]! &= 1;
    return vec;
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
    // One record with a neighbour that maps the backing's bytes just before or after these (a
    // mapping filled piece by piece is one range, as mremap wants it).
    const joins = (r: SharedRange, start: number, off: number) => r.backing === backing && r.copyOnWrite === copyOnWrite && r.start + (off - r.offset) === start;
    const before = this.sharedRanges.find((r) => r.end === address && joins(r, address, offset));
    const after = this.sharedRanges.find((r) => r.start === address + length && joins(r, address + length, offset + length));
    const replace = (old: SharedRange, by: SharedRange) => { this.sharedRanges[this.sharedRanges.indexOf(old)] = by; };
    if (before && after) {
      replace(before, { ...before, end: after.end });
      this.sharedRanges.splice(this.sharedRanges.indexOf(after), 1);
      after.backing.release();
    } else if (before) replace(before, { ...before, end: address + length });
    else if (after) replace(after, { ...after, start: address, offset });
    else {
      this.sharedRanges.push({ start: address, end: address + length, backing: backing.hold(), offset, copyOnWrite });
      this.sharedRanges.sort((a, b) => a.start - b.start);
    }
  }

  /** The ranges of this view that map backing's bytes. */
  rangesOf(backing: SharedBacking): Array<{ start: number; end: number }> {
    return this.sharedRanges.filter((r) => r.backing === backing).map((r) => ({ start: r.start, end: r.end }));
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

  u8(a: number): number { const w = this.win(a, 1); return w.view.getUint8(a - w.start); }
  u16(a: number): number { const w = this.win(a, 2); return w.view.getUint16(a - w.start, true); }
  u32(a: number): number { const w = this.win(a, 4); return w.view.getUint32(a - w.start, true); }
  u64(a: number): bigint { const w = this.win(a, 8); return w.view.getBigUint64(a - w.start, true); }
  setU8(a: number, v: number): void { const w = this.win(a, 1); w.view.setUint8(a - w.start, v); }
  setU16(a: number, v: number): void { const w = this.win(a, 2); w.view.setUint16(a - w.start, v, true); }
  setU32(a: number, v: number): void { const w = this.win(a, 4); w.view.setUint32(a - w.start, v >>> 0, true); }
  setU64(a: number, v: bigint): void { const w = this.win(a, 8); w.view.setBigUint64(a - w.start, BigInt.asUintN(64, v), true); }
  setI64(a: number, v: number | bigint): void { this.setU64(a, BigInt(v)); }

  /** Read a NUL-terminated string of at most maxLength bytes; null if no NUL within reach. */
  cstring(address: number, maxLength: number): Buffer | null {
    if (!this.contains(address, 0)) return null;
    if (address < this.floor) return this.low!.cstring(address, Math.min(maxLength, this.floor - address));
    const reach = Math.min(this.size - address, maxLength, this.single ? Infinity : WINDOW_STEP);
    const within = this.slice(address, reach);
    const nul = within.indexOf(0);
    if (nul < 0) return null;
    return Buffer.from(within.subarray(0, nul));
  }
}
