// Acting on a task's seccomp verdict (src/linux/seccomp.ts) before kvmbox serves one of its
// system calls: the call goes on, fails with the filter's errno, raises SIGSYS, or ends the
// thread or the process.
import { E, SYS, SYSCALL_NAMES } from '../abi/linux.js';
import { bit, killWith, raise } from './signals.js';
import type { Task } from './task.js';
import {
  AUDIT_ARCH_X86_64, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_LOG, SECCOMP_RET_TRACE,
  SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF, verdict, type SeccompState,
} from './seccomp.js';

/** The largest errno a filter's SECCOMP_RET_ERRNO gives (MAX_ERRNO). */
const MAX_ERRNO = 4095;

const SIGSYS = 31, SIGKILL = 9, SYS_SECCOMP = 1;
/** Calls strict mode lets through (rt_sigreturn, the fourth, never reaches the table). */
const STRICT_CALLS = new Set<number>([SYS.read, SYS.write, SYS.exit]);

/**
 * Screen one system call of t (its filters or strict mode apply): null lets it through; a
 * number is the call's result without it being made (-errno for SECCOMP_RET_ERRNO; for
 * SECCOMP_RET_TRAP the call's number, as Linux rolls rax back to it for the handler; ENOSYS
 * otherwise). A kill sets the process's end (or, for SECCOMP_RET_KILL_THREAD with other threads
 * alive, ends the thread); SECCOMP_RET_TRAP raises SIGSYS with the call's siginfo, forced
 * through a blocked or ignored action as Linux forces it.
 */
export function screen(t: Task, state: SeccompState, nr: number, args: readonly bigint[], ip: bigint): number | null {
  const p = t.process;
  if (state.mode === 1) {
    if (STRICT_CALLS.has(nr)) return null;
    killWith(p, SIGKILL, `(seccomp strict mode: system call ${SYSCALL_NAMES[nr] ?? nr})`);
    return -E.ENOSYS;
  }
  const { action, data } = verdict(state.filters, nr, ip, args);
  switch (action) {
    case SECCOMP_RET_ALLOW: case SECCOMP_RET_LOG: return null;
    case SECCOMP_RET_ERRNO: return -Math.min(data, MAX_ERRNO);
    case SECCOMP_RET_TRAP: {
      const info = Buffer.alloc(128);
      info.writeInt32LE(data, 4);
      info.writeInt32LE(SYS_SECCOMP, 8);
      info.writeBigUInt64LE(ip, 16);
      info.writeInt32LE(nr, 24);
      info.writeUInt32LE(AUDIT_ARCH_X86_64, 28);
      const blocked = (t.sigmask & bit(SIGSYS)) !== 0n;
      if (blocked || (p.sigactions.get(SIGSYS)?.readBigUInt64LE(0) ?? 0n) === 1n) p.sigactions.delete(SIGSYS);
      if (blocked) t.sigmask &= ~bit(SIGSYS);
      raise(t, SIGSYS, { code: SYS_SECCOMP, raw: info });
      return nr;
    }
    case SECCOMP_RET_KILL_THREAD:
      if (p.tasks.some((o) => o !== t && o.state !== 'dead')) {
        p.kernel.exitThread(t, 0);
        return -E.ENOSYS;
      }
      break;
    case SECCOMP_RET_TRACE: case SECCOMP_RET_USER_NOTIF: return -E.ENOSYS;
  }
  killWith(p, SIGSYS, `(seccomp: system call ${SYSCALL_NAMES[nr] ?? nr})`);
  return -E.ENOSYS;
}
