// Pseudo-terminals inside the sandbox (/dev/ptmx, /dev/pts/N): what `script`, python's pty
// module, pexpect and terminal multiplexers open. Both ends live in the sandbox; nothing of the
// host's terminals is involved. A pty is two queues and the line discipline between them, as
// Linux's n_tty does it in the essentials:
//   - what the master writes is the slave's input: CR/NL translation (ICRNL, INLCR, IGNCR), the
//     signal characters (ISIG: ^C, ^\, ^Z to the terminal's foreground process group), line
//     editing in canonical mode (ICANON: erase, kill, EOF, lines given whole) and echo (ECHO,
//     ECHOE, ECHOK, ECHOCTL, ECHONL) back to the master;
//   - what the slave writes is the master's input, with NL turned into CR NL (OPOST, ONLCR).
// The session and foreground process group of a pty (its controlling-terminal role) are kept here
// as numbers; the Linux personality sets them (src/linux/syscalls/pty.ts) and is told of the
// signals to raise through the Pty's onSignal hook, so this layer never reaches a process.
//
// Host memory: each queue holds at most PTY_QUEUE bytes; a writer that finds the other side's
// queue full waits (or gets EAGAIN), as on Linux; at most MAX_PTYS ptys per sandbox.
import { E, Errno, O, S_IFCHR, STAT } from '../abi/linux.js';
import { POLLHUP, POLLIN, POLLOUT, WouldBlock, charDeviceStat, streamStat, type OpenFile } from './open-file.js';

/** Bytes each direction of a pty holds (Linux's N_TTY_BUF_SIZE is 4096; its output side has more). */
export const PTY_QUEUE = 65536;
/** Ptys one sandbox may have open at once (ENOSPC beyond, as /dev/ptmx past its max). */
export const MAX_PTYS = 64;
/** The slaves' device major (Linux's UNIX98_PTY_SLAVE_MAJOR), and /dev/ptmx's device (5:2). */
export const PTS_MAJOR = 136;
export const PTMX_RDEV = 0x502;

/** The kernel's struct termios: c_iflag, c_oflag, c_cflag, c_lflag, c_line, c_cc[19]. */
export const TERMIOS_SIZE = 36;
const IFLAG = 0, OFLAG = 4, CFLAG = 8, LFLAG = 12, CC = 17;
const IGNCR = 0x80, ICRNL = 0x100, INLCR = 0x40, IXON = 0x400;
const OPOST = 1, ONLCR = 4;
const B38400 = 0xf, CS8 = 0x30, CREAD = 0x80, HUPCL = 0x400;
const ISIG = 1, ICANON = 2, ECHO = 8, ECHOE = 0x10, ECHOK = 0x20, ECHONL = 0x40, NOFLSH = 0x80, ECHOCTL = 0x200, ECHOKE = 0x800, IEXTEN = 0x8000;
const VINTR = 0, VQUIT = 1, VERASE = 2, VKILL = 3, VEOF = 4, VMIN = 6, VSUSP = 10, VEOL = 11, VEOL2 = 16;
/** Linux's INIT_C_CC: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1, ^Q ^S ^Z, VEOL 0, ^R ^O ^W ^V. */
const INIT_C_CC = [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0];
const SIGINT = 2, SIGQUIT = 3, SIGTSTP = 20, SIGWINCH = 28;

/** A new terminal's modes, as Linux gives a pty (tty_std_termios). */
function standardTermios(): Buffer {
  const t = Buffer.alloc(TERMIOS_SIZE);
  t.writeUInt32LE(ICRNL | IXON, IFLAG);
  t.writeUInt32LE(OPOST | ONLCR, OFLAG);
  t.writeUInt32LE(B38400 | CS8 | CREAD | HUPCL, CFLAG);
  t.writeUInt32LE(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN, LFLAG);
  INIT_C_CC.forEach((c, i) => { t[CC + i] = c; });
  return t;
}

/** A byte queue with a bound. */
class Queue {
  private chunks: Buffer[] = [];
  size = 0;
  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(Buffer.from(b));
    this.size += b.length;
  }
  take(out: Buffer, max = out.length): number {
    let n = 0;
    while (n < max && this.chunks.length) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, max - n);
      c.copy(out, n, 0, k);
      n += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.size -= n;
    return n;
  }
  clear(): void { this.chunks = []; this.size = 0; }
}

