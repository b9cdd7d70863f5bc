// Memory: brk, anonymous mappings, and file mappings as copies of the file's bytes (private ones,
// and shared read-only ones, which can never be made writable), whose pages past the file's end
// are SIGBUS until the file grows over them (see fileSource). The pages a process may hold
// bytes in (mapped writable once, or filled) stay within --memory (PageTables' commit limit; a
// reservation, PROT_NONE or never writable, is free), so a request beyond it fails with ENOMEM
// and the host never allocates more. A MAP_SHARED
// anonymous mapping is host memory of its own (SharedBacking) that a fork's child maps too, so
// parent and child see each other's writes; all of it together stays within --memory.
import { PROT_EXEC, PROT_READ, PROT_WRITE, type AddressSpace, type MapSource } from '../address-space.js';
import { DeviceFile, HostFile } from '../../fs/open-file.js';
import { E, Errno, O, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED } from '../../abi/linux.js';
import { alignUp, PAGE_SIZE } from '../../machine/x86.js';
import type { Process } from '../process.js';
import { int, size, type SyscallGroup } from './args.js';
import { SharedBacking } from '../../kvm/shared-memory.js';
import * as libc from '../../kvm/libc.js';
import { STAT, STAT_SIZE } from '../../abi/linux.js';
import { hostIdentity, readWhole } from '../../fs/vfs.js';
import { imageOfFile } from '../image-cache.js';
import { F_SEAL_FUTURE_WRITE, F_SEAL_WRITE, ShmFile } from '../../fs/shm.js';

const PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC;
const MREMAP_MAYMOVE = 1;
const MREMAP_FIXED = 2;
/** Move the pages and leave the old range mapped, empty (Linux 5.7): same length, MAYMOVE, private memory. */
const MREMAP_DONTUNMAP = 4;
const MADV_DONTNEED = 4;
const MPOL_DEFAULT = 0, MPOL_PREFERRED = 1, MPOL_BIND = 2, MPOL_INTERLEAVE = 3, MPOL_LOCAL = 4, MPOL_MAX = 6;
const MPOL_F_STATIC_NODES = 1 << 15, MPOL_F_RELATIVE_NODES = 1 << 14, MPOL_F_NUMA_BALANCING = 1 << 13;
const MPOL_MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;
const MPOL_F_NODE = 1, MPOL_F_ADDR = 2, MPOL_F_MEMS_ALLOWED = 4;
/** Most bits a node mask may have (Linux: a page of them). */
const MAX_NODE_BITS = PAGE_SIZE * 8;
/** Nodes a mask may name at all (Debian's CONFIG_NODES_SHIFT=10); only node 0 exists. */
const MAX_NUMNODES = 1024;
/**
 * A read-only copy of more of a file than this is filled as it is read (AddressSpace.fillReserved)
 * instead of at mmap; smaller ones, and the images of files up to the same size, at once.
 */
const FILL_LAZILY = 64 << 20;
/** Largest file offset (off_t). */
const MAX_OFF = (1n << 63n) - 1n;

function pageArgs(addr: bigint, len: bigint): [number, number] {
  if (addr % BigInt(PAGE_SIZE) !== 0n) throw new Errno(E.EINVAL);
  const n = size(len);
  if (n <= 0) throw new Errno(E.EINVAL);
  return [Number(addr > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : addr), alignUp(n, PAGE_SIZE)];
}

/**
 * A node mask of maxnode - 1 bits from user memory, as Linux's get_nodes reads it: none when the
 * pointer is NULL or maxnode is 0 or 1; EINVAL past a page of bits, or for a node past MAX_NUMNODES.
 */
function readNodes(p: Process, addr: bigint, maxnodeArg: bigint): bigint {
  const bits = Number(BigInt.asUintN(64, maxnodeArg) > BigInt(MAX_NODE_BITS + 1) ? -1n : maxnodeArg) - 1;
  if (bits < -1) throw new Errno(E.EINVAL);
  if (addr === 0n || bits <= 0) return 0n;
  const buf = Buffer.from(p.userBuffer(addr, Math.ceil(bits / 64) * 8));
  let nodes = 0n;
  for (let i = buf.length / 8 - 1; i >= 0; i--) nodes = (nodes << 64n) | buf.readBigUInt64LE(i * 8);
  nodes &= (1n << BigInt(bits)) - 1n;
  if (nodes >> BigInt(MAX_NUMNODES) !== 0n) throw new Errno(E.EINVAL);
  return nodes;
}

