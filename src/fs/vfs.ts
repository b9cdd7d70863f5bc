// The guest's file-system namespace: deny by default. Only the host paths granted with --ro/--rw
// exist, at the same path in the guest; the directories leading to them exist as empty,
// read-only "virtual" directories. Every host access is fd-relative to a grant's directory fd,
// opened at start-up, through openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): neither `..` nor a
// symlink (planted on the host or created by the guest) can lead outside a grant, and renaming
// directories during a lookup cannot either, since no string path from / is ever used.
// openat2 refuses (EXDEV) every absolute symlink and every relative one that climbs above the
// grant; such paths are then resolved again in the guest's namespace, one component at a time
// (Vfs.resolve), so that a link to /granted/other/file works and a link to /etc/passwd does not.
// With --root DIR, DIR is a read-only grant at the guest's / (guestPath '/'): the other grants are
// laid over it, and an absolute symlink inside DIR resolves against DIR, as in a chroot.
import { nameOf } from '../abi/file-names.js';
import { resolve as resolveHostPath } from 'node:path';
import * as libc from '../kvm/libc.js';
import { AT_SYMLINK_NOFOLLOW, E, Errno, O, S_IFDIR, S_IFREG, STAT, STAT_SIZE } from '../abi/linux.js';

export interface GrantSpec {
  /** Host path. */
  path: string;
  writable: boolean;
  /**
   * Where the grant appears in the guest (absolute); default: at its host path. The root
   * directory given with --root is the grant with guestPath '/': every path no other grant
   * covers is looked up in it.
   */
  guestPath?: string;
  /**
   * Open the host path when the guest first reaches it, not when the sandbox is made: for
   * --system's grants, which exist when listed and of which a run touches a few (37 opens took
   * ~0.6 ms per run). A path gone meanwhile is then ENOENT to the guest, not a GrantError.
   */
  lazy?: boolean;
}

export interface Grant {
  readonly guestPath: string;
  readonly components: readonly string[];
  readonly hostPath: string;
  readonly writable: boolean;
  readonly isDir: boolean;
  /** O_PATH fd of the granted file or directory. */
  readonly fd: number;
  /** The host's canonical path of the grant (symlinks resolved), to name open files. */
  readonly realPath: string;
}

/** A grant whose path shows as the host's symlink (Vfs.linkOf): its text and its lstat. */
export interface GrantLink { readonly text: Buffer; readonly stat: Buffer }

/** The host's name for one of its fds (the link /proc/self/fd/N), or null when it has none. */
function hostPathOfFd(fd: number): string | null {
  const buf = Buffer.alloc(PATH_MAX);
  const n = libc.readlinkat(-100, `/proc/self/fd/${fd}`, buf);
  return n > 0 ? nameOf(buf.subarray(0, n)) : null;
}

/** Whether two normalized guest paths (their components) are the same. */
function samePath(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

/** A grant's host side: its path, opened (symlinks followed) on first use, and what that fd is. */
class HostGrant implements Grant {
  private opened: { fd: number; isDir: boolean } | null = null;
  private real: string | null = null;
  /** What Vfs.linkOf found, once asked. */
  link: GrantLink | null | undefined = undefined;

  constructor(readonly guestPath: string, readonly components: readonly string[], readonly hostPath: string, readonly writable: boolean) {}

  get fd(): number { return this.open().fd; }
  get isDir(): boolean { return this.open().isDir; }

  get realPath(): string {
    if (this.real === null) {
      const real = hostPathOfFd(this.fd) ?? '';
      this.real = real.startsWith('/') && !real.endsWith(' (deleted)') ? real : this.hostPath;
    }
    return this.real;
  }

  /** Open the host path if not yet; Errno when it cannot be. */
  open(): { fd: number; isDir: boolean } {
    if (this.opened) return this.opened;
    const fd = libc.openat(-100, this.hostPath, O_PATH | O.CLOEXEC, 0);
    if (fd < 0) throw new Errno(-fd);
    const st = Buffer.alloc(STAT_SIZE);
    const r = libc.fstat(fd, st);
    if (r < 0) {
      libc.closeFd(fd);
      throw new Errno(-r);
    }
    this.opened = { fd, isDir: (st.readUInt32LE(STAT.mode) & S_IFMT) === S_IFDIR };
    return this.opened;
  }

  close(): void {
    if (this.opened) libc.closeFd(this.opened.fd);
    this.opened = null;
  }
}

/**
 * openat2 refused a path because a symlink in it leads outside the grant's tree. The guest gets
 * ENOENT unless the caller resolves the path again with Vfs.resolve (Vfs.at does).
 */
export class SymlinkEscape extends Errno {
  constructor() {
    super(E.ENOENT);
  }
}

/**
 * A host walk that may follow no symlink (Vfs.openExact, Vfs.parentExact) met one. Vfs.exact
 * resolves the path in the guest's namespace and tries again; the guest gets ELOOP only when a
 * symlink is still in the way after that (O_NOFOLLOW on a symlink).
 */
export class SymlinkInPath extends Errno {
  constructor() {
    super(E.ELOOP);
  }
}

/** Linux gives up after this many symlinks in one lookup (ELOOP). */
const MAXSYMLINKS = 40;
const S_IFMT = 0o170000, S_IFLNK = 0o120000, S_IFIFO = 0o010000;

/** A grant named a host path that does not exist or cannot be opened. */
export class GrantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrantError';
  }
}

