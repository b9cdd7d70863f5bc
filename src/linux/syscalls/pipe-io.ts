// splice(2), tee(2) and vmsplice(2): bytes moved to and from pipes without a buffer of the
// program's. Linux moves page references; here the bytes are copied once through the host (as
// sendfile does, src/linux/syscalls/io.ts pump), which a program cannot tell apart. The checks and
// their order are Linux's (fs/splice.c): a zero length first, then the flags, the descriptors'
// modes, which end is a pipe, and the offsets.
//
// A pipe is one of the sandbox's (pipe, pipe2, a FIFO) or a host pipe the sandbox inherited
// (a standard stream). tee needs two of the sandbox's own: it copies without consuming, which a
// host pipe cannot do for kvmbox (EINVAL there).
import { E, Errno, O, S_IFIFO } from '../../abi/linux.js';
import { PipeEnd, POLLIN, POLLOUT, type OpenFile } from '../../fs/open-file.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import type { Process } from '../process.js';
import { int, size, uint, type SyscallGroup } from './args.js';
import { fileType, guarded, pump, readv, wouldWait, writeRoom, writev } from './io.js';

const SPLICE_F_NONBLOCK = 2;
/** SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT. */
const SPLICE_F_ALL = 15;
/** Linux caps one transfer at this many bytes. */
const MAX_RW_COUNT = 0x7ffff000;

function isPipe(f: OpenFile): boolean {
  return f instanceof PipeEnd || fileType(f) === S_IFIFO;
}

function modes(src: OpenFile, out: OpenFile): void {
  if ((src.statusFlags & O.ACCMODE) === O.WRONLY || (out.statusFlags & O.ACCMODE) === O.RDONLY) throw new Errno(E.EBADF);
}

/** A length argument: 0 ends the call at once (null); Linux caps the rest at MAX_RW_COUNT. */
function lengthArg(arg: bigint): number | null {
  const n = size(arg);
  if (n === 0) return null;
  return n < 0 ? MAX_RW_COUNT : Math.min(n, MAX_RW_COUNT);
}

/** An offset argument (loff_t *): none for NULL; ESPIPE for a pipe's end; EINVAL when negative. */
function offsetArg(p: Process, addr: bigint, f: OpenFile): bigint | null {
  if (addr === 0n) return null;
  if (isPipe(f)) throw new Errno(E.ESPIPE);
  const o = p.userBuffer(addr, 8, PROT_READ).readBigInt64LE(0);
  if (o < 0n) throw new Errno(E.EINVAL);
  return o;
}

function splice(p: Process, a: bigint[]): number {
  const len = lengthArg(a[4]!);
  if (len === null) return 0;
  const flags = uint(a[5]!);
  if (flags & ~SPLICE_F_ALL) throw new Errno(E.EINVAL);
  const src = p.fds.get(int(a[0]!)), out = p.fds.get(int(a[2]!));
  modes(src, out);
  const inPipe = isPipe(src), outPipe = isPipe(out);
  if (!inPipe && !outPipe) throw new Errno(E.EINVAL);
  if (inPipe && outPipe && ((a[1] !== 0n || a[3] !== 0n))) throw new Errno(E.ESPIPE);
  if (src instanceof PipeEnd && src.samePipe(out)) throw new Errno(E.EINVAL);
  const inOff = offsetArg(p, a[1]!, src), outOff = offsetArg(p, a[3]!, out);
  if (!outPipe && out.statusFlags & O.APPEND) throw new Errno(E.EINVAL);
  if (flags & SPLICE_F_NONBLOCK && ((inPipe && wouldWait(src, POLLIN)) || (outPipe && wouldWait(out, POLLOUT)))) throw new Errno(E.EAGAIN);
  const moved = pump(p, src, inOff, out, outOff, writeRoom(p, out, outOff, len));
  if (inOff !== null) p.userBuffer(a[1]!, 8, PROT_WRITE).writeBigInt64LE(moved.inOff!);
  if (outOff !== null) p.userBuffer(a[3]!, 8, PROT_WRITE).writeBigInt64LE(moved.outOff!);
  return moved.total;
}

/** tee: what src's pipe holds (up to len bytes) copied into out's, and left in src's. */
function tee(p: Process, a: bigint[]): number {
  const len = lengthArg(a[2]!);
  if (len === null) return 0;
  const flags = uint(a[3]!);
  if (flags & ~SPLICE_F_ALL) throw new Errno(E.EINVAL);
  const src = p.fds.get(int(a[0]!)), out = p.fds.get(int(a[1]!));
  modes(src, out);
  if (!(src instanceof PipeEnd) || !(out instanceof PipeEnd) || src.samePipe(out)) throw new Errno(E.EINVAL);
  const nonblock = (flags & SPLICE_F_NONBLOCK) !== 0;
  if (src.available() === 0) {
    if (nonblock && wouldWait(src, POLLIN)) throw new Errno(E.EAGAIN);
    // Waits for a writer (or EAGAIN on an O_NONBLOCK end); 0 when none is left.
    return src.readOrPeek(Buffer.alloc(1), true);
  }
  if (nonblock && wouldWait(out, POLLOUT)) throw new Errno(E.EAGAIN);
  const n = out.reserve(Math.min(len, src.available()));
  const bytes = Buffer.alloc(n);
  src.readOrPeek(bytes, true);
  return out.write(bytes);
}

/** vmsplice: the program's iovecs into a pipe's write end (as writev), or out of its read end (as readv). */
function vmsplice(p: Process, a: bigint[]): number {
  const flags = uint(a[3]!);
  if (flags & ~SPLICE_F_ALL) throw new Errno(E.EINVAL);
  const f = p.fds.get(int(a[0]!));
  const write = (f.statusFlags & O.ACCMODE) !== O.RDONLY;
  if (!isPipe(f)) throw new Errno(E.EBADF);
  if (flags & SPLICE_F_NONBLOCK && wouldWait(f, write ? POLLOUT : POLLIN)) throw new Errno(E.EAGAIN);
  return guarded(p, () => (write ? writev(p, a, null) : readv(p, a, null)));
}

export const pipeIoSyscalls: SyscallGroup = {
  splice: ({ process: p }, a) => guarded(p, () => splice(p, a)),
  tee: ({ process: p }, a) => guarded(p, () => tee(p, a)),
  vmsplice: ({ process: p }, a) => vmsplice(p, a),
};
