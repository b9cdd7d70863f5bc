// The Linux system-call table: number -> small function. Each function validates its own
// arguments (through Process.userBuffer/userString for pointers) and returns the result, or
// throws Errno. Numbers not in the table get ENOSYS. Only the kernel (src/linux/kernel.ts)
// imports this table; the handlers import ./args.js.
import { SYS } from '../../abi/linux.js';
import type { SyscallFn } from './args.js';
import { ioSyscalls } from './io.js';
import { fsSyscalls } from './fs.js';
import { mmSyscalls } from './mm.js';
import { procSyscalls } from './proc.js';
import { timeSyscalls } from './time.js';
import { taskSyscalls } from './tasks.js';
import { libcSupportSyscalls } from './libc-support.js';
import { signalSyscalls } from './signal.js';
import { processSyscalls } from './procs.js';
import { epollSyscalls } from './epoll.js';
import { socketSyscalls } from './socket.js';
import { timerfdSyscalls } from './timerfd.js';
import { timerSyscalls } from './timers.js';
import { signalfdSyscalls } from './signalfd.js';
import { inotifySyscalls } from './inotify.js';
import { pidfdSyscalls } from './pidfd.js';
import { ipcSyscalls } from './ipc.js';
import { pipeIoSyscalls } from './pipe-io.js';
import { mqueueSyscalls } from './mqueue.js';
import { ptraceSyscalls } from './ptrace.js';

export type { SyscallArgs, SyscallFn, SyscallGroup } from './args.js';

export const SYSCALLS: Array<SyscallFn | undefined> = [];
for (const group of [ioSyscalls, fsSyscalls, mmSyscalls, procSyscalls, timeSyscalls, taskSyscalls, libcSupportSyscalls, signalSyscalls, processSyscalls, epollSyscalls, timerfdSyscalls, timerSyscalls, signalfdSyscalls, inotifySyscalls, socketSyscalls, pidfdSyscalls, ipcSyscalls, pipeIoSyscalls, mqueueSyscalls, ptraceSyscalls]) {
  for (const [name, fn] of Object.entries(group)) SYSCALLS[SYS[name as keyof typeof SYS]] = fn;
}
