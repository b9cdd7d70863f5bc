// What a guest file descriptor refers to. Every kind answers the same small interface; a
// system call that a kind does not support fails with the errno Linux gives for it.
import { bytesOf } from '../abi/file-names.js';
import * as libc from '../kvm/libc.js';
import { E, Errno, O, S_IFCHR, S_IFDIR, S_IFIFO, S_IFREG, STAT, STAT_SIZE } from '../abi/linux.js';
import { inodeKey } from './vfs.js';

export interface OpenFile {
  /** For traces and /proc/self/fd. */
  readonly path: string;
  /** O_ACCMODE | O_APPEND | O_NONBLOCK ... as given at open, for fcntl(F_GETFL). */
  statusFlags: number;
  read(buf: Buffer): number;
  write(buf: Buffer): number;
  pread(buf: Buffer, offset: bigint): number;
  pwrite(buf: Buffer, offset: bigint): number;
  seek(offset: bigint, whence: number): number;
  /** Fill a 144-byte struct stat. */
  stat(out: Buffer): void;
  getdents(buf: Buffer): number;
  isatty(): boolean;
  /** The host fd behind this file, when there is one (ioctl, ftruncate, fsync, fchmod). */
  readonly hostFd: number | null;
  close(): void;
  /**
   * poll(2) readiness now: POLLIN | POLLOUT | POLLHUP | POLLERR. Absent: always readable and
   * writable, like a regular file.
   */
  pollMask?(): number;
  /** A host fd that poll may wait on when this file is not ready yet (a terminal, inherited stdin). */
  pollHostFd?(): number | null;
  /**
   * For in-memory streams: how many of want bytes a write would take now, with nothing written;
   * throws as that write would (EPIPE, EAGAIN, WouldBlock). sendfile asks before it consumes
   * its source, so that it never reads what it cannot write.
   */
  reserve?(want: number): number;
  /** Bytes that a read would return now without blocking (FIONREAD). */
  available?(): number;
  /**
   * For a file that becomes readable by time alone (a timerfd): when it is or will be readable,
   * in performance.now() milliseconds (a time already past when it is readable now); Infinity
   * when no time will make it so. Poll and epoll waits wake at it (syscalls/io.ts pollEntries).
   */
  readyAt?(): number;
  /**
   * For EPOLLET: a count that grows at each event that would wake an edge-triggered watcher of
   * events (POLLIN: data or an end came; POLLOUT: room was made), as Linux wakes its wait
   * queues; null when this file keeps no such count for them (epoll then reports it as
   * level-triggered, which never misses an event).
   */
  edges?(events: number): number | null;
  /**
   * A stand-in that becomes a real file when the host first uses the descriptor (a directory the
   * user-mode stub opened: src/fs/dir-cache.ts). FdTable.get swaps the result in.
   */
  materialize?(): OpenFile;
}

export const POLLIN = 0x001, POLLPRI = 0x002, POLLOUT = 0x004, POLLERR = 0x008, POLLHUP = 0x010, POLLNVAL = 0x020;

/** Host poll(2) of one fd with timeout 0: its revents. */
export function hostReady(fd: number, events: number): number {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  return libc.poll(pfd, 1, 0) > 0 ? pfd.readInt16LE(6) : 0;
}

/**
 * A read or write that has to wait for another process (to fill the pipe it reads, or drain the
 * one it writes). The kernel (src/linux/kernel.ts) parks the calling task until ready() says the
 * call can make progress, then runs the call again; when no other process could ever make it
 * ready, the call ends the program instead. Nothing is transferred before this is thrown.
 */
export class WouldBlock extends Errno {
  /**
   * timeout: a wait with a time limit (poll, nanosleep): at `at` (performance.now() ms) the call
   * ends with result() instead of running again, unless ready() holds by then. `at` may be a
   * getter that moves (a wait that a timer can end wakes at the timer: syscalls/io.ts); it is
   * never past while ready() is false, except for the wait's own limit.
   */
  constructor(readonly what: string, readonly ready: () => boolean, readonly timeout?: { at: number; result: () => number },
    /** Called when the wait ends without ready(): at its timeout, or interrupted by a signal. */
    readonly onCancel?: (why: 'timeout' | 'signal') => void,
    /** Host fds whose readiness (poll events) may make ready() true: the kernel polls them while nothing runs. */
    readonly hostFds?: ReadonlyArray<{ fd: number; events: number }>,
    /** Bytes the call has moved already (a blocking write waiting for room for the rest): what it returns if a signal interrupts the wait. */
    readonly partial?: () => number) {
    super(E.EAGAIN);
  }
}

const SEEK_CUR = 1;
const readable = (f: OpenFile) => (f.statusFlags & O.ACCMODE) !== O.WRONLY;
const writable = (f: OpenFile) => (f.statusFlags & O.ACCMODE) !== O.RDONLY;

function check(r: number): number {
  if (r < 0) throw new Errno(-r);
  return r;
}

/**
 * The host files that the sandbox's memory maps MAP_SHARED for writing. Each has a copy that its
 * mappings share (src/linux/file-mirror.ts), newer than the file where the mappings wrote: a read
 * of such a file takes the copy's bytes, a write goes to both, and a change of the file's size or
 * layout goes through the copy, so the file and its mappings agree as they do on Linux.
 */
