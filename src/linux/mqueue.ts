// POSIX message queues of one sandbox (mq_open and the rest, src/linux/syscalls/mqueue.ts): a
// namespace of its own, as a fresh IPC namespace's mqueue file system, kept on the host. A
// queue holds at most maxmsg messages of at most msgsize bytes, highest priority first and in
// order within a priority; the sandbox's queues together stay within RLIMIT_MSGQUEUE's 819200
// bytes (counted as Linux counts them, EMFILE past it) and MQ_QUEUES_MAX queues (ENOSPC). An
// open queue is a file descriptor (MqFile): poll and epoll see a message (POLLIN) and room
// (POLLOUT), read gives the queue's status line. A registration (mq_notify) is one process's;
// the first message into an empty queue that no receiver waits for sends it its signal
// (SI_MESGQ) and ends the registration, as on Linux. (Linux also ends it when the process
// closes a descriptor of the queue; here it ends with the process.)
//
// Nothing here touches guest memory: the system calls copy the messages in and out.
import { E, Errno, MQ_BYTES_MAX, O } from '../abi/linux.js';
import { GUEST_UID } from '../abi/abi.generated.js';
import { POLLIN, POLLOUT, WouldBlock, type OpenFile } from '../fs/open-file.js';
import { STAT } from '../abi/linux.js';
import type { Process } from './process.js';

/** /proc/sys/fs/mqueue: msg_default, msgsize_default, and the largest an unprivileged caller may ask. */
export const MSG_DEFAULT = 10, MSGSIZE_DEFAULT = 8192, MSG_MAX = 10, MSGSIZE_MAX = 8192;
/** Queues a namespace may hold (queues_max). */
export const MQ_QUEUES_MAX = 256;
/** Priorities are below this. */
export const MQ_PRIO_MAX = 32768;
/** What Linux counts per message slot besides its bytes: a struct msg_msg and a tree node. */
const MSG_OVERHEAD = 48, NODE_OVERHEAD = 48;
const POLLRDNORM = 0x040, POLLWRNORM = 0x100;
const S_IFREG = 0o100000;
const SIGEV_SIGNAL = 0;

/** A registration for notification: the process, and the signal with its value (SIGEV_NONE: no signal). */
export interface MqNotify { process: Process; signal: number; value: bigint; notify: number }

export class MessageQueue {
  readonly messages: Array<{ prio: number; data: Buffer }> = [];
  bytes = 0;
  notify: MqNotify | null = null;
  /** Receivers waiting now: a notification goes out only when none is. */
  receivers = 0;
  /** Open descriptions (MqFile) of it. */
  opens = 0;
  constructor(readonly maxmsg: number, readonly msgsize: number, public mode: number, readonly ino: number) {}
  /** What the queue counts against RLIMIT_MSGQUEUE. */
  get cost(): number {
    return this.maxmsg * (MSG_OVERHEAD + this.msgsize) + Math.min(this.maxmsg, MQ_PRIO_MAX) * NODE_OVERHEAD;
  }
}

export class MqNamespace {
  private readonly names = new Map<string, MessageQueue>();
  /** Queues alive (named or still open) and their cost. */
  private readonly live = new Set<MessageQueue>();
  private nextIno = 1;

  /**
   * mq_open: the queue of name, made with O_CREAT when absent (attr: maxmsg and msgsize, or
   * null for the defaults), as an open file with oflag's access mode and O_NONBLOCK.
   */
  open(name: string, oflag: number, mode: number, attr: { maxmsg: number; msgsize: number } | null): MqFile {
    const access = oflag & O.ACCMODE;
    if (access === O.ACCMODE) throw new Errno(E.EINVAL);
    let q = this.names.get(name);
    if (q) {
      if (oflag & O.CREAT && oflag & O.EXCL) throw new Errno(E.EEXIST);
      // The guest's one user owns every queue: its owner bits decide.
      const want = access === O.RDONLY ? 0o400 : access === O.WRONLY ? 0o200 : 0o600;
      if ((q.mode & want) !== want) throw new Errno(E.EACCES);
    } else {
      if (!(oflag & O.CREAT)) throw new Errno(E.ENOENT);
      const maxmsg = attr?.maxmsg ?? MSG_DEFAULT, msgsize = attr?.msgsize ?? MSGSIZE_DEFAULT;
      if (maxmsg <= 0 || msgsize <= 0 || maxmsg > MSG_MAX || msgsize > MSGSIZE_MAX) throw new Errno(E.EINVAL);
      if (this.live.size >= MQ_QUEUES_MAX) throw new Errno(E.ENOSPC);
      q = new MessageQueue(maxmsg, msgsize, mode & 0o777, this.nextIno++);
      let used = 0;
      for (const o of this.live) used += o.cost;
      if (used + q.cost > MQ_BYTES_MAX) throw new Errno(E.EMFILE);
      this.names.set(name, q);
      this.live.add(q);
    }
    return new MqFile(this, q, name, access | (oflag & O.NONBLOCK));
  }

  unlink(name: string): void {
    const q = this.names.get(name);
    if (!q) throw new Errno(E.ENOENT);
    this.names.delete(name);
    this.release(q);
  }

