// Process identity, limits, signals bookkeeping, and the end of the program.
import { randomFillSync } from 'node:crypto';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS, E, Errno } from '../../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../../abi/abi.generated.js';
import { MSR_FS_BASE, MSR_GS_BASE } from '../../machine/x86.js';
import { SIG_DFL, SIG_IGN, defaultAction, discardPending } from '../signals.js';
import { ROBUST_LIST_HEAD_SIZE } from '../robust.js';
import type { Task } from '../task.js';
import type { Process } from '../process.js';
import { HOSTNAME, KERNEL_VERSION } from '../special-files.js';
import { int, size, type SyscallGroup } from './args.js';

const NSIG = 64;
const SIGKILL = 9, SIGSTOP = 19;
/** Signals no mask can block (rt_sigprocmask drops them silently, as Linux). */
const UNBLOCKABLE = (1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1));
const SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
const GRND_NONBLOCK = 1, GRND_RANDOM = 2, GRND_INSECURE = 4;
const UTS_FIELD = 65;
const CANONICAL_LIMIT = 0x800000000000n;

/** A writable 8-byte word of t's memory. */
const p8 = (t: Task, addr: bigint): Buffer => t.process.userBuffer(addr, 8, PROT_WRITE);

function utsname(): Buffer {
  const out = Buffer.alloc(UTS_FIELD * 6);
  ['Linux', HOSTNAME, KERNEL_VERSION, '#1 SMP kvmbox', 'x86_64', '(none)'].forEach((s, i) => out.write(s, i * UTS_FIELD));
  return out;
}

const PRIO_PROCESS = 0, PRIO_PGRP = 1, PRIO_USER = 2;

/** Scheduling policies: the normal ones, and the real-time ones (priorities 1-99). */
const SCHED_OTHER = 0, SCHED_FIFO = 1, SCHED_RR = 2, SCHED_BATCH = 3, SCHED_IDLE = 5, SCHED_DEADLINE = 6;
/** sched_setscheduler's flag: the policy is not inherited across fork. */
const SCHED_RESET_ON_FORK = 0x40000000;
/** sched_rr_get_interval's answer: SCHED_RR's time slice on Linux (100 ms). */
const SLICE_NS = 100_000_000n;

/**
 * The process sched_* calls and prlimit64 name by pid (0: the caller's): any of the sandbox, as
 * all have the same credentials; ESRCH when none; EINVAL for a negative pid.
 */
function schedTarget(p: Process, pid: number): Process {
  if (pid < 0) throw new Errno(E.EINVAL);
  if (pid === 0) return p;
  const q = p.kernel.findTask(pid)?.process;
  if (!q || q.zombie) throw new Errno(E.ESRCH);
  return q;
}

/** The process the affinity calls name: as schedTarget, but a negative pid names no one (ESRCH), as on Linux. */
function affinityTarget(p: Process, pid: number): Process {
  if (pid < 0) throw new Errno(E.ESRCH);
  return schedTarget(p, pid);
}

/** A struct sched_param's priority (one int), copied once. */
function schedPriority(p: Process, addr: bigint): number {
  if (addr === 0n) throw new Errno(E.EINVAL);
  return p.userBuffer(addr, 4, PROT_READ).readInt32LE(0);
}

/**
 * sched_setscheduler / sched_setparam: the guest's user is unprivileged (RLIMIT_RTPRIO 0), so the
 * real-time policies are EPERM; the normal ones take priority 0 only (EINVAL otherwise), as on
 * Linux. The policy is kept; kvmbox's scheduling does not change.
 */
function setScheduler(q: Process, policy: number, priority: number): void {
  const normal = policy === SCHED_OTHER || policy === SCHED_BATCH || policy === SCHED_IDLE;
  if (!normal && policy !== SCHED_FIFO && policy !== SCHED_RR) throw new Errno(E.EINVAL);
  if (normal ? priority !== 0 : priority < 1 || priority > 99) throw new Errno(E.EINVAL);
  if (!normal) throw new Errno(E.EPERM);
  q.schedPolicy = policy;
}

/**
 * The processes getpriority and setpriority name (which, who), or ESRCH when none does. A nice
 * value is kept per process, inherited across fork and exec; it changes nothing in how kvmbox
 * schedules (threads run on vCPUs, processes take turns round robin).
 */