function mprotect(p: Process, a: readonly bigint[]): number {
  const [start, len] = pageArgs(a[0]!, a[1]!);
  const prot = int(a[2]!);
  if (prot & ~PROT_ALL & ~0x03000000) throw new Errno(E.EINVAL);
  if (inUserRange(p, start, len)) {
    p.mapPool.reclaim(p.space, start, len);
    p.space.clipHeap(start, len);
  }
  if (!inUserRange(p, start, len)) throw new Errno(E.ENOMEM);
  // A MAP_SHARED file mapping is a copy: a write could never reach the file.
  if (prot & PROT_WRITE && p.space.hasSharedFile(start, len)) throw new Errno(E.EACCES);
  // Pages of a file's image become the process's own before they can be written.
  if (prot & PROT_WRITE) p.space.memory.privatize(start, len);
  if (!p.space.protect(start, len, prot & PROT_ALL)) throw new Errno(E.ENOMEM);
  return 0;
}

export function inUserRange(p: Process, start: number, len: number): boolean {
  return start >= p.space.userFloor && start + len <= p.space.userTop;
}

/**
 * The file behind a file mapping, checked as Linux's mmap checks it, before anything is mapped:
 * only regular host files can be mapped (ENODEV for pipes, terminals, directories and kvmbox's
 * made-up files); /dev/zero gives anonymous memory (null). The file must be open for reading
 * (EACCES). A MAP_SHARED writable mapping needs the file open read-write (EACCES, as Linux); it
 * maps the file's mirror (src/linux/file-mirror.ts) where address spaces have memory of their
 * own, and is ENODEV elsewhere (kvm_pvm). The offset range must fit in off_t (EOVERFLOW).
 */
function mappableFile(p: Process, fd: number, type: number, prot: number, off: bigint, len: number): HostFile | ShmFile | null {
  const file = p.fds.get(fd);
  if (file instanceof DeviceFile && file.path === '/dev/zero') return null;
  if (file instanceof ShmFile) {
    // A file of /dev/shm or memfd_create: a MAP_SHARED mapping maps its memory itself.
    const mode = file.statusFlags & O.ACCMODE;
    if (mode === O.WRONLY || (type === MAP_SHARED && prot & PROT_WRITE && mode !== O.RDWR)) throw new Errno(E.EACCES);
    // Sealed against writes: no writable shared mapping (EPERM, as Linux).
    if (type === MAP_SHARED && prot & PROT_WRITE && file.node.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) throw new Errno(E.EPERM);
    if (off + BigInt(len) > MAX_OFF) throw new Errno(E.EOVERFLOW);
    return file;
  }
  if (!(file instanceof HostFile) || !file.isRegular()) throw new Errno(E.ENODEV);
  const mode = file.statusFlags & O.ACCMODE;
  if (mode === O.WRONLY) throw new Errno(E.EACCES);
  if (type === MAP_SHARED && prot & PROT_WRITE) {
    if (mode !== O.RDWR || file.statusFlags & O.APPEND) throw new Errno(E.EACCES);
    if (!p.kernel.fileMirrors) throw new Errno(E.ENODEV);
  }
  if (off + BigInt(len) > MAX_OFF) throw new Errno(E.EOVERFLOW);
  return file;
}

/**
 * Copy n bytes of the file from off into the fresh (zero) pages at start of space. What lies
 * beyond the file's end stays zero (the rest of the last page; whole pages past the end are not
 * copied at all, see fileSource).
 */
function copyFile(space: AddressSpace, file: HostFile | ShmFile, start: number, n: number, off: bigint): void {
  const buf = space.memory.slice(start, n);
  let done = 0;
  while (done < n) {
    const r = file.pread(buf.subarray(done), off + BigInt(done));
    if (r <= 0) break;
    done += r;
  }
  // A file that shrank meanwhile: zeros (pages filled later may have held bytes before).
  buf.fill(0, done);
}

/** The size of a file to be mapped, in bytes. */
function sizeOf(file: HostFile | ShmFile): number {
  if (file instanceof ShmFile) return file.node.size;
  const st = Buffer.alloc(STAT_SIZE);
  const r = libc.fstat(file.hostFd, st);
  if (r < 0) throw new Errno(-r);
  return Number(st.readBigInt64LE(STAT.size));
}

/**
 * What fills more of a file mapping: its pages that lay past the file's end once the file has
 * grown over them, and what mremap adds: the file's mirror or /dev/shm memory for MAP_SHARED
 * mappings that map it, a copy of the file's bytes for the others (as the mapping's other
 * pages). It holds the open file, as a mapping does on Linux, while an address space maps it;
 * undefined when the sandbox's mappings hold as many files as it may have descriptors (then
 * pages past the end read as zero, and mremap grows with zeros).
 */
