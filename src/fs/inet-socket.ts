// socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM): TCP and UDP on the sandbox's own
// loopback. kvmbox gives no network; a sandbox has what a fresh network namespace has, `lo`:
// 127.0.0.0/8 and ::1, which reach only the sockets of the same sandbox, never the host's. So a
// test server and its client, a language server, or python's and node's own loopback helpers
// run inside one sandbox as they do on Linux.
//
// - Ports: one table per sandbox and protocol, in the sandbox's socket names (UnixNames, keys
//   `tcp:PORT` and `udp:PORT`), shared by IPv4 and IPv6, so a port is one socket's whatever the
//   family (Linux would let 127.0.0.1:P and ::1:P be two). bind takes a port of a loopback or
//   the wildcard address; port 0 (or listen, or a first connect or send, without bind) takes a
//   free one of 32768-60999. Ports below 1024 need a privilege (EACCES); any other address is
//   EADDRNOTAVAIL, as on a host without it.
// - TCP: a connection is a socketpair, as for AF_UNIX (unix-socket.ts); connect to any loopback
//   address (or the wildcard, which Linux takes as local) of a port reaches its listener, else
//   ECONNREFUSED. Another address is ENETUNREACH (the caller's check).
// - UDP: each datagram is kept whole (unix-dgram.ts); one sent to a port no socket holds is
//   dropped, as a host drops it, and a connected socket takes datagrams only from its peer.
// - Addresses as Linux shows them: getsockname gives the address bound (or the loopback once
//   connected), an accepted socket's peer is the client's; a socket of the other family sees
//   IPv4 as ::ffff:127.x.x.x, and ::1 as 127.0.0.1.
import { E, Errno, O } from '../abi/linux.js';
import type { PipeBudget } from './open-file.js';
import { UnixDatagram } from './unix-dgram.js';
import { UnixSocket, type UnixNames } from './unix-socket.js';

export const AF_INET = 2, AF_INET6 = 10;
export const IPPROTO_TCP = 6, IPPROTO_UDP = 17;
/** sockaddr_in and sockaddr_in6: their sizes, and the least a caller may give for IPv6 (RFC 2133's). */
export const SOCKADDR_IN_SIZE = 16, SOCKADDR_IN6_SIZE = 28, SOCKADDR_IN6_MIN = 24;
const EPHEMERAL_LOW = 32768, EPHEMERAL_HIGH = 60999;
/** Ports below this one need CAP_NET_BIND_SERVICE (net.ipv4.ip_unprivileged_port_start). */
const PRIVILEGED_PORTS = 1024;

/** An IPv4 or IPv6 address with its port: ip has 4 or 16 bytes, as family says. */
export interface InetAddress {
  readonly family: number;
  readonly ip: Buffer;
  readonly port: number;
}

const V4_MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function isV4Mapped(ip: Buffer): boolean {
  return ip.length === 16 && ip.subarray(0, 12).equals(V4_MAPPED);
}

/** The address as IPv4 bytes when it is one (or an IPv4-mapped IPv6 one), else null. */
function v4Of(ip: Buffer): Buffer | null {
  if (ip.length === 4) return ip;
  return isV4Mapped(ip) ? ip.subarray(12) : null;
}

export function isLoopback(ip: Buffer): boolean {
  const v4 = v4Of(ip);
  if (v4) return v4[0] === 127;
  return ip.subarray(0, 15).every((b) => b === 0) && ip[15] === 1;
}

export function isWildcard(ip: Buffer): boolean {
  const v4 = v4Of(ip);
  return (v4 ?? ip).every((b) => b === 0);
}

/** The loopback address of a family: 127.0.0.1 or ::1. */
function loopback(family: number): Buffer {
  return family === AF_INET ? Buffer.from([127, 0, 0, 1]) : Buffer.from([...new Array<number>(15).fill(0), 1]);
}

/** An address as a socket of family shows it: IPv4 in IPv6 as ::ffff:a.b.c.d, and ::1 in IPv4 as 127.0.0.1. */
export function asFamily(a: InetAddress, family: number): InetAddress {
  if (a.family === family) return a;
  if (family === AF_INET6) return { family, ip: Buffer.concat([V4_MAPPED, a.ip]), port: a.port };
  return { family, ip: v4Of(a.ip) ?? loopback(AF_INET), port: a.port };
}