function niceTargets(p: Process, which: number, who: number): Process[] {
  const live = [...p.kernel.all()].filter((q) => !q.zombie);
  let found: Process[];
  switch (which) {
    case PRIO_PROCESS: found = who === 0 ? [p] : live.filter((q) => q.pid === who); break;
    case PRIO_PGRP: found = live.filter((q) => q.pgid === (who === 0 ? p.pgid : who)); break;
    case PRIO_USER: found = who === 0 || who === GUEST_UID ? live : []; break;
    default: throw new Errno(E.EINVAL);
  }
  if (found.length === 0) throw new Errno(E.ESRCH);
  return found;
}

/** sched_get_priority_max/min: 99 and 1 for the real-time policies, 0 for the others. */
function priorityRange(policy: number, realTime: number): number {
  switch (policy) {
    case SCHED_FIFO: case SCHED_RR: return realTime;
    case SCHED_OTHER: case SCHED_BATCH: case SCHED_IDLE: case SCHED_DEADLINE: return 0;
    default: throw new Errno(E.EINVAL);
  }
}

/** struct sched_attr: its first size (without the utilization clamps), and the one kvmbox writes. */
const SCHED_ATTR_SIZE_VER0 = 48, SCHED_ATTR_SIZE_VER1 = 56;
/** sched_attr.sched_flags Linux 6.1 knows (RESET_ON_FORK 1 ... UTIL_CLAMP_MAX 0x40). */
const SCHED_FLAGS_KNOWN = 0x7fn;

/** sched_getattr: the policy and the nice value, in as much of struct sched_attr as the caller has room for. */
function schedGetattr(p: Process, pid: number, addr: bigint, room: number, flags: number): number {
  if (flags !== 0 || pid < 0 || addr === 0n || room < SCHED_ATTR_SIZE_VER0 || room > 4096) throw new Errno(E.EINVAL);
  const q = schedTarget(p, pid);
  const n = Math.min(room, SCHED_ATTR_SIZE_VER1);
  const b = Buffer.alloc(n);
  b.writeUInt32LE(n, 0);
  b.writeUInt32LE(q.schedPolicy, 4);
  b.writeInt32LE(q.nice, 16);
  if (n >= SCHED_ATTR_SIZE_VER1) b.writeUInt32LE(1024, 52); // util_max: no clamp (SCHED_CAPACITY_SCALE)
  b.copy(p.userBuffer(addr, n, PROT_WRITE));
  return 0;
}

/** sched_setattr: a policy (as sched_setscheduler) and a nice value (as setpriority) at once. */
function schedSetattr(p: Process, pid: number, addr: bigint, flags: number): number {
  if (flags !== 0 || pid < 0 || addr === 0n) throw new Errno(E.EINVAL);
  const head = p.userBuffer(addr, 4, PROT_READ).readUInt32LE(0);
  const n = head === 0 ? SCHED_ATTR_SIZE_VER0 : head;
  if (n < SCHED_ATTR_SIZE_VER0 || n > 4096) {
    // Linux writes back the size it knows, for the caller to retry.
    p.userBuffer(addr, 4, PROT_WRITE).writeUInt32LE(SCHED_ATTR_SIZE_VER1);
    throw new Errno(E.E2BIG);
  }
  const b = Buffer.from(p.userBuffer(addr, Math.min(n, SCHED_ATTR_SIZE_VER1), PROT_READ));
  const policy = b.readUInt32LE(4), schedFlags = b.readBigUInt64LE(8), nice = b.readInt32LE(16), priority = b.readUInt32LE(20);
  if (schedFlags & ~SCHED_FLAGS_KNOWN) throw new Errno(E.EINVAL);
  const q = schedTarget(p, pid);
  if (policy === SCHED_DEADLINE) throw new Errno(E.EPERM);
  const normal = policy === SCHED_OTHER || policy === SCHED_BATCH || policy === SCHED_IDLE;
  const newNice = Math.max(-20, Math.min(19, nice));
  if (normal && newNice < q.nice) throw new Errno(E.EPERM);
  setScheduler(q, policy, priority);
  if (normal) q.nice = newNice;
  return 0;
}

const IOPRIO_CLASS_SHIFT = 13, IOPRIO_CLASS_NONE = 0, IOPRIO_CLASS_RT = 1, IOPRIO_CLASS_BE = 2, IOPRIO_CLASS_IDLE = 3;
const IOPRIO_NR_LEVELS = 8;

