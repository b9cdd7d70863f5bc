// socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM): TCP and UDP on the sandbox's own
// loopback. kvmbox gives no network; a sandbox has what a fresh network namespace has, `lo`:
// 127.0.0.0/8 and ::1, which reach only the sockets of the same sandbox, never the host's. So a
// test server and its client, a language server, or python's and node's own loopback helpers
// run inside one sandbox as they do on Linux.
//
// - Ports: one table per sandbox and protocol, in the sandbox's socket names (UnixNames, keys
//   `tcp:PORT/4:IP` or `/6:IP`, IP in hex or `*` for the wildcard: bindKey). Binds conflict as
//   Linux's do: the same family with the same address or either one the wildcard, and IPv4
//   against an IPv6 wildcard that takes IPv4 too (IPV6_V6ONLY off); so 127.0.0.1:P and ::1:P,
//   or 0.0.0.0:P and a V6ONLY [::]:P, are two sockets. bind takes a port of a loopback or the
//   wildcard address; port 0 (or listen, or a first connect or send, without bind) takes a
//   port of 32768-60999 that nothing is bound to. Ports below 1024 need a privilege (EACCES);
//   any other address is EADDRNOTAVAIL, as on a host without it. A packet goes to the socket
//   bound to its address, else to its family's wildcard, else to a dual-stack IPv6 one.
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
import { UnixSocket, type NamedSocket, type UnixNames } from './unix-socket.js';

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

type Proto = 'tcp' | 'udp';

/**
 * The name a bound address has in the sandbox's table: `tcp:PORT/4:IP` or `/6:IP`, IP in hex
 * (an IPv4-mapped address is IPv4's), or `*` for the wildcard.
 */
function bindKey(proto: Proto, a: InetAddress): string {
  const v4 = v4Of(a.ip);
  const fam = v4 ? 4 : 6;
  return `${proto}:${a.port}/${fam}:${isWildcard(a.ip) ? '*' : (v4 ?? a.ip).toString('hex')}`;
}

/** What a key names: its port, family (4 or 6) and address (hex, or '*'). */
function parseKey(key: string): { port: number; fam: number; ip: string } {
  const slash = key.indexOf('/');
  return { port: Number(key.slice(4, slash)), fam: Number(key[slash + 1]), ip: key.slice(slash + 3) };
}

/** The live sockets bound to a port, with their keys. */
function boundTo(names: UnixNames, proto: Proto, port: number): Array<[string, NamedSocket]> {
  const prefix = `${proto}:${port}/`;
  const out: Array<[string, NamedSocket]> = [];
  for (const [k, s] of names) if (k.startsWith(prefix) && s.live) out.push([k, s]);
  return out;
}

const IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26;

/**
 * Whether a socket bound (or to be bound) to key, with these socket options, is an IPv6 wildcard
 * that takes IPv4 as well (IPV6_V6ONLY off, Linux's default).
 */
function dualStack(key: string, options: ReadonlyMap<string, number> | undefined): boolean {
  const k = parseKey(key);
  return k.fam === 6 && k.ip === '*' && !options?.get(`${IPPROTO_IPV6}:${IPV6_V6ONLY}`);
}

/** The socket options of a bound socket of the table (an InetEnd's). */
function optionsOf(s: NamedSocket): ReadonlyMap<string, number> | undefined {
  return (s as unknown as Partial<InetEnd>).options;
}

/**
 * Whether a bind to key (by a socket that would be dual-stack or not) conflicts with one of the
 * port's bound sockets, as Linux's: the same family with the same address or either the
 * wildcard, or IPv4 against a dual-stack IPv6 wildcard.
 */
function conflicts(names: UnixNames, proto: Proto, key: string, dual: boolean): boolean {
  const k = parseKey(key);
  return boundTo(names, proto, k.port).some(([other, s]) => {
    const o = parseKey(other);
    if (o.fam === k.fam) return o.ip === k.ip || o.ip === '*' || k.ip === '*';
    return (k.fam === 4 && dualStack(other, optionsOf(s))) || (o.fam === 4 && dual);
  });
}

/**
 * The key of the socket a packet to `to` reaches: bound to its address, else to its family's
 * wildcard, else (IPv4) to a dual-stack IPv6 wildcard; null when none is.
 */
