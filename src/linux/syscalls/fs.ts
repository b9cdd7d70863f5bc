// Path-based system calls. Paths are resolved by the host in the guest's namespace (src/fs/vfs.ts):
// only granted trees exist, and every host operation is relative to a grant's fd.
// A few /dev and /proc entries are made up by the host (src/linux/special-files.ts).
//
// Identity and permissions: the guest runs as uid/gid 1000 (GUEST_UID). Files owned by uid 1000
// or by the user running kvmbox are the guest's own; permission bits are checked here as Linux
// checks them for a non-root process (owner, group or other bits), also when kvmbox runs as
// root and the host would let everything through. Search (x) permission on the directories of
// a path is not checked. chown to the guest's own ids succeeds without changing the host owner.
import { hostGid, hostUid, mapOwner } from '../../fs/identity.js';
import * as libc from '../../kvm/libc.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { HostFile, virtualDirStat, VirtualDir, type OpenFile } from '../../fs/open-file.js';
import { lstatSpecial, special } from '../special-files.js';
import { normalize, SymlinkEscape, type Location } from '../../fs/vfs.js';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, E, Errno, O, S_IFDIR, S_IFLNK,
  S_IFMT, STAT, STAT_SIZE,
} from '../../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../../abi/abi.generated.js';
import type { Process } from '../process.js';
import { int, long, size, uint, type SyscallGroup } from './args.js';

type HostLoc = Extract<Location, { kind: 'host' }>;

const F_OK = 0, X_OK = 1, W_OK = 2, R_OK = 4;
const AT_EACCESS = 0x200;
const RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;
const S_ISUID = 0o4000, S_ISGID = 0o2000;
const statBuf = Buffer.alloc(STAT_SIZE);

function check(r: number): number {
  if (r < 0) throw new Errno(-r);
  return r;
}

/** The file belongs to the guest: uid 1000, or the user running kvmbox (who creates the guest's files). */
function owns(st: Buffer): boolean {
  const uid = st.readUInt32LE(STAT.uid);
  return uid === GUEST_UID || uid === hostUid;
}

/** Whether a process of uid/gid 1000 may access the file with `want` (R_OK|W_OK|X_OK bits). */
export function permitted(st: Buffer, want: number): boolean {
  if (want === 0) return true;
  const mode = st.readUInt32LE(STAT.mode);
  const gid = st.readUInt32LE(STAT.gid);
  const bits = owns(st) ? (mode >> 6) & 7 : gid === GUEST_GID || gid === hostGid ? (mode >> 3) & 7 : mode & 7;
  return (bits & want) === want;
}

function hostLoc(loc: Location): HostLoc {
  // The virtual directories above grants are read-only, like a read-only root file system.
  if (loc.kind !== 'host') throw new Errno(E.EROFS);
  return loc;
}

function requireWritable(loc: HostLoc): void {
  if (!loc.grant.writable) throw new Errno(E.EROFS);
}

/**
 * A host fd reached through grant g that is about to be written: a symlink inside a --rw grant
 * may lead into a read-only grant nested in it, and that grant's rule wins (EROFS).
 */
function requireHeldWritable(p: Process, g: HostLoc['grant'], fd: number): void {
  const path = p.vfs.guestPathOf(g, fd);
  if (path === null) return;
  let held: Location;
  try { held = p.vfs.locate(normalize(path)); } catch { return; }
  if (held.kind === 'host' && held.grant !== g && !held.grant.writable) throw new Errno(E.EROFS);
}

/** Run fn on (parent dirfd, last component) of a host location, closing the dirfd after. */
function withParent<T>(p: Process, loc: HostLoc, fn: (dirfd: number, name: string) => T, forWrite = false): T {
  const { dirfd, name } = p.vfs.openParent(loc);
  try {
    if (forWrite) requireHeldWritable(p, loc.grant, dirfd);
    return fn(dirfd, name);
  } finally {
    libc.closeFd(dirfd);
  }
}

/**
 * Run fn on the host location that comps names, following symlinks on the way (and the last
 * one when `follow`). With `create`, a missing name directly inside a virtual directory is
 * EROFS: it could only be created there.
 */
