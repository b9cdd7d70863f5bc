// The few /dev and /proc entries that programs expect, made up by the host: nothing of the
// host's own /dev or /proc is opened. What exists:
//   /dev/null /dev/zero /dev/full /dev/random /dev/urandom   memory devices
//   /dev/tty                          the controlling terminal: a pty of the sandbox's, or the host
//                                     terminal when a standard stream is one (else ENXIO)
//   /dev/ptmx, /dev/pts/N             the sandbox's own pseudo-terminals (src/fs/pty.ts)
//   /dev/stdin /dev/stdout /dev/stderr, /dev/fd/N, /proc/self/fd/N   links to the guest's own fds
//   /proc/self/exe                    a link to the program's path (readlink only)
//   /proc/self/cmdline, /proc/self/environ, /proc/uptime, /proc/loadavg, /proc/meminfo,
//   /proc/mounts, /proc/filesystems, /proc/version, /proc/stat, /proc/cpuinfo, /proc/vmstat   small read-only files describing the sandbox
//   /sys/devices/system/cpu/{online,possible,present}        the CPUs the sandbox offers
// /proc/PID/{exe,cmdline,environ,maps,stat,status,fd/N} for every process of the sandbox (/proc/self
// is the caller's). /proc, /proc/PID and /proc/PID/fd are directories that list just these
// (getdents64). Other paths under /dev and /proc are
// looked up in the grants like any path.
import { bytesOf, cStringOf, nameLength } from '../abi/file-names.js';
import { randomBytes, randomFillSync } from 'node:crypto';
import { E, Errno, O, S_IFLNK, SIG, STAT, STAT_SIZE } from '../abi/linux.js';
import { PTMX_RDEV, PtyMaster, PtySlave, slaveStat, type Pty } from '../fs/pty.js';
import { action, bit, SI_KERNEL, SIG_DFL, SIG_IGN, SIGCONT, raise } from './signals.js';
import { MAX_QUEUED_SIGNALS } from './limits.js';
import type { Process } from './process.js';
import type { Task } from './task.js';
import { cpuinfoText } from './cpuinfo.js';
import { readMemoryOf, writeMemoryOf } from './ptrace.js';
import { msTicks } from './cpu-time.js';
import { PROC_NET_FILES, procNetText } from './proc-net.js';
import * as ops from '../fs/ops.js';
import { ShmFile } from '../fs/shm.js';
import { normalize } from '../fs/vfs.js';
import { GUEST_GID, GUEST_PID, GUEST_UID, PHYS_VVAR, VDSO_SIZE } from '../abi/abi.generated.js';
import { PAGE_MAPPED, PROT_EXEC, PROT_READ, PROT_WRITE } from '../machine/paging.js';
import { PAGE_SIZE } from '../machine/x86.js';
import {
  charDeviceStat, DeviceFile, DirListing, dirListingStat, DT_DIR, DT_LNK, DT_REG, MemoryFile, memoryFileStat, TTY_RDEV, TtyFile,
  type DeviceKind, type DirEntry, type OpenFile,
} from '../fs/open-file.js';

export interface SpecialFile {
  /** Open it (flags as open(2)); links to fds give back the fd's own open file. */
  open(flags: number): OpenFile;
  /** stat(2), following a link. */
  stat(out: Buffer): void;
  /** The text of a link (readlink, lstat), when this entry is one. */
  readonly link?: string;
  /** A link's permission bits (lstat), when not 0777: /proc/PID/fd/N shows its file's access mode. */
  readonly linkMode?: number;
  /** For links to the guest's fds (/proc/self/fd/N, /dev/stdin...): the open file. */
  readonly file?: OpenFile;
}

const DEVICES: Record<string, DeviceKind> = {
  null: 'null', zero: 'zero', full: 'full', random: 'urandom', urandom: 'urandom',
};
/** What uname and /proc say the kernel and host are. */
export const KERNEL_VERSION = '6.1.0-kvmbox';
export const HOSTNAME = 'kvmbox';

function linkStat(out: Buffer, target: string, ino: number, mode = 0o777): void {
  out.fill(0, 0, STAT_SIZE);
  out.writeBigUInt64LE(BigInt(ino), STAT.ino);
  out.writeBigUInt64LE(1n, STAT.nlink);
  out.writeUInt32LE(S_IFLNK | mode, STAT.mode);
  out.writeBigInt64LE(BigInt(nameLength(target)), STAT.size);
  out.writeBigInt64LE(1024n, STAT.blksize);
}

/** lstat of a special entry: the link itself for links, else what stat gives. */
export function lstatSpecial(s: SpecialFile, out: Buffer, path: string): void {
  if (s.link !== undefined) linkStat(out, s.link, inoOf(path), s.linkMode);
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
  // As Linux: r-x for a file open for reading, -wx for writing, both for O_RDWR, none for O_PATH.
  const acc = f.statusFlags & O.PATH ? -1 : f.statusFlags & O.ACCMODE;
  return {
    link: canonicalPath(p, f.path),
    linkMode: (acc === O.RDONLY || acc === O.RDWR ? 0o500 : 0) | (acc === O.WRONLY || acc === O.RDWR ? 0o300 : 0),
    file: f,
    // A /dev/shm or memfd file opens anew, with the flags asked (its own offset and mode, as on
    // Linux); other non-host files give back the fd's own open file.
    open: (flags) => (f instanceof ShmFile ? f.reopen(flags) : f),
    stat: (out) => f.stat(out),
  };
}

/**
 * A file's path as Linux shows it in /proc/PID/fd: with the symlinks of the guest's namespace
 * resolved (a library ld.so opened as /lib/x86_64-linux-gnu/libc.so.6 is /usr/lib/...). Names
 * that are not paths (pipe:[...]) and paths that no longer resolve stay as they are.
 */
function canonicalPath(p: Process, path: string): string {
  if (!path.startsWith('/')) return path;
  try {
    return '/' + p.vfs.resolve(normalize(path), true).join('/');
  } catch {
    return path;
  }
}

