// /dev/shm, and memfd_create: a small in-memory file system of the sandbox's own (as tmpfs), for
// POSIX shared memory (shm_open, sem_open: glibc keeps both as files in /dev/shm) and anonymous
// memory files. A file's bytes live in host memory that only kvmbox holds (SharedBacking), within
// the sandbox's shared-memory budget; a MAP_SHARED mapping of the file maps that memory itself,
// so every process that maps it sees every write, and read and write see them too. Nothing here
// reaches a host file or is seen by another sandbox. One flat directory: no subdirectories,
// symbolic links or special files.
import { nameLength } from '../abi/file-names.js';
import * as libc from '../kvm/libc.js';
import { SharedBacking, type SharedBudget } from '../kvm/shared-memory.js';
import { E, Errno, O, S_IFDIR, S_IFREG, STAT, STAT_SIZE } from '../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../abi/abi.generated.js';
import { DirListing, DT_REG, type OpenFile } from './open-file.js';

const SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2;
const FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
/** File seals (fcntl F_ADD_SEALS): no more seals, no shrinking, no growing, no writes (now, and later). */
export const F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8, F_SEAL_FUTURE_WRITE = 0x10;
const ALL_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
const NO_WRITES = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
/** Largest file size (tmpfs's s_maxbytes is larger; this keeps offsets exact in a double). */
const MAX_SIZE = 2 ** 52;
const NAME_MAX = 255;
/** struct statfs (x86-64). */
const STATFS_SIZE = 120;
const SHM_DIR_INO = 0x6000_0001;
let nextIno = 0x6000_0100;

function timespecNow(out: Buffer, off: number): void {
  const ns = BigInt(Date.now()) * 1_000_000n;
  out.writeBigInt64LE(ns / 1_000_000_000n, off);
  out.writeBigInt64LE(ns % 1_000_000_000n, off + 8);
}

/** One file: its bytes (a backing of its own), size, mode and links. */
export class ShmNode {
  readonly ino = nextIno++;
  private bytes = 0;
  private links = 0;
  private opens = 0;
  private readonly times = Buffer.alloc(32);
  /**
   * Its seals: F_SEAL_SEAL alone (none may be added) unless memfd_create was given
   * MFD_ALLOW_SEALING, as for every tmpfs file on Linux.
   */
  seals = F_SEAL_SEAL;

  constructor(readonly backing: SharedBacking, public mode: number) {
    timespecNow(this.times, 0);
    timespecNow(this.times, 16);
  }

  get size(): number { return this.bytes; }

  /** A name or an open file more or fewer; with neither left, the memory goes (mappings hold their own). */
  link(delta: number): void { this.links += delta; this.drop(); }
  open(delta: number): void { this.opens += delta; this.drop(); }
  get nlink(): number { return this.links; }
  private drop(): void {
    if (this.links === 0 && this.opens === 0) this.backing.release();
  }

  touch(): void {
    timespecNow(this.times, 0);
    timespecNow(this.times, 16);
  }

  pread(buf: Buffer, offset: bigint): number {
    if (offset < 0n) throw new Errno(E.EINVAL);
    if (offset >= BigInt(this.bytes)) return 0;
    const n = Math.min(buf.length, this.bytes - Number(offset));
    if (n === 0) return 0;
    const r = libc.pread(this.backing.fd, buf.subarray(0, n), offset);
    if (r < 0) throw new Errno(-r);
    return r;
  }