export interface MappedFiles {
  /** How many files have a copy: with none, reads and writes go straight to the host. */
  readonly count: number;
  /** For the file with this identity (inodeKey): buf gets the copy's bytes of [offset, offset + buf.length) (read), or the copy gets buf's. */
  overlay(key: string, buf: Buffer, offset: bigint, read: boolean): void;
  /** op changes the size or the layout of the file (ftruncate, fallocate, O_TRUNC): the copy goes to the file first and is made from it after. */
  reshape<T>(key: string, op: () => T): T;
}

/** A file or directory on the host, inside a grant. */
export class HostFile implements OpenFile {
  private regular: boolean | undefined;
  /** Its identity (inodeKey), once asked: the same for as long as the fd is open. */
  private key: string | undefined;
  /** mapped: the sandbox's mapped files, which this file's reads and writes must agree with. */
  constructor(readonly hostFd: number, readonly path: string, public statusFlags: number, private readonly mapped: MappedFiles | null = null) {}
  /** A regular file (worth reading ahead), as fstat says once. */
  isRegular(): boolean {
    if (this.regular === undefined) this.identify();
    return this.regular!;
  }
  /** The file's identity (device and inode), as fstat says once. */
  identity(): string {
    if (this.key === undefined) this.identify();
    return this.key!;
  }
  private identify(): void {
    const st = Buffer.alloc(STAT_SIZE);
    const r = libc.fstat(this.hostFd, st);
    this.regular = r >= 0 && (st.readUInt32LE(STAT.mode) & 0o170000) === 0o100000;
    this.key = r >= 0 ? inodeKey(st) : `fd:${this.hostFd}`;
  }
  get readable(): boolean { return readable(this); }
  read(buf: Buffer): number {
    if (!readable(this)) throw new Errno(E.EBADF);
    return this.through(buf, check(libc.read(this.hostFd, buf)), null, true);
  }
  write(buf: Buffer): number {
    if (!writable(this)) throw new Errno(E.EBADF);
    return this.through(buf, check(libc.write(this.hostFd, buf)), null, false);
  }
  pread(buf: Buffer, offset: bigint): number {
    if (!readable(this)) throw new Errno(E.EBADF);
    return this.through(buf, check(libc.pread(this.hostFd, buf, offset)), offset, true);
  }
  pwrite(buf: Buffer, offset: bigint): number {
    if (!writable(this)) throw new Errno(E.EBADF);
    return this.through(buf, check(libc.pwrite(this.hostFd, buf, offset)), offset, false);
  }
  /**
   * After n bytes of buf were read or written at offset (null: up to the file position now): the
   * same bytes from or to the copy the sandbox maps, if the file has one. Returns n.
   */
  private through(buf: Buffer, n: number, offset: bigint | null, read: boolean): number {
    const m = this.mapped;
    if (!m || m.count === 0 || n <= 0 || !this.isRegular()) return n;
    const at = offset ?? BigInt(libc.lseek(this.hostFd, 0n, SEEK_CUR)) - BigInt(n);
    if (at >= 0n) m.overlay(this.identity(), buf.subarray(0, n), at, read);
    return n;
  }
  /** op changes the file's size or layout (ftruncate, fallocate): a mapped copy of it changes with it. */
  reshape<T>(op: () => T): T {
    const m = this.mapped;
    return m && m.count > 0 && this.isRegular() ? m.reshape(this.identity(), op) : op();
  }
  seek(offset: bigint, whence: number): number { return check(libc.lseek(this.hostFd, offset, whence)); }
  stat(out: Buffer): void { check(libc.fstat(this.hostFd, out)); }
  getdents(buf: Buffer): number { return check(libc.getdents64(this.hostFd, buf)); }
  isatty(): boolean { return false; }
  close(): void { libc.closeFd(this.hostFd); }
  available(): number {
    const st = Buffer.alloc(STAT_SIZE);
    check(libc.fstat(this.hostFd, st));
    const pos = libc.lseek(this.hostFd, 0n, 1);
    return Math.max(0, Number(st.readBigInt64LE(STAT.size)) - Math.max(0, pos));
  }
}

/** Where a guest's standard output or error goes. */
export interface OutputSink {
  /**
   * Take bytes. stop, when given, is asked while a host fd is not ready to take them (a full
   * pipe, a stopped terminal): true means the run is ending (time limit, cancel) and the rest may
   * be dropped, so that the host never waits past the run's limits.
   */
  write(bytes: Uint8Array, stop?: () => boolean): void;
  /** True when this is a terminal (for isatty/TCGETS). */
  readonly tty?: boolean;
  /** The host fd, when writing straight to one. */
  readonly hostFd?: number;
  /** The host only collects what is written (RunOptions stdout/stderr 'capture'): nobody can
   * tell when it arrives, so the user-mode stub may buffer it until the next exit. */
  readonly deferrable?: boolean;
  /** The most bytes this sink keeps (RunOptions 'capture'): a write beyond it is cut at the limit
   * and the program is stopped as by the output limit (exit status 153). */
  readonly limit?: number;
}

/** Where a guest's standard input comes from. */
export interface InputSource {
  /** Fill buf; return bytes read (0 at end). */
  read(buf: Buffer): number;
  readonly tty?: boolean;
  readonly hostFd?: number;
}

