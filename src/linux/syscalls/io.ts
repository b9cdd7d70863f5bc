// Reading, writing and managing descriptors. Data moves straight between the host file and
// guest memory (the guest buffer is a view of guest memory), never through a copy.
import { nameLength } from '../../abi/file-names.js';
import * as libc from '../../kvm/libc.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID } from '../async-io.js';
import {
  HostFile, hostReady, PipeEnd, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, WouldBlock, type OpenFile,
} from '../../fs/open-file.js';
import {
  E, Errno, FIONBIO, FIONREAD, O, S_IFBLK, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, STAT, STAT_SIZE, TCFLSH, TCGETS, TCSBRK, TCSETS, TCSETSF, TCSETSW, TCXONC, TIOCGPGRP, TIOCGSID, TIOCGWINSZ, TIOCSPGRP,
} from '../../abi/linux.js';
import type { Process } from '../process.js';
import { KERNEL_TERMIOS_SIZE } from '../terminal.js';
import { PtyMaster, PtySlave } from '../../fs/pty.js';
import { foregroundArg, ptyIoctl } from './pty.js';
import { SignalFd } from './signalfd.js';
import { interfaceIoctl, isSocket } from './socket.js';
import { pollBounded, pollfds, sleepBounded, waitHostFd } from '../host-wait.js';
/** How often a call parked on a host fd looks at it while nothing else is ready (ms). */
const HOST_POLL_MS = 20;
import { int, long, movePieces, moveWhole, size, uint, type SyscallGroup } from './args.js';
import { writeTimeLeft } from './time.js';
import { F_SEAL_WRITE, ShmFile } from '../../fs/shm.js';
import { OFFSET_MAX } from '../../fs/locks.js';
import { action, bit, NSIG, orphanedGroup, SI_KERNEL, SIG_IGN, SIGTTIN, SIGTTOU, withSigmask } from '../signals.js';
import type { Task } from '../task.js';

/** Linux caps one read or write at this many bytes. */
const MAX_RW_COUNT = 0x7ffff000;
const IOV_MAX = 1024;
/** writev joins its pieces into one host write up to this many bytes. */
const GATHER_MAX = 1 << 20;
const SSIZE_MAX = (1n << 63n) - 1n;
const FIONCLEX = 0x5450, FIOCLEX = 0x5451;
/**
 * A file's inode flags and version, and its extended attributes' header (lsattr): read from the
 * host file as they are, with their sizes. Setting them (chattr) is EPERM: kvmbox never changes a
 * host file's flags (append-only, immutable...), which outlive the sandbox.
 */
const INODE_FLAG_READS = new Map<number, number>([[0x80086601, 4] /* FS_IOC_GETFLAGS */, [0x80046601, 4] /* FS_IOC32_GETFLAGS */,
  [0x80087601, 4] /* FS_IOC_GETVERSION */, [0x801c581f, 28] /* FS_IOC_FSGETXATTR */]);
const INODE_FLAG_WRITES = new Set([0x40086602 /* FS_IOC_SETFLAGS */, 0x40046602 /* FS_IOC32_SETFLAGS */, 0x40087602 /* FS_IOC_SETVERSION */,
  0x401c5820 /* FS_IOC_FSSETXATTR */]);
const F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, F_GETLK = 5, F_SETLK = 6, F_SETLKW = 7;
const F_SETOWN = 8, F_GETOWN = 9, F_SETSIG = 10, F_GETSIG = 11, F_SETOWN_EX = 15, F_GETOWN_EX = 16, F_NOTIFY = 1026;
const F_OFD_GETLK = 36, F_OFD_SETLK = 37, F_OFD_SETLKW = 38;
/** O_ASYNC (FASYNC): signal-driven I/O (src/linux/async-io.ts). */
const O_ASYNC = 0o20000;
const F_DUPFD_CLOEXEC = 1030, F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, F_ADD_SEALS = 1033, F_GET_SEALS = 1034;
const F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;
const FLOCK_SIZE = 32;
const CLOSE_RANGE_UNSHARE = 2, CLOSE_RANGE_CLOEXEC = 4;
const POLLRDNORM = 0x040, POLLWRNORM = 0x100;
/** Largest pipe a process may ask for (/proc/sys/fs/pipe-max-size). */
const PIPE_MAX_SIZE = 1 << 20;
const SEEK_CUR = 1;
const FD_CLOEXEC = 1;
const SEEK_SET = 0, SEEK_END = 2;

/**
 * Whether a shared mapping in the sandbox may write f's file: one not marked as a read-only
 * file mapping (a mapping from a read-only fd, or of a file sealed against writes), whatever its
 * protection now, as Linux counts VM_MAYWRITE mappings for F_SEAL_WRITE.
 */
function writablyMapped(p: Process, f: ShmFile): boolean {
  for (const q of p.kernel.all()) {
    if (q.zombie || !q.space) continue;
    for (const r of q.space.memory.rangesOf(f.node.backing)) {
      if (!q.space.hasSharedFile(r.start, r.end - r.start)) return true;
    }
  }
  return false;
}

/** F_SETOWN(_EX): pid 0 clears the owner; another must name a thread, process or group of the sandbox (ESRCH). */
function setOwner(p: Process, f: OpenFile, type: number, pid: number): void {
  if (pid !== 0) {
    const k = p.kernel;
    const found = type === F_OWNER_TID ? k.findTask(pid) !== undefined
      : type === F_OWNER_PGRP ? [...k.all()].some((q) => !q.zombie && q.pgid === pid)
      : k.find(pid) !== undefined || k.findTask(pid) !== undefined;
    if (!found) throw new Errno(E.ESRCH);
  }
  p.kernel.asyncIo.setOwner(f, type, pid);
}

/**
 * fcntl's record locks: F_GETLK, F_SETLK and F_SETLKW (owned by the process), F_OFD_* (owned by
 * the open file). struct flock: l_type and l_whence (shorts), l_start and l_len at 8 and 16,
 * l_pid at 24; 32 bytes, read once.
 */
