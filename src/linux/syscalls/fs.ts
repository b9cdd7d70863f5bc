// Path-based system calls: each decodes its arguments, serves the few /dev and /proc entries
// the host makes up (src/linux/special-files.ts), and calls into the file-system layer
// (src/fs/ops.ts), which holds the rules: grants, permissions, and what may reach the host.
import { bytesOf, cStringOf } from '../../abi/file-names.js';
import { mapOwner } from '../../fs/identity.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { HostFile, type OpenFile } from '../../fs/open-file.js';
import { F_OK, permitted, R_OK, W_OK, X_OK } from '../../fs/access.js';
import * as ops from '../../fs/ops.js';
import { lstatSpecial, special } from '../special-files.js';
import { ShmFile, type ShmDir } from '../../fs/shm.js';
import { FifoFound, normalize } from '../../fs/vfs.js';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, E, Errno, O, S_IFDIR, S_IFLNK,
  S_IFMT, STAT, STAT_SIZE,
} from '../../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../../abi/abi.generated.js';
import type { Process } from '../process.js';
import { int, long, size, uint, type SyscallGroup } from './args.js';
import { PAGE_SIZE } from '../../machine/x86.js';

const AT_EACCESS = 0x200;
const RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2, RENAME_WHITEOUT = 4;
const statBuf = Buffer.alloc(STAT_SIZE);

/** The guest path (absolute components) of a path argument; an empty path is ENOENT. */
function pathArg(p: Process, dirfd: number, addr: bigint): string[] {
  return pathComps(p, dirfd, p.userString(addr));
}

/**
 * pathArg for a path already read from guest memory: a call that looks at the string itself too
 * reads it once, and uses that copy for both (another thread may change it in between).
 */
function pathComps(p: Process, dirfd: number, path: string): string[] {
  if (path === '') throw new Errno(E.ENOENT);
  return p.pathAt(dirfd, path);
}

/**
 * /dev/shm (name null) or a file in it, when the sandbox has its own (src/fs/shm.ts); null for
 * any other path. /dev/shm has no subdirectories: a deeper path is ENOTDIR or ENOENT.
 */
function shmPath(p: Process, comps: readonly string[]): { dir: ShmDir; name: string | null } | null {
  const dir = p.kernel.shm;
  if (!dir || comps[0] !== 'dev' || comps[1] !== 'shm') return null;
  if (comps.length === 2) return { dir, name: null };
  if (comps.length === 3) return { dir, name: comps[2]! };
  dir.lookup(comps[2]!);
  throw new Errno(E.ENOTDIR);
}

/** The file in /dev/shm that comps names (ENOENT... as shmPath); null outside /dev/shm. */
function shmFile(p: Process, comps: readonly string[]): { dir: ShmDir; name: string } | null {
  const shm = shmPath(p, comps);
  if (shm && shm.name === null) throw new Errno(E.EISDIR);
  return shm as { dir: ShmDir; name: string } | null;
}

/** Open a guest path: a made-up /dev or /proc entry, /dev/shm, or a host file through src/fs. */
export function openGuestPath(p: Process, comps: string[], flags: number, mode: number): OpenFile {
  const shm = shmPath(p, comps);
  if (shm) return shm.dir.open(shm.name, flags, mode, p.umask);
  const sp = special(p, comps);
  if (sp) {
    if (flags & O.CREAT && flags & O.EXCL) throw new Errno(E.EEXIST);
    if (flags & O.NOFOLLOW && sp.link !== undefined) throw new Errno(E.ELOOP);
    return sp.open(flags);
  }
  try {
    return ops.openPath(p, comps, flags, mode);
  } catch (e) {
    if (e instanceof FifoFound) return p.kernel.fifos.open(e.key, '/' + comps.join('/'), flags);
    throw e;
  }
}

function doOpen(p: Process, dirfd: number, pathAddr: bigint, flags: number, mode: number): number {
  return installOpened(p, openAt(p, dirfd, p.userString(pathAddr), flags, mode), (flags & O.CLOEXEC) !== 0);
}

