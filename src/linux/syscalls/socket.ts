// Sockets. kvmbox gives no network. socketpair (src/fs/socket-pair.ts); named AF_UNIX sockets
// between the sandbox's processes: socket, bind, listen, accept, connect (src/fs/unix-socket.ts,
// unix-dgram.ts); AF_INET and AF_INET6 TCP and UDP on the sandbox's own loopback
// (src/fs/inet-socket.ts); send/recv, sendmsg/recvmsg with SCM_RIGHTS (descriptors passed on
// AF_UNIX; no credentials), shutdown, the common socket options; AF_NETLINK's route requests
// (src/fs/netlink.ts). Other families: EAFNOSUPPORT.
import { cStringOf, nameOf } from '../../abi/file-names.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { AT_FDCWD, E, Errno, O, S_IFMT, SIG, STAT, STAT_SIZE } from '../../abi/linux.js';
import { dropRights, MAX_RECORD, S_IFSOCK, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SocketEnd, type Rights } from '../../fs/socket-pair.js';
import { UnixDatagram } from '../../fs/unix-dgram.js';
import { WouldBlock, type OpenFile } from '../../fs/open-file.js';
import { UnixSocket } from '../../fs/unix-socket.js';
import {
  AF_INET, AF_INET6, asFamily, checkReachable, InetDatagram, InetStream, IPPROTO_TCP, IPPROTO_UDP, localAddress,
  SOCKADDR_IN6_MIN, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE, type InetAddress,
} from '../../fs/inet-socket.js';
import { AF_NETLINK, ARPHRD_LOOPBACK, LO_FLAGS, LO_INDEX, LO_MTU, LO_TXQLEN, NETLINK_ROUTE, NetlinkSocket } from '../../fs/netlink.js';
import * as ops from '../../fs/ops.js';
import { GUEST_GID, GUEST_UID } from '../../abi/abi.generated.js';
import { raise } from '../signals.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { int, movePieces, moveWhole, size, type SyscallGroup } from './args.js';
import { readTimespec } from './time.js';

const AF_UNIX = 1, SOCK_RAW = 3, SOL_NETLINK = 270;
const SOCK_TYPE_MASK = 0xf;
const SOCK_NONBLOCK = O.NONBLOCK, SOCK_CLOEXEC = O.CLOEXEC;
const MSG_OOB = 0x1, MSG_PEEK = 0x2, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
const SI_USER = 0;
/** Largest byte count one call moves (Linux's MAX_RW_COUNT). */
const MAX_RW_COUNT = 0x7ffff000;

/**
 * socket and socketpair's (domain, type, protocol), checked: AF_UNIX sockets of the kinds given.
 * Returns type (with SOCK_NONBLOCK and SOCK_CLOEXEC).
 */
/** A TCP or UDP socket (loopback, inet-socket.ts), or not. */
function isInet(s: unknown): s is InetStream | InetDatagram {
  return s instanceof InetStream || s instanceof InetDatagram;
}
function inetOf(s: unknown): InetStream | InetDatagram | null {
  return isInet(s) ? s : null;
}

function socketType(a: bigint[], kinds: readonly number[]): number {
  const domain = int(a[0]!), type = int(a[1]!), protocol = int(a[2]!);
  // socketpair has no IP kind (Linux: EOPNOTSUPP); socket's go to inetSocket.
  if (domain === AF_INET || domain === AF_INET6) throw new Errno(E.EOPNOTSUPP);
  if (domain !== AF_UNIX) throw new Errno(E.EAFNOSUPPORT);
  if (type & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) throw new Errno(E.EINVAL);
  // Named seqpacket sockets are not offered; socketpair's are (socket-pair.ts).
  if (!kinds.includes(type & SOCK_TYPE_MASK)) throw new Errno(E.EOPNOTSUPP);
  if (protocol !== 0) throw new Errno(E.EPROTONOSUPPORT);
  return type;
}

function socketpair(p: Process, a: bigint[]): number {
  const type = socketType(a, [SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM]);
  const out = p.userBuffer(a[3]!, 8, PROT_WRITE);
  const [x, y] = SocketEnd.pair(type & SOCK_NONBLOCK, p.limits.pipeBudget, type & SOCK_TYPE_MASK);
  x.peerPid = y.peerPid = p.pid;
  const [xfd, yfd] = p.fds.installPair(x, y, (type & SOCK_CLOEXEC) !== 0);
  out.writeInt32LE(xfd, 0);
  out.writeInt32LE(yfd, 4);
  return 0;
}

/** The netlink socket fd is, or null when it is another file. */
function netlinkOf(p: Process, fd: bigint): NetlinkSocket | null {
  const f = p.fds.get(int(fd));
  return f instanceof NetlinkSocket ? f : null;
}

/** A struct sockaddr_nl from the guest (bind, connect, sendto): the kernel's address (pid 0) or the socket's own. */
function checkNetlinkAddress(p: Process, n: NetlinkSocket, addr: bigint, len: number, peer: boolean): void {
  if (len < 12) throw new Errno(E.EINVAL);
  const b = p.userBuffer(addr, 12, PROT_READ);
  if (b.readUInt16LE(0) !== AF_NETLINK) throw new Errno(E.EINVAL);
  const pid = b.readUInt32LE(4);
  if (peer ? pid !== 0 : pid !== 0 && pid !== n.portId) throw new Errno(peer ? E.ECONNREFUSED : E.EADDRINUSE);
}

/** A struct sockaddr_nl of pid: the socket's own, or 0, the kernel's. */
function netlinkAddress(pid: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(AF_NETLINK, 0);
  b.writeUInt32LE(pid, 4);
  return b;
}

function socketOf(p: Process, fd: bigint): SocketEnd | UnixSocket | UnixDatagram {
  const f = p.fds.get(int(fd));
  if (!isDataSocket(f)) throw new Errno(E.ENOTSOCK);
  return f;
}

/** A socket that moves data: a socketpair end, a stream or a datagram socket (AF_UNIX, or TCP and UDP, their subclasses). */
function isDataSocket(f: OpenFile): f is SocketEnd | UnixSocket | UnixDatagram {
  return f instanceof SocketEnd || f instanceof UnixSocket || f instanceof UnixDatagram;
}

/** A socket that can have a name (bind, connect): a stream or a datagram socket of socket(2). */
function namedOf(p: Process, fd: bigint): UnixSocket | UnixDatagram {
  const f = socketOf(p, fd);
  if (f instanceof SocketEnd) throw new Errno(E.EINVAL); // a socketpair end is connected, with no name
  return f;
}

/** A named stream socket (listen, accept): a datagram socket has no connections (EOPNOTSUPP). */
function unixOf(p: Process, fd: bigint): UnixSocket {
  const f = namedOf(p, fd);
  if (f instanceof UnixDatagram) throw new Errno(E.EOPNOTSUPP);
  return f;
}