function onHost<T>(p: Process, comps: readonly string[], follow: boolean, fn: (loc: HostLoc) => T, create = false): T {
  try {
    return p.vfs.at(comps, follow, (loc) => fn(hostLoc(loc)));
  } catch (e) {
    throw create ? creatingInVirtual(p, comps, e) : e;
  }
}

/** A name about to be created: EEXIST when it exists (also in a read-only grant), else EROFS there. */
function createCheck(p: Process, loc: HostLoc): void {
  if (loc.rel === '') throw new Errno(E.EEXIST);
  if (loc.grant.writable) return;
  const r = withParent(p, loc, (d, name) => libc.fstatat(d, name, statBuf, AT_SYMLINK_NOFOLLOW));
  throw new Errno(r >= 0 ? E.EEXIST : E.EROFS);
}

/** The guest path (absolute components) of a path argument; an empty path is ENOENT. */
function pathArg(p: Process, dirfd: number, addr: bigint): string[] {
  const path = p.userString(addr);
  if (path === '') throw new Errno(E.ENOENT);
  return p.pathAt(dirfd, path);
}

/** Permission check before opening an existing file, as the guest's uid would get it. */
function checkOpen(p: Process, loc: HostLoc, flags: number): void {
  if (flags & O.PATH) return;
  const acc = flags & O.ACCMODE;
  let want = acc === O.RDONLY ? R_OK : acc === O.WRONLY ? W_OK : R_OK | W_OK;
  if (flags & O.TRUNC) want |= W_OK;
  let fd: number;
  try {
    fd = p.vfs.openHost(loc, O.PATH | (flags & O.NOFOLLOW), 0);
  } catch (e) {
    if (e instanceof Errno && e.errno === E.ENOENT && flags & O.CREAT && !(e instanceof SymlinkEscape)) return;
    throw e;
  }
  try { check(libc.fstat(fd, statBuf)); } finally { libc.closeFd(fd); }
  const type = statBuf.readUInt32LE(STAT.mode) & S_IFMT;
  if (type === S_IFLNK) return; // O_NOFOLLOW on a symlink: the open itself fails with ELOOP
  if (flags & O.CREAT && flags & O.EXCL) throw new Errno(E.EEXIST);
  if (type === S_IFDIR && want & W_OK) throw new Errno(E.EISDIR);
  if (want & W_OK && !loc.grant.writable) throw new Errno(E.EROFS);
  if (!permitted(statBuf, want)) throw new Errno(E.EACCES);
}

const KEEP_FLAGS = ~(O.CREAT | O.EXCL | O.TRUNC | O.CLOEXEC | O.NOCTTY);

export function openPath(p: Process, comps: string[], flags: number, mode: number): OpenFile {
  const sp = special(p, comps);
  if (sp) {
    if (flags & O.CREAT && flags & O.EXCL) throw new Errno(E.EEXIST);
    if (flags & O.NOFOLLOW && sp.link !== undefined) throw new Errno(E.ELOOP);
    return sp.open(flags);
  }
  return p.vfs.at(comps, !(flags & O.NOFOLLOW), (loc, c) => {
    const path = '/' + c.join('/');
    if (loc.kind === 'virtual') {
      if (flags & O.CREAT && flags & O.EXCL) throw new Errno(E.EEXIST);
      if ((flags & O.ACCMODE) !== O.RDONLY || flags & (O.CREAT | O.TRUNC)) throw new Errno(E.EISDIR);
      return new VirtualDir(path, flags & KEEP_FLAGS, loc.children);
    }
    checkOpen(p, loc, flags);
    const fd = p.vfs.openHost(loc, flags, mode & ~p.umask);
    const file = new HostFile(fd, p.vfs.guestPathOf(loc.grant, fd) ?? path, flags & KEEP_FLAGS);
    if (loc.grant.writable && ((flags & O.ACCMODE) !== O.RDONLY || flags & (O.CREAT | O.TRUNC))) {
      try { requireHeldWritable(p, loc.grant, fd); } catch (e) { file.close(); throw e; }
    }
    return file;
  });
}