/** The open file for (dirfd, path) as openat(flags, mode) makes it (not yet a descriptor). */
function openAt(p: Process, dirfd: number, path: string, flags: number, mode: number): OpenFile {
  const comps = pathComps(p, dirfd, path);
  if (flags & O.PATH) flags &= O.PATH | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC;
  if (path.endsWith('/')) {
    // "name/" must be a directory: never created, and a symlink to one is followed.
    if (flags & O.CREAT) throw new Errno(E.EISDIR);
    flags = (flags | O.DIRECTORY) & ~O.NOFOLLOW;
  }
  return openGuestPath(p, comps, flags, mode);
}

/** Install file at the lowest free descriptor; on EMFILE it is closed. */
function installOpened(p: Process, file: OpenFile, cloexec: boolean): number {
  try {
    return p.fds.install(file, cloexec);
  } catch (e) {
    file.close();
    throw e;
  }
}

const RESOLVE_NO_XDEV = 1n, RESOLVE_NO_MAGICLINKS = 2n, RESOLVE_NO_SYMLINKS = 4n, RESOLVE_BENEATH = 8n, RESOLVE_IN_ROOT = 0x10n, RESOLVE_CACHED = 0x20n;
/** struct open_how's first version: flags, mode, resolve (u64 each). */
const OPEN_HOW_SIZE = 24;
/** The open flags openat2 takes (Linux's VALID_OPEN_FLAGS); any other bit is EINVAL there. */
const VALID_OPEN_FLAGS = 0o37777703n;

/**
 * openat2(dirfd, path, how, size) (Linux 5.6): openat with struct open_how's stricter checks
 * and its RESOLVE_ flags. The walk itself is openat's: the flags are checked on the path as
 * written (an absolute path or a ".." above dirfd under RESOLVE_BENEATH: EXDEV; a magic link
 * of /proc under RESOLVE_NO_MAGICLINKS: ELOOP; RESOLVE_IN_ROOT reads the path inside dirfd)
 * and on where the open led (outside dirfd under BENEATH or IN_ROOT, and into another grant or
 * made-up tree under NO_XDEV: EXDEV; through a symlink under NO_SYMLINKS: ELOOP), the file being
 * closed again then. A file that O_CREAT made before such a refusal stays made.
 */
function openat2(p: Process, a: bigint[]): number {
  const n = size(a[3]!);
  if (n < OPEN_HOW_SIZE) throw new Errno(E.EINVAL);
  if (n > PAGE_SIZE) throw new Errno(E.E2BIG);
  const how = Buffer.from(p.userBuffer(a[2]!, n, PROT_READ));
  if (how.subarray(OPEN_HOW_SIZE).some((b) => b !== 0)) throw new Errno(E.E2BIG);
  const flags = how.readBigUInt64LE(0), mode = how.readBigUInt64LE(8), resolve = how.readBigUInt64LE(16);
  if (flags & ~VALID_OPEN_FLAGS || mode & ~0o7777n) throw new Errno(E.EINVAL);
  const f = Number(flags);
  if (mode !== 0n && !(f & (O.CREAT | O.TMPFILE))) throw new Errno(E.EINVAL);
  if (resolve & ~0x3fn || (resolve & RESOLVE_BENEATH && resolve & RESOLVE_IN_ROOT)) throw new Errno(E.EINVAL);
  if (resolve & RESOLVE_CACHED && f & (O.CREAT | O.TRUNC | O.TMPFILE)) throw new Errno(E.EAGAIN);
  const dirfd = int(a[0]!);
  let path = p.userString(a[1]!);
  const confined = (resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) !== 0n;
  if (resolve & RESOLVE_IN_ROOT) {
    // The path inside dirfd: "/" is dirfd, and ".." stops there.
    const inside: string[] = [];
    for (const c of path.split('/')) {
      if (c === '..') inside.pop();
      else if (c !== '' && c !== '.') inside.push(c);
    }
    path = path.endsWith('/') && inside.length ? inside.join('/') + '/' : inside.join('/') || '.';
  } else if (resolve & RESOLVE_BENEATH) {
    if (path.startsWith('/')) throw new Errno(E.EXDEV);
    let depth = 0;
    for (const c of path.split('/')) {
      depth += c === '..' ? -1 : c === '' || c === '.' ? 0 : 1;
      if (depth < 0) throw new Errno(E.EXDEV);
    }
  }
  // Where the walk starts: dirfd, or the root for an absolute path (dirfd is not looked at then).
  const base = path.startsWith('/') ? [] : p.pathAt(dirfd, '.');
  const written = p.pathAt(dirfd, path);
  if (resolve & RESOLVE_NO_MAGICLINKS && magicLinkIn(normalize(`/${base.join('/')}/${path}`))) throw new Errno(E.ELOOP);
  const file = openAt(p, dirfd, path, f, Number(mode));
  try {
    const at = normalize(file.path);
    if (confined && !(at.length >= base.length && base.every((c, i) => at[i] === c))) throw new Errno(E.EXDEV);
    if (resolve & RESOLVE_NO_SYMLINKS && at.join('/') !== written.join('/')) throw new Errno(E.ELOOP);
    if (resolve & RESOLVE_NO_XDEV && mountOf(p, at) !== mountOf(p, base)) throw new Errno(E.EXDEV);
  } catch (e) {
    file.close();
    throw e;
  }
  return installOpened(p, file, (f & O.CLOEXEC) !== 0);
}