function newSocket(p: Process, a: bigint[]): number {
  if (int(a[0]!) === AF_NETLINK) {
    const type = int(a[1]!), protocol = int(a[2]!);
    if (type & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) throw new Errno(E.EINVAL);
    if ((type & SOCK_TYPE_MASK) !== SOCK_RAW && (type & SOCK_TYPE_MASK) !== SOCK_DGRAM) throw new Errno(E.ESOCKTNOSUPPORT);
    if (protocol !== NETLINK_ROUTE) throw new Errno(E.EPROTONOSUPPORT);
    return p.fds.install(new NetlinkSocket(O.RDWR | (type & SOCK_NONBLOCK), p.pid, type & SOCK_TYPE_MASK), (type & SOCK_CLOEXEC) !== 0);
  }
  if (int(a[0]!) === AF_INET || int(a[0]!) === AF_INET6) return inetSocket(p, a);
  const type = socketType(a, [SOCK_STREAM, SOCK_DGRAM]);
  const flags = O.RDWR | (type & SOCK_NONBLOCK);
  const s = (type & SOCK_TYPE_MASK) === SOCK_DGRAM ? new UnixDatagram(flags, p.kernel.unixNames, p.pid) : new UnixSocket(flags, p.kernel.unixNames);
  return p.fds.install(s, (type & SOCK_CLOEXEC) !== 0);
}

const IPPROTO_ICMP = 1, IPPROTO_ICMPV6 = 58;

/**
 * socket(AF_INET or AF_INET6): TCP (SOCK_STREAM, protocol 0 or IPPROTO_TCP) and UDP (SOCK_DGRAM,
 * 0 or IPPROTO_UDP) on the sandbox's loopback. Raw sockets need a privilege (EPERM), ping sockets
 * a group the user is not in (EACCES, Linux's default ping_group_range).
 */
function inetSocket(p: Process, a: bigint[]): number {
  const domain = int(a[0]!), type = int(a[1]!), protocol = int(a[2]!);
  if (type & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) throw new Errno(E.EINVAL);
  const kind = type & SOCK_TYPE_MASK, flags = O.RDWR | (type & SOCK_NONBLOCK);
  let s: InetStream | InetDatagram;
  if (kind === SOCK_RAW) throw new Errno(E.EPERM);
  if (kind === SOCK_STREAM && (protocol === 0 || protocol === IPPROTO_TCP)) s = new InetStream(domain, flags, p.kernel.unixNames);
  else if (kind === SOCK_DGRAM && (protocol === 0 || protocol === IPPROTO_UDP)) s = new InetDatagram(domain, flags, p.kernel.unixNames, p.pid);
  else if (kind === SOCK_DGRAM && (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6)) throw new Errno(E.EACCES);
  else if (kind === SOCK_STREAM || kind === SOCK_DGRAM) throw new Errno(E.EPROTONOSUPPORT);
  else throw new Errno(E.ESOCKTNOSUPPORT);
  return p.fds.install(s, (type & SOCK_CLOEXEC) !== 0);
}

/** A struct sockaddr_in or sockaddr_in6 from the guest, of the socket's family (else EAFNOSUPPORT). */
function inetAddress(p: Process, s: InetStream | InetDatagram, addr: bigint, len: number): InetAddress {
  if (len < 2 || len > 128) throw new Errno(E.EINVAL);
  const b = Buffer.from(p.userBuffer(addr, Math.min(len, SOCKADDR_IN6_SIZE), PROT_READ));
  if (b.readUInt16LE(0) !== s.family) throw new Errno(E.EAFNOSUPPORT);
  if (len < (s.family === AF_INET ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_MIN)) throw new Errno(E.EINVAL);
  const ip = s.family === AF_INET ? b.subarray(4, 8) : b.subarray(8, 24);
  return { family: s.family, ip: Buffer.from(ip), port: b.readUInt16BE(2) };
}

/** An address as a struct sockaddr_in or sockaddr_in6. */
function sockaddrIn(a: InetAddress): Buffer {
  const b = Buffer.alloc(a.family === AF_INET ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE);
  b.writeUInt16LE(a.family, 0);
  b.writeUInt16BE(a.port, 2);
  a.ip.copy(b, a.family === AF_INET ? 4 : 8);
  return b;
}

/** The name a datagram goes to (sendto, sendmsg's msg_name): a socket file or name, or a reachable port. */
function datagramTarget(p: Process, s: UnixDatagram, addr: bigint, len: number): string {
  if (!(s instanceof InetDatagram)) return peerName(p, addr, len);
  const to = inetAddress(p, s, addr, len);
  checkReachable(to);
  return s.nameOf(to);
}

/** The sender of the datagram last received, as a struct sockaddr (null: it has no name). */
function datagramSender(s: UnixDatagram): Buffer | null {
  if (s instanceof InetDatagram) {
    const from = s.lastSender;
    return from && sockaddrIn(from);
  }
  return s.lastFrom === null ? null : sockaddrUn(s.lastFrom);
}

const SUN_PATH_MAX = 108;

/**
 * A struct sockaddr_un from the guest: an abstract name ('\0' and its bytes) or a path, made
 * absolute (relative to the working directory). Returns the name, for a path its components, and
 * the name as the program gave it (shown by getsockname, as on Linux).
 */
function unixAddress(p: Process, addr: bigint, len: number): { name: string; comps: string[] | null; shown: string } {
  if (len < 2 || len > 2 + SUN_PATH_MAX) throw new Errno(E.EINVAL);
  const b = Buffer.from(p.userBuffer(addr, len, PROT_READ));
  if (b.readUInt16LE(0) !== AF_UNIX) throw new Errno(E.EAFNOSUPPORT);
  const raw = b.subarray(2);
  if (raw.length === 0) throw new Errno(E.EINVAL); // an autobound name is not offered
  if (raw[0] === 0) {
    const name = '\0' + raw.subarray(1).toString('latin1');
    return { name, comps: null, shown: name };
  }
  const nul = raw.indexOf(0);
  const path = nameOf(raw.subarray(0, nul < 0 ? raw.length : nul));
  if (path === '') throw new Errno(E.EINVAL);
  const comps = p.pathAt(AT_FDCWD, path);
  return { name: '/' + comps.join('/'), comps, shown: path };
}

/** Write a name as a struct sockaddr_un to (addr, *lenAddr). */
function putAddress(p: Process, addr: bigint, lenAddr: bigint, name: string | null): void {
  putSockaddr(p, addr, lenAddr, sockaddrUn(name));
}

