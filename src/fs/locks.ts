// Advisory file locks between the processes of one sandbox, as Linux keeps them (fs/locks.c):
// flock(2) locks, owned by an open file description; POSIX record locks (fcntl F_SETLK), owned by
// a process, over byte ranges; and open-file-description record locks (F_OFD_SETLK), owned by an
// open file description, over byte ranges. Record locks of both kinds conflict with each other;
// flock locks only with flock locks. A lock that conflicts makes the caller wait (WouldBlock:
// the scheduler looks at ready()), or fails with EAGAIN when it must not wait.
//
// These locks live in the sandbox: they order its own processes, never a host process or another
// sandbox (the host's locks are per host process, and every guest process is kvmbox's).
import * as libc from '../kvm/libc.js';
import { E, Errno, STAT_SIZE } from '../abi/linux.js';
import { WouldBlock, type OpenFile } from './open-file.js';
import { ShmFile } from './shm.js';
import { inodeKey } from './vfs.js';

/** The last byte a lock can cover: a lock "to the end of the file" ends here. */
export const OFFSET_MAX = (1n << 63n) - 1n;

/** Who holds a lock: a process (POSIX locks; the process object itself) or an open file. */
export type LockOwner = object;

export interface RecordLock {
  readonly owner: LockOwner;
  /** The owner's pid for F_GETLK, -1 for an open-file-description lock. */
  readonly pid: number;
  start: bigint;
  /** Inclusive; OFFSET_MAX for a lock to the end of the file. */
  end: bigint;
  readonly write: boolean;
}

interface FlockLock {
  readonly owner: OpenFile;
  readonly exclusive: boolean;
}

/** No sandbox holds more: a program that asks for more gets ENOLCK (each change walks a file's list). */
const MAX_LOCKS = 16384;

export class FileLocks {
  private readonly records = new Map<unknown, RecordLock[]>();
  private readonly flocks = new Map<unknown, FlockLock[]>();
  /** The identity of each open file's file (a host file's device and inode). */
  private readonly keys = new WeakMap<OpenFile, unknown>();
  /** The owner whose lock each POSIX owner waits for: to find a deadlock (EDEADLK). */
  private readonly waitingFor = new Map<LockOwner, LockOwner>();
  private count = 0;

  /**
   * The file an open file is of: a host file by device and inode, a /dev/shm or memfd file by its
   * node (every open of it), anything else by itself.
   */
  private key(f: OpenFile): unknown {
    let k = this.keys.get(f);
    if (k === undefined) {
      k = f instanceof ShmFile ? f.node : f;
      if (f.hostFd !== null) {
        const st = Buffer.alloc(STAT_SIZE);
        if (libc.fstat(f.hostFd, st) >= 0) k = inodeKey(st);
      }
      this.keys.set(f, k);
    }
    return k;
  }

  // ---- flock(2) ----

  /** LOCK_SH (exclusive false) or LOCK_EX on f for f itself; wait: false gives EAGAIN (EWOULDBLOCK). */
  flock(f: OpenFile, exclusive: boolean, wait: boolean): void {
    const key = this.key(f);
    const list = this.flocks.get(key) ?? [];
    const mine = list.find((l) => l.owner === f);
    if (mine?.exclusive === exclusive) return;
    // A conversion drops the old lock first, as on Linux: it is not atomic.
    if (mine) this.unflock(f);
    const free = () => !(this.flocks.get(key) ?? []).some((l) => l.owner !== f && (exclusive || l.exclusive));
    if (!free()) {
      if (!wait) throw new Errno(E.EAGAIN);
      throw new WouldBlock('flock', free);
    }
    this.take();
    this.flocks.set(key, [...(this.flocks.get(key) ?? []), { owner: f, exclusive }]);
  }

  /** LOCK_UN. */
  unflock(f: OpenFile): void {
    this.dropOwner(this.flocks, f, f);
  }

  // ---- record locks (fcntl) ----

  /** The first lock of another owner that a lock of `write` over [start, end] would conflict with. */
  conflict(f: OpenFile, owner: LockOwner, write: boolean, start: bigint, end: bigint): RecordLock | null {
    for (const l of this.records.get(this.key(f)) ?? []) {
      if (l.owner !== owner && l.start <= end && start <= l.end && (write || l.write)) return l;
    }
    return null;
  }

