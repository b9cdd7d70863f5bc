// The guest's page tables, owned and written by the host.
//
// Layout invariant: a user virtual address in [userFloor, userTop) maps to the same address of
// its address space's memory (guest physical address VA + physOffset: 0 for the machine's first
// memory, a memslot of its own for each further address space, Machine.newSpace); the kernel lives
// in the top 2 GiB (KERNEL_VBASE + PA) and is never mapped with PTE_USER. Because a user VA can
// only ever map to the same page of its own address space, a stale TLB entry can at worst grant
// access to the same user page, never to kernel memory, another page or another process's.
//
// The host keeps one byte of permissions per page (the source of truth for pointer checks) and
// mirrors it into 4 KiB PTEs. Page-table pages come from a pool at the top of guest memory.
import { ChunkSet } from './chunk-set.js';
import { GuestMemory } from './memory.js';
import {
  PAGE_SIZE, PTE_ADDR_MASK, PTE_GLOBAL, PTE_NX, PTE_PRESENT, PTE_PS, PTE_USER, PTE_WRITABLE,
} from './x86.js';
import { PHYS_PD_HIGH, PHYS_PDPT_HIGH, PHYS_PML4, USER_BASE } from '../abi/abi.generated.js';

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
/** Page-permission byte: mapped at all (PROT_NONE pages are mapped in this table but not in the PTEs). */
export const PAGE_MAPPED = 8;
/**
 * Page-permission byte: the page counts against the commit limit. A user page is charged when it
 * may first hold bytes of its own: mapped writable, or filled by the host (whose callers map it
 * writable first, or say so: map's charge). It stays charged until it is unmapped: a page made
 * read-only or PROT_NONE keeps its bytes (and its host memory), so it keeps its charge, as in
 * Linux's strict accounting. A page never charged reads as zero, so it needs no host memory of
 * its own (a read maps the host's zero page) and a copy of the space may skip it: Linux does not
 * charge an anonymous mapping without PROT_WRITE either (Starlark reserves 4 GiB PROT_READ).
 */
export const PAGE_CHARGED = 16;

/** map would take the address space's committed memory past its limit (the caller answers ENOMEM). */
export class CommitLimitError extends RangeError {}

const ENTRIES = 512;
const TWO_MIB = 0x200000;

export interface PagingOptions {
  /** Use the NX bit (EFER.NXE set): non-executable pages really are. */
  nx: boolean;
  /**
   * Most bytes of user pages that may hold bytes at once (PAGE_CHARGED): the memory a program
   * can fill. Reservations (PROT_NONE, or never writable) do not count, so the address space can
   * be larger than this (V8 reserves 512 MiB for its code, glibc 64 MiB for each thread's arena).
   * Unlimited when absent.
   */
  commitLimit?: number;
}

/** The access rights in a permission byte. */
const PROT_ALL_RIGHTS = PROT_READ | PROT_WRITE | PROT_EXEC;

export class PageTables {
  /** One permission byte per 4 KiB page of guest physical memory (= user VA). */
  readonly perms: Uint8Array;
  /** End of the user-mappable range; the page-table pool starts here. */
  readonly userTop: number;
  /**
   * Start of the user-mappable range: USER_BASE (1 MiB, where an address space's own memory
   * starts), or higher where the machine maps special pages above it (the user-stub path's
   * caches, Machine.mapUserSpecials). Set before any user mapping; below it are only special
   * pages, never charged, and the tables of markBase.
   */
  userFloor = USER_BASE;
  private poolNext: number;
  private readonly poolEnd: number;
  private pdptLow = 0;
  /**
   * Translations KVM may hold from the last program (see seal): per page, the rights they may
   * grant (0: none). And per page, every right the current program has had since it started.
   */
  private staleRights: Uint8Array;
  private everPerms: Uint8Array;
  private sealed = false;
  /**
   * Per 2 MiB of guest memory: whether a user page there has been mapped since the chunk was last
   * found empty at a reset. Only those chunks can hold pages the guest touched (reset looks
   * nowhere else).
   */
  private readonly usedChunks: ChunkSet;
  /**
   * Per 2 MiB: perms, everPerms or unzeroed may be non-zero there. The per-page tables are as
   * large as the address space, most of which a program never maps: reset, seal and markBase
   * look only here, so that the host neither touches nor clears what was never used.
   */
  private readonly metaChunks: ChunkSet;
  /** User pages charged (PAGE_CHARGED), and the most there may be. */
  private committedPages = 0;
  /** User pages mapped, with or without rights (what RLIMIT_AS counts). */
  private mappedPages = 0;
  private readonly commitLimitPages: number;
  /**
   * Per page: unmapped, but may still hold bytes of an earlier program of this sandbox (a lazy
   * reset left them, see Machine.reset): map zeroes such a page before the guest can see it.
   */
  private readonly unzeroed: Uint8Array;
  private unzeroedCount = 0;
  /** The runs of pages staleRights may be non-zero in. */
  private keptPages: ReadonlyArray<readonly [number, number]> = [];
  /**
   * The tables as markBase found them (the kernel half and the special pages below userFloor,
   * nothing of a program's): what reset returns to, by copy, instead of rebuilding them.
   */
  private base: { top: Buffer; pool: Buffer; poolNext: number; pdptLow: number; root: number; twinRoot: number; perms: Uint8Array } | null = null;

