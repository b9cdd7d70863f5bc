// Reading, writing and managing descriptors. Data moves straight between the host file and
// guest memory (the guest buffer is a view of guest memory), never through a copy.
import * as libc from '../../kvm/libc.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno, FIONBIO, FIONREAD, O, TCGETS, TIOCGPGRP, TIOCGWINSZ } from '../linux.js';
import type { Process } from '../process.js';
import { int, long, size, type SyscallGroup } from './table.js';

/** Linux caps one read or write at this many bytes. */
const MAX_RW_COUNT = 0x7ffff000;
const IOV_MAX = 1024;
const F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, F_GETLK = 5, F_SETLK = 6, F_SETLKW = 7;
const F_DUPFD_CLOEXEC = 1030;
const FD_CLOEXEC = 1;
const SEEK_SET = 0, SEEK_END = 2;

function iovecs(p: Process, addr: bigint, count: bigint): Array<[bigint, bigint]> {
  const n = Number(BigInt.asIntN(32, count));
  if (n < 0 || n > IOV_MAX) throw new Errno(E.EINVAL);
  const raw = p.userBuffer(addr, n * 16);
  const out: Array<[bigint, bigint]> = [];
  for (let i = 0; i < n; i++) out.push([raw.readBigUInt64LE(i * 16), raw.readBigUInt64LE(i * 16 + 8)]);
  return out;
}

function readInto(p: Process, fd: number, addr: bigint, len: bigint, offset: bigint | null): number {
  const f = p.fds.get(fd);
  const n = Math.min(size(len), MAX_RW_COUNT);
  const buf = p.userBuffer(addr, n < 0 ? len : n, PROT_WRITE);
  if (buf.length === 0) return 0;
  return offset === null ? f.read(buf) : f.pread(buf, offset);
}

function writeFrom(p: Process, fd: number, addr: bigint, len: bigint, offset: bigint | null): number {
  const f = p.fds.get(fd);
  const n = Math.min(size(len), MAX_RW_COUNT);
  const buf = p.userBuffer(addr, n < 0 ? len : n, PROT_READ);
  if (buf.length === 0 && offset === null) return f.write(buf);
  return offset === null ? f.write(buf) : f.pwrite(buf, offset);
}

function readv(p: Process, a: bigint[], offset: bigint | null): number {
  const fd = int(a[0]!);
  let total = 0;
  for (const [base, len] of iovecs(p, a[1]!, a[2]!)) {
    if (len === 0n) continue;
    const n = readInto(p, fd, base, len, offset === null ? null : offset + BigInt(total));
    total += n;
    if (BigInt(n) < len) break;
  }
  return total;
}

function writev(p: Process, a: bigint[], offset: bigint | null): number {
  const fd = int(a[0]!);
  const vecs = iovecs(p, a[1]!, a[2]!);
  p.fds.get(fd);
  // Gather into one host write when the pieces are small, like the kernel does for a pipe.
  const bufs = vecs.filter(([, l]) => l > 0n).map(([b, l]) => p.userBuffer(b, l, PROT_READ));
  if (bufs.length === 0) return 0;
  const f = p.fds.get(fd);
  const joined = bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
  return offset === null ? f.write(joined) : f.pwrite(joined, offset);
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

export const ioSyscalls: SyscallGroup = {
  read: (p, a) => readInto(p, int(a[0]), a[1], a[2], null),
  write: (p, a) => writeFrom(p, int(a[0]), a[1], a[2], null),
  pread64: (p, a) => readInto(p, int(a[0]), a[1], a[2], checkOffset(a[3])),
  pwrite64: (p, a) => writeFrom(p, int(a[0]), a[1], a[2], checkOffset(a[3])),
  readv: (p, a) => readv(p, a, null),
  writev: (p, a) => writev(p, a, null),
  preadv: (p, a) => readv(p, a, checkOffset(a[3])),
  pwritev: (p, a) => writev(p, a, checkOffset(a[3])),
  close: (p, a) => { p.fds.close(int(a[0])); return 0; },
  lseek: (p, a) => {
    const whence = int(a[2]);
    if (whence < SEEK_SET || whence > 4) throw new Errno(E.EINVAL);
    return p.fds.get(int(a[0])).seek(long(a[1]), whence);
  },
  dup: (p, a) => p.fds.install(p.fds.get(int(a[0]))),
  dup2: (p, a) => dupTo(p, int(a[0]), int(a[1]), false),
  dup3: (p, a) => {
    const flags = int(a[2]);
    if (int(a[0]) === int(a[1]) || (flags & ~O.CLOEXEC)) throw new Errno(E.EINVAL);
    return dupTo(p, int(a[0]), int(a[1]), (flags & O.CLOEXEC) !== 0);
  },
  fcntl: (p, a) => {
    const fd = int(a[0]);
    const f = p.fds.get(fd);
    switch (int(a[1])) {
      case F_DUPFD: return p.fds.install(f, false, int(a[2]));
      case F_DUPFD_CLOEXEC: return p.fds.install(f, true, int(a[2]));
      case F_GETFD: return p.fds.cloexec(fd) ? FD_CLOEXEC : 0;
      case F_SETFD: p.fds.setCloexec(fd, (int(a[2]) & FD_CLOEXEC) !== 0); return 0;
      case F_GETFL: return f.statusFlags;
      case F_SETFL: {
        const settable = O.APPEND | O.NONBLOCK | O.NOATIME | O.DIRECT;
        f.statusFlags = (f.statusFlags & ~settable) | (int(a[2]) & settable);
        return 0;
      }
      case F_GETLK: case F_SETLK: case F_SETLKW:
        // One process per sandbox: advisory locks always succeed.
        return 0;
      default: throw new Errno(E.EINVAL);
    }
  },
  ioctl: (p, a) => {
    const f = p.fds.get(int(a[0]));
    const req = Number(BigInt.asUintN(32, a[1]));
    switch (req) {
      case TCGETS: case TIOCGWINSZ: case TIOCGPGRP: {
        if (!f.isatty() || f.hostFd === null) throw new Errno(E.ENOTTY);
        const len = req === TCGETS ? 60 : req === TIOCGWINSZ ? 8 : 4;
        const out = p.userBuffer(a[2], len, PROT_WRITE);
        const tmp = Buffer.alloc(len);
        const r = libc.ioctlOut(f.hostFd, req, tmp);
        if (r < 0) throw new Errno(-r);
        tmp.copy(out);
        return 0;
      }
      case FIONBIO: return 0;
      case FIONREAD: {
        p.userBuffer(a[2], 4, PROT_WRITE).writeInt32LE(0);
        return 0;
      }
      default: throw new Errno(f.isatty() ? E.EINVAL : E.ENOTTY);
    }
  },
  getdents64: (p, a) => {
    const f = p.fds.get(int(a[0]));
    const n = Math.min(size(a[2]), MAX_RW_COUNT);
    return f.getdents(p.userBuffer(a[1], n, PROT_WRITE));
  },
  fsync: (p, a) => { p.fds.get(int(a[0])); return 0; },
  fdatasync: (p, a) => { p.fds.get(int(a[0])); return 0; },
  ftruncate: (p, a) => {
    const f = p.fds.get(int(a[0]));
    if (f.hostFd === null || (f.statusFlags & O.ACCMODE) === O.RDONLY) throw new Errno(E.EINVAL);
    const r = libc.ftruncate(f.hostFd, checkOffset(a[1]));
    if (r < 0) throw new Errno(-r);
    return 0;
  },
};

export { SEEK_END };