/** A name as a struct sockaddr_un (null: the family alone, as for a socket with no name). */
function sockaddrUn(name: string | null): Buffer {
  const bytes = name === null ? Buffer.alloc(0) : name.startsWith('\0') ? Buffer.from(name, 'latin1') : cStringOf(name);
  const whole = Buffer.alloc(2 + bytes.length);
  whole.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(whole, 2);
  return whole;
}

/** Write a struct sockaddr to (addr, *lenAddr), as much as fits; *lenAddr gets its full length. */
function putSockaddr(p: Process, addr: bigint, lenAddr: bigint, whole: Buffer): void {
  if (addr === 0n || lenAddr === 0n) return;
  const lenBuf = p.userBuffer(lenAddr, 4, PROT_READ | PROT_WRITE);
  const room = lenBuf.readInt32LE(0);
  if (room < 0) throw new Errno(E.EINVAL);
  const n = Math.min(room, whole.length);
  if (n > 0) whole.copy(p.userBuffer(addr, n, PROT_WRITE), 0, 0, n);
  lenBuf.writeUInt32LE(whole.length, 0);
}

/** bind: a path gets its socket file (made as mknod makes it: EADDRINUSE when something is there). */
function bind(p: Process, a: bigint[]): number {
  const nl = netlinkOf(p, a[0]!);
  if (nl) {
    checkNetlinkAddress(p, nl, a[1]!, int(a[2]!), false);
    return 0;
  }
  const s = namedOf(p, a[0]!);
  if (isInet(s)) {
    s.bindInet(inetAddress(p, s, a[1]!, int(a[2]!)));
    return 0;
  }
  const { name, comps, shown } = unixAddress(p, a[1]!, int(a[2]!));
  if (s.address !== null) throw new Errno(E.EINVAL);
  if (comps) {
    try {
      ops.mknod(p, comps, S_IFSOCK | 0o777);
    } catch (e) {
      if (e instanceof Errno && e.errno === E.EEXIST) throw new Errno(E.EADDRINUSE);
      throw e;
    }
    // A new socket file: a name left by a socket whose file was unlinked is free again.
    p.kernel.unixNames.delete(name);
  }
  s.bind(name, shown);
  return 0;
}

/** The name of a peer (connect, sendto): a path must be a socket file (ENOENT, EACCES... as the path is). */
function peerName(p: Process, addr: bigint, len: number): string {
  const { name, comps } = unixAddress(p, addr, len);
  if (comps) {
    const st = Buffer.alloc(STAT_SIZE);
    ops.statPath(p.vfs, comps, true, st);
    if ((st.readUInt32LE(STAT.mode) & S_IFMT) !== S_IFSOCK) throw new Errno(E.ECONNREFUSED);
  }
  return name;
}

/** connect by name: only a socket a process of this sandbox bound there answers. */
/** TCP sockets whose non-blocking connect said EINPROGRESS, until the next connect. */
const connecting = new WeakSet<InetStream>();

function connect(p: Process, a: bigint[]): number {
  const nl = netlinkOf(p, a[0]!);
  if (nl) {
    checkNetlinkAddress(p, nl, a[1]!, int(a[2]!), true);
    return 0;
  }
  const s = namedOf(p, a[0]!);
  if (isInet(s)) {
    const to = inetAddress(p, s, a[1]!, int(a[2]!));
    checkReachable(to);
    if (!(s instanceof InetStream)) {
      s.connectInet(to);
      return 0;
    }
    // The connect after an EINPROGRESS one finds it done: 0 once, as on Linux, then EISCONN.
    if (connecting.delete(s)) return 0;
    s.connectInet(to, p.limits.pipeBudget, p.pid);
    // A non-blocking TCP connect is EINPROGRESS on Linux even over loopback, and programs wait
    // for POLLOUT and read SO_ERROR: here it is already connected, so both answer at once.
    if (!(s.statusFlags & O.NONBLOCK)) return 0;
    connecting.add(s);
    throw new Errno(E.EINPROGRESS);
  }
  const name = peerName(p, a[1]!, int(a[2]!));
  if (s instanceof UnixDatagram) s.connect(name);
  else s.connect(name, p.limits.pipeBudget, p.pid);
  return 0;
}

function accept(p: Process, a: bigint[], flags: number): number {
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) throw new Errno(E.EINVAL);
  const s = unixOf(p, a[0]!);
  if (a[1] !== 0n && a[2] !== 0n) p.userBuffer(a[2]!, 4, PROT_READ | PROT_WRITE); // checked before anything changes
  const c = s.accept(flags & SOCK_NONBLOCK);
  let fd: number;
  try {
    fd = p.fds.install(c, (flags & SOCK_CLOEXEC) !== 0);
  } catch (e) {
    c.close();
    throw e;
  }
  // An AF_UNIX client has no name (it did not bind one); a TCP client has its address.
  if (c instanceof InetStream) putSockaddr(p, a[1]!, a[2]!, sockaddrIn(c.remote!));
  else putAddress(p, a[1]!, a[2]!, null);
  return fd;
}

const SOL_SOCKET = 1;
const SO_REUSEADDR = 2, SO_TYPE = 3, SO_ERROR = 4, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_KEEPALIVE = 9, SO_LINGER = 13;
const SO_PASSCRED = 16, SO_PEERCRED = 17, SO_ACCEPTCONN = 30, SO_PROTOCOL = 38, SO_DOMAIN = 39;
/** What SO_SNDBUF and SO_RCVBUF report (Linux's default, 208 KiB). */
const SOCKET_BUFFER = 212992;

const IPPROTO_IPV6 = 41;
/**
 * Integer options of IP sockets that setsockopt keeps for getsockopt, keyed `level:name`, with
 * Linux's defaults. On the sandbox's loopback none changes what a program sees (no Nagle delay,
 * no keepalive probes, no hops): SO_REUSEADDR, SO_BROADCAST, SO_KEEPALIVE, SO_REUSEPORT; IP_TOS,
 * IP_TTL; IPV6_UNICAST_HOPS, IPV6_V6ONLY, IPV6_TCLASS; TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL,
 * TCP_KEEPCNT, TCP_DEFER_ACCEPT, TCP_QUICKACK, TCP_USER_TIMEOUT, TCP_FASTOPEN.
 */
const INET_OPTIONS = new Map<string, number>([
  ['1:2', 0], ['1:6', 0], ['1:9', 0], ['1:15', 0], ['0:1', 0], ['0:2', 64], ['41:16', 64], ['41:26', 0], ['41:67', 0],
  ['6:1', 0], ['6:4', 7200], ['6:5', 75], ['6:6', 9], ['6:9', 0], ['6:12', 1], ['6:18', 0], ['6:23', 0],
]);
/** Of those, the flags: getsockopt gives 0 or 1, whatever was set. */
const INET_FLAGS = new Set(['1:2', '1:6', '1:9', '1:15', '41:26', '6:1', '6:12']);