/** The stat of an object with no file behind it (a pipe, a socket, an epoll or eventfd file). */
export function streamStat(out: Buffer, ino: number, mode: number): void {
  madeUpStat(out, ino, mode, 1n, 4096n);
}

/** A struct stat of a file kvmbox makes up (no host file behind it): the rest is zero. */
function madeUpStat(out: Buffer, ino: number, mode: number, nlink: bigint, blksize: bigint): void {
  out.fill(0, 0, STAT_SIZE);
  out.writeBigUInt64LE(BigInt(ino), STAT.ino);
  out.writeBigUInt64LE(nlink, STAT.nlink);
  out.writeUInt32LE(mode, STAT.mode);
  out.writeBigInt64LE(blksize, STAT.blksize);
}

function charDeviceStat(out: Buffer, rdev: number, ino: number): void {
  madeUpStat(out, ino, S_IFCHR | 0o666, 1n, 4096n);
  out.writeBigUInt64LE(BigInt(rdev), STAT.rdev);
}

/**
 * Guest fd 0, 1 or 2. One that is a host terminal is the guest's /dev/tty: its path (readlink of
 * /proc/self/fd/N) and its stat are /dev/tty's, so that ttyname finds it (`tty` prints
 * /dev/tty), and nothing of the host's terminal device shows.
 */
export class StdioFile implements OpenFile {
  readonly hostFd: number | null;
  readonly path: string;
  constructor(path: string, public statusFlags: number, private readonly sink: OutputSink | null,
    private readonly source: InputSource | null) {
    this.hostFd = sink?.hostFd ?? source?.hostFd ?? null;
    this.path = this.isatty() ? TTY_PATH : path;
  }
  read(buf: Buffer): number {
    if (!this.source) throw new Errno(E.EBADF);
    return this.source.read(buf);
  }
  write(buf: Buffer): number {
    if (!this.sink) throw new Errno(E.EBADF);
    this.sink.write(buf);
    return buf.length;
  }
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void {
    if (this.isatty()) return charDeviceStat(out, TTY_RDEV, TTY_RDEV);
    if (this.hostFd !== null && libc.fstat(this.hostFd, out) >= 0) return;
    // A pipe-like stat for captured streams.
    out.fill(0, 0, STAT_SIZE);
    out.writeUInt32LE(0o010600, STAT.mode);
    out.writeBigUInt64LE(1n, STAT.nlink);
    out.writeBigInt64LE(4096n, STAT.blksize);
  }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return !!(this.sink?.tty ?? this.source?.tty); }
  /** Writable, and what is written is only collected (see OutputSink.deferrable). */
  get deferrable(): boolean { return !!this.sink?.deferrable && (this.statusFlags & 3) !== 0; }
  close(): void { /* the host's stdio stays open */ }
  pollMask(): number {
    if (this.sink) return POLLOUT;
    // Bytes given to run() are always there (or at their end); a host fd is asked.
    if (this.source?.hostFd !== undefined) return hostReady(this.source.hostFd, POLLIN) & (POLLIN | POLLHUP | POLLERR);
    return POLLIN;
  }
  pollHostFd(): number | null { return this.sink ? null : this.source?.hostFd ?? null; }
}

export type DeviceKind = 'null' | 'zero' | 'full' | 'urandom';
/** Device numbers (major << 8 | minor) of the memory devices, as Linux gives them. */
const DEVICE_RDEV: Record<DeviceKind, number> = { null: 0x103, zero: 0x105, full: 0x107, urandom: 0x109 };

/** /dev/null, /dev/zero, /dev/full, /dev/urandom, served by the host. */
export class DeviceFile implements OpenFile {
  readonly hostFd = null;
  /** /dev/null: writes vanish, so the user-mode stub may answer them. */
  get isNull(): boolean { return this.kind === 'null'; }
  constructor(readonly path: string, public statusFlags: number, private readonly kind: DeviceKind,
    private readonly random: (buf: Buffer) => void) {}
  read(buf: Buffer): number {
    if (!readable(this)) throw new Errno(E.EBADF);
    if (this.kind === 'null') return 0;
    if (this.kind === 'urandom') this.random(buf);
    else buf.fill(0);
    return buf.length;
  }
  write(buf: Buffer): number {
    if (!writable(this)) throw new Errno(E.EBADF);
    if (this.kind === 'full') throw new Errno(E.ENOSPC);
    return buf.length;
  }
  pread(buf: Buffer): number { return this.read(buf); }
  pwrite(buf: Buffer): number { return this.write(buf); }
  seek(): number { return 0; }
  stat(out: Buffer): void {
    const rdev = DEVICE_RDEV[this.kind];
    charDeviceStat(out, rdev, rdev);
  }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void {}
}

export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;

/** An entry of a made-up directory (DirListing). */
export interface DirEntry { name: string; type: number; ino: number }

/**
 * A made-up read-only directory (/proc and the directories below it): getdents64 gives the
 * entries list() names at the first read (so a listing of /proc/self/fd shows the descriptor it
 * is read through); seek to 0 (rewinddir) lists again. d_off is the index of the next entry.
 */