  /**
   * physOffset: where this address space's memory lies in guest-physical memory, relative to
   * its addresses (0 for the machine's first; Machine.newSpace gives each further one its own
   * memslot). A user page at va is then at guest-physical va + physOffset, and so are the
   * page-table pages of the pool; the pages below USER_BASE (kernel, stub) are the same
   * physical pages in every address space.
   */
  constructor(private readonly mem: GuestMemory, private readonly opts: PagingOptions, readonly physOffset = 0) {
    const pages = mem.size / PAGE_SIZE;
    this.perms = new Uint8Array(pages);
    this.everPerms = new Uint8Array(pages);
    this.staleRights = new Uint8Array(pages);
    this.usedChunks = new ChunkSet(Math.ceil(mem.size / TWO_MIB));
    this.metaChunks = new ChunkSet(Math.ceil(mem.size / TWO_MIB));
    this.commitLimitPages = opts.commitLimit === undefined ? Infinity : Math.floor(opts.commitLimit / PAGE_SIZE);
    this.unzeroed = new Uint8Array(pages);
    // One PT per 2 MiB, one PD per GiB, one PDPT, the twin root: reserve that at the top of memory.
    const poolPages = Math.ceil(mem.size / TWO_MIB) + Math.ceil(mem.size / 0x40000000) + 2;
    this.userTop = mem.size - poolPages * PAGE_SIZE;
    this.poolNext = this.userTop;
    this.poolEnd = mem.size;
    if (this.userTop <= USER_BASE) throw new RangeError('guest memory too small');
  }

  /**
   * Build the kernel half and an empty user half. Returns CR3. The machine's first address space
   * has its root at PHYS_PML4 and builds the kernel half; a further one (physOffset > 0) has its
   * root in its own pool and links the same kernel half.
   */
  init(): number {
    const m = this.mem;
    const link = PTE_PRESENT | PTE_WRITABLE;
    if (this.physOffset === 0) {
      m.fill(PHYS_PML4, PAGE_SIZE);
      m.fill(PHYS_PDPT_HIGH, PAGE_SIZE);
      m.fill(PHYS_PD_HIGH, PAGE_SIZE);
      // KERNEL_VBASE = 0xffffffff80000000: PML4 slot 511, PDPT slot 510; 2 MiB page -> PA 0.
      m.setU64(PHYS_PDPT_HIGH + 510 * 8, BigInt(PHYS_PD_HIGH) | link);
      m.setU64(PHYS_PD_HIGH, 0n | link | PTE_PS | PTE_GLOBAL);
    }
    this.pdptLow = this.allocTable();
    this.root = this.physOffset === 0 ? PHYS_PML4 : this.allocTable();
    m.setU64(this.root + 511 * 8, BigInt(PHYS_PDPT_HIGH) | link);
    m.setU64(this.root, this.phys(this.pdptLow) | link | PTE_USER);
    // A second root with the same entries: loading it instead of the first (or back) is a CR3
    // change KVM acts on, which drops the vCPU's cached translations (see Machine.enterUser).
    this.twinRoot = this.allocTable();
    m.write(this.twinRoot, m.slice(this.root, PAGE_SIZE));
    return this.rootPhys;
  }

