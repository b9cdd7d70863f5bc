// socket(AF_UNIX, SOCK_STREAM): named stream sockets between the processes of one sandbox. A
// server binds a path (a socket file made in a writable grant, as Linux makes one) or an abstract
// name, listens and accepts; a client connects by that name. The names live in the sandbox's own
// table (UnixNames): a connect reaches only a socket that a process of the same sandbox bound,
// never a host socket that a grant happens to show (ECONNREFUSED). A connection is a socketpair
// (src/fs/socket-pair.ts): two pipes crossed, which pass descriptors too (SCM_RIGHTS). Named
// datagram sockets share the names (src/fs/unix-dgram.ts). No credentials.
import { E, Errno, O } from '../abi/linux.js';
import { POLLIN, POLLOUT, streamStat, WouldBlock, type OpenFile, type PipeBudget } from './open-file.js';
import { S_IFSOCK, SocketEnd, type Rights } from './socket-pair.js';

/** The names bound in one sandbox (to stream or datagram sockets): paths (absolute guest paths) and abstract names ('\0' first). */
export type UnixNames = Map<string, NamedSocket>;

/** Connections a listener queues at most (Linux's somaxconn default). */
const MAX_BACKLOG = 4096;
let unixCounter = 0;

/** What the sockets of socket(2) share: a name in the sandbox's table, a peer's name, no seeking. */
export abstract class NamedSocket {
  readonly hostFd = null;
  readonly path: string;
  private readonly ino = 0x7a00_0000 + ++unixCounter;
  /** The name it is bound to (a path made absolute: the key of names), or null. */
  address: string | null = null;
  /** That name as bind had it (getsockname): a relative path stays relative, as on Linux. */
  shownAddress: string | null = null;
  /** The peer's name (a key of names), once connected. */
  peerAddress: string | null = null;
  /** The peer's name as its bind had it (getpeername). */
  shownPeerAddress: string | null = null;
  protected closed = false;

  /** Not yet closed: its name is still taken. */
  get live(): boolean { return !this.closed; }

  constructor(public statusFlags: number, protected readonly names: UnixNames) {
    this.path = `socket:[${this.ino}]`;
  }

  /**
   * bind: the name must be free in the sandbox (the caller made the socket file for a path);
   * shown is the name as the program gave it.
   */
  bind(name: string, shown = name): void {
    if (this.address !== null) throw new Errno(E.EINVAL);
    const there = this.names.get(name);
    if (there && !there.closed) throw new Errno(E.EADDRINUSE);
    this.names.set(name, this);
    this.address = name;
    this.shownAddress = shown;
  }

  /** Connected to the socket bound at name. */
  protected setPeer(name: string): void {
    this.peerAddress = name;
    this.shownPeerAddress = this.names.get(name)?.shownAddress ?? name;
  }

  /** Its name is free again (at close). */
  protected unbind(): void {
    if (this.address !== null && this.names.get(this.address) === this) this.names.delete(this.address);
  }

  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void { streamStat(out, this.ino, S_IFSOCK | 0o777); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
}

export class UnixSocket extends NamedSocket implements OpenFile {
  /** The connection, once connected or accepted. */
  private conn: SocketEnd | null = null;
  /** The pid that called listen (the credentials a client sees). */
  private listenerPid = 0;
  /** Listening: the connections not yet accepted (with the socket that connected), and how many may wait. */
  private backlog: Array<{ end: SocketEnd; client: UnixSocket }> | null = null;
  private backlogMax = 0;

  get listening(): boolean { return this.backlog !== null; }
  /** SO_PEERCRED's pid: the other end's process, 0 when not connected. */
  get peerPid(): number { return this.conn?.peerPid ?? 0; }
  get senderPid(): number { return this.conn?.senderPid ?? 0; }
  noteSender(pid: number): void { this.conn?.noteSender(pid); }
  get connected(): boolean { return this.conn !== null; }

  override bind(name: string, shown = name): void {
    if (this.conn) throw new Errno(E.EINVAL);
    super.bind(name, shown);
  }

