// What the path-based system calls do to the guest's file system, below the argument decoding
// (src/linux/syscalls/fs.ts, which also serves the made-up /dev and /proc entries first). Paths
// are absolute and normalized guest paths; the rules:
//
// - Reads follow symlinks inside a grant on the host (Vfs.at), and in the guest's namespace
//   when they leave it.
// - Every call that may change a file runs through Vfs.exact: the host follows no symlink, so
//   the object it acts on lies in the grant located for the path, and that grant decides
//   (EROFS for a --ro grant, also one nested in a --rw grant and reached through a symlink;
//   EXDEV for a link or rename between grants, as between mounts). The check comes before any
//   host call that could change something.
// - A grant's root cannot be renamed or removed, nor a directory holding a grant renamed
//   (EBUSY): a grant is a guest path, and the host directory must stay where it is.
// - No set-user-ID, set-group-ID or (on files) sticky bit reaches the host (access.ts hostMode);
//   a new file or directory gets exactly the mode asked for, minus the umask and those bits:
//   made with O_EXCL and that mode, then fchmod to it when the host's own umask removed more.
// - Search (x) permission on the directories of a path is not checked. chown to the guest's own
//   ids succeeds without changing the host owner.
import * as libc from '../kvm/libc.js';
import {
  AT_FDCWD, AT_SYMLINK_NOFOLLOW, E, Errno, O, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, STAT, STAT_SIZE,
} from '../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../abi/abi.generated.js';
import { hostMode, hostModeFor, owns, permitted, R_OK, S_ISGID, S_ISUID, S_ISVTX, W_OK, X_OK } from './access.js';
import { hostGid, hostUid } from './identity.js';
import { DT_DIR, HostFile, VirtualDir, virtualDirStat, virtualIno, type DirEntry, type MappedFiles, type OpenFile } from './open-file.js';
import { FifoFound, inodeKey, normalize, OPEN_WRITE_FLAGS, SymlinkInPath, type Location, type Vfs } from './vfs.js';

/** What the file system needs of the task that calls it. */
export interface FsTask {
  readonly vfs: Vfs;
  /** The file-mode creation mask (umask(2)). */
  readonly umask: number;
  /** The host files the sandbox maps MAP_SHARED for writing: its HostFiles read and write through them. */
  readonly mappedFiles: MappedFiles | null;
}

type HostLoc = Extract<Location, { kind: 'host' }>;

const S_IFREG = 0o100000, S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFSOCK = 0o140000;
const RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;
const statBuf = Buffer.alloc(STAT_SIZE);

function check(r: number): number {
  if (r < 0) throw new Errno(-r);
  return r;
}

function hostLoc(loc: Location): HostLoc {
  // The virtual directories above grants are read-only, like a read-only root file system.
  if (loc.kind !== 'host') throw new Errno(E.EROFS);
  return loc;
}

function requireWritable(loc: HostLoc): void {
  if (!loc.grant.writable) throw new Errno(E.EROFS);
}

const procFd = (fd: number) => `/proc/self/fd/${fd}`;

/** Run fn on (parent dirfd, last component) of loc, reached with no symlink followed. */
function withParent<T>(vfs: Vfs, loc: HostLoc, fn: (dirfd: number, name: string) => T): T {
  const { dirfd, name } = vfs.parentExact(loc);
  try {
    return fn(dirfd, name);
  } finally {
    libc.closeFd(dirfd);
  }
}

/**
 * Run fn on an O_PATH fd of exactly the object at loc and its stat (in statBuf). With follow, a
 * symlink there throws SymlinkInPath, so that Vfs.exact resolves it; without, the link itself.
 */
function withObject<T>(vfs: Vfs, loc: HostLoc, follow: boolean, fn: (fd: number, st: Buffer) => T): T {
  const fd = vfs.openExact(loc, O.PATH | O.NOFOLLOW, 0);
  try {
    check(libc.fstat(fd, statBuf));
    if (follow && (statBuf.readUInt32LE(STAT.mode) & S_IFMT) === S_IFLNK) throw new SymlinkInPath();
    return fn(fd, statBuf);
  } finally {
    libc.closeFd(fd);
  }
}

