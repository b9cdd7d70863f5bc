// The guest's file-system namespace: deny by default. Only the host paths granted with --ro/--rw
// exist, at the same path in the guest; the directories leading to them exist as empty,
// read-only "virtual" directories. Every host access is fd-relative to a grant's directory fd,
// opened at start-up, through openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): neither `..` nor a
// symlink (planted on the host or created by the guest) can lead outside a grant, and renaming
// directories during a lookup cannot either, since no string path from / is ever used.
import { statSync } from 'node:fs';
import { resolve as resolveHostPath } from 'node:path';
import * as libc from '../../kvm/libc.js';
import { E, Errno, O } from '../linux.js';

export interface GrantSpec {
  /** Host path (also the guest path). */
  path: string;
  writable: boolean;
}

export interface Grant {
  readonly guestPath: string;
  readonly components: readonly string[];
  readonly hostPath: string;
  readonly writable: boolean;
  readonly isDir: boolean;
  /** O_PATH fd of the granted file or directory. */
  readonly fd: number;
}

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

export class Vfs {
  readonly grants: Grant[] = [];
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
    let isDir: boolean;
    try {
      isDir = statSync(hostPath).isDirectory();
    } catch (e) {
      throw new GrantError(`cannot grant ${s.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (the path must exist on the host)`);
    }
    const fd = libc.openat(-100, hostPath, O_PATH | O.CLOEXEC, 0);
    if (fd < 0) throw new GrantError(`cannot grant ${s.path}: ${libc.errnoName(-fd)}`);
    const components = normalize(hostPath);
    this.grants.push({ guestPath: '/' + components.join('/'), components, hostPath, writable: s.writable, isDir, fd });
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
      return { kind: 'host', grant: g, rel: rest.join('/') };
    }
    const path = '/' + components.join('/');
    const children = this.virtualDirs.get(path);
    if (children) return { kind: 'virtual', path, children: [...children].sort() };
    throw new Errno(E.ENOENT);
  }

  /**
   * Open a host file for a guest path inside a grant. flags are Linux open flags (the host's
   * are the same). Writes to a read-only grant fail with EROFS before the host is touched.
   */
  openHost(loc: { grant: Grant; rel: string }, flags: number, mode: number): number {
    const wantsWrite = (flags & O.ACCMODE) !== O.RDONLY || (flags & (O.CREAT | O.TRUNC)) !== 0;
    if (wantsWrite && !loc.grant.writable) {
      // Creating or truncating in a read-only grant: EROFS, like a read-only mount.
      throw new Errno(E.EROFS);
    }
    // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
    const hostFlags = flags & O.PATH ? (flags & (O.PATH | O.DIRECTORY | O.NOFOLLOW)) | O.CLOEXEC
      : flags | O.CLOEXEC | O.NOCTTY;
    if (!loc.grant.isDir) {
      // A single granted file: reopen the pinned inode through its O_PATH fd.
      if (flags & (O.DIRECTORY)) throw new Errno(E.ENOTDIR);
      const fd = libc.openat(-100, `/proc/self/fd/${loc.grant.fd}`, hostFlags & ~(O.CREAT | O.EXCL), mode);
      if (fd < 0) throw new Errno(-fd);
      return fd;
    }
    const fd = libc.openat2(loc.grant.fd, loc.rel === '' ? '.' : loc.rel, hostFlags, (flags & O.CREAT) ? mode & 0o7777 : 0, RESOLVE);
    if (fd < 0) throw new Errno(fd === -E.EXDEV ? E.ENOENT : -fd);
    return fd;
  }

  /** Open the parent directory of a path inside a grant (O_PATH), for *at() calls on the last component. */
  openParent(loc: { grant: Grant; rel: string }): { dirfd: number; name: string } {
    if (!loc.grant.isDir || loc.rel === '') throw new Errno(E.EBUSY);
    const slash = loc.rel.lastIndexOf('/');
    const parent = slash < 0 ? '.' : loc.rel.slice(0, slash);
    const name = loc.rel.slice(slash + 1);
    const dirfd = libc.openat2(loc.grant.fd, parent, O_PATH | O.DIRECTORY | O.CLOEXEC, 0, RESOLVE);
    if (dirfd < 0) throw new Errno(dirfd === -E.EXDEV ? E.ENOENT : -dirfd);
    return { dirfd, name };
  }

  close(): void {
    for (const g of this.grants) libc.closeFd(g.fd);
    this.grants.length = 0;
  }
}