  /** The root's own address (PHYS_PML4 or a pool page), and the one equivalent to it (init copies it; neither changes after). */
  private root = PHYS_PML4;
  private twinRoot = 0;

  /** Guest-physical address of a page of this address space's memory at addr. */
  private phys(addr: number): bigint {
    return BigInt(addr >= USER_BASE ? addr + this.physOffset : addr);
  }

  /** CR3 values: the root, and its twin. */
  get rootPhys(): number { return this.root >= USER_BASE ? this.root + this.physOffset : this.root; }
  get twinRootPhys(): number { return this.twinRoot + this.physOffset; }

  /**
   * Forget every user mapping: the page-table pool is zeroed and the kernel half rebuilt.
   * keptPages: the page runs [first, end) of user memory still resident (zeroed in place): KVM may
   * still translate those for the last program (pages given back to the host lost theirs).
   */
  reset(keptPages: ReadonlyArray<readonly [number, number]>, lazy = false): void {
    if (lazy) {
      // Every mapped user page keeps its bytes until it is mapped again (map zeroes it then).
      // Mapped pages lie in the used ranges.
      for (const [a, b] of this.usedRanges()) {
        for (let p = a / PAGE_SIZE; p < b / PAGE_SIZE; p++) {
          if (this.perms[p] && !this.unzeroed[p]) {
            this.unzeroed[p] = 1;
            this.unzeroedCount++;
          }
        }
      }
    } else {
      // The caller zeroed every resident page of the used ranges (unzeroed is cleared below).
      this.unzeroedCount = 0;
    }
    this.mem.fill(this.userTop, this.poolNext - this.userTop);
    this.poolNext = this.userTop;
    for (const [first, end] of this.keptPages) this.staleRights.fill(0, first, end);
    this.keptPages = keptPages;
    // Chunks with no resident page left need no look at the next reset, unless a page there
    // still has to be zeroed.
    const unzeroedChunks = this.unzeroedCount ? this.chunkRuns(this.metaChunks).filter(([a, b]) => this.unzeroed.subarray(a / PAGE_SIZE, b / PAGE_SIZE).includes(1)) : [];
    this.usedChunks.clear();
    for (const [a, b] of unzeroedChunks) this.usedChunks.addRange(a / TWO_MIB, Math.ceil(b / TWO_MIB));
    for (const [first, end] of keptPages) {
      this.usedChunks.addRange(Math.floor(first * PAGE_SIZE / TWO_MIB), Math.floor((end - 1) * PAGE_SIZE / TWO_MIB) + 1);
      for (let p = first; p < end; p++) {
        // A program that never started may have had anything.
        this.staleRights[p] = (this.sealed ? this.everPerms[p]! : 0xff) & PROT_ALL_RIGHTS;
      }
    }
    // Clear the per-page tables where they may hold anything (metaChunks), once staleRights
    // has what it needs of everPerms; what stays unzeroed keeps its chunks marked.
    for (const [a, b] of this.chunkRuns(this.metaChunks)) {
      this.perms.fill(0, a / PAGE_SIZE, b / PAGE_SIZE);
      this.everPerms.fill(0, a / PAGE_SIZE, b / PAGE_SIZE);
      if (!lazy) this.unzeroed.fill(0, a / PAGE_SIZE, b / PAGE_SIZE);
    }
    this.metaChunks.clear();
    for (const [a, b] of unzeroedChunks) this.metaChunks.addRange(a / TWO_MIB, Math.ceil(b / TWO_MIB));
    this.committedPages = 0;
    this.mappedPages = 0;
    this.sealed = false;
    const base = this.base;
    if (!base) {
      this.init();
      return;
    }
    if (this.physOffset === 0) {
      this.mem.write(PHYS_PML4, base.top.subarray(0, PAGE_SIZE));
      this.mem.write(PHYS_PDPT_HIGH, base.top.subarray(PAGE_SIZE, 2 * PAGE_SIZE));
      this.mem.write(PHYS_PD_HIGH, base.top.subarray(2 * PAGE_SIZE));
    }
    this.mem.write(this.userTop, base.pool);
    this.poolNext = base.poolNext;
    this.pdptLow = base.pdptLow;
    this.root = base.root;
    this.twinRoot = base.twinRoot;
    this.perms.set(base.perms);
  }