function recordLock(p: Process, f: OpenFile, cmd: number, arg: bigint): number {
  const ofd = cmd === F_OFD_GETLK || cmd === F_OFD_SETLK || cmd === F_OFD_SETLKW;
  const get = cmd === F_GETLK || cmd === F_OFD_GETLK;
  const user = p.userBuffer(arg, FLOCK_SIZE, get ? PROT_READ | PROT_WRITE : PROT_READ);
  const fl = Buffer.from(user);
  const type = fl.readInt16LE(0);
  if (type !== F_RDLCK && type !== F_WRLCK && type !== F_UNLCK) throw new Errno(E.EINVAL);
  if (ofd && fl.readInt32LE(24) !== 0) throw new Errno(E.EINVAL);
  let base: bigint;
  switch (fl.readInt16LE(2)) {
    case SEEK_SET: base = 0n; break;
    case SEEK_CUR:
      try {
        base = BigInt(f.seek(0n, SEEK_CUR));
      } catch (e) {
        if (!(e instanceof Errno) || e.errno !== E.ESPIPE) throw e;
        base = 0n; // a pipe's position, as Linux has it
      }
      break;
    case SEEK_END: {
      const st = Buffer.alloc(STAT_SIZE);
      f.stat(st);
      base = st.readBigInt64LE(STAT.size);
      break;
    }
    default: throw new Errno(E.EINVAL);
  }
  let start = base + fl.readBigInt64LE(8);
  const len = fl.readBigInt64LE(16);
  let end = OFFSET_MAX;
  if (len > 0n) end = start + len - 1n;
  else if (len < 0n) {
    end = start - 1n;
    start += len;
  }
  if (start < 0n) throw new Errno(E.EINVAL);
  if (start > OFFSET_MAX || end > OFFSET_MAX) throw new Errno(E.EOVERFLOW);
  const owner = ofd ? f : p;
  if (get) {
    if (type === F_UNLCK) throw new Errno(E.EINVAL);
    const c = p.kernel.locks.conflict(f, owner, type === F_WRLCK, start, end);
    // No conflict: only l_type changes, as Linux copies the rest back as it came.
    if (!c) fl.writeInt16LE(F_UNLCK, 0);
    else {
      fl.writeInt16LE(c.write ? F_WRLCK : F_RDLCK, 0);
      fl.writeInt16LE(SEEK_SET, 2);
      fl.writeBigInt64LE(c.start, 8);
      fl.writeBigInt64LE(c.end === OFFSET_MAX ? 0n : c.end - c.start + 1n, 16);
      fl.writeInt32LE(c.pid, 24);
    }
    fl.copy(user);
    return 0;
  }
  const mode = f.statusFlags & O.ACCMODE;
  if ((type === F_RDLCK && mode === O.WRONLY) || (type === F_WRLCK && mode === O.RDONLY)) throw new Errno(E.EBADF);
  const wait = cmd === F_SETLKW || cmd === F_OFD_SETLKW;
  p.kernel.locks.setRecord(f, owner, ofd ? -1 : p.pid, type === F_UNLCK ? null : type === F_WRLCK, start, end, wait, !ofd);
  return 0;
}

export function iovecs(p: Process, addr: bigint, count: bigint): Array<[bigint, bigint]> {
  const n = Number(BigInt.asIntN(32, count));
  if (n < 0 || n > IOV_MAX) throw new Errno(E.EINVAL);
  const raw = p.userBuffer(addr, n * 16);
  const out: Array<[bigint, bigint]> = [];
  for (let i = 0; i < n; i++) out.push([raw.readBigUInt64LE(i * 16), raw.readBigUInt64LE(i * 16 + 8)]);
  return out;
}

/**
 * A call that would wait forever (the only process reads its own empty pipe, or polls with no
 * timeout for something only it could provide) ends the program, as a time limit would.
 */
function blockedForever(p: Process, what: string): number {
  p.exit = { kind: 'timeout', message: `kvmbox: the program would wait forever: ${what}; program stopped` };
  return 0;
}

/**
 * A call that may have to wait for another process: the wait is the kernel's (it parks the task,
 * src/linux/kernel.ts) while another process could end it. Alone, a wait that time ends (a
 * timerfd read: its timeout is the next expiry) is slept out on the host and the call runs
 * again; any other would last forever and ends the program.
 */
export function guarded(p: Process, fn: () => number): number {
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof WouldBlock) || p.kernel.othersCanRun(p)) throw e;
      const at = e.timeout?.at ?? Infinity;
      if (at === Infinity) return blockedForever(p, e.what);
      if (!sleepBounded(p, Math.max(0, Math.ceil(at - performance.now())))) return 0;
      if (!e.ready() && performance.now() >= e.timeout!.at) {
        e.onCancel?.('timeout');
        return e.timeout!.result();
      }
    }
  }
}

/**
 * A read or write of a file that waits on a host fd (a terminal, an inherited stdin): the host
 * never blocks in read(2) or write(2) itself. It polls the fd in bounded slices (src/linux/
 * host-wait.ts) until it is ready, then moves the data; EAGAIN from a host fd that is ready no
 * more waits again. A time limit or a cancel that arrives meanwhile ends the program (the
 * result is then not delivered). A guest O_NONBLOCK file gets EAGAIN as on Linux. While other
 * tasks of the sandbox can run, the call parks instead (WouldBlock), so that they do.
 */
function waitingIo(p: Process, f: OpenFile, events: number, io: () => number): number {
  const hostFd = f.pollHostFd?.() ?? null;
  if (hostFd === null) return io();
  const nonblock = (f.statusFlags & O.NONBLOCK) !== 0;
  for (;;) {
    if (!nonblock && p.kernel.othersCanRun(p)) {
      // Other tasks run meanwhile (or a signal may come from outside): the call waits in the
      // scheduler, which polls the fd while nothing runs and looks at it every HOST_POLL_MS
      // while something does (the timeout never ends the call).
      if (!hostReady(hostFd, events)) {
        throw new WouldBlock(`the host's fd ${hostFd}`, () => hostReady(hostFd, events) !== 0,
          { get at() { return performance.now() + HOST_POLL_MS; }, result: () => -E.EAGAIN }, undefined, [{ fd: hostFd, events }]);
      }
    } else if (!nonblock && !waitHostFd(p, hostFd, events)) {
      return 0;
    }
    try {
      return io();
    } catch (e) {
      if (nonblock || !(e instanceof Errno) || e.errno !== E.EAGAIN) throw e;
    }
  }
}

/**
 * A read of the terminal by a process of its session outside its foreground group (a shell's
 * background job): as on Linux, SIGTTIN to the process's group, which stops it by default, and
 * the read waits, to run again after SIGCONT (the shell's fg puts the group in the foreground
 * first). EIO when SIGTTIN is ignored or blocked, or the group is orphaned (no one could
 * continue it), or nothing else could run.
 */
function backgroundRead(t: Task, fd: number): void {
  const p = t.process;
  const term = jobTerminal(p, p.fds.get(fd))?.term;
  if (!term || p.sid !== term.sid || p.pgid === term.pgrp) return;
  if (action(p, SIGTTIN).handler === SIG_IGN || (t.sigmask & bit(SIGTTIN)) !== 0n || orphanedGroup(p) || !p.kernel.othersCanRun(p)) {
    throw new Errno(E.EIO);
  }
  p.kernel.signalGroup(p.pgid, SIGTTIN, SI_KERNEL);
  throw new WouldBlock('it reads the terminal from the background', () => p.pgid === term.pgrp);
}

/**
 * The terminal f is, as job control sees it: its session and foreground group (the host
 * terminal's are the kernel's, a pty's its own), and whether its TOSTOP mode is set. Null for
 * what is no terminal, and for a pty's master, which has no job control.
 */
function jobTerminal(p: Process, f: OpenFile): { term: { readonly sid: number; readonly pgrp: number }; tostop(): boolean } | null {
  if (f instanceof PtySlave) return { term: f.pty, tostop: () => (f.pty.termios.readUInt32LE(C_LFLAG) & TOSTOP) !== 0 };
  const hostFd = f.hostFd;
  if (!f.isatty() || hostFd === null) return null;
  return {
    term: p.kernel.terminal,
    tostop: () => {
      const modes = Buffer.alloc(KERNEL_TERMIOS_SIZE);
      return libc.ioctlOut(hostFd, TCGETS, modes) >= 0 && (modes.readUInt32LE(C_LFLAG) & TOSTOP) !== 0;
    },
  };
}

/** The terminal ioctls Linux lets only the foreground process group make (tty_check_change). */
const TERMINAL_CHANGES = new Set([TIOCSPGRP, TCSETS, TCSETSW, TCSETSF, TCFLSH, TCXONC, TCSBRK]);
/** c_lflag's TOSTOP: background processes may not write to the terminal. */
const TOSTOP = 0o400, C_LFLAG = 12;

