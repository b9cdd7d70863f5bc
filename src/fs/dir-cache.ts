// The directory and stat cache that the user-mode stub answers from (kernel/dstub.c), kept by the
// host in DCACHE (read-only to user mode) and in the shared page.
//
// DCACHE is a hash table of absolute guest paths. Each entry holds what newfstatat(AT_FDCWD,
// path, .., AT_SYMLINK_NOFOLLOW) returns (or, for an entry marked "follow", what stat returns);
// an entry for a directory the host has listed also points at that directory's whole listing,
// as getdents64 records. The stub answers newfstatat of those paths, and openat(O_DIRECTORY) of
// a listed directory, handing out a descriptor of its own (the lowest free one in the fd
// bitmap the host publishes) and serving getdents64, fstat and close on it.
//
// Where the data comes from:
//  - a directory listing the host served (getdents64): its entries' lstat;
//  - a stat the host served for an absolute path: that answer;
//  - a directory opened in a read-only grant: a *batch*. The host lists the directory and then,
//    in the order `find` walks (depth first, listing order), the directories below it and the
//    later siblings of it and of its parents, until the batch budget is used. The budget starts
//    small and grows while the program keeps opening directories from the cache, so that a
//    program that opens one directory pays for little more than that listing. The listings of
//    its parents that the host still keeps go in first; a directory opened again while its
//    listing is in DCACHE (the stub cannot open a walk's first directory itself) is handed over
//    without a new batch, which would cost the stub the listings of the descriptors it holds.
//
// Coherence: the cache is dropped by any call that may change a file (as the stat cache before
// it). Batches are built only inside read-only grants, which the sandbox cannot change; a change
// made on the host, outside the sandbox, while the program runs may be seen late, as with any
// client-side cache (documented in docs/performance.md).
//
// Descriptors the stub hands out are recorded in slots of the shared page. At each exit the host
// reads the slots back (sync) and holds a placeholder in its fd table for each, so that its own
// allocation skips them; a host-side use of such a descriptor (dup, fchdir, fcntl, lseek...)
// reopens the directory for real at the position the program had reached (materialize). The slots
// are user memory: the host checks each claim (descriptor free, directory known) and trusts
// nothing else in them.
import { bytesOf, nameLength, nameOf } from '../abi/file-names.js';
import * as libc from '../kvm/libc.js';
import type { GuestMemory } from '../machine/memory.js';
import {
  DC_BUCKETS, DC_BUCKETS_OFF, DC_E_BLOB, DC_E_BLOB_LEN, DC_E_DIR, DC_E_PATH, DC_E_STAT, DC_HEAP, DCACHE, DCACHE_SIZE, DIR_SLOT_SIZE, DIR_SLOTS, FD_BITMAP_FDS, GUEST_GID, GUEST_UID, PHYS_SHARED,
  SH_DC_GEN, SH_DC_ON, SH_DC_OPENS, SH_FD_BITMAP, SH_FD_LIMIT, SH_PATH_MAX, SH_SLOTS, SH_SLOTS_DIRTY, SLOT_BLOB, SLOT_BLOB_LEN,
  SLOT_DIR, SLOT_ENTRY, SLOT_FDP1, SLOT_FLAGS, SLOT_GEN, SLOT_POS, STAT_SIZE,
} from '../abi/abi.generated.js';
import { type FdTable, HostFile, type OpenFile } from './open-file.js';
import { Errno, E, O, S_IFDIR, S_IFMT, STAT } from '../abi/linux.js';
import { hostGid, hostUid, mapOwner } from './identity.js';

const DIRENT_RECLEN = 16;
const DIRENT_NAME = 19;
/** Entry kinds: answers lstat, answers stat, or only the fstat of a descriptor the stub handed out. */
const NOFOLLOW = 0, FOLLOW = 1, FD_ONLY = 2;
/** Batch budget in DCACHE bytes: the first batch of a walk, and the most. */
const FIRST_BUDGET = 32 * 1024;
const MAX_BUDGET = DCACHE_SIZE - DC_HEAP;
const LISTING_CHUNK = 32 * 1024;
/** How far ahead the prefetcher may list, in batches of the current budget. */
const PREFETCH_BATCHES = 2;
/** The open flags a slot may claim: those the stub accepts for a directory open (the slot is user memory). */
const SLOT_OPEN_FLAGS = O.NONBLOCK | O.LARGEFILE | O.DIRECTORY | O.NOFOLLOW | O.NOCTTY | O.CLOEXEC;
/** Room for one listing and its stats (a directory larger than DCACHE is not cached anyway). */
const LIST_BUF_BYTES = 4 * DCACHE_SIZE;
let listBuf: Buffer | undefined;