export class Pty {
  termios = standardTermios();
  /** struct winsize: rows, columns, xpixel, ypixel (16 bits each). */
  readonly winsize = Buffer.alloc(8);
  /** The slave may be opened only once unlockpt cleared this. */
  locked = true;
  /** The session this pty is the controlling terminal of (0: none), and its foreground group. */
  sid = 0;
  pgrp = 0;
  masters = 1;
  slaves = 0;
  /** A slave was open once: the master reads EIO once none is (the other side hung up). */
  private slaveOpened = false;
  /** Input for the slave: complete (readable) bytes, and the canonical line being edited. */
  private readonly input = new Queue();
  private line: number[] = [];
  /**
   * Where in the input an EOF (^D) ended a line: a read stops there; one that finds an EOF that
   * ended an empty line returns 0 (end of file), one that ended a partial line is just its end.
   */
  private eofs: Array<{ at: number; empty: boolean }> = [];
  /** Output for the master: what the slave wrote, and echoes. */
  private readonly output = new Queue();

  /**
   * onSignal: raise sig in process group pgrp (the line discipline's ^C, ^\, ^Z, and SIGWINCH);
   * onHangup: the master's last close, for session sid; onGone: both ends are closed.
   */
  constructor(readonly index: number, private readonly onSignal: (pgrp: number, sig: number) => void,
    private readonly onHangup: (sid: number) => void, private readonly onGone: () => void) {}

  private flag(off: number, bit: number): boolean { return (this.termios.readUInt32LE(off) & bit) !== 0; }
  private cc(i: number): number { return this.termios[CC + i]!; }

  /** Bytes a slave read could take now (canonical mode: only whole lines). */
  readableBytes(): number { return this.input.size; }
  get hungUp(): boolean { return this.masters === 0; }

  // ---- the master's side ----

  /** The master wrote buf: the slave's input, through the line discipline. Returns how much it took. */
  masterWrite(buf: Buffer, nonblock: boolean): number {
    if (this.input.size + this.line.length >= PTY_QUEUE) {
      if (nonblock) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it writes to a pseudo-terminal whose reader is behind', () => this.input.size + this.line.length < PTY_QUEUE);
    }
    const room = PTY_QUEUE - this.input.size - this.line.length;
    const n = Math.min(buf.length, room);
    for (let i = 0; i < n; i++) this.receive(buf[i]!);
    return n;
  }

  private receive(byte: number): void {
    let c = byte;
    if (c === 13 && this.flag(IFLAG, IGNCR)) return;
    if (c === 13 && this.flag(IFLAG, ICRNL)) c = 10;
    else if (c === 10 && this.flag(IFLAG, INLCR)) c = 13;
    const canon = this.flag(LFLAG, ICANON);
    if (this.flag(LFLAG, ISIG) && c !== 0) {
      const sig = c === this.cc(VINTR) ? SIGINT : c === this.cc(VQUIT) ? SIGQUIT : c === this.cc(VSUSP) ? SIGTSTP : 0;
      if (sig) {
        if (!this.flag(LFLAG, NOFLSH)) { this.input.clear(); this.line = []; this.eofs = []; }
        this.echo(c);
        if (this.pgrp > 0) this.onSignal(this.pgrp, sig);
        return;
      }
    }
    if (canon) {
      if (c === this.cc(VERASE) && c !== 0) {
        if (this.line.length) {
          const gone = this.line.pop()!;
          if (this.flag(LFLAG, ECHO) && this.flag(LFLAG, ECHOE)) this.output.push(Buffer.from(gone < 32 && this.flag(LFLAG, ECHOCTL) ? '\b \b\b \b' : '\b \b'));
        }
        return;
      }
      if (c === this.cc(VKILL) && c !== 0) {
        if (this.flag(LFLAG, ECHO) && this.flag(LFLAG, ECHOK)) this.output.push(Buffer.from('\b \b'.repeat(this.line.length)));
        this.line = [];
        return;
      }
      if (c === this.cc(VEOF) && c !== 0) {
        this.eofs.push({ at: this.input.size + this.line.length, empty: this.line.length === 0 });
        this.input.push(Buffer.from(this.line));
        this.line = [];
        return;
      }
      this.line.push(c);
      if (c === 10 && !this.flag(LFLAG, ECHO) && this.flag(LFLAG, ECHONL)) this.output.push(Buffer.from('\n'));
      else this.echo(c);
      if (c === 10 || (c === this.cc(VEOL) && c !== 0) || (c === this.cc(VEOL2) && c !== 0)) {
        this.input.push(Buffer.from(this.line));
        this.line = [];
      }
      return;
    }
    this.echo(c);
    this.input.push(Buffer.from([c]));
  }

  /** Echo c to the master, control characters as ^X under ECHOCTL, with the output processing. */
  private echo(c: number): void {
    if (!this.flag(LFLAG, ECHO)) return;
    if (this.flag(LFLAG, ECHOCTL) && (c < 32 || c === 127) && c !== 9 && c !== 10) {
      this.output.push(Buffer.from([94, c === 127 ? 63 : c + 64]));
      return;
    }
    this.output.push(this.process(Buffer.from([c])));
  }

