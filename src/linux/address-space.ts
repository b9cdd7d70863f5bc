// The program's view of memory: where the image, the heap (brk), mmap regions and the stack lie.
// Pages are identity-mapped within the address space's memory (see src/machine/paging.ts); the
// per-page permission table is the only record of what is mapped, and memory given back is
// discarded on the host at once (or, after an execve, zeroed when mapped again), so an unmapped
// page always reads as zero when it is mapped again.
import type { GuestMemory } from '../machine/memory.js';
import type { SpaceMemory, UserImage } from '../machine/machine.js';
import { CommitLimitError, PAGE_MAPPED, PageTables, PROT_EXEC, PROT_READ, PROT_WRITE } from '../machine/paging.js';
import { alignDown, alignUp, PAGE_SIZE } from '../machine/x86.js';
import { E, Errno } from '../abi/linux.js';

export { PROT_EXEC, PROT_READ, PROT_WRITE };

/**
 * ranges without [lo, hi): what of each lies outside it. A range with a file offset keeps the
 * offset of its new start.
 */
function cutOut<T extends { start: number; end: number; offset?: number }>(ranges: readonly T[], lo: number, hi: number): T[] {
  const kept: T[] = [];
  for (const r of ranges) {
    if (r.end <= lo || r.start >= hi) kept.push(r);
    else {
      if (r.start < lo) kept.push({ ...r, end: lo });
      if (r.end > hi) kept.push(r.offset === undefined ? { ...r, start: hi } : { ...r, start: hi, offset: r.offset + (hi - r.start) });
    }
  }
  return kept;
}
const PROT_MASK = PROT_READ | PROT_WRITE | PROT_EXEC;

/**
 * The file an mmap'ed range maps (src/linux/syscalls/mm.ts makes these): its size now, and its
 * bytes put into place, for pages that lay past its end once it has grown over them, for what
 * mremap adds and for MADV_DONTNEED over copies. Held (the open file kept) by each address space
 * that maps it.
 */
export interface MapSource {
  /** The file's size now, in bytes. */
  size(): number;
  /**
   * Map [start, start+len) of space, which maps the file from offset, with the file's bytes
   * there and then rights prot; false (nothing mapped) when memory for them runs out.
   */
  fill(space: AddressSpace, start: number, len: number, offset: number, prot: number): boolean;
  hold(): void;
  release(): void;
}

/**
 * Pages of a file mapping not filled yet: past the file's end, or not read yet (a large
 * read-only mapping). Mapped PROT_NONE (reserved), with the rights and the file offset the
 * mapping gives them; shared for MAP_SHARED.
 */
export interface Reserved { start: number; end: number; offset: number; prot: number; shared: boolean; source: MapSource }

/** A named range of /proc/PID/maps: the file, the offset of its start there, and its source. */
export interface FileRange { start: number; end: number; name: string; offset: number; source?: MapSource }
/** Unfilled pages of a file mapping are filled this much at a time, around the access (one exit each). */
const FILL_CHUNK = 2 << 20;
/** Gap kept free below the stack so that a growing mmap area never touches it. */
const STACK_GUARD = 64 * PAGE_SIZE;

export class AddressSpace {
  brkStart = 0;
  brkEnd = 0;
  /**
   * End of the heap's mapping, page-aligned and never below the break (the loader sets both, brk
   * keeps it so, and the stub's break is taken back only up to it). With brkSlack, the host maps
   * that much beyond a break it moves, so that the stub can move the break within it without an
   * exit; the heap is not unmapped when the break moves down (a later rise needs no exit either).
   */
  heapTop = 0;
  brkSlack = 0;
  stackTop: number;
  /** Lowest mapped stack address; the stack grows down on demand to stackLimit. */
  stackBottom = 0;
  stackLimit = 0;
  private mmapCursor = 0;
  /**
   * Page ranges [start, end) mapped MAP_SHARED from a file. They hold a copy of the file, so
   * they must never become writable (a write would not reach the file): mprotect refuses it.
   */
  private sharedFile: Array<{ start: number; end: number }> = [];
  /**
   * What /proc/PID/maps names page ranges after: the file a range maps, and its offset there;
   * for a mapping made by mmap, also what fills more of it (pages past the file's end, mremap).
   */
  private names: FileRange[] = [];
  /**
   * Pages of file mappings not filled yet (Reserved): an access there fills them, around it,
   * where the file covers them, and is SIGBUS past the file's end, as on Linux. Few.
   */
  private reserved: Reserved[] = [];
  /** The sources names and reserved refer to, each held once by this address space. */
  private readonly held = new Set<MapSource>();