  listen(backlog: number, pid: number): void {
    if (this.conn) throw new Errno(E.EINVAL);
    if (this.address === null) this.autobind();
    this.backlog ??= [];
    this.listenerPid = pid;
    this.backlogMax = Math.max(1, Math.min(backlog, MAX_BACKLOG));
  }

  /** connect (by the process pid) to the socket bound at name (ECONNREFUSED when none listens there). */
  connect(name: string, budget: PipeBudget, pid: number): void {
    if (this.conn) throw new Errno(E.EISCONN);
    if (this.backlog) throw new Errno(E.EINVAL);
    const server = this.names.get(name);
    if (!(server instanceof UnixSocket) || server.closed || !server.backlog) throw new Errno(E.ECONNREFUSED);
    if (server.backlog.length >= server.backlogMax) {
      if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it connects to a full listener', () => server.closed || !server.backlog || server.backlog.length < server.backlogMax);
    }
    const [mine, theirs] = SocketEnd.pair(0, budget);
    mine.peerPid = server.listenerPid;
    theirs.peerPid = pid;
    server.backlog.push({ end: theirs, client: this });
    server.arrivals++;
    this.conn = mine;
    this.setPeer(name);
  }

  /** listen without a name: Linux would give an abstract one; kvmbox asks for a name (EINVAL). */
  protected autobind(): void {
    throw new Errno(E.EINVAL);
  }

  /** The socket accept gives for a connection from client: a new one of this kind, on this one's name. */
  protected acceptedSocket(flags: number, _client: UnixSocket): UnixSocket {
    const s = new UnixSocket(O.RDWR | flags, this.names);
    s.address = this.address;
    s.shownAddress = this.shownAddress;
    return s;
  }

  /** accept: the next connection, as a connected socket with flags (O_NONBLOCK). */
  accept(flags: number): UnixSocket {
    const q = this.backlog;
    if (!q) throw new Errno(E.EINVAL);
    const next = q.shift();
    if (!next) {
      if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it waits for a connection', () => this.closed || (this.backlog?.length ?? 0) > 0);
    }
    const s = this.acceptedSocket(flags & O.NONBLOCK, next.client);
    s.conn = next.end;
    return s;
  }

  private stream(): SocketEnd {
    if (!this.conn) throw new Errno(E.ENOTCONN);
    return this.conn;
  }

  receive(buf: Buffer, nonblock: boolean, peek = false): number {
    return this.stream().receive(buf, nonblock || (this.statusFlags & O.NONBLOCK) !== 0, peek);
  }

  receiveDropping(buf: Buffer, nonblock: boolean): number {
    return this.stream().receiveDropping(buf, nonblock || (this.statusFlags & O.NONBLOCK) !== 0);
  }

  send(buf: Buffer, nonblock: boolean): number {
    return this.stream().send(buf, nonblock || (this.statusFlags & O.NONBLOCK) !== 0);
  }

  shutdown(how: number): void { this.stream().shutdown(how); }
  sendRights(r: Rights, bytes: number): void { this.stream().sendRights(r, bytes); }
  checkRights(n: number): void { this.stream().checkRights(n); }
  takeRights(): Rights | undefined { return this.conn?.takeRights(); }
  reserve(want: number): number { return this.stream().reserve(want); }
  read(buf: Buffer): number { return this.receiveDropping(buf, false); }
  write(buf: Buffer): number { return this.send(buf, false); }
  available(): number { return this.conn?.available() ?? 0; }

  /** Connections that came to this listener: its events for edge-triggered watchers. */
  private arrivals = 0;
  /** OpenFile.edges: a connection's are its socketpair end's, a listener's its arrivals; none before either. */
  edges(events: number): number | null {
    if (this.conn) return this.conn.edges(events);
    if (this.backlog) return events & POLLOUT ? null : this.arrivals;
    return null;
  }

  /** A listener is readable with a connection waiting; a connection as its socketpair end. */
  pollMask(): number {
    if (this.conn) return this.conn.pollMask();
    if (this.backlog) return this.backlog.length > 0 ? POLLIN : 0;
    return POLLOUT;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn?.close();
    for (const { end } of this.backlog ?? []) end.close();
    this.backlog = null;
    this.unbind();
  }
}
