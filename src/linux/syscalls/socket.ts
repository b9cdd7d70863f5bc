// Sockets: only socketpair(AF_UNIX, SOCK_STREAM) (src/fs/socket-pair.ts), with send/recv and
// shutdown on it. socket(2) stays ENOSYS: kvmbox gives no network and no named sockets.
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno, O, SIG } from '../../abi/linux.js';
import { SocketEnd } from '../../fs/socket-pair.js';
import { raise } from '../signals.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { int, size, type SyscallGroup } from './args.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1, SOCK_TYPE_MASK = 0xf;
const SOCK_NONBLOCK = O.NONBLOCK, SOCK_CLOEXEC = O.CLOEXEC;
const MSG_OOB = 0x1, MSG_PEEK = 0x2, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
const SI_USER = 0;
/** Largest byte count one call moves (Linux's MAX_RW_COUNT). */
const MAX_RW_COUNT = 0x7ffff000;

function socketpair(p: Process, a: bigint[]): number {
  const domain = int(a[0]!), type = int(a[1]!), protocol = int(a[2]!);
  if (domain !== AF_UNIX) throw new Errno(E.EAFNOSUPPORT);
  if (type & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) throw new Errno(E.EINVAL);
  // Datagram and seqpacket pairs keep message boundaries, which two pipes cannot.
  if ((type & SOCK_TYPE_MASK) !== SOCK_STREAM) throw new Errno(E.EOPNOTSUPP);
  if (protocol !== 0) throw new Errno(E.EPROTONOSUPPORT);
  const out = p.userBuffer(a[3]!, 8, PROT_WRITE);
  const [x, y] = SocketEnd.pair(type & SOCK_NONBLOCK, p.limits.pipeBudget);
  const [xfd, yfd] = p.fds.installPair(x, y, (type & SOCK_CLOEXEC) !== 0);
  out.writeInt32LE(xfd, 0);
  out.writeInt32LE(yfd, 4);
  return 0;
}

function socketOf(p: Process, fd: bigint): SocketEnd {
  const f = p.fds.get(int(fd));
  if (!(f instanceof SocketEnd)) throw new Errno(E.ENOTSOCK);
  return f;
}

/** sendto(fd, buf, len, flags, addr, addrlen): a connected stream takes no address (EISCONN). */
function sendto(t: Task, a: bigint[]): number {
  const p = t.process;
  const s = socketOf(p, a[0]!);
  const flags = int(a[3]!);
  if (flags & MSG_OOB) throw new Errno(E.EOPNOTSUPP);
  if (a[4] !== 0n) throw new Errno(E.EISCONN);
  const n = Math.min(size(a[2]!), MAX_RW_COUNT);
  const buf = p.userBuffer(a[1]!, n < 0 ? a[2]! : n, PROT_READ);
  try {
    return s.send(buf, (flags & MSG_DONTWAIT) !== 0);
  } catch (e) {
    if (e instanceof Errno && e.errno === E.EPIPE && !(flags & MSG_NOSIGNAL)) raise(t, SIG.SIGPIPE, { code: SI_USER, pid: p.pid });
    throw e;
  }
}

/** recvfrom(fd, buf, len, flags, addr, addrlen): the peer has no address (addrlen becomes 0). */
function recvfrom(p: Process, a: bigint[]): number {
  const s = socketOf(p, a[0]!);
  const flags = int(a[3]!);
  if (flags & (MSG_OOB | MSG_PEEK)) throw new Errno(E.EOPNOTSUPP);
  const n = Math.min(size(a[2]!), MAX_RW_COUNT);
  const buf = p.userBuffer(a[1]!, n < 0 ? a[2]! : n, PROT_WRITE);
  const lenOut = a[4] !== 0n && a[5] !== 0n ? p.userBuffer(a[5]!, 4, PROT_WRITE) : null;
  if (buf.length === 0) return 0;
  const got = s.receive(buf, (flags & MSG_DONTWAIT) !== 0);
  lenOut?.writeUInt32LE(0, 0);
  return got;
}

export const socketSyscalls: SyscallGroup = {
  socketpair: ({ process: p }, a) => socketpair(p, a),
  sendto: (t, a) => sendto(t, a),
  recvfrom: ({ process: p }, a) => recvfrom(p, a),
  shutdown: ({ process: p }, a) => {
    socketOf(p, a[0]!).shutdown(int(a[1]!));
    return 0;
  },
};