/**
 * ioprio_set's value checked as Linux 6.1 checks it: the real-time class needs a privilege the
 * guest's user lacks (EPERM); best-effort levels are 0-7; the none class has no level.
 */
function checkIoprio(ioprio: number): number {
  const cls = ioprio >>> IOPRIO_CLASS_SHIFT, data = ioprio & ((1 << IOPRIO_CLASS_SHIFT) - 1);
  switch (cls) {
    case IOPRIO_CLASS_RT: throw new Errno(E.EPERM);
    case IOPRIO_CLASS_BE: if (data >= IOPRIO_NR_LEVELS) throw new Errno(E.EINVAL); break;
    case IOPRIO_CLASS_IDLE: break;
    case IOPRIO_CLASS_NONE: if (data !== 0) throw new Errno(E.EINVAL); break;
    default: throw new Errno(E.EINVAL);
  }
  return ioprio;
}

export const procSyscalls: SyscallGroup = {
  // ioprio_get and ioprio_set name processes as getpriority does, with which one higher
  // (IOPRIO_WHO_PROCESS 1, PGRP 2, USER 3). The I/O priority is kept per process, inherited by
  // fork and kept by exec; it changes nothing (the host does the I/O). Several processes: the
  // best (lowest) value, an unset one (0) counting as best, as Linux's ioprio_best.
  ioprio_get: ({ process: p }, a) => Math.min(...niceTargets(p, int(a[0]) - 1, int(a[1])).map((q) => q.ioprio)),
  ioprio_set: ({ process: p }, a) => {
    const targets = niceTargets(p, int(a[0]) - 1, int(a[1]));
    const ioprio = checkIoprio(int(a[2]) & 0xffff);
    for (const q of targets) q.ioprio = ioprio;
    return 0;
  },
  // The raw call returns 20 - nice (1..40), which libc turns back into the nice value: the
  // highest priority (lowest nice) among the processes named.
  getpriority: ({ process: p }, a) => 20 - Math.min(...niceTargets(p, int(a[0]), int(a[1])).map((q) => q.nice)),
  setpriority: ({ process: p }, a) => {
    const targets = niceTargets(p, int(a[0]), int(a[1]));
    const nice = Math.max(-20, Math.min(19, int(a[2])));
    // The guest's user is unprivileged (RLIMIT_NICE 0): it may only lower its priority.
    if (targets.some((q) => nice < q.nice)) throw new Errno(E.EACCES);
    for (const q of targets) q.nice = nice;
    return 0;
  },
  // exit ends the calling thread; the process ends with its last (src/linux/kernel.ts).
  exit: (t, a) => { t.process.kernel.exitThread(t, int(a[0]) & 0xff); return 0; },
  exit_group: ({ process: p }, a) => { p.exit = { kind: 'exited', status: int(a[0]) & 0xff }; return 0; },
  getpid: (t) => t.process.pid,
  gettid: (t) => t.tid,
  getppid: (t) => t.process.ppid,
  getuid: () => GUEST_UID,
  geteuid: () => GUEST_UID,
  getgid: () => GUEST_GID,
  getegid: () => GUEST_GID,
  getgroups: () => 0,
  uname: ({ process: p }, a) => { utsname().copy(p.userBuffer(a[0], UTS_FIELD * 6, PROT_WRITE)); return 0; },
  arch_prctl: (t, a) => {
    const p = t.process;
    const code = int(a[0]);
    switch (code) {
      case ARCH_SET_FS: case ARCH_SET_GS: {
        if (a[1] >= CANONICAL_LIMIT) throw new Errno(E.EPERM);
        t.vcpu.setMsrs([[code === ARCH_SET_FS ? MSR_FS_BASE : MSR_GS_BASE, a[1]]]);
        if (code === ARCH_SET_FS) {
          t.fsBase = a[1];
          // Served from a saved context (the call ran after its tracer's entry stop): it returns there.
          if (t.saved) t.saved.fsBase = a[1];
        }
        return 0;
      }
      case ARCH_GET_FS: p.userBuffer(a[1], 8, PROT_WRITE).writeBigUInt64LE(t.fsBase); return 0;
      case ARCH_GET_GS: p.userBuffer(a[1], 8, PROT_WRITE).writeBigUInt64LE(0n); return 0;
      default: throw new Errno(E.EINVAL);
    }
  },
  set_tid_address: (t, a) => { t.clearChildTid = a[0]; return t.tid; },
  set_robust_list: (t, a) => {
    if (size(a[1]) !== ROBUST_LIST_HEAD_SIZE) throw new Errno(E.EINVAL);
    t.robustList = a[0];
    return 0;
  },
  get_robust_list: (t, a) => {
    const pid = int(a[0]);
    const target = pid === 0 ? t : t.process.kernel.findTask(pid);
    if (!target) throw new Errno(E.ESRCH);
    const head = p8(t, a[1]), len = p8(t, a[2]);
    len.writeBigUInt64LE(BigInt(ROBUST_LIST_HEAD_SIZE), 0);
    head.writeBigUInt64LE(target.robustList, 0);
    return 0;
  },
  rseq: () => { throw new Errno(E.ENOSYS); },
  prlimit64: ({ process: caller }, a) => {
    const pid = int(a[0]);
    if (pid < 0) throw new Errno(E.ESRCH); // prlimit64 has no EINVAL for it
    const p = schedTarget(caller, pid);
    const [cur, max] = p.rlimit(int(a[1]));
    // Both structs are the caller's. As Linux: the new limits are copied in first (the two may
    // overlap), and the old go out only once the new are set.
    const next = a[2] !== 0n ? Buffer.from(caller.userBuffer(a[2], 16, PROT_READ)) : null;
    if (next) p.setRlimit(int(a[1]), next.readBigUInt64LE(0), next.readBigUInt64LE(8));
    if (a[3] !== 0n) {
      const out = caller.userBuffer(a[3], 16, PROT_WRITE);
      out.writeBigUInt64LE(cur, 0);
      out.writeBigUInt64LE(max, 8);
    }
    return 0;
  },
  getrlimit: ({ process: p }, a) => {
    const [cur, max] = p.rlimit(int(a[0]));
    const out = p.userBuffer(a[1], 16, PROT_WRITE);
    out.writeBigUInt64LE(cur, 0);
    out.writeBigUInt64LE(max, 8);
    return 0;
  },
  setrlimit: ({ process: p }, a) => {
    const b = p.userBuffer(a[1], 16, PROT_READ);
    p.setRlimit(int(a[0]), b.readBigUInt64LE(0), b.readBigUInt64LE(8));
    return 0;
  },
  getrandom: ({ process: p }, a) => {
    if (int(a[2]) & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) throw new Errno(E.EINVAL);
    const n = Math.min(size(a[1]), 33554431);
    randomFillSync(p.userBuffer(a[0], n < 0 ? a[1] : n, PROT_WRITE));
    return n;
  },
  rt_sigaction: (t, a) => {
    const p = t.process;
    const sig = int(a[0]);
    if (size(a[3]) !== 8) throw new Errno(E.EINVAL);
    // The new action is copied in before the old one is written out, as Linux: they may overlap.
    const act = a[1] !== 0n ? Buffer.from(p.userBuffer(a[1], 32, PROT_READ)) : null;
    // SIGKILL's and SIGSTOP's actions can be read (SIG_DFL), never set.
    if (sig < 1 || sig > NSIG || (act && (sig === SIGKILL || sig === SIGSTOP))) throw new Errno(E.EINVAL);
    const old = p.sigactions.get(sig) ?? Buffer.alloc(32);
    if (a[2] !== 0n) old.copy(p.userBuffer(a[2], 32, PROT_WRITE));
    if (act) {
      p.sigactions.set(sig, act);
      // A pending signal whose new action ignores it is discarded, as on Linux.
      const h = act.readBigUInt64LE(0);
      if (h === SIG_IGN || (h === SIG_DFL && defaultAction(sig) === 'ignore')) {
        discardPending(t, sig);
      }
    }
    return 0;
  },
  rt_sigprocmask: (t, a) => {
    const p = t.process;
    if (size(a[3]) !== 8) throw new Errno(E.EINVAL);
    const how = int(a[0]);
    const set = a[1] !== 0n ? p.userBuffer(a[1], 8, PROT_READ).readBigUInt64LE(0) : null;
    if (set !== null && how !== SIG_BLOCK && how !== SIG_UNBLOCK && how !== SIG_SETMASK) throw new Errno(E.EINVAL);
    const old = t.sigmask;
    if (a[2] !== 0n) p.userBuffer(a[2], 8, PROT_WRITE).writeBigUInt64LE(old);
    if (set !== null) {
      const next = how === SIG_BLOCK ? old | set : how === SIG_UNBLOCK ? old & ~set : set;
      t.sigmask = next & ~UNBLOCKABLE;
    }
    return 0;
  },
  sched_yield: () => 0,
  sched_getscheduler: ({ process: p }, a) => schedTarget(p, int(a[0])).schedPolicy,
  sched_setscheduler: ({ process: p }, a) => {
    const q = schedTarget(p, int(a[0]));
    setScheduler(q, int(a[1]) & ~SCHED_RESET_ON_FORK, schedPriority(p, a[2]));
    return 0;
  },
  sched_getparam: ({ process: p }, a) => {
    schedTarget(p, int(a[0]));
    if (a[1] === 0n) throw new Errno(E.EINVAL);
    p.userBuffer(a[1], 4, PROT_WRITE).writeInt32LE(0);
    return 0;
  },
  sched_setparam: ({ process: p }, a) => {
    const q = schedTarget(p, int(a[0]));
    setScheduler(q, q.schedPolicy, schedPriority(p, a[1]));
    return 0;
  },
  sched_getattr: ({ process: p }, a) => schedGetattr(p, int(a[0]), a[1], int(a[2]), int(a[3])),
  sched_setattr: ({ process: p }, a) => schedSetattr(p, int(a[0]), a[1], int(a[2])),
  // personality: kept per process (PER_LINUX and its flags, as setarch sets them), inherited and
  // kept across execve; it changes nothing in how kvmbox runs a program. 0xffffffff asks.
  personality: ({ process: p }, a) => {
    const old = p.persona;
    const want = Number(BigInt.asUintN(32, a[0]));
    if (want !== 0xffffffff) p.persona = want;
    return old;
  },
  sched_get_priority_max: (_t, a) => priorityRange(int(a[0]), 99),
  sched_get_priority_min: (_t, a) => priorityRange(int(a[0]), 1),
  sched_rr_get_interval: ({ process: p }, a) => {
    schedTarget(p, int(a[0]));
    // The time slice of a process: kvmbox's own turns between processes are not a fixed slice,
    // so this is the one Linux gives SCHED_RR; the fair scheduler's varies with the load.
    const out = p.userBuffer(a[1], 16, PROT_WRITE);
    out.writeBigInt64LE(0n, 0);
    out.writeBigInt64LE(SLICE_NS, 8);
    return 0;
  },
  // A mask that names at least one of the sandbox's CPUs is accepted; threads stay where kvmbox
  // runs them (every vCPU may run any thread).
  sched_setaffinity: ({ process: p }, a) => {
    affinityTarget(p, int(a[0]));
    const n = size(a[1]);
    if (n === 0) throw new Errno(E.EINVAL);
    const mask = p.userBuffer(a[2], Math.min(n, 8), PROT_READ);
    const word = n >= 8 ? mask.readBigUInt64LE(0) : BigInt(mask.readUIntLE(0, n));
    if ((word & ((1n << BigInt(p.kernel.maxVcpus)) - 1n)) === 0n) throw new Errno(E.EINVAL);
    return 0;
  },
  // The CPUs a program sees are the vCPUs its threads may run on (MAX_VCPUS <= 64: one word).
  sched_getaffinity: ({ process: p }, a) => {
    const n = size(a[1]);
    if (n < 8 || n % 8) throw new Errno(E.EINVAL);
    affinityTarget(p, int(a[0]));
    const out = p.userBuffer(a[2], 8, PROT_WRITE);
    out.writeBigUInt64LE((1n << BigInt(p.kernel.maxVcpus)) - 1n);
    return 8;
  },
  getcpu: (t, a) => {
    const p = t.process;
    if (a[0] !== 0n) p.userBuffer(a[0], 4, PROT_WRITE).writeUInt32LE(p.kernel.cpuOf(t));
    if (a[1] !== 0n) p.userBuffer(a[1], 4, PROT_WRITE).writeUInt32LE(0);
    return 0;
  },
};