/** Whether a path goes through (or ends at) one of /proc's magic links: fd/N, cwd, root, exe. */
function magicLinkIn(comps: readonly string[]): boolean {
  if (comps[0] === 'dev' && comps[1] === 'fd' && comps.length > 2) return true;
  if (comps[0] !== 'proc' || comps.length < 3) return false;
  const rest = comps[2] === 'task' ? comps.slice(4) : comps.slice(2);
  return ['cwd', 'root', 'exe'].includes(rest[0] ?? '') || (rest[0] === 'fd' && rest.length > 1);
}

/** What a path is mounted on, for RESOLVE_NO_XDEV: its grant, or the made-up tree it is in. */
function mountOf(p: Process, comps: readonly string[]): unknown {
  if (comps[0] === 'proc' || comps[0] === 'sys' || (comps[0] === 'dev' && comps[1] === 'shm')) return comps.slice(0, comps[0] === 'dev' ? 2 : 1).join('/');
  try {
    const loc = p.vfs.locate(comps);
    return loc.kind === 'host' ? loc.grant : 'virtual';
  } catch {
    return null;
  }
}

/** stat/lstat of a guest path into statBuf. */
function statPath(p: Process, comps: readonly string[], follow: boolean): Buffer {
  const shm = shmPath(p, comps);
  if (shm) {
    shm.dir.stat(shm.name, statBuf);
    return statBuf;
  }
  const sp = special(p, comps);
  if (sp) {
    if (follow) sp.stat(statBuf);
    else lstatSpecial(sp, statBuf, '/' + comps.join('/'));
    return statBuf;
  }
  return ops.statPath(p.vfs, comps, follow, statBuf);
}

/** stat of (dirfd, path) as newfstatat(flags) gives it; path: as read from guest memory, once. */
function fstatAt(p: Process, dirfd: number, path: string, flags: number): Buffer {
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
  if (mode & W_OK && !special(p, comps) && !shmPath(p, comps) && (type === S_IFDIR || type === S_IFLNK || type === 0o100000)) {
    // Like a read-only mount: EROFS for files, directories and links outside --rw grants.
    ops.requireWritablePath(p.vfs, comps, follow);
  }
  if (!permitted(st, mode)) throw new Errno(E.EACCES);
  return 0;
}

