// Path-based system calls. Paths are resolved by the host in the guest's namespace (src/guest/
// files/vfs.ts): only granted trees exist, and every host operation is relative to a grant's fd.
import * as libc from '../../kvm/libc.js';
import { PROT_WRITE } from '../address-space.js';
import { DeviceFile, HostFile, virtualDirStat, VirtualDir, type OpenFile } from '../files/open-file.js';
import type { Location } from '../files/vfs.js';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, E, Errno, O, S_IFDIR, S_IFMT,
  STAT, STAT_SIZE,
} from '../linux.js';
import type { Process } from '../process.js';
import { int, size, uint, type SyscallGroup } from './table.js';
import { randomFillSync } from 'node:crypto';

const F_OK = 0, W_OK = 2;
const RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;
const DEVICES: Record<string, 'null' | 'zero' | 'urandom'> = {
  '/dev/null': 'null', '/dev/zero': 'zero', '/dev/urandom': 'urandom', '/dev/random': 'urandom',
};
const statBuf = Buffer.alloc(STAT_SIZE);

function check(r: number): number {
  if (r < 0) throw new Errno(-r);
  return r;
}

function locate(p: Process, comps: readonly string[]): Location {
  return p.vfs.locate(comps);
}

function hostLoc(loc: Location): Extract<Location, { kind: 'host' }> {
  // The virtual directories above grants are read-only, like a read-only root file system.
  if (loc.kind !== 'host') throw new Errno(E.EROFS);
  return loc;
}

function requireWritable(loc: Extract<Location, { kind: 'host' }>): void {
  if (!loc.grant.writable) throw new Errno(E.EROFS);
}

/** Run fn on (parent dirfd, last component) of a host location, closing the dirfd after. */
function withParent<T>(p: Process, loc: Extract<Location, { kind: 'host' }>, fn: (dirfd: number, name: string) => T): T {
  const { dirfd, name } = p.vfs.openParent(loc);
  try {
    return fn(dirfd, name);
  } finally {
    libc.closeFd(dirfd);
  }
}

export function openPath(p: Process, comps: string[], flags: number, mode: number): OpenFile {
  const path = '/' + comps.join('/');
  const device = DEVICES[path];
  if (device) return new DeviceFile(path, flags, device, (b) => randomFillSync(b));
  const loc = locate(p, comps);
  if (loc.kind === 'virtual') {
    if ((flags & O.ACCMODE) !== O.RDONLY || (flags & O.CREAT)) throw new Errno(flags & O.CREAT ? E.EEXIST : E.EISDIR);
    return new VirtualDir(path, flags, loc.children);
  }
  const fd = p.vfs.openHost(loc, flags, mode & ~p.umask);
  return new HostFile(fd, path, flags & ~(O.CREAT | O.EXCL | O.TRUNC | O.CLOEXEC | O.NOCTTY));
}

function doOpen(p: Process, dirfd: number, pathAddr: bigint, flags: number, mode: number): number {
  const path = p.userString(pathAddr);
  if (path === '') throw new Errno(E.ENOENT);
  const comps = p.pathAt(dirfd, path);
  if ((flags & O.PATH) === O.PATH) flags = (flags & ~O.ACCMODE & ~O.PATH) | O.RDONLY;
  const file = openPath(p, comps, flags, mode);
  try {
    return p.fds.install(file, (flags & O.CLOEXEC) !== 0);
  } catch (e) {
    file.close();
    throw e;
  }
}

/** stat/lstat of a guest path into statBuf. */
function statPath(p: Process, comps: string[], follow: boolean): Buffer {
  const path = '/' + comps.join('/');
  if (DEVICES[path]) {
    new DeviceFile(path, 0, DEVICES[path]!, () => {}).stat(statBuf);
    return statBuf;
  }
  const loc = locate(p, comps);
  if (loc.kind === 'virtual') {
    virtualDirStat(statBuf, path);
    return statBuf;
  }
  if (!loc.grant.isDir || loc.rel === '') {
    check(libc.fstat(loc.grant.fd, statBuf));
    return statBuf;
  }
  if (follow) {
    const fd = p.vfs.openHost(loc, O.PATH, 0);
    try { check(libc.fstat(fd, statBuf)); } finally { libc.closeFd(fd); }
  } else {
    withParent(p, loc, (dirfd, name) => check(libc.fstatat(dirfd, name, statBuf, AT_SYMLINK_NOFOLLOW)));
  }
  return statBuf;
}

