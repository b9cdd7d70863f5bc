// epoll and eventfd. An epoll instance is an open file holding an interest list of descriptors;
// epoll_wait asks each one's readiness (OpenFile.pollMask) like poll does, and waits the same way
// (syscalls/io.ts pollEntries: parked in the kernel while another process could make one ready).
// Level-triggered, and edge-triggered (EPOLLET) for files that count their events (OpenFile.edges:
// pipes, stream and datagram sockets, eventfds): such an entry is reported again only after a new
// event, as Linux does; the others are reported level-triggered, which never misses one.
// EPOLLONESHOT disables an entry once it is reported.
// An eventfd is a 64-bit counter: write adds, read takes it (or 1 with EFD_SEMAPHORE), waiting
// while it is 0 like a pipe read.
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { WouldBlock, POLLIN, POLLOUT, type OpenFile } from '../../fs/open-file.js';
import { AnonFile } from './anon-file.js';
import { E, Errno, O } from '../../abi/linux.js';
import type { Process } from '../process.js';
import { int, size, type SyscallGroup } from './args.js';
import { pollEntries, timeoutFromTimespec, type PollEntry } from './io.js';
import { withSigmask } from '../signals.js';

const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
const EPOLLET = 1 << 31, EPOLLONESHOT = 1 << 30, EPOLLEXCLUSIVE = 1 << 28, EPOLLWAKEUP = 1 << 29;
const EPOLL_EVENT_SIZE = 12;
const EPOLL_MAXEVENTS = 0x7fffffff / EPOLL_EVENT_SIZE;
const EFD_SEMAPHORE = 1;

/** An entry of the interest list; seen: for EPOLLET, the file's event count when last reported. */
interface Interest { file: OpenFile; events: number; data: bigint; seen?: number }

/**
 * Entries of a sandbox's epoll interest lists together (Linux bounds a user's by
 * fs.epoll.max_user_watches): ENOSPC beyond, so that epolls of many processes, or sent away in
 * flight, cannot grow the host's heap without bound.
 */
const MAX_EPOLL_WATCHES = 65536;

export class EpollFile extends AnonFile {
  private readonly entries = new Map<number, Interest>();
  constructor(statusFlags: number, private readonly counts: { epollWatches: number }) { super('anon_inode:[eventpoll]', statusFlags); }
  read(): number { throw new Errno(E.EINVAL); }
  write(): number { throw new Errno(E.EINVAL); }
  override close(): void {
    this.counts.epollWatches -= this.entries.size;
    this.entries.clear();
  }
  get interest(): ReadonlyMap<number, Interest> { return this.entries; }
  /** Add or change the entry of fd (ENOSPC when the sandbox has no room for one more). */
  set(fd: number, it: Interest): void {
    if (!this.entries.has(fd)) {
      if (this.counts.epollWatches >= MAX_EPOLL_WATCHES) throw new Errno(E.ENOSPC);
      this.counts.epollWatches++;
    }
    this.entries.set(fd, it);
  }
  delete(fd: number): void {
    if (this.entries.delete(fd)) this.counts.epollWatches--;
  }
}

export class EventFd extends AnonFile {
  constructor(public count: bigint, statusFlags: number, private readonly semaphore: boolean) {
    super('anon_inode:[eventfd]', statusFlags);
  }
  read(buf: Buffer): number {
    if (buf.length < 8) throw new Errno(E.EINVAL);
    if (this.count === 0n) {
      if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it reads an eventfd that only it could signal', () => this.count > 0n);
    }
    const v = this.semaphore ? 1n : this.count;
    this.count -= v;
    this.outEdges++;
    buf.writeBigUInt64LE(v, 0);
    return 8;
  }
  write(buf: Buffer): number {
    if (buf.length < 8) throw new Errno(E.EINVAL);
    const v = buf.readBigUInt64LE(0);
    if (v === 0xffffffffffffffffn) throw new Errno(E.EINVAL);
    const MAX = 0xfffffffffffffffen;
    if (this.count + v > MAX) {
      if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it writes an eventfd that only it could drain', () => this.count + v <= MAX);
    }
    this.count += v;
    this.inEdges++;
    return 8;
  }
  private inEdges = 0;
  private outEdges = 0;
  edges(events: number): number { return (events & POLLIN ? this.inEdges : 0) + (events & POLLOUT ? this.outEdges : 0); }
  pollMask(): number { return (this.count > 0n ? POLLIN : 0) | (this.count < 0xfffffffffffffffen ? POLLOUT : 0); }
  available(): number { return 8; }
}

function epollOf(p: Process, fd: number): EpollFile {
  const f = p.fds.get(fd);
  if (!(f instanceof EpollFile)) throw new Errno(E.EINVAL);
  return f;
}

function create(p: Process, flags: number): number {
  if (flags & ~O.CLOEXEC) throw new Errno(E.EINVAL);
  return p.fds.install(new EpollFile(O.RDWR, p.limits), (flags & O.CLOEXEC) !== 0);
}

