// socketpair(AF_UNIX, SOCK_STREAM): two connected stream sockets, made of two pipes crossed (each
// end reads one pipe and writes the other). What event loops use them for: a self-pipe that
// another thread writes a byte to (asyncio's), a stream between processes after fork. No
// addresses: kvmbox has no network. SOCK_SEQPACKET and SOCK_DGRAM pairs keep message boundaries
// (a record of each send's length at the receiving end: a receive takes one message, and what
// does not fit its buffer is dropped, MSG_TRUNC); Rust's std spawns children with a SOCK_SEQPACKET
// pair. A datagram pair has no end: with its peer gone a receive waits (EAGAIN when
// non-blocking) and a send is refused (ECONNREFUSED). Descriptors can be passed (SCM_RIGHTS): each
// sendmsg's files wait at the other end, held, with the bytes of that sendmsg, as on Linux: a
// read stops at the end of those bytes, and once it has read one of them the files are its
// recvmsg's to take (a plain read, recv or readv closes them); at most MAX_IN_FLIGHT wait at
// one end.
import { E, Errno, O } from '../abi/linux.js';
import { PipeEnd, POLLHUP, POLLIN, POLLOUT, streamStat, WouldBlock, type FdTable, type OpenFile, type PipeBudget } from './open-file.js';

/** The files of one SCM_RIGHTS message in flight, and the fd table whose references hold them. */
export interface Rights { files: OpenFile[]; holder: FdTable }

/** Descriptors that may wait at one end (ETOOMANYREFS beyond): a sender cannot grow the host's heap without bound. */
const MAX_IN_FLIGHT = 1024;
/** The largest message of a record socket (Linux's default send buffer less its overhead): EMSGSIZE beyond. */
export const MAX_RECORD = 212960;
/**
 * Messages that may wait at a record socket's receiving end (Linux's net.unix.max_dgram_qlen):
 * an empty message holds no byte, and without this limit a loop of them would grow the host's
 * record of lengths without end. A send past it waits, or gets EAGAIN.
 */
const MAX_QUEUED_MESSAGES = 512;
/** Socket types (socket(2)): bytes, or messages kept whole. */
export const SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_SEQPACKET = 5;

export const S_IFSOCK = 0o140000;

/** Close rights nothing will receive. */
export function dropRights(r: Rights): void {
  for (const f of r.files) r.holder.release(f);
}

export class SocketEnd implements OpenFile {
  readonly hostFd = null;
  readonly path: string;
  /** For shutdown(2): no more reads (SHUT_RD) or writes (SHUT_WR) through this end. */
  private readShut = false;
  private writeShut = false;
  private closed = false;
  private peer: SocketEnd | null = null;
  /** The pid of the process at the other end, as SO_PEERCRED gives it (the creator's for socketpair); 0 if unknown. */
  peerPid = 0;
  /** The pid of the process that last sent to this end through sendmsg, sendto or send (SCM_CREDENTIALS); 0 before. */
  senderPid = 0;
  /** Descriptors sent to this end, oldest first, with the stream positions [at, end) of the bytes they came with. */
  private readonly inbox: Array<{ rights: Rights; at: number; end: number }> = [];
  /** Bytes this end has sent, and received: the positions the inbox counts in. */
  private sentBytes = 0;
  private receivedBytes = 0;
  /** Rights whose bytes a read has reached, until recvmsg takes them or the read drops them. */
  private due: Rights | undefined;
  /** A record socket's messages waiting at this end, their lengths oldest first; null for a stream. */
  private readonly records: number[] | null;
  /** The last receive dropped part of its message (recvmsg's MSG_TRUNC). */
  truncated = false;

  private constructor(private readonly rx: PipeEnd, private readonly tx: PipeEnd, public statusFlags: number, ino: number,
    /** SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM. */
    readonly type: number) {
    this.path = `socket:[${ino}]`;
    this.records = type === SOCK_STREAM ? null : [];
  }

  /** Whether messages keep their boundaries (SOCK_SEQPACKET, SOCK_DGRAM). */
  get keepsMessages(): boolean { return this.records !== null; }