/** ENOENT for a name directly in a virtual directory becomes EROFS when the call would create it. */
function creatingInVirtual(p: Process, comps: readonly string[], e: unknown): unknown {
  if (!(e instanceof Errno) || e.errno !== E.ENOENT || comps.length === 0) return e;
  let parent: Location | null = null;
  try { parent = p.vfs.locate(comps.slice(0, -1)); } catch { /* the parent is missing too */ }
  return parent?.kind === 'virtual' ? new Errno(E.EROFS) : e;
}

function doOpen(p: Process, dirfd: number, pathAddr: bigint, flags: number, mode: number): number {
  const comps = pathArg(p, dirfd, pathAddr);
  if (flags & O.PATH) flags &= O.PATH | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC;
  if (p.userString(pathAddr).endsWith('/')) {
    // "name/" must be a directory: never created, and a symlink to one is followed.
    if (flags & O.CREAT) throw new Errno(E.EISDIR);
    flags = (flags | O.DIRECTORY) & ~O.NOFOLLOW;
  }
  let file: OpenFile;
  try {
    file = openPath(p, comps, flags, mode);
  } catch (e) {
    throw flags & O.CREAT ? creatingInVirtual(p, comps, e) : e;
  }
  try {
    return p.fds.install(file, (flags & O.CLOEXEC) !== 0);
  } catch (e) {
    file.close();
    throw e;
  }
}

/** stat/lstat of a guest path into statBuf. */
function statPath(p: Process, comps: readonly string[], follow: boolean): Buffer {
  const sp = special(p, comps);
  if (sp) {
    if (follow) sp.stat(statBuf);
    else lstatSpecial(sp, statBuf, '/' + comps.join('/'));
    return statBuf;
  }
  return p.vfs.at(comps, follow, (loc, c) => {
    if (loc.kind === 'virtual') {
      virtualDirStat(statBuf, '/' + c.join('/'));
    } else if (!loc.grant.isDir || loc.rel === '') {
      check(libc.fstat(loc.grant.fd, statBuf));
    } else if (follow) {
      const fd = p.vfs.openHost(loc, O.PATH, 0);
      try { check(libc.fstat(fd, statBuf)); } finally { libc.closeFd(fd); }
    } else {
      withParent(p, loc, (dirfd, name) => check(libc.fstatat(dirfd, name, statBuf, AT_SYMLINK_NOFOLLOW)));
    }
    return statBuf;
  });
}

function fstatAt(p: Process, dirfd: number, pathAddr: bigint, flags: number): Buffer {
  const path = p.userString(pathAddr);
  if (path === '') {
    if (!(flags & AT_EMPTY_PATH)) throw new Errno(E.ENOENT);
    if (dirfd === AT_FDCWD) return statPath(p, p.cwd, true);
    p.fds.get(dirfd).stat(statBuf);
    return statBuf;
  }
  // A trailing slash means "the directory": a symlink is followed, and a file is ENOTDIR.
  const slash = path.endsWith('/');
  const st = statPath(p, p.pathAt(dirfd, path), slash || !(flags & AT_SYMLINK_NOFOLLOW));
  if (slash && (st.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFDIR) throw new Errno(E.ENOTDIR);
  return st;
}

function copyStat(p: Process, addr: bigint, st: Buffer): number {
  mapOwner(st).copy(p.userBuffer(addr, STAT_SIZE, PROT_WRITE), 0, 0, STAT_SIZE);
  return 0;
}

// struct statx offsets
const STATX_SIZE = 256;
const STATX_BASIC_STATS = 0x7ff;
function writeStatx(out: Buffer, st: Buffer): void {
  out.fill(0, 0, STATX_SIZE);
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
  ts(64, STAT.atime); // stx_atime; stx_btime (80) is not known: STATX_BTIME is not in the mask
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
  if (mode & ~(R_OK | W_OK | X_OK)) throw new Errno(E.EINVAL);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH)) throw new Errno(E.EINVAL);
  const comps = pathArg(p, dirfd, pathAddr);
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const st = statPath(p, comps, follow);
  if (mode === F_OK) return 0;
  const type = st.readUInt32LE(STAT.mode) & S_IFMT;
  if (mode & W_OK && !special(p, comps) && (type === S_IFDIR || type === S_IFLNK || type === 0o100000)) {
    // Like a read-only mount: EROFS for files, directories and links outside --rw grants.
    p.vfs.at(comps, follow, (loc) => { if (loc.kind !== 'host' || !loc.grant.writable) throw new Errno(E.EROFS); });
  }
  if (!permitted(st, mode)) throw new Errno(E.EACCES);
  return 0;
}