/**
 * A change of the terminal (tcsetattr, tcsetpgrp, tcflush, tcflow, tcdrain) by a process of its
 * session outside its foreground group, or a write to it when its TOSTOP mode is set: as on
 * Linux, SIGTTOU to the process's group, and the call waits, to run again after SIGCONT. It goes
 * ahead when SIGTTOU is ignored or blocked (as shells do around tcsetpgrp); EIO when the group is
 * orphaned or nothing else could run.
 */
function backgroundChange(t: Task, fd: number, write: boolean): void {
  const p = t.process;
  const j = jobTerminal(p, p.fds.get(fd));
  if (!j || p.sid !== j.term.sid || p.pgid === j.term.pgrp) return;
  if (action(p, SIGTTOU).handler === SIG_IGN || (t.sigmask & bit(SIGTTOU)) !== 0n) return;
  if (write && !j.tostop()) return;
  if (orphanedGroup(p) || !p.kernel.othersCanRun(p)) throw new Errno(E.EIO);
  p.kernel.signalGroup(p.pgid, SIGTTOU, SI_KERNEL);
  const term = j.term;
  throw new WouldBlock(`it ${write ? 'writes to' : 'changes'} the terminal from the background`, () => p.pgid === term.pgrp);
}

function readInto(p: Process, fd: number, addr: bigint, len: bigint, offset: bigint | null): number {
  const f = p.fds.get(fd);
  const n = Math.min(size(len), MAX_RW_COUNT);
  const buf = p.userBuffer(addr, n < 0 ? len : n, PROT_WRITE);
  if (buf.length === 0) return 0;
  return offset === null ? waitingIo(p, f, POLLIN, () => f.read(buf)) : f.pread(buf, offset);
}

/**
 * How many of len bytes a write to f at offset (null: at its position, or at its end with
 * O_APPEND) may take under RLIMIT_FSIZE (Process.fileSizeRoom); only regular files are limited.
 */
export function writeRoom(p: Process, f: OpenFile, offset: bigint | null, len: number): number {
  if (!p.limitsFileSize || len <= 0) return len;
  const append = (f.statusFlags & O.APPEND) !== 0;
  let pos: bigint;
  if (f instanceof ShmFile) {
    pos = offset ?? (append ? BigInt(f.node.size) : BigInt(f.seek(0n, SEEK_CUR)));
  } else if (f instanceof HostFile && f.isRegular()) {
    if (offset === null && append) {
      const st = Buffer.alloc(STAT_SIZE);
      f.stat(st);
      pos = st.readBigInt64LE(STAT.size);
    } else {
      pos = offset ?? BigInt(f.seek(0n, SEEK_CUR));
    }
  } else {
    return len;
  }
  return p.fileSizeRoom(pos, len);
}

function writeFrom(p: Process, fd: number, addr: bigint, len: bigint, offset: bigint | null, call?: readonly bigint[]): number {
  const f = p.fds.get(fd);
  const asked = Math.min(size(len), MAX_RW_COUNT);
  const n = asked < 0 ? asked : writeRoom(p, f, offset, asked);
  const buf = p.userBuffer(addr, n < 0 ? len : n, PROT_READ);
  if (buf.length === 0 && offset === null) return f.write(buf);
  if (offset !== null) return f.pwrite(buf, offset);
  const write = (b: Buffer) => waitingIo(p, f, POLLOUT, () => f.write(b));
  return call ? moveWhole(call, [buf], (f.statusFlags & O.NONBLOCK) === 0, write) : write(buf);
}

export function readv(p: Process, a: bigint[], offset: bigint | null): number {
  const fd = int(a[0]!);
  let total = 0;
  for (const [base, len] of iovecs(p, a[1]!, a[2]!)) {
    if (len === 0n) continue;
    let n: number;
    try {
      n = readInto(p, fd, base, len, offset === null ? null : offset + BigInt(total));
    } catch (e) {
      // What was read already is the result: a wait only for a read that has nothing yet.
      if (e instanceof WouldBlock && total > 0) break;
      throw e;
    }
    total += n;
    if (BigInt(n) < len) break;
  }
  return total;
}

export function writev(p: Process, a: bigint[], offset: bigint | null): number {
  const fd = int(a[0]!);
  const vecs = iovecs(p, a[1]!, a[2]!);
  const f = p.fds.get(fd);
  // At most MAX_RW_COUNT bytes in all, as Linux (ssize_t overflow: EINVAL), and what RLIMIT_FSIZE leaves.
  const limit = vecs.some(([, l]) => l > 0n && l <= SSIZE_MAX) ? writeRoom(p, f, offset, MAX_RW_COUNT) : MAX_RW_COUNT;
  let room = limit;
  const bufs: Buffer[] = [];
  for (const [b, l] of vecs) {
    if (l > SSIZE_MAX) throw new Errno(E.EINVAL);
    if (l === 0n || room === 0) continue;
    const n = l > BigInt(room) ? room : Number(l);
    bufs.push(p.userBuffer(b, n, PROT_READ));
    room -= n;
  }
  if (bufs.length === 0) return 0;
  const total = limit - room;
  // Gather into one host write when the pieces are small, like the kernel does for a pipe (a
  // write of up to PIPE_BUF is whole); larger ones go piece by piece, so that the host never
  // copies more than GATHER_MAX of guest memory for one call.
  const pieces = bufs.length === 1 || total <= GATHER_MAX ? [bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs, total)] : bufs;
  if (offset === null) return moveWhole(a, pieces, (f.statusFlags & O.NONBLOCK) === 0, (b) => waitingIo(p, f, POLLOUT, () => f.write(b)));
  return pieces.length === 1 ? f.pwrite(pieces[0]!, offset) : movePieces(pieces, (buf, done) => f.pwrite(buf, offset + BigInt(done)));
}

function checkOffset(off: bigint): bigint {
  const o = long(off);
  if (o < 0n) throw new Errno(E.EINVAL);
  return o;
}

function dupTo(p: Process, oldfd: number, newfd: number, cloexec: boolean): number {
  const f = p.fds.get(oldfd);
  if (newfd === oldfd) return newfd;
  p.fds.placeAt(newfd, f, cloexec);
  return newfd;
}


// ---- pipes, sendfile, poll and select ----

function pipe2(p: Process, addr: bigint, flags: number): number {
  if (flags & ~(O.CLOEXEC | O.NONBLOCK | O.DIRECT)) throw new Errno(E.EINVAL);
  const out = p.userBuffer(addr, 8, PROT_WRITE);
  const [r, w] = PipeEnd.create(flags, p.limits.pipeBudget);
  const [rfd, wfd] = p.fds.installPair(r, w, (flags & O.CLOEXEC) !== 0);
  out.writeInt32LE(rfd, 0);
  out.writeInt32LE(wfd, 4);
  return 0;
}

function sendfile(p: Process, a: bigint[]): number {
  const out = p.fds.get(int(a[0]!));
  const src = p.fds.get(int(a[1]!));
  if ((src.statusFlags & O.ACCMODE) === O.WRONLY || (out.statusFlags & O.ACCMODE) === O.RDONLY) throw new Errno(E.EBADF);
  const offAddr = a[2]!;
  let off: bigint | null = null;
  if (offAddr !== 0n) {
    off = p.userBuffer(offAddr, 8, PROT_WRITE).readBigInt64LE(0);
    if (off < 0n) throw new Errno(E.EINVAL);
  }
  const left = Math.min(size(a[3]!), MAX_RW_COUNT);
  if (left < 0) throw new Errno(E.EINVAL);
  const moved = pump(p, src, off, out, null, writeRoom(p, out, null, left));
  if (off !== null) p.userBuffer(offAddr, 8, PROT_WRITE).writeBigInt64LE(moved.inOff!);
  return moved.total;
}

