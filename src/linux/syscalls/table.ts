// The Linux system-call table: number -> small function. Each function validates its own
// arguments (through Process.userBuffer/userString for pointers) and returns the result, or
// throws Errno. Numbers not in the table get ENOSYS.
import type { Process } from '../process.js';
import { SYS } from '../../abi/linux.js';
import { ioSyscalls } from './io.js';
import { fsSyscalls } from './fs.js';
import { mmSyscalls } from './mm.js';
import { procSyscalls } from './proc.js';
import { timeSyscalls } from './time.js';
import { taskSyscalls } from './tasks.js';
import { libcSupportSyscalls } from './libc-support.js';

export type SyscallArgs = [bigint, bigint, bigint, bigint, bigint, bigint];
export type SyscallFn = (p: Process, a: SyscallArgs) => number | bigint;
export type SyscallGroup = Partial<Record<keyof typeof SYS, SyscallFn>>;

export const SYSCALLS: Array<SyscallFn | undefined> = [];
for (const group of [ioSyscalls, fsSyscalls, mmSyscalls, procSyscalls, timeSyscalls, taskSyscalls, libcSupportSyscalls]) {
  for (const [name, fn] of Object.entries(group)) SYSCALLS[SYS[name as keyof typeof SYS]] = fn;
}

/** Argument conversions (Linux truncates int arguments to 32 bits). */
export const int = (v: bigint): number => Number(BigInt.asIntN(32, v));
export const uint = (v: bigint): number => Number(BigInt.asUintN(32, v));
export const long = (v: bigint): bigint => BigInt.asIntN(64, v);
/** A size_t: values past 2^53 become -1, which every pointer check rejects. */
export const size = (v: bigint): number => (v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v));