function readlink(p: Process, dirfd: number, pathAddr: bigint, buf: bigint, bufsize: bigint): number {
  const n = int(bufsize);
  if (n <= 0) throw new Errno(E.EINVAL);
  const comps = pathArg(p, dirfd, pathAddr);
  const sp = special(p, comps);
  let target: Buffer;
  if (sp) {
    if (sp.link === undefined) throw new Errno(E.EINVAL);
    target = Buffer.from(sp.link);
  } else {
    target = p.vfs.at(comps, false, (loc) => {
      if (loc.kind !== 'host' || !loc.grant.isDir || loc.rel === '') throw new Errno(E.EINVAL);
      const tmp = Buffer.alloc(4096);
      const len = withParent(p, loc, (d, name) => check(libc.readlinkat(d, name, tmp)));
      return tmp.subarray(0, len);
    });
  }
  const out = p.userBuffer(buf, Math.min(n, target.length), PROT_WRITE);
  target.copy(out, 0, 0, out.length);
  return out.length;
}

function mkdir(p: Process, dirfd: number, pathAddr: bigint, mode: number): number {
  const comps = pathArg(p, dirfd, pathAddr);
  if (special(p, comps)) throw new Errno(E.EEXIST);
  try {
    p.vfs.at(comps, false, (loc) => {
      // An existing directory wins over a read-only file system, as in Linux.
      if (loc.kind === 'virtual') throw new Errno(E.EEXIST);
      createCheck(p, loc);
      withParent(p, loc, (d, name) => check(libc.mkdirat(d, name, mode & ~p.umask & 0o7777)), true);
    });
  } catch (e) {
    throw creatingInVirtual(p, comps, e);
  }
  return 0;
}

function unlink(p: Process, dirfd: number, pathAddr: bigint, flags: number): number {
  if (flags & ~AT_REMOVEDIR) throw new Errno(E.EINVAL);
  const comps = pathArg(p, dirfd, pathAddr);
  if (special(p, comps)) throw new Errno(E.EROFS);
  onHost(p, comps, false, (loc) => {
    requireWritable(loc);
    if (loc.rel === '') throw new Errno(E.EBUSY);
    withParent(p, loc, (d, name) => check(libc.unlinkat(d, name, flags & AT_REMOVEDIR)), true);
  });
  return 0;
}

function rename(p: Process, od: number, op: bigint, nd: number, np: bigint, flags: number): number {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new Errno(E.EINVAL);
  if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) throw new Errno(E.EINVAL);
  const fromComps = pathArg(p, od, op);
  const toComps = pathArg(p, nd, np);
  if (special(p, fromComps) || special(p, toComps)) throw new Errno(E.EXDEV);
  onHost(p, fromComps, false, (from) => {
    requireWritable(from);
    if (from.rel === '') throw new Errno(E.EBUSY);
    withParent(p, from, (d1, n1) => onHost(p, toComps, false, (to) => {
      requireWritable(to);
      requireHeldWritable(p, from.grant, d1);
      if (to.rel === '') throw new Errno(E.EBUSY);
      withParent(p, to, (d2, n2) => check(libc.renameat2(d1, n1, d2, n2, flags)), true);
    }, true));
  });
  return 0;
}

function symlink(p: Process, targetAddr: bigint, dirfd: number, pathAddr: bigint): number {
  const target = p.userString(targetAddr);
  if (target === '') throw new Errno(E.ENOENT);
  const comps = pathArg(p, dirfd, pathAddr);
  if (special(p, comps)) throw new Errno(E.EEXIST);
  // The link's text is stored as given; following it later is confined like any other lookup.
  onHost(p, comps, false, (loc) => {
    createCheck(p, loc);
    withParent(p, loc, (d, name) => check(libc.symlinkat(target, d, name)), true);
  }, true);
  return 0;
}