  /**
   * Once the kernel half and the special pages are mapped, before any user mapping: keep the
   * tables as they are, for every reset to copy back.
   */
  markBase(): void {
    for (const [a, b] of this.chunkRuns(this.metaChunks)) {
      if (this.perms.subarray(Math.max(a, this.userFloor) / PAGE_SIZE, b / PAGE_SIZE).some((x) => x !== 0)) throw new Error('markBase: user pages are mapped');
    }
    const page = (a: number) => Buffer.from(this.mem.slice(a, PAGE_SIZE));
    this.base = {
      top: Buffer.concat([page(PHYS_PML4), page(PHYS_PDPT_HIGH), page(PHYS_PD_HIGH)]),
      pool: Buffer.from(this.mem.slice(this.userTop, this.poolNext - this.userTop)),
      poolNext: this.poolNext, pdptLow: this.pdptLow, root: this.root, twinRoot: this.twinRoot, perms: this.perms.slice(0, this.userFloor / PAGE_SIZE),
    };
  }

  /**
   * The user ranges [start, end) that may hold pages the guest or host touched since the last
   * reset: where user pages were mapped. A chunk leaves the list once reset finds none of its
   * pages resident.
   */
  usedRanges(): Array<[number, number]> {
    return this.userPart(this.chunkRuns(this.usedChunks));
  }

  private userPart(runs: Array<[number, number]>): Array<[number, number]> {
    return runs.map(([a, b]) => [Math.max(a, this.userFloor), Math.min(b, this.userTop)] as [number, number]).filter(([a, b]) => a < b);
  }

  /** The address ranges [start, end) of the runs of marked 2 MiB chunks in chunks. */
  private chunkRuns(chunks: ChunkSet): Array<[number, number]> {
    return chunks.runs().map(([c, d]) => [c * TWO_MIB, Math.min(d * TWO_MIB, this.mem.size)]);
  }

  /**
   * The highest page in [firstPage, endPage) that is mapped (PROT_NONE included), or -1. Chunks
   * where nothing has been mapped are passed over whole, so a search over the span of a large
   * address space costs what is mapped there, not its size.
   */
  lastMapped(firstPage: number, endPage: number): number {
    const per = TWO_MIB / PAGE_SIZE;
    let p = endPage - 1;
    while (p >= firstPage) {
      const c = this.metaChunks.lastAtOrBelow(Math.floor(p / per), Math.floor(firstPage / per));
      if (c < 0) return -1;
      p = Math.min(p, (c + 1) * per - 1);
      for (const stop = Math.max(firstPage, c * per); p >= stop; p--) if (this.perms[p]) return p;
    }
    return -1;
  }

  /** The user ranges [start, end) where pages may be mapped (PROT_NONE ones too): outside them none is. */
  mappedRanges(): Array<[number, number]> {
    return this.userPart(this.chunkRuns(this.metaChunks));
  }

  /** The most bytes of user pages that may be charged (Infinity: no limit). */
  get commitLimit(): number { return this.commitLimitPages * PAGE_SIZE; }

  /** Bytes of user pages charged against the commit limit (PAGE_CHARGED). */
  get committed(): number { return this.committedPages * PAGE_SIZE; }

  /** Bytes of user pages mapped, PROT_NONE included. */
  get mappedBytes(): number { return this.mappedPages * PAGE_SIZE; }

  /** Bytes of [va, va+len) not mapped now: what mapping the range would add to mappedBytes. */
  unmappedBytes(va: number, len: number): number {
    let n = 0;
    for (let p = va / PAGE_SIZE; p < (va + len) / PAGE_SIZE; p++) if (!this.perms[p]) n++;
    return n * PAGE_SIZE;
  }

