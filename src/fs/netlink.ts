// socket(AF_NETLINK, SOCK_RAW or SOCK_DGRAM, NETLINK_ROUTE): the routing socket through which
// glibc's getifaddrs (Node's os.networkInterfaces, Python's socket.if_nameindex) asks the kernel
// for the network interfaces and their addresses. A sandbox has no network, so every dump request
// (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE...) is answered with an empty dump (NLMSG_DONE) and any
// other request with an error (NLMSG_ERROR, EOPNOTSUPP): the program sees no interfaces rather
// than failing to ask. The answers wait, one message each, until read; nothing else ever arrives.
import { E, Errno, O } from '../abi/linux.js';
import { POLLIN, POLLOUT, streamStat, WouldBlock, type OpenFile } from './open-file.js';
import { S_IFSOCK } from './socket-pair.js';

export const AF_NETLINK = 16;
export const NETLINK_ROUTE = 0;
const NLMSG_HDRLEN = 16;
const NLMSG_ERROR = 2, NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4, NLM_F_DUMP = 0x300;
/** Most answers that may wait unread (ENOBUFS beyond, as a full receive queue). */
const MAX_QUEUED = 256;

let netlinkCounter = 0;

export class NetlinkSocket implements OpenFile {
  readonly hostFd = null;
  readonly path: string;
  private readonly queue: Buffer[] = [];
  /** The last receive dropped part of its message (MSG_TRUNC). */
  truncated = false;

  /** portId: the socket's address (nl_pid), the process's pid as Linux gives the first socket. */
  constructor(public statusFlags: number, readonly portId: number, readonly type: number) {
    this.path = `socket:[${0x7a00_0000 + ++netlinkCounter}]`;
  }

  /** A send: each request in buf (a run of nlmsghdr) gets its answer queued. Returns buf's length. */
  request(buf: Buffer): number {
    let at = 0;
    while (at + NLMSG_HDRLEN <= buf.length) {
      const len = buf.readUInt32LE(at);
      if (len < NLMSG_HDRLEN || at + len > buf.length) break;
      const type = buf.readUInt16LE(at + 4), flags = buf.readUInt16LE(at + 6), seq = buf.readUInt32LE(at + 8);
      if (this.queue.length >= MAX_QUEUED) throw new Errno(E.ENOBUFS);
      if (flags & NLM_F_REQUEST && type >= 16) {
        if ((flags & NLM_F_DUMP) === NLM_F_DUMP) this.queue.push(this.message(NLMSG_DONE, NLM_F_MULTI, seq, Buffer.alloc(4)));
        else this.queue.push(this.error(-E.EOPNOTSUPP, buf.subarray(at, at + NLMSG_HDRLEN), seq));
      } else if (flags & NLM_F_ACK) {
        this.queue.push(this.error(-E.EOPNOTSUPP, buf.subarray(at, at + NLMSG_HDRLEN), seq));
      }
      at += (len + 3) & ~3;
    }
    return buf.length;
  }

  private error(errno: number, request: Buffer, seq: number): Buffer {
    const body = Buffer.alloc(4 + NLMSG_HDRLEN);
    body.writeInt32LE(errno, 0);
    request.copy(body, 4);
    return this.message(NLMSG_ERROR, 0, seq, body);
  }

  private message(type: number, flags: number, seq: number, body: Buffer): Buffer {
    const m = Buffer.alloc(NLMSG_HDRLEN + body.length);
    m.writeUInt32LE(m.length, 0);
    m.writeUInt16LE(type, 4);
    m.writeUInt16LE(flags, 6);
    m.writeUInt32LE(seq, 8);
    m.writeUInt32LE(this.portId, 12);
    body.copy(m, NLMSG_HDRLEN);
    return m;
  }

  /** One queued answer into buf (the part past it dropped: truncated); EAGAIN or a wait when there is none. */
  receive(buf: Buffer, nonblock: boolean): number {
    const m = this.queue.shift();
    if (!m) {
      if (nonblock || this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it reads a netlink socket with no answer pending', () => this.queue.length > 0);
    }
    const n = m.copy(buf, 0, 0, Math.min(m.length, buf.length));
    this.truncated = n < m.length;
    return n;
  }

  read(buf: Buffer): number { return this.receive(buf, false); }
  write(buf: Buffer): number { return this.request(buf); }
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void { streamStat(out, Number(this.path.slice(8, -1)), S_IFSOCK | 0o777); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void { this.queue.length = 0; }
  pollMask(): number { return (this.queue.length ? POLLIN : 0) | POLLOUT; }
  available(): number { return this.queue[0]?.length ?? 0; }
}