export type Location =
  | { kind: 'host'; grant: Grant; rel: string }
  | { kind: 'virtual'; path: string; children: readonly string[] };

const RESOLVE = libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS;
/** No symlink at all, not even in the last component (O_PATH | O_NOFOLLOW opens the link itself). */
const RESOLVE_EXACT = RESOLVE | libc.RESOLVE_NO_SYMLINKS;
/** Open flags that may change the file or create one: such opens go through Vfs.exact. */
export const OPEN_WRITE_FLAGS = O.WRONLY | O.RDWR | O.CREAT | O.TRUNC;
const O_PATH = O.PATH;
export const PATH_MAX = 4096;

/** Split an absolute guest path into components, resolving `.` and `..` lexically. */
export function normalize(path: string): string[] {
  const out: string[] = [];
  for (const c of path.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out;
}

/**
 * An open found a FIFO inside a grant: the caller serves it as a pipe inside the sandbox
 * (src/fs/fifo.ts), named by key, the FIFO's device and inode. The host FIFO is never read or
 * written.
 */
export class FifoFound extends Error {
  constructor(readonly key: string) {
    super('a named pipe');
    this.name = 'FifoFound';
  }
}

/** A host file's identity from its struct stat, device and inode (FIFOs, file locks, mirrors). */
export function inodeKey(st: Buffer): string {
  return `${st.readBigUInt64LE(STAT.dev)}:${st.readBigUInt64LE(STAT.ino)}`;
}

/**
 * A socket or device inside a grant is not served: reading or writing one could block the host
 * thread on something outside the sandbox (a terminal, hardware, a host process). fd was opened
 * O_NONBLOCK (so the open itself did not wait); anything but a regular file or a directory is
 * closed and the guest gets ENXIO, as Linux gives for a socket; a FIFO is FifoFound where the
 * caller serves named pipes (fifo), else ENXIO too. stat, lstat
 * and readdir of such entries still work. See SECURITY.md.
 */
function onlyFilesAndDirs(fd: number, fifo: boolean): number {
  const st = Buffer.alloc(STAT_SIZE);
  const r = libc.fstat(fd, st);
  const type = st.readUInt32LE(STAT.mode) & S_IFMT;
  if (r >= 0 && (type === S_IFREG || type === S_IFDIR)) return fd;
  libc.closeFd(fd);
  if (r >= 0 && type === S_IFIFO && fifo) throw new FifoFound(inodeKey(st));
  throw new Errno(r < 0 ? -r : E.ENXIO);
}

export class Vfs {
  readonly grants: HostGrant[] = [];
  private readonly virtualDirs = new Map<string, Set<string>>();

  constructor(specs: readonly GrantSpec[]) {
    try {
      for (const s of specs) this.addGrant(s);
    } catch (e) {
      this.close();
      throw e;
    }
    // Longest guest path first, so the innermost grant wins.
    this.grants.sort((a, b) => b.components.length - a.components.length);
    this.virtualDirs.set('/', new Set());
    for (const g of this.grants) {
      for (let i = 0; i < g.components.length; i++) {
        const parent = '/' + g.components.slice(0, i).join('/');
        const key = parent === '/' ? '/' : parent;
        if (!this.virtualDirs.has(key)) this.virtualDirs.set(key, new Set());
        this.virtualDirs.get(key)!.add(g.components[i]!);
      }
    }
  }

  private addGrant(s: GrantSpec): void {
    const hostPath = resolveHostPath(s.path);
    const components = normalize(s.guestPath ?? hostPath);
    const g = new HostGrant('/' + components.join('/'), components, hostPath, s.writable);
    if (!s.lazy) {
      try {
        g.open();
      } catch (e) {
        if (!(e instanceof Errno)) throw e;
        throw new GrantError(`cannot grant ${s.path}: ${libc.errnoName(e.errno)} (the path must exist on the host)`);
      }
    }
    this.grants.push(g);
  }

  /** Find what an absolute, normalized guest path names. Throws ENOENT when nothing does. */
  locate(components: readonly string[]): Location {
    for (const g of this.grants) {
      if (g.components.length > components.length) continue;
      let match = true;
      for (let i = 0; i < g.components.length; i++) if (g.components[i] !== components[i]) { match = false; break; }
      if (!match) continue;
      const rest = components.slice(g.components.length);
      if (!g.isDir && rest.length > 0) throw new Errno(E.ENOTDIR);
      const rel = rest.join('/');
      // A grant laid over the root (--root) whose directories the root lacks: those
      // directories are the virtual ones leading to the grant, as without a root.
      if (g.components.length === 0 && rel !== '' && this.virtualDirs.has('/' + rel) && !this.existsIn(g, rel)) break;
      return { kind: 'host', grant: g, rel };
    }
    const path = '/' + components.join('/');
    const children = this.virtualDirs.get(path);
    if (children) return { kind: 'virtual', path, children: [...children].sort() };
    throw new Errno(E.ENOENT);
  }

  /** The grant whose guest path is exactly comps, if any. */
  grantAt(comps: readonly string[]): Grant | null {
    return this.grants.find((g) => samePath(g.components, comps)) ?? null;
  }

  /**
   * What grant g's own path shows when not followed (lstat, readlink, the listing of the
   * directory above it): the host's symlink, when g's host path is one and its text leads, in
   * the guest's namespace, to the very file g grants (/etc/localtime -> /usr/share/zoneinfo/...
   * with /usr granted, which ICU and Java read the zone's name from; /bin -> usr/bin on a
   * merged-/usr system). Otherwise null, and g shows as the file it leads to: a link to
   * something not granted reveals nothing of the host. Worked out once per grant.
   */
  linkOf(grant: Grant): GrantLink | null {
    const g = grant as HostGrant;
    if (g.link !== undefined) return g.link;
    g.link = null;
    const st = Buffer.alloc(STAT_SIZE);
    if (libc.fstatat(-100, g.hostPath, st, AT_SYMLINK_NOFOLLOW) < 0 || (st.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFLNK) return null;
    const buf = Buffer.alloc(PATH_MAX);
    const n = libc.readlinkat(-100, g.hostPath, buf);
    if (n <= 0) return null;
    const text = Buffer.from(buf.subarray(0, n));
    const target = nameOf(text);
    try {
      const comps = this.resolve([...(target.startsWith('/') ? [] : g.components.slice(0, -1)), ...target.split('/')], true);
      if (samePath(comps, g.components)) return null;
      const loc = this.locate(comps);
      if (loc.kind !== 'host') return null;
      const there = Buffer.alloc(STAT_SIZE), here = Buffer.alloc(STAT_SIZE);
      const fd = this.openHost(loc, O_PATH, 0);
      try { if (libc.fstat(fd, there) < 0) return null; } finally { libc.closeFd(fd); }
      if (libc.fstat(g.fd, here) < 0 || inodeKey(there) !== inodeKey(here)) return null;
    } catch (e) {
      if (e instanceof Errno) return null;
      throw e;
    }
    g.link = { text, stat: st };
    return g.link;
  }

  /** Whether rel names anything inside grant g (a symlink leading out of it counts as something). */
  private existsIn(g: Grant, rel: string): boolean {
    const fd = libc.openat2(g.fd, rel, O_PATH | O.NOFOLLOW | O.CLOEXEC, 0, RESOLVE);
    if (fd >= 0) libc.closeFd(fd);
    return fd !== -E.ENOENT && fd !== -E.ENOTDIR;
  }

  /**
   * Open a host file for a guest path inside a grant, for reading only (symlinks inside the
   * grant are followed by the host). flags are Linux open flags (the host's are the same). An
   * open that may write goes through exact() and openExact(), so that the grant the file really
   * lies in decides; here it fails with EROFS before the host is touched. fifo: a FIFO throws
   * FifoFound (the caller serves it) rather than ENXIO.
   */
  openHost(loc: { grant: Grant; rel: string }, flags: number, mode: number, fifo = false): number {
    if ((flags & OPEN_WRITE_FLAGS) !== 0) throw new Errno(E.EROFS);
    // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
    // Every real open is O_NONBLOCK on the host, so that opening a FIFO never waits for its
    // other end; onlyFilesAndDirs then refuses what is neither a regular file nor a directory.
    const hostFlags = flags & O.PATH ? (flags & (O.PATH | O.DIRECTORY | O.NOFOLLOW)) | O.CLOEXEC
      : flags | O.CLOEXEC | O.NOCTTY | O.NONBLOCK;
    if (!loc.grant.isDir) {
      // A single granted file: reopen the pinned inode through its O_PATH fd. The grant is that
      // file (a host symlink granted is its target, as stat shows): O_NOFOLLOW would only stop at
      // the /proc link itself (ELOOP).
      if (flags & (O.DIRECTORY)) throw new Errno(E.ENOTDIR);
      const fd = libc.openat(-100, `/proc/self/fd/${loc.grant.fd}`, hostFlags & ~(O.CREAT | O.EXCL | O.NOFOLLOW), mode);
      if (fd < 0) throw new Errno(-fd);
      return flags & O.PATH ? fd : onlyFilesAndDirs(fd, fifo);
    }
    const fd = libc.openat2(loc.grant.fd, loc.rel === '' ? '.' : loc.rel, hostFlags, mode, RESOLVE);
    if (fd < 0) throw fd === -E.EXDEV ? new SymlinkEscape() : new Errno(-fd);
    return flags & O.PATH ? fd : onlyFilesAndDirs(fd, fifo);
  }

  /**
   * Open exactly the object at loc: no symlink is followed, not even the last component, so the
   * object lies in loc.grant. A symlink on the way throws SymlinkInPath (see exact()). mode is
   * used as given (the caller strips what may not reach the host).
   */
  openExact(loc: { grant: Grant; rel: string }, flags: number, mode: number): number {
    // As in openHost: O_NONBLOCK so that a FIFO never makes the open wait for its other end,
    // then onlyFilesAndDirs refuses anything but a regular file or a directory (ENXIO).
    const hostFlags = flags & O.PATH ? (flags & (O.PATH | O.DIRECTORY | O.NOFOLLOW)) | O.CLOEXEC
      : flags | O.CLOEXEC | O.NOCTTY | O.NONBLOCK;
    let fd: number;
    if (!loc.grant.isDir) {
      if (flags & O.DIRECTORY) throw new Errno(E.ENOTDIR);
      fd = libc.openat(-100, `/proc/self/fd/${loc.grant.fd}`, hostFlags & ~(O.CREAT | O.EXCL | O.NOFOLLOW), 0);
    } else {
      fd = libc.openat2(loc.grant.fd, loc.rel === '' ? '.' : loc.rel, hostFlags, (flags & O.CREAT) ? mode : 0, RESOLVE_EXACT);
    }
    if (fd === -E.ELOOP || fd === -E.EXDEV) throw new SymlinkInPath();
    if (fd < 0) throw new Errno(-fd);
    return flags & O.PATH ? fd : onlyFilesAndDirs(fd, false);
  }

  /** The parent directory of loc (O_PATH) and the last component, reached with no symlink followed. */
  parentExact(loc: { grant: Grant; rel: string }): { dirfd: number; name: string } {
    if (!loc.grant.isDir || loc.rel === '') throw new Errno(E.EBUSY);
    const slash = loc.rel.lastIndexOf('/');
    const parent = slash < 0 ? '.' : loc.rel.slice(0, slash);
    const dirfd = libc.openat2(loc.grant.fd, parent, O_PATH | O.DIRECTORY | O.CLOEXEC, 0, RESOLVE_EXACT);
    if (dirfd === -E.ELOOP || dirfd === -E.EXDEV) throw new SymlinkInPath();
    if (dirfd < 0) throw new Errno(-dirfd);
    return { dirfd, name: loc.rel.slice(slash + 1) };
  }

  /**
   * Run fn on the location of an absolute guest path, for a call that may change a file. fn
   * reaches the host only through openExact and parentExact, which follow no symlink: so the
   * object fn acts on lies in loc.grant, and that grant's rule decides. Most paths hold no
   * symlink and work at the first try; when fn meets one (SymlinkInPath), the path is resolved
   * in the guest's namespace (resolve()) and fn runs again on the result, whose grant is then
   * the innermost one the object lies in (a --ro grant nested in a --rw one wins). followLast:
   * whether a symlink in the last component is followed.
   */
  exact<T>(comps: readonly string[], followLast: boolean, fn: (loc: Location, comps: readonly string[]) => T): T {
    let c = comps;
    for (let tries = 0; ; tries++) {
      try {
        return fn(this.locate(c), c);
      } catch (e) {
        if (!(e instanceof SymlinkInPath)) throw e;
        // Still a symlink after resolving it: the last component with followLast false, or
        // the tree changed in between. Plain ELOOP, so an enclosing exact() does not retry.
        if (tries === 2) throw new Errno(E.ELOOP);
      }
      c = this.resolve(comps, followLast);
    }
  }

  /** Whether a grant lies strictly below the guest path comps (it cannot be renamed away). */
  holdsGrant(comps: readonly string[]): boolean {
    return this.virtualDirs.has('/' + comps.join('/'));
  }

  /** Open the parent directory of a path inside a grant (O_PATH), for *at() calls on the last component. */
  openParent(loc: { grant: Grant; rel: string }): { dirfd: number; name: string } {
    if (!loc.grant.isDir || loc.rel === '') throw new Errno(E.EBUSY);
    const slash = loc.rel.lastIndexOf('/');
    const parent = slash < 0 ? '.' : loc.rel.slice(0, slash);
    const name = loc.rel.slice(slash + 1);
    const dirfd = libc.openat2(loc.grant.fd, parent, O_PATH | O.DIRECTORY | O.CLOEXEC, 0, RESOLVE);
    if (dirfd < 0) throw dirfd === -E.EXDEV ? new SymlinkEscape() : new Errno(-dirfd);
    return { dirfd, name };
  }

  /**
   * Open, for the host to read whole, the regular file at a guest path, reached as the guest's
   * open(2) would reach it (symlinks followed): a program, or its interpreter. O_NONBLOCK, so a
   * FIFO never makes the host wait. Throws Errno: the walk's own (ENOENT, ENOTDIR...), EISDIR for a
   * directory, ENXIO for anything else that is not a regular file. The caller closes fd.
   * identity names this version of the file (device, inode, size, mtime), for caches.
   */
  openRegular(path: string): { fd: number; size: number; identity: string } {
    const fd = this.at(normalize(path), true, (loc) => {
      if (loc.kind !== 'host') throw new Errno(E.EISDIR);
      return this.openHost(loc, O.RDONLY | O.NONBLOCK | O.CLOEXEC, 0);
    });
    try {
      const st = Buffer.alloc(STAT_SIZE);
      const r = libc.fstat(fd, st);
      if (r < 0) throw new Errno(-r);
      const type = st.readUInt32LE(STAT.mode) & S_IFMT;
      if (type === S_IFDIR) throw new Errno(E.EISDIR);
      if (type !== S_IFREG) throw new Errno(E.ENXIO);
      const size = Number(st.readBigInt64LE(STAT.size));
      return { fd, size, identity: hostIdentity(st) };
    } catch (e) {
      libc.closeFd(fd);
      throw e;
    }
  }

  /**
   * Run fn on the location of an absolute guest path. When a symlink on the way leads outside
   * its grant (fn's host call threw SymlinkEscape), resolve the path in the guest's namespace
   * and run fn once more on the result; fn gets the components it works on.
   * followLast: whether a symlink in the last component is followed (stat vs lstat).
   */
  at<T>(comps: readonly string[], followLast: boolean, fn: (loc: Location, comps: readonly string[]) => T): T {
    try {
      return fn(this.locate(comps), comps);
    } catch (e) {
      if (!(e instanceof SymlinkEscape)) throw e;
    }
    const resolved = this.resolve(comps, followLast);
    return fn(this.locate(resolved), resolved);
  }

  /**
   * Resolve every symlink of an absolute guest path, as the Linux path walk does, but in the
   * guest's namespace: an absolute target starts again from the guest's /, and `..` climbs
   * from the resolved (symlink-free) prefix. Each step is an fd-relative lookup inside one grant
   * that may follow no symlink itself (RESOLVE_NO_SYMLINKS), so the host is never asked about a
   * path outside a grant. A missing last component is returned as is (for O_CREAT, mkdir...).
   */
  resolve(comps: readonly string[], followLast: boolean): string[] {
    const done: string[] = [];
    const todo = [...comps];
    let links = 0;
    const st = Buffer.alloc(144);
    const link = Buffer.alloc(PATH_MAX);
    while (todo.length > 0) {
      const c = todo.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') { done.pop(); continue; }
      done.push(c);
      if (todo.length === 0 && !followLast) break;
      const loc = this.locate(done);
      if (loc.kind !== 'host' || loc.rel === '') continue;
      const { dirfd, name } = this.openParentStrict(loc);
      try {
        const r = libc.fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
        if (r < 0) {
          if (r === -E.ENOENT && todo.length === 0) break;
          throw new Errno(-r);
        }
        if ((st.readUInt32LE(24) & S_IFMT) !== S_IFLNK) continue;
        if (++links > MAXSYMLINKS) throw new Errno(E.ELOOP);
        const n = libc.readlinkat(dirfd, name, link);
        if (n < 0) throw new Errno(-n);
        const target = nameOf(link.subarray(0, n));
        done.pop();
        if (target.startsWith('/')) done.length = 0;
        todo.unshift(...target.split('/'));
      } finally {
        libc.closeFd(dirfd);
      }
    }
    return done;
  }

  /** openParent for a prefix already known to be free of symlinks: any symlink is refused. */
  private openParentStrict(loc: { grant: Grant; rel: string }): { dirfd: number; name: string } {
    const slash = loc.rel.lastIndexOf('/');
    const parent = slash < 0 ? '.' : loc.rel.slice(0, slash);
    const dirfd = libc.openat2(loc.grant.fd, parent, O_PATH | O.DIRECTORY | O.CLOEXEC, 0,
      RESOLVE | libc.RESOLVE_NO_SYMLINKS);
    if (dirfd < 0) throw new Errno(dirfd === -E.EXDEV || dirfd === -E.ELOOP ? E.ENOENT : -dirfd);
    return { dirfd, name: loc.rel.slice(slash + 1) };
  }

  /**
   * The guest path of a host fd opened inside `grant`: its host path (from /proc/self/fd)
   * re-rooted at the grant, so that a directory opened through a symlink knows where it is
   * (getcwd after fchdir, `..` from it). Null when the host path is not below the grant.
   */
  guestPathOf(grant: Grant, hostFd: number): string | null {
    const real = hostPathOfFd(hostFd);
    if (real === null) return null;
    if (real === grant.realPath) return grant.guestPath;
    const prefix = grant.realPath === '/' ? '/' : grant.realPath + '/';
    if (!real.startsWith(prefix)) return null;
    const rest = real.slice(prefix.length);
    return (grant.guestPath === '/' ? '' : grant.guestPath) + '/' + rest;
  }

  close(): void {
    for (const g of this.grants) g.close();
    this.grants.length = 0;
  }
}

/** The first size bytes of host fd, read with pread: null when the file ended before (it shrank
 * while it was read). Throws Errno for a read error. */
/**
 * A host file's identity for caches of its contents, from its struct stat: device, inode, size
 * and modification time (a file replaced or rewritten gets another).
 */
export function hostIdentity(st: Buffer): string {
  return `${st.readBigUInt64LE(STAT.dev)}:${st.readBigUInt64LE(STAT.ino)}:${st.readBigInt64LE(STAT.size)}:` +
    `${st.readBigInt64LE(STAT.mtime)}:${st.readBigInt64LE(STAT.mtime + 8)}`;
}

export function readWhole(fd: number, size: number): Buffer | null {
  const bytes = Buffer.alloc(size);
  for (let done = 0; done < size;) {
    const n = libc.pread(fd, bytes.subarray(done), BigInt(done));
    if (n < 0) throw new Errno(-n);
    if (n === 0) return null;
    done += n;
  }
  return bytes;
}