  /**
   * Its pages while another address space is in guest memory (src/linux/kernel.ts switches
   * them); null while its pages are the ones in guest memory.
   */
  image: UserImage | null = null;

  /**
   * The pages mlock locked (page numbers), at most RLIMIT_MEMLOCK's worth: kept for the limit and
   * for munlock. Guest memory is never swapped, so locking changes nothing else. fork and exec
   * start with none, as on Linux; munmap unlocks.
   */
  readonly locked = new Set<number>();

  /**
   * RLIMIT_AS, when the program set one (Process.applyAddressLimit): the most bytes of user
   * pages it may have mapped, PROT_NONE reservations included, as Linux counts them; a mapping,
   * brk or stack growth past it fails (ENOMEM) as one past --memory does.
   */
  addressLimit = Infinity;

  /**
   * home: the memory of its own this address space has (Machine.newSpace), or null when it lives
   * in the machine's first memory (and takes turns there with others: image).
   */
  constructor(readonly memory: GuestMemory, readonly paging: PageTables, readonly home: SpaceMemory | null = null) {
    this.stackTop = paging.userTop;
  }

  /** fork: the same layout (the caller copies the pages), in the same memory or in home's. */
  clone(home: SpaceMemory | null = null): AddressSpace {
    const c = home ? new AddressSpace(home.memory, home.paging, home) : new AddressSpace(this.memory, this.paging);
    c.brkStart = this.brkStart;
    c.brkEnd = this.brkEnd;
    c.heapTop = this.heapTop;
    c.brkSlack = this.brkSlack;
    c.stackTop = this.stackTop;
    c.stackBottom = this.stackBottom;
    c.stackLimit = this.stackLimit;
    c.mmapCursor = this.mmapCursor;
    c.addressLimit = this.addressLimit;
    c.sharedFile = this.sharedFile.map((r) => ({ ...r }));
    c.names = this.names.map((n) => ({ ...n }));
    c.reserved = this.reserved.map((r) => ({ ...r }));
    for (const source of this.held) {
      source.hold();
      c.held.add(source);
    }
    return c;
  }

  /** The address space is gone (exit, execve): its file mappings let go of their files. */
  dispose(): void {
    this.reserved = [];
    this.names = [];
    this.sweep();
  }

  /** Hold source for this address space (once). */
  private holdSource(source: MapSource): void {
    if (this.held.has(source)) return;
    source.hold();
    this.held.add(source);
  }

  /** Let go of the sources no range refers to any more. */
  private sweep(): void {
    if (this.held.size === 0) return;
    const used = new Set(this.reserved.map((r) => r.source));
    for (const n of this.names) if (n.source) used.add(n.source);
    for (const source of this.held) {
      if (used.has(source)) continue;
      this.held.delete(source);
      source.release();
    }
  }

  /**
   * Pages [start, start+len) (page-aligned, mapped) of a file mapping are left unfilled: reserve
   * them (PROT_NONE) until they are accessed. offset: their place in the file.
   */
  reserveFile(start: number, len: number, offset: number, prot: number, shared: boolean, source: MapSource): void {
    this.paging.map(start, len, 0);
    this.reserved = cutOut(this.reserved, start, start + len);
    this.reserved.push({ start, end: start + len, offset, prot: prot & PROT_MASK, shared, source });
    this.holdSource(source);
  }

  /** The unfilled range that holds addr, if any. */
  reservedAt(addr: number): Reserved | undefined {
    if (this.reserved.length === 0) return undefined;
    return this.reserved.find((r) => r.start <= addr && addr < r.end);
  }