  /** The two ends; flags: O_NONBLOCK (SOCK_NONBLOCK). The pipes count in the sandbox's pipe budget. */
  static pair(flags: number, budget: PipeBudget, type = SOCK_STREAM): [SocketEnd, SocketEnd] {
    const [aIn, bOut] = PipeEnd.create(0, budget);
    let bIn: PipeEnd, aOut: PipeEnd;
    try {
      [bIn, aOut] = PipeEnd.create(0, budget);
    } catch (e) {
      aIn.close();
      bOut.close();
      throw e;
    }
    const nb = flags & O.NONBLOCK;
    const ino = 0x7800_0000 + ++socketCounter;
    const a = new SocketEnd(aIn, aOut, O.RDWR | nb, ino, type), b = new SocketEnd(bIn, bOut, O.RDWR | nb, ino + 1, type);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  /** The process pid sends through this end now: the other end's credentials name it. */
  noteSender(pid: number): void {
    if (this.peer) this.peer.senderPid = pid;
  }

  /** Before a send with n descriptors: ETOOMANYREFS when the other end holds too many already. */
  checkRights(n: number): void {
    const waiting = this.peer ? this.peer.inbox.reduce((sum, r) => sum + r.rights.files.length, 0) + (this.peer.due?.files.length ?? 0) : 0;
    if (waiting + n > MAX_IN_FLIGHT) throw new Errno(E.ETOOMANYREFS);
  }

  /** Pass rights to the other end with the `bytes` bytes just sent; dropped if it is gone. */
  sendRights(r: Rights, bytes: number): void {
    if (this.peer && !this.peer.closed) this.peer.inbox.push({ rights: r, at: this.sentBytes - bytes, end: this.sentBytes });
    else dropRights(r);
  }

  /** The rights whose bytes the reads since the last call reached, if any (the caller installs or drops them). */
  takeRights(): Rights | undefined {
    const r = this.due;
    this.due = undefined;
    return r;
  }

  /**
   * recvmsg's read: nonblock for this call alone (MSG_DONTWAIT) or by the file's O_NONBLOCK. It
   * stops at the end of the bytes that came with rights (then 0 until takeRights), as Linux
   * ends a read at a message with descriptors.
   */
  receive(buf: Buffer, nonblock: boolean, peek = false): number {
    if (this.readShut || this.due) return 0;
    if (this.records) return this.receiveMessage(buf, nonblock, peek);
    this.rx.statusFlags = O.RDONLY | (nonblock || this.statusFlags & O.NONBLOCK ? O.NONBLOCK : 0);
    const head = this.inbox[0];
    const n = this.rx.readOrPeek(head ? buf.subarray(0, Math.max(1, head.end - this.receivedBytes)) : buf, peek);
    if (peek) return n;
    this.receivedBytes += n;
    if (head && this.receivedBytes > head.at) this.due = this.inbox.shift()!.rights;
    return n;
  }

  /** A record socket's receive: one whole message, the part past buf dropped (truncated); or (peek) a copy of it, left in place. */
  private receiveMessage(buf: Buffer, nonblock: boolean, peek: boolean): number {
    const records = this.records!;
    if (records.length === 0) {
      // The peer is gone: the end of a seqpacket stream (a datagram pair has none).
      const ended = () => this.type !== SOCK_DGRAM && (this.rx.pollMask() & POLLHUP) !== 0;
      if (ended()) return 0;
      if (nonblock || this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it receives on a socket that only it could send to', () => records.length > 0 || ended());
    }
    const len = peek ? records[0]! : records.shift()!;
    const take = Math.min(len, buf.length);
    this.rx.statusFlags = O.RDONLY | O.NONBLOCK;
    if (peek) {
      this.truncated = len > take;
      return take === 0 ? 0 : this.rx.readOrPeek(buf.subarray(0, take), true);
    }
    // The message's bytes are all in the pipe: its record was made after they were written.
    let n = 0;
    while (n < take) n += this.rx.read(buf.subarray(n, take));
    for (let left = len - take; left > 0;) left -= this.rx.read(Buffer.alloc(Math.min(left, 65536)));
    this.truncated = len > take;
    this.receivedBytes += len;
    const head = this.inbox[0];
    if (head && this.receivedBytes > head.at) this.due = this.inbox.shift()!.rights;
    return n;
  }

  /** read, readv, recv: as receive, and rights their bytes came with are closed (nothing takes them). */
  receiveDropping(buf: Buffer, nonblock: boolean): number {
    const n = this.receive(buf, nonblock);
    const r = this.takeRights();
    if (r) dropRights(r);
    return n;
  }

  /** send: EPIPE once the peer cannot read any more (the caller raises SIGPIPE unless MSG_NOSIGNAL). */
  send(buf: Buffer, nonblock: boolean): number {
    if (this.writeShut) throw new Errno(E.EPIPE);
    if (this.records) return this.sendMessage(buf, nonblock);
    this.tx.statusFlags = O.WRONLY | (nonblock || this.statusFlags & O.NONBLOCK ? O.NONBLOCK : 0);
    const n = this.tx.write(buf);
    this.sentBytes += n;
    return n;
  }

  /** A record socket's send: the whole message or nothing (EMSGSIZE past MAX_RECORD). */
  private sendMessage(buf: Buffer, nonblock: boolean): number {
    const peer = this.peer;
    if (!peer || peer.closed) throw new Errno(this.type === SOCK_DGRAM ? E.ECONNREFUSED : E.EPIPE);
    if (buf.length > MAX_RECORD) throw new Errno(E.EMSGSIZE);
    // The pipe grows to hold a message larger than its capacity (within the sandbox's budget).
    if (buf.length > this.tx.capacity) {
      try {
        this.tx.resize(Math.ceil(buf.length / 4096) * 4096);
      } catch {
        throw new Errno(E.ENOBUFS);
      }
    }
    const fits = () => this.tx.room >= buf.length && peer.records!.length < MAX_QUEUED_MESSAGES;
    if (!fits()) {
      if (nonblock || this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it sends on a full socket that only it could drain', () => peer.closed || fits());
    }
    this.tx.statusFlags = O.WRONLY | O.NONBLOCK;
    if (buf.length > 0) this.tx.write(buf);
    this.sentBytes += buf.length;
    peer.records!.push(buf.length);
    return buf.length;
  }

  /** Events for edge-triggered watchers (OpenFile.edges): what came in, room made on the way out, and shutdowns. */
  edges(events: number): number {
    return (events & POLLIN ? this.rx.edges(POLLIN) : 0) + (events & POLLOUT ? this.tx.edges(POLLOUT) : 0) + this.shutdowns;
  }
  private shutdowns = 0;

  /** shutdown(2): how is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2). */
  shutdown(how: number): void {
    if (how < 0 || how > 2) throw new Errno(E.EINVAL);
    this.shutdowns++;
    if (how !== 1 && !this.readShut) this.readShut = true;
    if (how !== 0 && !this.writeShut) {
      this.writeShut = true;
      this.tx.close(); // the peer reads the end of the stream
    }
  }

  reserve(want: number): number {
    if (this.writeShut) throw new Errno(E.EPIPE);
    this.tx.statusFlags = O.WRONLY | (this.statusFlags & O.NONBLOCK);
    return this.tx.reserve(want);
  }

  read(buf: Buffer): number { return this.receiveDropping(buf, false); }
  write(buf: Buffer): number { return this.send(buf, false); }
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void { streamStat(out, Number(this.path.slice(8, -1)), S_IFSOCK | 0o777); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rx.close();
    this.tx.close();
    for (const r of this.inbox.splice(0)) dropRights(r.rights);
    const due = this.takeRights();
    if (due) dropRights(due);
  }
  /** Readable with bytes or at the stream's end (with POLLHUP once the peer is gone); writable while the peer's pipe has room. */
  pollMask(): number {
    const queueFull = this.records !== null && this.peer !== null && this.peer.records!.length >= MAX_QUEUED_MESSAGES;
    if (this.type === SOCK_DGRAM) return (this.records!.length ? POLLIN : 0) | (this.peer && !this.peer.closed && this.tx.room > 0 && !queueFull ? POLLOUT : 0);
    const rx = this.readShut ? POLLIN : this.rx.pollMask() | (this.records?.length ? POLLIN : 0);
    const peerGone = (rx & POLLHUP) !== 0;
    const tx = this.writeShut || peerGone || queueFull ? 0 : this.tx.pollMask() & POLLOUT;
    return (rx & POLLIN) | (peerGone ? POLLIN | POLLHUP : 0) | tx;
  }
  available(): number { return this.readShut ? 0 : this.rx.available(); }
}

let socketCounter = 0;