/**
 * Move up to left bytes from src (at inOff, or from its position) to out (at outOff, or at its
 * position): sendfile and splice. Never takes from the source more than the destination accepts
 * now, as what is read from a pipe cannot be put back: an in-memory stream says how much
 * (reserve); a full one makes the first round wait, or ends the call with what was moved. A
 * failure after some bytes moved ends it with those. Returns the count and the offsets after it.
 */
export function pump(p: Process, src: OpenFile, inOff: bigint | null, out: OpenFile, outOff: bigint | null, left: number):
  { total: number; inOff: bigint | null; outOff: bigint | null } {
  const chunk = Buffer.alloc(Math.min(left, 1 << 17));
  let total = 0;
  try {
    while (left > 0) {
      const want = Math.min(left, chunk.length);
      const piece = chunk.subarray(0, out.reserve ? out.reserve(want) : want);
      const n = inOff === null ? waitingIo(p, src, POLLIN, () => src.read(piece)) : src.pread(piece, inOff);
      if (p.exit) break;
      if (n <= 0) break;
      let w = outOff === null ? out.write(piece.subarray(0, n)) : out.pwrite(piece.subarray(0, n), outOff);
      if (w < n && inOff === null) {
        // A short write to a host fd: give back what a regular source can take back, and write
        // the rest of what a stream source gave, waiting for the host fd.
        try {
          src.seek(BigInt(w - n), SEEK_CUR);
        } catch {
          w += outOff === null ? writeRest(p, out, piece.subarray(w, n)) : out.pwrite(piece.subarray(w, n), outOff + BigInt(w));
        }
      }
      total += w;
      left -= w;
      if (inOff !== null) inOff += BigInt(w);
      if (outOff !== null) outOff += BigInt(w);
      if (w < n) break;
    }
  } catch (e) {
    if (total === 0) throw e;
  }
  return { total, inOff, outOff };
}

/** Write all of rest to out (a host fd that took part of a write), waiting for it as long as the sandbox may run. */
function writeRest(p: Process, out: OpenFile, rest: Buffer): number {
  let done = 0;
  const hostFd = out.pollHostFd?.() ?? out.hostFd;
  while (done < rest.length) {
    let w = 0;
    try {
      w = out.write(rest.subarray(done));
    } catch (e) {
      if (!(e instanceof Errno) || e.errno !== E.EAGAIN) throw e;
    }
    done += w;
    if (w === 0 && (hostFd === null || !waitHostFd(p, hostFd, POLLOUT))) break;
  }
  return done;
}

/** since: an edge-triggered epoll entry, ready only once the file's event count (OpenFile.edges) is past it. */
export interface PollEntry { fd: number; events: number; revents: number; since?: number }

/** What is ready now among entries (revents filled); host fds worth waiting on are returned. */
function scan(p: Process, entries: PollEntry[]): { ready: number; wait: Array<{ hostFd: number; entry: PollEntry }> } {
  let ready = 0;
  const wait: Array<{ hostFd: number; entry: PollEntry }> = [];
  for (const e of entries) {
    e.revents = 0;
    if (e.fd < 0) continue;
    let f: OpenFile;
    try {
      f = p.fds.get(e.fd);
    } catch {
      e.revents = POLLNVAL;
      ready++;
      continue;
    }
    const mask = f instanceof SignalFd ? f.pollMaskFor(p) : f.pollMask ? f.pollMask() : POLLIN | POLLOUT;
    if (mask & POLLIN) e.revents |= e.events & (POLLIN | POLLRDNORM);
    if (mask & POLLOUT) e.revents |= e.events & (POLLOUT | POLLWRNORM);
    e.revents |= mask & (POLLHUP | POLLERR);
    if (e.revents && e.since !== undefined && f.edges?.(e.events) === e.since) e.revents = 0;
    if (e.revents) ready++;
    else {
      const hostFd = f.pollHostFd?.() ?? null;
      if (hostFd !== null) wait.push({ hostFd, entry: e });
    }
  }
  return { ready, wait };
}

/**
 * When a timer among entries (a timerfd polled for input: OpenFile.readyAt) makes one ready, in
 * performance.now() ms; Infinity when none will. Asked again at every look, since the timers may
 * be set meanwhile.
 */
function timerWake(p: Process, entries: PollEntry[]): number {
  let at = Infinity;
  for (const e of entries) {
    if (e.fd < 0 || !(e.events & (POLLIN | POLLRDNORM))) continue;
    const f = p.fds.peek(e.fd);
    if (f?.readyAt) at = Math.min(at, f.readyAt());
  }
  return at;
}

/**
 * poll(2) over guest fds. timeoutMs null waits without limit. Pipes and captured streams are
 * ready or never will be (this process is alone); a terminal or inherited stdin is waited on
 * with the host's poll; a timerfd wakes the wait at its expiry. Returns the number of entries
 * with events (0 on timeout). A wait parked in the kernel that ends without readiness (its
 * timeout, or a signal) calls ended, which writes the call's "nothing ready" to the guest
 * (poll's revents, select's sets) where Linux does; a parked wait that others made ready calls
 * it with 'ready' just before the call runs again.
 */
export function pollEntries(p: Process, entries: PollEntry[], timeoutMs: number | null, ended?: (why: 'timeout' | 'signal' | 'ready') => void): number {
  const deadline = timeoutMs === null ? Infinity : performance.now() + timeoutMs;
  for (;;) {
    const first = scan(p, entries);
    let ready = first.ready;
    const wait = first.wait;
    if (ready > 0 || timeoutMs === 0) return ready;
    const wake = Math.min(deadline, timerWake(p, entries));
    const leftMs = (): number | null => (wake === Infinity ? null : Math.max(0, Math.ceil(wake - performance.now())));
    if (p.kernel.othersCanRun(p)) {
      // Another task can run: the kernel parks this one until another makes these ready (or a
      // timer does, or a host fd among them, looked at every HOST_POLL_MS while nothing else is
      // ready), or until the timeout, when the call ends with nothing ready.
      const none = () => { for (const e of entries) e.revents = 0; return 0; };
      const hostFds = wait.length > 0;
      const ready = () => {
        if (scan(p, entries).ready === 0) return false;
        ended?.('ready');
        return true;
      };
      throw new WouldBlock(hostFds ? 'it polls files and host fds' : 'it polls files', ready,
        { get at() { return Math.min(deadline, timerWake(p, entries), hostFds ? performance.now() + HOST_POLL_MS : Infinity); }, result: none },
        (why) => { none(); ended?.(why); },
        wait.map((w) => ({ fd: w.hostFd, events: w.entry.events & POLLOUT ? POLLIN | POLLOUT : POLLIN })));
    } else if (wait.length > 0) {
      const pfds = pollfds(wait.map((w) => [w.hostFd, w.entry.events & POLLOUT ? POLLIN | POLLOUT : POLLIN] as const));
      // In bounded slices: a time limit or a cancel ends the wait (src/linux/host-wait.ts).
      const r = pollBounded(p, pfds, wait.length, leftMs());
      if (r < 0) return 0;
      ({ ready } = scan(p, entries));
      if (r > 0) {
        p.checkDeadline();
        return ready;
      }
    } else if (wake < Infinity || p.timeLeftMs() !== null) {
      if (!sleepBounded(p, leftMs())) return 0;
      ({ ready } = scan(p, entries));
    } else {
      return blockedForever(p, 'it polls, with no timeout, files that only it could make ready');
    }
    if (p.checkDeadline()) return 0;
    if (ready > 0 || performance.now() >= deadline) return ready;
  }
}