  /**
   * Set (F_RDLCK, F_WRLCK: write false or true) or clear (write null) owner's lock over
   * [start, end] of f's file. A conflict waits when `wait` (F_SETLKW), else fails with EAGAIN.
   * `posix`: owner is a process, and a wait that would close a circle fails with EDEADLK.
   */
  setRecord(f: OpenFile, owner: LockOwner, pid: number, write: boolean | null, start: bigint, end: bigint, wait: boolean, posix: boolean): void {
    if (write !== null) {
      const blocker = this.conflict(f, owner, write, start, end);
      if (blocker) {
        if (!wait) throw new Errno(E.EAGAIN);
        if (posix && this.closesCircle(owner, blocker.owner)) throw new Errno(E.EDEADLK);
        if (posix) this.waitingFor.set(owner, blocker.owner);
        throw new WouldBlock('record lock', () => this.conflict(f, owner, write, start, end) === null,
          undefined, () => { if (this.waitingFor.get(owner) === blocker.owner) this.waitingFor.delete(owner); });
      }
      if (posix) this.waitingFor.delete(owner);
    }
    const key = this.key(f);
    const list = this.records.get(key) ?? [];
    // The owner's locks over the range give way to the new one: what sticks out stays.
    const next: RecordLock[] = [];
    for (const l of list) {
      if (l.owner !== owner || l.end < start || end < l.start) {
        next.push(l);
        continue;
      }
      if (l.start < start) next.push({ ...l, end: start - 1n });
      if (end < l.end) next.push({ ...l, start: end + 1n });
    }
    if (write !== null) next.push({ owner, pid, start, end, write });
    // Neighbours of one owner and type become one lock, as Linux keeps them.
    const merged = mergeAdjacent(next);
    if (merged.length > list.length && this.count + merged.length - list.length > MAX_LOCKS) throw new Errno(E.ENOLCK);
    this.count += merged.length - list.length;
    if (merged.length) this.records.set(key, merged);
    else this.records.delete(key);
  }

  /** Whether owner waiting for `blocker` would close a circle of waiting POSIX owners. */
  private closesCircle(owner: LockOwner, blocker: LockOwner): boolean {
    let x: LockOwner | undefined = blocker;
    for (let i = 0; x !== undefined && i <= this.waitingFor.size; i++) {
      if (x === owner) return true;
      x = this.waitingFor.get(x);
    }
    return false;
  }

  // ---- ends of owners ----

  /** A process closed a descriptor of f: its POSIX locks on f's file go, whichever descriptor set them. */
  closed(owner: LockOwner, f: OpenFile): void {
    this.dropOwner(this.records, f, owner);
  }

  /** The last descriptor of f closed: its flock and open-file-description locks go. */
  released(f: OpenFile): void {
    this.unflock(f);
    this.closed(f, f);
  }

  /** A process ended (after closing its descriptors): it waits for nothing any more. */
  ownerGone(owner: LockOwner): void {
    this.waitingFor.delete(owner);
  }

  /** Every lock of owner on f's file in `table` goes. */
  private dropOwner(table: Map<unknown, Array<{ owner: LockOwner }>>, f: OpenFile, owner: LockOwner): void {
    if (table.size === 0) return; // the common case: no fstat at each close
    const key = this.key(f);
    const list = table.get(key);
    if (!list) return;
    const left = list.filter((l) => l.owner !== owner);
    this.count -= list.length - left.length;
    if (left.length) table.set(key, left);
    else table.delete(key);
  }

  private take(): void {
    if (this.count >= MAX_LOCKS) throw new Errno(E.ENOLCK);
    this.count++;
  }
}

/** Locks of one owner and type that touch or overlap become one. */
function mergeAdjacent(locks: RecordLock[]): RecordLock[] {
  const sorted = [...locks].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: RecordLock[] = [];
  // The last lock kept of each owner and type: one step per lock, whatever the list's length.
  const last = new Map<LockOwner, { read?: RecordLock; write?: RecordLock }>();
  for (const l of sorted) {
    const mine = last.get(l.owner) ?? {};
    const prev = l.write ? mine.write : mine.read;
    if (prev && prev.end !== OFFSET_MAX && prev.end + 1n >= l.start) {
      if (l.end > prev.end) prev.end = l.end;
      continue;
    }
    const kept = { ...l };
    out.push(kept);
    if (l.write) mine.write = kept;
    else mine.read = kept;
    last.set(l.owner, mine);
  }
  return out;
}