abstract class DirListingBase implements OpenFile {
  readonly hostFd = null;
  private pos = 0;
  private entries: readonly DirEntry[] | null = null;
  constructor(readonly path: string, public statusFlags: number, private readonly list: () => DirEntry[]) {}
  abstract stat(out: Buffer): void;
  read(): number { throw new Errno(E.EISDIR); }
  write(): number { throw new Errno(E.EBADF); }
  pread(): number { throw new Errno(E.EISDIR); }
  pwrite(): number { throw new Errno(E.EBADF); }
  seek(offset: bigint, whence: number): number {
    if (whence !== 0 || offset < 0n || (this.entries && offset > BigInt(this.entries.length))) throw new Errno(E.EINVAL);
    if (offset === 0n) this.entries = null;
    this.pos = Number(offset);
    return this.pos;
  }
  getdents(buf: Buffer): number {
    const entries = this.entries ??= this.list();
    let off = 0;
    while (this.pos < entries.length) {
      const e = entries[this.pos]!;
      const name = bytesOf(e.name);
      // struct linux_dirent64: d_ino, d_off, d_reclen, d_type, then the name and a NUL, 8-aligned.
      const reclen = (19 + name.length + 1 + 7) & ~7;
      if (off + reclen > buf.length) {
        if (off === 0) throw new Errno(E.EINVAL);
        break;
      }
      buf.fill(0, off, off + reclen);
      buf.writeBigUInt64LE(BigInt(e.ino), off);
      buf.writeBigInt64LE(BigInt(this.pos + 1), off + 8);
      buf.writeUInt16LE(reclen, off + 16);
      buf.writeUInt8(e.type, off + 18);
      name.copy(buf, off + 19);
      off += reclen;
      this.pos++;
    }
    return off;
  }
  isatty(): boolean { return false; }
  close(): void {}
}

/** A made-up read-only directory of the kernel's (/proc...): mode 0555. */
export class DirListing extends DirListingBase {
  constructor(path: string, statusFlags: number, list: () => DirEntry[], private readonly ino: number) {
    super(path, statusFlags, list);
    if ((statusFlags & O.ACCMODE) !== O.RDONLY) throw new Errno(E.EISDIR);
  }
  stat(out: Buffer): void { dirListingStat(out, this.ino); }
}

/**
 * A directory that exists only because a grant lies below it: its entries are the next
 * components, as list() gives them (src/fs/ops.ts: each grant as what it is on the host).
 */
export class VirtualDir extends DirListingBase {
  constructor(path: string, statusFlags: number, list: () => DirEntry[]) {
    super(path, statusFlags, list);
  }
  stat(out: Buffer): void { virtualDirStat(out, this.path); }
}