export function timeoutFromTimespec(p: Process, addr: bigint, usec: boolean): number | null {
  return timeLimit(p, addr, usec).ms;
}

/**
 * The time limit of select, pselect6 or ppoll: a struct timeval (usec) or timespec at addr (0:
 * none), in ms rounded up, and writeLeft, which puts the time left in its place when the call
 * ends, as Linux does. So a program that calls select in a loop with one timeval waits that long
 * in all, and a call restarted after a signal waits only what was left. Like Linux, it leaves
 * memory that cannot be written as it was.
 */
interface TimeLimit { ms: number | null; writeLeft: () => void }

/** A limit of ms (null: none) that writes nothing back (poll's int timeout). */
const plainLimit = (ms: number | null): TimeLimit => ({ ms, writeLeft: () => {} });

function timeLimit(p: Process, addr: bigint, usec: boolean): TimeLimit {
  if (addr === 0n) return plainLimit(null);
  const b = p.userBuffer(addr, 16, PROT_READ);
  const s = b.readBigInt64LE(0), frac = b.readBigInt64LE(8);
  if (s < 0n || frac < 0n || frac >= (usec ? 1_000_000n : 1_000_000_000n)) throw new Errno(E.EINVAL);
  const ns = s * 1_000_000_000n + (usec ? frac * 1000n : frac);
  const ms = (ns + 999_999n) / 1_000_000n;
  const endNs = process.hrtime.bigint() + ns;
  const writeLeft = () => {
    if (ns === 0n) return; // nor does Linux write back a zero timeout
    const left = endNs - process.hrtime.bigint();
    writeTimeLeft(p, addr, left < 0n ? 0n : left, usec);
  };
  return { ms: ms > 0x7fffffffn ? 0x7fffffff : Number(ms), writeLeft };
}

function poll(p: Process, addr: bigint, nfdsArg: bigint, limit: TimeLimit): number {
  const nfds = size(nfdsArg);
  if (nfds < 0 || nfds > p.fds.limit) throw new Errno(E.EINVAL);
  const raw = p.userBuffer(addr, nfds * 8, PROT_WRITE);
  const entries: PollEntry[] = [];
  for (let i = 0; i < nfds; i++) entries.push({ fd: raw.readInt32LE(i * 8), events: raw.readUInt16LE(i * 8 + 4), revents: 0 });
  // Ended in the kernel with nothing ready: every revents is 0 (the array may have been unmapped meanwhile).
  const ended = (why: 'timeout' | 'signal' | 'ready') => {
    limit.writeLeft();
    if (why === 'ready') return;
    try {
      const out = p.userBuffer(addr, nfds * 8, PROT_WRITE);
      for (let i = 0; i < nfds; i++) out.writeUInt16LE(0, i * 8 + 6);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
    }
  };
  let n: number;
  try {
    n = pollEntries(p, entries, limit.ms, ended);
  } finally {
    limit.writeLeft();
  }
  entries.forEach((e, i) => raw.writeUInt16LE(e.revents & 0xffff, i * 8 + 6));
  return n;
}

const FD_SETSIZE_MAX = 1024;
const SELECT_IN = POLLIN | POLLRDNORM | POLLHUP | POLLERR, SELECT_OUT = POLLOUT | POLLWRNORM | POLLERR, SELECT_EX = 0x002;

function select(p: Process, a: bigint[], limit: TimeLimit): number {
  try {
    return selectSets(p, a, limit);
  } finally {
    limit.writeLeft();
  }
}

function selectSets(p: Process, a: bigint[], limit: TimeLimit): number {
  const nfds = int(a[0]!);
  if (nfds < 0) throw new Errno(E.EINVAL);
  const n = Math.min(nfds, FD_SETSIZE_MAX);
  const bytes = Math.ceil(n / 64) * 8;
  const sets = [a[1]!, a[2]!, a[3]!].map((addr) => (addr === 0n || bytes === 0 ? null : p.userBuffer(addr, bytes, PROT_WRITE)));
  const bit = (set: Buffer | null, fd: number) => set !== null && (set[fd >> 3]! & (1 << (fd & 7))) !== 0;
  const entries: PollEntry[] = [];
  for (let fd = 0; fd < n; fd++) {
    const events = (bit(sets[0]!, fd) ? POLLIN : 0) | (bit(sets[1]!, fd) ? POLLOUT : 0) | (bit(sets[2]!, fd) ? SELECT_EX : 0);
    if (!events) continue;
    p.fds.get(fd); // select fails with EBADF on a closed fd
    entries.push({ fd, events, revents: 0 });
  }
  // Ended in the kernel at its timeout: the sets come back empty. Interrupted by a signal, they
  // stay as they were, as Linux leaves them (a program that calls select again after EINTR
  // passes the same sets: cmake's process loop does).
  const ended = (why: 'timeout' | 'signal' | 'ready') => {
    limit.writeLeft();
    if (why !== 'timeout') return;
    for (const addr of [a[1]!, a[2]!, a[3]!]) {
      if (addr === 0n || bytes === 0) continue;
      try {
        p.userBuffer(addr, bytes, PROT_WRITE).fill(0);
      } catch (e) {
        if (!(e instanceof Errno)) throw e;
      }
    }
  };
  pollEntries(p, entries, limit.ms, ended);
  for (const s of sets) s?.fill(0);
  let count = 0;
  for (const e of entries) {
    const set = (i: number) => { sets[i]![e.fd >> 3]! |= 1 << (e.fd & 7); count++; };
    if (e.events & POLLIN && e.revents & SELECT_IN) set(0);
    if (e.events & POLLOUT && e.revents & SELECT_OUT) set(1);
    if (e.events & SELECT_EX && e.revents & SELECT_EX) set(2);
  }
  return count;
}

function closeRange(p: Process, first: number, last: number, flags: number): number {
  if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) || first > last) throw new Errno(E.EINVAL);
  // Every open fd in the range, also those above a lowered RLIMIT_NOFILE (opened before it was
  // lowered: CPython's close_fds relies on close_range for them).
  for (const fd of p.fds.numbers()) {
    if (fd < first || fd > last) continue;
    if (flags & CLOSE_RANGE_CLOEXEC) p.fds.setCloexec(fd, true);
    else p.fds.close(fd);
  }
  return 0;
}

/** fsync/fdatasync: a host file is really synced (durability is the point); others have nothing to sync. */
function syncFile(p: Process, fd: number): number {
  const f = p.fds.get(fd);
  if (f.hostFd !== null && f instanceof HostFile) {
    const r = libc.fsync(f.hostFd);
    if (r < 0) throw new Errno(-r);
  }
  return 0;
}

const MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
const FALLOC_FL_KEEP_SIZE = 1;
/** Longest name memfd_create takes (Linux: 249 bytes, with the "memfd:" prefix within NAME_MAX). */
const MFD_NAME_MAX = 249;

/** memfd_create(2): a file of the sandbox's /dev/shm memory with no name (src/fs/shm.ts). */
function memfdCreate(p: Process, nameAddr: bigint, flags: number): number {
  if (flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING)) throw new Errno(E.EINVAL);
  const name = p.userString(nameAddr);
  if (nameLength(name) > MFD_NAME_MAX) throw new Errno(E.EINVAL);
  const shm = p.kernel.shm;
  if (!shm) throw new Errno(E.ENOSYS);
  const f = shm.anonymous(name, 0, (flags & MFD_ALLOW_SEALING) !== 0);
  try {
    return p.fds.install(f, (flags & MFD_CLOEXEC) !== 0);
  } catch (e) {
    f.close();
    throw e;
  }
}

