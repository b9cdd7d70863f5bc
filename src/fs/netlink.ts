// socket(AF_NETLINK, SOCK_RAW or SOCK_DGRAM, NETLINK_ROUTE): the routing socket through which
// glibc's getifaddrs (Node's os.networkInterfaces, Python's socket.if_nameindex) asks the kernel
// for the network interfaces and their addresses. A sandbox has no network, only its own loopback
// (inet-socket.ts): RTM_GETLINK's dump gives `lo` (index 1, up), RTM_GETADDR's its 127.0.0.1/8
// and ::1/128, as a fresh network namespace with lo up, and RTM_GETLINK of lo by index or name
// answers it (ENODEV for any other); every other dump (RTM_GETROUTE...) is empty (NLMSG_DONE)
// and any other request an error (NLMSG_ERROR, EOPNOTSUPP). The answers wait,
// one message each, until read; nothing else ever arrives.
import { E, Errno, O } from '../abi/linux.js';
import { POLLIN, POLLOUT, streamStat, WouldBlock, type OpenFile } from './open-file.js';
import { S_IFSOCK } from './socket-pair.js';

export const AF_NETLINK = 16;
export const NETLINK_ROUTE = 0;
const NLMSG_HDRLEN = 16;
const NLMSG_ERROR = 2, NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4, NLM_F_DUMP = 0x300;
const RTM_NEWLINK = 16, RTM_GETLINK = 18, RTM_NEWADDR = 20, RTM_GETADDR = 22;
const AF_UNSPEC = 0, AF_INET = 2, AF_INET6 = 10, AF_PACKET = 17;
/** The sandbox's one interface, lo: its index, hardware type, MTU and flags (IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP). */
export const LO_INDEX = 1, ARPHRD_LOOPBACK = 772, LO_MTU = 65536;
export const LO_FLAGS = 0x1 | 0x8 | 0x40 | 0x10000;
const IFLA_ADDRESS = 1, IFLA_BROADCAST = 2, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_QDISC = 6, IFLA_TXQLEN = 13;
const IFLA_OPERSTATE = 16, IFLA_LINKMODE = 17, IFLA_GROUP = 27;
const IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_LABEL = 3, IFA_CACHEINFO = 6, IFA_FLAGS = 8;
/** lo's queue length, and IF_OPER_UNKNOWN: what Linux reports for it. */
export const LO_TXQLEN = 1000;
const IF_OPER_UNKNOWN = 0;
const IFA_F_PERMANENT = 0x80, RT_SCOPE_HOST = 254;

/** A routing attribute (struct rtattr and its value, padded to 4 bytes). */
function rtattr(type: number, value: Buffer): Buffer {
  const a = Buffer.alloc((4 + value.length + 3) & ~3);
  a.writeUInt16LE(4 + value.length, 0);
  a.writeUInt16LE(type, 2);
  value.copy(a, 4);
  return a;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return b;
}

/** RTM_NEWLINK of lo: struct ifinfomsg and its name, MTU and (zero) hardware addresses. */
function loLink(): Buffer {
  const info = Buffer.alloc(16);
  info.writeUInt16LE(ARPHRD_LOOPBACK, 2);
  info.writeInt32LE(LO_INDEX, 4);
  info.writeUInt32LE(LO_FLAGS, 8);
  return Buffer.concat([info, rtattr(IFLA_IFNAME, Buffer.from('lo\0')), rtattr(IFLA_TXQLEN, u32(LO_TXQLEN)),
    rtattr(IFLA_OPERSTATE, Buffer.from([IF_OPER_UNKNOWN])), rtattr(IFLA_LINKMODE, Buffer.from([0])), rtattr(IFLA_MTU, u32(LO_MTU)),
    rtattr(IFLA_GROUP, u32(0)), rtattr(IFLA_QDISC, Buffer.from('noqueue\0')),
    rtattr(IFLA_ADDRESS, Buffer.alloc(6)), rtattr(IFLA_BROADCAST, Buffer.alloc(6))]);
}

/** struct ifa_cacheinfo of an address that never expires (preferred and valid lifetimes infinite). */
const FOREVER = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);

