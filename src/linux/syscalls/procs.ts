// Process calls: fork, vfork, clone and clone3 for new processes, execve and execveat, wait4 and
// waitid, process groups and sessions, process_vm_readv and process_vm_writev. The work is the
// kernel's (src/linux/kernel.ts, through Process.kernel): these functions read and check the
// arguments, and write the results back.
import { nameLength } from '../../abi/file-names.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { AT_FDCWD, CLONE_NAMESPACES, CLONE_NEWTIME, E, Errno, O } from '../../abi/linux.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { int, type SyscallGroup } from './args.js';
import { pidFdAt } from './pidfd.js';
import { CpuTime, msTicks } from '../cpu-time.js';
import { writeRusage } from './time.js';
import { iovecs } from './io.js';
import { PAGE_SIZE } from '../../machine/x86.js';
import { reachable } from '../ptrace.js';
import { execArgumentLimit } from '../exec.js';

/** A child's CPU time with that of the children it waited for, as wait4 and waitid report it. */
function childAndWaited(c: Process): CpuTime {
  const sum = new CpuTime();
  sum.add(c.cpu);
  sum.add(c.childCpu);
  return sum;
}

const SIGCHLD = 17n;
const CLONE_VM = 0x100n, CLONE_PIDFD = 0x1000n, CLONE_VFORK = 0x4000n, CLONE_PARENT_SETTID = 0x100000n;
const WNOHANG = 1, WUNTRACED = 2, WEXITED = 4, WCONTINUED = 8, WNOWAIT = 0x01000000;
const WNOTHREAD = 0x20000000, WALL = 0x40000000, WCLONE = 0x80000000;
const P_ALL = 0, P_PID = 1, P_PGID = 2, P_PIDFD = 3;
/** struct clone_args up to tls (CLONE_ARGS_SIZE_VER0), and the largest kvmbox reads. */
const CLONE_ARGS_VER0 = 64, CLONE_ARGS_MAX = 88;
const UNSHARE_FS = 0x200n, UNSHARE_FILES = 0x400n, UNSHARE_SIGHAND = 0x800n, UNSHARE_THREAD = 0x10000n, UNSHARE_SYSVSEM = 0x40000n;
/** What unshare may be asked for (else EINVAL, as Linux). */
const UNSHARE_KNOWN = CLONE_VM | UNSHARE_FS | UNSHARE_FILES | UNSHARE_SIGHAND | UNSHARE_THREAD | UNSHARE_SYSVSEM | CLONE_NAMESPACES | CLONE_NEWTIME;
/** execve: at most this many argument and environment strings (their bytes: execArgumentLimit). */
const MAX_ARG_STRINGS = 0x7fffffff;
/** The longest one string may be, with its NUL (Linux's MAX_ARG_STRLEN): E2BIG past it. */
const MAX_ARG_STRLEN = 128 << 10;

/** A NULL-terminated array of string pointers (argv, envp), each read once. */
function stringArray(p: Process, addr: bigint, budget: { left: number }): string[] {
  const out: string[] = [];
  if (addr === 0n) return out;
  for (let i = 0; i < MAX_ARG_STRINGS; i++) {
    const ptr = p.userBuffer(addr + BigInt(i * 8), 8).readBigUInt64LE(0);
    if (ptr === 0n) return out;
    let s: string;
    try {
      s = p.userString(ptr, MAX_ARG_STRLEN);
    } catch (e) {
      throw e instanceof Errno && e.errno === E.ENAMETOOLONG ? new Errno(E.E2BIG) : e;
    }
    budget.left -= nameLength(s) + 1 + 8;
    if (budget.left < 0) throw new Errno(E.E2BIG);
    out.push(s);
  }
  throw new Errno(E.E2BIG);
}