function readlink(p: Process, dirfd: number, pathAddr: bigint, buf: bigint, bufsize: bigint): number {
  const n = int(bufsize);
  if (n <= 0) throw new Errno(E.EINVAL);
  const comps = pathArg(p, dirfd, pathAddr);
  if (shmPath(p, comps)) throw new Errno(E.EINVAL);
  const sp = special(p, comps);
  let target: Buffer;
  if (sp) {
    if (sp.link === undefined) throw new Errno(E.EINVAL);
    target = bytesOf(sp.link);
  } else {
    target = ops.readlinkPath(p.vfs, comps);
  }
  const out = p.userBuffer(buf, Math.min(n, target.length), PROT_WRITE);
  target.copy(out, 0, 0, out.length);
  return out.length;
}

/** mkdir and mknod in /dev/shm: only files are made there, by open. */
function shmMake(p: Process, comps: readonly string[]): boolean {
  const shm = shmPath(p, comps);
  if (!shm) return false;
  if (shm.name === null) throw new Errno(E.EEXIST);
  try {
    shm.dir.lookup(shm.name);
  } catch {
    throw new Errno(E.EPERM);
  }
  throw new Errno(E.EEXIST);
}

function mkdir(p: Process, dirfd: number, pathAddr: bigint, mode: number): number {
  const comps = pathArg(p, dirfd, pathAddr);
  shmMake(p, comps);
  if (special(p, comps)) throw new Errno(E.EEXIST);
  ops.mkdir(p, comps, mode);
  return 0;
}

function mknod(p: Process, dirfd: number, pathAddr: bigint, mode: number): number {
  const comps = pathArg(p, dirfd, pathAddr);
  shmMake(p, comps);
  if (special(p, comps)) throw new Errno(E.EEXIST);
  ops.mknod(p, comps, mode);
  return 0;
}

function unlink(p: Process, dirfd: number, pathAddr: bigint, flags: number): number {
  if (flags & ~AT_REMOVEDIR) throw new Errno(E.EINVAL);
  const comps = pathArg(p, dirfd, pathAddr);
  const shm = shmPath(p, comps);
  if (shm) {
    if (shm.name === null) throw new Errno(flags & AT_REMOVEDIR ? E.EBUSY : E.EISDIR);
    shm.dir.unlink(shm.name, (flags & AT_REMOVEDIR) !== 0);
    return 0;
  }
  if (special(p, comps)) throw new Errno(E.EROFS);
  ops.unlink(p.vfs, comps, flags & AT_REMOVEDIR);
  return 0;
}

function rename(p: Process, od: number, op: bigint, nd: number, np: bigint, flags: number): number {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) throw new Errno(E.EINVAL);
  if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) throw new Errno(E.EINVAL);
  // A whiteout is a character device: privileges the guest has not.
  if (flags & RENAME_WHITEOUT) throw new Errno(E.EPERM);
  const fromComps = pathArg(p, od, op);
  const toComps = pathArg(p, nd, np);
  const from = shmPath(p, fromComps), to = shmPath(p, toComps);
  if (from && to && from.name !== null && to.name !== null) {
    from.dir.rename(from.name, to.name, flags);
    return 0;
  }
  if (from || to) throw new Errno(from?.name === null || to?.name === null ? E.EBUSY : E.EXDEV);
  if (special(p, fromComps) || special(p, toComps)) throw new Errno(E.EXDEV);
  ops.rename(p.vfs, fromComps, toComps, flags);
  return 0;
}

function symlink(p: Process, targetAddr: bigint, dirfd: number, pathAddr: bigint): number {
  const target = p.userString(targetAddr);
  if (target === '') throw new Errno(E.ENOENT);
  const comps = pathArg(p, dirfd, pathAddr);
  if (shmPath(p, comps)) throw new Errno(E.EPERM);
  if (special(p, comps)) throw new Errno(E.EEXIST);
  ops.symlink(p.vfs, target, comps);
  return 0;
}

