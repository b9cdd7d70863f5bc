// The ioctls of the sandbox's pseudo-terminals (src/fs/pty.ts): the master's (the slave's number,
// its lock, TIOCGPTPEER) and those of a terminal on either end (modes, window size, the session
// and foreground group, the controlling terminal). Every value from the guest is copied once.
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import {
  E, Errno, FIONREAD, O, TCFLSH, TCGETS, TCSBRK, TCSETS, TCSETSF, TCSETSW, TCXONC, TIOCGPGRP, TIOCGPTLCK, TIOCGPTN,
  TIOCGPTPEER, TIOCGSID, TIOCGWINSZ, TIOCNOTTY, TIOCOUTQ, TIOCSCTTY, TIOCSPGRP, TIOCSPTLCK, TIOCSWINSZ, SIG,
} from '../../abi/linux.js';
import { PtyMaster, PtySlave, TERMIOS_SIZE } from '../../fs/pty.js';
import { acquireTerminal } from '../special-files.js';
import { SI_KERNEL } from '../signals.js';
import type { Task } from '../task.js';
import type { Process } from '../process.js';

/** TCFLSH's queues, and the flush half of TCSETSF. */
const TCIFLUSH = 0;

/**
 * TIOCSPGRP's argument (tcsetpgrp), for a terminal of session sid: as Linux, a group with no
 * live member is ESRCH, one of another session EPERM.
 */
export function foregroundArg(p: Process, addr: bigint, sid: number): number {
  const pgrp = p.userBuffer(addr, 4, PROT_READ).readInt32LE(0);
  if (pgrp < 0) throw new Errno(E.EINVAL);
  const members = [...p.kernel.all()].filter((m) => m.pgid === pgrp && !m.zombie);
  if (members.length === 0) throw new Errno(E.ESRCH);
  if (!members.some((m) => m.sid === sid)) throw new Errno(E.EPERM);
  return pgrp;
}

/** ioctl on a pty end: the result, or null for a request that is not a terminal's (FIONBIO...). */
export function ptyIoctl(t: Task, f: PtyMaster | PtySlave, req: number, arg: bigint): number | null {
  const p = t.process;
  const pty = f.pty;
  const master = f instanceof PtyMaster;
  /** The slave as the caller's controlling terminal: its session's only (ENOTTY otherwise). */
  const ownTerminal = (): void => {
    if (!master && pty.sid !== p.sid) throw new Errno(E.ENOTTY);
  };
  switch (req) {
    case TIOCGPTN:
      if (!master) throw new Errno(E.ENOTTY);
      p.userBuffer(arg, 4, PROT_WRITE).writeUInt32LE(pty.index);
      return 0;
    case TIOCSPTLCK:
      if (!master) throw new Errno(E.ENOTTY);
      pty.locked = p.userBuffer(arg, 4, PROT_READ).readInt32LE(0) !== 0;
      return 0;
    case TIOCGPTLCK:
      if (!master) throw new Errno(E.ENOTTY);
      p.userBuffer(arg, 4, PROT_WRITE).writeInt32LE(pty.locked ? 1 : 0);
      return 0;
    case TIOCGPTPEER: {
      // Open the slave from the master (glibc's openpty does this first): flags as open(2)'s.
      if (!master) throw new Errno(E.ENOTTY);
      const flags = Number(BigInt.asUintN(32, arg));
      if (flags & ~(O.ACCMODE | O.NOCTTY | O.NONBLOCK | O.CLOEXEC)) throw new Errno(E.EINVAL);
      pty.slaveOpen();
      const slave = new PtySlave(pty, flags & (O.ACCMODE | O.NONBLOCK));
      if (!(flags & O.NOCTTY)) acquireTerminal(p, pty);
      return p.fds.install(slave, (flags & O.CLOEXEC) !== 0);
    }
    case TCGETS:
      pty.termios.copy(p.userBuffer(arg, TERMIOS_SIZE, PROT_WRITE));
      return 0;
    case TCSETS: case TCSETSW: case TCSETSF: {
      const modes = Buffer.from(p.userBuffer(arg, TERMIOS_SIZE, PROT_READ));
      pty.setTermios(modes);
      if (req === TCSETSF) pty.flush(TCIFLUSH);
      return 0;
    }
    case TIOCGWINSZ:
      pty.winsize.copy(p.userBuffer(arg, 8, PROT_WRITE));
      return 0;
    case TIOCSWINSZ:
      pty.setWinsize(Buffer.from(p.userBuffer(arg, 8, PROT_READ)));
      return 0;
    case TCFLSH:
      pty.flush(Number(BigInt.asIntN(32, arg)));
      return 0;
    case TCSBRK: case TCXONC:
      return 0;
    case FIONREAD:
      p.userBuffer(arg, 4, PROT_WRITE).writeInt32LE(master ? 0 : pty.readableBytes());
      return 0;
    case TIOCOUTQ:
      p.userBuffer(arg, 4, PROT_WRITE).writeInt32LE(0);
      return 0;
    case TIOCSCTTY:
      // Already this session's: nothing to do. Otherwise only a session leader without one may
      // take a terminal that is no session's (stealing one needs privilege: EPERM).
      if (pty.sid === p.sid) return 0;
      if (!acquireTerminal(p, pty)) throw new Errno(E.EPERM);
      return 0;
    case TIOCNOTTY:
      ownTerminal();
      if (master) throw new Errno(E.ENOTTY);
      // The session leader gives the terminal up: its foreground group is hung up, as on Linux.
      if (p.pid === p.sid) {
        const fg = pty.pgrp;
        pty.sid = 0;
        pty.pgrp = 0;
        if (fg > 0) for (const sig of [SIG.SIGHUP, SIG.SIGCONT]) p.kernel.signalGroup(fg, sig, SI_KERNEL);
      }
      return 0;
    case TIOCGPGRP: case TIOCGSID: {
      ownTerminal();
      if (pty.sid === 0) throw new Errno(E.ENOTTY);
      p.userBuffer(arg, 4, PROT_WRITE).writeInt32LE(req === TIOCGSID ? pty.sid : pty.pgrp);
      return 0;
    }
    case TIOCSPGRP: {
      ownTerminal();
      if (pty.sid !== p.sid) throw new Errno(E.ENOTTY);
      pty.pgrp = foregroundArg(p, arg, pty.sid);
      return 0;
    }
    default:
      return null;
  }
}