/** fallocate(2) on a host file opened for writing (checked, with its grant, when it was opened). */
function fallocate(p: Process, fd: number, mode: number, offset: bigint, len: bigint): number {
  const f = p.fds.get(fd);
  if (offset < 0n || len <= 0n) throw new Errno(E.EINVAL);
  if ((f.statusFlags & O.ACCMODE) === O.RDONLY) throw new Errno(E.EBADF);
  if (!(mode & FALLOC_FL_KEEP_SIZE) && (f instanceof ShmFile || f instanceof HostFile)) p.checkFileSize(offset + len);
  if (f instanceof ShmFile) {
    // tmpfs allocates on demand: mode 0 and KEEP_SIZE only make room, which the budget has or not.
    if (mode & ~FALLOC_FL_KEEP_SIZE) throw new Errno(E.EOPNOTSUPP);
    if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + len > BigInt(f.node.size)) f.truncate(offset + len);
    return 0;
  }
  if (!(f instanceof HostFile)) throw new Errno(f instanceof PipeEnd ? E.ESPIPE : E.ENODEV);
  const r = f.reshape(() => libc.fallocate(f.hostFd, mode, offset, len));
  if (r < 0) throw new Errno(-r);
  return 0;
}

/**
 * copy_file_range(2) between two host files, through a host buffer: the source must be open for
 * reading and the destination for writing (EBADF), as at open time, which checked the grants.
 */
function copyFileRange(p: Process, a: bigint[]): number {
  if (uint(a[5]!) !== 0) throw new Errno(E.EINVAL);
  const src = p.fds.get(int(a[0]!));
  const dst = p.fds.get(int(a[2]!));
  if ((src.statusFlags & O.ACCMODE) === O.WRONLY || (dst.statusFlags & O.ACCMODE) === O.RDONLY) throw new Errno(E.EBADF);
  if (dst.statusFlags & O.APPEND) throw new Errno(E.EBADF);
  if (!(src instanceof HostFile) || !(dst instanceof HostFile)) throw new Errno(E.EINVAL);
  if (!src.isRegular() || !dst.isRegular()) throw new Errno(E.EINVAL);
  const offset = (addr: bigint): bigint | null => {
    if (addr === 0n) return null;
    const o = p.userBuffer(addr, 8, PROT_READ).readBigInt64LE(0);
    if (o < 0n) throw new Errno(E.EINVAL);
    return o;
  };
  let inOff = offset(a[1]!), outOff = offset(a[3]!);
  let left = Math.min(size(a[4]!), MAX_RW_COUNT);
  if (left < 0) throw new Errno(E.EINVAL);
  left = writeRoom(p, dst, outOff, left);
  const chunk = Buffer.alloc(Math.min(left, 1 << 17));
  let total = 0;
  try {
    while (left > 0) {
      const piece = chunk.subarray(0, Math.min(left, chunk.length));
      const n = inOff === null ? src.read(piece) : src.pread(piece, inOff);
      if (n <= 0) break;
      const w = outOff === null ? dst.write(piece.subarray(0, n)) : dst.pwrite(piece.subarray(0, n), outOff);
      total += w;
      left -= w;
      if (inOff !== null) inOff += BigInt(w);
      else if (w < n) src.seek(BigInt(w - n), SEEK_CUR);
      if (outOff !== null) outOff += BigInt(w);
      if (w < n) break;
    }
  } catch (e) {
    if (total === 0) throw e;
  }
  if (inOff !== null) p.userBuffer(a[1]!, 8, PROT_WRITE).writeBigInt64LE(inOff);
  if (outOff !== null) p.userBuffer(a[3]!, 8, PROT_WRITE).writeBigInt64LE(outOff);
  return total;
}

const RWF_HIPRI = 1, RWF_DSYNC = 2, RWF_SYNC = 4, RWF_NOWAIT = 8, RWF_APPEND = 16;
const RWF_KNOWN = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND;

function statOf(f: OpenFile): Buffer {
  const st = Buffer.alloc(STAT_SIZE);
  f.stat(st);
  return st;
}

/** The file type bits (S_IFMT) of an open file. */
export function fileType(f: OpenFile): number {
  return statOf(f).readUInt32LE(STAT.mode) & S_IFMT;
}

/**
 * Whether a call on f would wait now for events (POLLIN or POLLOUT): RWF_NOWAIT's and
 * SPLICE_F_NONBLOCK's EAGAIN. A stream that has hung up or failed would not wait.
 */
export function wouldWait(f: OpenFile, events: number): boolean {
  const hostFd = f.pollHostFd?.() ?? null;
  const mask = f.pollMask ? f.pollMask() : hostFd !== null ? hostReady(hostFd, events) : events;
  return (mask & (events | POLLHUP | POLLERR)) === 0;
}

/**
 * preadv2/pwritev2: preadv and pwritev with flags, where offset -1 is the file's position (as
 * readv and writev). RWF_APPEND writes at the end whatever the offset, RWF_DSYNC and RWF_SYNC
 * sync a host file after the write, RWF_NOWAIT is EAGAIN where the call would wait, RWF_HIPRI
 * (polled direct I/O) changes nothing here; other flags are EOPNOTSUPP, as Linux 6.1 has them.
 */
function rwv2(t: Task, a: bigint[], write: boolean): number {
  const p = t.process;
  const fd = int(a[0]!);
  const flags = int(a[5]!);
  if (flags & ~RWF_KNOWN) throw new Errno(E.EOPNOTSUPP);
  const f = p.fds.get(fd);
  const pos = long(a[3]!);
  if (pos < -1n) throw new Errno(E.EINVAL);
  if (flags & RWF_NOWAIT && wouldWait(f, write ? POLLOUT : POLLIN)) throw new Errno(E.EAGAIN);
  const offset = pos === -1n ? null : pos;
  if (write && flags & RWF_APPEND) {
    const st = statOf(f);
    if ((st.readUInt32LE(STAT.mode) & S_IFMT) === S_IFREG) {
      // At the end whatever the offset; from the position (offset -1), the position moves past it.
      const end = st.readBigInt64LE(STAT.size);
      const n = writev(p, a, end);
      if (offset === null) f.seek(end + BigInt(n), SEEK_SET);
      return synced(p, fd, flags, n);
    }
  }
  if (!write) {
    if (offset !== null) return readv(p, a, offset);
    backgroundRead(t, fd);
    return guarded(p, () => readv(p, a, null));
  }
  if (offset !== null) return synced(p, fd, flags, writev(p, a, offset));
  backgroundChange(t, fd, true);
  return synced(p, fd, flags, guarded(p, () => writev(p, a, null)));
}

/** n, after a sync of fd's host file when flags ask for one (RWF_DSYNC, RWF_SYNC). */
function synced(p: Process, fd: number, flags: number, n: number): number {
  if (flags & (RWF_DSYNC | RWF_SYNC) && n > 0) syncFile(p, fd);
  return n;
}

/**
 * readahead(2) and sync_file_range(2): hints and write-back of the host's page cache, which the
 * host manages; checked as Linux checks them (the fd open for reading and a regular file, for
 * readahead; known flags, a range within off_t and a file that is not a stream, for
 * sync_file_range), and then nothing to do.
 */
function readahead(p: Process, fd: number): number {
  const f = p.fds.get(fd);
  if ((f.statusFlags & O.ACCMODE) === O.WRONLY) throw new Errno(E.EBADF);
  if (fileType(f) !== S_IFREG) throw new Errno(E.EINVAL);
  return 0;
}