  /**
   * The program's initial mappings are complete, and it is about to start: drop the last
   * program's translations that would be wrong for it. On shadow paging (kvm_pvm) KVM does not
   * see the host rewrite page tables, so translations made for the last program survive a reset
   * (on zeroed pages: no data crosses, only rights to touch them). Dropping any makes kvm_pvm drop
   * them all, and the program then pays a first touch on every page again (~0.5 ms for a small
   * one), so only those that matter go:
   * - on a page mapped now, one that may grant a right the mapping does not (user pages are
   *   identity mapped: a translation with no more rights than the mapping is right or, when
   *   narrower, heals on its first fault, which the kernel retries after invlpg); such a page is
   *   then the program's own, and later changes to it are as for any page of its own (no TLB
   *   flush, see SECURITY.md); a page first mapped later gets the same check then (writePtes);
   * - on an unmapped page where a touch must fault for the program to work (mustFault: its
   *   stack's growth reserve, or the host would never grow the stack there).
   * On a page that stays unmapped, a translation may let the program touch zeroed memory where
   * Linux would kill it (documented in SECURITY.md).
   */
  seal(mustFault: (page: number) => boolean): void {
    this.sealed = true;
    for (const [a, b] of this.chunkRuns(this.metaChunks)) this.everPerms.set(this.perms.subarray(a / PAGE_SIZE, b / PAGE_SIZE), a / PAGE_SIZE);
    const wrong = (p: number) => {
      const stale = this.staleRights[p]!;
      if (stale === 0) return false;
      const now = this.perms[p]!;
      return now !== 0 ? (stale & ~now) !== 0 : mustFault(p);
    };
    for (const [first, end] of this.keptPages) {
      for (let p = first; p < end; p++) {
        if (!wrong(p)) {
          // Mapped now with at least its rights: as good as this program's own translation.
          if (this.perms[p] !== 0) this.staleRights[p] = 0;
          continue;
        }
        let q = p;
        while (q < end && wrong(q)) q++;
        this.dropStale(p, q);
        p = q - 1;
      }
    }
  }

  /** Make KVM drop its translations of pages [first, end); nothing stale is left there. */
  private dropStale(first: number, end: number): void {
    this.mem.dropTranslations(first * PAGE_SIZE, (end - first) * PAGE_SIZE);
    this.staleRights.fill(0, first, end);
  }

  private allocTable(): number {
    if (this.poolNext >= this.poolEnd) throw new Error('page-table pool exhausted');
    const p = this.poolNext;
    this.poolNext += PAGE_SIZE;
    this.mem.fill(p, PAGE_SIZE);
    return p;
  }

  /** The PT page that holds the PTE for va, created on demand. */
  private ptFor(va: number): number {
    const pdptIndex = Math.floor(va / 0x40000000) % ENTRIES;
    const pdIndex = Math.floor(va / TWO_MIB) % ENTRIES;
    const link = PTE_PRESENT | PTE_WRITABLE | PTE_USER;
    let e = this.mem.u64(this.pdptLow + pdptIndex * 8);
    if (!(e & PTE_PRESENT)) {
      e = this.phys(this.allocTable()) | link;
      this.mem.setU64(this.pdptLow + pdptIndex * 8, e);
    }
    // The tables hold guest-physical addresses; the pool pages are read at their own addresses.
    const pd = Number(e & PTE_ADDR_MASK) - this.physOffset;
    let f = this.mem.u64(pd + pdIndex * 8);
    if (!(f & PTE_PRESENT)) {
      f = this.phys(this.allocTable()) | link;
      this.mem.setU64(pd + pdIndex * 8, f);
    }
    return Number(f & PTE_ADDR_MASK) - this.physOffset;
  }



  /**
   * Identity-map user pages [va, va+len) with prot (PROT_* bits), charging them (PAGE_CHARGED)
   * when writable, or when charge says so (pages that hold bytes: a copy of a charged page).
   * Throws CommitLimitError, before anything changes, when the pages it would charge take the
   * committed memory past the limit.
   */
  map(va: number, len: number, prot: number, charge = (prot & PROT_WRITE) !== 0): void {
    this.checkUserRange(va, len);
    if (!this.canCommit(va, len, prot, charge)) {
      throw new CommitLimitError(`mapping ${len} bytes would commit more than the ${this.commitLimitPages * PAGE_SIZE} bytes of memory`);
    }
    if (this.unzeroedCount) this.zeroUnzeroed(va / PAGE_SIZE, (va + len) / PAGE_SIZE, true);
    this.writePtes(va, len, prot, charge);
  }

