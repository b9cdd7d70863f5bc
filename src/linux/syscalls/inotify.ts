// inotify: changes to files and directories of the grants, as the host's own inotify reports them
// (so a change made by a host process is seen too: an editor saving a file a watcher in the
// sandbox serves). Each guest instance is a host inotify instance; a watch is added on the inode
// the guest's path names, reached through the grants like any open (an O_PATH descriptor, whose
// /proc/self/fd link the host's inotify_add_watch follows), so a watch can never reach beyond
// them. Events come straight from the host's queue: their names are entries of watched
// directories, which the grant shows anyway.
//
// kvmbox's made-up directories (/, /proc, /dev, the directories leading to grants) never change:
// a watch there is accepted and never reports, except IN_IGNORED when it is removed.
//
// Host inotify watches are a host-wide resource (fs.inotify.max_user_watches, shared by every
// process of the host user): a sandbox holds at most MAX_INSTANCES instances and MAX_WATCHES
// watches, beyond which it gets EMFILE and ENOSPC as Linux gives at its limits.
import * as libc from '../../kvm/libc.js';
import { HostFile, hostReady, POLLIN } from '../../fs/open-file.js';
import { AT_FDCWD, E, Errno, O } from '../../abi/linux.js';
import type { Process } from '../process.js';
import { AnonFile } from './anon-file.js';
import { openGuestPath } from './fs.js';
import { int, type SyscallGroup } from './args.js';

const IN_NONBLOCK = O.NONBLOCK, IN_CLOEXEC = O.CLOEXEC;
const IN_ONLYDIR = 0x01000000, IN_DONT_FOLLOW = 0x02000000, IN_IGNORED = 0x8000;
const FIONREAD = 0x541b;
/** struct inotify_event: wd, mask, cookie, len, then len bytes of name. */
const EVENT_HEADER = 16;
/** The most a sandbox holds: Linux's defaults for one user (max_user_instances, and the old max_user_watches). */
export const MAX_INSTANCES = 128;
export const MAX_WATCHES = 8192;
/** Events kvmbox itself keeps unread at most (Linux's fs.inotify.max_queued_events). */
const MAX_QUEUED_EVENTS = 16384;
/** Watch numbers of made-up directories: far above any the host hands out. */
const MADE_UP_WD = 1 << 28;

/** A sandbox's inotify use, for its limits. */
export interface InotifyCounts { instances: number; watches: number }
const counts = new WeakMap<object, InotifyCounts>();

function countsOf(p: Process): InotifyCounts {
  const key = p.limits;
  let c = counts.get(key);
  if (!c) counts.set(key, c = { instances: 0, watches: 0 });
  return c;
}

export class InotifyFile extends AnonFile {
  /** Watches by wd: those the host holds, and made-up ones (>= MADE_UP_WD). */
  private readonly watches = new Set<number>();
  private nextMadeUp = MADE_UP_WD;
  /** The made-up watches by path: a path watched again keeps its wd, as an inode does on Linux. */
  private readonly madeUp = new Map<string, number>();
  /** Events kvmbox itself reports (IN_IGNORED of made-up watches), before the host's. */
  private pending: Buffer[] = [];
  private closed = false;

  constructor(private readonly host: number, statusFlags: number, private readonly budget: InotifyCounts) {
    super('anon_inode:inotify', statusFlags);
    budget.instances++;
  }

  addWatch(p: Process, comps: string[], mask: number): number {
    const flags = O.PATH | (mask & IN_DONT_FOLLOW ? O.NOFOLLOW : 0) | (mask & IN_ONLYDIR ? O.DIRECTORY : 0);
    const target = openGuestPath(p, comps, flags, 0);
    try {
      if (!(target instanceof HostFile)) {
        // Made up by kvmbox (or not a file of the grants): it never changes. It counts among the
        // sandbox's watches all the same.
        const key = comps.join('/');
        const known = this.madeUp.get(key);
        if (known !== undefined && this.watches.has(known)) return known;
        if (this.budget.watches >= MAX_WATCHES) throw new Errno(E.ENOSPC);
        const wd = this.nextMadeUp++;
        this.watches.add(wd);
        this.madeUp.set(key, wd);
        this.budget.watches++;
        return wd;
      }
      if (this.budget.watches >= MAX_WATCHES) throw new Errno(E.ENOSPC);
      // The link is the inode itself: following it is the only way (IN_DONT_FOLLOW would watch the link).
      const wd = libc.inotifyAddWatch(this.host, `/proc/self/fd/${target.hostFd}`, (mask & ~IN_DONT_FOLLOW) >>> 0);
      if (wd < 0) throw new Errno(-wd);
      if (!this.watches.has(wd)) {
        this.watches.add(wd);
        this.budget.watches++;
      }
      return wd;
    } finally {
      target.close();
    }
  }