function fileSource(p: Process, file: HostFile | ShmFile, sharedMemory: boolean): MapSource | undefined {
  const fds = p.fds, mirrors = p.kernel.fileMirrors;
  if (!fds.holdMapped(file)) return undefined;
  let holds = 1;
  // The bytes are put in place behind the reserved (PROT_NONE) page-table entries, and the pages
  // get their rights after: another vCPU of the process never sees them half filled. Charged as
  // pages that hold bytes, checked before anything is written.
  const mapWith = (space: AddressSpace, start: number, len: number, prot: number, put: () => void): boolean => {
    if (!space.canMap(start, len, prot, true)) return false;
    try {
      put();
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      return false;
    }
    space.map(start, len, prot, true);
    return true;
  };
  return {
    size: () => {
      try {
        return sizeOf(file);
      } catch (e) {
        if (e instanceof Errno) return 0;
        throw e;
      }
    },
    fill: (space, start, len, offset, prot) => mapWith(space, start, len, prot, () => {
      if (sharedMemory && file instanceof ShmFile) {
        if (!file.node.backing.grow(offset + len)) throw new Errno(E.ENOMEM);
        space.memory.share(start, len, file.node.backing, offset);
      } else if (sharedMemory && file instanceof HostFile && mirrors) {
        space.memory.share(start, len, mirrors.mirror(file, offset + len), offset);
      } else {
        copyFile(space, file, start, len, BigInt(offset));
      }
    }),
    hold: () => {
      holds++;
    },
    release: () => {
      if (--holds === 0) fds.releaseMapped(file);
    },
  };
}

/**
 * Make [start, start+len) free for a MAP_FIXED mapping (or MREMAP_FIXED's target); with
 * noReplace (MAP_FIXED_NOREPLACE), EEXIST instead when something is mapped there.
 */
export function clearFixed(p: Process, start: number, len: number, noReplace = false): void {
  p.mapPool.reclaim(p.space, start, len);
  p.space.clipHeap(start, len);
  if (p.space.isFree(start, len)) return;
  if (noReplace) throw new Errno(E.EEXIST);
  p.space.unmap(start, len);
}

/**
 * mremap's MREMAP_FIXED target (a[4]), checked: page aligned, in the user range and not
 * overlapping the old range (EINVAL); null without MREMAP_FIXED.
 */
function mremapTarget(p: Process, flags: number, arg: bigint, old: number, oldLen: number, newLen: number): number | null {
  if (!(flags & MREMAP_FIXED)) return null;
  if (!(flags & MREMAP_MAYMOVE)) throw new Errno(E.EINVAL);
  const dest = arg > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(arg);
  if (dest % PAGE_SIZE !== 0 || !inUserRange(p, dest, newLen)) throw new Errno(E.EINVAL);
  if (dest < old + oldLen && old < dest + newLen) throw new Errno(E.EINVAL);
  return dest;
}

/**
 * The image of a host file (src/linux/image-cache.ts) for a read-only private mapping of it, where
 * address spaces have memory of their own; null to copy the file's bytes instead.
 */
function imageFor(p: Process, file: HostFile | ShmFile, type: number, prot: number): SharedBacking | null {
  if (!(file instanceof HostFile) || type !== MAP_PRIVATE || prot & PROT_WRITE || !p.kernel.sharedMemory) return null;
  // A file that shared mappings write: its bytes are the mirror's (copyFile reads through it).
  if (p.kernel.fileMirrors?.existing(file.identity())) return null;
  const st = Buffer.alloc(STAT_SIZE);
  if (libc.fstat(file.hostFd, st) < 0) return null;
  const size = Number(st.readBigInt64LE(STAT.size));
  return imageOfFile(hostIdentity(st), size, () => readWhole(file.hostFd, size));
}