  /** The output processing of what goes to the master: NL to CR NL under OPOST and ONLCR. */
  private process(buf: Buffer): Buffer {
    if (!this.flag(OFLAG, OPOST) || !this.flag(OFLAG, ONLCR) || !buf.includes(10)) return buf;
    const out: number[] = [];
    for (const c of buf) { if (c === 10) out.push(13); out.push(c); }
    return Buffer.from(out);
  }

  masterRead(buf: Buffer, nonblock: boolean): number {
    if (this.output.size === 0) {
      // The other side is gone: EIO, as Linux's master reads after the last slave closed.
      if (this.slaveOpened && this.slaves === 0) throw new Errno(E.EIO);
      if (buf.length === 0) return 0;
      if (nonblock) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it reads a pseudo-terminal that nothing writes to', () => this.output.size > 0 || (this.slaveOpened && this.slaves === 0));
    }
    return this.output.take(buf);
  }

  masterPoll(): number {
    const hup = this.slaveOpened && this.slaves === 0;
    return (this.output.size > 0 || hup ? POLLIN : 0) | (hup ? POLLHUP : 0) | (this.input.size + this.line.length < PTY_QUEUE ? POLLOUT : 0);
  }

  // ---- the slave's side ----

  slaveOpen(): void {
    if (this.locked || this.hungUp) throw new Errno(E.EIO);
    this.slaves++;
    this.slaveOpened = true;
  }

  slaveRead(buf: Buffer, nonblock: boolean): number {
    const eof = this.eofs[0];
    if (eof && eof.at === 0) {
      this.eofs.shift();
      return 0;
    }
    if (this.input.size === 0) {
      if (this.hungUp || buf.length === 0) return 0;
      // Non-canonical with VMIN 0: a read returns what there is, nothing included. (VTIME's
      // timer is not kept: a read with VMIN above 0 waits for a byte, as with VTIME 0.)
      if (!this.flag(LFLAG, ICANON) && this.cc(VMIN) === 0) return 0;
      if (nonblock) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it reads a pseudo-terminal that nothing writes to', () => this.input.size > 0 || this.eofs.length > 0 || this.hungUp);
    }
    // Canonical mode gives one line (or what comes before an EOF) per read.
    let max = buf.length;
    if (eof) max = Math.min(max, eof.at);
    if (this.flag(LFLAG, ICANON)) {
      const peek = Buffer.alloc(Math.min(this.input.size, max));
      const n = this.input.take(peek, peek.length);
      const nl = peek.subarray(0, n).indexOf(10);
      const give = nl >= 0 ? nl + 1 : n;
      peek.copy(buf, 0, 0, give);
      // What is past the line goes back in front, in order.
      const rest = peek.subarray(give, n);
      if (rest.length) this.unshift(rest);
      this.consumed(give);
      return give;
    }
    const n = this.input.take(buf, max);
    this.consumed(n);
    return n;
  }

  /** Put bytes back at the front of the slave's input. */
  private unshift(b: Buffer): void {
    const all = Buffer.alloc(b.length + this.input.size);
    b.copy(all);
    this.input.take(all.subarray(b.length));
    this.input.push(all);
  }

  /** n bytes of input were read: the EOF marks move closer. */
  private consumed(n: number): void {
    for (const e of this.eofs) e.at -= n;
    while (this.eofs[0] && this.eofs[0].at === 0 && !this.eofs[0].empty) this.eofs.shift();
  }

  /** tcsetattr on either end: leaving canonical mode makes the line being edited readable. */
  setTermios(t: Buffer): void {
    t.copy(this.termios, 0, 0, TERMIOS_SIZE);
    if (!this.flag(LFLAG, ICANON) && this.line.length) {
      this.input.push(Buffer.from(this.line));
      this.line = [];
    }
  }

  slaveWrite(buf: Buffer, nonblock: boolean): number {
    if (this.hungUp) throw new Errno(E.EIO);
    if (this.output.size >= PTY_QUEUE) {
      if (nonblock) throw new Errno(E.EAGAIN);
      throw new WouldBlock('it writes to a pseudo-terminal whose master is behind', () => this.output.size < PTY_QUEUE || this.hungUp);
    }
    const n = Math.min(buf.length, PTY_QUEUE - this.output.size);
    this.output.push(this.process(buf.subarray(0, n)));
    return n;
  }