  /** True when map(va, len, prot, charge) would stay within the commit limit. */
  canCommit(va: number, len: number, prot: number, charge = (prot & PROT_WRITE) !== 0): boolean {
    if (!(prot & PROT_ALL_RIGHTS) || !charge) return true;
    return this.chargeable(va, len);
  }

  /**
   * Charge the mapped pages of [va, va+len) that are not yet, before the host writes them while
   * they are not writable (a debugger's forced write); false, charging nothing, past the limit.
   */
  chargeForWrite(va: number, len: number): boolean {
    const pages: number[] = [];
    for (let p = va / PAGE_SIZE; p < (va + len) / PAGE_SIZE; p++) {
      if (this.perms[p]! & PAGE_MAPPED && !(this.perms[p]! & PAGE_CHARGED) && p * PAGE_SIZE >= this.userFloor) pages.push(p);
    }
    if (this.committedPages + pages.length > this.commitLimitPages) return false;
    for (const p of pages) this.perms[p] |= PAGE_CHARGED;
    this.committedPages += pages.length;
    return true;
  }

  private chargeable(va: number, len: number): boolean {
    let charge = 0;
    for (let p = va / PAGE_SIZE; p < (va + len) / PAGE_SIZE; p++) if (!(this.perms[p]! & PAGE_CHARGED)) charge++;
    return this.committedPages + charge <= this.commitLimitPages;
  }

  /**
   * Pages [first, end) that the caller is about to map and overwrite whole: they need no zeroing.
   * Only for a caller that writes every byte of them before the guest runs (Machine.restoreUser).
   */
  willOverwrite(first: number, end: number): void {
    if (this.unzeroedCount) this.zeroUnzeroed(first, end, false);
  }

  /** Zero (or, when the caller overwrites them, just forget) the unzeroed pages of [first, end). */
  private zeroUnzeroed(first: number, end: number, zero: boolean): void {
    const u = this.unzeroed.subarray(0, end);
    let p = u.indexOf(1, first);
    while (p >= 0) {
      let q = u.indexOf(0, p);
      if (q < 0) q = end;
      // Only pages the host holds need it, and long runs go back to the host: a reservation of
      // 64 MiB over an earlier program's pages must not make them all resident.
      if (zero) this.mem.zeroResident(p * PAGE_SIZE, (q - p) * PAGE_SIZE);
      u.fill(0, p, q);
      this.unzeroedCount -= q - p;
      p = u.indexOf(1, q);
    }
  }

  /** Mark unmapped pages [first, end) as holding bytes that map must zero (Machine.restoreUser). */
  leaveUnzeroed(first: number, end: number): void {
    if (first < end) this.metaChunks.addRange(Math.floor(first * PAGE_SIZE / TWO_MIB), Math.floor((end - 1) * PAGE_SIZE / TWO_MIB) + 1);
    for (let p = first; p < end; p++) {
      if (this.perms[p] || this.unzeroed[p]) continue;
      this.unzeroed[p] = 1;
      this.unzeroedCount++;
    }
  }