function link(p: Process, od: number, op: bigint, nd: number, np: bigint, flags: number): number {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) throw new Errno(E.EINVAL);
  const fromComps = pathArg(p, od, op);
  const toComps = pathArg(p, nd, np);
  const from = shmFile(p, fromComps), to = shmPath(p, toComps);
  if (from && to) {
    if (to.name === null) throw new Errno(E.EEXIST);
    from.dir.link(from.name, to.name);
    return 0;
  }
  if (from || to) throw new Errno(E.EXDEV);
  const sp = special(p, fromComps);
  if (sp?.file instanceof HostFile && flags & AT_SYMLINK_FOLLOW && !special(p, toComps)) {
    // /proc/self/fd/N: the open file itself (an O_TMPFILE one made visible).
    ops.linkOpenFile(p.vfs, sp.file, toComps);
    return 0;
  }
  if (sp || special(p, toComps)) throw new Errno(E.EXDEV);
  ops.link(p.vfs, fromComps, toComps, (flags & AT_SYMLINK_FOLLOW) !== 0);
  return 0;
}

function chmod(p: Process, dirfd: number, pathAddr: bigint, mode: number, flags: number): number {
  if (flags & ~AT_SYMLINK_NOFOLLOW) throw new Errno(E.EINVAL);
  const comps = pathArg(p, dirfd, pathAddr);
  const shm = shmPath(p, comps);
  if (shm) {
    shm.dir.chmod(shm.name, mode);
    return 0;
  }
  const sp = special(p, comps);
  if (sp) {
    // /proc/self/fd/N (how glibc changes a file it holds as O_PATH): the file behind the fd.
    if (!(sp.file instanceof HostFile)) throw new Errno(E.EPERM);
    ops.chmodFile(p.vfs, sp.file, mode);
    return 0;
  }
  ops.chmodPath(p.vfs, comps, mode, (flags & AT_SYMLINK_NOFOLLOW) !== 0);
  return 0;
}

function chown(p: Process, dirfd: number, pathAddr: bigint, uid: number, gid: number, flags: number): number {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw new Errno(E.EINVAL);
  const path = p.userString(pathAddr);
  if (path === '' && flags & AT_EMPTY_PATH) return fchown(p, dirfd, uid, gid);
  const comps = pathComps(p, dirfd, path);
  if (shmPath(p, comps)) {
    if (uid !== -1 && uid !== GUEST_UID || gid !== -1 && gid !== GUEST_GID) throw new Errno(E.EPERM);
    return 0;
  }
  if (special(p, comps)) throw new Errno(E.EPERM);
  ops.chownPath(p.vfs, comps, uid, gid, !(flags & AT_SYMLINK_NOFOLLOW));
  return 0;
}

function fchown(p: Process, fd: number, uid: number, gid: number): number {
  const f = p.fds.get(fd);
  if (f.hostFd === null || !(f instanceof HostFile)) {
    // A pipe, a device or a standard stream: the guest's own, nothing to change.
    if (uid !== -1 && uid !== GUEST_UID || gid !== -1 && gid !== GUEST_GID) throw new Errno(E.EPERM);
    return 0;
  }
  ops.chownFile(p.vfs, f, uid, gid);
  return 0;
}

const UTIME_NOW = (1 << 30) - 1, UTIME_OMIT = (1 << 30) - 2;

/** utimensat's two struct timespec (atime, mtime), copied once and checked; null for "now". */
function timespecPair(p: Process, addr: bigint): Buffer | null {
  if (addr === 0n) return null;
  const times = Buffer.from(p.userBuffer(addr, 32, PROT_READ));
  for (const off of [8, 24]) {
    const ns = times.readBigInt64LE(off);
    if ((ns < 0n || ns > 999_999_999n) && ns !== BigInt(UTIME_NOW) && ns !== BigInt(UTIME_OMIT)) throw new Errno(E.EINVAL);
  }
  return times;
}

/**
 * The older calls' times as utimensat's: utimes and futimesat take two struct timeval (seconds,
 * microseconds: EINVAL outside 0-999999), utime one struct utimbuf (two times in seconds).
 */
