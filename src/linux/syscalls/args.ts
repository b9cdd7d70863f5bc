// What every system-call handler shares: the handler's type and the argument conversions. The
// handlers import this module, never the table (table.ts), so no handler can reach the table or
// the kernel (src/linux/kernel.ts) that dispatches through it.
import { Errno, type SYS } from '../../abi/linux.js';
import { WouldBlock } from '../../fs/open-file.js';
import type { Task } from '../task.js';

export type SyscallArgs = [bigint, bigint, bigint, bigint, bigint, bigint];
/** A handler: runs for the calling thread (its process is t.process); returns the result or throws Errno. */
export type SyscallFn = (t: Task, a: SyscallArgs) => number | bigint;
export type SyscallGroup = Partial<Record<keyof typeof SYS, SyscallFn>>;

/** Argument conversions (Linux truncates int arguments to 32 bits). */
export const int = (v: bigint): number => Number(BigInt.asIntN(32, v));
export const uint = (v: bigint): number => Number(BigInt.asUintN(32, v));
export const long = (v: bigint): bigint => BigInt.asIntN(64, v);
/** A size_t: values past 2^53 become -1, which every pointer check rejects. */
export const size = (v: bigint): number => (v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v));

/**
 * Move the buffers in turn (move gets each and the bytes moved before it) until one moves short.
 * An error after some bytes ends the call with those bytes; one before any byte is the call's.
 */
export function movePieces(bufs: readonly Buffer[], move: (buf: Buffer, done: number) => number): number {
  let done = 0;
  for (const buf of bufs) {
    let n: number;
    try {
      n = move(buf, done);
    } catch (e) {
      if (done > 0 && e instanceof Errno) break;
      throw e;
    }
    done += n;
    if (n < buf.length) break;
  }
  return done;
}

/**
 * Bytes a blocking write or send has moved so far, by its call's argument array: the same array
 * each time a waiting call runs again (src/linux/kernel.ts).
 */
const progress = new WeakMap<readonly bigint[], number>();

/**
 * Move pieces in order, each through move (one write or send, which may take part of what it is
 * given), until all are in. As on Linux, a blocking write to a pipe or a stream socket returns
 * only when all of it is in, waiting for room as often as it must, or when a signal interrupts
 * a wait after some of it went in: then with the count so far (WouldBlock.partial). A short
 * count is for non-blocking writes and errors after some bytes; unzip took one from a pipe for
 * the end of its write and lost the rest. call keys the count so far while the call waits.
 */
export function moveWhole(call: readonly bigint[], pieces: readonly Buffer[], blocking: boolean, move: (buf: Buffer) => number): number {
  // Nothing to move is still one call (an empty message on a record socket is a message).
  if (pieces.every((b) => b.length === 0)) return move(pieces[0] ?? Buffer.alloc(0));
  const start = progress.get(call) ?? 0;
  progress.delete(call);
  let done = 0;
  try {
    for (const piece of pieces) {
      let off = Math.min(piece.length, Math.max(0, start - done));
      done += off;
      while (off < piece.length) {
        const n = move(off === 0 ? piece : piece.subarray(off));
        off += n;
        done += n;
        if (n === 0 || (!blocking && off < piece.length)) return done;
      }
    }
    return done;
  } catch (e) {
    if (done === 0 || !(e instanceof Errno)) throw e;
    if (!(e instanceof WouldBlock)) return done;
    progress.set(call, done);
    const soFar = done, limit = e.timeout;
    throw new WouldBlock(e.what, e.ready, limit && { get at() { return limit.at; }, result: () => soFar }, e.onCancel, e.hostFds, () => soFar);
  }
}