function link(p: Process, od: number, op: bigint, nd: number, np: bigint, flags: number): number {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) throw new Errno(E.EINVAL);
  let fromComps = pathArg(p, od, op);
  const toComps = pathArg(p, nd, np);
  if (special(p, fromComps) || special(p, toComps)) throw new Errno(E.EXDEV);
  // The host's linkat never follows the source: a symlink is resolved here, in the guest's namespace.
  if (flags & AT_SYMLINK_FOLLOW) fromComps = p.vfs.resolve(fromComps, true);
  onHost(p, fromComps, false, (from) => {
    if (from.rel === '') throw new Errno(E.EPERM);
    withParent(p, from, (d1, n1) => onHost(p, toComps, false, (to) => {
      createCheck(p, to);
      if (from.grant !== to.grant) throw new Errno(E.EXDEV);
      withParent(p, to, (d2, n2) => check(libc.linkat(d1, n1, d2, n2, 0)), true);
    }, true));
  });
  return 0;
}

/** Apply fn to an O_PATH host fd of the file comps names (symlinks followed, confined). */
function withPathFd<T>(p: Process, loc: HostLoc, fn: (fd: number) => T): T {
  const fd = p.vfs.openHost(loc, O.PATH, 0);
  try {
    if (loc.grant.writable) requireHeldWritable(p, loc.grant, fd);
    return fn(fd);
  } finally { libc.closeFd(fd); }
}

function chmod(p: Process, dirfd: number, pathAddr: bigint, mode: number, flags: number): number {
  if (flags & ~AT_SYMLINK_NOFOLLOW) throw new Errno(E.EINVAL);
  const comps = pathArg(p, dirfd, pathAddr);
  const sp = special(p, comps);
  if (sp) {
    // /proc/self/fd/N (how glibc changes a file it holds as O_PATH): the file behind the fd.
    if (!(sp.file instanceof HostFile)) throw new Errno(E.EPERM);
    return chmodFile(p, sp.file, mode);
  }
  onHost(p, comps, true, (loc) => {
    requireWritable(loc);
    if (flags & AT_SYMLINK_NOFOLLOW) throw new Errno(E.EOPNOTSUPP);
    // Change the inode through the O_PATH fd's /proc/self/fd link: no path from / is used.
    withPathFd(p, loc, (fd) => {
      check(libc.fstat(fd, statBuf));
      if (!owns(statBuf)) throw new Errno(E.EPERM);
      check(libc.fchmodat(AT_FDCWD, `/proc/self/fd/${fd}`, mode & 0o7777, 0));
    });
  });
  return 0;
}

function chmodFile(p: Process, f: HostFile, mode: number): number {
  requireFdWritable(p, f);
  check(libc.fstat(f.hostFd, statBuf));
  if (!owns(statBuf)) throw new Errno(E.EPERM);
  check(libc.fchmodat(AT_FDCWD, `/proc/self/fd/${f.hostFd}`, mode & 0o7777, 0));
  return 0;
}

/** chown to the guest's own ids: allowed on its own files, changes nothing on the host but clears set-id bits. */
function chownCheck(st: Buffer, uid: number, gid: number): boolean {
  if (!owns(st)) throw new Errno(E.EPERM);
  // The file's owner as the guest sees it (mapOwner): the guest's own, or uid 1000 itself.
  const stGid = st.readUInt32LE(STAT.gid);
  if (uid !== -1 && uid !== GUEST_UID) throw new Errno(E.EPERM);
  if (gid !== -1 && gid !== GUEST_GID && gid !== (stGid === hostGid ? GUEST_GID : stGid)) throw new Errno(E.EPERM);
  const mode = st.readUInt32LE(STAT.mode);
  const type = mode & S_IFMT;
  // Linux clears set-user-ID (and group-executable set-group-ID) on a chown of a non-directory.
  return (uid !== -1 || gid !== -1) && type !== S_IFDIR && (mode & S_ISUID || (mode & S_ISGID && mode & 0o010)) !== 0;
}

function clearSetId(fd: number, mode: number): void {
  check(libc.fchmodat(AT_FDCWD, `/proc/self/fd/${fd}`, mode & 0o7777 & ~(S_ISUID | (mode & 0o010 ? S_ISGID : 0)), 0));
}