function fstatAt(p: Process, dirfd: number, pathAddr: bigint, flags: number): Buffer {
  const path = p.userString(pathAddr);
  if (path === '') {
    if (!(flags & AT_EMPTY_PATH)) throw new Errno(E.ENOENT);
    if (dirfd === AT_FDCWD) return statPath(p, p.cwd, true);
    p.fds.get(dirfd).stat(statBuf);
    return statBuf;
  }
  return statPath(p, p.pathAt(dirfd, path), !(flags & AT_SYMLINK_NOFOLLOW));
}

function copyStat(p: Process, addr: bigint, st: Buffer): number {
  st.copy(p.userBuffer(addr, STAT_SIZE, PROT_WRITE), 0, 0, STAT_SIZE);
  return 0;
}

// struct statx offsets
const STATX_SIZE = 256;
function writeStatx(out: Buffer, st: Buffer): void {
  out.fill(0, 0, STATX_SIZE);
  const STATX_BASIC_STATS = 0x7ff;
  out.writeUInt32LE(STATX_BASIC_STATS, 0); // stx_mask
  out.writeUInt32LE(Number(st.readBigInt64LE(STAT.blksize)), 4);
  out.writeUInt32LE(Number(st.readBigUInt64LE(STAT.nlink)), 16);
  out.writeUInt32LE(st.readUInt32LE(STAT.uid), 20);
  out.writeUInt32LE(st.readUInt32LE(STAT.gid), 24);
  out.writeUInt16LE(st.readUInt32LE(STAT.mode) & 0xffff, 28);
  out.writeBigUInt64LE(st.readBigUInt64LE(STAT.ino), 32);
  out.writeBigUInt64LE(st.readBigUInt64LE(STAT.size), 40);
  out.writeBigUInt64LE(st.readBigUInt64LE(STAT.blocks), 48);
  const ts = (off: number, src: number) => {
    out.writeBigInt64LE(st.readBigInt64LE(src), off);
    out.writeUInt32LE(Number(st.readBigInt64LE(src + 8)), off + 8);
  };
  ts(64, STAT.atime); // stx_atime
  ts(80, STAT.ctime); // stx_btime: not known, use ctime
  ts(96, STAT.ctime);
  ts(112, STAT.mtime);
  const rdev = st.readBigUInt64LE(STAT.rdev);
  const dev = st.readBigUInt64LE(STAT.dev);
  const major = (d: bigint) => Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = (d: bigint) => Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  out.writeUInt32LE(major(rdev), 128);
  out.writeUInt32LE(minor(rdev), 132);
  out.writeUInt32LE(major(dev), 136);
  out.writeUInt32LE(minor(dev), 140);
}