function memory(path: string, make: () => string | Buffer): SpecialFile {
  const ino = inoOf(path);
  return {
    open: (flags) => {
      // Text with file names in it (maps, mountinfo): their bytes, as nameOf carries them.
      const made = make();
      return new MemoryFile(path, flags, typeof made === 'string' ? bytesOf(made) : Buffer.from(made), ino);
    },
    stat: (out) => memoryFileStat(out, ino),
  };
}

/**
 * An open /proc/PID directory. Like a pidfd it names its process by the object, so
 * pidfd_send_signal takes it too (psmisc's killall signals through these): a later process that
 * gets the same pid is never reached.
 */
export class ProcPidDir extends DirListing {
  constructor(readonly target: Process, path: string, statusFlags: number, list: () => DirEntry[], ino: number) {
    super(path, statusFlags, list, ino);
  }
}

/**
 * A made-up directory at path whose entries (besides . and ..) list() gives when it is opened;
 * with a process, a ProcPidDir of it.
 */
function directory(path: string, list: () => Array<[string, number]>, link?: string, of?: Process): SpecialFile {
  const ino = inoOf(path);
  return {
    link,
    open: (flags) => {
      const entries = (): DirEntry[] => {
        const all: DirEntry[] = [{ name: '.', type: DT_DIR, ino }, { name: '..', type: DT_DIR, ino: inoOf(path.replace(/\/[^/]+$/, '') || '/') }];
        for (const [name, type] of list()) all.push({ name, type, ino: inoOf(`${path}/${name}`) });
        return all;
      };
      const status = flags & (O.ACCMODE | O.NONBLOCK | O.DIRECTORY);
      return of ? new ProcPidDir(of, path, status, entries, ino) : new DirListing(path, status, entries, ino);
    },
    stat: (out) => dirListingStat(out, ino),
  };
}

/**
 * table[key] where key is one of the table's own names, else undefined. Names that come from the
 * guest are looked up through this: "constructor" and the like are no entries.
 */