/** ENOENT for a name directly in a virtual directory becomes EROFS when the call would create it. */
export function creatingInVirtual(vfs: Vfs, comps: readonly string[], e: unknown): unknown {
  if (!(e instanceof Errno) || e.errno !== E.ENOENT || comps.length === 0) return e;
  let parent: Location | null = null;
  try { parent = vfs.locate(comps.slice(0, -1)); } catch { /* the parent is missing too */ }
  return parent?.kind === 'virtual' ? new Errno(E.EROFS) : e;
}

/** A name about to be created at loc: EEXIST when it exists (also in a read-only grant), else EROFS there. */
function createCheck(vfs: Vfs, loc: HostLoc): void {
  if (loc.rel === '') throw new Errno(E.EEXIST);
  withParent(vfs, loc, (d, name) => {
    const r = libc.fstatat(d, name, statBuf, AT_SYMLINK_NOFOLLOW);
    if (r >= 0) throw new Errno(E.EEXIST);
    if (r !== -E.ENOENT) throw new Errno(-r);
    requireWritable(loc);
    mayChangeEntries(d);
  });
}

const dirStat = Buffer.alloc(STAT_SIZE);

/**
 * Adding or removing a name needs write and search permission on its directory (EACCES), as
 * Linux checks it for the guest's non-root user, also when kvmbox runs as root and the host
 * would let it through (a directory the program made read-only keeps its entries). Run by
 * anyone else, kvmbox is the guest's user and the host's own check is the same one: no fstat.
 */
function mayChangeEntries(dirfd: number): void {
  if (hostUid !== 0) return;
  check(libc.fstat(dirfd, dirStat));
  if (!permitted(dirStat, W_OK | X_OK)) throw new Errno(E.EACCES);
}

/**
 * The sticky bit: in a directory that has it (/tmp), only the owner of a name, or of the
 * directory, may remove or replace it (EPERM), as Linux's check for a process without
 * CAP_FOWNER. Checked where the host would skip it, as mayChangeEntries: run by another user,
 * kvmbox is the guest's user and the host refuses the same names.
 */
function mayRemoveEntry(dirfd: number, name: string): void {
  if (hostUid !== 0) return;
  check(libc.fstat(dirfd, dirStat));
  if (!(dirStat.readUInt32LE(STAT.mode) & S_ISVTX) || owns(dirStat)) return;
  // No such name: the call itself says so.
  if (libc.fstatat(dirfd, name, statBuf, AT_SYMLINK_NOFOLLOW) >= 0 && !owns(statBuf)) throw new Errno(E.EPERM);
}

/** Give a file the guest just made exactly `mode` (the host's umask may have removed bits). */
function settleMode(fd: number, mode: number): void {
  check(libc.fstat(fd, statBuf));
  if ((statBuf.readUInt32LE(STAT.mode) & 0o7777) !== mode) check(libc.fchmodat(AT_FDCWD, procFd(fd), mode, 0));
}

// ---- open ----

const KEEP_FLAGS = ~(O.CREAT | O.EXCL | O.TRUNC | O.CLOEXEC | O.NOCTTY);

/** The access an open asks for, as R_OK/W_OK bits. */
function wanted(flags: number): number {
  const acc = flags & O.ACCMODE;
  const want = acc === O.RDONLY ? R_OK : acc === O.WRONLY ? W_OK : R_OK | W_OK;
  return flags & O.TRUNC ? want | W_OK : want;
}

/** Permission check before a read-only open of an existing file, as the guest's uid would get it. */
function checkRead(vfs: Vfs, loc: HostLoc, flags: number): void {
  if (flags & O.PATH) return;
  const fd = vfs.openHost(loc, O.PATH | (flags & O.NOFOLLOW), 0);
  try { check(libc.fstat(fd, statBuf)); } finally { libc.closeFd(fd); }
  if ((statBuf.readUInt32LE(STAT.mode) & S_IFMT) === S_IFLNK) return; // O_NOFOLLOW: the open fails with ELOOP
  if (!permitted(statBuf, R_OK)) throw new Errno(E.EACCES);
}

/**
 * Open an existing host file or directory (not the special /dev and /proc entries). Opens that
 * may write, truncate or create go through Vfs.exact (openForWrite).
 */
