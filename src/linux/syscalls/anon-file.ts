// The files with an anonymous inode that the kernel makes (epoll, eventfd, timerfd, signalfd,
// inotify): no host fd, no seeking, a made-up stat.
import { streamStat, type OpenFile } from '../../fs/open-file.js';
import { E, Errno } from '../../abi/linux.js';

const S_IFREG_ANON = 0o600;

/** Anonymous inode numbers for these files. */
let anonInode = 0x7800_0000;

/** What these files share: an anonymous inode, no host fd, no seeking. */
export abstract class AnonFile implements OpenFile {
  readonly hostFd = null;
  private readonly ino = ++anonInode;
  constructor(readonly path: string, public statusFlags: number) {}
  abstract read(buf: Buffer): number;
  abstract write(buf: Buffer): number;
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { throw new Errno(E.ESPIPE); }
  stat(out: Buffer): void { streamStat(out, this.ino, S_IFREG_ANON); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void {}
}
