// Named pipes (mkfifo) inside a writable grant, served inside the sandbox. The host's FIFO file
// only names one: opening it never opens the host FIFO (its other end could be a host process,
// and an open or a read of it could block the host), but an in-sandbox pipe that every open of
// that file, by host identity, shares while any of them is open, as Linux shares one FIFO's
// buffer between its openers.
//
// Linux makes a blocking open wait for the other end. Here the open returns at once, and the
// waiting moves to the first read or write, which is what programs see of it:
// - a reader's reads wait for data until a writer has opened and closed again (a made-up writer
//   holds the pipe until the first real one opens): `cat fifo` before the writer opens still
//   gets its bytes, then the end of the stream;
// - a writer's bytes wait in the pipe until a reader opens (a made-up reader holds them); a
//   writer whose reader never comes waits once the pipe is full, where Linux waits in open.
// O_NONBLOCK opens are as on Linux: a reader succeeds at once, a writer without a reader gets
// ENXIO. O_RDWR opens one of each. When the last opener closes, the pipe and its bytes go.
import { E, Errno, O } from '../abi/linux.js';
import { PipeEnd, type OpenFile, type PipeBudget } from './open-file.js';

interface FifoNode {
  /** The made-up ends that hold the pipe until the first real reader and writer come (null after). */
  heldRead: PipeEnd | null;
  heldWrite: PipeEnd | null;
  /** Ends of the pipe to open more from (the made-up ones may be closed by then). */
  readonly proto: { read: PipeEnd; write: PipeEnd };
  opens: number;
  readers: number;
}

/** A named pipe's open file: one pipe end, or both for O_RDWR. */
class FifoBoth implements OpenFile {
  readonly hostFd = null;
  constructor(readonly path: string, private readonly r: PipeEnd, private readonly w: PipeEnd, public statusFlags: number) {}
  read(buf: Buffer): number { this.sync(); return this.r.read(buf); }
  write(buf: Buffer): number { this.sync(); return this.w.write(buf); }
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void { this.r.stat(out); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void { this.r.close(); this.w.close(); }
  pollMask(): number { return this.r.pollMask() | this.w.pollMask(); }
  /** fcntl(F_SETFL) changes this file's O_NONBLOCK: the ends follow it. */
  private sync(): void {
    const nb = this.statusFlags & O.NONBLOCK;
    this.r.statusFlags = O.RDONLY | nb;
    this.w.statusFlags = O.WRONLY | nb;
  }
}

export class Fifos {
  private readonly nodes = new Map<string, FifoNode>();
  constructor(private readonly budget: PipeBudget) {}

  /** Open the named pipe the host file `key` (device:inode) is, as guest path `path`, with open(2)'s flags. */
  open(key: string, path: string, flags: number): OpenFile {
    const acc = flags & O.ACCMODE;
    let node = this.nodes.get(key);
    if (acc === O.WRONLY && flags & O.NONBLOCK && (!node || node.readers === 0)) throw new Errno(E.ENXIO);
    if (!node) {
      const [read, write] = PipeEnd.create(0, this.budget);
      node = { heldRead: read, heldWrite: write, proto: { read, write }, opens: 0, readers: 0 };
      this.nodes.set(key, node);
    }
    const n = node;
    const end = (readEnd: boolean): PipeEnd => {
      const e = (readEnd ? n.proto.read : n.proto.write).another(readEnd, flags, path);
      n.opens++;
      if (readEnd) n.readers++;
      e.onClose = () => {
        n.opens--;
        if (readEnd) n.readers--;
        // Bytes written before any reader came wait for one, as the writer would have in open.
        if (n.opens === 0 && !(n.heldRead && n.proto.read.available() > 0)) this.drop(key, n);
      };
      // The first real reader (writer) takes over from the made-up one.
      const held = readEnd ? n.heldRead : n.heldWrite;
      if (held) {
        if (readEnd) n.heldRead = null;
        else n.heldWrite = null;
        held.close();
      }
      return e;
    };
    if (acc === O.RDONLY) return end(true);
    if (acc === O.WRONLY) return end(false);
    if (acc !== O.RDWR) throw new Errno(E.EINVAL);
    return new FifoBoth(path, end(true), end(false), O.RDWR | (flags & O.NONBLOCK));
  }

  private drop(key: string, n: FifoNode): void {
    n.heldRead?.close();
    n.heldWrite?.close();
    if (this.nodes.get(key) === n) this.nodes.delete(key);
  }
}