function resolve(names: UnixNames, proto: Proto, to: InetAddress): string | null {
  const exact = bindKey(proto, to);
  const v4 = v4Of(to.ip) !== null;
  const candidates = [exact, `${proto}:${to.port}/${v4 ? 4 : 6}:*`];
  for (const key of candidates) if (names.get(key)?.live) return key;
  const dual = `${proto}:${to.port}/6:*`;
  const s = names.get(dual);
  return v4 && s?.live && dualStack(dual, optionsOf(s)) ? dual : null;
}

/**
 * Bind to local's name (EADDRINUSE when it conflicts with a socket bound to the port); returns
 * local. options: the socket's, for IPV6_V6ONLY.
 */
function bindLocal(names: UnixNames, proto: Proto, local: InetAddress, options: Map<string, number>, bind: (key: string) => void): InetAddress {
  const key = bindKey(proto, local);
  if (conflicts(names, proto, key, dualStack(key, options))) throw new Errno(E.EADDRINUSE);
  bind(key);
  return local;
}

/** A free port of the ephemeral range (EADDRINUSE when none is). */
function freePort(names: UnixNames, proto: Proto): number {
  const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = EPHEMERAL_LOW + ((start + i) % span);
    if (boundTo(names, proto, port).length === 0) return port;
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
function portToBind(names: UnixNames, proto: Proto, a: InetAddress): number {
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

/**
 * A connected socket's own address: one bound to the wildcard (or not yet to any) shows the
 * source Linux picks for a loopback peer, 127.0.0.1 or ::1 (the local route's preferred source,
 * whichever 127.x the peer is), as its family shows it.
 */
function connectedLocal(local: InetAddress, remote: InetAddress, family: number): InetAddress {
  if (local.ip.length !== 0 && !isWildcard(local.ip)) return local;
  const fam = v4Of(remote.ip) ? AF_INET : AF_INET6;
  return { ...local, ip: asFamily({ family: fam, ip: loopback(fam), port: 0 }, family).ip };
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
    this.local = bindLocal(this.names, 'tcp', { family: this.family, ip: a.ip, port }, this.options, (k) => this.bind(k));
  }

  /** listen without bind: the wildcard address and a free port, as Linux's autobind. */
  protected override autobind(): void {
    this.bindInet(wildcard(this.family));
  }

  /** connect to the listener of to's port (the caller checked that to is reachable). */
  connectInet(to: InetAddress, budget: PipeBudget, pid: number): void {
    if (this.connected) throw new Errno(E.EISCONN);
    if (to.port === 0) throw new Errno(E.ECONNREFUSED);
    this.remote = peerOf(to);
    this.connect(resolve(this.names, 'tcp', this.remote) ?? `tcp:${to.port}/refused`, budget, pid);
    // A client without a port takes one; its address is the loopback address it reached.
    if (this.local === null) {
      const port = freePort(this.names, 'tcp');
      const local = connectedLocal({ family: this.family, ip: Buffer.alloc(0), port }, this.remote, this.family);
      const key = bindKey('tcp', local);
      this.names.set(key, this);
      this.address = key;
      this.local = local;
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
    this.local = bindLocal(this.names, 'udp', { family: this.family, ip: a.ip, port }, this.options, (k) => this.bind(k));
  }

  /** The name a datagram to a goes to (the caller checked that a is reachable); one nobody holds when no socket takes it. */
  nameOf(a: InetAddress): string {
    return resolve(this.names, 'udp', peerOf(a)) ?? `udp:${a.port}/none`;
  }

  /** connect sets the default receiver; nobody need hold its port yet. */
  connectInet(to: InetAddress): void {
    if (this.address === null) this.beforeSend();
    this.remote = peerOf(to);
    this.connect(this.nameOf(this.remote));
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
    const k = parseKey(this.lastFrom);
    const ip = k.ip === '*' ? loopback(k.fam === 4 ? AF_INET : AF_INET6) : Buffer.from(k.ip, 'hex');
    return asFamily({ family: ip.length === 4 ? AF_INET : AF_INET6, ip, port: k.port }, this.family);
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