function own<T>(table: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return table && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** The CPU masks of /sys/devices/system/cpu: all the sandbox's vCPUs in each. */
const CPU_MASKS = ['online', 'possible', 'present'];

/** CPUs first to last as /sys lists them: "3" for one, "0-7" for a run. */
function cpuRange(first: number, last: number): string {
  return first === last ? `${first}` : `${first}-${last}`;
}

/**
 * /sys/devices/system/cpu/cpuK/topology of n vCPUs: one package (and die) whose cores each run
 * one thread, as lscpu counts them. Masks are hex with a comma every 32 CPUs, as many digits as
 * n needs, as Linux prints them.
 */
function cpuTopology(k: number, n: number): Record<string, string> {
  const mask = (cpus: number[]): string => {
    let bits = 0n;
    for (const c of cpus) bits |= 1n << BigInt(c);
    const hex = bits.toString(16).padStart(Math.ceil(n / 4), '0');
    const groups: string[] = [];
    for (let end = hex.length; end > 0; end -= 8) groups.unshift(hex.slice(Math.max(0, end - 8), end));
    return groups.join(',');
  };
  const all = Array.from({ length: n }, (_, i) => i);
  return {
    core_id: String(k), physical_package_id: '0', die_id: '0',
    thread_siblings: mask([k]), thread_siblings_list: String(k), core_cpus: mask([k]), core_cpus_list: String(k),
    core_siblings: mask(all), core_siblings_list: cpuRange(0, n - 1), package_cpus: mask(all), package_cpus_list: cpuRange(0, n - 1),
    die_cpus: mask(all), die_cpus_list: cpuRange(0, n - 1),
  };
}

/** /proc's own files (not directories). */
const PROC_FILES = ['cpuinfo', 'filesystems', 'loadavg', 'meminfo', 'mounts', 'stat', 'uptime', 'version', 'vmstat'];

/** /proc: self, a directory per process of the sandbox (no other pid exists), and PROC_FILES. */
function procRoot(p: Process): SpecialFile {
  return directory('/proc', () => [
    ...[...p.kernel.all()].map((q): [string, number] => [String(q.pid), DT_DIR]).sort((a, b) => Number(a[0]) - Number(b[0])),
    ['self', DT_LNK], ['net', DT_DIR], ['sys', DT_DIR],
    ...PROC_FILES.map((f): [string, number] => [f, DT_REG]),
  ]);
}

/** When the sandbox "booted": its first process's start (ps: uptime, btime and start times agree). */
export function bootNs(p: Process): bigint {
  return p.kernel.find(GUEST_PID)?.startNs() ?? p.startNs();
}

function procFile(p: Process, name: string): SpecialFile | null {
  switch (name) {
    case 'uptime': {
      // Seconds since the sandbox started, which is when its first process did.
      const s = (Number(process.hrtime.bigint() - bootNs(p)) / 1e9).toFixed(2);
      return memory('/proc/uptime', () => `${s} ${s}\n`);
    }
    case 'loadavg': return memory('/proc/loadavg', () => '0.00 0.00 0.00 1/1 1\n');
    case 'cpuinfo': return memory('/proc/cpuinfo', () => cpuinfoText(p.kernel.cpuid, p.kernel.maxVcpus));
    case 'stat': {
      // kvmbox keeps no per-CPU time accounts: the CPUs' counters are zero (no time accounted),
      // and the rest describes the sandbox: btime is when it started, processes the pids handed out.
      const n = p.kernel.maxVcpus;
      const zeros = ' 0 0 0 0 0 0 0 0 0 0\n';
      const btime = Math.floor(Date.now() / 1000 - Number(process.hrtime.bigint() - bootNs(p)) / 1e9);
      const live = [...p.kernel.all()];
      return memory('/proc/stat', () => `cpu ${zeros}` + Array.from({ length: n }, (_, i) => `cpu${i}${zeros}`).join('') +
        `intr 0\nctxt 0\nbtime ${btime}\nprocesses ${Math.max(0, ...live.map((q) => q.pid))}\n` +
        `procs_running ${live.length}\nprocs_blocked 0\n`);
    }
    // The file system types the sandbox has (its mounts are "kvmbox"; /dev/shm is tmpfs), none
    // with a block device, as Linux marks them "nodev".
    case 'filesystems': return memory('/proc/filesystems', () => ['sysfs', 'tmpfs', 'proc', 'devpts', 'mqueue', 'kvmbox'].map((t) => `nodev\t${t}\n`).join(''));
    case 'version': return memory('/proc/version', () => `Linux version ${KERNEL_VERSION} (kvmbox) #1 SMP kvmbox\n`);
    case 'meminfo': {
      const kb = Math.floor(p.space.memoryBytes / 1024);
      return memory('/proc/meminfo', () => `MemTotal:     ${kb} kB\nMemFree:      ${kb} kB\nMemAvailable: ${kb} kB\n`);
    }
    case 'vmstat': {
      // The counters vmstat(8) reads; the sandbox pages nothing in or out.
      const free = Math.floor(Math.max(0, p.space.memoryBytes - p.space.paging.committed) / PAGE_SIZE);
      return memory('/proc/vmstat', () => `nr_free_pages ${free}\npgpgin 0\npgpgout 0\npswpin 0\npswpout 0\npgfault 0\npgmajfault 0\n`);
    }
    case 'mounts':
      return memory('/proc/mounts', () => mounts(p).map((m) => `kvmbox ${m.path} kvmbox ${m.mode} 0 0\n`).join(''));
    default: return null;
  }
}

/** The files of /proc/PID that are not directories. */
const PID_FILES = new Set(['exe', 'cwd', 'root', 'auxv', 'cmdline', 'comm', 'environ', 'limits', 'maps', 'mem', 'mountinfo', 'mounts', 'stat', 'statm', 'status']);
/** Its directories besides fd (listed with it). */
const PID_DIRS = ['fd', 'fdinfo', 'task'];
/** Those of them that are links. */
const PID_LINKS = new Set(['exe', 'cwd', 'root']);

/** The name in comm, up to its NUL. */
function commOf(q: Process, t?: Task): string {
  const comm = t ? t.name() : q.comm;
  const end = comm.indexOf(0);
  return comm.subarray(0, end < 0 ? comm.length : end).toString('latin1');
}

/** A thread's state letter: Z and T as its process's, R on a vCPU, S otherwise. */
function taskState(q: Process, t: Task): string {
  const s = stateOf(q);
  if (t.trace?.stop) return 't';
  return s === 'Z' || s === 'T' ? s : t.state === 'running' ? 'R' : 'S';
}

/** /proc/PID/stat's state letter: Z zombie, T stopped, R with a task on a vCPU, S otherwise. */
function stateOf(q: Process): string {
  if (q.zombie) return 'Z';
  if (q.tasks[0]?.trace?.stop) return 't';
  if (q.stopped) return 'T';
  return q.tasks.some((t) => t.state === 'running') ? 'R' : 'S';
}

/** /proc/PID/stat as Linux lays it out (52 fields); what kvmbox does not track is 0. */
function statLine(q: Process, t?: Task): string {
  const threads = q.zombie ? 0 : q.tasks.filter((t) => t.state !== 'dead').length;
  // Start time in clock ticks (100 Hz) since boot, which is when the sandbox's first process started.
  const boot = bootNs(q);
  const start = q.startNs() > boot ? Number((q.startNs() - boot) / 10_000_000n) : 0;
  const rss = q.rssBytes();
  // Fields 23 and 24: vsize (bytes) and rss (pages), both the process's memory (Process.rssBytes).
  // Fields 14-17: utime and stime (the thread's, or the process's), cutime and cstime (ticks).
  const cpu = t ? t.cpu : q.cpu;
  const times = [cpu.user, cpu.sys, q.childCpu.user, q.childCpu.sys].map((ms) => String(msTicks(ms)));
  const f: Array<string | number> = [t?.tid ?? q.pid, `(${commOf(q, t)})`, t ? taskState(q, t) : stateOf(q), q.ppid, q.pgid, q.sid, 0, -1, 0x400000,
    0, 0, 0, 0, ...times, 20 + q.nice, q.nice, threads, 0, start, rss, rss / PAGE_SIZE];
  while (f.length < 52) f.push(0);
  return f.join(' ') + '\n';
}

function statusText(q: Process, t?: Task): string {
  const threads = q.zombie ? 0 : q.tasks.filter((x) => x.state !== 'dead').length;
  const names: Record<string, string> = { Z: 'Z (zombie)', T: 'T (stopped)', t: 't (tracing stop)', R: 'R (running)', S: 'S (sleeping)' };
  const tracer = (t ?? q.tasks[0])?.trace?.tracer.pid ?? 0;
  return `Name:\t${commOf(q, t)}\nState:\t${names[t ? taskState(q, t) : stateOf(q)]}\nTgid:\t${q.pid}\nPid:\t${t?.tid ?? q.pid}\nPPid:\t${q.ppid}\nTracerPid:\t${tracer}\n` +
    `Uid:\t${GUEST_UID}\t${GUEST_UID}\t${GUEST_UID}\t${GUEST_UID}\nGid:\t${GUEST_GID}\t${GUEST_GID}\t${GUEST_GID}\t${GUEST_GID}\n` +
    `Threads:\t${threads}\n` + (q.zombie ? '' : memoryLines(q)) + signalLines(q, t ?? q.tasks[0]) + seccompLines(t ?? q.tasks[0]);
}

/**
 * /proc/PID/status's signal lines, as masks of 64 bits (signal n is bit n-1): the thread's
 * pending and blocked signals, and the process's ignored and caught ones (ps s, and programs
 * that check what their parent left ignored, read them). Pending signals are all the thread's
 * here (ShdPnd is empty). The capability lines are an unprivileged user's.
 */
function signalLines(q: Process, t: Task | undefined): string {
  const hex = (m: bigint) => m.toString(16).padStart(16, '0');
  let ignored = 0n, caught = 0n, queued = 0;
  for (let sig = 1; sig <= 64; sig++) {
    const handler = action(q, sig).handler;
    if (handler === SIG_IGN) ignored |= bit(sig);
    else if (handler !== SIG_DFL) caught |= bit(sig);
  }
  for (const x of q.tasks) for (const infos of x.pendingInfo.values()) queued += infos.length;
  return `SigQ:\t${queued}/${MAX_QUEUED_SIGNALS}\nSigPnd:\t${hex(t?.pending ?? 0n)}\nShdPnd:\t${hex(0n)}\n` +
    `SigBlk:\t${hex(t?.sigmask ?? 0n)}\nSigIgn:\t${hex(ignored)}\nSigCgt:\t${hex(caught)}\n` +
    `CapInh:\t${hex(0n)}\nCapPrm:\t${hex(0n)}\nCapEff:\t${hex(0n)}\nCapBnd:\t000001ffffffffff\nCapAmb:\t${hex(0n)}\n`;
}

/** /proc/PID/status's no_new_privs and seccomp lines, of the thread (or the leader). */
function seccompLines(t: Task | undefined): string {
  const s = t?.seccomp;
  return `NoNewPrivs:\t${t?.noNewPrivs ? 1 : 0}\nSeccomp:\t${s?.mode ?? 0}\nSeccomp_filters:\t${s?.mode === 2 ? s.filters.length : 0}\n`;
}

/**
 * /proc/PID/status's memory lines (kB): VmSize the addresses the process has mapped (what
 * RLIMIT_AS counts), VmRSS its memory and VmHWM that memory's peak; VmPeak is not tracked and
 * shows the larger of VmSize and VmHWM.
 */
function memoryLines(q: Process): string {
  const kb = Math.floor(q.rssBytes() / 1024);
  const size = Math.floor(q.space.paging.mappedBytes / 1024);
  return `VmPeak:\t${Math.max(size, q.peakRssKb)} kB\nVmSize:\t${size} kB\nVmHWM:\t${q.peakRssKb} kB\nVmRSS:\t${kb} kB\n`;
}

/** /proc/PID/statm: size, resident, shared, text, lib, data, dt (pages). */
function statmLine(q: Process): string {
  const pages = q.rssBytes() / PAGE_SIZE;
  return `${pages} ${pages} 0 0 0 ${pages} 0\n`;
}

/**
 * /proc/PID/maps: the runs of mapped pages with the same rights and the same name, in Linux's
 * format (glibc's pthread_getattr_np finds the main thread's stack in it, sanitizers and GCs
 * their memory). Private mappings show 'p', MAP_SHARED memory 's'; device and inode are 0. Where
 * there is a vDSO, its pages come first, named [vvar] and [vdso] as Linux names them.
 */
function mapsText(q: Process): string {
  const PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC;
  const space = q.space;
  const perms = space.paging.perms;
  const names = space.namedRanges();
  // MAP_SHARED: memory shared with the file (or other processes), and copies of files.
  const shared = [...space.memory.shared.filter((r) => !r.copyOnWrite), ...space.sharedFileRanges()];
  // Unfilled pages of file mappings (past the file's end, or not read yet): reserved, shown with the mapping's rights.
  const unfilled = space.reservedIn(0, space.userTop);
  // Runs end where the rights change and at every edge of a name or of shared memory (adjacent
  // shared ranges, such as a mapping and its pages past the file's end, count as one).
  const sharedRuns: Array<{ start: number; end: number }> = [];
  for (const r of [...shared, ...unfilled.filter((x) => x.shared)].sort((a, b) => a.start - b.start)) {
    const last = sharedRuns[sharedRuns.length - 1];
    if (last && last.end >= r.start) last.end = Math.max(last.end, r.end);
    else sharedRuns.push({ start: r.start, end: r.end });
  }
  const edges = new Set<number>();
  for (const r of [...names, ...sharedRuns]) { edges.add(r.start / PAGE_SIZE); edges.add(r.end / PAGE_SIZE); }
  const rights = (page: number): number => {
    const r = unfilled.length ? unfilled.find((x) => x.start <= page * PAGE_SIZE && page * PAGE_SIZE < x.end) : undefined;
    return r ? PAGE_MAPPED | r.prot : perms[page]! & (PAGE_MAPPED | PROT_ALL);
  };
  const hex = (n: number, w = 8) => n.toString(16).padStart(w, '0');
  const lines: string[] = [];
  const named = (head: string, name: string) => head + ' '.repeat(Math.max(1, 73 - head.length)) + name;
  // A mapped file's device and inode, looked up by its name once per read (lsof matches them
  // with the file's stat to list it); 00:00 0 when the name no longer leads to a file.
  const ids = new Map<string, string>();
  const idOf = (name: string): string => {
    let id = ids.get(name);
    if (id === undefined) {
      id = '00:00 0';
      try {
        const st = ops.statPath(q.vfs, normalize(name), true, Buffer.alloc(STAT_SIZE));
        const dev = st.readBigUInt64LE(STAT.dev);
        const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn), minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
        id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')} ${st.readBigUInt64LE(STAT.ino)}`;
      } catch (e) {
        if (!(e instanceof Errno)) throw e;
      }
      ids.set(name, id);
    }
    return id;
  };
  const vdso = q.machine.vdsoAddress;
  if (vdso !== null) {
    lines.push(named(`${hex(PHYS_VVAR)}-${hex(PHYS_VVAR + PAGE_SIZE)} r--p 00000000 00:00 0`, '[vvar]'));
    lines.push(named(`${hex(vdso)}-${hex(vdso + VDSO_SIZE)} r-xp 00000000 00:00 0`, '[vdso]'));
  }
  for (const [lo, hi] of space.paging.mappedRanges()) {
    const end = hi / PAGE_SIZE;
    for (let p = lo / PAGE_SIZE; p < end;) {
      const byte = rights(p);
      if (!(byte & PAGE_MAPPED)) { p++; continue; }
      let e = p + 1;
      while (e < end && rights(e) === byte && !edges.has(e)) e++;
      const a = p * PAGE_SIZE, b = e * PAGE_SIZE;
      const n = names.find((r) => r.start <= a && a < r.end);
      const s = sharedRuns.some((r) => r.start <= a && a < r.end);
      const head = `${hex(a)}-${hex(b)} ${byte & PROT_READ ? 'r' : '-'}${byte & PROT_WRITE ? 'w' : '-'}${byte & PROT_EXEC ? 'x' : '-'}${s ? 's' : 'p'} ` +
        `${hex(n ? n.offset + (a - n.start) : 0)} ${n ? idOf(n.name) : '00:00 0'}`;
      lines.push(n ? named(head, n.name) : head);
      p = e;
    }
  }
  return lines.map((l) => l + '\n').join('');
}