  slavePoll(): number {
    if (this.hungUp) return POLLIN | POLLOUT | POLLHUP;
    return (this.input.size > 0 || this.eofs.length > 0 ? POLLIN : 0) | (this.output.size < PTY_QUEUE ? POLLOUT : 0);
  }

  // ---- both ----

  /** TIOCSWINSZ: a new size; SIGWINCH to the foreground group when it changed. */
  setWinsize(ws: Buffer): void {
    if (ws.equals(this.winsize)) return;
    ws.copy(this.winsize);
    if (this.pgrp > 0) this.onSignal(this.pgrp, SIGWINCH);
  }

  /** tcflush: drop the slave's unread input (0), the master's unread output (1), or both (2). */
  flush(queue: number): void {
    if (queue < 0 || queue > 2) throw new Errno(E.EINVAL);
    if (queue !== 1) { this.input.clear(); this.line = []; this.eofs = []; }
    if (queue !== 0) this.output.clear();
  }

  /** A master or slave end closed. The last master hangs the slaves up. */
  closed(master: boolean): void {
    if (master) this.masters--;
    else this.slaves--;
    if (master && this.masters === 0) {
      this.input.clear();
      this.line = [];
      this.eofs = [];
      if (this.sid > 0) this.onHangup(this.sid);
    }
    if (this.masters === 0 && this.slaves === 0) this.onGone();
  }
}

/** What both ends of a pty are: a terminal stream with no host fd, closed once. */
abstract class PtyEnd implements OpenFile {
  readonly hostFd = null;
  private open = true;
  constructor(readonly pty: Pty, public statusFlags: number, private readonly master: boolean) {}
  abstract readonly path: string;
  abstract read(buf: Buffer): number;
  abstract write(buf: Buffer): number;
  abstract stat(out: Buffer): void;
  protected get nonblock(): boolean { return (this.statusFlags & O.NONBLOCK) !== 0; }
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return true; }
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.pty.closed(this.master);
  }
}

/** /dev/ptmx's open file: the master of a pty. */
export class PtyMaster extends PtyEnd {
  readonly path = '/dev/ptmx';
  constructor(pty: Pty, statusFlags: number) { super(pty, statusFlags, true); }
  read(buf: Buffer): number { return this.pty.masterRead(buf, this.nonblock); }
  write(buf: Buffer): number { return this.pty.masterWrite(buf, this.nonblock); }
  stat(out: Buffer): void { charDeviceStat(out, PTMX_RDEV, PTMX_RDEV); }
  pollMask(): number { return this.pty.masterPoll(); }
  available(): number { return 0; }
}

/** /dev/pts/N's open file: the slave, a terminal as programs see one. */
export class PtySlave extends PtyEnd {
  readonly path: string;
  constructor(pty: Pty, statusFlags: number) {
    super(pty, statusFlags, false);
    this.path = `/dev/pts/${pty.index}`;
  }
  read(buf: Buffer): number { return this.pty.slaveRead(buf, this.nonblock); }
  write(buf: Buffer): number { return this.pty.slaveWrite(buf, this.nonblock); }
  stat(out: Buffer): void { slaveStat(out, this.pty.index); }
  pollMask(): number { return this.pty.slavePoll(); }
  available(): number { return this.pty.readableBytes(); }
}

/** stat of /dev/pts/N: a character device 136:N, the user's, mode 0620 as devpts makes it. */
export function slaveStat(out: Buffer, index: number): void {
  const rdev = (PTS_MAJOR << 8) | (index & 0xff) | ((index & ~0xff) << 12);
  streamStat(out, 0x1000 + index, S_IFCHR | 0o620);
  out.writeBigUInt64LE(BigInt(rdev), STAT.rdev);
}

/** The sandbox's ptys by index; an index is free again once both ends of its pty are closed. */
export class PtyTable {
  private readonly ptys = new Map<number, Pty>();

  /** posix_openpt: a new pty (ENOSPC past MAX_PTYS). */
  create(onSignal: (pgrp: number, sig: number) => void, onHangup: (sid: number) => void): Pty {
    if (this.ptys.size >= MAX_PTYS) throw new Errno(E.ENOSPC);
    let index = 0;
    while (this.ptys.has(index)) index++;
    const pty = new Pty(index, onSignal, onHangup, () => this.ptys.delete(index));
    this.ptys.set(index, pty);
    return pty;
  }
  get(index: number): Pty | undefined { return this.ptys.get(index); }
  /** The pty that is session sid's controlling terminal, if one is. */
  ofSession(sid: number): Pty | undefined {
    for (const p of this.ptys.values()) if (p.sid === sid && !p.hungUp) return p;
    return undefined;
  }
  indexes(): number[] { return [...this.ptys.keys()].sort((a, b) => a - b); }
}
