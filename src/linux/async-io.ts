// Signal-driven I/O: an open file with O_ASYNC set sends its owner (F_SETOWN, F_SETOWN_EX: a
// thread, a process or a process group) SIGIO, or the signal F_SETSIG names, when input arrives
// or room is made, as Linux's fasync does. The owner and the signal are kept on the open file,
// O_ASYNC or not (fcntl gives them back).
//
// The events are the ones EPOLLET counts (OpenFile.edges): pipes, sockets, eventfds. The kernel
// looks at the counts of the files with O_ASYNC after each exit it serves (poll), which is where
// any in-sandbox writer or reader made its change; a file with no counts sends nothing.
//
// Directory notification (fcntl F_NOTIFY, dnotify) is the same signal for a change in a
// directory, its owner the process that asked. A directory of the grants is watched by a host
// inotify instance of the sandbox's (as src/linux/syscalls/inotify.ts watches), read at the same
// points, so changes the sandbox makes signal before its next call, and the host's at the next
// exit after them. kvmbox's made-up directories never change: a request there never fires.
import * as libc from '../kvm/libc.js';
import type { FdTable, OpenFile } from '../fs/open-file.js';
import { HostFile, POLLIN, POLLOUT } from '../fs/open-file.js';
import { E, Errno, S_IFDIR, S_IFMT, STAT, STAT_SIZE } from '../abi/linux.js';
import type { Process } from './process.js';
import type { Task } from './task.js';

export const F_OWNER_TID = 0, F_OWNER_PID = 1, F_OWNER_PGRP = 2;
export const SIGIO = 29;
/** si_code of a signal F_SETSIG chose: POLL_IN, POLL_OUT, POLL_MSG (dnotify); without F_SETSIG, SIGIO is SI_KERNEL's. */
const POLL_IN = 1, POLL_OUT = 2, POLL_MSG = 3, SI_KERNEL = 0x80;
const POLLRDNORM = 0x040, POLLWRNORM = 0x100, POLLWRBAND = 0x200, POLLMSG = 0x400;
/** si_band for POLL_IN and POLL_OUT, as Linux's band_table. */
const BAND_IN = POLLIN | POLLRDNORM | POLLMSG, BAND_OUT = POLLOUT | POLLWRNORM | POLLWRBAND, BAND_MSG = POLLIN | POLLRDNORM | POLLMSG;
/** F_NOTIFY's events, and the host inotify events for each. */
export const DN_MULTISHOT = 0x80000000;
const DN_EVENTS: ReadonlyArray<readonly [number, number]> = [
  [0x01 /* DN_ACCESS */, 0x001 /* IN_ACCESS */],
  [0x02 /* DN_MODIFY */, 0x002 /* IN_MODIFY */],
  [0x04 /* DN_CREATE */, 0x100 | 0x080 /* IN_CREATE, IN_MOVED_TO */],
  [0x08 /* DN_DELETE */, 0x200 | 0x040 /* IN_DELETE, IN_MOVED_FROM */],
  [0x10 /* DN_RENAME */, 0x040 | 0x080 /* IN_MOVED_FROM, IN_MOVED_TO */],
  [0x20 /* DN_ATTRIB */, 0x004 /* IN_ATTRIB */],
];
const IN_MASK_ADD = 0x20000000;
/** struct inotify_event: wd, mask, cookie, len, then the name. */
const EVENT_HEADER = 16;
const SIGINFO_SIZE = 128;

export interface Owner { type: number; pid: number; signal: number }

/** An F_NOTIFY request: its host watch (-1: none, a made-up directory), events, fd (si_fd), the table that holds the file, DN_MULTISHOT. */
interface Note { wd: number; events: number; fd: number; fds: FdTable; multishot: boolean }

/** Who finds tasks and processes by number, and raises signals (the kernel, with signals.ts's raise). */
export interface Finder {
  find(pid: number): Process | undefined;
  findTask(tid: number): Task | undefined;
  all(): Iterable<Process>;
  raiseSignal(t: Task, sig: number, info: { code: number; raw?: Buffer }): void;
}

export class AsyncIo {
  private readonly owners = new WeakMap<OpenFile, Owner>();
  /** Files with O_ASYNC: the fd it was set through (si_fd), the table that holds them, the counts last seen. */
  private readonly files = new Map<OpenFile, { fd: number; fds: FdTable; seenIn: number | null; seenOut: number | null }>();
  /** F_NOTIFY requests by open file (of a directory). */
  private readonly notes = new Map<OpenFile, Note>();
  /** The host inotify instance for them, made at the first request. */
  private notifyFd = -1;
  private readonly events = Buffer.alloc(4096);

  /** The owner and signal of f ({ F_OWNER_TID, 0, 0 } when never set, as Linux's zeroed fown_struct). */
  owner(f: OpenFile): Owner {
    return this.owners.get(f) ?? { type: F_OWNER_TID, pid: 0, signal: 0 };
  }

  setOwner(f: OpenFile, type: number, pid: number): void {
    this.owners.set(f, { type, pid, signal: this.owner(f).signal });
  }

  setSignal(f: OpenFile, signal: number): void {
    this.owners.set(f, { ...this.owner(f), signal });
  }

  /** F_SETFL turned O_ASYNC on (through fd) or off. */
  setAsync(f: OpenFile, on: boolean, fd: number, fds: FdTable): void {
    if (!on) {
      this.files.delete(f);
      return;
    }
    if (this.files.has(f)) return;
    this.files.set(f, { fd, fds, seenIn: f.edges?.(POLLIN) ?? null, seenOut: f.edges?.(POLLOUT) ?? null });
  }

  get active(): boolean { return this.files.size > 0 || this.notes.size > 0; }