/**
 * /proc/PID/... of a process of the sandbox (q), as process p sees it (/proc/self is p's). Paths
 * name q's pid, so that two processes' files never share an inode number.
 */
function pidFile(p: Process, q: Process, rest: string[], selfLink = false): SpecialFile | null {
  const dir = `/proc/${q.pid}`;
  if (rest.length === 2 && rest[0] === 'fd' && /^\d+$/.test(rest[1]!)) {
    if (q.zombie) throw new Errno(E.ENOENT);
    return fdLink(q, Number(rest[1]));
  }
  // A path through one of these files (not directories): ENOTDIR, as Linux says.
  if (rest.length > 1 && PID_FILES.has(rest[0]!)) throw new Errno(E.ENOTDIR);
  if (rest.length === 0) {
    // /proc/self is a link to the caller's /proc/PID, as on Linux.
    return directory(dir, () => [...[...PID_FILES].sort().map((f): [string, number] => [f, PID_LINKS.has(f) ? DT_LNK : DT_REG]), ...PID_DIRS.map((d): [string, number] => [d, DT_DIR])],
      q === p && selfLink ? String(q.pid) : undefined, q);
  }
  if (rest.length === 1 && rest[0] === 'fd') {
    if (q.zombie) throw new Errno(E.ENOENT);
    return directory(`${dir}/fd`, () => q.fds.numbers().map((fd): [string, number] => [String(fd), DT_LNK]));
  }
  if (rest[0] === 'task') return taskFile(p, q, rest.slice(1));
  if (rest[0] === 'fdinfo' && rest.length <= 2) {
    if (q.zombie) throw new Errno(E.ENOENT);
    if (rest.length === 1) return directory(`${dir}/fdinfo`, () => q.fds.numbers().map((fd): [string, number] => [String(fd), DT_REG]));
    const fd = /^\d+$/.test(rest[1]!) ? Number(rest[1]) : -1;
    const file = q.fds.peek(fd);
    if (!file) throw new Errno(E.ENOENT);
    return memory(`${dir}/fdinfo/${fd}`, () => fdInfo(file, q.fds.cloexec(fd)));
  }
  if (rest.length !== 1) return null;
  switch (rest[0]) {
    case 'exe':
      // A zombie has no program any more (Linux: ENOENT).
      if (q.zombie) throw new Errno(E.ENOENT);
      // stat and open reach the program where the guest's files show it (lsof, a program reading
      // itself); a program they do not show (run from outside the grants) stays EACCES.
      const comps = normalize(q.exePath);
      const shown = <T>(f: () => T): T => {
        try {
          return f();
        } catch (e) {
          if (e instanceof Errno && (e.errno === E.ENOENT || e.errno === E.ENOTDIR)) throw new Errno(E.EACCES);
          throw e;
        }
      };
      return {
        link: q.exePath,
        open: (flags) => shown(() => ops.openPath(q, comps, flags & ~(O.CREAT | O.TRUNC | O.EXCL), 0)),
        stat: (out) => { shown(() => ops.statPath(q.vfs, comps, true, out)); },
      };
    case 'cwd': case 'root': {
      // The process's working directory, or its root (the guest's /): readlink gives the path,
      // stat and open go to the directory itself (pwdx, lsof; a path through it is not followed).
      if (q.zombie) throw new Errno(E.ENOENT);
      const comps = rest[0] === 'cwd' ? [...q.cwd] : [];
      return {
        link: '/' + comps.join('/'),
        open: (flags) => ops.openPath(q, comps, flags, 0),
        stat: (out) => { ops.statPath(q.vfs, comps, true, out); },
      };
    }
    case 'cmdline': return memory(`${dir}/cmdline`, () => (q.zombie ? '' : Buffer.concat(q.argv.map(cStringOf))));
    case 'environ': return memory(`${dir}/environ`, () => (q.zombie ? '' : Buffer.concat(q.envp.map(cStringOf))));
    case 'stat': return memory(`${dir}/stat`, () => statLine(q));
    case 'status': return memory(`${dir}/status`, () => statusText(q));
    case 'statm': return memory(`${dir}/statm`, () => statmLine(q));
    case 'maps': return memory(`${dir}/maps`, () => (q.zombie ? '' : mapsText(q)));
    case 'auxv': return memory(`${dir}/auxv`, () => (q.zombie ? Buffer.alloc(0) : q.auxv));
    case 'mem': return memFile(p, q, `${dir}/mem`);
    case 'mounts': return procFile(p, 'mounts');
    case 'mountinfo': return memory(`${dir}/mountinfo`, () => mountinfoText(p));
    case 'comm': return commFile(p, q, q.tasks[0]!, `${dir}/comm`);
    case 'limits': return memory(`${dir}/limits`, () => limitsText(q));
    default: return null;
  }
}

