// signalfd: a descriptor that reads the caller's pending signals of a mask as records (struct
// signalfd_siginfo), instead of having them delivered; the program blocks them first. A read
// takes the signals pending for the reading thread, then those pending elsewhere in its process
// (kvmbox keeps a process-directed signal on the thread it chose: Process.signalTarget); poll,
// select and epoll see it readable while the polling process has one pending (a child that
// inherited the descriptor polls its own signals, as on Linux). Every value from
// the guest is copied once; a bad mask size or flag is EINVAL, as on Linux.
import { PROT_READ } from '../address-space.js';
import { POLLIN, WouldBlock } from '../../fs/open-file.js';
import { E, Errno, O } from '../../abi/linux.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { SIGCHLD, SI_TIMER, UNBLOCKABLE, takePending } from '../signals.js';
import { AnonFile } from './anon-file.js';
import { int, size, type SyscallGroup } from './args.js';

/** struct signalfd_siginfo's size, and its fields' offsets. */
const RECORD = 128;
const SSI = { signo: 0, errno: 4, code: 8, pid: 12, uid: 16, tid: 24, overrun: 32, status: 40, int: 44, ptr: 48, addr: 72 } as const;
const SFD_NONBLOCK = O.NONBLOCK, SFD_CLOEXEC = O.CLOEXEC;

export class SignalFd extends AnonFile {
  /** The thread whose read this is (set by the read call: a signalfd reads its reader's signals). */
  reader: Task | null = null;
  /** The process that last polled it (poll, select, epoll_wait): its signals make it readable. */
  poller: Process | null = null;
  constructor(readonly owner: Process, public mask: bigint, statusFlags: number) {
    super('anon_inode:[signalfd]', statusFlags);
  }

  /** A thread with a signal of the mask pending: the reader first, then the others of its process. */
  private source(): Task | undefined {
    const t = this.reader;
    const p = t?.process ?? this.poller ?? this.owner;
    if (t && t.pending & this.mask) return t;
    return p.tasks.find((o) => o.state !== 'dead' && (o.pending & this.mask) !== 0n);
  }

  read(buf: Buffer): number {
    if (buf.length < RECORD) throw new Errno(E.EINVAL);
    let n = 0;
    for (let t = this.source(); t && n + RECORD <= buf.length; t = this.source()) {
      const got = takePending(t, this.mask);
      if (!got) break;
      record(got.sig, got.info).copy(buf, n);
      n += RECORD;
    }
    this.reader = null;
    if (n > 0) return n;
    if (this.statusFlags & O.NONBLOCK) throw new Errno(E.EAGAIN);
    throw new WouldBlock('it reads a signalfd', () => this.source() !== undefined);
  }

  write(): number { throw new Errno(E.EINVAL); }
  pollMask(): number { return this.source() ? POLLIN : 0; }
  /** Readiness for process p's poll, select or epoll_wait: p's signals, from now on (poller). */
  pollMaskFor(p: Process): number {
    this.poller = p;
    return this.pollMask();
  }
}

/** A struct signalfd_siginfo from a signal's siginfo (src/linux/signals.ts siginfo). */
function record(sig: number, info: Buffer): Buffer {
  const r = Buffer.alloc(RECORD);
  const code = info.readInt32LE(8);
  r.writeUInt32LE(sig, SSI.signo);
  r.writeInt32LE(info.readInt32LE(4), SSI.errno);
  r.writeInt32LE(code, SSI.code);
  if (sig === SIGCHLD) {
    r.writeUInt32LE(info.readUInt32LE(16), SSI.pid);
    r.writeUInt32LE(info.readUInt32LE(20), SSI.uid);
    r.writeInt32LE(info.readInt32LE(24), SSI.status);
  } else if (code === SI_TIMER) {
    r.writeUInt32LE(info.readUInt32LE(16), SSI.tid);
    r.writeUInt32LE(info.readUInt32LE(20), SSI.overrun);
    r.writeInt32LE(info.readInt32LE(24), SSI.int);
    r.writeBigUInt64LE(info.readBigUInt64LE(24), SSI.ptr);
  } else if (code <= 0) {
    r.writeUInt32LE(info.readUInt32LE(16), SSI.pid);
    r.writeUInt32LE(info.readUInt32LE(20), SSI.uid);
    r.writeInt32LE(info.readInt32LE(24), SSI.int);
    r.writeBigUInt64LE(info.readBigUInt64LE(24), SSI.ptr);
  } else {
    r.writeBigUInt64LE(info.readBigUInt64LE(16), SSI.addr);
  }
  return r;
}

/** signalfd4 (and signalfd, flags 0): a new signalfd (fd -1), or a new mask for an existing one. */
function signalfd(p: Process, fd: number, maskAddr: bigint, maskSize: number, flags: number): number {
  if (maskSize !== 8 || flags & ~(SFD_NONBLOCK | SFD_CLOEXEC)) throw new Errno(E.EINVAL);
  const mask = p.userBuffer(maskAddr, 8, PROT_READ).readBigUInt64LE(0) & ~UNBLOCKABLE;
  if (fd !== -1) {
    const f = p.fds.get(fd);
    if (!(f instanceof SignalFd)) throw new Errno(E.EINVAL);
    f.mask = mask;
    return fd;
  }
  return p.fds.install(new SignalFd(p, mask, O.RDWR | (flags & SFD_NONBLOCK)), (flags & SFD_CLOEXEC) !== 0);
}

export const signalfdSyscalls: SyscallGroup = {
  signalfd: ({ process: p }, a) => signalfd(p, int(a[0]), a[1], size(a[2]), 0),
  signalfd4: ({ process: p }, a) => signalfd(p, int(a[0]), a[1], size(a[2]), int(a[3])),
};
