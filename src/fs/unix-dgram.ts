// socket(AF_UNIX, SOCK_DGRAM): named datagram sockets between the processes of one sandbox
// (syslog-style servers, sd_notify-style notifications, python's socket module). A socket binds
// a path or an abstract name in the sandbox's own table (UnixNames, shared with the stream
// sockets of unix-socket.ts); sendto names the receiver, or connect sets a default one. Each
// message is kept whole in the receiver's queue with the sender's name (recvfrom's address),
// and a receive that is too small drops the rest (MSG_TRUNC). A receiver's queue holds at most
// MAX_QUEUED messages and QUEUE_BYTES bytes: a sender then waits, or gets EAGAIN. A name no
// socket of the sandbox is bound to is ECONNREFUSED: a send never reaches a host socket that a
// grant shows. As on Linux, a socket connected to another only takes messages from that one
// (EPERM for the others). Descriptors are not passed on these (EOPNOTSUPP).
import { E, Errno, O } from '../abi/linux.js';
import { POLLIN, POLLOUT, WouldBlock, type OpenFile } from './open-file.js';
import { MAX_RECORD, type Rights } from './socket-pair.js';
import { NamedSocket, type UnixNames } from './unix-socket.js';

/** Messages that may wait at a receiver (Linux's net.unix.max_dgram_qlen), and their bytes (its default receive buffer). */
const MAX_QUEUED = 512;
const QUEUE_BYTES = 212992;

/** A named datagram socket; its peerAddress is the default receiver (connect). */
export class UnixDatagram extends NamedSocket implements OpenFile {
  private readonly queue: Array<{ data: Buffer; from: string | null; pid: number }> = [];
  private bytes = 0;
  /** Whether the last receive dropped part of its message (MSG_TRUNC), and who sent it. */
  truncated = false;
  lastFrom: string | null = null;
  /** SO_PEERCRED's pid: the sender of the last message taken (0 before any). */
  peerPid = 0;

  constructor(statusFlags: number, names: UnixNames, private readonly pid: number) {
    super(statusFlags, names);
  }

  get connected(): boolean { return this.peerAddress !== null; }

  /** The socket bound at name, if it is a datagram socket that may take this one's messages (else refused's answer). */
  private receiver(name: string): UnixDatagram | null {
    const r = this.names.get(name);
    if (!(r instanceof UnixDatagram) || r.closed) return this.refused(E.ECONNREFUSED);
    if (r.peerAddress !== null && r.peerAddress !== this.address && r !== this) return this.refused(E.EPERM);
    return r;
  }

  /** No socket may take a message sent to a name: the error (here), or null to drop it (UDP). */
  protected refused(errno: number): null {
    throw new Errno(errno);
  }

  /** Before a send from a socket with no name: nothing here (an unbound sender has none); UDP takes a port. */
  protected beforeSend(): void {}

  /** connect: the default receiver (checked now, as Linux); an AF_UNSPEC address would undo it (not offered). */
  connect(name: string): void {
    this.receiver(name);
    this.setPeer(name);
  }

  private fits(r: UnixDatagram, n: number): boolean {
    return r.closed || (r.queue.length < MAX_QUEUED && r.bytes + n <= QUEUE_BYTES);
  }

  /** Send one message to name (null: the connected receiver; ENOTCONN without one). */
  sendTo(buf: Buffer, name: string | null, nonblock: boolean): number {
    const to = name ?? this.peerAddress;
    if (to === null) throw new Errno(E.ENOTCONN);
    if (buf.length > MAX_RECORD) throw new Errno(E.EMSGSIZE);
    if (this.address === null) this.beforeSend();
    const r = this.receiver(to);
    if (!r) return buf.length;
    if (!this.fits(r, buf.length)) {
      if (nonblock || this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it sends to a full datagram socket', () => this.fits(r, buf.length));
    }
    if (r.closed) throw new Errno(E.ECONNREFUSED);
    r.queue.push({ data: Buffer.from(buf), from: this.shownAddress, pid: this.pid });
    r.arrivals++;
    r.bytes += buf.length;
    return buf.length;
  }

  send(buf: Buffer, nonblock: boolean): number { return this.sendTo(buf, null, nonblock); }

  /**
   * Take one message: as much as buf holds (the rest is dropped: truncated), and its sender
   * (lastFrom); or (peek) the same, leaving the message first in the queue.
   */
  receive(buf: Buffer, nonblock: boolean, peek = false): number {
    const m = peek ? this.queue[0] : this.queue.shift();
    if (!m) {
      if (nonblock || this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it receives on a datagram socket', () => this.queue.length > 0 || this.closed);
    }
    if (!peek) this.bytes -= m.data.length;
    this.truncated = m.data.length > buf.length;
    this.lastFrom = m.from;
    this.peerPid = m.pid;
    return m.data.copy(buf, 0, 0, Math.min(buf.length, m.data.length));
  }

  receiveDropping(buf: Buffer, nonblock: boolean): number { return this.receive(buf, nonblock); }
  shutdown(): void {}
  checkRights(): void { throw new Errno(E.EOPNOTSUPP); }
  sendRights(_r: Rights, _bytes: number): void { throw new Errno(E.EOPNOTSUPP); }
  takeRights(): Rights | undefined { return undefined; }
  read(buf: Buffer): number { return this.receive(buf, false); }
  write(buf: Buffer): number { return this.send(buf, false); }
  /** FIONREAD: the size of the next message. */
  available(): number { return this.queue[0]?.data.length ?? 0; }

  /** Messages that came: events for edge-triggered watchers of input (OpenFile.edges); room for output is not counted. */
  private arrivals = 0;
  edges(events: number): number | null { return events & POLLOUT ? null : this.arrivals; }

  /** Readable with a message waiting; writable unless its connected receiver is full. */
  pollMask(): number {
    let mask = this.queue.length > 0 ? POLLIN : 0;
    const r = this.peerAddress !== null ? this.names.get(this.peerAddress) : undefined;
    if (!(r instanceof UnixDatagram) || this.fits(r, 1)) mask |= POLLOUT;
    return mask;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.bytes = 0;
    this.unbind();
  }
}