  /**
   * fcntl(fd, F_NOTIFY, mask) on the directory f by process p, as Linux's: the events add to
   * those asked before on the same open file (DN_MULTISHOT too, once given); none (mask 0, or
   * DN_MULTISHOT alone) ends them. p becomes the owner unless f has one. Bits that name no
   * event are taken and never fire. ENOTDIR for any other file.
   */
  notify(f: OpenFile, fd: number, mask: number, p: Process): void {
    const st = Buffer.alloc(STAT_SIZE);
    f.stat(st);
    if ((st.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFDIR) throw new Errno(E.ENOTDIR);
    const events = (mask & ~DN_MULTISHOT) >>> 0;
    let note = this.notes.get(f);
    if (events === 0) {
      if (note) this.forgetNote(f, note);
      return;
    }
    if (this.owner(f).pid === 0) this.owners.set(f, { type: F_OWNER_PID, pid: p.pid, signal: this.owner(f).signal });
    if (!note) this.notes.set(f, note = { wd: -1, events: 0, fd, fds: p.fds, multishot: false });
    note.events |= events;
    note.fd = fd;
    note.multishot ||= (mask & DN_MULTISHOT) !== 0;
    // A made-up directory (no host file): it never changes.
    if (!(f instanceof HostFile)) return;
    if (this.notifyFd < 0) {
      const nfd = libc.inotifyInit();
      if (nfd < 0) throw new Errno(-nfd);
      this.notifyFd = nfd;
    }
    note.wd = this.watch(f.hostFd, note.events);
  }

  /** The host watch of a directory (one per inode: every request on it asks for its events). */
  private watch(hostFd: number, events: number): number {
    let hostMask = 0;
    for (const [dn, inMask] of DN_EVENTS) if (events & dn) hostMask |= inMask;
    // IN_MASK_ADD: another open file of the same directory keeps its events.
    const wd = libc.inotifyAddWatch(this.notifyFd, `/proc/self/fd/${hostFd}`, (hostMask | IN_MASK_ADD) >>> 0);
    if (wd < 0) throw new Errno(-wd);
    return wd;
  }

  private forgetNote(f: OpenFile, note: Note): void {
    this.notes.delete(f);
    // The host watch goes with the inode's last request (a stale watch would only wake the poll).
    if (note.wd >= 0 && ![...this.notes.values()].some((n) => n.wd === note.wd)) libc.inotifyRmWatch(this.notifyFd, note.wd);
  }

  /** The sandbox ended: its host inotify instance goes. */
  close(): void {
    if (this.notifyFd >= 0) libc.closeFd(this.notifyFd);
    this.notifyFd = -1;
    this.notes.clear();
    this.files.clear();
  }

  /** Send the signals for what changed since the last look; forget files no descriptor holds. */
  poll(k: Finder): void {
    if (this.notes.size) this.pollNotes(k);
    for (const [f, s] of this.files) {
      if (!s.fds.holds(f)) {
        this.files.delete(f);
        continue;
      }
      const nowIn = f.edges?.(POLLIN) ?? null, nowOut = f.edges?.(POLLOUT) ?? null;
      const arrived = nowIn !== s.seenIn, room = nowOut !== s.seenOut;
      s.seenIn = nowIn;
      s.seenOut = nowOut;
      if (arrived) this.send(k, f, s.fd, POLL_IN);
      if (room) this.send(k, f, s.fd, POLL_OUT);
    }
  }

  private pollNotes(k: Finder): void {
    for (;;) {
      const n = libc.read(this.notifyFd, this.events);
      if (n <= 0) break;
      // Each event: the watch and the kind of change, sent to the requests that asked for it.
      for (let off = 0; off + EVENT_HEADER <= n; off += EVENT_HEADER + this.events.readUInt32LE(off + 12)) {
        const wd = this.events.readInt32LE(off), inMask = this.events.readUInt32LE(off + 4);
        for (const [f, note] of [...this.notes]) {
          if (note.wd !== wd) continue;
          if (!note.fds.holds(f)) {
            this.forgetNote(f, note);
            continue;
          }
          if (!DN_EVENTS.some(([dn, m]) => note.events & dn && inMask & m)) continue;
          if (!note.multishot) this.forgetNote(f, note);
          this.send(k, f, note.fd, POLL_MSG);
        }
      }
    }
  }

  private send(k: Finder, f: OpenFile, fd: number, reason: number): void {
    const o = this.owners.get(f);
    if (!o || o.pid === 0) return;
    const sig = o.signal || SIGIO;
    const targets: Task[] = [];
    if (o.type === F_OWNER_TID) {
      const t = k.findTask(o.pid);
      if (t) targets.push(t);
    } else if (o.type === F_OWNER_PID) {
      const q = k.find(o.pid) ?? k.findTask(o.pid)?.process;
      const t = q && !q.zombie ? q.signalTarget(sig) : undefined;
      if (t) targets.push(t);
    } else {
      for (const q of k.all()) {
        if (q.zombie || q.pgid !== o.pid) continue;
        const t = q.signalTarget(sig);
        if (t) targets.push(t);
      }
    }
    for (const t of targets) {
      if (!o.signal) {
        k.raiseSignal(t, SIGIO, { code: SI_KERNEL });
        continue;
      }
      // struct siginfo for SIGPOLL: si_band (long) at 16, si_fd at 24.
      const raw = Buffer.alloc(SIGINFO_SIZE);
      raw.writeInt32LE(sig, 0);
      raw.writeInt32LE(reason, 8);
      raw.writeBigInt64LE(BigInt(reason === POLL_IN ? BAND_IN : reason === POLL_OUT ? BAND_OUT : BAND_MSG), 16);
      raw.writeInt32LE(fd, 24);
      k.raiseSignal(t, sig, { code: reason, raw });
    }
  }
}