export function openPath(t: FsTask, comps: readonly string[], flags: number, mode: number): OpenFile {
  const vfs = t.vfs;
  if (flags & O.PATH || (flags & OPEN_WRITE_FLAGS) === 0) {
    return vfs.at(comps, !(flags & O.NOFOLLOW), (loc, c) => {
      const path = '/' + c.join('/');
      if (loc.kind === 'virtual') return new VirtualDir(path, flags & KEEP_FLAGS, () => virtualEntries(vfs, c, loc.children));
      // A grant shown as a symlink is one to O_NOFOLLOW (O_PATH still opens what it leads to).
      if (flags & O.NOFOLLOW && !(flags & O.PATH) && loc.rel === '' && vfs.linkOf(loc.grant)) throw new Errno(E.ELOOP);
      checkRead(vfs, loc, flags);
      const fd = vfs.openHost(loc, flags, 0, true);
      return new HostFile(fd, vfs.guestPathOf(loc.grant, fd) ?? path, flags & KEEP_FLAGS, t.mappedFiles);
    });
  }
  // O_CREAT | O_EXCL never follows a symlink in the last component (EEXIST), as in Linux.
  const follow = !(flags & O.NOFOLLOW) && !(flags & O.CREAT && flags & O.EXCL);
  try {
    return vfs.exact(comps, follow, (loc, c) => {
      const path = '/' + c.join('/');
      if (loc.kind === 'virtual') {
        if (flags & O.CREAT && flags & O.EXCL) throw new Errno(E.EEXIST);
        throw new Errno(E.EISDIR);
      }
      const fd = openForWrite(t, loc, flags, mode, follow);
      const f = new HostFile(fd, path, flags & KEEP_FLAGS, t.mappedFiles);
      // O_TRUNC cut the file: a copy that mappings of it share is cut too.
      if (flags & O.TRUNC) f.reshape(() => 0);
      return f;
    });
  } catch (e) {
    throw flags & O.CREAT ? creatingInVirtual(vfs, comps, e) : e;
  }
}

/** A host fd for an open that may write, truncate or create, at exactly loc (see openPath). */
function openForWrite(t: FsTask, loc: HostLoc, flags: number, mode: number, follow: boolean): number {
  const vfs = t.vfs;
  const tmpfile = (flags & O.TMPFILE) === O.TMPFILE;
  const fileMode = hostMode(mode & ~t.umask, false);
  for (let tries = 0; ; tries++) {
    let exists = true;
    try {
      withObject(vfs, loc, follow, (_fd, st) => {
        const type = st.readUInt32LE(STAT.mode) & S_IFMT;
        if (flags & O.CREAT && flags & O.EXCL) throw new Errno(E.EEXIST);
        if (type === S_IFLNK) throw new Errno(E.ELOOP); // O_NOFOLLOW on a symlink (O_CREAT | O_EXCL: EEXIST above)
        if (tmpfile && type !== S_IFDIR) throw new Errno(E.ENOTDIR);
        if (tmpfile && loc.grant.writable && !permitted(st, W_OK | X_OK)) throw new Errno(E.EACCES);
        if (!tmpfile && type === S_IFDIR && (wanted(flags) & W_OK || flags & O.CREAT)) throw new Errno(E.EISDIR);
        // A file that exists is opened for reading even with O_CREAT in a read-only grant. Writing
        // to a named pipe changes no file: a read-only grant allows it, as Linux does.
        if (tmpfile || (wanted(flags) & W_OK && type !== S_IFIFO)) requireWritable(loc);
        if (!tmpfile && !permitted(st, wanted(flags))) throw new Errno(E.EACCES);
        // A named pipe is served inside the sandbox: the host's open would fail or wait for a reader.
        if (type === S_IFIFO) throw new FifoFound(inodeKey(st));
      });
    } catch (e) {
      if (!(e instanceof Errno) || e.errno !== E.ENOENT) throw e;
      exists = false;
    }
    if (tmpfile) {
      const fd = vfs.openExact(loc, flags, fileMode);
      settleMode(fd, fileMode);
      return fd;
    }
    if (exists) return vfs.openExact(loc, flags & ~(O.CREAT | O.EXCL), 0);
    if (!(flags & O.CREAT)) throw new Errno(E.ENOENT);
    requireWritable(loc);
    if (hostUid === 0) withParent(vfs, loc, (d) => mayChangeEntries(d));
    try {
      const fd = vfs.openExact(loc, flags | O.EXCL, fileMode);
      settleMode(fd, fileMode);
      return fd;
    } catch (e) {
      // Made by someone else in between: open it as it is now (or EEXIST for O_EXCL).
      if (!(e instanceof Errno) || e.errno !== E.EEXIST || flags & O.EXCL || tries > 0) throw e;
    }
  }
}