/** What the directory cache needs from the process. */
export interface DirCacheHost {
  /** Open a guest path as the program's openat would (used to materialize a descriptor). */
  reopen(path: string, flags: number): OpenFile;
  /** Whether a guest directory lies in a read-only grant (batches are built only there). */
  readOnly(path: string): boolean;
  /** Whether the program may list a directory and stat its entries (read and search rights), by its stat. */
  listable(st: Buffer): boolean;
}

/** A directory's whole listing as the host read it: its getdents64 records and their lstat. */
class Listing {
  /** Its number in DirCache.listings (0 until kept). */
  id = 0;
  /** Indices of its subdirectories in byte order of their names (ls -R's walk), computed when first needed. */
  sorted?: number[];
  private decoded?: string[];
  private offsets?: Uint32Array;

  /**
   * stats: a struct stat per record, in order ('..' has none: its slot is unused); cost: the bytes
   * its entries and records take in DCACHE; dot: the index of '.', or -1.
   */
  constructor(readonly path: string, readonly blob: Buffer, readonly stats: Buffer, readonly count: number,
    readonly cost: number, readonly dot: number) {}

  /** Every name, decoded on first use (a walk in listing order needs only directories' names). */
  get names(): string[] {
    if (!this.decoded) {
      const names: string[] = [];
      for (let i = 0; i < this.count; i++) names.push(this.nameAt(i));
      this.decoded = names;
    }
    return this.decoded;
  }

  nameAt(i: number): string {
    if (this.decoded) return this.decoded[i]!;
    if (!this.offsets) {
      this.offsets = new Uint32Array(this.count);
      for (let k = 0, off = 0; k < this.count; k++) {
        this.offsets[k] = off;
        off += this.blob.readUInt16LE(off + DIRENT_RECLEN);
      }
    }
    const off = this.offsets[i]!;
    return direntName(this.blob, off, this.blob.readUInt16LE(off + DIRENT_RECLEN));
  }
}

/** Where a listing is in DCACHE: its number, the entry the stub opens it by, its records. */
interface Placed {
  readonly id: number;
  readonly entry: number;
  readonly blob: number;
  readonly blobLen: number;
}

/** A descriptor the stub handed out, as the host's fd table holds it until the host needs it. */
class CachedDir implements OpenFile {
  readonly hostFd = null;
  /**
   * dir and claimFlags: the slot's claim when the host took it in, the listing and the open flags
   * (with O_CLOEXEC). The stub may close the descriptor and open another in the same slot under
   * the same number between two exits; a different claim then shows it is another descriptor.
   * statusFlags: as F_GETFL gives them (O_CLOEXEC is the fd table's).
   */
  constructor(private readonly cache: DirCache, readonly slot: number, readonly fd: number, readonly path: string,
    readonly dir: number, readonly claimFlags: number, public statusFlags: number) {}
  materialize(): OpenFile { return this.cache.materialize(this); }
  read(): number { throw new Errno(E.EISDIR); }
  write(): number { throw new Errno(E.EBADF); }
  pread(): number { throw new Errno(E.EISDIR); }
  pwrite(): number { throw new Errno(E.EBADF); }
  seek(): number { throw new Errno(E.EBADF); }
  stat(): void { throw new Errno(E.EBADF); }
  getdents(): number { throw new Errno(E.EBADF); }
  isatty(): boolean { return false; }
  close(): void {}
}

const ASCII = /^[\x00-\x7f]*$/;
/** Host owners shown as the guest's (src/fs/identity.ts), for the helper library's listings. */
const OWNERS = { uid: hostUid, gid: hostGid, toUid: GUEST_UID, toGid: GUEST_GID };
const isDir = (st: Buffer, i = 0) => (st.readUInt32LE(i * STAT_SIZE + STAT.mode) & S_IFMT) === S_IFDIR;