/**
 * /proc/PID/task and /proc/PID/task/TID/{comm,stat,status}: the process's live threads (ps -L,
 * top -H, counting threads). A thread's comm is its own name (Task.name), and a thread of the
 * same process may rename it by writing there (glibc's pthread_setname_np for another thread).
 */
function taskFile(p: Process, q: Process, rest: readonly string[]): SpecialFile | null {
  if (q.zombie) throw new Errno(E.ENOENT);
  const live = q.tasks.filter((t) => t.state !== 'dead');
  const dir = `/proc/${q.pid}/task`;
  if (rest.length === 0) return directory(dir, () => live.map((t): [string, number] => [String(t.tid), DT_DIR]));
  const t = live.find((x) => String(x.tid) === rest[0]);
  if (!t) throw new Errno(E.ENOENT);
  if (rest.length === 1) return directory(`${dir}/${t.tid}`, () => TASK_FILES.map((f): [string, number] => [f, DT_REG]));
  if (rest.length > 2) throw new Errno(E.ENOTDIR);
  switch (rest[1]) {
    case 'stat': return memory(`${dir}/${t.tid}/stat`, () => statLine(q, t));
    case 'status': return memory(`${dir}/${t.tid}/status`, () => statusText(q, t));
    case 'comm': return commFile(p, q, t, `${dir}/${t.tid}/comm`);
    case 'mem': return memFile(p, q, `${dir}/${t.tid}/mem`);
    case 'maps': return memory(`${dir}/${t.tid}/maps`, () => mapsText(q));
    default: return null;
  }
}

