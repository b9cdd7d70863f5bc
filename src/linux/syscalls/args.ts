// What every system-call handler shares: the handler's type and the argument conversions. The
// handlers import this module, never the table (table.ts), so no handler can reach the table or
// the kernel (src/linux/kernel.ts) that dispatches through it.
import { Errno, type SYS } from '../../abi/linux.js';
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
