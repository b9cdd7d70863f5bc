// Process file descriptors: pidfd_open, clone's CLONE_PIDFD, pidfd_send_signal, pidfd_getfd,
// and waitid(P_PIDFD). A pidfd names one process of the sandbox by its object, not its number, so
// it never reaches a later process that got the same pid. It reads as readable (poll, select,
// epoll) once the process has ended, zombie or reaped: POLLIN, as Linux 6.1 reports it (6.9 and
// later add POLLHUP once reaped). Every value from the guest is copied once and checked here.
import { PROT_READ } from '../address-space.js';
import { POLLIN } from '../../fs/open-file.js';
import { E, Errno, O } from '../../abi/linux.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { NSIG, SI_TKILL } from '../signals.js';
import { AnonFile } from './anon-file.js';
import { ProcPidDir } from '../special-files.js';
import { killProcess, sendQueuedInfo, SIGINFO_SIZE } from './signal.js';
import { int, type SyscallGroup } from './args.js';

const POLLRDNORM = 0x040;
const PIDFD_NONBLOCK = O.NONBLOCK;

export class PidFd extends AnonFile {
  constructor(readonly target: Process, statusFlags: number) {
    super('anon_inode:[pidfd]', statusFlags);
  }

  /** Reaped: the sandbox no longer holds the process (its pid may be another's by now). */
  get reaped(): boolean {
    return reaped(this.target);
  }

  read(): number { throw new Errno(E.EINVAL); }
  write(): number { throw new Errno(E.EINVAL); }
  pollMask(): number {
    return this.target.zombie || this.reaped ? POLLIN | POLLRDNORM : 0;
  }
}

/** The PidFd at fd: EBADF for a closed descriptor or any other kind of file, as Linux. */
export function pidFdAt(p: Process, fd: number): PidFd {
  const f = p.fds.get(fd);
  if (!(f instanceof PidFd)) throw new Errno(E.EBADF);
  return f;
}

/**
 * The process pidfd_send_signal signals through fd: a pidfd's, or an open /proc/PID directory's
 * (as Linux; a /proc/PID/task/TID directory is not one). EBADF for anything else.
 */
function signalTargetAt(p: Process, fd: number): Process {
  const f = p.fds.get(fd);
  if (f instanceof PidFd || f instanceof ProcPidDir) return f.target;
  throw new Errno(E.EBADF);
}

/** Whether the sandbox no longer holds q (reaped; its pid may be another's by now). */
function reaped(q: Process): boolean {
  return q.kernel.find(q.pid) !== q;
}

/** pidfd_open(pid, flags): a process of the sandbox; a thread that is not a leader is EINVAL. */
function pidfdOpen(p: Process, pid: number, flags: number): number {
  if (flags & ~PIDFD_NONBLOCK || pid <= 0) throw new Errno(E.EINVAL);
  const q = p.kernel.find(pid);
  if (!q) throw new Errno(p.kernel.findTask(pid) ? E.EINVAL : E.ESRCH);
  return p.fds.install(new PidFd(q, O.RDWR | (flags & PIDFD_NONBLOCK)), true);
}

/**
 * pidfd_send_signal(pidfd, sig, info, flags): kill, or with a siginfo rt_sigqueueinfo, to the
 * process of the pidfd (or /proc/PID directory). Its si_signo must be sig; only to itself (the calling thread's own pid)
 * may a thread send a siginfo that looks like the kernel's or kill's (EPERM). A reaped process
 * is ESRCH.
 */
function pidfdSendSignal(t: Task, fd: number, sig: number, infoAddr: bigint, flags: number): number {
  const p = t.process;
  if (flags !== 0) throw new Errno(E.EINVAL);
  const target = signalTargetAt(p, fd);
  let raw: Buffer | null = null;
  if (infoAddr !== 0n) {
    raw = Buffer.from(p.userBuffer(infoAddr, SIGINFO_SIZE, PROT_READ));
    if (raw.readInt32LE(0) !== sig) throw new Errno(E.EINVAL);
    const code = raw.readInt32LE(8);
    if (t.tid !== target.pid && (code >= 0 || code === SI_TKILL)) throw new Errno(E.EPERM);
  }
  if (sig < 0 || sig > NSIG) throw new Errno(E.EINVAL);
  if (reaped(target)) throw new Errno(E.ESRCH);
  if (raw) return sendQueuedInfo(t, target.pid, null, sig, raw);
  killProcess(t, target.pid, sig);
  return 0;
}

/**
 * pidfd_getfd(pidfd, targetfd, flags): a new descriptor (close-on-exec) for the open file at
 * targetfd in the pidfd's process. Every process of a sandbox has the same credentials, so each
 * may, as Linux lets a process take another's of the same user (ptrace's access rule).
 */
function pidfdGetfd(p: Process, fd: number, targetFd: number, flags: number): number {
  if (flags !== 0) throw new Errno(E.EINVAL);
  const f = pidFdAt(p, fd);
  if (f.reaped) throw new Errno(E.ESRCH);
  const q = f.target;
  // A process that has ended has no files (Linux: EBADF for a zombie).
  if (q.zombie || q.exit) throw new Errno(E.EBADF);
  return p.fds.install(q.fds.get(targetFd), true);
}

export const pidfdSyscalls: SyscallGroup = {
  pidfd_open: ({ process: p }, a) => pidfdOpen(p, int(a[0]), int(a[1])),
  pidfd_send_signal: (t, a) => pidfdSendSignal(t, int(a[0]), int(a[1]), a[2], int(a[3])),
  pidfd_getfd: ({ process: p }, a) => pidfdGetfd(p, int(a[0]), int(a[1]), int(a[2])),
};