// ---- looking at files ----

/**
 * The entries of the virtual directory at comps: the virtual directories below it, and the
 * grants in it as what they are (a grant shown as the host's symlink is one: Vfs.linkOf), with
 * their host inode numbers. A grant that cannot be opened any more is left out.
 */
function virtualEntries(vfs: Vfs, comps: readonly string[], children: readonly string[]): DirEntry[] {
  const path = '/' + comps.join('/');
  const parent = comps.length <= 1 ? '/' : '/' + comps.slice(0, -1).join('/');
  const out: DirEntry[] = [{ name: '.', type: DT_DIR, ino: virtualIno(path) }, { name: '..', type: DT_DIR, ino: virtualIno(parent) }];
  const st = Buffer.alloc(STAT_SIZE);
  for (const name of children) {
    const g = vfs.grantAt([...comps, name]);
    if (!g) {
      out.push({ name, type: DT_DIR, ino: virtualIno(path === '/' ? `/${name}` : `${path}/${name}`) });
      continue;
    }
    try {
      const link = vfs.linkOf(g);
      if (link) link.stat.copy(st);
      else check(libc.fstat(g.fd, st));
    } catch (e) {
      if (e instanceof Errno) continue;
      throw e;
    }
    out.push({ name, type: (st.readUInt32LE(STAT.mode) & S_IFMT) >> 12, ino: Number(st.readBigUInt64LE(STAT.ino)) });
  }
  return out;
}

/** stat (follow) or lstat of a host path into statBuf. */
export function statPath(vfs: Vfs, comps: readonly string[], follow: boolean, out: Buffer): Buffer {
  return vfs.at(comps, follow, (loc, c) => {
    const link = loc.kind === 'host' && loc.rel === '' && !follow ? vfs.linkOf(loc.grant) : null;
    if (loc.kind === 'virtual') {
      virtualDirStat(out, '/' + c.join('/'));
    } else if (link) {
      link.stat.copy(out);
    } else if (!loc.grant.isDir || loc.rel === '') {
      check(libc.fstat(loc.grant.fd, out));
    } else if (follow) {
      const fd = vfs.openHost(loc, O.PATH, 0);
      try { check(libc.fstat(fd, out)); } finally { libc.closeFd(fd); }
    } else {
      const { dirfd, name } = vfs.openParent(loc);
      try { check(libc.fstatat(dirfd, name, out, AT_SYMLINK_NOFOLLOW)); } finally { libc.closeFd(dirfd); }
    }
    return out;
  });
}

/** access(2)'s W_OK on a file, directory or link: EROFS outside --rw grants, decided like a write. */
export function requireWritablePath(vfs: Vfs, comps: readonly string[], follow: boolean): void {
  vfs.exact(comps, follow, (loc) => {
    withObject(vfs, hostLoc(loc), follow, () => requireWritable(hostLoc(loc)));
  });
}

/** The text of the symlink at comps. */
export function readlinkPath(vfs: Vfs, comps: readonly string[]): Buffer {
  return vfs.at(comps, false, (loc) => {
    if (loc.kind === 'host' && loc.rel === '') {
      const link = vfs.linkOf(loc.grant);
      if (link) return Buffer.from(link.text);
    }
    if (loc.kind !== 'host' || !loc.grant.isDir || loc.rel === '') throw new Errno(E.EINVAL);
    const tmp = Buffer.alloc(4096);
    const { dirfd, name } = vfs.openParent(loc);
    try {
      return tmp.subarray(0, check(libc.readlinkat(dirfd, name, tmp)));
    } finally {
      libc.closeFd(dirfd);
    }
  });
}

// ---- making and removing names ----