/** The key of an IP socket's option in INET_OPTIONS, or null when the socket has no such option. */
function inetOption(s: InetStream | InetDatagram, level: number, opt: number): string | null {
  const key = `${level}:${opt}`;
  if (!INET_OPTIONS.has(key)) return null;
  if (level === IPPROTO_TCP && !(s instanceof InetStream)) return null;
  if (level === IPPROTO_IPV6 && s.family !== AF_INET6) return null;
  return key;
}

function getsockopt(p: Process, a: bigint[]): number {
  const nl = netlinkOf(p, a[0]!);
  const level = int(a[1]!), opt = int(a[2]!);
  if (nl) {
    if (level !== SOL_SOCKET || ![SO_TYPE, SO_ERROR, SO_SNDBUF, SO_RCVBUF].includes(opt)) throw new Errno(E.ENOPROTOOPT);
    const v = Buffer.alloc(4);
    v.writeInt32LE(opt === SO_TYPE ? nl.type : opt === SO_ERROR ? 0 : SOCKET_BUFFER);
    return putOption(p, a, v);
  }
  const s = socketOf(p, a[0]!);
  const inet = inetOf(s);
  const key = inet && inetOption(inet, level, opt);
  if (inet && key) {
    const v = Buffer.alloc(4);
    v.writeInt32LE(inet.options.get(key) ?? INET_OPTIONS.get(key)!, 0);
    return putOption(p, a, v);
  }
  if (level !== SOL_SOCKET) throw new Errno(E.ENOPROTOOPT);
  if (opt === SO_PEERCRED) {
    // struct ucred of the other end: its pid and the guest's ids (no peer: pid 0, ids -1).
    const pid = s.peerPid;
    const cred = Buffer.alloc(12);
    cred.writeInt32LE(pid, 0);
    cred.writeInt32LE(pid ? GUEST_UID : -1, 4);
    cred.writeInt32LE(pid ? GUEST_GID : -1, 8);
    return putOption(p, a, cred);
  }
  let value: number;
  switch (opt) {
    case SO_TYPE: value = s instanceof SocketEnd ? s.type : s instanceof UnixDatagram ? SOCK_DGRAM : SOCK_STREAM; break;
    case SO_DOMAIN: value = inet ? inet.family : AF_UNIX; break;
    case SO_PROTOCOL: value = inet instanceof InetStream ? IPPROTO_TCP : inet ? IPPROTO_UDP : 0; break;
    case SO_PASSCRED: value = passCredentials.has(s) ? 1 : 0; break;
    case SO_ERROR: case SO_REUSEADDR: case SO_KEEPALIVE: value = 0; break;
    case SO_SNDBUF: case SO_RCVBUF: value = SOCKET_BUFFER; break;
    case SO_ACCEPTCONN: value = s instanceof UnixSocket && s.listening ? 1 : 0; break;
    default: throw new Errno(E.ENOPROTOOPT);
  }
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  return putOption(p, a, v);
}

/** getsockopt's result: as much of v as *optlen has room for; *optlen gets what was written. */
function putOption(p: Process, a: bigint[], v: Buffer): number {
  const lenBuf = p.userBuffer(a[4]!, 4, PROT_READ | PROT_WRITE);
  const room = lenBuf.readInt32LE(0);
  if (room < 0) throw new Errno(E.EINVAL);
  const n = Math.min(room, v.length);
  if (n > 0) v.copy(p.userBuffer(a[3]!, n, PROT_WRITE), 0, 0, n);
  lenBuf.writeUInt32LE(n, 0);
  return 0;
}

/** setsockopt: the options that mean nothing without a network are accepted as they are. */
function setsockopt(p: Process, a: bigint[]): number {
  const nl = netlinkOf(p, a[0]!);
  const s = nl ? null : socketOf(p, a[0]!);
  const level = int(a[1]!), opt = int(a[2]!);
  const inet = inetOf(s);
  const key = inet !== null && inetOption(inet, level, opt);
  if (key) {
    if (int(a[4]!) < 4) throw new Errno(E.EINVAL);
    const v = p.userBuffer(a[3]!, 4, PROT_READ).readInt32LE(0);
    (s as InetStream | InetDatagram).options.set(key, INET_FLAGS.has(key) ? Number(v !== 0) : v);
    return 0;
  }
  // Netlink's own options (extended acks, strict checking...): accepted, nothing ever changes.
  if (nl && level === SOL_NETLINK) {
    if (int(a[4]!) < 4) throw new Errno(E.EINVAL);
    p.userBuffer(a[3]!, 4, PROT_READ);
    return 0;
  }
  if (level !== SOL_SOCKET) throw new Errno(E.ENOPROTOOPT);
  if (![SO_REUSEADDR, SO_KEEPALIVE, SO_SNDBUF, SO_RCVBUF, SO_PASSCRED, SO_LINGER].includes(opt)) throw new Errno(E.ENOPROTOOPT);
  if (int(a[4]!) < 4) throw new Errno(E.EINVAL);
  const v = p.userBuffer(a[3]!, 4, PROT_READ).readInt32LE(0);
  if (opt === SO_PASSCRED && s) {
    if (v !== 0) passCredentials.add(s);
    else passCredentials.delete(s);
  }
  return 0;
}

/** Sockets with SO_PASSCRED set: each recvmsg on an AF_UNIX one gets the sender's credentials (SCM_CREDENTIALS). */
const passCredentials = new WeakSet<OpenFile>();

/** struct msghdr's iovecs, checked: [address, length] pairs (at most IOV_MAX). */
function msgIovecs(p: Process, msg: Buffer): Array<[bigint, number]> {
  const iov = msg.readBigUInt64LE(16), n = Number(msg.readBigUInt64LE(24));
  if (n > 1024) throw new Errno(E.EMSGSIZE);
  const vec = n === 0 ? Buffer.alloc(0) : Buffer.from(p.userBuffer(iov, n * 16, PROT_READ));
  const out: Array<[bigint, number]> = [];
  for (let i = 0; i < n; i++) out.push([vec.readBigUInt64LE(i * 16), size(vec.readBigUInt64LE(i * 16 + 8))]);
  return out;
}

const MSGHDR_SIZE = 56;
const SCM_RIGHTS = 1, SCM_CREDENTIALS = 2;
/** struct ucred: pid, uid, gid. */
const UCRED_SIZE = 12;
/** Most descriptors one message passes (Linux's SCM_MAX_FD). */
const SCM_MAX_FD = 253;
/** Largest control buffer read. */
const MAX_CONTROL = 4096;
const MSG_CTRUNC = 0x8, MSG_TRUNC = 0x20, MSG_CMSG_CLOEXEC = 0x40000000;
const CMSG_HDR = 16;
const align8 = (n: number): number => (n + 7) & ~7;