  pwrite(buf: Buffer, offset: bigint): number {
    if (offset < 0n) throw new Errno(E.EINVAL);
    if (buf.length === 0) return 0;
    if (this.seals & NO_WRITES) throw new Errno(E.EPERM);
    if (this.seals & F_SEAL_GROW && Number(offset) + buf.length > this.bytes) {
      // Sealed against growth: Linux writes page by page and refuses the first piece that
      // would end past the size (EPERM when it is the first, else a short write).
      const start = Number(offset);
      const firstEnd = Math.min(start + buf.length, (Math.floor(start / 4096) + 1) * 4096);
      if (firstEnd > this.bytes) throw new Errno(E.EPERM);
      buf = buf.subarray(0, Math.max(firstEnd, Math.floor(this.bytes / 4096) * 4096) - start);
    }
    const end = Number(offset) + buf.length;
    if (offset >= BigInt(MAX_SIZE) || end > MAX_SIZE) throw new Errno(E.EFBIG);
    if (!this.backing.grow(end)) throw new Errno(E.ENOSPC);
    const r = libc.pwrite(this.backing.fd, buf, offset);
    if (r < 0) throw new Errno(-r);
    this.bytes = Math.max(this.bytes, Number(offset) + r);
    this.touch();
    return r;
  }

  /** ftruncate: bytes cut off read as zero if the file grows again (its memory never shrinks: see SharedBacking). */
  truncate(size: bigint): void {
    if (size < 0n) throw new Errno(E.EINVAL);
    if (size > BigInt(MAX_SIZE)) throw new Errno(E.EFBIG);
    const n = Number(size);
    if ((n < this.bytes && this.seals & F_SEAL_SHRINK) || (n > this.bytes && this.seals & F_SEAL_GROW)) throw new Errno(E.EPERM);
    if (n > this.bytes && !this.backing.grow(n)) throw new Errno(E.ENOSPC);
    if (n < this.bytes) {
      const r = libc.fallocate(this.backing.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, size, BigInt(this.bytes - n));
      if (r < 0) throw new Errno(-r);
    }
    this.bytes = n;
    this.touch();
  }

  stat(out: Buffer): void {
    out.fill(0, 0, STAT_SIZE);
    out.writeBigUInt64LE(BigInt(this.ino), STAT.ino);
    out.writeBigUInt64LE(BigInt(this.links), STAT.nlink);
    out.writeUInt32LE(S_IFREG | (this.mode & 0o7777), STAT.mode);
    out.writeUInt32LE(GUEST_UID, STAT.uid);
    out.writeUInt32LE(GUEST_GID, STAT.gid);
    out.writeBigInt64LE(BigInt(this.bytes), STAT.size);
    out.writeBigInt64LE(4096n, STAT.blksize);
    out.writeBigInt64LE(BigInt(Math.ceil(this.bytes / 4096) * 8), STAT.blocks);
    this.times.copy(out, STAT.atime, 0, 16);
    this.times.copy(out, STAT.mtime, 16, 32);
    this.times.copy(out, STAT.ctime, 16, 32);
  }
}

/** An open file of /dev/shm or of memfd_create. */
export class ShmFile implements OpenFile {
  readonly hostFd = null;
  private offset = 0;
  private closed = false;

  constructor(readonly node: ShmNode, readonly path: string, public statusFlags: number) {
    node.open(1);
  }

  private get canRead(): boolean { return (this.statusFlags & O.ACCMODE) !== O.WRONLY; }
  private get canWrite(): boolean { return (this.statusFlags & O.ACCMODE) !== O.RDONLY; }

  read(buf: Buffer): number {
    if (!this.canRead) throw new Errno(E.EBADF);
    const n = this.node.pread(buf, BigInt(this.offset));
    this.offset += n;
    return n;
  }

  write(buf: Buffer): number {
    if (!this.canWrite) throw new Errno(E.EBADF);
    if (this.statusFlags & O.APPEND) this.offset = this.node.size;
    const n = this.node.pwrite(buf, BigInt(this.offset));
    this.offset += n;
    return n;
  }

  pread(buf: Buffer, offset: bigint): number {
    if (!this.canRead) throw new Errno(E.EBADF);
    return this.node.pread(buf, offset);
  }

  pwrite(buf: Buffer, offset: bigint): number {
    if (!this.canWrite) throw new Errno(E.EBADF);
    return this.node.pwrite(buf, offset);
  }

  seek(offset: bigint, whence: number): number {
    const base = whence === SEEK_SET ? 0 : whence === SEEK_CUR ? this.offset : whence === SEEK_END ? this.node.size : -1;
    if (base < 0) throw new Errno(E.EINVAL);
    const to = base + Number(offset);
    if (to < 0 || to > MAX_SIZE) throw new Errno(E.EINVAL);
    this.offset = to;
    return to;
  }