export class DirCache {
  private gen = 1;
  private heapEnd = DC_HEAP;
  /** kind + path -> entry offset, this generation. */
  private readonly index = new Map<string, number>();
  /** Directories whose listing is in DCACHE, this generation, and where. */
  private readonly listed = new Map<string, Placed>();
  /** Listings the host keeps: the current batch's and those of directories the program holds open. */
  private readonly listings = new Map<number, Listing>();
  private nextListing = 1;
  /** The newest listing of each path. */
  private readonly byPath = new Map<string, Listing>();
  /**
   * The order the program walks siblings in: as listed (find) or sorted by name (ls -R). Learnt
   * from consecutive misses in one directory; batches follow it.
   */
  private order: 'listing' | 'sorted' = 'listing';
  private lastRoot = '';
  /** Directories whose listing does not fit DCACHE: not listed again. */
  private readonly tooBig = new Set<string>();
  /** Per slot: the descriptor the host holds a placeholder for, and the placeholder. */
  private readonly slotFd: number[] = new Array<number>(DIR_SLOTS).fill(-1);
  private readonly holders: Array<CachedDir | null> = new Array<CachedDir | null>(DIR_SLOTS).fill(null);
  private budget = FIRST_BUDGET;
  /** The stub's count of directories it opened from the cache, when the last batch was built. */
  private openedAtBatch = 0;
  private fdVersion = -1;
  private readonly statBuf = Buffer.alloc(STAT_SIZE);
  /** Scratch for the entry offsets of a listing, and DCACHE as one view (both reused). */
  private offsets = new Uint32Array(1024);
  private dcache: Buffer | undefined;
  private chunk: Buffer | undefined;
  /**
   * The lister working ahead of the batches (native/prefetch.c): started at a batch once the
   * program walks from batch to batch, in the order then learnt.
   */
  private prefetcher: libc.Prefetcher | null = null;
  private prefetchSorted = false;
  /** Where the program's walk began: the first of a run of batches. */
  private walkRoot = '';
  /** A listing a batch made but left out (over budget): the next batch most likely starts there. */
  private spare: Listing | null = null;
  /**
   * The last listing too big for DCACHE: the program reads that directory from the host next,
   * and its stats are taken from here while its records come in the same order (cursor: offset
   * and index of the next record).
   */
  private big: { path: string; blob: Buffer; stats: Buffer; cursor: BigUint64Array } | null = null;
  /**
   * For tests and the bench profile: batches built; directories listed on this thread, taken
   * from a prefetcher, and listed by one but never taken; prefetchers started.
   */
  readonly stats = { batches: 0, listed: 0, prefetched: 0, prefetchDropped: 0, prefetchers: 0, materialized: 0 };

  /** enabled: the program runs on the user-stub path without tracing. */
  constructor(private readonly mem: GuestMemory, readonly enabled: boolean, private readonly host: DirCacheHost) {}

  /** Once the machine has started (its shared page is zeroed then): switch the stub's cache on. */
  start(fds: FdTable): void {
    if (!this.enabled) return;
    this.mem.setU32(PHYS_SHARED + SH_DC_GEN, this.gen);
    this.mem.setU32(PHYS_SHARED + SH_DC_ON, 1);
    this.publishFds(fds);
  }

  // ---- the table ----

  /** Drop every entry (a new generation: descriptors the stub holds stop reading their listings). */
  private clear(): void {
    this.gen = (this.gen + 1) >>> 0 || 1;
    this.mem.setU32(PHYS_SHARED + SH_DC_GEN, this.gen);
    this.mem.fill(DCACHE + DC_BUCKETS_OFF, DC_BUCKETS * 4);
    this.heapEnd = DC_HEAP;
    this.index.clear();
    this.listed.clear();
  }

  /** Write or rewrite the entry for (path, kind); its offset, or 0 when DCACHE is full. */
  private addEntry(path: string, kind: number, st: Buffer, stOff = 0): number {
    // Only directories and the rarer kinds are indexed (their entries are looked up again); a
    // second entry for a path shadows the first (the chains are searched newest first).
    const indexed = kind !== NOFOLLOW || (st.readUInt32LE(stOff + STAT.mode) & S_IFMT) === S_IFDIR;
    const key = indexed ? kind + path : '';
    const old = indexed ? this.index.get(key) : undefined;
    if (old !== undefined) {
      st.copy(this.dcacheView(), old + DC_E_STAT, stOff, stOff + STAT_SIZE);
      return old;
    }
    // Written by the host helper library, as the entries of a listing (addRecords).
    const off = this.heapEnd;
    const end = libc.dcAddEntry(this.dcacheView(), off, bytesOf(path), kind, st.subarray(stOff, stOff + STAT_SIZE));
    if (end <= 0) return 0;
    this.heapEnd = end;
    if (indexed) this.index.set(key, off);
    return off;
  }

  /** DCACHE as one view, made once. */
  private dcacheView(): Buffer {
    this.dcache ??= this.mem.slice(DCACHE, DCACHE_SIZE);
    return this.dcache;
  }

  /**
   * Put a listing's entries (lstat of each name) in the table; `..` too when the parent's listing
   * is given (its '.' is l's `..`).
   */
  private addEntries(l: Listing, parent: Listing | null = null): boolean {
    const dotdot = parent && parent.dot >= 0 ? parent.stats.subarray(parent.dot * STAT_SIZE, (parent.dot + 1) * STAT_SIZE) : null;
    return this.addRecords(l.path, l.blob, l.stats, l.count, (i) => l.nameAt(i), dotdot);
  }