/**
 * The files a sendmsg's control buffer passes (SOL_SOCKET, SCM_RIGHTS), each held for the
 * flight. SCM_CREDENTIALS (AF_UNIX only: credentials) must be the sender's own, as for an
 * unprivileged process on Linux (EPERM otherwise); anything else there is EINVAL.
 */
function rightsToSend(p: Process, msg: Buffer, credentials: boolean): OpenFile[] {
  const len = size(msg.readBigUInt64LE(40));
  if (len === 0) return [];
  if (len < 0 || len > MAX_CONTROL) throw new Errno(E.ENOBUFS);
  const control = Buffer.from(p.userBuffer(msg.readBigUInt64LE(32), len, PROT_READ));
  const files: OpenFile[] = [];
  for (let off = 0; off + CMSG_HDR <= len;) {
    const clen = size(control.readBigUInt64LE(off));
    if (clen < CMSG_HDR || off + clen > len) throw new Errno(E.EINVAL);
    const level = control.readInt32LE(off + 8), type = control.readInt32LE(off + 12);
    if (level === SOL_SOCKET && type === SCM_CREDENTIALS && credentials) {
      if (clen !== CMSG_HDR + UCRED_SIZE) throw new Errno(E.EINVAL);
      const pid = control.readInt32LE(off + 16), uid = control.readUInt32LE(off + 20), gid = control.readUInt32LE(off + 24);
      if (pid !== p.pid || uid !== GUEST_UID || gid !== GUEST_GID) throw new Errno(E.EPERM);
    } else if (level !== SOL_SOCKET || type !== SCM_RIGHTS) {
      throw new Errno(E.EINVAL);
    } else {
      for (let i = off + CMSG_HDR; i + 4 <= off + clen; i += 4) files.push(p.fds.get(control.readInt32LE(i)));
    }
    off += align8(clen);
  }
  if (files.length > SCM_MAX_FD) throw new Errno(E.EINVAL);
  p.fds.hold(files);
  return files;
}

/**
 * recvmsg's SCM_CREDENTIALS, first in the control buffer (as Linux puts it before SCM_RIGHTS),
 * for an AF_UNIX socket with SO_PASSCRED: the sender's pid (a datagram's own sender; on a
 * stream the process that last sent with sendmsg, sendto or send, else the peer of
 * SO_PEERCRED) and the guest's ids. Returns the bytes written (0 when there is no room:
 * MSG_CTRUNC then).
 */
function receiveCredentials(p: Process, msg: Buffer, s: SocketEnd | UnixSocket | UnixDatagram): { used: number; flags: number } {
  if (!passCredentials.has(s) || inetOf(s)) return { used: 0, flags: 0 };
  if (controlRoom(msg, 0) < CMSG_HDR + UCRED_SIZE) return { used: 0, flags: MSG_CTRUNC };
  const cred = Buffer.alloc(UCRED_SIZE);
  cred.writeInt32LE(s instanceof UnixDatagram ? s.peerPid : s.senderPid || s.peerPid, 0);
  cred.writeUInt32LE(GUEST_UID, 4);
  cred.writeUInt32LE(GUEST_GID, 8);
  return { used: putControl(p, msg, 0, SCM_CREDENTIALS, cred), flags: 0 };
}

/** The bytes of recvmsg's control buffer from at on (at most MAX_CONTROL in all). */
function controlRoom(msg: Buffer, at: number): number {
  return Math.max(0, Math.min(size(msg.readBigUInt64LE(40)), MAX_CONTROL) - at);
}

/**
 * Put one control message (SOL_SOCKET, type, data) at byte at of recvmsg's control buffer, as
 * much of it as the buffer has room for; returns the bytes written.
 */
function putControl(p: Process, msg: Buffer, at: number, type: number, data: Buffer): number {
  const cmsg = Buffer.alloc(align8(CMSG_HDR + data.length));
  cmsg.writeBigUInt64LE(BigInt(CMSG_HDR + data.length), 0);
  cmsg.writeInt32LE(SOL_SOCKET, 8);
  cmsg.writeInt32LE(type, 12);
  data.copy(cmsg, CMSG_HDR);
  const n = Math.min(cmsg.length, controlRoom(msg, at));
  if (n > 0) cmsg.copy(p.userBuffer(msg.readBigUInt64LE(32) + BigInt(at), n, PROT_WRITE), 0, 0, n);
  return n;
}

/**
 * sendmsg: the iovecs in order; SCM_RIGHTS go with the bytes. A blocking send on a stream
 * without rights waits until all are sent (moveWhole, keyed by call: sendmmsg's own calls
 * have none and end at the first short send, as one send each).
 */
function sendmsg(t: Task, a: bigint[], call?: readonly bigint[]): number {
  const p = t.process;
  const nl = netlinkOf(p, a[0]!);
  if (nl) {
    const msg = Buffer.from(p.userBuffer(a[1]!, MSGHDR_SIZE, PROT_READ));
    if (msg.readBigUInt64LE(0) !== 0n) checkNetlinkAddress(p, nl, msg.readBigUInt64LE(0), msg.readUInt32LE(8), true);
    return wholeMessage(p, msg, PROT_READ, (buf) => nl.request(buf), false);
  }
  const s = socketOf(p, a[0]!);
  const flags = int(a[2]!);
  const msg = Buffer.from(p.userBuffer(a[1]!, MSGHDR_SIZE, PROT_READ));
  if (flags & MSG_OOB) throw new Errno(E.EOPNOTSUPP);
  if (s instanceof UnixDatagram) {
    // One message, to msg_name or the connected receiver.
    const to = msg.readBigUInt64LE(0) !== 0n ? datagramTarget(p, s, msg.readBigUInt64LE(0), msg.readUInt32LE(8)) : null;
    // No descriptors on these; credentials, checked, are always the sender's own.
    const files = rightsToSend(p, msg, true);
    if (files.length > 0) {
      dropRights({ files, holder: p.fds });
      throw new Errno(E.EOPNOTSUPP);
    }
    return wholeMessage(p, msg, PROT_READ, (buf, nonblock) => s.sendTo(buf, to, nonblock), (flags & MSG_DONTWAIT) !== 0);
  }
  if (msg.readBigUInt64LE(0) !== 0n) throw new Errno(E.EISCONN);
  const files = rightsToSend(p, msg, !inetOf(s));
  if (!inetOf(s)) (s as SocketEnd | UnixSocket).noteSender(p.pid);
  let sent = 0;
  try {
    if (files.length) s.checkRights(files.length);
  } catch (e) {
    dropRights({ files, holder: p.fds });
    throw e;
  }
  try {
    const dontwait = (flags & MSG_DONTWAIT) !== 0;
    if (s instanceof SocketEnd && s.keepsMessages) sent = wholeMessage(p, msg, PROT_READ, (buf, nonblock) => s.send(buf, nonblock), dontwait);
    else if (call && files.length === 0) sent = moveWhole(call, iovecBuffers(p, msg, PROT_READ), !dontwait && !(s.statusFlags & O.NONBLOCK), (buf) => s.send(buf, dontwait));
    else sent = throughIovecs(p, msg, PROT_READ, (buf, nonblock) => s.send(buf, nonblock), dontwait);
    return sent;
  } catch (e) {
    if (e instanceof Errno && e.errno === E.EPIPE && !(flags & MSG_NOSIGNAL)) raise(t, SIG.SIGPIPE, { code: SI_USER, pid: p.pid });
    throw e;
  } finally {
    // Rights travel with at least one byte, as on a Linux stream socket.
    if (files.length && sent > 0) s.sendRights({ files, holder: p.fds }, sent);
    else dropRights({ files, holder: p.fds });
  }
}