function chown(p: Process, dirfd: number, pathAddr: bigint, uid: number, gid: number, flags: number): number {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw new Errno(E.EINVAL);
  const path = p.userString(pathAddr);
  if (path === '' && flags & AT_EMPTY_PATH) return fchown(p, dirfd, uid, gid);
  const comps = pathArg(p, dirfd, pathAddr);
  if (special(p, comps)) throw new Errno(E.EPERM);
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  onHost(p, comps, follow, (loc) => {
    requireWritable(loc);
    if (!follow && loc.rel !== '') {
      withParent(p, loc, (d, name) => check(libc.fstatat(d, name, statBuf, AT_SYMLINK_NOFOLLOW)));
      if ((statBuf.readUInt32LE(STAT.mode) & S_IFMT) === S_IFLNK) { chownCheck(statBuf, uid, gid); return; }
    }
    withPathFd(p, loc, (fd) => {
      check(libc.fstat(fd, statBuf));
      if (chownCheck(statBuf, uid, gid)) clearSetId(fd, statBuf.readUInt32LE(STAT.mode));
    });
  });
  return 0;
}

function fchown(p: Process, fd: number, uid: number, gid: number): number {
  const f = p.fds.get(fd);
  f.stat(statBuf);
  if (f.hostFd === null || !(f instanceof HostFile)) {
    // A pipe, a device or a standard stream: the guest's own, nothing to change.
    if (uid !== -1 && uid !== GUEST_UID || gid !== -1 && gid !== GUEST_GID) throw new Errno(E.EPERM);
    return 0;
  }
  requireFdWritable(p, f);
  if (chownCheck(statBuf, uid, gid)) clearSetId(f.hostFd, statBuf.readUInt32LE(STAT.mode));
  return 0;
}

/** The open file lies in a --rw grant (for fchmod, fchown, futimens). */
function requireFdWritable(p: Process, f: OpenFile): void {
  let loc: Location;
  try { loc = p.vfs.locate(normalize(f.path)); } catch { throw new Errno(E.EROFS); }
  if (loc.kind !== 'host' || !loc.grant.writable) throw new Errno(E.EROFS);
}

const UTIME_NOW = (1 << 30) - 1, UTIME_OMIT = (1 << 30) - 2;

function utimens(p: Process, dirfd: number, pathAddr: bigint, timesAddr: bigint, flags: number): number {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw new Errno(E.EINVAL);
  let times: Buffer | null = null;
  if (timesAddr !== 0n) {
    times = Buffer.from(p.userBuffer(timesAddr, 32, PROT_READ));
    for (const off of [8, 24]) {
      const ns = times.readBigInt64LE(off);
      if ((ns < 0n || ns > 999_999_999n) && ns !== BigInt(UTIME_NOW) && ns !== BigInt(UTIME_OMIT)) throw new Errno(E.EINVAL);
    }
  }
  const onFd = pathAddr === 0n || (flags & AT_EMPTY_PATH && p.userString(pathAddr) === '');
  if (onFd) {
    const f = p.fds.get(dirfd);
    if (!(f instanceof HostFile)) return 0; // a device, pipe or standard stream: nothing to keep
    requireFdWritable(p, f);
    check(libc.utimensat(AT_FDCWD, `/proc/self/fd/${f.hostFd}`, times, 0));
    return 0;
  }
  const comps = pathArg(p, dirfd, pathAddr);
  if (special(p, comps)) return 0;
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  onHost(p, comps, follow, (loc) => {
    requireWritable(loc);
    if (!follow && loc.rel !== '') {
      withParent(p, loc, (d, name) => check(libc.utimensat(d, name, times, AT_SYMLINK_NOFOLLOW)), true);
    } else {
      withPathFd(p, loc, (fd) => check(libc.utimensat(AT_FDCWD, `/proc/self/fd/${fd}`, times, 0)));
    }
  });
  return 0;
}