  /** ftruncate(2): the file must be open for writing (EINVAL otherwise, as Linux). */
  truncate(size: bigint): void {
    if (!this.canWrite) throw new Errno(E.EINVAL);
    this.node.truncate(size);
  }

  /** Another open file of this file (an open of /proc/self/fd/N), with flags as open(2) has them. */
  reopen(flags: number): ShmFile {
    const f = new ShmFile(this.node, this.path, flags & (O.ACCMODE | O.NONBLOCK | O.APPEND));
    if (flags & O.TRUNC && f.canWrite) {
      try {
        f.node.truncate(0n);
      } catch (e) {
        f.close();
        throw e;
      }
    }
    return f;
  }

  /**
   * fcntl F_ADD_SEALS: EINVAL for an unknown seal, EPERM from a file not open for writing or
   * once F_SEAL_SEAL is set. F_SEAL_WRITE while a shared mapping may write the file is EBUSY,
   * which the caller checks (it knows the address spaces).
   */
  addSeals(seals: number): void {
    if (seals & ~ALL_SEALS) throw new Errno(E.EINVAL);
    if (!this.canWrite || this.node.seals & F_SEAL_SEAL) throw new Errno(E.EPERM);
    this.node.seals |= seals;
  }

  stat(out: Buffer): void { this.node.stat(out); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  available(): number { return Math.max(0, this.node.size - this.offset); }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.node.open(-1);
  }
}

/** The sandbox's /dev/shm. */
export class ShmDir {
  private readonly names = new Map<string, ShmNode>();
  private readonly times = Buffer.alloc(16);

  constructor(private readonly budget: SharedBudget) {
    timespecNow(this.times, 0);
  }

  /** A new file of size 0 (ENOSPC when the budget has no room for one more). */
  private newNode(mode: number): ShmNode {
    const backing = SharedBacking.create(0, this.budget);
    if (!backing) throw new Errno(E.ENOSPC);
    const node = new ShmNode(backing, mode);
    return node;
  }

  private static checkName(name: string): void {
    if (nameLength(name) > NAME_MAX) throw new Errno(E.ENAMETOOLONG);
  }

  /** open(2) of /dev/shm/name, or of /dev/shm itself (name null). */
  open(name: string | null, flags: number, mode: number, umask: number): OpenFile {
    const keep = flags & (O.ACCMODE | O.APPEND | O.NONBLOCK);
    if (name === null) {
      if (flags & O.CREAT) throw new Errno(E.EISDIR);
      if ((flags & O.ACCMODE) !== O.RDONLY) throw new Errno(E.EISDIR);
      return new DirListing('/dev/shm', keep, () => [...this.names].map(([n, node]) => ({ name: n, type: DT_REG, ino: node.ino })), SHM_DIR_INO);
    }
    ShmDir.checkName(name);
    let node = this.names.get(name);
    if (node) {
      if (flags & O.CREAT && flags & O.EXCL) throw new Errno(E.EEXIST);
      if (flags & O.DIRECTORY) throw new Errno(E.ENOTDIR);
      const want = (flags & O.ACCMODE) === O.RDONLY ? 4 : (flags & O.ACCMODE) === O.WRONLY ? 2 : 6;
      if (((node.mode >> 6) & want) !== want) throw new Errno(E.EACCES);
    } else {
      if (!(flags & O.CREAT)) throw new Errno(E.ENOENT);
      if (flags & O.DIRECTORY) throw new Errno(E.EINVAL);
      node = this.newNode(mode & ~umask & 0o777);
      node.link(1);
      this.names.set(name, node);
      this.touchDir();
    }
    const file = new ShmFile(node, `/dev/shm/${name}`, keep);
    if (flags & O.TRUNC && (flags & O.ACCMODE) !== O.RDONLY) node.truncate(0n);
    return file;
  }