  /**
   * Entries for count getdents64 records of dir (stats: theirs; `..` with dotdot, if given),
   * written by the host helper library in one call; directories are indexed (their entries are
   * looked up again).
   */
  private addRecords(dir: string, blob: Buffer, stats: Buffer, count: number, nameOf: (i: number) => string,
    dotdot: Buffer | null = null): boolean {
    const prefix = dir === '/' ? '' : dir;
    if (this.offsets.length < count) this.offsets = new Uint32Array(Math.max(count, this.offsets.length * 2));
    const offsets = this.offsets;
    const end = libc.dcAddEntries(this.dcacheView(), this.heapEnd, bytesOf(prefix), blob, stats, count, dotdot, offsets);
    this.heapEnd = Math.abs(end);
    for (let i = 0; i < count; i++) {
      if (offsets[i] && isDir(stats, i)) this.index.set(NOFOLLOW + `${prefix}/${nameOf(i)}`, offsets[i]!);
    }
    return end > 0;
  }

  /** Put a listing and its records in the table, so the stub can open it. */
  private addListing(l: Listing, id: number, ownStat: Buffer | null, parent: Listing | null): boolean {
    if (this.heapEnd + l.cost + 2 * (DC_E_PATH + SH_PATH_MAX) > DCACHE_SIZE) return false;
    // `..` of a directory listed from its parent's listing is that parent ('.' there): both lie
    // in the grant. (A walk's first directory has no such entry: its parent may be outside.)
    if (!this.addEntries(l, parent)) return false;
    let own = this.index.get(NOFOLLOW + l.path);
    if (own === undefined) {
      // No lstat entry from the parent's listing: an entry only the descriptor's fstat reads.
      if (!ownStat) return false;
      own = this.addEntry(l.path, FD_ONLY, ownStat);
      if (!own) return false;
    }
    const blob = this.heapEnd;
    this.heapEnd += (l.blob.length + 7) & ~7;
    this.mem.write(DCACHE + blob, l.blob);
    this.mem.setU32(DCACHE + own + DC_E_DIR, id);
    this.mem.setU32(DCACHE + own + DC_E_BLOB, blob);
    this.mem.setU32(DCACHE + own + DC_E_BLOB_LEN, l.blob.length);
    this.listed.set(l.path, { id, entry: own, blob, blobLen: l.blob.length });
    return true;
  }

  // ---- what the host served ----

  /** Drop the cache: a call may have changed some file. */
  forget(): void {
    if (!this.enabled) return;
    // Listings made before may not show the change: a read-write grant may lie inside a read-only
    // tree (its directory's own lstat, in its parent's listing, changes too). Those made ahead go,
    // and kept ones are no longer put back in later batches (those of descriptors the program
    // holds stay, for the host to know them, and are read as of when it opened them).
    this.stopPrefetch();
    this.spare = null;
    this.big = null;
    this.byPath.clear();
    if (this.heapEnd === DC_HEAP) return;
    this.clear();
  }

  /** The program's end: stop the prefetcher. */
  close(): void {
    this.stopPrefetch();
  }

  /**
   * After the host answered newfstatat(AT_FDCWD, absolutePath, flags 0 or NOFOLLOW): remember
   * the answer (what the program received), so asking again needs no exit.
   */
  rememberStat(path: string, follow: boolean, st: Buffer): void {
    if (!this.enabled || !path.startsWith('/') || path.includes('\0')) return;
    if (!this.addEntry(path, follow ? FOLLOW : NOFOLLOW, st)) {
      this.clear();
      this.addEntry(path, follow ? FOLLOW : NOFOLLOW, st);
    }
  }

  /**
   * After the host served part of a directory listing: put each entry's lstat in the table (the
   * stats that usually follow a listing then need no exit). Names are looked up relative to the
   * directory's own fd without following symlinks; `..` is left out (it may lie above the grant).
   * guestRecords: the records as the program received them, in its memory: copied first, then
   * parsed from the copy only (the helper library reads each record's name more than once).
   */
  listStats(dir: HostFile, guestRecords: Buffer): void {
    if (!this.enabled || this.listed.has(dir.path) || dir.hostFd === null) return;
    const dirents = Buffer.from(guestRecords);
    const prefix = dir.path === '/' ? '' : dir.path;
    const stats = Buffer.alloc(Math.floor(dirents.length / 24) * STAT_SIZE);
    const big = this.big?.path === dir.path ? this.big : null;
    const count = big ? libc.statDirentsFrom(dir.hostFd, dirents, stats, big.blob, big.stats, big.cursor)
      : libc.statDirents(dir.hostFd, dirents, stats);
    // Room for the whole chunk first: the program stats these names next.
    if (this.heapEnd + count * (DC_E_PATH + nameLength(prefix) + 64) > DCACHE_SIZE) this.clear();
    for (let i = 0; i < count; i++) if (stats.readUInt32LE(i * STAT_SIZE + STAT.mode) !== 0) mapOwner(stats, i * STAT_SIZE);
    // The chunk as a listing only to name its records (it is not kept).
    const chunk = new Listing(dir.path, dirents, stats, count, 0, -1);
    this.addRecords(dir.path, dirents, stats, count, (i) => chunk.nameAt(i));
  }