function timevalPair(p: Process, addr: bigint, utimbuf: boolean): Buffer | null {
  if (addr === 0n) return null;
  const src = Buffer.from(p.userBuffer(addr, utimbuf ? 16 : 32, PROT_READ));
  const times = Buffer.alloc(32);
  for (let i = 0; i < 2; i++) {
    const sec = src.readBigInt64LE(utimbuf ? i * 8 : i * 16);
    const usec = utimbuf ? 0n : src.readBigInt64LE(i * 16 + 8);
    if (usec < 0n || usec > 999_999n) throw new Errno(E.EINVAL);
    times.writeBigInt64LE(sec, i * 16);
    times.writeBigInt64LE(usec * 1000n, i * 16 + 8);
  }
  return times;
}

/** utime and utimes name a file by path only: a null one is EFAULT, not the fd form. */
function requiredPath(addr: bigint): bigint {
  if (addr === 0n) throw new Errno(E.EFAULT);
  return addr;
}

/** utimensat and the older calls: times null sets both to now; flags checked by the caller. */
function utimens(p: Process, dirfd: number, pathAddr: bigint, times: Buffer | null, flags: number): number {
  const path = pathAddr === 0n ? null : p.userString(pathAddr);
  const onFd = path === null || (flags & AT_EMPTY_PATH && path === '');
  if (onFd) {
    const f = p.fds.get(dirfd);
    if (!(f instanceof HostFile)) return 0; // a device, pipe or standard stream: nothing to keep
    ops.utimensFile(p.vfs, f, times);
    return 0;
  }
  const comps = pathComps(p, dirfd, path);
  if (special(p, comps)) return 0;
  const shm = shmPath(p, comps);
  if (shm) {
    if (shm.name !== null) shm.dir.lookup(shm.name).touch();
    return 0;
  }
  ops.utimensPath(p.vfs, comps, times, !(flags & AT_SYMLINK_NOFOLLOW));
  return 0;
}

function chdir(p: Process, comps: readonly string[]): number {
  // The working directory is kept fully resolved, as getcwd reports it.
  const resolved = special(p, comps) || shmPath(p, comps) ? [...comps] : p.vfs.resolve(comps, true);
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
  const shm = shmFile(p, comps);
  if (shm) {
    const node = shm.dir.lookup(shm.name);
    if (!(node.mode & 0o200)) throw new Errno(E.EACCES);
    p.checkFileSize(len);
    node.truncate(len);
    return 0;
  }
  if (special(p, comps)) throw new Errno(E.EINVAL);
  p.checkFileSize(len);
  ops.truncatePath(p, comps, len);
  return 0;
}

function statfsAt(p: Process, comps: readonly string[], out: Buffer): void {
  const shm = shmPath(p, comps);
  if (shm) shm.dir.statfs(out);
  else if (special(p, comps)) ops.fakeStatfs(out);
  else ops.statfsPath(p.vfs, comps, out);
}