const TASK_FILES = ['comm', 'maps', 'mem', 'stat', 'status'];

/**
 * /proc/PID/mem: q's memory at the file's offsets, as a debugger reads and writes it (gdb
 * inserts its breakpoints there). The opener p reaches it as ptrace does (readMemoryOf,
 * writeMemoryOf): any process of the sandbox, the guest's one user owning them all.
 */
function memFile(p: Process, q: Process, path: string): SpecialFile {
  const ino = inoOf(path);
  return {
    open: (flags) => {
      if (q.zombie) throw new Errno(E.ENOENT);
      return new ProcMem(path, flags, p, q, ino);
    },
    stat: (out) => memoryFileStat(out, ino),
  };
}

class ProcMem implements OpenFile {
  readonly hostFd = null;
  private offset = 0n;
  constructor(readonly path: string, public statusFlags: number, private readonly opener: Process, private readonly target: Process, private readonly ino: number) {}
  read(buf: Buffer): number {
    const n = this.pread(buf, this.offset);
    this.offset += BigInt(n);
    return n;
  }
  write(buf: Buffer): number {
    const n = this.pwrite(buf, this.offset);
    this.offset += BigInt(n);
    return n;
  }
  pread(buf: Buffer, offset: bigint): number {
    if ((this.statusFlags & O.ACCMODE) === O.WRONLY) throw new Errno(E.EBADF);
    if (this.target.zombie || buf.length === 0) return 0;
    return readMemoryOf(this.opener, this.target, offset, buf.length).copy(buf);
  }
  pwrite(buf: Buffer, offset: bigint): number {
    if ((this.statusFlags & O.ACCMODE) === O.RDONLY) throw new Errno(E.EBADF);
    if (this.target.zombie || buf.length === 0) return 0;
    return writeMemoryOf(this.opener, this.target, offset, Buffer.from(buf));
  }
  seek(offset: bigint, whence: number): number {
    const to = whence === 0 ? offset : whence === 1 ? this.offset + offset : -1n;
    if (to < 0n) throw new Errno(E.EINVAL);
    this.offset = to;
    return Number(to);
  }
  stat(out: Buffer): void { memoryFileStat(out, this.ino); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void {}
}

/** A comm file: read, the name; written by a thread of the same process, a new name (else EACCES). */
function commFile(p: Process, q: Process, t: Task, path: string): SpecialFile {
  const read = memory(path, () => commOf(q, t) + '\n');
  return {
    open: (flags) => {
      if ((flags & O.ACCMODE) === O.RDONLY) return read.open(flags);
      if (p !== q) throw new Errno(E.EACCES);
      return new CommWriter(path, flags & (O.ACCMODE | O.NONBLOCK), t);
    },
    stat: read.stat,
  };
}

/** An open comm file for writing: each write names the thread (its first 15 bytes, a newline included, as Linux keeps them). */
class CommWriter implements OpenFile {
  readonly hostFd = null;
  constructor(readonly path: string, public statusFlags: number, private readonly task: Task) {}
  read(): number { throw new Errno(E.EBADF); }
  write(buf: Buffer): number {
    this.task.setName(Buffer.from(buf));
    return buf.length;
  }
  pread(): number { throw new Errno(E.ESPIPE); }
  pwrite(): number { throw new Errno(E.ESPIPE); }
  seek(): number { return 0; }
  stat(out: Buffer): void { memoryFileStat(out, inoOf(this.path)); }
  getdents(): number { throw new Errno(E.ENOTDIR); }
  isatty(): boolean { return false; }
  close(): void {}
}

/** /proc/PID/limits: each resource's soft and hard limit, as getrlimit gives them, in Linux's table. */
const LIMIT_ROWS: ReadonlyArray<readonly [string, string]> = [
  ['Max cpu time', 'seconds'], ['Max file size', 'bytes'], ['Max data size', 'bytes'], ['Max stack size', 'bytes'],
  ['Max core file size', 'bytes'], ['Max resident set', 'bytes'], ['Max processes', 'processes'], ['Max open files', 'files'],
  ['Max locked memory', 'bytes'], ['Max address space', 'bytes'], ['Max file locks', 'locks'], ['Max pending signals', 'signals'],
  ['Max msgqueue size', 'bytes'], ['Max nice priority', ''], ['Max realtime priority', ''], ['Max realtime timeout', 'us'],
];
const RLIM_INFINITY = (1n << 64n) - 1n;

function limitsText(q: Process): string {
  const row = (a: string, b: string, c: string, d: string) => `${a.padEnd(25)} ${b.padEnd(20)} ${c.padEnd(20)} ${d.padEnd(10)}\n`;
  const show = (v: bigint) => (v === RLIM_INFINITY ? 'unlimited' : String(v));
  return row('Limit', 'Soft Limit', 'Hard Limit', 'Units') + LIMIT_ROWS.map(([name, unit], i) => {
    const [soft, hard] = q.rlimit(i);
    return row(name, show(soft), show(hard), unit);
  }).join('');
}

/**
 * /proc/PID/mountinfo: the guest's root (read-only unless a writable grant is /) and each grant
 * as a mount of its own, in the order /proc/mounts lists them, with made-up ids and devices.
 */
function mountinfoText(p: Process): string {
  return mounts(p).map((m, i) => `${i + 1} ${i === 0 ? 0 : 1} 0:${i + 1} / ${m.path} ${m.mode},relatime - kvmbox kvmbox ${m.mode}\n`).join('');
}

/**
 * The mounts /proc/mounts and mountinfo list: the guest's root first (read-only unless a writable
 * grant is /; df and busybox df look for the mount of a path among them), then each grant.
 */
function mounts(p: Process): Array<{ path: string; mode: 'rw' | 'ro' }> {
  const grants = [...p.vfs.grants].reverse();
  const root = grants.find((g) => g.guestPath === '/');
  const mode = (w: boolean | undefined): 'rw' | 'ro' => (w ? 'rw' : 'ro');
  return [{ path: '/', mode: mode(root?.writable) }, ...grants.filter((g) => g !== root).map((g) => ({ path: g.guestPath, mode: mode(g.writable) }))];
}

/** A random version-4 UUID, as /proc/sys/kernel/random/uuid gives a new one at each read. */
function uuid(bytes: Buffer): string {
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * /proc/sys: the settings programs read, as this sandbox has them: pid_max, the kernel's name and
 * release and the host name (as uname), a fresh UUID and the sandbox's boot id, strict overcommit
 * (2: --memory is a commit limit), and the limits kvmbox keeps (pipe size, open files, maps,
 * listen backlog). Read-only; anything else under it is ENOENT.
 */
function sysTree(p: Process): Record<string, Record<string, () => string>> {
  return {
    kernel: {
      pid_max: () => '4194304', osrelease: () => KERNEL_VERSION, ostype: () => 'Linux', hostname: () => HOSTNAME,
      ngroups_max: () => '65536', 'threads-max': () => String(p.kernel.maxProcesses),
    },
    'kernel/random': { uuid: () => uuid(randomBytes(16)), boot_id: () => uuid(Buffer.from(p.kernel.bootId)) },
    vm: { overcommit_memory: () => '2', max_map_count: () => '65530' },
    fs: { 'pipe-max-size': () => '1048576', nr_open: () => '1048576', 'file-max': () => '9223372036854775807' },
    'net/core': { somaxconn: () => '4096' },
  };
}

function procSys(p: Process, rest: readonly string[]): SpecialFile | null {
  const tree = sysTree(p);
  const path = rest.join('/');
  const dirs = new Set(Object.keys(tree).flatMap((d) => d.split('/').map((_, i, all) => all.slice(0, i + 1).join('/'))));
  if (path === '' || dirs.has(path)) {
    const prefix = path === '' ? '' : path + '/';
    const children = new Map<string, number>();
    for (const d of dirs) if (d.startsWith(prefix) && !d.slice(prefix.length).includes('/') && d !== path) children.set(d.slice(prefix.length), DT_DIR);
    for (const f of Object.keys(own(tree, path) ?? {})) children.set(f, DT_REG);
    return directory(`/proc/sys${path ? '/' + path : ''}`, () => [...children].sort());
  }
  const dir = rest.slice(0, -1).join('/'), name = rest[rest.length - 1]!;
  const make = own(own(tree, dir), name);
  return make ? memory(`/proc/sys/${path}`, () => make() + '\n') : null;
}

/**
 * /proc/PID/fdinfo/N: the open file's offset (0 where it has none), its flags in octal with
 * O_CLOEXEC when the descriptor has it, as Linux writes them, and its inode.
 */
function fdInfo(file: OpenFile, cloexec: boolean): string {
  let pos = 0;
  try {
    pos = file.seek(0n, 1 /* SEEK_CUR */);
  } catch {
    // pipes, sockets, terminals: no offset
  }
  const st = Buffer.alloc(STAT_SIZE);
  let ino = 0n;
  try {
    file.stat(st);
    ino = st.readBigUInt64LE(STAT.ino);
  } catch {
    // a file that cannot say
  }
  const flags = (file.statusFlags | (cloexec ? O.CLOEXEC : 0)) >>> 0;
  return `pos:\t${pos}\nflags:\t0${flags.toString(8)}\nmnt_id:\t0\nino:\t${ino}\n`;
}

/** The guest's controlling terminal: a standard stream that is a host terminal. */
function tty(p: Process): SpecialFile {
  const pty = p.kernel.ptys.ofSession(p.sid);
  if (pty) {
    return {
      open: (flags) => { pty.slaveOpen(); return new PtySlave(pty, flags & (O.ACCMODE | O.NONBLOCK)); },
      stat: (out) => charDeviceStat(out, TTY_RDEV, TTY_RDEV),
    };
  }
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

const DT_CHR = 2;

/** /dev/ptmx: each open makes a new pty and is its master. */
function ptmx(p: Process): SpecialFile {
  return {
    open: (flags) => {
      const k = p.kernel;
      const pty = k.ptys.create((pgrp, sig) => k.signalGroup(pgrp, sig, SI_KERNEL), (sid) => {
        // The master's last close hangs up the controlling process (the session leader).
        const leader = k.find(sid);
        if (leader && !leader.zombie) for (const sig of [SIG.SIGHUP, SIGCONT]) { const t = leader.signalTarget(sig); if (t) raise(t, sig, { code: SI_KERNEL }); }
      });
      return new PtyMaster(pty, flags & (O.ACCMODE | O.NONBLOCK));
    },
    stat: (out) => charDeviceStat(out, PTMX_RDEV, PTMX_RDEV),
  };
}

/**
 * /dev/pts/N: the slave of pty N (ENOENT when there is none; EIO while it is locked or hung up).
 * A session leader without a controlling terminal that opens it without O_NOCTTY makes it its
 * session's, as on Linux.
 */
function ptySlave(p: Process, index: number): SpecialFile {
  const pty = p.kernel.ptys.get(index);
  if (!pty) throw new Errno(E.ENOENT);
  return {
    open: (flags) => {
      pty.slaveOpen();
      if (!(flags & O.NOCTTY)) acquireTerminal(p, pty);
      return new PtySlave(pty, flags & (O.ACCMODE | O.NONBLOCK));
    },
    stat: (out) => slaveStat(out, index),
  };
}

/** Make pty the controlling terminal of p's session if p leads a session that has none and pty is no one's. */
export function acquireTerminal(p: Process, pty: Pty): boolean {
  const k = p.kernel;
  if (p.pid !== p.sid || pty.sid !== 0 || k.terminal.sid === p.sid || k.ptys.ofSession(p.sid)) return false;
  pty.sid = p.sid;
  pty.pgrp = p.pgid;
  return true;
}

/**
 * /dev: the devices kvmbox makes up, its terminals, /dev/shm when the sandbox has it, and the
 * links to the caller's fds, as a container's fresh /dev (lsof and ls stat and list it). It is
 * the sandbox's even where a grant shows a host /dev, whose devices are never opened anyway.
 */
function devRoot(p: Process): SpecialFile {
  return directory('/dev', () => [
    ...Object.keys(DEVICES).map((d): [string, number] => [d, DT_CHR]),
    ['tty', DT_CHR], ['ptmx', DT_CHR], ['pts', DT_DIR], ...(p.kernel.shm ? [['shm', DT_DIR] as [string, number]] : []),
    ['fd', DT_LNK], ['stdin', DT_LNK], ['stdout', DT_LNK], ['stderr', DT_LNK],
  ]);
}

/** The special entry at an absolute, normalized guest path, or null when it is not one. */
export function special(p: Process, comps: readonly string[]): SpecialFile | null {
  const [top, a, ...rest] = comps;
  if (top === 'dev' && a === undefined) return devRoot(p);
  if (top === 'dev' && a !== undefined) {
    if (rest.length === 0) {
      const kind = own(DEVICES, a);
      if (kind) {
        const path = '/dev/' + a;
        return {
          open: (flags) => new DeviceFile(path, flags & ~(O.CREAT | O.EXCL | O.TRUNC | O.CLOEXEC | O.NOCTTY), kind, (b) => randomFillSync(b)),
          stat: (out) => new DeviceFile(path, 0, kind, () => {}).stat(out),
        };
      }
      if (a === 'tty') return tty(p);
      if (a === 'ptmx') return ptmx(p);
      if (a === 'pts') return directory('/dev/pts', () => p.kernel.ptys.indexes().map((i): [string, number] => [String(i), DT_CHR]));
      const std = ['stdin', 'stdout', 'stderr'].indexOf(a);
      if (std >= 0) {
        const target = fdLink(p, std);
        return { ...target, link: `/proc/self/fd/${std}`, linkMode: undefined };
      }
    }
    if (a === 'fd' && rest.length === 0) return { ...pidFile(p, p, ['fd'])!, link: '/proc/self/fd' };
    if (a === 'fd' && rest.length === 1 && /^\d+$/.test(rest[0]!)) return fdLink(p, Number(rest[0]));
    if (a === 'pts' && rest.length === 1 && /^\d+$/.test(rest[0]!)) return ptySlave(p, Number(rest[0]));
    return null;
  }
  // The CPUs the sandbox offers, where glibc's get_nprocs and get_nprocs_conf look first, and
  // the directory that lists them (lscpu opens it and reads the masks relative to it); a
  // directory per vCPU, with nothing of the host's topology in it. Only this directory of /sys.
  if (top === 'sys' && a === 'devices' && rest[0] === 'system' && rest[1] === 'cpu') {
    const n = p.kernel.maxVcpus;
    const dir = '/sys/devices/system/cpu';
    if (rest.length === 2) {
      return directory(dir, () => [
        ...CPU_MASKS.map((f): [string, number] => [f, DT_REG]),
        ...Array.from({ length: n }, (_, i): [string, number] => [`cpu${i}`, DT_DIR]),
      ]);
    }
    if (rest.length === 3 && CPU_MASKS.includes(rest[2]!)) return memory(`${dir}/${rest[2]}`, () => `${cpuRange(0, n - 1)}\n`);
    const cpu = /^cpu(0|[1-9]\d*)$/.exec(rest[2] ?? '');
    if (cpu && Number(cpu[1]) < n) {
      const k = Number(cpu[1]);
      if (rest.length === 3) return directory(`${dir}/${rest[2]}`, () => [['topology', DT_DIR]]);
      if (rest[3] === 'topology') {
        const files = cpuTopology(k, n);
        if (rest.length === 4) return directory(`${dir}/${rest[2]}/topology`, () => Object.keys(files).map((f): [string, number] => [f, DT_REG]));
        const text = own(files, rest[4]!);
        if (rest.length === 5 && text !== undefined) return memory(`${dir}/${rest[2]}/topology/${rest[4]}`, () => `${text}\n`);
      }
    }
    if (rest.length >= 3) throw new Errno(E.ENOENT);
  }
  if (top === 'proc' && a === undefined) return procRoot(p);
  if (top === 'proc' && a === 'sys') {
    const f = procSys(p, rest);
    if (!f) throw new Errno(E.ENOENT);
    return f;
  }
  // /proc/net: the sandbox's own sockets (src/linux/proc-net.ts).
  if (top === 'proc' && a === 'net' && rest.length === 0) return directory('/proc/net', () => PROC_NET_FILES.map((f): [string, number] => [f, DT_REG]));
  if (top === 'proc' && a === 'net' && rest.length === 1 && PROC_NET_FILES.includes(rest[0]!)) return memory(`/proc/net/${rest[0]}`, () => procNetText(p, rest[0]!));
  if (top === 'proc' && a !== undefined) {
    if (a === 'self') return pidFile(p, p, rest, true);
    if (/^[1-9]\d*$/.test(a)) {
      // Any process of the sandbox, live or a zombie not yet waited for; no other pid exists.
      const q = p.kernel.find(Number(a));
      if (!q) throw new Errno(E.ENOENT);
      return pidFile(p, q, rest);
    }
    if (rest.length === 0) return procFile(p, a);
  }
  return null;
}