export function mkdir(t: FsTask, comps: readonly string[], mode: number): void {
  const vfs = t.vfs;
  const dirMode = hostMode(mode & ~t.umask, true);
  try {
    vfs.exact(comps, false, (loc) => {
      // An existing directory wins over a read-only file system, as in Linux.
      if (loc.kind === 'virtual') throw new Errno(E.EEXIST);
      createCheck(vfs, loc);
      withParent(vfs, loc, (d, name) => {
        check(libc.mkdirat(d, name, dirMode));
        const fd = check(libc.openat(d, name, O.PATH | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC, 0));
        try { settleMode(fd, dirMode); } finally { libc.closeFd(fd); }
      });
    });
  } catch (e) {
    throw creatingInVirtual(vfs, comps, e);
  }
}

/** mknod(2): regular files, FIFOs and sockets; devices need privileges the guest has not. */
export function mknod(t: FsTask, comps: readonly string[], mode: number): void {
  const vfs = t.vfs;
  const type = mode & S_IFMT;
  if (type === S_IFDIR) throw new Errno(E.EPERM);
  if (type !== 0 && type !== S_IFREG && type !== S_IFIFO && type !== S_IFSOCK && type !== S_IFCHR && type !== S_IFBLK) {
    throw new Errno(E.EINVAL);
  }
  const fileMode = hostMode(mode & ~t.umask, false);
  try {
    vfs.exact(comps, false, (loc) => {
      if (loc.kind === 'virtual') throw new Errno(E.EEXIST);
      createCheck(vfs, loc);
      if (type === S_IFCHR || type === S_IFBLK) throw new Errno(E.EPERM);
      withParent(vfs, loc, (d, name) => {
        let fd: number;
        if (type === 0 || type === S_IFREG) {
          fd = check(libc.openat(d, name, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, fileMode));
        } else {
          check(libc.mknodat(d, name, type | fileMode, 0));
          fd = check(libc.openat(d, name, O.PATH | O.NOFOLLOW | O.CLOEXEC, 0));
        }
        try { settleMode(fd, fileMode); } finally { libc.closeFd(fd); }
      });
    });
  } catch (e) {
    throw creatingInVirtual(vfs, comps, e);
  }
}

export function unlink(vfs: Vfs, comps: readonly string[], flags: number): void {
  vfs.exact(comps, false, (l) => {
    const loc = hostLoc(l);
    if (loc.rel === '') throw new Errno(E.EBUSY);
    withParent(vfs, loc, (d, name) => {
      requireWritable(loc);
      mayChangeEntries(d);
      mayRemoveEntry(d, name);
      check(libc.unlinkat(d, name, flags));
    });
  });
}

export function rename(vfs: Vfs, fromComps: readonly string[], toComps: readonly string[], flags: number): void {
  vfs.exact(fromComps, false, (fl, fc) => {
    const from = hostLoc(fl);
    withParent(vfs, from, (d1, n1) => {
      try {
        vfs.exact(toComps, false, (tl, tc) => {
          const to = hostLoc(tl);
          // A grant's root, or a directory a grant lies in, stays where it is (Linux: EBUSY on a
          // mount point; it would move a mount with its parent, which a grant cannot follow).
          if (from.rel === '' || to.rel === '' || vfs.holdsGrant(fc)) throw new Errno(E.EBUSY);
          withParent(vfs, to, (d2, n2) => {
            if (flags & RENAME_EXCHANGE && vfs.holdsGrant(tc)) throw new Errno(E.EBUSY);
            if (from.grant !== to.grant) throw new Errno(E.EXDEV);
            requireWritable(from);
            mayChangeEntries(d1);
            mayChangeEntries(d2);
            // The name moved, and the one it replaces or swaps with (NOREPLACE: EEXIST first).
            mayRemoveEntry(d1, n1);
            if (!(flags & RENAME_NOREPLACE)) mayRemoveEntry(d2, n2);
            check(libc.renameat2(d1, n1, d2, n2, flags));
          });
        });
      } catch (e) {
        throw creatingInVirtual(vfs, toComps, e);
      }
    });
  });
}

/** symlink(2): the link's text is stored as given; following it later is confined like any lookup. */
export function symlink(vfs: Vfs, target: string, comps: readonly string[]): void {
  try {
    vfs.exact(comps, false, (l) => {
      const loc = hostLoc(l);
      createCheck(vfs, loc);
      withParent(vfs, loc, (d, name) => check(libc.symlinkat(target, d, name)));
    });
  } catch (e) {
    throw creatingInVirtual(vfs, comps, e);
  }
}