  removeWatch(wd: number): number {
    if (!this.watches.has(wd)) throw new Errno(E.EINVAL);
    if (wd >= MADE_UP_WD) {
      this.forget(wd);
      const ev = Buffer.alloc(EVENT_HEADER);
      ev.writeInt32LE(wd, 0);
      ev.writeUInt32LE(IN_IGNORED, 4);
      // Unread events are bounded as Linux's queue (max_queued_events): past it they are lost.
      if (this.pending.length < MAX_QUEUED_EVENTS) this.pending.push(ev);
      return 0;
    }
    const r = libc.inotifyRmWatch(this.host, wd);
    if (r < 0) throw new Errno(-r);
    // The host queues IN_IGNORED; the budget is given back when it is read (see read).
    return 0;
  }

  private forget(wd: number): void {
    if (!this.watches.delete(wd)) return;
    this.budget.watches--;
  }

  read(buf: Buffer): number {
    if (this.pending.length) {
      let n = 0;
      while (this.pending.length && n + this.pending[0]!.length <= buf.length) {
        n += this.pending[0]!.copy(buf, n);
        this.pending.shift();
      }
      if (n === 0) throw new Errno(E.EINVAL);
      return n;
    }
    // Read into the host's own memory and look at it there: the guest's buffer may change under
    // another of its threads.
    const tmp = Buffer.alloc(buf.length);
    const n = libc.read(this.host, tmp);
    if (n < 0) throw new Errno(-n);
    for (let at = 0; at + EVENT_HEADER <= n; at += EVENT_HEADER + tmp.readUInt32LE(at + 12)) {
      if (tmp.readUInt32LE(at + 4) & IN_IGNORED) this.forget(tmp.readInt32LE(at));
    }
    tmp.copy(buf, 0, 0, n);
    return n;
  }

  /** Opened read-only, as Linux's. */
  write(): number { throw new Errno(E.EBADF); }
  pollMask(): number { return this.pending.length ? POLLIN : hostReady(this.host, POLLIN) & POLLIN; }
  /** While kvmbox has events of its own, there is nothing to wait for. */
  pollHostFd(): number | null { return this.pending.length ? null : this.host; }
  available(): number {
    if (this.pending.length) return this.pending.reduce((n, b) => n + b.length, 0);
    const out = Buffer.alloc(4);
    return libc.ioctlOut(this.host, FIONREAD, out) < 0 ? 0 : out.readInt32LE(0);
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.watches -= this.watches.size;
    this.watches.clear();
    this.budget.instances--;
    libc.closeFd(this.host);
  }
}

function init(p: Process, flags: number): number {
  if (flags & ~(IN_NONBLOCK | IN_CLOEXEC)) throw new Errno(E.EINVAL);
  const budget = countsOf(p);
  if (budget.instances >= MAX_INSTANCES) throw new Errno(E.EMFILE);
  const host = libc.inotifyInit();
  if (host < 0) throw new Errno(-host);
  const file = new InotifyFile(host, O.RDONLY | (flags & IN_NONBLOCK), budget);
  try {
    return p.fds.install(file, (flags & IN_CLOEXEC) !== 0);
  } catch (e) {
    file.close();
    throw e;
  }
}

function inotifyOf(p: Process, fd: number): InotifyFile {
  const f = p.fds.get(fd);
  if (!(f instanceof InotifyFile)) throw new Errno(E.EINVAL);
  return f;
}

export const inotifySyscalls: SyscallGroup = {
  inotify_init: ({ process: p }) => init(p, 0),
  inotify_init1: ({ process: p }, a) => init(p, int(a[0])),
  inotify_add_watch: ({ process: p }, a) => {
    const f = inotifyOf(p, int(a[0]));
    const path = p.userString(a[1]);
    if (path === '') throw new Errno(E.ENOENT);
    return f.addWatch(p, p.pathAt(AT_FDCWD, path), Number(BigInt.asUintN(32, a[2])));
  },
  inotify_rm_watch: ({ process: p }, a) => inotifyOf(p, int(a[0])).removeWatch(int(a[1])),
};