/**
 * recvmsg's control buffer: the rights that came with the bytes just read, installed as new
 * descriptors as far as the buffer has room (the rest are closed: MSG_CTRUNC). Returns
 * msg_controllen and the flags to report.
 */
function receiveRights(p: Process, msg: Buffer, rights: Rights | undefined, cloexec: boolean, at = 0): { controllen: number; flags: number } {
  if (!rights) return { controllen: 0, flags: 0 };
  const room = controlRoom(msg, at);
  const fit = room >= CMSG_HDR ? Math.min(rights.files.length, Math.floor((room - CMSG_HDR) / 4)) : 0;
  const fds: number[] = [];
  try {
    for (let i = 0; i < fit; i++) fds.push(p.fds.install(rights.files[i]!, cloexec));
  } catch (e) {
    if (!(e instanceof Errno)) throw e; // EMFILE: the rest are closed, as Linux does
  }
  dropRights(rights);
  let controllen = 0;
  if (fds.length > 0) {
    const data = Buffer.alloc(4 * fds.length);
    fds.forEach((fd, i) => data.writeInt32LE(fd, 4 * i));
    controllen = putControl(p, msg, at, SCM_RIGHTS, data);
  }
  return { controllen, flags: fds.length < rights.files.length ? MSG_CTRUNC : 0 };
}

/**
 * Move bytes through a msghdr's iovecs in order (move: a send or a receive, nonblock for that
 * call): after the first, moves never wait, and a short move or an error ends it with the
 * bytes moved so far; an error before any byte is the call's.
 */
function throughIovecs(p: Process, msg: Buffer, prot: number, move: (buf: Buffer, nonblock: boolean) => number, nonblock: boolean): number {
  return movePieces(iovecBuffers(p, msg, prot), (buf, done) => move(buf, nonblock || done > 0));
}

/** The non-empty iovecs of a msghdr, as views of guest memory. */
function iovecBuffers(p: Process, msg: Buffer, prot: number): Buffer[] {
  return msgIovecs(p, msg).filter(([, len]) => len !== 0).map(([base, len]) => p.userBuffer(base, len < 0 ? BigInt(len) : len, prot));
}

/**
 * A record socket's sendmsg or recvmsg (move: its send or receive): one message through all the
 * iovecs, gathered before the send, scattered after the receive.
 */
function wholeMessage(p: Process, msg: Buffer, prot: number, move: (buf: Buffer, nonblock: boolean) => number, nonblock: boolean): number {
  const bufs = msgIovecs(p, msg).filter(([, len]) => len !== 0).map(([base, len]) => p.userBuffer(base, len < 0 ? BigInt(len) : len, prot));
  const total = bufs.reduce((n, b) => n + b.length, 0);
  if (prot === PROT_READ) {
    if (total > MAX_RECORD) throw new Errno(E.EMSGSIZE);
    return move(Buffer.concat(bufs), nonblock);
  }
  const got = Buffer.alloc(Math.min(total, MAX_RECORD));
  const n = move(got, nonblock);
  let at = 0;
  for (const b of bufs) {
    if (at >= n) break;
    at += got.copy(b, 0, at, n);
  }
  return n;
}

/** recvmsg: fills the iovecs in order from what is there, with the rights sent along; no peer name. */
function recvmsg(p: Process, a: bigint[]): number {
  const nl = netlinkOf(p, a[0]!);
  const flags = int(a[2]!);
  if (nl) {
    if (flags & MSG_OOB) throw new Errno(E.EOPNOTSUPP);
    const out = p.userBuffer(a[1]!, MSGHDR_SIZE, PROT_READ | PROT_WRITE);
    const msg = Buffer.from(out);
    const done = wholeMessage(p, msg, PROT_WRITE, (buf, nonblock) => nl.receive(buf, nonblock, (flags & MSG_PEEK) !== 0, (flags & MSG_TRUNC) !== 0),
      (flags & MSG_DONTWAIT) !== 0);
    // The sender is the kernel: nl_pid 0.
    if (msg.readBigUInt64LE(0) !== 0n && msg.readUInt32LE(8) >= 12) {
      netlinkAddress(0).copy(p.userBuffer(msg.readBigUInt64LE(0), 12, PROT_WRITE));
      out.writeUInt32LE(12, 8);
    } else {
      out.writeUInt32LE(0, 8);
    }
    out.writeBigUInt64LE(0n, 40); // msg_controllen
    out.writeInt32LE(nl.truncated ? MSG_TRUNC : 0, 48);
    return done;
  }
  const s = socketOf(p, a[0]!);
  if (flags & MSG_OOB) throw new Errno(E.EOPNOTSUPP);
  const peek = (flags & MSG_PEEK) !== 0;
  const out = p.userBuffer(a[1]!, MSGHDR_SIZE, PROT_READ | PROT_WRITE);
  const msg = Buffer.from(out);
  if (msg.readBigUInt64LE(40) !== 0n) p.userBuffer(msg.readBigUInt64LE(32), Math.min(size(msg.readBigUInt64LE(40)), MAX_CONTROL), PROT_WRITE);
  const whole = (s instanceof SocketEnd && s.keepsMessages) || s instanceof UnixDatagram;
  // A peek at a stream is one copy scattered over the iovecs, as a message's (each iovec in turn would see the same bytes).
  const done = (whole || peek ? wholeMessage : throughIovecs)(p, msg, PROT_WRITE, (buf, nonblock) => s.receive(buf, nonblock, peek), (flags & MSG_DONTWAIT) !== 0);
  // A peek leaves the descriptors sent along where they are.
  const rights = done > 0 && !peek ? s.takeRights() : undefined;
  const creds = receiveCredentials(p, msg, s);
  const received = receiveRights(p, msg, rights, (flags & MSG_CMSG_CLOEXEC) !== 0, creds.used);
  const mflags = creds.flags | received.flags | (whole && (s as SocketEnd | UnixDatagram).truncated ? MSG_TRUNC : 0);
  const controllen = creds.used + received.controllen;
  // msg_name: a datagram's sender (none when it has no name); nothing for streams.
  let namelen = 0;
  const from = s instanceof UnixDatagram ? datagramSender(s) : null;
  if (from && msg.readBigUInt64LE(0) !== 0n) {
    const n = Math.min(msg.readUInt32LE(8), from.length);
    if (n > 0) from.copy(p.userBuffer(msg.readBigUInt64LE(0), n, PROT_WRITE), 0, 0, n);
    namelen = from.length;
  }
  out.writeUInt32LE(namelen, 8); // msg_namelen
  out.writeBigUInt64LE(BigInt(controllen), 40); // msg_controllen
  out.writeInt32LE(mflags, 48); // msg_flags
  return done;
}

