// POSIX message queue calls: mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify and
// mq_getsetattr, on the sandbox's queues (src/linux/mqueue.ts). These read the arguments in
// Linux's order, copy each message once, and write the results.
import { nameLength } from '../../abi/file-names.js';
import { E, Errno, O } from '../../abi/linux.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { MqFile, MQ_PRIO_MAX } from '../mqueue.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { int, size, uint, type SyscallGroup } from './args.js';
import { deadlineNow, readTimespec } from './time.js';
import { guarded } from './io.js';
import { raise } from '../signals.js';
import { GUEST_UID } from '../../abi/abi.generated.js';

const NAME_MAX = 255;
/** struct mq_attr: mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs, four reserved longs. */
const MQ_ATTR_SIZE = 64;
/** struct sigevent: the value, the signal, how to notify (the rest is SIGEV_THREAD's). */
const SIGEVENT_SIZE = 64;
const SIGEV_SIGNAL = 0, SIGEV_NONE = 1, SIGEV_THREAD = 2;
const CLOCK_REALTIME = 0;
const NSIG = 64;
const SI_MESGQ = -3;

/** A queue's name as the kernel gets it (libc drops the leading slash): one component. */
function queueName(p: Process, addr: bigint): string {
  const name = p.userString(addr);
  if (nameLength(name) > NAME_MAX) throw new Errno(E.ENAMETOOLONG);
  if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new Errno(E.EACCES);
  return name;
}

/** An absolute CLOCK_REALTIME timeout as a performance.now() deadline; EINVAL when malformed. */
function deadline(t: Task, addr: bigint): { at: number } | null {
  if (addr === 0n) return null;
  const left = Number(readTimespec(t.process, addr) - deadlineNow(t, CLOCK_REALTIME)) / 1e6;
  return { at: performance.now() + left };
}


function queueFile(p: Process, fd: number): MqFile {
  const f = p.fds.get(fd);
  if (!(f instanceof MqFile)) throw new Errno(E.EBADF);
  return f;
}

/** A long of struct mq_attr, as a number (huge ones stay out of every range). */
const field = (b: Buffer, i: number): number => {
  const v = b.readBigInt64LE(i * 8);
  return v > 0x7fffffffn ? 0x7fffffff : v < -0x7fffffffn ? -0x7fffffff : Number(v);
};

function mqOpen(p: Process, a: bigint[]): number {
  // The attributes are copied first whatever the flags, as Linux does.
  const attr = a[3] !== 0n ? Buffer.from(p.userBuffer(a[3]!, MQ_ATTR_SIZE, PROT_READ)) : null;
  const name = queueName(p, a[0]!);
  const oflag = int(a[1]!);
  const f = p.kernel.mqueues.open(name, oflag, int(a[2]!) & ~p.umask, attr ? { maxmsg: field(attr, 1), msgsize: field(attr, 2) } : null);
  try {
    // Message queue descriptors are always closed by execve.
    return p.fds.install(f, true);
  } catch (e) {
    f.close();
    throw e;
  }
}

function mqSend(t: Task, a: bigint[]): number {
  const p = t.process;
  const until = deadline(t, a[4]!);
  if (uint(a[3]!) >= MQ_PRIO_MAX || a[3]! >> 32n) throw new Errno(E.EINVAL);
  const f = queueFile(p, int(a[0]!));
  if (!f.writable) throw new Errno(E.EBADF);
  const len = size(a[2]!);
  if (len < 0 || len > f.queue.msgsize) throw new Errno(E.EMSGSIZE);
  const n = f.send(p.userBuffer(a[1]!, len, PROT_READ), uint(a[3]!), until);
  // The registration that ended: its process gets its signal (si_code SI_MESGQ, the sender, the value).
  const target = n && !n.process.zombie && n.notify === SIGEV_SIGNAL ? n.process.signalTarget(n.signal) ?? n.process.tasks[0] : undefined;
  if (n && target && n.signal > 0) {
    const info = Buffer.alloc(128);
    info.writeInt32LE(SI_MESGQ, 8);
    info.writeInt32LE(p.pid, 16);
    info.writeUInt32LE(GUEST_UID, 20);
    info.writeBigUInt64LE(n.value, 24);
    raise(target, n.signal, { code: SI_MESGQ, pid: p.pid, raw: info });
  }
  return 0;
}

