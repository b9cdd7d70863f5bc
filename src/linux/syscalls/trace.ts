// strace-like formatting for --trace.
import type { Process } from '../process.js';
import { E, SYS, SYSCALL_NAMES } from '../../abi/linux.js';
import type { SyscallArgs } from './args.js';

/** Argument kinds per call: s = string pointer, d = signed int, x = hex, u = unsigned. */
const SPECS: Partial<Record<keyof typeof SYS, string>> = {
  read: 'dxu', write: 'dxu', open: 'sxo', openat: 'dsxo', close: 'd', stat: 'sx', lstat: 'sx', fstat: 'dx',
  newfstatat: 'dsxx', lseek: 'ddd', mmap: 'xuxxdx', munmap: 'xu', mprotect: 'xux', brk: 'x', ioctl: 'dxx',
  pread64: 'dxuu', pwrite64: 'dxuu', readv: 'dxu', writev: 'dxu', access: 'so', exit: 'd', exit_group: 'd',
  readlink: 'sxu', readlinkat: 'dsxu', getdents64: 'dxu', chdir: 's', mkdir: 'so', mkdirat: 'dso',
  unlink: 's', unlinkat: 'dsx', rmdir: 's', rename: 'ss', renameat: 'dsds', renameat2: 'dsdsx',
  symlink: 'ss', symlinkat: 'sds', faccessat: 'dso', faccessat2: 'dsox', statx: 'dsxxx', chmod: 'so',
  fchmodat: 'dsox', dup: 'd', dup2: 'dd', dup3: 'ddx', fcntl: 'ddx', arch_prctl: 'xx',
  inotify_add_watch: 'dsx', inotify_rm_watch: 'dd',
};

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(E).map(([k, v]) => [v, k]));

/** who: once the sandbox has more than one task, each line names the caller: its pid, and its tid
 * after a dot for a thread other than the first. */
export function formatSyscall(p: Process, nr: number, a: SyscallArgs, result: number | bigint, unknown: boolean, who = ''): string {
  const name = SYSCALL_NAMES[nr] ?? `syscall_${nr}`;
  const spec = SPECS[name as keyof typeof SYS] ?? 'xxxxxx'.slice(0, 3);
  const args = [...spec].map((k, i) => {
    const v = a[i]!;
    switch (k) {
      case 's':
        try { return JSON.stringify(p.userString(v, 256)); } catch { return `0x${v.toString(16)}`; }
      case 'd': return String(BigInt.asIntN(32, v));
      case 'u': return String(v);
      case 'o': return `0${v.toString(8)}`;
      default: return `0x${v.toString(16)}`;
    }
  });
  const r = BigInt(result);
  const res = r < 0n && r > -4096n ? `-1 ${ERRNO_NAMES[Number(-r)] ?? `errno ${-r}`}` : r > 0xffffn ? `0x${r.toString(16)}` : String(r);
  return `[kvmbox${who ? ` ${who}` : ''}] ${name}(${args.join(', ')}) = ${res}${unknown ? ' (not implemented)' : ''}`;
}

/** A fault delivered to the program's handler, as strace shows a signal: which, why, where. */
export function formatFaultSignal(who: string, signal: string, code: number, addr: bigint, rip: bigint, exception: string): string {
  return `[kvmbox${who ? ` ${who}` : ''}] --- ${signal} {si_code=${code}, si_addr=0x${addr.toString(16)}} at rip 0x${rip.toString(16)} (${exception}) ---`;
}
