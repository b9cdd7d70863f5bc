// What every system-call handler shares: the handler's type and the argument conversions. The
// handlers import this module, never the table (table.ts), so no handler can reach the table or
// the kernel (src/linux/kernel.ts) that dispatches through it.
import type { SYS } from '../../abi/linux.js';
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