  /** The unfilled ranges in [start, start+len), clipped to it (for mremap, /proc/PID/maps). */
  reservedIn(start: number, len: number): Reserved[] {
    if (this.reserved.length === 0) return [];
    return this.reserved.filter((r) => r.start < start + len && start < r.end).map((r) => {
      const lo = Math.max(r.start, start), hi = Math.min(r.end, start + len);
      return { ...r, start: lo, end: hi, offset: r.offset + (lo - r.start) };
    });
  }

  /**
   * The unfilled pages of [start, start+len) (a fault there, or a system call's pointer) get the
   * file's bytes and their rights where the file covers them now, with the rest of their
   * FILL_CHUNK-aligned chunks. True when every unfilled page of the range is filled now; false
   * when some lie past the file's end or memory for them ran out.
   */
  fillReserved(start: number, len: number): boolean {
    let all = true;
    for (const r of this.reservedIn(alignDown(start, PAGE_SIZE), alignUp(start + len, PAGE_SIZE) - alignDown(start, PAGE_SIZE))) {
      const whole = this.reserved.find((w) => w.start <= r.start && r.start < w.end)!;
      // The file's pages reach up to `covered` in the piece now.
      const covered = Math.min(whole.end, whole.start + Math.max(0, alignUp(whole.source.size() - whole.offset, PAGE_SIZE)));
      if (covered < r.end) all = false;
      const lo = Math.max(whole.start, alignDown(r.start, FILL_CHUNK));
      const hi = Math.min(covered, alignUp(r.end, FILL_CHUNK));
      if (hi <= lo) continue;
      if (!whole.source.fill(this, lo, hi - lo, whole.offset + (lo - whole.start), whole.prot)) return false;
      this.reserved = cutOut(this.reserved, lo, hi);
    }
    this.sweep();
    return all;
  }

  get userTop(): number { return this.paging.userTop; }

  /** The lowest address a program may map (mmap_min_addr; PageTables.userFloor). */
  get userFloor(): number { return this.paging.userFloor; }

  /** The memory the process may commit (--memory), which the span of its addresses may exceed. */
  get memoryBytes(): number { return Math.min(this.memory.size, this.paging.commitLimit); }

  isFree(start: number, len: number): boolean {
    if (start < this.userFloor || start + len > this.userTop) return false;
    return this.paging.lastMapped(start / PAGE_SIZE, (start + len) / PAGE_SIZE) < 0;
  }

  /** ENOMEM (nothing changed) when the pages would take the committed memory past --memory, or the mapped addresses past RLIMIT_AS. */
  map(start: number, len: number, prot: number, charge = (prot & PROT_WRITE) !== 0): void {
    if (!this.withinAddressLimit(start, len)) throw new Errno(E.ENOMEM);
    try {
      this.paging.map(start, len, prot & PROT_MASK, charge);
    } catch (e) {
      if (e instanceof CommitLimitError) throw new Errno(E.ENOMEM);
      throw e;
    }
  }

  /** Whether mapping [start, start+len) keeps the mapped addresses within RLIMIT_AS. */
  private withinAddressLimit(start: number, len: number): boolean {
    return this.addressLimit === Infinity || this.paging.mappedBytes + this.paging.unmappedBytes(start, len) <= this.addressLimit;
  }

  /** Whether map(start, len, prot) would succeed: within --memory's commit limit and RLIMIT_AS. */
  canMap(start: number, len: number, prot: number, charge = (prot & PROT_WRITE) !== 0): boolean {
    return this.paging.canCommit(start, len, prot, charge) && this.withinAddressLimit(start, len);
  }

  /** Unmap and return the pages to the host. */
  unmap(start: number, len: number): void {
    this.paging.unmap(start, len);
    this.memory.unshare(start, len);
    this.memory.discard(start, len);
    if (this.sharedFile.length) this.sharedFile = cutOut(this.sharedFile, start, start + len);
    const end = start + len;
    const cuts = (ranges: ReadonlyArray<{ start: number; end: number }>) => ranges.some((r) => r.start < end && start < r.end);
    if (cuts(this.names) || cuts(this.reserved)) {
      this.names = cutOut(this.names, start, end);
      this.reserved = cutOut(this.reserved, start, end);
      this.sweep();
    }
    this.unlock(start, len);
  }