function ctl(p: Process, epfd: number, op: number, fd: number, evAddr: bigint): number {
  const ep = epollOf(p, epfd);
  const file = p.fds.get(fd);
  if (fd === epfd || file === ep) throw new Errno(E.EINVAL);
  // Regular files and directories are always ready: Linux refuses them (EPERM).
  if (!file.pollMask && !file.pollHostFd) throw new Errno(E.EPERM);
  let events = 0, data = 0n;
  if (op !== EPOLL_CTL_DEL) {
    const ev = Buffer.from(p.userBuffer(evAddr, EPOLL_EVENT_SIZE, PROT_READ));
    events = ev.readUInt32LE(0);
    data = ev.readBigUInt64LE(4);
  }
  const cur = ep.interest.get(fd);
  switch (op) {
    case EPOLL_CTL_ADD:
      if (cur && cur.file === file) throw new Errno(E.EEXIST);
      ep.set(fd, { file, events, data });
      return 0;
    case EPOLL_CTL_MOD:
      if (!cur || cur.file !== file) throw new Errno(E.ENOENT);
      if (events & EPOLLEXCLUSIVE) throw new Errno(E.EINVAL);
      ep.set(fd, { file, events, data });
      return 0;
    case EPOLL_CTL_DEL:
      if (!cur || cur.file !== file) throw new Errno(E.ENOENT);
      ep.delete(fd);
      return 0;
    default: throw new Errno(E.EINVAL);
  }
}

function wait(p: Process, epfd: number, evAddr: bigint, maxArg: number, timeoutMs: number | null): number {
  if (maxArg <= 0 || maxArg > EPOLL_MAXEVENTS) throw new Errno(E.EINVAL);
  const ep = epollOf(p, epfd);
  const out = p.userBuffer(evAddr, maxArg * EPOLL_EVENT_SIZE, PROT_WRITE);
  // Entries whose descriptor was closed (or now names another file) are gone, as when Linux
  // drops a closed file from every interest list.
  const live: Array<[number, Interest]> = [];
  for (const [fd, it] of ep.interest) {
    if (p.fds.peek(fd) !== it.file) ep.delete(fd);
    else if ((it.events & ~(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP)) !== 0) live.push([fd, it]);
  }
  // An edge-triggered entry waits for an event after the one last reported.
  const entries: PollEntry[] = live.map(([fd, it]) => ({ fd, events: it.events & 0xffff, revents: 0,
    ...(it.events & EPOLLET && it.file.edges?.(it.events) != null ? { since: it.seen ?? -1 } : {}) }));
  pollEntries(p, entries, timeoutMs);
  let n = 0;
  for (let i = 0; i < entries.length && n < maxArg; i++) {
    const e = entries[i]!;
    if (!e.revents) continue;
    const it = live[i]![1];
    out.writeUInt32LE(e.revents, n * EPOLL_EVENT_SIZE);
    out.writeBigUInt64LE(it.data, n * EPOLL_EVENT_SIZE + 4);
    if (e.since !== undefined) it.seen = it.file.edges!(it.events) ?? undefined;
    if (it.events & EPOLLONESHOT) it.events &= EPOLLET | EPOLLONESHOT;
    n++;
  }
  return n;
}

export const epollSyscalls: SyscallGroup = {
  epoll_create: ({ process: p }, a) => {
    if (int(a[0]) <= 0) throw new Errno(E.EINVAL);
    return create(p, 0);
  },
  epoll_create1: ({ process: p }, a) => create(p, int(a[0])),
  epoll_ctl: ({ process: p }, a) => ctl(p, int(a[0]), int(a[1]), int(a[2]), a[3]),
  epoll_wait: ({ process: p }, a) => wait(p, int(a[0]), a[1], int(a[2]), int(a[3]) < 0 ? null : int(a[3])),
  epoll_pwait: (t, a) => withSigmask(t, a[4], a[5], () => wait(t.process, int(a[0]), a[1], int(a[2]), int(a[3]) < 0 ? null : int(a[3]))),
  epoll_pwait2: (t, a) => withSigmask(t, a[4], a[5], () => wait(t.process, int(a[0]), a[1], int(a[2]), timeoutFromTimespec(t.process, a[3], false))),
  eventfd: ({ process: p }, a) => p.fds.install(new EventFd(BigInt(size(a[0]) >>> 0), O.RDWR, false)),
  eventfd2: ({ process: p }, a) => {
    const flags = int(a[1]);
    if (flags & ~(O.CLOEXEC | O.NONBLOCK | EFD_SEMAPHORE)) throw new Errno(E.EINVAL);
    const f = new EventFd(BigInt(Number(BigInt.asUintN(32, a[0]))), O.RDWR | (flags & O.NONBLOCK), (flags & EFD_SEMAPHORE) !== 0);
    return p.fds.install(f, (flags & O.CLOEXEC) !== 0);
  },
};