  /**
   * Write the PTEs of [va, va+len), one PT page (2 MiB) at a time, as two 32-bit halves: the
   * address fits in the low half (guest memory < 4 GiB per PTE's low 32 bits is not assumed:
   * the high half carries bits 32-51 and NX).
   */
  private writePtes(va: number, len: number, prot: number, charging = false): void {
    const present = (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0;
    const lowFlags = present ? Number(PTE_PRESENT | PTE_USER | (prot & PROT_WRITE ? PTE_WRITABLE : 0n)) : 0;
    const highFlags = present && this.opts.nx && !(prot & PROT_EXEC) ? Number(PTE_NX >> 32n) : 0;
    const byte = PAGE_MAPPED | prot;
    // User pages mapped with a right are charged when map says (it checked the limit); special
    // pages never are.
    const charge = present && charging && va >= this.userFloor ? PAGE_CHARGED : 0;
    let a = va;
    const end = va + len;
    let staleFirst = Infinity, staleEnd = 0;
    while (a < end) {
      const pt = this.mem.words32(this.ptFor(a), ENTRIES * 2);
      if (present) this.usedChunks.add(Math.floor(a / TWO_MIB));
      this.metaChunks.add(Math.floor(a / TWO_MIB));
      const chunkEnd = Math.min(end, (Math.floor(a / TWO_MIB) + 1) * TWO_MIB);
      for (; a < chunkEnd; a += PAGE_SIZE) {
        const page = a / PAGE_SIZE;
        const had = this.perms[page]! & PAGE_CHARGED;
        if (charge && !had) this.committedPages++;
        if (!this.perms[page] && a >= this.userFloor) this.mappedPages++;
        this.perms[page] = byte | had | charge;
        if (this.sealed) {
          this.everPerms[page]! |= byte;
          // A mapping with rights, narrower than what a translation of the last program's grants.
          if (present && this.staleRights[page]! & ~prot) {
            staleFirst = Math.min(staleFirst, page);
            staleEnd = page + 1;
          }
        }
        const w = (page % ENTRIES) * 2;
        if (present) {
          const pa = a >= USER_BASE ? a + this.physOffset : a;
          pt[w] = ((pa % 0x100000000) + lowFlags) >>> 0;
          pt[w + 1] = Math.floor(pa / 0x100000000) | highFlags;
        } else {
          pt[w] = 0;
          pt[w + 1] = 0;
        }
      }
    }
    if (staleFirst < staleEnd) this.dropStale(staleFirst, staleEnd);
  }

  /** Map pages at a physical address below the user range (the stub, its shared page and cache). */
  mapSpecial(va: number, prot: number, len = PAGE_SIZE, opts: { callsRead?: boolean } = {}): void {
    if (va % PAGE_SIZE || len % PAGE_SIZE || va + len > this.userFloor) throw new RangeError('special pages lie below the user range');
    this.writePtes(va, len, prot);
    if (opts.callsRead) this.readableSpecials.set(va, { end: va + len, prot: prot & (PROT_READ | PROT_EXEC) });
  }

  /**
   * Special pages that system calls may read as user memory (accessible), as Linux's may read the
   * vDSO: ld.so writes the vDSO's name from its string table. Never for writing.
   */
  private readonly readableSpecials = new Map<number, { end: number; prot: number }>();

  unmap(va: number, len: number): void {
    this.checkUserRange(va, len);
    this.writePtes(va, len, 0);
    for (let p = va / PAGE_SIZE; p < (va + len) / PAGE_SIZE; p++) {
      if (this.perms[p]! & PAGE_CHARGED) this.committedPages--;
      if (this.perms[p]) this.mappedPages--;
      this.perms[p] = 0;
    }
  }

  private checkUserRange(va: number, len: number): void {
    if (va % PAGE_SIZE || len % PAGE_SIZE || va < this.userFloor || va + len > this.userTop) {
      throw new RangeError(`user range 0x${va.toString(16)}+0x${len.toString(16)} is not page-aligned inside the user region`);
    }
  }

  /**
   * True when every page of [va, va+len) is mapped with all of prot. The check a system call
   * makes on each pointer a program passes in: kernel, unmapped and overflowing ranges fail.
   */
  accessible(va: number, len: number, prot: number): boolean {
    if (!Number.isSafeInteger(va) || !Number.isSafeInteger(len) || va < 0 || len < 0) return false;
    if (len === 0) return true;
    if (va < this.userFloor) {
      for (const [start, r] of this.readableSpecials) if (va >= start && va + len <= r.end) return (prot & ~r.prot) === 0;
      return false;
    }
    if (va + len > this.userTop) return false;
    const want = PAGE_MAPPED | prot;
    const last = Math.floor((va + len - 1) / PAGE_SIZE);
    for (let p = Math.floor(va / PAGE_SIZE); p <= last; p++) {
      if ((this.perms[p]! & want) !== want) return false;
    }
    return true;
  }

  /** Permission byte of the page holding va (0 if unmapped or outside). */
  pageProt(va: number): number {
    if (va < 0 || va >= this.userTop) return 0;
    return this.perms[Math.floor(va / PAGE_SIZE)]!;
  }
}