/**
 * What went over a sandbox's lo (/proc/net/dev): per TCP send or UDP datagram, one packet of
 * its payload bytes (Linux would count segments with their headers, and ACKs). Each packet is
 * sent and received by lo, so it counts once each way.
 */
export interface LoopbackTraffic { bytes: number; packets: number }
const traffic = new WeakMap<UnixNames, LoopbackTraffic>();

/** The loopback traffic of the sandbox whose socket table is names. */
export function loopbackTraffic(names: UnixNames): LoopbackTraffic {
  let t = traffic.get(names);
  if (!t) traffic.set(names, t = { bytes: 0, packets: 0 });
  return t;
}

function countTraffic(names: UnixNames, bytes: number): void {
  const t = loopbackTraffic(names);
  t.bytes += bytes;
  t.packets++;
}

/** The name a port has in the sandbox's table. */
function portKey(proto: 'tcp' | 'udp', port: number): string {
  return `${proto}:${port}`;
}

/** A free port of the ephemeral range (EADDRINUSE when none is). */
function freePort(names: UnixNames, proto: 'tcp' | 'udp'): number {
  const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = EPHEMERAL_LOW + ((start + i) % span);
    if (!names.get(portKey(proto, port))?.live) return port;
  }
  throw new Errno(E.EADDRINUSE);
}

/** An address of this sandbox: a loopback one, or the wildcard. */
function isLocal(ip: Buffer): boolean {
  return isLoopback(ip) || isWildcard(ip);
}

/**
 * The port a bind to a takes: a's own (a local address, unprivileged), or a free one for port 0;
 * EADDRNOTAVAIL, EACCES, EADDRINUSE (none free) otherwise.
 */
function portToBind(names: UnixNames, proto: 'tcp' | 'udp', a: InetAddress): number {
  if (!isLocal(a.ip)) throw new Errno(E.EADDRNOTAVAIL);
  if (a.port !== 0 && a.port < PRIVILEGED_PORTS) throw new Errno(E.EACCES);
  return a.port || freePort(names, proto);
}

/** Where a connect or send may go: a loopback address (the wildcard means it), else ENETUNREACH. */
export function checkReachable(a: InetAddress): void {
  if (!isLocal(a.ip)) throw new Errno(E.ENETUNREACH);
}

/** The peer a connect to `to` reaches: the wildcard means the loopback address. */
function peerOf(to: InetAddress): InetAddress {
  return isWildcard(to.ip) ? { ...to, ip: loopback(to.family) } : to;
}

/** A connected socket's own address: one bound to the wildcard (or not yet to any) shows the loopback address it reached. */
function connectedLocal(local: InetAddress, remote: InetAddress, family: number): InetAddress {
  return local.ip.length === 0 || isWildcard(local.ip) ? { ...local, ip: asFamily(remote, family).ip } : local;
}

/** What the two kinds share: a family, the address bound, the peer, and the options set. */
interface InetEnd {
  readonly family: number;
  local: InetAddress | null;
  remote: InetAddress | null;
  /** setsockopt's integer options at the IP, IPv6 and TCP levels, kept for getsockopt: `level:name`. */
  readonly options: Map<string, number>;
}

/** The wildcard address of a family (0.0.0.0 or ::), port 0. */
function wildcard(family: number): InetAddress {
  return { family, ip: Buffer.alloc(family === AF_INET ? 4 : 16), port: 0 };
}

/** The address a socket shows (getsockname): its own, or the wildcard with port 0 before it has one. */
export function localAddress(s: InetEnd): InetAddress {
  return s.local ?? wildcard(s.family);
}

/** A TCP socket on the sandbox's loopback. */
export class InetStream extends UnixSocket implements InetEnd {
  local: InetAddress | null = null;
  remote: InetAddress | null = null;
  readonly options = new Map<string, number>();

  constructor(readonly family: number, statusFlags: number, names: UnixNames) {
    super(statusFlags, names);
  }