function mmap(p: Process, a: bigint[]): number {
  const [addrArg, lenArg, protArg, flagsArg, fdArg, offArg] = a as [bigint, bigint, bigint, bigint, bigint, bigint];
  const prot = int(protArg);
  const flags = int(flagsArg);
  if (prot & ~PROT_ALL) throw new Errno(E.EINVAL);
  const type = flags & (MAP_SHARED | MAP_PRIVATE);
  if (type === 0) throw new Errno(E.EINVAL);
  const n = size(lenArg);
  if (n <= 0) throw new Errno(E.EINVAL);
  const len = alignUp(n, PAGE_SIZE);
  if (offArg % BigInt(PAGE_SIZE) !== 0n) throw new Errno(E.EINVAL);
  const file = flags & MAP_ANONYMOUS ? null : mappableFile(p, int(fdArg), type, prot, offArg, len);
  const anonymous = file === null;
  let start: number;
  const hint = addrArg > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(addrArg);
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (hint % PAGE_SIZE !== 0) throw new Errno(E.EINVAL);
    if (!inUserRange(p, hint, len)) throw new Errno(E.ENOMEM);
    clearFixed(p, hint, len, (flags & MAP_FIXED_NOREPLACE) !== 0);
    start = hint;
  } else if (hint > 0 && hint % PAGE_SIZE === 0 && inUserRange(p, hint, len) && p.space.isFree(hint, len)) {
    start = hint;
  } else {
    start = p.space.findFree(len);
    if (!start) throw new Errno(E.ENOMEM);
  }
  // A private anonymous mapping is mapped with its rights at once: unless writable, it commits
  // no memory (zeros until mprotect makes it writable, which charges it). The others are filled
  // or shared while read-write, then get their rights.
  const privateAnonymous = anonymous && type === MAP_PRIVATE;
  const mirrors = p.kernel.fileMirrors;
  const writableFd = file instanceof HostFile && (file.statusFlags & O.ACCMODE) === O.RDWR && !(file.statusFlags & O.APPEND);
  // A MAP_SHARED mapping that maps the file's memory rather than a copy: a file the mapping may
  // write, or that other mappings write (its mirror, which every such mapping in the sandbox
  // shares), or a file of /dev/shm.
  const mirrored = file instanceof HostFile && type === MAP_SHARED && mirrors !== null && (writableFd || mirrors.existing(file.identity()) !== undefined);
  const sharesFile = mirrored || (file instanceof ShmFile && type === MAP_SHARED);
  const source = file ? fileSource(p, file, sharesFile) : undefined;
  try {
    // Of a file, the pages that hold some of its bytes (inFile); those past its end are
    // reserved, and an access there is SIGBUS until the file grows over them
    // (AddressSpace.fillReserved). A large read-only copy is filled where it is read, a chunk at
    // a time, so that a mapping of a file larger than --memory works when a part of it is read.
    const inFile = file ? Math.min(len, alignUp(Math.max(0, sizeOf(file) - Number(offArg)), PAGE_SIZE)) : len;
    const filled = source && !sharesFile && !(prot & PROT_WRITE) && inFile > FILL_LAZILY ? 0 : inFile;
    p.space.map(start, filled, privateAnonymous ? prot : PROT_READ | PROT_WRITE);
    if (filled < len) {
      try {
        p.space.map(start + filled, len - filled, 0);
      } catch (e) {
        p.space.unmap(start, len);
        throw e;
      }
    }
    if (anonymous && type === MAP_SHARED && p.kernel.sharedMemory) {
      const backing = SharedBacking.create(len, p.kernel.sharedMemory);
      if (!backing) {
        p.space.unmap(start, len);
        throw new Errno(E.ENOMEM);
      }
      p.space.memory.share(start, len, backing, 0);
      backing.release(); // the mapping holds it
    }
    if (mirrored) {
      if (filled > 0) {
        let mirror: SharedBacking;
        try {
          mirror = mirrors!.mirror(file as HostFile, Number(offArg) + filled);
        } catch (e) {
          p.space.unmap(start, len);
          throw e;
        }
        p.space.memory.share(start, filled, mirror, Number(offArg));
      }
      // From an fd not open for writing, the mapping may never be made writable (mprotect: EACCES).
      if (!writableFd) p.space.markSharedFile(start, len);
    } else if (file instanceof ShmFile && type === MAP_SHARED) {
      if (filled > 0 && !file.node.backing.grow(Number(offArg) + filled)) {
        p.space.unmap(start, len);
        throw new Errno(E.ENOMEM);
      }
      if (filled > 0) p.space.memory.share(start, filled, file.node.backing, Number(offArg));
      // A file sealed against writes: the mapping may never be made writable (mprotect: EACCES).
      if (file.node.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) p.space.markSharedFile(start, len);
    } else if (file) {
      const image = filled > 0 ? imageFor(p, file, type, prot) : null;
      try {
        // The image's pages where the file has them; past its end they stay zero.
        if (image && offArg < BigInt(image.size)) p.space.memory.share(start, Math.min(filled, image.size - Number(offArg)), image, Number(offArg), true);
        else if (filled > 0) copyFile(p.space, file, start, Math.min(n, filled), offArg);
      } catch (e) {
        p.space.unmap(start, len);
        throw e;
      }
      if (type === MAP_SHARED) p.space.markSharedFile(start, len);
    }
    if (!privateAnonymous && prot !== (PROT_READ | PROT_WRITE)) p.space.map(start, filled, prot);
    if (file) {
      p.space.nameRange(start, len, file.path, Number(offArg), source);
      if (source && filled < len) p.space.reserveFile(start + filled, len - filled, Number(offArg) + filled, prot, type === MAP_SHARED, source);
      // Without a source, pages past the end are zeros, as a mapping of them always was before.
      if (!source && filled < len) p.space.map(start + filled, len - filled, prot);
    }
  } finally {
    // The address space holds it now, or nothing does (the mapping failed, or was made without one).
    source?.release();
  }
  if (privateAnonymous && prot === (PROT_READ | PROT_WRITE) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) p.mapPool.noteAnonymous(start, len);
  return start;
}