/** struct mmsghdr: a msghdr, then the bytes moved (msg_len, 32 bits), padded to 64 bytes. */
const MMSGHDR_SIZE = 64, MMSG_LEN = 56;
/** Messages one sendmmsg or recvmmsg handles at most (Linux's UIO_MAXIOV; more are cut, not refused). */
const UIO_MAXIOV = 1024;
const MSG_WAITFORONE = 0x10000;

/**
 * sendmmsg and recvmmsg: sendmsg or recvmsg for each struct mmsghdr in turn, its msg_len set.
 * A failure or a wait after the first message ends the call with the count so far (Linux keeps
 * the error for the next call). recvmmsg waits only for the first message: later ones are taken
 * while there are some (as with MSG_WAITFORONE), where Linux, without it, would wait for all of
 * vlen until its timeout.
 */
function eachMessage(p: Process, a: bigint[], one: (hdr: bigint, flags: bigint) => number, receive: boolean): number {
  const vlen = Math.min(Number(BigInt.asUintN(32, a[2]!)), UIO_MAXIOV);
  let flags = BigInt.asUintN(32, a[3]!) & ~BigInt(MSG_WAITFORONE);
  if (receive && a[4] !== 0n) readTimespec(p, a[4]!); // checked only: EINVAL when malformed
  let i = 0;
  for (; i < vlen; i++) {
    const hdr = a[1]! + BigInt(i * MMSGHDR_SIZE);
    let n: number;
    try {
      n = one(hdr, flags);
    } catch (e) {
      if (i > 0 && (e instanceof Errno || e instanceof WouldBlock)) break;
      throw e;
    }
    p.userBuffer(hdr + BigInt(MMSG_LEN), 4, PROT_WRITE).writeUInt32LE(n);
    if (receive) flags |= BigInt(MSG_DONTWAIT);
  }
  return i;
}

/** sendto(fd, buf, len, flags, addr, addrlen): a connected stream takes no address (EISCONN). */
function sendto(t: Task, a: bigint[]): number {
  const p = t.process;
  const flags = int(a[3]!);
  const nl = netlinkOf(p, a[0]!);
  if (nl) {
    if (a[4] !== 0n) checkNetlinkAddress(p, nl, a[4]!, int(a[5]!), true);
    const n = Math.min(size(a[2]!), MAX_RW_COUNT);
    return nl.request(Buffer.from(p.userBuffer(a[1]!, n < 0 ? a[2]! : n, PROT_READ)));
  }
  const s = socketOf(p, a[0]!);
  if (flags & MSG_OOB) throw new Errno(E.EOPNOTSUPP);
  if (s instanceof UnixDatagram) {
    const to = a[4] !== 0n ? datagramTarget(p, s, a[4]!, int(a[5]!)) : null;
    const n = Math.min(size(a[2]!), MAX_RECORD + 1);
    return s.sendTo(p.userBuffer(a[1]!, n < 0 ? a[2]! : n, PROT_READ), to, (flags & MSG_DONTWAIT) !== 0);
  }
  if (a[4] !== 0n) throw new Errno(E.EISCONN);
  const n = Math.min(size(a[2]!), MAX_RW_COUNT);
  const buf = p.userBuffer(a[1]!, n < 0 ? a[2]! : n, PROT_READ);
  const dontwait = (flags & MSG_DONTWAIT) !== 0;
  if (!inetOf(s)) s.noteSender(p.pid);
  try {
    return moveWhole(a, [buf], !dontwait && !(s.statusFlags & O.NONBLOCK), (b) => s.send(b, dontwait));
  } catch (e) {
    if (e instanceof Errno && e.errno === E.EPIPE && !(flags & MSG_NOSIGNAL)) raise(t, SIG.SIGPIPE, { code: SI_USER, pid: p.pid });
    throw e;
  }
}

/** recvfrom(fd, buf, len, flags, addr, addrlen): the peer has no address (addrlen becomes 0). */
function recvfrom(p: Process, a: bigint[]): number {
  const flags = int(a[3]!);
  const nl = netlinkOf(p, a[0]!);
  if (nl) {
    if (flags & MSG_OOB) throw new Errno(E.EOPNOTSUPP);
    const n = Math.min(size(a[2]!), MAX_RW_COUNT);
    const buf = p.userBuffer(a[1]!, n < 0 ? a[2]! : n, PROT_WRITE);
    const got = nl.receive(buf, (flags & MSG_DONTWAIT) !== 0, (flags & MSG_PEEK) !== 0, (flags & MSG_TRUNC) !== 0);
    putSockaddr(p, a[4]!, a[5]!, netlinkAddress(0));
    return got;
  }
  const s = socketOf(p, a[0]!);
  if (flags & MSG_OOB) throw new Errno(E.EOPNOTSUPP);
  const peek = (flags & MSG_PEEK) !== 0;
  const n = Math.min(size(a[2]!), MAX_RW_COUNT);
  const buf = p.userBuffer(a[1]!, n < 0 ? a[2]! : n, PROT_WRITE);
  const lenOut = a[4] !== 0n && a[5] !== 0n ? p.userBuffer(a[5]!, 4, PROT_WRITE) : null;
  if (s instanceof UnixDatagram) {
    // Even a 0-byte buffer takes a message (or, peeking, looks at it); the address is its sender's.
    const got = s.receive(buf, (flags & MSG_DONTWAIT) !== 0, peek);
    // A sender with no name gives no address (length 0), as Linux's unix_copy_addr.
    const from = datagramSender(s);
    if (from) putSockaddr(p, a[4]!, a[5]!, from);
    else lenOut?.writeUInt32LE(0, 0);
    return got;
  }
  if (buf.length === 0) return 0;
  const got = peek ? s.receive(buf, (flags & MSG_DONTWAIT) !== 0, true) : s.receiveDropping(buf, (flags & MSG_DONTWAIT) !== 0);
  lenOut?.writeUInt32LE(0, 0);
  return got;
}

