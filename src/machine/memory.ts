// Guest physical memory as seen by the host: one view over the memslot's mapping, with every
// access bounds-checked. Nothing outside this class indexes the raw buffer, so a guest-supplied
// address or length can never reach host memory outside the guest.
import type { MemoryRegion } from '../kvm/kvm.js';

/** A guest address range does not lie inside guest memory. */
export class GuestMemoryRangeError extends RangeError {
  constructor(readonly address: number, readonly length: number, size: number) {
    super(`guest range 0x${address.toString(16)}+0x${length.toString(16)} is outside guest memory (0x${size.toString(16)} bytes)`);
    this.name = 'GuestMemoryRangeError';
  }
}

/** Runs of at least this many resident pages are released rather than cleared on reset. */
const RELEASE_RUN_PAGES = 1024;

export class GuestMemory {
  readonly size: number;
  readonly bytes: Buffer;
  private readonly view: DataView;

  constructor(private readonly region: MemoryRegion) {
    this.size = region.size;
    this.bytes = Buffer.from(region.mapping.buffer, 0, region.size);
    this.view = new DataView(region.mapping.buffer, 0, region.size);
  }

  /** True when [address, address+length) lies inside guest memory. */
  contains(address: number, length: number): boolean {
    return Number.isSafeInteger(address) && Number.isSafeInteger(length) && address >= 0 && length >= 0 &&
      address + length <= this.size;
  }

  check(address: number, length: number): void {
    if (!this.contains(address, length)) throw new GuestMemoryRangeError(address, length, this.size);
  }

  /** A live (no-copy) window onto guest memory. */
  slice(address: number, length: number): Buffer {
    this.check(address, length);
    return this.bytes.subarray(address, address + length);
  }

  /** A live window of `count` 32-bit words at a 4-byte aligned address (page tables). */
  words32(address: number, count: number): Uint32Array {
    this.check(address, count * 4);
    if (address % 4) throw new GuestMemoryRangeError(address, count * 4, this.size);
    return new Uint32Array(this.bytes.buffer, this.bytes.byteOffset + address, count);
  }

  /** A copy of [address, address+length), in a buffer of its own (not the small-buffer pool). */
  read(address: number, length: number): Buffer {
    const copy = Buffer.allocUnsafeSlow(length);
    this.slice(address, length).copy(copy);
    return copy;
  }

  write(address: number, data: Uint8Array): void {
    this.check(address, data.length);
    this.bytes.set(data, address);
  }

  fill(address: number, length: number, value = 0): void {
    this.slice(address, length).fill(value);
  }

  /** Return pages to the host (they read as zero after). Page-aligned range. */
  discard(address: number, length: number): void {
    this.check(address, length);
    this.region.discard(address, length);
  }

  /**
   * Zero every page of [address, address+length) that the host has in memory; the rest already
   * reads as zero. Short runs are cleared in place (they stay resident, so the next program does
   * not pay for first touches again); long runs are given back to the host, so an idle machine
   * does not hold on to a large program's memory. Returns the page runs [start, end) kept in
   * place (page numbers of guest memory).
   */
  zeroResident(address: number, length: number): Array<[number, number]> {
    const kept: Array<[number, number]> = [];
    this.check(address, length);
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
    this.check(address, length);
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
    this.check(address, length);
    this.region.dropTranslations(address, length);
  }

  /** Bytes of guest memory the host currently holds (pages touched by guest or host). */
  residentBytes(): number {
    const pages = this.size / 4096;
    const vec = new Uint8Array(pages);
    this.region.residency(0, this.size, vec);
    let n = 0;
    for (let i = 0; i < pages; i++) n += vec[i]! & 1;
    return n * 4096;
  }

  u8(a: number): number { this.check(a, 1); return this.view.getUint8(a); }
  u16(a: number): number { this.check(a, 2); return this.view.getUint16(a, true); }
  u32(a: number): number { this.check(a, 4); return this.view.getUint32(a, true); }
  u64(a: number): bigint { this.check(a, 8); return this.view.getBigUint64(a, true); }
  setU8(a: number, v: number): void { this.check(a, 1); this.view.setUint8(a, v); }
  setU16(a: number, v: number): void { this.check(a, 2); this.view.setUint16(a, v, true); }
  setU32(a: number, v: number): void { this.check(a, 4); this.view.setUint32(a, v >>> 0, true); }
  setU64(a: number, v: bigint): void { this.check(a, 8); this.view.setBigUint64(a, BigInt.asUintN(64, v), true); }
  setI64(a: number, v: number | bigint): void { this.setU64(a, BigInt(v)); }

  /** Read a NUL-terminated string of at most maxLength bytes; null if no NUL within reach. */
  cstring(address: number, maxLength: number): Buffer | null {
    if (!this.contains(address, 0)) return null;
    const end = Math.min(this.size, address + maxLength);
    const nul = this.bytes.subarray(address, end).indexOf(0);
    if (nul < 0) return null;
    return Buffer.from(this.bytes.subarray(address, address + nul));
  }
}