/**
 * mremap of (part of) one shared range: the new pages map the same host memory, grown if need
 * be (a move keeps the contents shared, as Linux does; growing a shared anonymous mapping
 * grows what it maps). Returns the new address.
 */
function mremapShared(p: Process, old: number, oldLen: number, newLen: number, flags: number, prot: number, fixed: number | null): number {
  const r = p.space.memory.sharedAt(old);
  if (!r || old + oldLen > r.end) throw new Errno(E.EINVAL);
  const backing = r.backing, off = r.offset + (old - r.start);
  // A file's mirror grows with the file's bytes (a program that maps a growing file grows the
  // mapping after the file: SQLite's mmap mode).
  const mirrors = p.kernel.fileMirrors;
  const grow = (end: number): boolean => mirrors?.has(backing) ? mirrors.grow(backing, end) : backing.grow(end);
  if (fixed !== null) {
    if (!grow(off + newLen)) throw new Errno(E.ENOMEM);
    clearFixed(p, fixed, newLen);
    p.space.map(fixed, newLen, PROT_READ | PROT_WRITE);
    p.space.memory.share(fixed, newLen, backing, off);
    p.space.unmap(old, oldLen);
    if (prot !== (PROT_READ | PROT_WRITE)) p.space.map(fixed, newLen, prot);
    return fixed;
  }
  if (newLen <= oldLen) {
    if (newLen < oldLen) p.space.unmap(old + newLen, oldLen - newLen);
    return old;
  }
  if (!grow(off + newLen)) throw new Errno(E.ENOMEM);
  let start: number;
  if (inUserRange(p, old + oldLen, newLen - oldLen) && p.space.isFree(old + oldLen, newLen - oldLen)) {
    start = old;
    p.space.map(old + oldLen, newLen - oldLen, PROT_READ | PROT_WRITE);
    p.space.memory.share(old + oldLen, newLen - oldLen, backing, off + oldLen);
  } else {
    if (!(flags & MREMAP_MAYMOVE)) throw new Errno(E.ENOMEM);
    start = p.space.findFree(newLen);
    if (!start) throw new Errno(E.ENOMEM);
    p.space.map(start, newLen, PROT_READ | PROT_WRITE);
    p.space.memory.share(start, newLen, backing, off);
    p.space.unmap(old, oldLen);
  }
  if (prot !== (PROT_READ | PROT_WRITE)) p.space.map(start, newLen, prot);
  return start;
}

/**
 * MADV_DONTNEED over mappings that are copies of a file (not its image, mirror or /dev/shm
 * memory, which discard already gives back): their pages hold the file's bytes again, as Linux
 * reads them from the file at the next fault, instead of zeros.
 */
function refillCopies(p: Process, start: number, len: number): void {
  const space = p.space, end = start + len;
  const copy = (a: number) => !space.memory.sharedAt(a) && !space.reservedAt(a);
  for (const r of space.sourcedIn(start, len)) {
    const hi = Math.min(r.end, end);
    for (let a = Math.max(r.start, start); a < hi;) {
      if (!copy(a)) {
        a += PAGE_SIZE;
        continue;
      }
      // A run of copied pages with the same rights.
      const prot = space.paging.pageProt(a) & PROT_ALL;
      let b = a + PAGE_SIZE;
      while (b < hi && copy(b) && (space.paging.pageProt(b) & PROT_ALL) === prot) b += PAGE_SIZE;
      r.source!.fill(space, a, b - a, r.offset + (a - r.start), prot);
      a = b;
    }
  }
}

/** What mappings of host files in [start, start+len) wrote goes to the files (munmap, msync). */
function writeBackMirrors(p: Process, start: number, len: number): void {
  const mirrors = p.kernel.fileMirrors;
  if (!mirrors) return;
  const backings = p.space.memory.shared.filter((r) => r.start < start + len && start < r.end && mirrors.has(r.backing)).map((r) => r.backing);
  if (backings.length) mirrors.writeBack(backings);
}

const MS_ASYNC = 1, MS_INVALIDATE = 2, MS_SYNC = 4;
const MLOCK_ONFAULT = 1, MCL_CURRENT = 1, MCL_FUTURE = 2, MCL_ONFAULT = 4;
const RLIMIT_MEMLOCK = 8;

/**
 * mlock/munlock of [addr, addr+len), widened to whole pages: every page must be mapped (ENOMEM).
 * The locked pages count against RLIMIT_MEMLOCK (ENOMEM past it; EPERM when it is 0), as for an
 * unprivileged user on Linux.
 */