  /** munlock and munmap: the pages of [start, start+len) are locked no more (the set is small: walk it). */
  unlock(start: number, len: number): void {
    for (const page of this.locked) if (page * PAGE_SIZE >= start && page * PAGE_SIZE < start + len) this.locked.delete(page);
  }

  /**
   * Name [start, start+len) (page-aligned) after a file it maps from offset, for /proc/PID/maps;
   * source: what fills more of the mapping, for a mapping made by mmap.
   */
  nameRange(start: number, len: number, name: string, offset: number, source?: MapSource): void {
    this.names = cutOut(this.names, start, start + len);
    this.names.push({ start, end: start + len, name, offset, source });
    if (source) this.holdSource(source);
    this.sweep();
  }

  /** The ranges mmap mapped from files (with a source) that meet [start, start+len). */
  sourcedIn(start: number, len: number): FileRange[] {
    return this.names.filter((r) => r.source && r.start < start + len && start < r.end);
  }

  /** The file range that holds addr, if a file is mapped there. */
  fileRangeAt(addr: number): FileRange | undefined {
    return this.names.find((r) => r.start <= addr && addr < r.end);
  }

  /**
   * The ranges [start, end) of /proc/PID/maps's names, with the offset of each start in its
   * file: the files, the heap and the stack. Sorted; they do not overlap.
   */
  namedRanges(): FileRange[] {
    const out = this.names.map((n) => ({ ...n }));
    const heap = alignUp(this.brkStart, PAGE_SIZE);
    if (this.heapTop > heap) out.push({ start: heap, end: this.heapTop, name: '[heap]', offset: 0 });
    if (this.stackTop > this.stackBottom) out.push({ start: this.stackBottom, end: this.stackTop, name: '[stack]', offset: 0 });
    return out.sort((a, b) => a.start - b.start);
  }


  /** Record [start, start+len) (page-aligned) as a read-only copy of a MAP_SHARED file mapping. */
  markSharedFile(start: number, len: number): void {
    this.sharedFile = cutOut(this.sharedFile, start, start + len);
    this.sharedFile.push({ start, end: start + len });
  }

  /** The ranges markSharedFile recorded (MAP_SHARED file mappings that are copies or may not be written). */
  sharedFileRanges(): Array<{ start: number; end: number }> {
    return this.sharedFile.map((r) => ({ ...r }));
  }

  /** True when some page of [start, start+len) belongs to a MAP_SHARED file mapping. */
  hasSharedFile(start: number, len: number): boolean {
    return this.sharedFile.some((r) => r.start < start + len && start < r.end);
  }

  /** Change protection of mapped pages only; false if some page in the range is unmapped. */
  protect(start: number, len: number, prot: number): boolean {
    const perms = this.paging.perms;
    for (let p = start / PAGE_SIZE; p < (start + len) / PAGE_SIZE; p++) if (!(perms[p]! & PAGE_MAPPED)) return false;
    this.map(start, len, prot);
    // Unfilled pages of a file mapping stay reserved, with the new rights for when they are filled.
    for (const r of this.reservedIn(start, len)) {
      this.paging.map(r.start, r.end - r.start, 0);
      this.reserved = cutOut(this.reserved, r.start, r.end);
      this.reserved.push({ ...r, prot: prot & PROT_MASK });
    }
    return true;
  }

  /** Map the first `initial` bytes of a stack that may grow to `max` bytes. */
  setupStack(initial: number, max: number): void {
    this.stackBottom = this.stackTop - initial;
    this.stackLimit = this.stackTop - max;
    this.map(this.stackBottom, initial, PROT_READ | PROT_WRITE);
    this.mmapCursor = this.stackLimit - STACK_GUARD;
  }