  /** bind to a (port 0: a free port). */
  bindInet(a: InetAddress): void {
    const port = portToBind(this.names, 'tcp', a);
    if (this.address !== null || this.connected) throw new Errno(E.EINVAL);
    this.bind(portKey('tcp', port));
    this.local = { family: this.family, ip: a.ip, port };
  }

  /** listen without bind: the wildcard address and a free port, as Linux's autobind. */
  protected override autobind(): void {
    this.bindInet(wildcard(this.family));
  }

  /** connect to the listener of to's port (the caller checked that to is reachable). */
  connectInet(to: InetAddress, budget: PipeBudget, pid: number): void {
    if (this.connected) throw new Errno(E.EISCONN);
    if (to.port === 0) throw new Errno(E.ECONNREFUSED);
    this.connect(portKey('tcp', to.port), budget, pid);
    this.remote = peerOf(to);
    // A client without a port takes one; its address is the loopback address it reached.
    if (this.local === null) {
      const port = freePort(this.names, 'tcp');
      this.names.set(portKey('tcp', port), this);
      this.address = portKey('tcp', port);
      this.local = { family: this.family, ip: Buffer.alloc(0), port };
    }
    this.local = connectedLocal(this.local, this.remote, this.family);
  }

  /** A send on a TCP socket never connected is EPIPE, as Linux's (recv stays ENOTCONN). */
  override send(buf: Buffer, nonblock: boolean): number {
    if (!this.connected) throw new Errno(E.EPIPE);
    const n = super.send(buf, nonblock);
    if (n > 0) countTraffic(this.names, n);
    return n;
  }

  protected override acceptedSocket(flags: number, client: UnixSocket): UnixSocket {
    const s = new InetStream(this.family, O.RDWR | flags, this.names);
    const c = client as InetStream;
    // On the listener's port, at the address the client reached; its peer is the client's address.
    s.local = { ...asFamily(c.remote!, this.family), port: this.local!.port };
    s.remote = asFamily(c.local!, this.family);
    return s;
  }
}

/** A UDP socket on the sandbox's loopback; lastFrom is the sender's port name. */
export class InetDatagram extends UnixDatagram implements InetEnd {
  local: InetAddress | null = null;
  remote: InetAddress | null = null;
  readonly options = new Map<string, number>();

  constructor(readonly family: number, statusFlags: number, names: UnixNames, pid: number) {
    super(statusFlags, names, pid);
  }

  bindInet(a: InetAddress): void {
    const port = portToBind(this.names, 'udp', a);
    if (this.address !== null) throw new Errno(E.EINVAL);
    this.bind(portKey('udp', port));
    this.local = { family: this.family, ip: a.ip, port };
  }

  /** The name a send to a goes to (the caller checked that a is reachable). */
  static nameOf(a: InetAddress): string {
    return portKey('udp', a.port);
  }

  /** connect sets the default receiver; nobody need hold its port yet. */
  connectInet(to: InetAddress): void {
    if (this.address === null) this.beforeSend();
    this.connect(InetDatagram.nameOf(to));
    this.remote = peerOf(to);
    if (this.local) this.local = connectedLocal(this.local, this.remote, this.family);
  }

  /** A send with no address from a socket not connected is EDESTADDRREQ, as Linux's UDP. */
  override sendTo(buf: Buffer, name: string | null, nonblock: boolean): number {
    if (name === null && this.peerAddress === null) throw new Errno(E.EDESTADDRREQ);
    const n = super.sendTo(buf, name, nonblock);
    countTraffic(this.names, n);
    return n;
  }

  /** The sender of the last datagram taken, as this socket's family shows it. */
  get lastSender(): InetAddress | null {
    if (this.lastFrom === null) return null;
    return { family: this.family, ip: loopback(this.family), port: Number(this.lastFrom.slice(4)) };
  }

  /** A first send from a socket without a port takes one, so that replies find it. */
  protected override beforeSend(): void {
    this.bindInet(wildcard(this.family));
  }

  /** A datagram no socket may take is dropped, as a host drops it. */
  protected override refused(): null {
    return null;
  }
}