function execveAt(t: Task, dirfd: number, pathAddr: bigint, argvAddr: bigint, envAddr: bigint, flags: number): number {
  const p = t.process;
  const AT_EMPTY_PATH = 0x1000, AT_SYMLINK_NOFOLLOW = 0x100;
  if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) throw new Errno(E.EINVAL);
  const path = p.userString(pathAddr);
  const budget = { left: execArgumentLimit(p.stackRlimit()) };
  const argv = stringArray(p, argvAddr, budget);
  const envp = stringArray(p, envAddr, budget);
  return p.kernel.execve(t, dirfd, path, argv, envp, flags);
}

/** Which children a wait4 pid argument names. */
function childrenOf(p: Process, pid: number): (c: Process) => boolean {
  if (pid > 0) return (c) => c.pid === pid;
  if (pid === 0) { const g = p.pgid; return (c) => c.pgid === g; }
  if (pid === -1) return () => true;
  return (c) => c.pgid === -pid;
}

function clone3(t: Task, addr: bigint, size: bigint): number {
  const n = Number(size > BigInt(CLONE_ARGS_MAX) ? CLONE_ARGS_MAX : size);
  if (size < BigInt(CLONE_ARGS_VER0) || size > 4096n) throw new Errno(E.EINVAL);
  const raw = Buffer.from(t.process.userBuffer(addr, n));
  const f = (i: number) => (i * 8 + 8 <= raw.length ? raw.readBigUInt64LE(i * 8) : 0n);
  const [flags, , childTid, parentTid, exitSignal, stack, stackSize, tls] = [0, 1, 2, 3, 4, 5, 6, 7].map(f) as bigint[];
  // set_tid and cgroups are not offered; the pidfd field counts only with CLONE_PIDFD.
  if (f(8) !== 0n || f(9) !== 0n || (flags! & 0xffn) !== 0n || exitSignal! > 64n) throw new Errno(E.EINVAL);
  if ((stack === 0n) !== (stackSize === 0n)) throw new Errno(E.EINVAL);
  return t.process.kernel.clone(t, {
    flags: flags! | exitSignal!, stack: stack === 0n ? 0n : stack! + stackSize!, parentTid: parentTid!, childTid: childTid!, tls: tls!,
    pidfd: flags! & CLONE_PIDFD ? f(1) : 0n,
  });
}

/**
 * process_vm_readv and process_vm_writev: bytes between the caller's iovecs and the memory of a
 * process of the sandbox (pids are the sandbox's; the guest's one user may reach every process),
 * in order, as far as the other's mappings allow: a page it has not mapped with the right ends
 * the transfer there (EFAULT when nothing moved). Where processes take turns in one memory
 * (kvm_pvm) another process's pages are not in guest memory: only the caller's own (EPERM).
 */
function processVm(p: Process, a: bigint[], write: boolean): number {
  if (a[5] !== 0n) throw new Errno(E.EINVAL);
  const local = iovecs(p, a[1]!, a[2]!);
  const remote = iovecs(p, a[3]!, a[4]!);
  // Any thread's id names its process, as on Linux (strace reads a thread's buffers by its tid).
  const target = p.kernel.findTask(int(a[0]!))?.process ?? p.kernel.find(int(a[0]!));
  if (!target || target.zombie) throw new Errno(E.ESRCH);
  if (!reachable(p, target)) throw new Errno(E.EPERM);
  const bufs = local.map(([b, l]) => p.userBuffer(b, l, write ? PROT_READ : PROT_WRITE));
  const right = write ? PROT_WRITE : PROT_READ;
  let li = 0, lo = 0, total = 0, faulted = false;
  outer: for (const [base, len] of remote) {
    for (let off = 0n; off < len;) {
      while (li < bufs.length && lo === bufs[li]!.length) { li++; lo = 0; }
      if (li === bufs.length) break outer;
      const addr = base + off;
      const want = Math.min(Number(len - off < 1n << 40n ? len - off : 1n << 40n), bufs[li]!.length - lo);
      let n = want;
      let there: Buffer | null = null;
      // The whole piece, or (when part of it is not mapped) what lies before the first bad page.
      while (there === null && n > 0) {
        try {
          there = target.userBuffer(addr, n, right);
        } catch (e) {
          if (!(e instanceof Errno) || e.errno !== E.EFAULT) throw e;
          const toPage = PAGE_SIZE - Number(addr % BigInt(PAGE_SIZE));
          n = n > toPage ? toPage : 0;
        }
      }
      if (there === null) { faulted = true; break outer; }
      if (write) bufs[li]!.copy(there, 0, lo, lo + n);
      else there.copy(bufs[li]!, lo, 0, n);
      lo += n;
      off += BigInt(n);
      total += n;
    }
  }
  if (total === 0 && faulted) throw new Errno(E.EFAULT);
  return total;
}