  /**
   * After the host opened a directory for the program (fd): in a read-only grant, build a batch
   * starting there and hand the descriptor itself to the stub.
   */
  openedDir(fds: FdTable, fd: number, file: HostFile): void {
    if (!this.enabled || file.hostFd === null || !this.host.readOnly(file.path)) return;
    if (fds.limit > FD_BITMAP_FDS && fd >= FD_BITMAP_FDS) return;
    // Listed already (a walk's first directory, which the stub does not open itself, or one
    // whose slot ran out): hand the descriptor over without a new batch, which would drop the
    // listings of the descriptors the stub holds.
    const placed = this.listed.get(file.path);
    if (placed) {
      this.handOver(fds, fd, file, placed);
      return;
    }
    // Too big to cache (a batch stopped there): the host serves it, and the walk goes on below
    // and after it with the same budget and the cache as it is.
    if (this.tooBig.has(file.path)) {
      this.learnOrder(file.path);
      return;
    }
    // A program that walked the last batch gets a bigger one; one that did not starts small again.
    const opened = this.mem.u32(PHYS_SHARED + SH_DC_OPENS);
    const walking = opened !== this.openedAtBatch;
    this.budget = walking ? Math.min(this.budget * 4, MAX_BUDGET) : FIRST_BUDGET;
    this.openedAtBatch = opened;
    this.learnOrder(file.path);
    const inWalk = this.walkRoot !== '' && (this.walkRoot === file.path || isAncestor(this.walkRoot, file.path));
    if (!inWalk) this.walkRoot = file.path;
    this.stats.batches++;
    this.clear();
    this.pruneListings(file.path);
    // The parents first, with their listings: the program is still walking them, and may open
    // them again (a directory and one below it, in turn).
    const parents: Listing[] = [];
    for (let p = parentOf(file.path), l = this.byPath.get(p); l && isAncestor(p, file.path); p = parentOf(p), l = this.byPath.get(p)) {
      parents.unshift(l);
      if (p === '/') break;
    }
    for (let i = 0; i < parents.length; i++) {
      const l = parents[i]!;
      const dot = l.dot;
      const own = dot >= 0 ? l.stats.subarray(dot * STAT_SIZE, (dot + 1) * STAT_SIZE) : null;
      if (!this.addListing(l, l.id, own, i > 0 ? parents[i - 1]! : null)) this.addEntries(l);
    }
    // The prefetcher goes on where it is if it has this directory (or had it, then this batch's
    // first, left out of the last batch); otherwise it starts again here.
    let root = this.spare?.path === file.path ? this.spare : this.prefetched(file.path);
    this.spare = null;
    if (walking || (this.prefetcher && inWalk)) this.prefetch(file, root !== undefined);
    if (root === undefined) {
      root = this.list(file.hostFd, file.path);
      libc.lseek(file.hostFd, 0n, 0);
    }
    if (!root) return;
    const rootId = this.keep(root);
    check(libc.fstat(file.hostFd, this.statBuf));
    mapOwner(this.statBuf);
    if (!this.host.listable(this.statBuf)) return;
    if (!this.addListing(root, rootId, this.statBuf, null)) return;
    const limit = Math.min(DCACHE_SIZE, this.heapEnd + this.budget);
    // Then the later siblings of the root and of each parent, nearest first: the walk's order,
    // up to the first directory left out (the program opens that one next, from the host).
    let done = this.walk(root, 0, limit, file.hostFd);
    for (let child = file.path; done && child !== '/'; child = parentOf(child)) {
      const parent = this.byPath.get(parentOf(child));
      if (!parent) break;
      const index = parent.names.indexOf(baseName(child));
      const order = this.orderOf(parent);
      const at = order ? order.indexOf(index) : index;
      if (at >= 0) done = this.walk(parent, at + 1, limit);
    }
    this.handOver(fds, fd, file, this.listed.get(file.path)!);
  }