function lockPages(p: Process, addr: bigint, lenArg: bigint, lock: boolean): number {
  const n = size(lenArg);
  if (n < 0 || addr > BigInt(Number.MAX_SAFE_INTEGER)) throw new Errno(E.ENOMEM);
  const start = Math.floor(Number(addr) / PAGE_SIZE) * PAGE_SIZE;
  const end = alignUp(Number(addr) + n, PAGE_SIZE);
  if (end === start) return 0;
  if (!inUserRange(p, start, end - start) || !p.space.paging.accessible(start, end - start, 0)) throw new Errno(E.ENOMEM);
  const locked = p.space.locked;
  if (!lock) {
    p.space.unlock(start, end - start);
    return 0;
  }
  const limit = p.rlimit(RLIMIT_MEMLOCK)[0];
  if (limit === 0n) throw new Errno(E.EPERM);
  // A range larger than the limit can never fit: no need to walk its pages.
  if (BigInt(end - start) > limit) throw new Errno(E.ENOMEM);
  let more = 0;
  for (let page = start / PAGE_SIZE; page < end / PAGE_SIZE; page++) if (!locked.has(page)) more++;
  if (BigInt((locked.size + more) * PAGE_SIZE) > limit) throw new Errno(E.ENOMEM);
  for (let page = start / PAGE_SIZE; page < end / PAGE_SIZE; page++) locked.add(page);
  return 0;
}