function access(p: Process, dirfd: number, pathAddr: bigint, mode: number, flags: number): number {
  const comps = p.pathAt(dirfd, p.userString(pathAddr));
  const st = statPath(p, comps, !(flags & AT_SYMLINK_NOFOLLOW));
  if (mode === F_OK) return 0;
  const path = '/' + comps.join('/');
  if (mode & W_OK && !DEVICES[path]) {
    const loc = locate(p, comps);
    if (loc.kind !== 'host' || !loc.grant.writable) throw new Errno(E.EROFS);
  }
  // Permission bits as the host has them, for the owner (the guest runs as the file's user).
  const perm = (st.readUInt32LE(STAT.mode) >> 6) & 7;
  if ((perm & mode) !== mode && (st.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFDIR) throw new Errno(E.EACCES);
  return 0;
}

function readlink(p: Process, dirfd: number, pathAddr: bigint, buf: bigint, bufsize: bigint): number {
  const n = int(bufsize);
  if (n <= 0) throw new Errno(E.EINVAL);
  const path = p.userString(pathAddr);
  const comps = p.pathAt(dirfd, path);
  const full = '/' + comps.join('/');
  let target: Buffer;
  if (full === '/proc/self/exe') target = Buffer.from(p.opts.exePath);
  else if (full.startsWith('/proc/self/fd/')) target = Buffer.from(p.fds.get(Number(full.slice(14))).path);
  else {
    const loc = locate(p, comps);
    if (loc.kind !== 'host' || !loc.grant.isDir || loc.rel === '') throw new Errno(E.EINVAL);
    const tmp = Buffer.alloc(4096);
    const len = withParent(p, loc, (d, name) => check(libc.readlinkat(d, name, tmp)));
    target = tmp.subarray(0, len);
  }
  const out = p.userBuffer(buf, Math.min(n, target.length), PROT_WRITE);
  target.copy(out, 0, 0, out.length);
  return out.length;
}

function mkdir(p: Process, dirfd: number, pathAddr: bigint, mode: number): number {
  const loc = locate2(p, p.pathAt(dirfd, p.userString(pathAddr)), true);
  requireWritable(loc);
  withParent(p, loc, (d, name) => check(libc.mkdirat(d, name, mode & ~p.umask & 0o7777)));
  return 0;
}

/** Locate a path that may not exist yet (its parent must). Virtual paths are read-only. */
function locate2(p: Process, comps: string[], mayNotExist: boolean): Extract<Location, { kind: 'host' }> {
  let loc: Location;
  try {
    loc = locate(p, comps);
  } catch (e) {
    if (!mayNotExist || !(e instanceof Errno) || e.errno !== E.ENOENT || comps.length === 0) throw e;
    // A new name directly inside a virtual directory: that directory is read-only.
    locate(p, comps.slice(0, -1));
    throw new Errno(E.EROFS);
  }
  return hostLoc(loc);
}

function unlink(p: Process, dirfd: number, pathAddr: bigint, flags: number): number {
  if (flags & ~AT_REMOVEDIR) throw new Errno(E.EINVAL);
  const loc = locate2(p, p.pathAt(dirfd, p.userString(pathAddr)), false);
  requireWritable(loc);
  if (loc.rel === '') throw new Errno(E.EBUSY);
  withParent(p, loc, (d, name) => check(libc.unlinkat(d, name, flags & AT_REMOVEDIR)));
  return 0;
}

function rename(p: Process, od: number, op: bigint, nd: number, np: bigint, flags: number): number {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new Errno(E.EINVAL);
  const from = locate2(p, p.pathAt(od, p.userString(op)), false);
  const to = locate2(p, p.pathAt(nd, p.userString(np)), true);
  requireWritable(from);
  requireWritable(to);
  if (from.rel === '' || to.rel === '') throw new Errno(E.EBUSY);
  withParent(p, from, (d1, n1) => withParent(p, to, (d2, n2) => check(libc.renameat2(d1, n1, d2, n2, flags))));
  return 0;
}

function symlink(p: Process, targetAddr: bigint, dirfd: number, pathAddr: bigint): number {
  const target = p.userString(targetAddr);
  const loc = locate2(p, p.pathAt(dirfd, p.userString(pathAddr)), true);
  requireWritable(loc);
  // The link's text is stored as given; following it later is confined like any other lookup.
  withParent(p, loc, (d, name) => check(libc.symlinkat(target, d, name)));
  return 0;
}

function link(p: Process, od: number, op: bigint, nd: number, np: bigint, flags: number): number {
  const from = locate2(p, p.pathAt(od, p.userString(op)), false);
  const to = locate2(p, p.pathAt(nd, p.userString(np)), true);
  requireWritable(to);
  if (from.grant !== to.grant) throw new Errno(E.EXDEV);
  withParent(p, from, (d1, n1) => withParent(p, to, (d2, n2) => check(libc.linkat(d1, n1, d2, n2, 0))));
  return 0;
}

function chmod(p: Process, dirfd: number, pathAddr: bigint, mode: number, flags: number): number {
  const loc = locate2(p, p.pathAt(dirfd, p.userString(pathAddr)), false);
  requireWritable(loc);
  if (flags & AT_SYMLINK_NOFOLLOW) throw new Errno(E.EOPNOTSUPP);
  // Open (following symlinks, confined) and change the inode through /proc/self/fd: no path from /.
  const fd = p.vfs.openHost(loc, O.PATH, 0);
  try {
    check(libc.fchmodat(-100, `/proc/self/fd/${fd}`, mode & 0o7777, 0));
  } finally { libc.closeFd(fd); }
  return 0;
}

function utimens(p: Process, dirfd: number, pathAddr: bigint, timesAddr: bigint, flags: number): number {
  let times: Buffer | null = null;
  if (timesAddr !== 0n) times = Buffer.from(p.userBuffer(timesAddr, 32));
  if (pathAddr === 0n) {
    const f = p.fds.get(dirfd);
    if (f.hostFd === null) throw new Errno(E.EROFS);
    if ((f.statusFlags & O.ACCMODE) === O.RDONLY) {
      // Must still belong to a writable grant.
      const loc = locate(p, p.pathAt(AT_FDCWD, f.path));
      if (loc.kind !== 'host' || !loc.grant.writable) throw new Errno(E.EROFS);
    }
    check(libc.utimensat(-100, `/proc/self/fd/${f.hostFd}`, times, 0));
    return 0;
  }
  const loc = locate2(p, p.pathAt(dirfd, p.userString(pathAddr)), false);
  requireWritable(loc);
  if (flags & AT_SYMLINK_NOFOLLOW) {
    withParent(p, loc, (d, name) => check(libc.utimensat(d, name, times, AT_SYMLINK_NOFOLLOW)));
  } else {
    const fd = p.vfs.openHost(loc, O.PATH, 0);
    try { check(libc.utimensat(-100, `/proc/self/fd/${fd}`, times, 0)); } finally { libc.closeFd(fd); }
  }
  return 0;
}

function chdir(p: Process, comps: string[]): number {
  const st = statPath(p, comps, true);
  if ((st.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFDIR) throw new Errno(E.ENOTDIR);
  p.cwd = comps;
  return 0;
}

export const fsSyscalls: SyscallGroup = {
  open: (p, a) => doOpen(p, AT_FDCWD, a[0], int(a[1]), uint(a[2])),
  creat: (p, a) => doOpen(p, AT_FDCWD, a[0], O.CREAT | O.WRONLY | O.TRUNC, uint(a[1])),
  openat: (p, a) => doOpen(p, int(a[0]), a[1], int(a[2]), uint(a[3])),
  stat: (p, a) => copyStat(p, a[1], statPath(p, p.pathAt(AT_FDCWD, p.userString(a[0])), true)),
  lstat: (p, a) => copyStat(p, a[1], statPath(p, p.pathAt(AT_FDCWD, p.userString(a[0])), false)),
  fstat: (p, a) => {
    p.fds.get(int(a[0])).stat(statBuf);
    return copyStat(p, a[1], statBuf);
  },
  newfstatat: (p, a) => copyStat(p, a[2], fstatAt(p, int(a[0]), a[1], int(a[3]))),
  statx: (p, a) => {
    const st = fstatAt(p, int(a[0]), a[1], int(a[2]));
    const out = p.userBuffer(a[4], STATX_SIZE, PROT_WRITE);
    writeStatx(out, st);
    return 0;
  },
  access: (p, a) => access(p, AT_FDCWD, a[0], int(a[1]), 0),
  faccessat: (p, a) => access(p, int(a[0]), a[1], int(a[2]), 0),
  faccessat2: (p, a) => access(p, int(a[0]), a[1], int(a[2]), int(a[3])),
  readlink: (p, a) => readlink(p, AT_FDCWD, a[0], a[1], a[2]),
  readlinkat: (p, a) => readlink(p, int(a[0]), a[1], a[2], a[3]),
  getcwd: (p, a) => {
    const cwd = Buffer.from('/' + p.cwd.join('/') + '\0');
    const n = size(a[1]);
    if (n < cwd.length) throw new Errno(E.ERANGE);
    cwd.copy(p.userBuffer(a[0], cwd.length, PROT_WRITE));
    return cwd.length;
  },
  chdir: (p, a) => chdir(p, p.pathAt(AT_FDCWD, p.userString(a[0]))),
  fchdir: (p, a) => chdir(p, p.pathAt(AT_FDCWD, p.fds.get(int(a[0])).path)),
  mkdir: (p, a) => mkdir(p, AT_FDCWD, a[0], uint(a[1])),
  mkdirat: (p, a) => mkdir(p, int(a[0]), a[1], uint(a[2])),
  unlink: (p, a) => unlink(p, AT_FDCWD, a[0], 0),
  rmdir: (p, a) => unlink(p, AT_FDCWD, a[0], AT_REMOVEDIR),
  unlinkat: (p, a) => unlink(p, int(a[0]), a[1], int(a[2])),
  rename: (p, a) => rename(p, AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
  renameat: (p, a) => rename(p, int(a[0]), a[1], int(a[2]), a[3], 0),
  renameat2: (p, a) => rename(p, int(a[0]), a[1], int(a[2]), a[3], uint(a[4])),
  symlink: (p, a) => symlink(p, a[0], AT_FDCWD, a[1]),
  symlinkat: (p, a) => symlink(p, a[0], int(a[1]), a[2]),
  link: (p, a) => link(p, AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
  linkat: (p, a) => link(p, int(a[0]), a[1], int(a[2]), a[3], int(a[4])),
  chmod: (p, a) => chmod(p, AT_FDCWD, a[0], uint(a[1]), 0),
  fchmodat: (p, a) => chmod(p, int(a[0]), a[1], uint(a[2]), 0),
  fchmod: (p, a) => {
    const f = p.fds.get(int(a[0]));
    if (f.hostFd === null) throw new Errno(E.EROFS);
    const loc = locate(p, p.pathAt(AT_FDCWD, f.path));
    if (loc.kind !== 'host' || !loc.grant.writable) throw new Errno(E.EROFS);
    check(libc.fchmod(f.hostFd, uint(a[1]) & 0o7777));
    return 0;
  },
  utimensat: (p, a) => utimens(p, int(a[0]), a[1], a[2], int(a[3])),
  umask: (p, a) => {
    const old = p.umask;
    p.umask = uint(a[0]) & 0o777;
    return old;
  },
};