  /**
   * Depth first from the children of l (from index `from`), listing directories while the budget
   * lasts. lFd: l's directory, when the caller has it open (it stays open). Returns whether it
   * went to the end (false: it stopped at a directory it could not add).
   */
  private walk(l: Listing, from: number, limit: number, lFd = -1): boolean {
    const stack: Array<{ l: Listing; k: number; fd: number; ord: number[] | null }> = [];
    let cur = { l, k: from, fd: lFd, ord: this.orderOf(l) };
    const closeOwn = (fd: number) => { if (fd >= 0 && fd !== lFd) libc.closeFd(fd); };
    for (;;) {
      if (this.heapEnd >= limit) break;
      if (cur.k >= (cur.ord ? cur.ord.length : cur.l.count)) {
        closeOwn(cur.fd);
        const up = stack.pop();
        if (!up) return true;
        cur = up;
        continue;
      }
      const i = cur.ord ? cur.ord[cur.k++]! : cur.k++;
      if (i === cur.l.dot || !isDir(cur.l.stats, i)) continue; // '..' has a zero stat
      const name = cur.l.nameAt(i);
      if (!this.host.listable(cur.l.stats.subarray(i * STAT_SIZE, (i + 1) * STAT_SIZE))) continue;
      const path = `${cur.l.path === '/' ? '' : cur.l.path}/${name}`;
      let child = this.prefetched(path);
      let childFd = -1;
      if (child === undefined) {
        if (cur.fd < 0) {
          cur.fd = this.openDir(cur.l.path, null);
          if (cur.fd < 0) { cur.k = cur.l.count; continue; }
        }
        childFd = this.openDir(name, cur.fd);
        if (childFd < 0) continue;
        child = this.list(childFd, path);
      }
      if (!child || this.heapEnd + child.cost > limit) {
        closeOwn(childFd);
        this.spare = child;
        break;
      }
      if (!this.addListing(child, this.keep(child), null, cur.l)) { closeOwn(childFd); this.spare = child; break; }
      stack.push(cur);
      cur = { l: child, k: 0, fd: childFd, ord: this.orderOf(child) };
    }
    // Out of budget: close what is open.
    closeOwn(cur.fd);
    for (const s of stack) closeOwn(s.fd);
    return false;
  }

  /** Open a directory for listing: a name in parentFd (no symlink followed), or a guest path. */
  private openDir(name: string, parentFd: number | null): number {
    if (parentFd === null) {
      try {
        const f = this.host.reopen(name, O.RDONLY | O.DIRECTORY);
        if (!(f instanceof HostFile) || f.hostFd === null) { f.close(); return -1; }
        return f.hostFd; // closed by the caller, as HostFile.close would

      } catch {
        return -1;
      }
    }
    return libc.openat2(parentFd, name, O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC, 0,
      libc.RESOLVE_BENEATH | libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_NO_MAGICLINKS);
  }

  /** The whole listing of an open directory and each entry's lstat; null on an error. */
  private list(fd: number, path: string): Listing | null {
    if (this.tooBig.has(path)) return null;
    listBuf ??= Buffer.alloc(LIST_BUF_BYTES);
    this.stats.listed++;
    return this.toListing(path, libc.listDir(fd, listBuf, nameLength(path === '/' ? '' : path), OWNERS));
  }

  /** A directory's listing from the prefetcher (as list gives it), or undefined when it has none. */
  private prefetched(path: string): Listing | null | undefined {
    if (!this.prefetcher || this.tooBig.has(path)) return undefined;
    listBuf ??= Buffer.alloc(LIST_BUF_BYTES);
    const r = libc.prefetchTake(this.prefetcher, path, listBuf);
    if (r === null) return undefined;
    this.stats.prefetched++;
    return this.toListing(path, r);
  }

  /**
   * A listing from what listDir left in listBuf; null (and the path marked) when it does not fit
   * DCACHE, then kept as the big listing.
   */
  private toListing(path: string, r: libc.DirListing | number): Listing | null {
    if (typeof r === 'number') {
      if (r === -E.ENOSPC) this.tooBig.add(path);
      return null;
    }
    const blob = Buffer.from(listBuf!.subarray(0, r.blobLen));
    const stats = Buffer.from(listBuf!.subarray(r.statsOff, r.statsOff + r.count * STAT_SIZE));
    if (r.blobLen + r.count * (DC_E_PATH + 16) > DCACHE_SIZE - DC_HEAP) {
      this.tooBig.add(path);
      this.big = { path, blob, stats, cursor: new BigUint64Array(2) };
      return null;
    }
    return new Listing(path, blob, stats, r.count, r.cost + ((r.blobLen + 7) & ~7), r.dot);
  }

  /**
   * A batch at file once the program walks from batch to batch: have the prefetcher list the
   * rest of the walk (from file on, in the order learnt) up to a few batches ahead. inStep: the
   * running prefetcher had file's listing, so it is at the right place.
   */
  private prefetch(file: HostFile, inStep: boolean): void {
    const sorted = this.order === 'sorted';
    const window = PREFETCH_BATCHES * this.budget;
    if (this.prefetcher && inStep && this.prefetchSorted === sorted) {
      libc.prefetchWindow(this.prefetcher, window);
      return;
    }
    this.stopPrefetch();
    // From the top of the walk, so that the later siblings of file's parents are listed too.
    const top = isAncestor(this.walkRoot, file.path) ? this.walkRoot : file.path;
    const fd = top === file.path ? file.hostFd! : this.openDir(top, null);
    if (fd < 0) return;
    const resume = top === file.path ? '' : file.path.slice(top === '/' ? 1 : top.length + 1);
    const p = libc.prefetchStart(fd, top, resume, sorted, LIST_BUF_BYTES, window, OWNERS);
    if (fd !== file.hostFd) libc.closeFd(fd);
    if (typeof p === 'number') return; // then the batches list on this thread, as before
    this.prefetcher = p;
    this.prefetchSorted = sorted;
  }