export const mmSyscalls: SyscallGroup = {
  mlock: ({ process: p }, a) => lockPages(p, a[0], a[1], true),
  mlock2: ({ process: p }, a) => {
    if (a[2] & ~BigInt(MLOCK_ONFAULT)) throw new Errno(E.EINVAL);
    return lockPages(p, a[0], a[1], true);
  },
  munlock: ({ process: p }, a) => lockPages(p, a[0], a[1], false),
  // MCL_CURRENT locks what is mapped now, so it fails past RLIMIT_MEMLOCK as on Linux; MCL_FUTURE
  // alone is taken without enforcing the limit on later mappings.
  mlockall: ({ process: p }, a) => {
    const flags = int(a[0]);
    if (!(flags & (MCL_CURRENT | MCL_FUTURE)) || flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) throw new Errno(E.EINVAL);
    const limit = p.rlimit(RLIMIT_MEMLOCK)[0];
    if (limit === 0n) throw new Errno(E.EPERM);
    if (flags & MCL_CURRENT && BigInt(p.space.paging.committed) > limit) throw new Errno(E.ENOMEM);
    return 0;
  },
  munlockall: ({ process: p }) => { p.space.locked.clear(); return 0; },
  msync: ({ process: p }, a) => {
    if (a[0] % BigInt(PAGE_SIZE) !== 0n) throw new Errno(E.EINVAL);
    const flags = int(a[2]);
    if (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) || (flags & MS_ASYNC && flags & MS_SYNC)) throw new Errno(E.EINVAL);
    const n = size(a[1]);
    if (n < 0) throw new Errno(E.ENOMEM);
    const start = Number(a[0] > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : a[0]), len = alignUp(n, PAGE_SIZE);
    if (len === 0) return 0;
    if (!inUserRange(p, start, len) || !p.space.paging.accessible(start, len, 0)) throw new Errno(E.ENOMEM);
    writeBackMirrors(p, start, len);
    return 0;
  },
  brk: ({ process: p }, a) => p.space.brk(size(a[0])),
  mmap: ({ process: p }, a) => mmap(p, a),
  munmap: ({ process: p }, a) => {
    const [start, len] = pageArgs(a[0], a[1]);
    if (!inUserRange(p, start, len)) throw new Errno(E.EINVAL);
    writeBackMirrors(p, start, len);
    if (p.mapPool.keep(p.space, start, len)) return 0;
    p.mapPool.reclaim(p.space, start, len);
    p.space.clipHeap(start, len);
    p.space.unmap(start, len);
    return 0;
  },
  mprotect: ({ process: p }, a) => mprotect(p, a),
  // No protection keys, as Linux on a CPU without PKU: pkey_alloc finds no key it can set up
  // (EINVAL, as Linux, after its own checks), so no key exists to free or to give pages, and
  // pkey_mprotect with -1 (no key) is mprotect.
  pkey_alloc: () => { throw new Errno(E.EINVAL); },
  pkey_free: () => { throw new Errno(E.EINVAL); },
  pkey_mprotect: ({ process: p }, a) => {
    if (int(a[3]) !== -1) throw new Errno(E.EINVAL);
    return mprotect(p, a);
  },
  // NUMA policy, as Linux 6.1 on a machine with one node (node 0): set_mempolicy keeps a
  // policy that get_mempolicy gives back, checked as Linux checks it; there is nowhere else for
  // memory to go, so it has no effect. mbind is not offered.
  set_mempolicy: ({ process: p }, a) => {
    const flags = int(a[0]) & MPOL_MODE_FLAGS, mode = int(a[0]) & ~MPOL_MODE_FLAGS;
    if (mode < 0 || mode >= MPOL_MAX || (flags & MPOL_F_STATIC_NODES && flags & MPOL_F_RELATIVE_NODES)) throw new Errno(E.EINVAL);
    if (flags & MPOL_F_NUMA_BALANCING && mode !== MPOL_BIND) throw new Errno(E.EINVAL);
    const nodes = readNodes(p, a[1], a[2]);
    let kept = mode;
    if (mode === MPOL_DEFAULT) {
      if (nodes !== 0n) throw new Errno(E.EINVAL);
      p.memPolicy = { mode: 0, nodes: 0n };
      return 0;
    }
    if (nodes === 0n) {
      if (flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)) throw new Errno(E.EINVAL);
      if (mode === MPOL_PREFERRED) kept = MPOL_LOCAL;
      else if (mode !== MPOL_LOCAL) throw new Errno(E.EINVAL);
    } else if (mode === MPOL_LOCAL || (!(nodes & 1n) && !(flags & MPOL_F_RELATIVE_NODES))) throw new Errno(E.EINVAL);
    // With MPOL_F_STATIC_NODES or MPOL_F_RELATIVE_NODES, get_mempolicy gives back the nodes as asked.
    const asked = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) ? nodes : 1n;
    p.memPolicy = { mode: kept | flags, nodes: kept === MPOL_LOCAL ? 0n : asked };
    return 0;
  },
  get_mempolicy: ({ process: p }, a) => {
    const flags = int(a[4]);
    if (flags & ~(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED)) throw new Errno(E.EINVAL);
    const maxnode = size(a[2]);
    if (a[1] !== 0n && maxnode < 1) throw new Errno(E.EINVAL);
    let mode = p.memPolicy.mode, nodes = p.memPolicy.nodes;
    if (flags & MPOL_F_MEMS_ALLOWED) {
      if (flags & (MPOL_F_NODE | MPOL_F_ADDR)) throw new Errno(E.EINVAL);
      mode = 0;
      nodes = 1n;
    } else if (flags & MPOL_F_ADDR) {
      // A mapping's own policy (mbind) is never set: the default; with MPOL_F_NODE, the page's node.
      const at = Number(BigInt.asUintN(64, a[3]) & ~BigInt(PAGE_SIZE - 1));
      if (!inUserRange(p, at, PAGE_SIZE) || p.space.isFree(at, PAGE_SIZE)) throw new Errno(E.EFAULT);
      mode = 0;
      nodes = 0n;
    } else if (a[3] !== 0n) throw new Errno(E.EINVAL);
    else if (flags & MPOL_F_NODE) {
      // The node an interleaving policy uses next; no node otherwise.
      if ((mode & ~MPOL_MODE_FLAGS) !== MPOL_INTERLEAVE) throw new Errno(E.EINVAL);
      mode = 0;
    }
    // Checked before anything is written.
    const policy = a[0] !== 0n ? p.userBuffer(a[0], 4, PROT_WRITE) : null;
    const mask = a[1] !== 0n ? p.userBuffer(a[1], Math.ceil((maxnode - 1) / 64) * 8, PROT_WRITE) : null;
    policy?.writeInt32LE(mode);
    if (mask) {
      mask.fill(0);
      for (let i = 0; i + 8 <= mask.length; i += 8) mask.writeBigUInt64LE(BigInt.asUintN(64, nodes >> BigInt(i * 8)), i);
    }
    return 0;
  },
  // mincore: per page, whether the host holds it (touched, or read from a file); ENOMEM where a
  // page of the range is not mapped, as Linux.
  mincore: ({ process: p }, a) => {
    if (a[0] % BigInt(PAGE_SIZE) !== 0n) throw new Errno(E.EINVAL);
    const n = size(a[1]);
    if (n === 0) return 0;
    const start = Number(a[0]), len = n < 0 ? -1 : alignUp(n, PAGE_SIZE);
    if (len < 0 || !p.space.paging.accessible(start, len, 0)) throw new Errno(E.ENOMEM);
    p.userBuffer(a[2], len / PAGE_SIZE, PROT_WRITE).set(p.space.memory.residency(start, len));
    return 0;
  },
  madvise: ({ process: p }, a) => {
    const [start, len] = pageArgs(a[0], a[1]);
    if (!inUserRange(p, start, len)) throw new Errno(E.ENOMEM);
    if (int(a[2]) === MADV_DONTNEED && p.space.paging.accessible(start, len, 0)) {
      p.space.memory.discard(start, len);
      refillCopies(p, start, len);
    }
    return 0;
  },
  mremap: ({ process: p }, a) => {
    const [old, oldLen] = pageArgs(a[0], a[1]);
    const n = size(a[2]);
    if (n <= 0) throw new Errno(E.EINVAL);
    const newLen = alignUp(n, PAGE_SIZE);
    const flags = int(a[3]);
    if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) throw new Errno(E.EINVAL);
    const keepOld = (flags & MREMAP_DONTUNMAP) !== 0;
    if (keepOld && (!(flags & MREMAP_MAYMOVE) || newLen !== oldLen)) throw new Errno(E.EINVAL);
    const fixed = mremapTarget(p, flags, a[4], old, oldLen, newLen);
    // Without MREMAP_FIXED, DONTUNMAP's new address is a hint, checked as Linux does.
    if (keepOld && fixed === null && (a[4] % BigInt(PAGE_SIZE) !== 0n || (a[4] < BigInt(old + oldLen) && BigInt(old) < a[4] + BigInt(newLen)))) throw new Errno(E.EINVAL);
    if (!inUserRange(p, old, oldLen) || !p.space.paging.accessible(old, oldLen, 0)) throw new Errno(E.EFAULT);
    p.mapPool.reclaim(p.space, old, oldLen);
    p.space.clipHeap(old, oldLen);
    // (A first page of a file mapping not filled yet is reserved: its rights are the mapping's.)
    const prot = p.space.reservedAt(old)?.prot ?? p.space.paging.pageProt(old) & PROT_ALL;
    p.space.memory.privatize(old, oldLen);
    const sharedMemory = p.space.memory.sharedAt(old) || p.space.memory.sharedAt(old + oldLen - PAGE_SIZE);
    const shared = p.space.hasSharedFile(old, oldLen);
    // MREMAP_DONTUNMAP moves private memory only here (as Linux before 5.13).
    if (keepOld && (sharedMemory || shared)) throw new Errno(E.EINVAL);
    if (sharedMemory) return mremapShared(p, old, oldLen, newLen, flags, prot, fixed);
    if (fixed === null && newLen <= oldLen && !keepOld) {
      if (newLen < oldLen) p.space.unmap(old + newLen, oldLen - newLen);
      return old;
    }
    // Unfilled pages move with the mapping, and a mapping of a file grows by more of
    // the file: its bytes, and past its end pages filled once the file covers them, as Linux.
    const unfilled = p.space.reservedIn(old, oldLen);
    const tail = p.space.fileRangeAt(old + oldLen - PAGE_SIZE);
    const growTail = (at: number): void => {
      if (!tail?.source || newLen <= oldLen) return;
      const offset = tail.offset + (old + oldLen - tail.start);
      // As mmap fills it: a large read-only growth where it is read.
      const lazy = !(prot & PROT_WRITE) && newLen - oldLen > FILL_LAZILY;
      const inFile = lazy ? 0 : Math.min(newLen - oldLen, alignUp(Math.max(0, tail.source.size() - offset), PAGE_SIZE));
      if (inFile > 0 && !tail.source.fill(p.space, at + oldLen, inFile, offset, prot)) throw new Errno(E.ENOMEM);
      if (inFile < newLen - oldLen) p.space.reserveFile(at + oldLen + inFile, newLen - oldLen - inFile, offset + inFile, prot, shared, tail.source);
      p.space.nameRange(at + oldLen, newLen - oldLen, tail.name, offset, tail.source);
    };
    if (fixed === null && !keepOld && inUserRange(p, old + oldLen, newLen - oldLen) && p.space.isFree(old + oldLen, newLen - oldLen)) {
      p.space.map(old + oldLen, newLen - oldLen, prot);
      if (shared) p.space.markSharedFile(old + oldLen, newLen - oldLen);
      growTail(old);
      return old;
    }
    if (!(flags & MREMAP_MAYMOVE)) throw new Errno(E.ENOMEM);
    if (fixed !== null) clearFixed(p, fixed, newLen);
    const dest = fixed ?? p.space.findFree(newLen);
    if (!dest) throw new Errno(E.ENOMEM);
    p.space.map(dest, newLen, PROT_READ | PROT_WRITE);
    p.space.memory.copyWithin(dest, old, Math.min(oldLen, newLen));
    p.space.map(dest, newLen, prot);
    // Before the old range goes: it holds their files.
    for (const r of p.space.namedRanges()) {
      const lo = Math.max(r.start, old), hi = Math.min(r.end, old + Math.min(oldLen, newLen));
      if (lo < hi && !r.name.startsWith('[')) p.space.nameRange(dest + (lo - old), hi - lo, r.name, r.offset + (lo - r.start), r.source);
    }
    for (const r of unfilled) {
      const end = Math.min(r.end, old + newLen);
      if (r.start < end) p.space.reserveFile(dest + (r.start - old), end - r.start, r.offset, r.prot, r.shared, r.source);
    }
    growTail(dest);
    // The old range stays mapped with its protection, its pages empty again.
    if (keepOld) p.space.memory.discard(old, oldLen);
    else p.space.unmap(old, oldLen);
    if (shared) p.space.markSharedFile(dest, newLen);
    return dest;
  },
};