/** link(2): both ends in the same grant (EXDEV otherwise, as between mounts), and that one writable. */
export function link(vfs: Vfs, fromComps: readonly string[], toComps: readonly string[], follow: boolean): void {
  vfs.exact(fromComps, follow, (fl) => {
    const from = hostLoc(fl);
    // A grant's root: a directory (EPERM), or a granted file, which is its own mount (EXDEV).
    if (from.rel === '') throw new Errno(from.grant.isDir ? E.EPERM : E.EXDEV);
    // The host's linkat never follows the source: withObject makes Vfs.exact resolve a symlink.
    if (follow) withObject(vfs, from, true, () => {});
    withParent(vfs, from, (d1, n1) => {
      try {
        vfs.exact(toComps, false, (tl) => {
          const to = hostLoc(tl);
          createCheck(vfs, to);
          if (from.grant !== to.grant) throw new Errno(E.EXDEV);
          withParent(vfs, to, (d2, n2) => check(libc.linkat(d1, n1, d2, n2, 0)));
        });
      } catch (e) {
        throw creatingInVirtual(vfs, toComps, e);
      }
    });
  });
}

/**
 * linkat("/proc/self/fd/N", ..., AT_SYMLINK_FOLLOW): a new name in a --rw grant for a file the
 * program holds open, such as an O_TMPFILE one (how programs make a file appear whole), in the
 * grant the file lies in (EXDEV otherwise). The host links its own fd's file the same way, so
 * its rules hold: ENOENT for an O_TMPFILE opened with O_EXCL, EPERM for a directory.
 */
export function linkOpenFile(vfs: Vfs, f: HostFile, toComps: readonly string[]): void {
  let from: Location;
  try {
    from = vfs.locate(normalize(f.path));
  } catch {
    throw new Errno(E.EXDEV);
  }
  if (from.kind !== 'host') throw new Errno(E.EXDEV);
  try {
    vfs.exact(toComps, false, (tl) => {
      const to = hostLoc(tl);
      createCheck(vfs, to);
      if (to.grant !== from.grant) throw new Errno(E.EXDEV);
      withParent(vfs, to, (d, n) => check(libc.linkat(AT_FDCWD, procFd(f.hostFd), d, n, AT_SYMLINK_FOLLOW)));
    });
  } catch (e) {
    throw creatingInVirtual(vfs, toComps, e);
  }
}
const AT_SYMLINK_FOLLOW = 0x400;

// ---- changing a file's metadata or size ----

/** The open file lies in a --rw grant (fchmod, fchown, futimens, fallocate). */
export function requireFdWritable(vfs: Vfs, f: OpenFile): void {
  let loc: Location;
  try { loc = vfs.locate(normalize(f.path)); } catch { throw new Errno(E.EROFS); }
  if (loc.kind !== 'host' || !loc.grant.writable) throw new Errno(E.EROFS);
}

export function chmodPath(vfs: Vfs, comps: readonly string[], mode: number, nofollow: boolean): void {
  vfs.exact(comps, !nofollow, (l) => {
    const loc = hostLoc(l);
    withObject(vfs, loc, !nofollow, (fd, st) => {
      requireWritable(loc);
      if ((st.readUInt32LE(STAT.mode) & S_IFMT) === S_IFLNK) throw new Errno(E.EOPNOTSUPP);
      if (!owns(st)) throw new Errno(E.EPERM);
      // Change the inode through the O_PATH fd's /proc/self/fd link: no path from / is used.
      check(libc.fchmodat(AT_FDCWD, procFd(fd), hostModeFor(st, mode), 0));
    });
  });
}

export function chmodFile(vfs: Vfs, f: HostFile, mode: number): void {
  requireFdWritable(vfs, f);
  check(libc.fstat(f.hostFd, statBuf));
  if (!owns(statBuf)) throw new Errno(E.EPERM);
  check(libc.fchmodat(AT_FDCWD, procFd(f.hostFd), hostModeFor(statBuf, mode), 0));
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
  return (uid !== -1 || gid !== -1) && type !== S_IFDIR && type !== S_IFLNK &&
    (mode & S_ISUID || (mode & S_ISGID && mode & 0o010)) !== 0;
}

