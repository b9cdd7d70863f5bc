// The modes of the host terminal that the sandbox's standard streams are (issue 15: programs that
// read keys one by one, editors, pagers, python's and bash's line editing). A program sets them
// with tcsetattr as on Linux, and the host terminal's own line discipline then does the work:
// echo, canonical lines, and Ctrl-C, which reaches kvmbox as a host signal that the CLI forwards
// to the sandbox's foreground process group (src/api/run.ts, forwardSignals). The program may
// change how the terminal treats characters, never the line itself (speed, modem control, the
// line discipline); whatever it changed is put back when the sandbox ends.
import * as libc from '../kvm/libc.js';
import { E, Errno, TCFLSH, TCGETS, TCSETS, TCXONC } from '../abi/linux.js';

/** struct termios as the kernel's TCGETS/TCSETS take it (not glibc's 60-byte one). */
export const KERNEL_TERMIOS_SIZE = 36;
const C_CFLAG = 8, C_LINE = 16;
/** c_cflag bits a program may change: character size, stop bits, parity, the receiver. */
const CSIZE = 0o60, CSTOPB = 0o100, CREAD = 0o200, PARENB = 0o400, PARODD = 0o1000;
const PROGRAM_CFLAG = CSIZE | CSTOPB | CREAD | PARENB | PARODD;
const TCIFLUSH = 0;
/** tcflow's actions: suspend or resume output, send STOP or START. */
const TCOOFF = 0, TCOON = 1;

export class TerminalModes {
  /** The modes of each host terminal fd before the sandbox first changed them, in that order. */
  private readonly saved = new Map<number, Buffer>();

  /**
   * tcsetattr(TCSANOW, TCSADRAIN or TCSAFLUSH) on host terminal fd: the program's modes (a copy
   * of its struct, read once), with the line's own settings kept. Applied at once: kvmbox queues
   * no output of its own, so there is nothing to drain; flushInput drops unread input as
   * TCSAFLUSH does.
   */
  set(hostFd: number, modes: Buffer, flushInput: boolean): void {
    const now = Buffer.alloc(KERNEL_TERMIOS_SIZE);
    const r = libc.ioctlOut(hostFd, TCGETS, now);
    if (r < 0) throw new Errno(r === -E.ENOTTY ? E.ENOTTY : E.EIO);
    if (!this.saved.has(hostFd)) this.saved.set(hostFd, Buffer.from(now));
    const want = Buffer.from(modes.subarray(0, KERNEL_TERMIOS_SIZE));
    want.writeUInt32LE(((now.readUInt32LE(C_CFLAG) & ~PROGRAM_CFLAG) | (want.readUInt32LE(C_CFLAG) & PROGRAM_CFLAG)) >>> 0, C_CFLAG);
    want[C_LINE] = now[C_LINE]!;
    const w = libc.ioctlIn(hostFd, TCSETS, want);
    if (w < 0) throw new Errno(w === -E.EINTR ? E.EINTR : E.EIO);
    if (flushInput) libc.ioctlArg(hostFd, TCFLSH, TCIFLUSH);
  }

  /** tcflush(queue): drop input not read yet (TCIFLUSH), output not sent (TCOFLUSH), or both. */
  flush(hostFd: number, queue: number): void {
    if (queue < 0 || queue > 2) throw new Errno(E.EINVAL);
    const r = libc.ioctlArg(hostFd, TCFLSH, queue);
    if (r < 0) throw new Errno(E.EIO);
  }

  /** The program's modes while suspend() has put the terminal's own back. */
  private readonly suspended = new Map<number, Buffer>();

  /** The program stopped (and kvmbox with it): the terminal's own modes, until resume(). */
  suspend(): void {
    for (const [fd, modes] of this.saved) {
      const now = Buffer.alloc(KERNEL_TERMIOS_SIZE);
      if (libc.ioctlOut(fd, TCGETS, now) < 0) continue;
      this.suspended.set(fd, now);
      libc.ioctlIn(fd, TCSETS, modes);
    }
  }

  /** The program goes on: its modes again. */
  resume(): void {
    for (const [fd, modes] of this.suspended) libc.ioctlIn(fd, TCSETS, modes);
    this.suspended.clear();
  }

  /** Terminal fds whose output the program suspended (tcflow TCOOFF): resumed at the end. */
  private readonly outputOff = new Set<number>();

  /** tcflow(action): suspend or resume output (TCOOFF, TCOON), send STOP or START (TCIOFF, TCION). */
  flow(hostFd: number, action: number): void {
    if (action < 0 || action > 3) throw new Errno(E.EINVAL);
    const r = libc.ioctlArg(hostFd, TCXONC, action);
    if (r < 0) throw new Errno(E.EIO);
    if (action === TCOOFF) this.outputOff.add(hostFd);
    if (action === TCOON) this.outputOff.delete(hostFd);
  }

  /** Put back every terminal's modes as they were before the sandbox changed them, and its output flowing (at its end). */
  restore(): void {
    for (const [fd, modes] of [...this.saved].reverse()) libc.ioctlIn(fd, TCSETS, modes);
    this.saved.clear();
    for (const fd of this.outputOff) libc.ioctlArg(fd, TCXONC, TCOON);
    this.outputOff.clear();
  }
}