const IFNAMSIZ = 16, IFREQ_SIZE = 40;
const SIOCGIFNAME = 0x8910, SIOCGIFCONF = 0x8912, SIOCGIFFLAGS = 0x8913, SIOCGIFADDR = 0x8915, SIOCGIFNETMASK = 0x891b;
const SIOCGIFMTU = 0x8921, SIOCGIFHWADDR = 0x8927, SIOCGIFINDEX = 0x8933, SIOCGIFTXQLEN = 0x8942;
const INTERFACE_IOCTLS = new Set([SIOCGIFNAME, SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX, SIOCGIFTXQLEN]);

/** Whether f is a socket, on which Linux answers the interface ioctls whatever its family. */
export function isSocket(f: OpenFile): boolean {
  return isDataSocket(f) || f instanceof NetlinkSocket;
}

/** A struct sockaddr_in of an IPv4 address (port 0), as struct ifreq holds one. */
function ifreqAddress(ip: readonly number[]): Buffer {
  return sockaddrIn({ family: AF_INET, ip: Buffer.from(ip), port: 0 });
}

/**
 * The interface ioctls on a socket (struct ifreq: a name, then a value), about the sandbox's one
 * interface, lo: its index and name (if_nametoindex, if_indextoname), flags, MTU, queue length,
 * hardware address and IPv4 address and netmask, and SIOCGIFCONF's list of interfaces with an
 * IPv4 address. Another name or index is ENODEV. Returns null for any other request.
 */
export function interfaceIoctl(p: Process, req: number, arg: bigint): number | null {
  if (!INTERFACE_IOCTLS.has(req)) return null;
  if (req === SIOCGIFCONF) {
    // struct ifconf { int ifc_len; char *ifc_buf; }: lo's entry, as far as ifc_len has room.
    const conf = p.userBuffer(arg, 16, PROT_READ | PROT_WRITE);
    const room = conf.readInt32LE(0), bufAddr = conf.readBigUInt64LE(8);
    if (bufAddr === 0n) {
      conf.writeInt32LE(IFREQ_SIZE, 0);
      return 0;
    }
    const fits = room >= IFREQ_SIZE ? 1 : 0;
    if (fits) {
      const entry = Buffer.alloc(IFREQ_SIZE);
      entry.write('lo', 0, 'latin1');
      ifreqAddress([127, 0, 0, 1]).copy(entry, IFNAMSIZ);
      entry.copy(p.userBuffer(bufAddr, IFREQ_SIZE, PROT_WRITE));
    }
    conf.writeInt32LE(fits * IFREQ_SIZE, 0);
    return 0;
  }
  const ifr = p.userBuffer(arg, IFREQ_SIZE, PROT_READ | PROT_WRITE);
  if (req === SIOCGIFNAME) {
    if (ifr.readInt32LE(IFNAMSIZ) !== LO_INDEX) throw new Errno(E.ENODEV);
    ifr.fill(0, 0, IFNAMSIZ);
    ifr.write('lo', 0, 'latin1');
    return 0;
  }
  const name = ifr.subarray(0, IFNAMSIZ).toString('latin1').replace(/\0.*$/s, '');
  if (name !== 'lo') throw new Errno(E.ENODEV);
  const value = ifr.subarray(IFNAMSIZ);
  value.fill(0);
  switch (req) {
    case SIOCGIFINDEX: value.writeInt32LE(LO_INDEX, 0); break;
    case SIOCGIFFLAGS: value.writeUInt16LE(LO_FLAGS & 0xffff, 0); break;
    case SIOCGIFMTU: value.writeInt32LE(LO_MTU, 0); break;
    case SIOCGIFTXQLEN: value.writeInt32LE(LO_TXQLEN, 0); break;
    case SIOCGIFHWADDR: value.writeUInt16LE(ARPHRD_LOOPBACK, 0); break;
    case SIOCGIFADDR: ifreqAddress([127, 0, 0, 1]).copy(value); break;
    case SIOCGIFNETMASK: ifreqAddress([255, 0, 0, 0]).copy(value); break;
  }
  return 0;
}

export const socketSyscalls: SyscallGroup = {
  socket: ({ process: p }, a) => newSocket(p, a),
  bind: ({ process: p }, a) => bind(p, a),
  listen: ({ process: p }, a) => {
    unixOf(p, a[0]!).listen(int(a[1]!), p.pid);
    return 0;
  },
  accept: ({ process: p }, a) => accept(p, a, 0),
  accept4: ({ process: p }, a) => accept(p, a, int(a[3]!)),
  connect: ({ process: p }, a) => connect(p, a),
  getsockname: ({ process: p }, a) => {
    const nl = netlinkOf(p, a[0]!);
    if (nl) {
      putSockaddr(p, a[1]!, a[2]!, netlinkAddress(nl.portId));
      return 0;
    }
    const s = socketOf(p, a[0]!);
    if (isInet(s)) putSockaddr(p, a[1]!, a[2]!, sockaddrIn(localAddress(s)));
    else putAddress(p, a[1]!, a[2]!, s instanceof SocketEnd ? null : s.shownAddress);
    return 0;
  },
  getpeername: ({ process: p }, a) => {
    if (netlinkOf(p, a[0]!)) {
      putSockaddr(p, a[1]!, a[2]!, netlinkAddress(0));
      return 0;
    }
    const s = socketOf(p, a[0]!);
    if (!(s instanceof SocketEnd) && !s.connected) throw new Errno(E.ENOTCONN);
    if (isInet(s)) putSockaddr(p, a[1]!, a[2]!, sockaddrIn(asFamily(s.remote!, s.family)));
    else putAddress(p, a[1]!, a[2]!, s instanceof SocketEnd ? null : s.shownPeerAddress);
    return 0;
  },
  getsockopt: ({ process: p }, a) => getsockopt(p, a),
  setsockopt: ({ process: p }, a) => setsockopt(p, a),
  sendmsg: (t, a) => sendmsg(t, a, a),
  recvmsg: ({ process: p }, a) => recvmsg(p, a),
  sendmmsg: (t, a) => eachMessage(t.process, a, (hdr, flags) => sendmsg(t, [a[0]!, hdr, flags]), false),
  recvmmsg: ({ process: p }, a) => eachMessage(p, a, (hdr, flags) => recvmsg(p, [a[0]!, hdr, flags]), true),
  socketpair: ({ process: p }, a) => socketpair(p, a),
  sendto: (t, a) => sendto(t, a),
  recvfrom: ({ process: p }, a) => recvfrom(p, a),
  shutdown: ({ process: p }, a) => {
    if (netlinkOf(p, a[0]!)) return 0;
    socketOf(p, a[0]!).shutdown(int(a[1]!));
    return 0;
  },
};