export const processSyscalls: SyscallGroup = {
  process_vm_readv: ({ process: p }, a) => processVm(p, a, false),
  process_vm_writev: ({ process: p }, a) => processVm(p, a, true),
  fork: (t) => t.process.kernel.clone(t, { flags: SIGCHLD, stack: 0n, parentTid: 0n, childTid: 0n, tls: 0n }),
  vfork: (t) => t.process.kernel.clone(t, { flags: CLONE_VM | CLONE_VFORK | SIGCHLD, stack: 0n, parentTid: 0n, childTid: 0n, tls: 0n }),
  // x86-64 order: flags, stack, parent_tid, child_tid, tls.
  clone: (t, a) => {
    const flags = BigInt.asUintN(64, a[0]);
    // clone's CLONE_PIDFD writes the descriptor where parent_tid points, so not with both.
    if (flags & CLONE_PIDFD && flags & CLONE_PARENT_SETTID) throw new Errno(E.EINVAL);
    return t.process.kernel.clone(t, { flags, stack: a[1], parentTid: a[2], childTid: a[3], tls: a[4], pidfd: flags & CLONE_PIDFD ? a[2] : 0n });
  },
  clone3: (t, a) => clone3(t, a[0], a[1]),
  unshare: (t, a) => {
    const f = BigInt.asUintN(64, a[0]);
    if (f & ~UNSHARE_KNOWN) throw new Errno(E.EINVAL);
    // A process's threads share its address space, signal handlers, cwd and fd table in kvmbox:
    // a thread of several cannot take its own (EINVAL, which Linux also gives for the first three).
    const threads = t.process.tasks.filter((x) => x.state !== 'dead').length;
    if (threads > 1 && f & (CLONE_VM | UNSHARE_THREAD | UNSHARE_SIGHAND | UNSHARE_FS | UNSHARE_FILES)) throw new Errno(E.EINVAL);
    // New namespaces need a privilege the sandbox's user lacks, as with user namespaces off.
    if (f & (CLONE_NAMESPACES | CLONE_NEWTIME)) throw new Errno(E.EPERM);
    // Alone, a process already has its own: nothing to unshare.
    return 0;
  },
  execve: (t, a) => execveAt(t, AT_FDCWD, a[0], a[1], a[2], 0),
  execveat: (t, a) => execveAt(t, int(a[0]), a[1], a[2], a[3], int(a[4])),
  wait4: (t, a) => {
    const p = t.process;
    const options = int(a[2]);
    if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE)) throw new Errno(E.EINVAL);
    // Checked before a child is reaped, so that a bad pointer loses nothing.
    const status = a[1] !== 0n ? p.userBuffer(a[1], 4, PROT_WRITE) : null;
    const usage = a[3] !== 0n ? p.userBuffer(a[3], 144, PROT_WRITE) : null;
    const pid = int(a[0]);
    const r = p.kernel.reap(t, childrenOf(p, pid), options & (WNOHANG | WUNTRACED | WCONTINUED), pid > 0 ? pid : undefined);
    if (!r) return 0;
    status?.writeInt32LE(r.status);
    if (usage) writeRusage(usage, childAndWaited(r.child), r.child.peakRssKb);
    return r.id ?? r.child.pid;
  },
  waitid: (t, a) => {
    const p = t.process;
    const idtype = int(a[0]), id = int(a[1]), options = int(a[3]);
    if (options & ~(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)) throw new Errno(E.EINVAL);
    if (!(options & (WEXITED | WUNTRACED | WCONTINUED))) throw new Errno(E.EINVAL);
    let which: (c: Process) => boolean;
    let nonblock = false;
    if (idtype === P_ALL) which = () => true;
    else if (idtype === P_PID) { if (id <= 0) throw new Errno(E.EINVAL); which = (c) => c.pid === id; }
    else if (idtype === P_PGID) { if (id < 0) throw new Errno(E.EINVAL); const g = id === 0 ? p.pgid : id; which = (c) => c.pgid === g; }
    else if (idtype === P_PIDFD) {
      if (id < 0) throw new Errno(E.EINVAL);
      const f = pidFdAt(p, id);
      which = (c) => c === f.target;
      // A nonblocking pidfd makes the wait WNOHANG, and "nothing yet" EAGAIN.
      if (f.statusFlags & O.NONBLOCK && !(options & WNOHANG)) nonblock = true;
    } else throw new Errno(E.EINVAL);
    const info = a[2] !== 0n ? p.userBuffer(a[2], 128, PROT_WRITE) : null;
    // WSTOPPED is WUNTRACED; a child that only stopped or continued is reported with them.
    const wanted = options & (WNOHANG | WNOWAIT | WUNTRACED | WCONTINUED) | (nonblock ? WNOHANG : 0);
    const r = p.kernel.reap(t, options & WEXITED ? which : (c) => which(c) && !c.zombie, wanted, idtype === P_PID ? id : undefined);
    if (!r && nonblock) throw new Errno(E.EAGAIN);
    if (info) {
      info.fill(0);
      if (r) {
        info.writeInt32LE(Number(SIGCHLD), 0);
        info.writeInt32LE(r.code, 8);
        info.writeInt32LE(r.id ?? r.child.pid, 16);
        info.writeUInt32LE(1000, 20);
        info.writeInt32LE(r.value, 24);
        // si_utime and si_stime (ticks): the child's and its waited-for children's.
        const cpu = childAndWaited(r.child);
        info.writeBigInt64LE(msTicks(cpu.user), 32);
        info.writeBigInt64LE(msTicks(cpu.sys), 40);
      }
    }
    return 0;
  },
  setpgid: (t, a) => {
    const p = t.process;
    const pid = int(a[0]), pgid = int(a[1]);
    if (pgid < 0) throw new Errno(E.EINVAL);
    const target = pid === 0 ? p : p.kernel.find(pid);
    if (!target || target.zombie || (target !== p && target.parent !== p)) throw new Errno(E.ESRCH);
    if (target.sid !== p.sid || target.sid === target.pid) throw new Errno(E.EPERM);
    const group = pgid === 0 ? target.pid : pgid;
    if (group !== target.pid) {
      // Joining a group needs a member in the same session.
      const found = [...p.kernel.all()].some((m) => m.pgid === group && m.sid === p.sid && !m.zombie);
      if (!found) throw new Errno(E.EPERM);
    }
    target.pgid = group;
    return 0;
  },
  getpgid: (t, a) => {
    const pid = int(a[0]);
    const q = pid === 0 ? t.process : t.process.kernel.find(pid);
    if (!q) throw new Errno(E.ESRCH);
    return q.pgid;
  },
  getsid: (t, a) => {
    const pid = int(a[0]);
    const q = pid === 0 ? t.process : t.process.kernel.find(pid);
    if (!q) throw new Errno(E.ESRCH);
    return q.sid;
  },
  getpgrp: (t) => t.process.pgid,
  setsid: (t) => {
    const p = t.process;
    if (p.pgid === p.pid) throw new Errno(E.EPERM);
    p.sid = p.pgid = p.pid;
    return p.pid;
  },
};