  /** A queue with no name left and no open file is gone (its bytes no longer count). */
  release(q: MessageQueue): void {
    if (q.opens === 0 && ![...this.names.values()].includes(q)) this.live.delete(q);
  }

}

/**
 * An open message queue (mqd_t). Reads give Linux's status line; write and seek are not for it.
 * The queue's own calls go through send and receive.
 */
export class MqFile implements OpenFile {
  readonly hostFd = null;
  readonly path: string;
  private closed = false;
  /** How far reads of the status line have got. */
  private pos = 0;
  constructor(private readonly ns: MqNamespace, readonly queue: MessageQueue, name: string, public statusFlags: number) {
    this.path = `/${name}`;
    queue.opens++;
  }

  get readable(): boolean { return (this.statusFlags & O.ACCMODE) !== O.WRONLY; }
  get writable(): boolean { return (this.statusFlags & O.ACCMODE) !== O.RDONLY; }

  /**
   * mq_timedsend: EMSGSIZE past msgsize; a full queue is EAGAIN for O_NONBLOCK, else a wait
   * (until the deadline, ETIMEDOUT). The first message into an empty queue that no receiver
   * waits for ends the registration: returned, for the caller to send its signal.
   */
  send(data: Buffer, prio: number, deadline: { at: number } | null): MqNotify | null {
    const q = this.queue;
    if (!this.writable) throw new Errno(E.EBADF);
    if (data.length > q.msgsize) throw new Errno(E.EMSGSIZE);
    if (q.messages.length >= q.maxmsg) this.wait(() => q.messages.length < q.maxmsg, deadline, 'it sends to a full message queue');
    let i = q.messages.findIndex((m) => m.prio < prio);
    if (i < 0) i = q.messages.length;
    q.messages.splice(i, 0, { prio, data: Buffer.from(data) });
    q.bytes += data.length;
    if (q.messages.length !== 1 || q.receivers !== 0 || !q.notify) return null;
    const n = q.notify;
    q.notify = null;
    return n;
  }

  /** mq_timedreceive: the oldest message of the highest priority; EMSGSIZE when len is below msgsize. */
  receive(len: number, deadline: { at: number } | null): { data: Buffer; prio: number } {
    const q = this.queue;
    if (!this.readable) throw new Errno(E.EBADF);
    if (len < q.msgsize) throw new Errno(E.EMSGSIZE);
    if (q.messages.length === 0) {
      q.receivers++;
      try {
        this.wait(() => q.messages.length > 0, deadline, 'it receives from an empty message queue');
      } finally {
        q.receivers--;
      }
    }
    const m = q.messages.shift()!;
    q.bytes -= m.data.length;
    return m;
  }

  private wait(ready: () => boolean, deadline: { at: number } | null, what: string): void {
    if (ready()) return;
    if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
    if (deadline && deadline.at <= performance.now()) throw new Errno(E.ETIMEDOUT);
    throw new WouldBlock(what, ready, deadline ? { at: deadline.at, result: () => -E.ETIMEDOUT } : undefined);
  }

  /** Linux's status line: bytes queued, and the registration (how, which signal, whose). */
  status(): Buffer {
    const q = this.queue;
    const n = q.notify;
    const pad = (v: number, w: number) => String(v).padEnd(w);
    return Buffer.from(`QSIZE:${pad(q.bytes, 10)} NOTIFY:${pad(n ? n.notify : 0, 5)} SIGNO:${pad(n && n.notify === SIGEV_SIGNAL ? n.signal : 0, 5)} ` +
      `NOTIFY_PID:${pad(n ? n.process.pid : 0, 6)}\n`);
  }

  read(buf: Buffer): number {
    const text = this.status();
    const n = Math.max(0, Math.min(buf.length, text.length - this.pos));
    text.copy(buf, 0, this.pos, this.pos + n);
    this.pos += n;
    return n;
  }
  write(): number { throw new Errno(E.EINVAL); }
  pread(): number { throw new Errno(E.EINVAL); }
  pwrite(): number { throw new Errno(E.EINVAL); }
  seek(offset: bigint, whence: number): number {
    if (whence !== 0 || offset < 0n) throw new Errno(E.EINVAL);
    this.pos = Number(offset);
    return this.pos;
  }
  stat(out: Buffer): void {
    out.fill(0, 0, 144);
    out.writeBigUInt64LE(BigInt(this.queue.ino), STAT.ino);
    out.writeBigUInt64LE(1n, STAT.nlink);
    out.writeUInt32LE(S_IFREG | this.queue.mode, STAT.mode);
    out.writeUInt32LE(GUEST_UID, STAT.uid);
    out.writeBigInt64LE(BigInt(this.status().length), STAT.size);
    out.writeBigInt64LE(4096n, STAT.blksize);
  }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  pollMask(): number {
    const q = this.queue;
    return (q.messages.length > 0 ? POLLIN | POLLRDNORM : 0) | (q.messages.length < q.maxmsg ? POLLOUT | POLLWRNORM : 0);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.opens--;
    this.ns.release(this.queue);
  }
}