const SYNC_FILE_RANGE_ALL = 7;

function syncFileRange(p: Process, a: bigint[]): number {
  const off = long(a[1]!), n = long(a[2]!);
  if (int(a[3]!) & ~SYNC_FILE_RANGE_ALL || off < 0n || n < 0n || off + n < off || off + n > SSIZE_MAX) throw new Errno(E.EINVAL);
  const type = fileType(p.fds.get(int(a[0]!)));
  if (type !== S_IFREG && type !== S_IFBLK && type !== S_IFDIR && type !== S_IFLNK) throw new Errno(E.ESPIPE);
  return 0;
}

/** An ioctl that fills len bytes, made on a host fd into a buffer of kvmbox's, then copied to user memory at addr (checked first). */
function hostIoctlOut(p: Process, hostFd: number, req: number, addr: bigint, len: number): number {
  const out = p.userBuffer(addr, len, PROT_WRITE);
  const tmp = Buffer.alloc(len);
  const r = libc.ioctlOut(hostFd, req, tmp);
  if (r < 0) throw new Errno(-r);
  tmp.copy(out);
  return 0;
}

export const ioSyscalls: SyscallGroup = {
  read: (t, a) => {
    const p = t.process;
    backgroundRead(t, int(a[0]));
    const f = p.fds.get(int(a[0]));
    if (f instanceof SignalFd) f.reader = t;
    return guarded(p, () => readInto(p, int(a[0]), a[1], a[2], null));
  },
  write: (t, a) => {
    backgroundChange(t, int(a[0]), true);
    return guarded(t.process, () => writeFrom(t.process, int(a[0]), a[1], a[2], null, a));
  },
  pread64: ({ process: p }, a) => readInto(p, int(a[0]), a[1], a[2], checkOffset(a[3])),
  pwrite64: ({ process: p }, a) => writeFrom(p, int(a[0]), a[1], a[2], checkOffset(a[3])),
  readv: (t, a) => {
    backgroundRead(t, int(a[0]));
    return guarded(t.process, () => readv(t.process, a, null));
  },
  writev: (t, a) => {
    backgroundChange(t, int(a[0]), true);
    return guarded(t.process, () => writev(t.process, a, null));
  },
  preadv: ({ process: p }, a) => readv(p, a, checkOffset(a[3])),
  pwritev: ({ process: p }, a) => writev(p, a, checkOffset(a[3])),
  preadv2: (t, a) => rwv2(t, a, false),
  pwritev2: (t, a) => rwv2(t, a, true),
  readahead: ({ process: p }, a) => readahead(p, int(a[0])),
  sync_file_range: ({ process: p }, a) => syncFileRange(p, a),
  close: ({ process: p }, a) => { p.fds.close(int(a[0])); return 0; },
  lseek: ({ process: p }, a) => {
    const whence = int(a[2]);
    if (whence < SEEK_SET || whence > 4) throw new Errno(E.EINVAL);
    return p.fds.get(int(a[0])).seek(long(a[1]), whence);
  },
  dup: ({ process: p }, a) => p.fds.install(p.fds.get(int(a[0]))),
  dup2: ({ process: p }, a) => dupTo(p, int(a[0]), int(a[1]), false),
  dup3: ({ process: p }, a) => {
    const flags = int(a[2]);
    if (int(a[0]) === int(a[1]) || (flags & ~O.CLOEXEC)) throw new Errno(E.EINVAL);
    return dupTo(p, int(a[0]), int(a[1]), (flags & O.CLOEXEC) !== 0);
  },
  fcntl: ({ process: p }, a) => {
    const fd = int(a[0]);
    const f = p.fds.get(fd);
    switch (int(a[1])) {
      case F_DUPFD: return p.fds.install(f, false, int(a[2]));
      case F_DUPFD_CLOEXEC: return p.fds.install(f, true, int(a[2]));
      case F_GETFD: return p.fds.cloexec(fd) ? FD_CLOEXEC : 0;
      case F_SETFD: p.fds.setCloexec(fd, (int(a[2]) & FD_CLOEXEC) !== 0); return 0;
      case F_GETFL: return f.statusFlags;
      case F_SETFL: {
        const settable = O.APPEND | O.NONBLOCK | O.NOATIME | O.DIRECT | O_ASYNC;
        f.statusFlags = (f.statusFlags & ~settable) | (int(a[2]) & settable);
        p.kernel.asyncIo.setAsync(f, (f.statusFlags & O_ASYNC) !== 0, fd, p.fds);
        return 0;
      }
      case F_GETLK: case F_SETLK: case F_SETLKW: case F_OFD_GETLK: case F_OFD_SETLK: case F_OFD_SETLKW:
        return recordLock(p, f, int(a[1]), a[2]);
      case F_GETOWN: {
        const o = p.kernel.asyncIo.owner(f);
        return o.type === F_OWNER_PGRP ? -o.pid : o.pid;
      }
      case F_SETOWN: {
        const who = int(a[2]);
        // A group is given negated; INT_MIN has no positive (EINVAL, as Linux's f_setown).
        if (who === -0x80000000) throw new Errno(E.EINVAL);
        setOwner(p, f, who < 0 ? F_OWNER_PGRP : F_OWNER_PID, Math.abs(who));
        return 0;
      }
      case F_GETOWN_EX: {
        const o = p.kernel.asyncIo.owner(f);
        const out = p.userBuffer(a[2]!, 8, PROT_WRITE);
        out.writeInt32LE(o.type, 0);
        out.writeInt32LE(o.pid, 4);
        return 0;
      }
      case F_SETOWN_EX: {
        const b = p.userBuffer(a[2]!, 8, PROT_READ);
        const type = b.readInt32LE(0), pid = b.readInt32LE(4);
        if (type !== F_OWNER_TID && type !== F_OWNER_PID && type !== F_OWNER_PGRP) throw new Errno(E.EINVAL);
        if (pid < 0) throw new Errno(E.EINVAL);
        setOwner(p, f, type, pid);
        return 0;
      }
      case F_NOTIFY: p.kernel.asyncIo.notify(f, fd, int(a[2]), p); return 0;
      case F_GETSIG: return p.kernel.asyncIo.owner(f).signal;
      case F_SETSIG: {
        const sig = int(a[2]);
        if (sig < 0 || sig > NSIG) throw new Errno(E.EINVAL);
        p.kernel.asyncIo.setSignal(f, sig);
        return 0;
      }
      case F_GETPIPE_SZ:
        if (!(f instanceof PipeEnd)) throw new Errno(E.EBADF);
        return f.capacity;
      case F_SETPIPE_SZ: {
        if (!(f instanceof PipeEnd)) throw new Errno(E.EBADF);
        const want = int(a[2]);
        if (want < 0 || want > PIPE_MAX_SIZE) throw new Errno(want < 0 ? E.EINVAL : E.EPERM);
        let n = 4096;
        while (n < want) n *= 2;
        return f.resize(n);
      }
      case F_ADD_SEALS: {
        if (!(f instanceof ShmFile)) throw new Errno(E.EINVAL);
        const seals = int(a[2]);
        if (seals & F_SEAL_WRITE && !(f.node.seals & F_SEAL_WRITE) && writablyMapped(p, f)) throw new Errno(E.EBUSY);
        f.addSeals(seals);
        return 0;
      }
      case F_GET_SEALS:
        if (!(f instanceof ShmFile)) throw new Errno(E.EINVAL);
        return f.node.seals;
      default: throw new Errno(E.EINVAL);
    }
  },
  ioctl: (t, a) => {
    const p = t.process;
    const f = p.fds.get(int(a[0]));
    const req = Number(BigInt.asUintN(32, a[1]));
    if (TERMINAL_CHANGES.has(req)) backgroundChange(t, int(a[0]), false);
    if (f instanceof PtyMaster || f instanceof PtySlave) {
      const r = ptyIoctl(t, f, req, a[2]);
      if (r !== null) return r;
    }
    switch (req) {
      case TIOCGPGRP: case TIOCGSID: case TIOCSPGRP: {
        // The terminal's session and foreground group are the sandbox's (a process that left the
        // session with setsid has no controlling terminal: ENOTTY, as on Linux).
        const term = p.kernel.terminal;
        if (!f.isatty() || p.sid !== term.sid) throw new Errno(E.ENOTTY);
        if (req !== TIOCSPGRP) {
          p.userBuffer(a[2], 4, PROT_WRITE).writeInt32LE(req === TIOCGSID ? term.sid : term.pgrp);
          return 0;
        }
        term.pgrp = foregroundArg(p, a[2], term.sid);
        return 0;
      }
      case TCSETS: case TCSETSW: case TCSETSF: {
        if (!f.isatty() || f.hostFd === null) throw new Errno(E.ENOTTY);
        // One copy of the program's struct, checked and applied from that copy (src/linux/terminal.ts).
        const modes = Buffer.from(p.userBuffer(a[2], KERNEL_TERMIOS_SIZE, PROT_READ));
        p.kernel.terminalModes.set(f.hostFd, modes, req === TCSETSF);
        return 0;
      }
      case TCFLSH:
        if (!f.isatty() || f.hostFd === null) throw new Errno(E.ENOTTY);
        p.kernel.terminalModes.flush(f.hostFd, int(a[2]));
        return 0;
      case TCXONC:
        if (!f.isatty() || f.hostFd === null) throw new Errno(E.ENOTTY);
        p.kernel.terminalModes.flow(f.hostFd, int(a[2]));
        return 0;
      case TCSBRK:
        // tcdrain (argument 1) waits for nothing: kvmbox writes a program's output through at
        // once. A break (argument 0) is not sent: the line is the user's terminal.
        if (!f.isatty() || f.hostFd === null) throw new Errno(E.ENOTTY);
        return 0;
      case TCGETS: case TIOCGWINSZ: {
        if (!f.isatty() || f.hostFd === null) throw new Errno(E.ENOTTY);
        // The kernel's struct termios is 36 bytes (glibc's user-space one, 60, is not what TCGETS fills).
        return hostIoctlOut(p, f.hostFd, req, a[2], req === TCGETS ? KERNEL_TERMIOS_SIZE : 8);
      }
      // Close-on-exec set or cleared through ioctl (CPython's os.set_inheritable does this first).
      case FIOCLEX: case FIONCLEX:
        p.fds.setCloexec(int(a[0]), req === FIOCLEX);
        return 0;
      case FIONBIO: {
        // *argp nonzero sets O_NONBLOCK on the open file, zero clears it, as fcntl(F_SETFL) does
        // (libuv and CPython's socket.setblocking make fds non-blocking this way).
        const on = p.userBuffer(a[2], 4, PROT_READ).readInt32LE(0);
        f.statusFlags = on ? f.statusFlags | O.NONBLOCK : f.statusFlags & ~O.NONBLOCK;
        return 0;
      }
      case FIONREAD: {
        const out = p.userBuffer(a[2], 4, PROT_WRITE);
        // Directories: Linux says ENOTTY; files, pipes and streams: bytes readable now.
        if (fileType(f) === S_IFDIR) throw new Errno(E.ENOTTY);
        out.writeInt32LE(Math.min(0x7fffffff, f.available?.() ?? 0));
        return 0;
      }
      default: {
        const len = INODE_FLAG_READS.get(req);
        if (f instanceof HostFile && len !== undefined) return hostIoctlOut(p, f.hostFd, req, a[2], len);
        if (f instanceof HostFile && INODE_FLAG_WRITES.has(req)) throw new Errno(E.EPERM);
        const r = isSocket(f) ? interfaceIoctl(p, req, a[2]) : null;
        if (r !== null) return r;
        throw new Errno(f.isatty() ? E.EINVAL : E.ENOTTY);
      }
    }
  },
  getdents64: ({ process: p }, a) => {
    const f = p.fds.get(int(a[0]));
    const n = Math.min(size(a[2]), MAX_RW_COUNT);
    return f.getdents(p.userBuffer(a[1], n, PROT_WRITE));
  },
  pipe: ({ process: p }, a) => pipe2(p, a[0], 0),
  pipe2: ({ process: p }, a) => pipe2(p, a[0], int(a[1])),
  sendfile: ({ process: p }, a) => guarded(p, () => sendfile(p, a)),
  poll: ({ process: p }, a) => poll(p, a[0], a[1], plainLimit(int(a[2]) < 0 ? null : int(a[2]))),
  ppoll: (t, a) => {
    const limit = timeLimit(t.process, a[2], false);
    return withSigmask(t, a[3], a[4], () => poll(t.process, a[0], a[1], limit));
  },
  select: ({ process: p }, a) => select(p, a, timeLimit(p, a[4], true)),
  pselect6: (t, a) => {
    // The sixth argument points to { const sigset_t *ss; size_t ss_len; }.
    const sig = a[5] === 0n ? null : t.process.userBuffer(a[5], 16, PROT_READ);
    return withSigmask(t, sig ? sig.readBigUInt64LE(0) : 0n, sig ? sig.readBigUInt64LE(8) : 8n,
      () => select(t.process, a, timeLimit(t.process, a[4], false)));
  },
  close_range: ({ process: p }, a) => closeRange(p, uint(a[0]), uint(a[1]), int(a[2])),
  flock: ({ process: p }, a) => {
    const f = p.fds.get(int(a[0]));
    const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    const op = int(a[1]) & ~LOCK_NB;
    if (op === LOCK_UN) p.kernel.locks.unflock(f);
    else if (op === LOCK_SH || op === LOCK_EX) p.kernel.locks.flock(f, op === LOCK_EX, (int(a[1]) & LOCK_NB) === 0);
    else throw new Errno(E.EINVAL);
    return 0;
  },
  fsync: ({ process: p }, a) => syncFile(p, int(a[0])),
  fdatasync: ({ process: p }, a) => syncFile(p, int(a[0])),
  fallocate: ({ process: p }, a) => fallocate(p, int(a[0]), int(a[1]), long(a[2]), long(a[3])),
  copy_file_range: ({ process: p }, a) => copyFileRange(p, a),
  memfd_create: ({ process: p }, a) => memfdCreate(p, a[0], uint(a[1])),
  ftruncate: ({ process: p }, a) => {
    const f = p.fds.get(int(a[0]));
    const len = checkOffset(a[1]);
    if (f instanceof ShmFile) {
      p.checkFileSize(len);
      f.truncate(len);
      return 0;
    }
    const hostFd = f.hostFd;
    if (hostFd === null || (f.statusFlags & O.ACCMODE) === O.RDONLY) throw new Errno(E.EINVAL);
    if (f instanceof HostFile) p.checkFileSize(len);
    const cut = (): number => libc.ftruncate(hostFd, len);
    const r = f instanceof HostFile ? f.reshape(cut) : cut();
    if (r < 0) throw new Errno(-r);
    return 0;
  },
};

export { SEEK_END };