function chdir(p: Process, comps: readonly string[]): number {
  // The working directory is kept fully resolved, as getcwd reports it.
  const resolved = special(p, comps) ? [...comps] : p.vfs.resolve(comps, true);
  const st = statPath(p, resolved, true);
  if ((st.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFDIR) throw new Errno(E.ENOTDIR);
  if (!permitted(st, X_OK)) throw new Errno(E.EACCES);
  p.cwd = resolved;
  return 0;
}

function truncate(p: Process, pathAddr: bigint, length: bigint): number {
  const len = long(length);
  if (len < 0n) throw new Errno(E.EINVAL);
  const comps = pathArg(p, AT_FDCWD, pathAddr);
  if (special(p, comps)) throw new Errno(E.EINVAL);
  onHost(p, comps, true, (loc) => {
    checkOpen(p, loc, O.WRONLY);
    const fd = p.vfs.openHost(loc, O.WRONLY, 0);
    try { check(libc.ftruncate(fd, len)); } finally { libc.closeFd(fd); }
  });
  return 0;
}

// struct statfs (x86-64): 120 bytes; f_flags at 80.
const STATFS_SIZE = 120;
const ST_RDONLY = 1;
const RAMFS_MAGIC = 0x858458f6;
function fakeStatfs(out: Buffer): void {
  out.fill(0, 0, STATFS_SIZE);
  out.writeBigInt64LE(BigInt(RAMFS_MAGIC), 0);
  out.writeBigInt64LE(4096n, 8);
  out.writeBigInt64LE(255n, 64);
  out.writeBigInt64LE(4096n, 72);
  out.writeBigInt64LE(BigInt(ST_RDONLY), 80);
}

function statfsAt(p: Process, comps: readonly string[], out: Buffer): void {
  if (special(p, comps)) { fakeStatfs(out); return; }
  p.vfs.at(comps, true, (loc) => {
    if (loc.kind === 'virtual') { fakeStatfs(out); return; }
    const fd = loc.grant.isDir && loc.rel !== '' ? p.vfs.openHost(loc, O.PATH, 0) : -1;
    try { check(libc.fstatfs(fd >= 0 ? fd : loc.grant.fd, out)); } finally { if (fd >= 0) libc.closeFd(fd); }
    if (!loc.grant.writable) out.writeBigInt64LE(out.readBigInt64LE(80) | BigInt(ST_RDONLY), 80);
  });
}

export const fsSyscalls: SyscallGroup = {
  open: ({ process: p }, a) => doOpen(p, AT_FDCWD, a[0], int(a[1]), uint(a[2])),
  creat: ({ process: p }, a) => doOpen(p, AT_FDCWD, a[0], O.CREAT | O.WRONLY | O.TRUNC, uint(a[1])),
  openat: ({ process: p }, a) => doOpen(p, int(a[0]), a[1], int(a[2]), uint(a[3])),
  stat: ({ process: p }, a) => copyStat(p, a[1], fstatAt(p, AT_FDCWD, a[0], 0)),
  lstat: ({ process: p }, a) => copyStat(p, a[1], fstatAt(p, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW)),
  fstat: ({ process: p }, a) => {
    p.fds.get(int(a[0])).stat(statBuf);
    return copyStat(p, a[1], statBuf);
  },
  newfstatat: ({ process: p }, a) => copyStat(p, a[2], fstatAt(p, int(a[0]), a[1], int(a[3]))),
  statx: ({ process: p }, a) => {
    const st = fstatAt(p, int(a[0]), a[1], int(a[2]));
    const out = p.userBuffer(a[4], STATX_SIZE, PROT_WRITE);
    writeStatx(out, mapOwner(st));
    return 0;
  },
  statfs: ({ process: p }, a) => {
    const out = Buffer.alloc(STATFS_SIZE);
    statfsAt(p, pathArg(p, AT_FDCWD, a[0]), out);
    out.copy(p.userBuffer(a[1], STATFS_SIZE, PROT_WRITE));
    return 0;
  },
  fstatfs: ({ process: p }, a) => {
    const f = p.fds.get(int(a[0]));
    const out = Buffer.alloc(STATFS_SIZE);
    if (f instanceof HostFile) statfsAt(p, normalize(f.path), out);
    else fakeStatfs(out);
    out.copy(p.userBuffer(a[1], STATFS_SIZE, PROT_WRITE));
    return 0;
  },
  access: ({ process: p }, a) => access(p, AT_FDCWD, a[0], int(a[1]), 0),
  faccessat: ({ process: p }, a) => access(p, int(a[0]), a[1], int(a[2]), 0),
  faccessat2: ({ process: p }, a) => access(p, int(a[0]), a[1], int(a[2]), int(a[3])),
  readlink: ({ process: p }, a) => readlink(p, AT_FDCWD, a[0], a[1], a[2]),
  readlinkat: ({ process: p }, a) => readlink(p, int(a[0]), a[1], a[2], a[3]),
  getcwd: ({ process: p }, a) => {
    const cwd = Buffer.from('/' + p.cwd.join('/') + '\0');
    const n = size(a[1]);
    if (n < cwd.length) throw new Errno(E.ERANGE);
    cwd.copy(p.userBuffer(a[0], cwd.length, PROT_WRITE));
    return cwd.length;
  },
  chdir: ({ process: p }, a) => chdir(p, pathArg(p, AT_FDCWD, a[0])),
  fchdir: ({ process: p }, a) => {
    const f = p.fds.get(int(a[0]));
    f.stat(statBuf);
    if ((statBuf.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFDIR || !f.path.startsWith('/')) throw new Errno(E.ENOTDIR);
    p.cwd = normalize(f.path);
    return 0;
  },
  mkdir: ({ process: p }, a) => mkdir(p, AT_FDCWD, a[0], uint(a[1])),
  mkdirat: ({ process: p }, a) => mkdir(p, int(a[0]), a[1], uint(a[2])),
  unlink: ({ process: p }, a) => unlink(p, AT_FDCWD, a[0], 0),
  rmdir: ({ process: p }, a) => unlink(p, AT_FDCWD, a[0], AT_REMOVEDIR),
  unlinkat: ({ process: p }, a) => unlink(p, int(a[0]), a[1], int(a[2])),
  rename: ({ process: p }, a) => rename(p, AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
  renameat: ({ process: p }, a) => rename(p, int(a[0]), a[1], int(a[2]), a[3], 0),
  renameat2: ({ process: p }, a) => rename(p, int(a[0]), a[1], int(a[2]), a[3], uint(a[4])),
  symlink: ({ process: p }, a) => symlink(p, a[0], AT_FDCWD, a[1]),
  symlinkat: ({ process: p }, a) => symlink(p, a[0], int(a[1]), a[2]),
  link: ({ process: p }, a) => link(p, AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
  linkat: ({ process: p }, a) => link(p, int(a[0]), a[1], int(a[2]), a[3], int(a[4])),
  chmod: ({ process: p }, a) => chmod(p, AT_FDCWD, a[0], uint(a[1]), 0),
  fchmodat: ({ process: p }, a) => chmod(p, int(a[0]), a[1], uint(a[2]), 0),
  fchmod: ({ process: p }, a) => {
    const f = p.fds.get(int(a[0]));
    if (!(f instanceof HostFile)) throw new Errno(E.EPERM);
    if (f.statusFlags & O.PATH) throw new Errno(E.EBADF);
    return chmodFile(p, f, uint(a[1]));
  },
  chown: ({ process: p }, a) => chown(p, AT_FDCWD, a[0], int(a[1]), int(a[2]), 0),
  lchown: ({ process: p }, a) => chown(p, AT_FDCWD, a[0], int(a[1]), int(a[2]), AT_SYMLINK_NOFOLLOW),
  fchownat: ({ process: p }, a) => chown(p, int(a[0]), a[1], int(a[2]), int(a[3]), int(a[4])),
  fchown: ({ process: p }, a) => fchown(p, int(a[0]), int(a[1]), int(a[2])),
  utimensat: ({ process: p }, a) => utimens(p, int(a[0]), a[1], a[2], int(a[3])),
  truncate: ({ process: p }, a) => truncate(p, a[0], a[1]),
  umask: ({ process: p }, a) => {
    const old = p.umask;
    p.umask = uint(a[0]) & 0o777;
    return old;
  },
  sync: () => 0,
  syncfs: ({ process: p }, a) => { p.fds.get(int(a[0])); return 0; },
};
