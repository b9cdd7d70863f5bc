// The few /dev and /proc entries that programs expect, made up by the host: nothing of the
// host's own /dev or /proc is opened. What exists:
//   /dev/null /dev/zero /dev/full /dev/random /dev/urandom   memory devices
//   /dev/tty                          the host terminal, when a standard stream is one (else ENXIO)
//   /dev/stdin /dev/stdout /dev/stderr, /dev/fd/N, /proc/self/fd/N   links to the guest's own fds
//   /proc/self/exe                    a link to the program's path (readlink only)
//   /proc/self/cmdline, /proc/self/environ, /proc/uptime, /proc/loadavg, /proc/meminfo,
//   /proc/mounts, /proc/version       small read-only files describing the sandbox
// /proc/1/... is /proc/self/... (the guest is pid 1). Other paths under /dev and /proc are
// looked up in the grants like any path.
import { randomFillSync } from 'node:crypto';
import { E, Errno, O, S_IFLNK, STAT, STAT_SIZE } from '../abi/linux.js';
import type { Process } from './process.js';
import {
  charDeviceStat, DeviceFile, MemoryFile, memoryFileStat, TTY_RDEV, TtyFile, type DeviceKind, type OpenFile,
} from '../fs/open-file.js';

export interface SpecialFile {
  /** Open it (flags as open(2)); links to fds give back the fd's own open file. */
  open(flags: number): OpenFile;
  /** stat(2), following a link. */
  stat(out: Buffer): void;
  /** The text of a link (readlink, lstat), when this entry is one. */
  readonly link?: string;
  /** For links to the guest's fds (/proc/self/fd/N, /dev/stdin...): the open file. */
  readonly file?: OpenFile;
}

const DEVICES: Record<string, DeviceKind> = {
  null: 'null', zero: 'zero', full: 'full', random: 'urandom', urandom: 'urandom',
};
const KERNEL_VERSION = '6.1.0-kvmbox';

function linkStat(out: Buffer, target: string, ino: number): void {
  out.fill(0, 0, STAT_SIZE);
  out.writeBigUInt64LE(BigInt(ino), STAT.ino);
  out.writeBigUInt64LE(1n, STAT.nlink);
  out.writeUInt32LE(S_IFLNK | 0o777, STAT.mode);
  out.writeBigInt64LE(BigInt(Buffer.byteLength(target)), STAT.size);
  out.writeBigInt64LE(1024n, STAT.blksize);
}

/** lstat of a special entry: the link itself for links, else what stat gives. */
export function lstatSpecial(s: SpecialFile, out: Buffer, path: string): void {
  if (s.link !== undefined) linkStat(out, s.link, inoOf(path));
  else s.stat(out);
}

function inoOf(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193) >>> 0;
  return (h | 1) >>> 0;
}

function fdLink(p: Process, fd: number): SpecialFile {
  let f: OpenFile;
  try {
    f = p.fds.get(fd);
  } catch {
    throw new Errno(E.ENOENT); // no such fd: no such entry
  }
  return {
    link: f.path,
    file: f,
    open: () => f,
    stat: (out) => f.stat(out),
  };
}

function memory(path: string, make: () => string | Buffer): SpecialFile {
  const ino = inoOf(path);
  return {
    open: (flags) => new MemoryFile(path, flags, Buffer.from(make()), ino),
    stat: (out) => memoryFileStat(out, ino),
  };
}

function procFile(p: Process, name: string): SpecialFile | null {
  switch (name) {
    case 'uptime': {
      // Seconds since the VM started, which is when the program did.
      const s = (Number(process.hrtime.bigint() - p.startNs()) / 1e9).toFixed(2);
      return memory('/proc/uptime', () => `${s} ${s}\n`);
    }
    case 'loadavg': return memory('/proc/loadavg', () => '0.00 0.00 0.00 1/1 1\n');
    case 'version': return memory('/proc/version', () => `Linux version ${KERNEL_VERSION} (kvmbox) #1 SMP kvmbox\n`);
    case 'meminfo': {
      const kb = Math.floor(p.space.memory.size / 1024);
      return memory('/proc/meminfo', () => `MemTotal:     ${kb} kB\nMemFree:      ${kb} kB\nMemAvailable: ${kb} kB\n`);
    }
    case 'mounts':
      return memory('/proc/mounts', () => p.vfs.grants
        .map((g) => `kvmbox ${g.guestPath} kvmbox ${g.writable ? 'rw' : 'ro'} 0 0\n`).reverse().join(''));
    default: return null;
  }
}

/** The files of /proc/self that are not directories. */
const SELF_FILES = new Set(['exe', 'cmdline', 'environ', 'mounts']);

function selfFile(p: Process, rest: string[]): SpecialFile | null {
  if (rest.length === 2 && rest[0] === 'fd' && /^\d+$/.test(rest[1]!)) return fdLink(p, Number(rest[1]));
  // A path through one of these files (not directories): ENOTDIR, as Linux says.
  if (rest.length > 1 && SELF_FILES.has(rest[0]!)) throw new Errno(E.ENOTDIR);
  if (rest.length !== 1) return null;
  switch (rest[0]) {
    case 'exe':
      return {
        link: p.exePath,
        open: () => { throw new Errno(E.EACCES); },
        stat: () => { throw new Errno(E.EACCES); },
      };
    case 'cmdline': return memory('/proc/self/cmdline', () => p.argv.map((a) => a + '\0').join(''));
    case 'environ': return memory('/proc/self/environ', () => p.envp.map((a) => a + '\0').join(''));
    case 'mounts': return procFile(p, 'mounts');
    default: return null;
  }
}

/** The guest's controlling terminal: a standard stream that is a host terminal. */
function tty(p: Process): SpecialFile {
  let hostFd: number | null = null;
  for (const fd of [0, 1, 2]) {
    try {
      const f = p.fds.get(fd);
      if (f.isatty() && f.hostFd !== null) { hostFd = f.hostFd; break; }
    } catch { /* closed */ }
  }
  return {
    open: (flags) => {
      if (hostFd === null) throw new Errno(E.ENXIO);
      return new TtyFile(hostFd, flags & (O.ACCMODE | O.NONBLOCK | O.APPEND));
    },
    stat: (out) => charDeviceStat(out, TTY_RDEV, TTY_RDEV),
  };
}

/** The special entry at an absolute, normalized guest path, or null when it is not one. */
export function special(p: Process, comps: readonly string[]): SpecialFile | null {
  const [top, a, ...rest] = comps;
  if (top === 'dev' && a !== undefined) {
    if (rest.length === 0) {
      const kind = DEVICES[a];
      if (kind) {
        const path = '/dev/' + a;
        return {
          open: (flags) => new DeviceFile(path, flags & ~(O.CREAT | O.EXCL | O.TRUNC | O.CLOEXEC | O.NOCTTY), kind, (b) => randomFillSync(b)),
          stat: (out) => new DeviceFile(path, 0, kind, () => {}).stat(out),
        };
      }
      if (a === 'tty') return tty(p);
      const std = ['stdin', 'stdout', 'stderr'].indexOf(a);
      if (std >= 0) {
        const target = fdLink(p, std);
        return { ...target, link: `/proc/self/fd/${std}` };
      }
    }
    if (a === 'fd' && rest.length === 1 && /^\d+$/.test(rest[0]!)) return fdLink(p, Number(rest[0]));
    return null;
  }
  if (top === 'proc' && a !== undefined) {
    if (a === 'self' || a === '1') return selfFile(p, rest);
    if (rest.length === 0) return procFile(p, a);
  }
  return null;
}