  /** memfd_create(2): a file with no name in /dev/shm; sealable (MFD_ALLOW_SEALING) starts with no seal. */
  anonymous(name: string, flags: number, sealable = false): ShmFile {
    const node = this.newNode(0o777);
    if (sealable) node.seals = 0;
    const file = new ShmFile(node, `/memfd:${name} (deleted)`, O.RDWR | (flags & O.NONBLOCK));
    return file;
  }

  /** stat(2) of /dev/shm (name null) or of a file in it. */
  stat(name: string | null, out: Buffer): void {
    if (name === null) {
      out.fill(0, 0, STAT_SIZE);
      out.writeBigUInt64LE(BigInt(SHM_DIR_INO), STAT.ino);
      out.writeBigUInt64LE(2n, STAT.nlink);
      out.writeUInt32LE(S_IFDIR | 0o1777, STAT.mode);
      out.writeBigInt64LE(4096n, STAT.blksize);
      for (const off of [STAT.atime, STAT.mtime, STAT.ctime]) this.times.copy(out, off);
      return;
    }
    this.lookup(name).stat(out);
  }

  lookup(name: string): ShmNode {
    const node = this.names.get(name);
    if (!node) throw new Errno(E.ENOENT);
    return node;
  }

  unlink(name: string, rmdir: boolean): void {
    const node = this.lookup(name);
    if (rmdir) throw new Errno(E.ENOTDIR);
    this.names.delete(name);
    node.link(-1);
    this.touchDir();
  }

  link(from: string, to: string): void {
    const node = this.lookup(from);
    ShmDir.checkName(to);
    if (this.names.has(to)) throw new Errno(E.EEXIST);
    // Each name counts, as tmpfs charges a link an inode: at most as many names as files.
    if (this.names.size >= this.budget.maxCount) throw new Errno(E.ENOSPC);
    this.names.set(to, node);
    node.link(1);
    this.touchDir();
  }

  /** rename(2) within /dev/shm; flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2). */
  rename(from: string, to: string, flags: number): void {
    const node = this.lookup(from);
    ShmDir.checkName(to);
    if (from === to) return;
    const there = this.names.get(to);
    if (flags & 2) {
      if (!there) throw new Errno(E.ENOENT);
      this.names.set(to, node);
      this.names.set(from, there);
      return;
    }
    if (there && flags & 1) throw new Errno(E.EEXIST);
    this.names.delete(from);
    this.names.set(to, node);
    if (there) there.link(-1);
    this.touchDir();
  }

  chmod(name: string | null, mode: number): void {
    if (name === null) throw new Errno(E.EPERM);
    const node = this.lookup(name);
    node.mode = mode & 0o7777 & ~0o6000;
  }

  /** statfs(2) of /dev/shm: a tmpfs whose size and file count are the sandbox's shared-memory budget. */
  statfs(out: Buffer): void {
    const TMPFS_MAGIC = 0x01021994n;
    const blocks = BigInt(Math.floor(this.budget.limit / 4096));
    const free = BigInt(Math.max(0, Math.floor((this.budget.limit - this.budget.used) / 4096)));
    out.fill(0, 0, STATFS_SIZE);
    out.writeBigInt64LE(TMPFS_MAGIC, 0); // f_type
    out.writeBigInt64LE(4096n, 8); // f_bsize
    out.writeBigInt64LE(blocks, 16); // f_blocks
    out.writeBigInt64LE(free, 24); // f_bfree
    out.writeBigInt64LE(free, 32); // f_bavail
    out.writeBigInt64LE(BigInt(this.budget.maxCount), 40); // f_files
    out.writeBigInt64LE(BigInt(Math.max(0, this.budget.maxCount - this.budget.count)), 48); // f_ffree
    out.writeBigInt64LE(BigInt(NAME_MAX), 64); // f_namelen
    out.writeBigInt64LE(4096n, 72); // f_frsize
  }

  private touchDir(): void { timespecNow(this.times, 0); }

  /** Every name goes (the sandbox ended); open files and mappings let go of theirs when they close. */
  clear(): void {
    for (const node of this.names.values()) node.link(-1);
    this.names.clear();
  }
}