export const fsSyscalls: SyscallGroup = {
  open: ({ process: p }, a) => doOpen(p, AT_FDCWD, a[0], int(a[1]), uint(a[2])),
  creat: ({ process: p }, a) => doOpen(p, AT_FDCWD, a[0], O.CREAT | O.WRONLY | O.TRUNC, uint(a[1])),
  openat: ({ process: p }, a) => doOpen(p, int(a[0]), a[1], int(a[2]), uint(a[3])),
  openat2: ({ process: p }, a) => openat2(p, a),
  stat: ({ process: p }, a) => copyStat(p, a[1], fstatAt(p, AT_FDCWD, p.userString(a[0]), 0)),
  lstat: ({ process: p }, a) => copyStat(p, a[1], fstatAt(p, AT_FDCWD, p.userString(a[0]), AT_SYMLINK_NOFOLLOW)),
  fstat: ({ process: p }, a) => {
    p.fds.get(int(a[0])).stat(statBuf);
    return copyStat(p, a[1], statBuf);
  },
  newfstatat: ({ process: p }, a) => {
    const dirfd = int(a[0]), path = p.userString(a[1]), flags = int(a[3]);
    const st = fstatAt(p, dirfd, path, flags);
    copyStat(p, a[2], st);
    // The answer, for the stub's stat cache: the path read and the stat written, never read
    // back from guest memory (another thread may have changed either since).
    if (dirfd === AT_FDCWD && (flags === 0 || flags === AT_SYMLINK_NOFOLLOW)) p.dirCache.rememberStat(path, flags === 0, st);
    return 0;
  },
  statx: ({ process: p }, a) => {
    const st = fstatAt(p, int(a[0]), p.userString(a[1]), int(a[2]));
    const out = p.userBuffer(a[4], STATX_SIZE, PROT_WRITE);
    writeStatx(out, mapOwner(st));
    return 0;
  },
  statfs: ({ process: p }, a) => {
    const out = Buffer.alloc(ops.STATFS_SIZE);
    statfsAt(p, pathArg(p, AT_FDCWD, a[0]), out);
    out.copy(p.userBuffer(a[1], ops.STATFS_SIZE, PROT_WRITE));
    return 0;
  },
  fstatfs: ({ process: p }, a) => {
    const f = p.fds.get(int(a[0]));
    const out = Buffer.alloc(ops.STATFS_SIZE);
    if (f instanceof HostFile) statfsAt(p, normalize(f.path), out);
    else if (f instanceof ShmFile && p.kernel.shm) p.kernel.shm.statfs(out);
    else ops.fakeStatfs(out);
    out.copy(p.userBuffer(a[1], ops.STATFS_SIZE, PROT_WRITE));
    return 0;
  },
  access: ({ process: p }, a) => access(p, AT_FDCWD, a[0], int(a[1]), 0),
  faccessat: ({ process: p }, a) => access(p, int(a[0]), a[1], int(a[2]), 0),
  faccessat2: ({ process: p }, a) => access(p, int(a[0]), a[1], int(a[2]), int(a[3])),
  readlink: ({ process: p }, a) => readlink(p, AT_FDCWD, a[0], a[1], a[2]),
  readlinkat: ({ process: p }, a) => readlink(p, int(a[0]), a[1], a[2], a[3]),
  getcwd: ({ process: p }, a) => {
    const cwd = cStringOf('/' + p.cwd.join('/'));
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
  mknod: ({ process: p }, a) => mknod(p, AT_FDCWD, a[0], uint(a[1])),
  mknodat: ({ process: p }, a) => mknod(p, int(a[0]), a[1], uint(a[2])),
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
    ops.chmodFile(p.vfs, f, uint(a[1]));
    return 0;
  },
  chown: ({ process: p }, a) => chown(p, AT_FDCWD, a[0], int(a[1]), int(a[2]), 0),
  lchown: ({ process: p }, a) => chown(p, AT_FDCWD, a[0], int(a[1]), int(a[2]), AT_SYMLINK_NOFOLLOW),
  fchownat: ({ process: p }, a) => chown(p, int(a[0]), a[1], int(a[2]), int(a[3]), int(a[4])),
  fchown: ({ process: p }, a) => fchown(p, int(a[0]), int(a[1]), int(a[2])),
  utimensat: ({ process: p }, a) => {
    if (int(a[3]) & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) throw new Errno(E.EINVAL);
    return utimens(p, int(a[0]), a[1], timespecPair(p, a[2]), int(a[3]));
  },
  futimesat: ({ process: p }, a) => utimens(p, int(a[0]), a[1], timevalPair(p, a[2], false), 0),
  utimes: ({ process: p }, a) => utimens(p, AT_FDCWD, requiredPath(a[0]), timevalPair(p, a[1], false), 0),
  utime: ({ process: p }, a) => utimens(p, AT_FDCWD, requiredPath(a[0]), timevalPair(p, a[1], true), 0),
  truncate: ({ process: p }, a) => truncate(p, a[0], a[1]),
  umask: ({ process: p }, a) => {
    const old = p.umask;
    p.umask = uint(a[0]) & 0o777;
    return old;
  },
  sync: () => 0,
  syncfs: ({ process: p }, a) => { p.fds.get(int(a[0])); return 0; },
};