/** The inode number of the virtual directory at path (its stat's, and its entry's in the one above). */
export function virtualIno(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function virtualDirStat(out: Buffer, path: string): void {
  madeUpStat(out, virtualIno(path), S_IFDIR | 0o555, 2n, 4096n);
  out.writeBigInt64LE(4096n, STAT.size);
}

/** What the sandbox's advisory locks (src/fs/locks.ts) hear of a descriptor table. */
export interface CloseHooks {
  /** The table's process closed a descriptor of file (its POSIX record locks on the file go). */
  closed(file: OpenFile): void;
  /** The last descriptor of file closed (its flock and open-file-description locks go). */
  released(file: OpenFile): void;
  /** Every descriptor of the table closed: its process ended. */
  ended(): void;
}

/** The guest's descriptor table: lowest free number first, capped. */
export class FdTable {
  private readonly fds: Array<{ file: OpenFile; cloexec: boolean } | undefined> = [];
  /**
   * Descriptors naming each open file, across every table forked from the same first one: a
   * file is closed when the last descriptor of any process lets it go (one open file
   * description, shared after fork as on Linux).
   */
  private readonly refs: Map<OpenFile, number>;
  /**
   * Descriptors in flight (sent with SCM_RIGHTS, not yet received), across the same tables: at
   * most the descriptor limit, as Linux bounds a user's by RLIMIT_NOFILE (ETOOMANYREFS beyond).
   */
  private readonly flight: { count: number; mapped: Map<OpenFile, number> };
  /** Incremented on every change of which file a descriptor names. */
  version = 0;

  /**
   * Every descriptor is below limit (EMFILE beyond): the sandbox's --max-files, or less once the
   * program lowers RLIMIT_NOFILE (hardLimit: the most it may raise it back to).
   */
  limit: number;
  hardLimit: number;
  /** Set by the table's process (each table has one: no CLONE_FILES without CLONE_THREAD). */
  hooks: CloseHooks | null = null;

  constructor(limit: number, refs?: Map<OpenFile, number>, flight?: { count: number; mapped: Map<OpenFile, number> }) {
    this.limit = this.hardLimit = limit;
    this.refs = refs ?? new Map<OpenFile, number>();
    this.flight = flight ?? { count: 0, mapped: new Map() };
  }

  /** fork: a new table naming the same open files (offsets and status flags shared). */
  clone(): FdTable {
    const t = new FdTable(this.hardLimit, this.refs, this.flight);
    t.limit = this.limit;
    this.fds.forEach((e, fd) => {
      if (!e) return;
      const file = this.get(fd);
      t.fds[fd] = { file, cloexec: e.cloexec };
      this.refs.set(file, (this.refs.get(file) ?? 0) + 1);
    });
    return t;
  }

  /** execve: close every descriptor marked close-on-exec. */
  closeOnExec(): void {
    for (let fd = 0; fd < this.fds.length; fd++) if (this.fds[fd]?.cloexec) this.close(fd);
  }

  /** The file at fd, or undefined (no exception: for scans). */
  /** Every descriptor in use is below this. */
  get span(): number {
    return this.fds.length;
  }

  /** The open descriptors, in increasing order. */
  numbers(): number[] {
    const out: number[] = [];
    this.fds.forEach((e, fd) => { if (e) out.push(fd); });
    return out;
  }

  peek(fd: number): OpenFile | undefined {
    return this.fds[fd]?.file;
  }

  get(fd: number): OpenFile {
    const e = Number.isInteger(fd) && fd >= 0 ? this.fds[fd] : undefined;
    if (!e) throw new Errno(E.EBADF);
    if (e.file.materialize) {
      const stand = e.file;
      const real = e.file.materialize();
      this.refs.delete(stand);
      e.file = real;
      this.refs.set(real, (this.refs.get(real) ?? 0) + 1);
      this.version++;
    }
    return e.file;
  }

  /** The descriptor install would take now; EMFILE when there is none. */
  lowestFree(): number {
    for (let fd = 0; fd < this.limit; fd++) if (!this.fds[fd]) return fd;
    throw new Errno(E.EMFILE);
  }

  install(file: OpenFile, cloexec = false, minFd = 0): number {
    for (let fd = minFd; fd < this.limit; fd++) {
      if (!this.fds[fd]) {
        this.placeAt(fd, file, cloexec);
        return fd;
      }
    }
    throw new Errno(E.EMFILE);
  }

  /**
   * Install the two ends of a pipe or socket pair at the lowest free fds: both, or neither (on
   * EMFILE the ends are closed). Returns their fds.
   */
  installPair(a: OpenFile, b: OpenFile, cloexec: boolean): [number, number] {
    let fa = -1;
    try {
      fa = this.install(a, cloexec);
      return [fa, this.install(b, cloexec)];
    } catch (e) {
      if (fa >= 0) this.close(fa);
      else a.close();
      b.close();
      throw e;
    }
  }

  /** dup2/dup3: put file at fd, closing what was there. */
  placeAt(fd: number, file: OpenFile, cloexec: boolean): void {
    if (fd < 0 || fd >= this.limit) throw new Errno(E.EBADF);
    if (this.fds[fd]) this.close(fd);
    this.fds[fd] = { file, cloexec };
    this.version++;
    this.refs.set(file, (this.refs.get(file) ?? 0) + 1);
  }

  setCloexec(fd: number, on: boolean): void {
    this.get(fd);
    this.fds[fd]!.cloexec = on;
  }
  cloexec(fd: number): boolean {
    this.get(fd);
    return this.fds[fd]!.cloexec;
  }

  close(fd: number): void {
    const e = Number.isInteger(fd) && fd >= 0 ? this.fds[fd] : undefined;
    if (!e) throw new Errno(E.EBADF);
    const file = e.file;
    this.fds[fd] = undefined;
    this.version++;
    this.hooks?.closed(file);
    this.drop(file);
  }

  /** Whether a descriptor of the sandbox (or one in flight) still refers to file. */
  holds(file: OpenFile): boolean {
    return this.refs.has(file);
  }

  /** References to files that no descriptor names, for n descriptors in flight (SCM_RIGHTS); ETOOMANYREFS past the limit. */
  hold(files: readonly OpenFile[]): void {
    if (this.flight.count + files.length > this.limit) throw new Errno(E.ETOOMANYREFS);
    this.flight.count += files.length;
    for (const file of files) this.refs.set(file, (this.refs.get(file) ?? 0) + 1);
  }

  /**
   * A mapping holds file open, as on Linux, across the same tables: false (nothing held) when
   * the sandbox's mappings already hold as many files as its descriptor limit, so that mapped
   * and closed files never hold more host descriptors than that.
   */
  holdMapped(file: OpenFile): boolean {
    const mapped = this.flight.mapped;
    const n = mapped.get(file) ?? 0;
    if (n === 0 && mapped.size >= this.hardLimit) return false;
    mapped.set(file, n + 1);
    if (n === 0) this.refs.set(file, (this.refs.get(file) ?? 0) + 1);
    return true;
  }

  /** A mapping's hold (holdMapped) goes; the last reference closes the file. */
  releaseMapped(file: OpenFile): void {
    const mapped = this.flight.mapped;
    const n = mapped.get(file);
    if (n === undefined) return;
    if (n > 1) {
      mapped.set(file, n - 1);
      return;
    }
    mapped.delete(file);
    // After the sandbox's last files were closed (its end), nothing is left to drop.
    if (this.refs.has(file)) this.drop(file);
  }

  /** A descriptor in flight arrived or was dropped: its hold goes (the last reference closes the file). */
  release(file: OpenFile): void {
    this.flight.count--;
    this.drop(file);
  }

  /**
   * At the end of the sandbox, once every process has closed its descriptors: close what is
   * left, the files only descriptors in flight hold (a socket sent into its own queue holds
   * itself, as Linux's unix_gc finds).
   */
  closeLeftovers(): void {
    // One at a time, as the last reference: closing a socket drops what waits in it, which may
    // close (and take out of refs) other leftovers, each once.
    for (let next = this.refs.keys().next(); !next.done; next = this.refs.keys().next()) {
      this.refs.set(next.value, 1);
      this.drop(next.value);
    }
    this.flight.count = 0;
    this.flight.mapped.clear();
  }

  /** One reference fewer (a closed descriptor); the last closes the file. */
  drop(file: OpenFile): void {
    const n = (this.refs.get(file) ?? 1) - 1;
    if (n === 0) {
      this.refs.delete(file);
      this.hooks?.released(file);
      file.close();
    } else this.refs.set(file, n);
  }

  closeAll(): void {
    for (let fd = 0; fd < this.fds.length; fd++) if (this.fds[fd]) this.close(fd);
    this.hooks?.ended();
  }

  get openCount(): number {
    return this.fds.filter(Boolean).length;
  }
}

// ---- pipes within the process ----

/** Linux's default pipe capacity (16 pages). */
export const PIPE_CAPACITY = 65536;
/** How far a pipe grows when a writer finds it full (as F_SETPIPE_SZ may make it, up to
 * /proc/sys/fs/pipe-max-size): fewer waits for the reader, fewer process switches. */
const PIPE_GROWN = 1 << 20;
/** The smallest pipe: what a new pipe gets when the budget has no room for a default one. */
const PIPE_MIN_CAPACITY = 8192;
/** Pipe contents are held in pages of this size, filled in turn (never one Buffer per write). */
const PIPE_PAGE = 4096;
/** Writes up to this size are atomic; a packet (O_DIRECT) holds at most this much. */
const PIPE_BUF = 4096;
let pipeCounter = 0;

/**
 * The bytes of pipe buffers the host may hold for one sandbox, shared by all its pipes. Like
 * Linux's pipe-user-pages limits, a pipe's whole capacity is counted from its creation (and
 * from F_SETPIPE_SZ) until both its ends are closed: a write that fits the capacity always has
 * its memory, and the data of all pipes together never exceeds the budget.
 */
export class PipeBudget {
  used = 0;
  constructor(readonly limit: number) {}
  /** Count n more bytes; false (nothing counted) when they do not fit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** The buffer shared by the two ends of a pipe: its bytes in PIPE_PAGE pages, oldest first. */
class PipeBuffer {
  private readonly pages: Buffer[] = [];
  /** Read offset in pages[0]. */
  private head = 0;
  /** Bytes used in the last page (PIPE_PAGE when there is none to fill). */
  private tail = PIPE_PAGE;
  size = 0;
  readers = 1;
  writers = 1;
  readonly ino = 0x7000_0000 + ++pipeCounter;
  /**
   * The contents as runs of [bytes, packet] once a writer in packet mode (O_DIRECT) wrote: a
   * packet (at most PIPE_BUF bytes) is read by one read at most, which drops what it did not
   * take, as Linux does; plain writes merge. null (every byte plain) until then.
   */
  private runs: Array<[number, boolean]> | null = null;
  /** Events for edge-triggered watchers (OpenFile.edges): data written or the writers gone; room made or the readers gone. */
  inEdges = 0;
  outEdges = 0;
  constructor(readonly budget: PipeBudget, public capacity: number) {}

  /** Add src: plain bytes, or (packet) packets of at most PIPE_BUF bytes each. */
  write(src: Buffer, packet: boolean): void {
    this.inEdges++;
    if (packet && !this.runs) this.runs = this.size > 0 ? [[this.size, false]] : [];
    const runs = this.runs;
    if (runs) {
      if (packet) for (let off = 0; off < src.length; off += PIPE_BUF) runs.push([Math.min(PIPE_BUF, src.length - off), true]);
      else if (runs.length > 0 && !runs[runs.length - 1]![1]) runs[runs.length - 1]![0] += src.length;
      else runs.push([src.length, false]);
    }
    this.push(src);
  }

  /** Read into dst: up to the end of the first packet met, the rest of which is dropped. */
  read(dst: Buffer): number {
    this.outEdges++;
    const runs = this.runs;
    if (!runs) return this.take(dst);
    let n = 0;
    while (n < dst.length && runs.length > 0) {
      const run = runs[0]!;
      const k = this.take(dst.subarray(n, n + Math.min(run[0], dst.length - n)));
      n += k;
      run[0] -= k;
      if (run[1]) {
        if (run[0] > 0) this.take(Buffer.allocUnsafe(run[0]));
        runs.shift();
        break;
      }
      if (run[0] === 0) runs.shift();
    }
    if (runs.length === 0) this.runs = null;
    return n;
  }

  /** What read would copy, leaving it in the pipe. */
  peekRead(dst: Buffer): number {
    const runs = this.runs;
    if (!runs) return this.peek(dst);
    let upTo = 0;
    for (const [len, packet] of runs) {
      upTo += len;
      if (packet) break;
    }
    return this.peek(dst.subarray(0, Math.min(dst.length, upTo)));
  }

  private push(src: Buffer): void {
    for (let off = 0; off < src.length;) {
      if (this.tail === PIPE_PAGE) {
        this.pages.push(Buffer.allocUnsafe(PIPE_PAGE));
        this.tail = 0;
      }
      const n = src.copy(this.pages[this.pages.length - 1]!, this.tail, off, Math.min(src.length, off + PIPE_PAGE - this.tail));
      this.tail += n;
      off += n;
    }
    this.size += src.length;
  }

  /** Copy the oldest bytes into dst, leaving them in the pipe (MSG_PEEK); returns the count. */
  private peek(dst: Buffer): number {
    let n = 0, head = this.head;
    for (let i = 0; i < this.pages.length && n < dst.length; i++) {
      const end = i === this.pages.length - 1 ? this.tail : PIPE_PAGE;
      n += this.pages[i]!.copy(dst, n, head, Math.min(end, head + dst.length - n));
      head = 0;
    }
    return n;
  }

  private take(dst: Buffer): number {
    let n = 0;
    while (n < dst.length && this.size > 0) {
      const page = this.pages[0]!;
      const end = this.pages.length === 1 ? this.tail : PIPE_PAGE;
      const k = page.copy(dst, n, this.head, Math.min(end, this.head + dst.length - n));
      n += k;
      this.head += k;
      this.size -= k;
      if (this.head === end) {
        this.pages.shift();
        this.head = 0;
        if (this.pages.length === 0) this.tail = PIPE_PAGE;
      }
    }
    return n;
  }

  /** Drop the contents (no reader is left). */
  clear(): void {
    this.runs = null;
    this.pages.length = 0;
    this.head = 0;
    this.tail = PIPE_PAGE;
    this.size = 0;
  }
}

/** One end of a pipe made by pipe/pipe2; its ends may be held by several processes after fork. */
export class PipeEnd implements OpenFile {
  readonly hostFd = null;
  readonly path: string;
  private closed = false;
  /** Called once when this end closes (a named pipe counts its opens, src/fs/fifo.ts). */
  onClose: (() => void) | null = null;
  private constructor(private readonly pipe: PipeBuffer, readonly readEnd: boolean, public statusFlags: number, path?: string) {
    this.path = path ?? `pipe:[${pipe.ino}]`;
  }

  /** One more read or write end of this end's pipe (another open of a named pipe), named path. */
  another(readEnd: boolean, flags: number, path: string): PipeEnd {
    if (readEnd) this.pipe.readers++;
    else this.pipe.writers++;
    return new PipeEnd(this.pipe, readEnd, (readEnd ? O.RDONLY : O.WRONLY) | (flags & O.NONBLOCK), path);
  }

  /**
   * [read end, write end]. flags: O_NONBLOCK and O_DIRECT (packet mode; O_CLOEXEC is the fd
   * table's). The capacity is
   * counted in budget; with too little room left the pipe is smaller (as Linux does past
   * pipe-user-pages-soft), with none ENFILE.
   */
  static create(flags: number, budget: PipeBudget): [PipeEnd, PipeEnd] {
    const capacity = budget.take(PIPE_CAPACITY) ? PIPE_CAPACITY : budget.take(PIPE_MIN_CAPACITY) ? PIPE_MIN_CAPACITY : 0;
    if (capacity === 0) throw new Errno(E.ENFILE);
    const b = new PipeBuffer(budget, capacity);
    // As Linux, only the write end keeps O_DIRECT: it is the writer's mode that makes packets.
    const nb = flags & O.NONBLOCK;
    return [new PipeEnd(b, true, O.RDONLY | nb), new PipeEnd(b, false, O.WRONLY | nb | (flags & O.DIRECT))];
  }

  get capacity(): number { return this.pipe.capacity; }
  /** Whether other is an end of the same pipe. */
  samePipe(other: OpenFile): boolean { return other instanceof PipeEnd && other.pipe === this.pipe; }
  /** Bytes a write could add now without growing the pipe. */
  get room(): number { return this.pipe.capacity - this.pipe.size; }

  /** F_SETPIPE_SZ: EBUSY below the bytes held, EPERM when the sandbox's pipe budget has no room. */
  resize(want: number): number {
    const b = this.pipe;
    const n = Math.max(want, 4096);
    if (n < b.size) throw new Errno(E.EBUSY);
    const delta = n - b.capacity;
    if (delta > 0 && !b.budget.take(delta)) throw new Errno(E.EPERM);
    if (delta < 0) b.budget.give(-delta);
    b.capacity = n;
    if (delta > 0) b.outEdges++;
    return n;
  }

  read(buf: Buffer): number {
    return this.readOrPeek(buf, false);
  }

  /** read, or (peek) copy what a read would take and leave it there. */
  readOrPeek(buf: Buffer, peek: boolean): number {
    if (!this.readEnd) throw new Errno(E.EBADF);
    const b = this.pipe;
    if (b.size === 0) {
      if (b.writers === 0 || buf.length === 0) return 0;
      if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it reads an empty pipe that only it could fill', () => b.size > 0 || b.writers === 0);
    }
    return peek ? b.peekRead(buf) : b.read(buf);
  }

  write(buf: Buffer): number {
    const n = this.reserve(buf.length);
    if (n > 0) this.pipe.write(buf.subarray(0, n), (this.statusFlags & O.DIRECT) !== 0);
    return n;
  }

  reserve(want: number): number {
    if (this.readEnd) throw new Errno(E.EBADF);
    const b = this.pipe;
    // No reader: EPIPE (Linux also raises SIGPIPE, whose default action the caller applies).
    if (b.readers === 0) throw new Errno(E.EPIPE);
    if (want === 0) return 0;
    // A full pipe grows (up to PIPE_GROWN, while the sandbox's budget has room) rather than make
    // a blocking writer wait: every wait for another process costs a switch of address spaces.
    // A non-blocking writer gets EAGAIN at the usual capacity, as event loops expect.
    if (b.capacity - b.size < want && b.capacity < PIPE_GROWN && !(this.statusFlags & O.NONBLOCK)) {
      const grown = Math.min(PIPE_GROWN, Math.max(b.capacity * 2, b.size + Math.min(want, PIPE_GROWN)));
      if (b.budget.take(grown - b.capacity)) b.capacity = grown;
    }
    const room = b.capacity - b.size;
    if (room <= 0 || (room < want && want <= 4096)) {
      // Writes of up to PIPE_BUF (4096) bytes are atomic: all or nothing.
      if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      const need = Math.min(want, 4096);
      throw new WouldBlock('it writes to a full pipe that only it could drain', () => b.readers === 0 || b.capacity - b.size >= need);
    }
    // A larger write takes what fits now and returns short; a blocking write then waits for room
    // for the rest (moveWhole in src/linux/syscalls/args.ts), as on Linux.
    return Math.min(room, want);
  }

  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void { streamStat(out, this.pipe.ino, S_IFIFO | 0o600); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const b = this.pipe;
    if (this.readEnd) b.readers--;
    else b.writers--;
    // A hang-up (POLLHUP for the readers) or an error (POLLERR for the writers) is an event too.
    if (this.readEnd) b.outEdges++;
    else b.inEdges++;
    // Nobody can read what is left: drop it. The capacity is the budget's again once both
    // ends are gone.
    if (b.readers === 0) b.clear();
    if (b.readers === 0 && b.writers === 0) b.budget.give(b.capacity);
    this.onClose?.();
  }
  pollMask(): number {
    const b = this.pipe;
    if (this.readEnd) return (b.size > 0 ? POLLIN : 0) | (b.writers === 0 ? POLLHUP : 0);
    // Writable with room for PIPE_BUF bytes, as Linux's pipe is with a free page (a full one
    // refuses even a small non-blocking write).
    return b.readers === 0 ? POLLERR : b.capacity - b.size >= PIPE_BUF ? POLLOUT : 0;
  }
  available(): number { return this.readEnd ? this.pipe.size : 0; }
  edges(events: number): number {
    return this.readEnd ? (events & POLLIN ? this.pipe.inEdges : 0) : (events & POLLOUT ? this.pipe.outEdges : 0);
  }
}

// ---- /dev/tty and in-memory files (/proc) ----

/** /dev/tty: the host terminal that one of the guest's standard streams is. */
export class TtyFile implements OpenFile {
  readonly path = TTY_PATH;
  constructor(readonly hostFd: number, public statusFlags: number) {}
  read(buf: Buffer): number {
    if (!readable(this)) throw new Errno(E.EBADF);
    // EAGAIN (the host fd is non-blocking and has nothing): the system-call layer waits for it
    // with a bounded poll and tries again (src/linux/syscalls/io.ts waitingIo).
    return check(libc.read(this.hostFd, buf));
  }
  write(buf: Buffer): number {
    if (!writable(this)) throw new Errno(E.EBADF);
    return check(libc.write(this.hostFd, buf));
  }
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void { charDeviceStat(out, TTY_RDEV, TTY_RDEV); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return true; }
  close(): void { /* the host's terminal stays open */ }
  pollMask(): number { return hostReady(this.hostFd, POLLIN | POLLOUT) & (POLLIN | POLLOUT | POLLHUP | POLLERR); }
  pollHostFd(): number | null { return this.hostFd; }
}
/** /dev/tty is character device 5:0. */
export const TTY_RDEV = 0x500;
const TTY_PATH = '/dev/tty';

/** A read-only file whose contents kvmbox makes up (/proc/self/cmdline, /proc/meminfo...). */
export class MemoryFile implements OpenFile {
  readonly hostFd = null;
  private offset = 0;
  constructor(readonly path: string, public statusFlags: number, private readonly data: Buffer, private readonly ino: number) {
    if ((statusFlags & O.ACCMODE) !== O.RDONLY) throw new Errno(E.EACCES);
  }
  read(buf: Buffer): number {
    const n = this.data.copy(buf, 0, Math.min(this.offset, this.data.length));
    this.offset += n;
    return n;
  }
  write(): number { throw new Errno(E.EBADF); }
  pread(buf: Buffer, offset: bigint): number {
    return offset >= BigInt(this.data.length) ? 0 : this.data.copy(buf, 0, Number(offset));
  }
  pwrite(): number { throw new Errno(E.EBADF); }
  seek(offset: bigint, whence: number): number {
    const base = whence === 0 ? 0 : whence === 1 ? this.offset : whence === 2 ? this.data.length : -1;
    const to = base < 0 ? -1 : base + Number(offset);
    if (to < 0) throw new Errno(E.EINVAL);
    this.offset = to;
    return to;
  }
  stat(out: Buffer): void { memoryFileStat(out, this.ino); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void {}
  available(): number { return Math.max(0, this.data.length - this.offset); }
}


/** A made-up directory: mode 0555, as /proc's. */
export function dirListingStat(out: Buffer, ino: number): void {
  madeUpStat(out, ino, S_IFDIR | 0o555, 2n, 1024n);
}

/** Like Linux's /proc files: a regular file of size 0, mode 0444. */
export function memoryFileStat(out: Buffer, ino: number): void {
  madeUpStat(out, ino, S_IFREG | 0o444, 1n, 1024n);
}

export { charDeviceStat };