function clearSetId(fd: number, mode: number): void {
  check(libc.fchmodat(AT_FDCWD, procFd(fd), mode & 0o7777 & ~(S_ISUID | (mode & 0o010 ? S_ISGID : 0)), 0));
}

export function chownPath(vfs: Vfs, comps: readonly string[], uid: number, gid: number, follow: boolean): void {
  vfs.exact(comps, follow, (l) => {
    const loc = hostLoc(l);
    withObject(vfs, loc, follow, (fd, st) => {
      requireWritable(loc);
      if (chownCheck(st, uid, gid)) clearSetId(fd, st.readUInt32LE(STAT.mode));
    });
  });
}

export function chownFile(vfs: Vfs, f: HostFile, uid: number, gid: number): void {
  requireFdWritable(vfs, f);
  check(libc.fstat(f.hostFd, statBuf));
  if (chownCheck(statBuf, uid, gid)) clearSetId(f.hostFd, statBuf.readUInt32LE(STAT.mode));
}

export function utimensPath(vfs: Vfs, comps: readonly string[], times: Buffer | null, follow: boolean): void {
  vfs.exact(comps, follow, (l) => {
    const loc = hostLoc(l);
    withObject(vfs, loc, follow, (fd, st) => {
      requireWritable(loc);
      if ((st.readUInt32LE(STAT.mode) & S_IFMT) === S_IFLNK) {
        withParent(vfs, loc, (d, name) => check(libc.utimensat(d, name, times, AT_SYMLINK_NOFOLLOW)));
      } else {
        check(libc.utimensat(AT_FDCWD, procFd(fd), times, 0));
      }
    });
  });
}

export function utimensFile(vfs: Vfs, f: HostFile, times: Buffer | null): void {
  requireFdWritable(vfs, f);
  check(libc.utimensat(AT_FDCWD, procFd(f.hostFd), times, 0));
}

/** truncate(2): a regular file in a --rw grant that the guest may write. */
export function truncatePath(t: FsTask, comps: readonly string[], len: bigint): void {
  const vfs = t.vfs;
  vfs.exact(comps, true, (l) => {
    const loc = hostLoc(l);
    withObject(vfs, loc, true, (_fd, st) => {
      const type = st.readUInt32LE(STAT.mode) & S_IFMT;
      if (type === S_IFDIR) throw new Errno(E.EISDIR);
      if (type !== S_IFREG) throw new Errno(E.EINVAL);
      requireWritable(loc);
      if (!permitted(st, W_OK)) throw new Errno(E.EACCES);
    });
    const f = new HostFile(vfs.openExact(loc, O.WRONLY | O.NONBLOCK, 0), '', O.WRONLY, t.mappedFiles);
    try { f.reshape(() => check(libc.ftruncate(f.hostFd, len))); } finally { f.close(); }
  });
}

// ---- statfs ----

// struct statfs (x86-64): 120 bytes; f_flags at 80.
export const STATFS_SIZE = 120;
const ST_RDONLY = 1;
const RAMFS_MAGIC = 0x858458f6;

/** The statfs of the virtual directories and made-up files: a small read-only file system. */
export function fakeStatfs(out: Buffer): void {
  out.fill(0, 0, STATFS_SIZE);
  out.writeBigInt64LE(BigInt(RAMFS_MAGIC), 0);
  out.writeBigInt64LE(4096n, 8);
  out.writeBigInt64LE(255n, 64);
  out.writeBigInt64LE(4096n, 72);
  out.writeBigInt64LE(BigInt(ST_RDONLY), 80);
}

export function statfsPath(vfs: Vfs, comps: readonly string[], out: Buffer): void {
  vfs.at(comps, true, (loc) => {
    if (loc.kind === 'virtual') { fakeStatfs(out); return; }
    const fd = loc.grant.isDir && loc.rel !== '' ? vfs.openHost(loc, O.PATH, 0) : -1;
    try { check(libc.fstatfs(fd >= 0 ? fd : loc.grant.fd, out)); } finally { if (fd >= 0) libc.closeFd(fd); }
    if (!loc.grant.writable) out.writeBigInt64LE(out.readBigInt64LE(80) | BigInt(ST_RDONLY), 80);
  });
}