/** RTM_NEWADDR of one of lo's addresses: struct ifaddrmsg, the address (and, for IPv4, its local and label), its flags and lifetimes. */
function loAddress(family: number): Buffer {
  const msg = Buffer.alloc(8);
  msg.writeUInt8(family, 0);
  msg.writeUInt8(family === AF_INET ? 8 : 128, 1);
  msg.writeUInt8(IFA_F_PERMANENT, 2);
  msg.writeUInt8(RT_SCOPE_HOST, 3);
  msg.writeInt32LE(LO_INDEX, 4);
  const tail = [rtattr(IFA_FLAGS, u32(IFA_F_PERMANENT)), rtattr(IFA_CACHEINFO, FOREVER)];
  if (family === AF_INET6) return Buffer.concat([msg, rtattr(IFA_ADDRESS, Buffer.from([...new Array<number>(15).fill(0), 1])), ...tail]);
  const ip = Buffer.from([127, 0, 0, 1]);
  return Buffer.concat([msg, rtattr(IFA_ADDRESS, ip), rtattr(IFA_LOCAL, ip), rtattr(IFA_LABEL, Buffer.from('lo\0')), ...tail]);
}
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
        if ((flags & NLM_F_DUMP) === NLM_F_DUMP) {
          // The request's family (rtgenmsg's first byte) picks which of lo's addresses to give.
          const family = len > NLMSG_HDRLEN ? buf.readUInt8(at + NLMSG_HDRLEN) : AF_UNSPEC;
          const any = family === AF_UNSPEC || family === AF_PACKET;
          if (type === RTM_GETLINK) this.queue.push(this.message(RTM_NEWLINK, NLM_F_MULTI, seq, loLink()));
          if (type === RTM_GETADDR) {
            for (const f of [AF_INET, AF_INET6]) if (any || family === f) this.queue.push(this.message(RTM_NEWADDR, NLM_F_MULTI, seq, loAddress(f)));
          }
          this.queue.push(this.message(NLMSG_DONE, NLM_F_MULTI, seq, Buffer.alloc(4)));
        } else if (type === RTM_GETLINK) {
          // One link, by index (ifinfomsg's) or by name (IFLA_IFNAME): lo, or ENODEV.
          if (this.namesLo(buf.subarray(at, at + len))) {
            this.queue.push(this.message(RTM_NEWLINK, 0, seq, loLink()));
            if (flags & NLM_F_ACK) this.queue.push(this.error(0, buf.subarray(at, at + NLMSG_HDRLEN), seq));
          } else {
            this.queue.push(this.error(-E.ENODEV, buf.subarray(at, at + NLMSG_HDRLEN), seq));
          }
        } else this.queue.push(this.error(-E.EOPNOTSUPP, buf.subarray(at, at + NLMSG_HDRLEN), seq));
      } else if (flags & NLM_F_ACK) {
        this.queue.push(this.error(-E.EOPNOTSUPP, buf.subarray(at, at + NLMSG_HDRLEN), seq));
      }
      at += (len + 3) & ~3;
    }
    return buf.length;
  }

  /** Whether an RTM_GETLINK request names lo: index 1, or no index and the name "lo". */
  private namesLo(req: Buffer): boolean {
    if (req.length < NLMSG_HDRLEN + 16) return false;
    const index = req.readInt32LE(NLMSG_HDRLEN + 4);
    if (index !== 0) return index === LO_INDEX;
    for (let at = NLMSG_HDRLEN + 16; at + 4 <= req.length;) {
      const alen = req.readUInt16LE(at), atype = req.readUInt16LE(at + 2);
      if (alen < 4 || at + alen > req.length) break;
      if (atype === IFLA_IFNAME) return req.subarray(at + 4, at + alen).toString('latin1').replace(/\0.*$/s, '') === 'lo';
      at += (alen + 3) & ~3;
    }
    return false;
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

  /**
   * One queued answer into buf (the part past it dropped: truncated); EAGAIN or a wait when there
   * is none. peek (MSG_PEEK) leaves it queued; whole (MSG_TRUNC) returns its whole length however
   * much fitted, as iproute2 asks to size its buffer.
   */
  receive(buf: Buffer, nonblock: boolean, peek = false, whole = false): number {
    const m = this.queue[0];
    if (!m) {
      if (nonblock || this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it reads a netlink socket with no answer pending', () => this.queue.length > 0);
    }
    if (!peek) this.queue.shift();
    const n = m.copy(buf, 0, 0, Math.min(m.length, buf.length));
    this.truncated = n < m.length;
    return whole ? m.length : n;
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