  /** Grow the stack to cover addr, as Linux does on a fault below the stack. False if addr is not in the stack's reserve. */
  growStack(addr: number): boolean {
    if (addr >= this.stackBottom || addr < this.stackLimit) return false;
    const GROW_CHUNK = 16 * PAGE_SIZE;
    const newBottom = Math.max(this.stackLimit, alignDown(addr, GROW_CHUNK));
    if (!this.isFree(newBottom, this.stackBottom - newBottom)) return false;
    if (!this.canMap(newBottom, this.stackBottom - newBottom, PROT_READ | PROT_WRITE)) return false;
    this.map(newBottom, this.stackBottom - newBottom, PROT_READ | PROT_WRITE);
    this.stackBottom = newBottom;
    return true;
  }

  /** Find room for len bytes for mmap, top-down below the stack; 0 if none. */
  findFree(len: number): number {
    const low = Math.max(this.heapTop + 16 * PAGE_SIZE, this.userFloor);
    const first = this.mmapCursor - len;
    if (first >= low && this.isFree(first, len)) {
      this.mmapCursor = first;
      return first;
    }
    // The highest hole that fits, from the top down, at its top. A hole reaches down to the
    // last mapped page below it, or to low (below = -1: then it fits, as the loop checks).
    const pages = len / PAGE_SIZE;
    const lowPage = Math.ceil(low / PAGE_SIZE);
    for (let top = (this.stackLimit - STACK_GUARD) / PAGE_SIZE; top - lowPage >= pages;) {
      const below = this.paging.lastMapped(lowPage, top);
      if (top - (below + 1) >= pages) return (top - pages) * PAGE_SIZE;
      top = below;
    }
    return 0;
  }

  /** Map brkSlack beyond the break now (at start), so that the first rises need no exit either. */
  growHeap(): void {
    if (this.brkSlack > 0) this.extendHeap(this.heapTop);
  }

  /**
   * Map the heap from heapTop up to `need` (free already: the caller checked), and beyond it as
   * much of brkSlack as is free and below the stack's reserve.
   */
  private extendHeap(need: number): void {
    const top = this.heapTop;
    let end = Math.min(need + this.brkSlack, this.stackLimit - STACK_GUARD);
    const fits = (e: number) => this.isFree(top, e - top) && this.canMap(top, e - top, PROT_READ | PROT_WRITE);
    while (end > need && !fits(end)) end = Math.max(need, end - 16 * PAGE_SIZE);
    if (end > top) this.map(top, end - top, PROT_READ | PROT_WRITE);
    this.heapTop = Math.max(top, end);
  }

  /** brk(2): returns the new break (the old one when the request cannot be met). */
  brk(requested: number): number {
    if (requested < this.brkStart) return this.brkEnd;
    const top = this.heapTop;
    const newTop = alignUp(requested, PAGE_SIZE);
    if (newTop > top) {
      if (newTop > this.stackLimit - STACK_GUARD || !this.isFree(top, newTop - top)) return this.brkEnd;
      if (!this.canMap(top, newTop - top, PROT_READ | PROT_WRITE)) return this.brkEnd;
      this.extendHeap(newTop);
    } else if (newTop < top) {
      if (this.brkSlack === 0) {
        this.unmap(newTop, top - newTop);
        this.heapTop = newTop;
      } else {
        // Kept mapped for the stub, but what the break gives back reads as zero when it rises
        // again, as on Linux (glibc's calloc counts on it). Cleared in place where touched (only
        // long runs are discarded: a discard makes kvm_pvm drop every translation).
        const oldTop = alignUp(this.brkEnd, PAGE_SIZE);
        if (newTop < oldTop) this.memory.zeroResident(newTop, oldTop - newTop);
      }
    }
    this.brkEnd = requested;
    return requested;
  }

  /**
   * Before a mapping call changes [start, start+len): if that touches the heap's slack (mapped
   * beyond the break), give the slack back, so that the break never grows over the new mapping.
   */
  clipHeap(start: number, len: number): void {
    const brkTop = alignUp(this.brkEnd, PAGE_SIZE);
    if (this.heapTop <= brkTop || start >= this.heapTop || start + len <= brkTop) return;
    this.unmap(brkTop, this.heapTop - brkTop);
    this.heapTop = brkTop;
  }

  pageRange(addr: number, len: number): [number, number] {
    return [alignDown(addr, PAGE_SIZE), alignUp(addr + len, PAGE_SIZE)];
  }
}