  private stopPrefetch(): void {
    if (!this.prefetcher) return;
    const counts = libc.prefetchStats(this.prefetcher);
    this.stats.prefetchers++;
    this.stats.prefetchDropped += counts.dropped;
    libc.prefetchStop(this.prefetcher);
    this.prefetcher = null;
  }

  private keep(l: Listing): number {
    const id = this.nextListing++;
    l.id = id;
    this.listings.set(id, l);
    this.byPath.set(l.path, l);
    return id;
  }

  /**
   * The order the program goes into l's subdirectories in: their indices sorted by name, or null
   * for listing order (then every entry's index, in turn).
   */
  private orderOf(l: Listing): number[] | null {
    if (this.order !== 'sorted') return null;
    if (!l.sorted) {
      const order: number[] = [];
      for (let i = 0; i < l.count; i++) if (i !== l.dot && isDir(l.stats, i)) order.push(i); // '..' has a zero stat
      const names: string[] = [];
      for (const i of order) names[i] = l.nameAt(i);
      // Byte order, as ls sorts in the C locale. For ASCII names that is JavaScript's string
      // order; otherwise (UTF-16 code units differ from UTF-8 bytes above U+FFFF) compare bytes.
      if (order.every((i) => ASCII.test(names[i]!))) {
        order.sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0));
      } else {
        const bytes = names.map((n) => bytesOf(n));
        order.sort((a, b) => Buffer.compare(bytes[a]!, bytes[b]!));
      }
      l.sorted = order;
    }
    return l.sorted;
  }

  /** A miss next to the last one in the same directory tells which way the program walks. */
  private learnOrder(path: string): void {
    const last = this.lastRoot;
    this.lastRoot = path;
    const parent = this.byPath.get(parentOf(path));
    if (!parent || parentOf(last) !== parent.path || last === path) return;
    const x = baseName(path), y = baseName(last);
    const byListing = parent.names.indexOf(x) > parent.names.indexOf(y);
    const bySort = Buffer.compare(bytesOf(x), bytesOf(y)) > 0;
    if (byListing !== bySort) this.order = byListing ? 'listing' : 'sorted';
  }

  /** Keep only the listings the program may still need: held descriptors' and (with `under`) its parents'. */
  private pruneListings(under?: string): void {
    const held = new Set<number>();
    for (const holder of this.holders) if (holder) held.add(holder.dir); // the host's copy: slots are user memory
    for (const [id, l] of this.listings) {
      if (held.has(id) || (under !== undefined && isAncestor(l.path, under))) continue;
      this.listings.delete(id);
      if (this.byPath.get(l.path) === l) this.byPath.delete(l.path);
    }
  }

  /** Replace the host's descriptor for a listed directory with one the stub serves. */
  private handOver(fds: FdTable, fd: number, file: HostFile, at: Placed): void {
    let s = 0;
    while (s < DIR_SLOTS && (this.slotFd[s]! >= 0 || this.mem.u32(slotAddr(s) + SLOT_FDP1) !== 0)) s++;
    if (s === DIR_SLOTS) return;
    const cloexec = fds.cloexec(fd);
    const claim = (file.statusFlags | (cloexec ? O.CLOEXEC : 0)) & SLOT_OPEN_FLAGS;
    const a = slotAddr(s);
    this.mem.setU32(a + SLOT_GEN, this.gen);
    this.mem.setU32(a + SLOT_DIR, at.id);
    this.mem.setU32(a + SLOT_ENTRY, at.entry);
    this.mem.setU32(a + SLOT_BLOB, at.blob);
    this.mem.setU32(a + SLOT_BLOB_LEN, at.blobLen);
    this.mem.setU32(a + SLOT_POS, 0);
    this.mem.setU32(a + SLOT_FLAGS, claim);
    this.mem.setU32(a + SLOT_FDP1, fd + 1);
    const holder = new CachedDir(this, s, fd, file.path, at.id, claim, file.statusFlags);
    fds.placeAt(fd, holder, cloexec); // closes the host file
    this.slotFd[s] = fd;
    this.holders[s] = holder;
  }

  // ---- descriptors the stub handed out ----

  /** Before the host serves a call: take in the descriptors the stub opened or closed. */
  sync(fds: FdTable): void {
    if (!this.enabled || this.mem.u32(PHYS_SHARED + SH_SLOTS_DIRTY) === 0) return;
    this.mem.setU32(PHYS_SHARED + SH_SLOTS_DIRTY, 0);
    for (let s = 0; s < DIR_SLOTS; s++) {
      const a = slotAddr(s);
      const fd = this.mem.u32(a + SLOT_FDP1) - 1;
      const held = this.slotFd[s]!;
      const dir = this.mem.u32(a + SLOT_DIR);
      // Only the flags the stub accepts for a directory open (the slot is user memory).
      const flags = this.mem.u32(a + SLOT_FLAGS) & SLOT_OPEN_FLAGS;
      const holder = this.holders[s];
      // Closed, or closed and opened again (maybe under the same number) since the host looked.
      if (held >= 0 && (fd !== held || holder?.dir !== dir || holder.claimFlags !== flags)) this.release(fds, s);
      if (fd < 0 || this.slotFd[s]! >= 0) continue;
      const l = this.listings.get(dir);
      if (!l || fd >= Math.min(fds.limit, FD_BITMAP_FDS) || fds.peek(fd) !== undefined) {
        this.mem.setU32(a + SLOT_FDP1, 0); // not a claim the host can honour: the descriptor is not there
        continue;
      }
      // F_GETFL leaves out O_CLOEXEC (the fd table's) and O_NOCTTY (dropped at open), as on Linux.
      const placeholder = new CachedDir(this, s, fd, l.path, dir, flags, flags & ~(O.CLOEXEC | O.NOCTTY));
      fds.placeAt(fd, placeholder, (flags & O.CLOEXEC) !== 0);
      this.slotFd[s] = fd;
      this.holders[s] = placeholder;
    }
  }

  /** The stub closed slot s's descriptor (or the host replaced it): drop the host's placeholder. */
  private release(fds: FdTable, s: number): void {
    const fd = this.slotFd[s]!;
    if (fds.peek(fd) === this.holders[s]) fds.close(fd);
    this.slotFd[s] = -1;
    this.holders[s] = null;
  }

  /** After the host served a call: end slots whose placeholder the host dropped (dup2 over it, exec). */
  afterServe(fds: FdTable): void {
    if (!this.enabled) return;
    for (let s = 0; s < DIR_SLOTS; s++) {
      const fd = this.slotFd[s]!;
      if (fd >= 0 && fds.peek(fd) !== this.holders[s]) {
        this.mem.setU32(slotAddr(s) + SLOT_FDP1, 0);
        this.slotFd[s] = -1;
        this.holders[s] = null;
      }
    }
    this.publishFds(fds);
  }

  /** The host needs a descriptor the stub handed out: open the directory for real, where the program had read to. */
  materialize(holder: CachedDir): OpenFile {
    const s = holder.slot;
    const a = slotAddr(s);
    let pos = 0;
    if (this.holders[s] === holder && this.mem.u32(a + SLOT_FDP1) === holder.fd + 1) {
      // Clamped to the listing the host placed (the slot's own length is user memory too).
      pos = Math.min(this.mem.u32(a + SLOT_POS), this.listings.get(holder.dir)?.blob.length ?? 0);
      this.mem.setU32(a + SLOT_FDP1, 0);
      this.slotFd[s] = -1;
      this.holders[s] = null;
    }
    this.stats.materialized++;
    const file = this.host.reopen(holder.path, holder.statusFlags | O.DIRECTORY);
    // Skip the records the program has read: the same records, as the directory is unchanged.
    while (pos > 0) {
      this.chunk ??= Buffer.alloc(LISTING_CHUNK);
      const n = file.getdents(this.chunk.subarray(0, Math.min(pos, LISTING_CHUNK)));
      if (n <= 0) break;
      pos -= n;
    }
    return file;
  }

  /** Republish which descriptors are in use (the stub allocates the lowest free one). */
  private publishFds(fds: FdTable): void {
    if (fds.version === this.fdVersion) return;
    this.fdVersion = fds.version;
    const limit = Math.min(fds.limit, FD_BITMAP_FDS);
    this.mem.setU32(PHYS_SHARED + SH_FD_LIMIT, limit);
    // 32-bit words, little-endian as the stub's 64-bit ones: the same bits.
    const words = new Uint32Array(FD_BITMAP_FDS / 32);
    for (let fd = 0, used = Math.min(limit, fds.span); fd < used; fd++) {
      if (fds.peek(fd) !== undefined) words[fd >> 5]! |= 1 << (fd & 31);
    }
    for (let fd = limit; fd < FD_BITMAP_FDS; fd++) words[fd >> 5]! |= 1 << (fd & 31);
    this.mem.write(PHYS_SHARED + SH_FD_BITMAP, Buffer.from(words.buffer));
  }
}

function slotAddr(s: number): number {
  return PHYS_SHARED + SH_SLOTS + s * DIR_SLOT_SIZE;
}

function direntName(buf: Buffer, off: number, reclen: number): string {
  const end = buf.indexOf(0, off + DIRENT_NAME);
  return nameOf(buf.subarray(off + DIRENT_NAME, end < 0 || end > off + reclen ? off + reclen : end));
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function isAncestor(dir: string, path: string): boolean {
  return dir === '/' ? path !== '/' : path.startsWith(dir + '/');
}

function check(r: number): number {
  if (r < 0) throw new Errno(-r);
  return r;
}