function mqReceive(t: Task, a: bigint[]): number {
  const p = t.process;
  const until = deadline(t, a[4]!);
  const f = queueFile(p, int(a[0]!));
  const len = size(a[2]!);
  const m = f.receive(len < 0 ? Number.MAX_SAFE_INTEGER : len, until);
  // Taken from the queue first, as on Linux: a bad buffer loses the message (EFAULT).
  m.data.copy(p.userBuffer(a[1]!, m.data.length, PROT_WRITE));
  if (a[3] !== 0n) p.userBuffer(a[3]!, 4, PROT_WRITE).writeUInt32LE(m.prio);
  return m.data.length;
}

function mqNotify(p: Process, a: bigint[]): number {
  let how: { notify: number; signal: number; value: bigint } | null = null;
  if (a[1] !== 0n) {
    const ev = Buffer.from(p.userBuffer(a[1]!, SIGEVENT_SIZE, PROT_READ));
    const notify = ev.readInt32LE(12), signal = ev.readInt32LE(8);
    if (notify !== SIGEV_NONE && notify !== SIGEV_SIGNAL && notify !== SIGEV_THREAD) throw new Errno(E.EINVAL);
    if (notify === SIGEV_SIGNAL && (signal < 0 || signal > NSIG)) throw new Errno(E.EINVAL);
    // SIGEV_THREAD (glibc's, through a netlink socket) is not served.
    if (notify === SIGEV_THREAD) throw new Errno(E.ENOSYS);
    how = { notify, signal, value: ev.readBigUInt64LE(0) };
  }
  const q = queueFile(p, int(a[0]!)).queue;
  if (!how) {
    if (q.notify?.process === p) q.notify = null;
    return 0;
  }
  if (q.notify && !q.notify.process.zombie) throw new Errno(E.EBUSY);
  q.notify = { process: p, ...how };
  return 0;
}

function mqGetSetAttr(p: Process, a: bigint[]): number {
  let flags: number | null = null;
  if (a[1] !== 0n) {
    const v = Buffer.from(p.userBuffer(a[1]!, MQ_ATTR_SIZE, PROT_READ)).readBigInt64LE(0);
    if (v & ~BigInt(O.NONBLOCK)) throw new Errno(E.EINVAL);
    flags = Number(v);
  }
  const f = queueFile(p, int(a[0]!));
  const old = Buffer.alloc(MQ_ATTR_SIZE);
  old.writeBigInt64LE(BigInt(f.statusFlags & O.NONBLOCK), 0);
  old.writeBigInt64LE(BigInt(f.queue.maxmsg), 8);
  old.writeBigInt64LE(BigInt(f.queue.msgsize), 16);
  old.writeBigInt64LE(BigInt(f.queue.messages.length), 24);
  if (flags !== null) f.statusFlags = (f.statusFlags & ~O.NONBLOCK) | flags;
  if (a[2] !== 0n) old.copy(p.userBuffer(a[2]!, MQ_ATTR_SIZE, PROT_WRITE));
  return 0;
}

export const mqueueSyscalls: SyscallGroup = {
  mq_open: ({ process: p }, a) => mqOpen(p, a),
  mq_unlink: ({ process: p }, a) => { p.kernel.mqueues.unlink(queueName(p, a[0]!)); return 0; },
  mq_timedsend: (t, a) => guarded(t.process, () => mqSend(t, a)),
  mq_timedreceive: (t, a) => guarded(t.process, () => mqReceive(t, a)),
  mq_notify: ({ process: p }, a) => mqNotify(p, a),
  mq_getsetattr: ({ process: p }, a) => mqGetSetAttr(p, a),
};
