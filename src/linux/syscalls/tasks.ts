// prctl, identity changes and capabilities. (Processes and threads are syscalls/procs.ts.)
//
// The guest's identity is fixed (uid/gid 1000, GUEST_UID/GUEST_GID in abi/hypercalls.json). Like an unprivileged
// Linux process, it may "change" to the ids it already has, and nothing else (EPERM), and it has
// no capabilities: capget reports none, and capset may only keep it so.
import { bytesOf } from '../../abi/file-names.js';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno } from '../../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../../abi/abi.generated.js';
import { TASK_COMM_LEN, type Process } from '../process.js';
import { DEFAULT_TIMER_SLACK_NS, type Task } from '../task.js';
import { int, type SyscallGroup } from './args.js';
import { AVAILABLE_ACTIONS, BPF_MAXINSNS, checkFilter } from '../seccomp.js';

/** An id argument of set*id: -1 keeps the current one; anything else must be the guest's own. */
function sameId(v: bigint, own: number): void {
  const id = int(v);
  if (id !== -1 && id !== own) throw new Errno(E.EPERM);
}

function writeIds(p: Process, addrs: bigint[], id: number): number {
  for (const addr of addrs) p.userBuffer(addr, 4, PROT_WRITE).writeUInt32LE(id);
  return 0;
}

const PR_SET_PDEATHSIG = 1, PR_GET_PDEATHSIG = 2, PR_GET_DUMPABLE = 3, PR_SET_DUMPABLE = 4;
const PR_SET_NAME = 15, PR_GET_NAME = 16, PR_SET_CHILD_SUBREAPER = 36, PR_GET_CHILD_SUBREAPER = 37;
const PR_SET_TIMERSLACK = 29, PR_GET_TIMERSLACK = 30;
const PR_SET_NO_NEW_PRIVS = 38, PR_GET_NO_NEW_PRIVS = 39, PR_GET_SECCOMP = 21, PR_SET_SECCOMP = 22;
const SECCOMP_MODE_STRICT = 1, SECCOMP_MODE_FILTER = 2;
const SECCOMP_SET_MODE_STRICT = 0, SECCOMP_SET_MODE_FILTER = 1, SECCOMP_GET_ACTION_AVAIL = 2, SECCOMP_GET_NOTIF_SIZES = 3;
const SECCOMP_FILTER_FLAG_TSYNC = 1, SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;
/** TSYNC, LOG, SPEC_ALLOW, NEW_LISTENER, TSYNC_ESRCH, WAIT_KILLABLE_RECV. */
const SECCOMP_FILTER_FLAGS = 63;
/** struct seccomp_notif, seccomp_notif_resp and seccomp_data sizes (SECCOMP_GET_NOTIF_SIZES). */
const NOTIF_SIZES = [80, 24, 64];
/** Instructions all of a task's filters may hold, each counted with 4 more (MAX_INSNS_PER_PATH). */
const MAX_INSNS_PER_PATH = 32768;

/** Strict mode: only read, write, exit and rt_sigreturn from now on (once filters are set, EINVAL). */
function setStrict(t: Task): number {
  if (t.seccomp?.mode === SECCOMP_MODE_FILTER) throw new Errno(E.EINVAL);
  t.process.kernel.serveEveryCall(t);
  t.seccomp = { mode: SECCOMP_MODE_STRICT };
  return 0;
}

/**
 * One more filter (struct sock_fprog at addr), checked as Linux checks it and in its order: the
 * length, then no_new_privs (the guest never has CAP_SYS_ADMIN: EACCES without it), then the
 * instructions. TSYNC gives every thread of the process the caller's filters.
 */
function setFilter(t: Task, flags: number, addr: bigint): number {
  if (flags & ~SECCOMP_FILTER_FLAGS) throw new Errno(E.EINVAL);
  // A listener for SECCOMP_RET_USER_NOTIF is not made here.
  if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) throw new Errno(E.EINVAL);
  const p = t.process;
  const fprog = p.userBuffer(addr, 16, PROT_READ);
  const len = fprog.readUInt16LE(0), insns = fprog.readBigUInt64LE(8);
  if (len === 0 || len > BPF_MAXINSNS) throw new Errno(E.EINVAL);
  if (!t.noNewPrivs) throw new Errno(E.EACCES);
  const filter = checkFilter(Buffer.from(p.userBuffer(insns, len * 8, PROT_READ)));
  if (t.seccomp?.mode === SECCOMP_MODE_STRICT) throw new Errno(E.EINVAL);
  const filters = [...(t.seccomp?.mode === SECCOMP_MODE_FILTER ? t.seccomp.filters : []), filter];
  if (filters.reduce((n, f) => n + f.code.length + 4, 0) > MAX_INSNS_PER_PATH) throw new Errno(E.ENOMEM);
  const state = { mode: SECCOMP_MODE_FILTER, filters } as const;
  p.kernel.serveEveryCall(t);
  for (const u of flags & SECCOMP_FILTER_FLAG_TSYNC ? p.tasks.filter((o) => o.state !== 'dead') : [t]) {
    u.seccomp = state;
    u.noNewPrivs = true;
  }
  return 0;
}

function seccomp(t: Task, op: number, flags: number, args: bigint): number {
  switch (op) {
    case SECCOMP_SET_MODE_STRICT:
      if (flags !== 0 || args !== 0n) throw new Errno(E.EINVAL);
      return setStrict(t);
    case SECCOMP_SET_MODE_FILTER: return setFilter(t, flags, args);
    case SECCOMP_GET_ACTION_AVAIL: {
      if (flags !== 0) throw new Errno(E.EINVAL);
      const action = t.process.userBuffer(args, 4, PROT_READ).readUInt32LE(0);
      if (!AVAILABLE_ACTIONS.includes(action)) throw new Errno(E.EOPNOTSUPP);
      return 0;
    }
    case SECCOMP_GET_NOTIF_SIZES: {
      if (flags !== 0) throw new Errno(E.EINVAL);
      const out = t.process.userBuffer(args, 6, PROT_WRITE);
      NOTIF_SIZES.forEach((n, i) => out.writeUInt16LE(n, i * 2));
      return 0;
    }
    default: throw new Errno(E.EINVAL);
  }
}
const PR_GET_KEEPCAPS = 7, PR_SET_KEEPCAPS = 8, PR_CAPBSET_READ = 23, PR_CAPBSET_DROP = 24, PR_GET_SECUREBITS = 27;
const PR_CAP_AMBIENT = 47, PR_CAP_AMBIENT_IS_SET = 1, PR_CAP_AMBIENT_RAISE = 2, PR_CAP_AMBIENT_LOWER = 3, PR_CAP_AMBIENT_CLEAR_ALL = 4;
/** The highest capability number Linux knows (CAP_CHECKPOINT_RESTORE). */
const CAP_LAST_CAP = 40n;
function prctl(t: Task, a: bigint[]): number | bigint {
  const p = t.process;
  const arg2 = a[1]!;
  switch (int(a[0]!)) {
    // The capability sets of an unprivileged process: a full bounding set (which libcap-ng reads
    // to find the last capability), nothing ambient, no securebits; dropping from the bounding
    // set or raising an ambient capability needs a capability (EPERM).
    case PR_CAPBSET_READ:
      if (arg2 < 0n || arg2 > CAP_LAST_CAP) throw new Errno(E.EINVAL);
      return 1;
    case PR_CAPBSET_DROP:
      if (arg2 < 0n || arg2 > CAP_LAST_CAP) throw new Errno(E.EINVAL);
      throw new Errno(E.EPERM);
    case PR_CAP_AMBIENT:
      switch (int(arg2)) {
        case PR_CAP_AMBIENT_CLEAR_ALL: return 0;
        case PR_CAP_AMBIENT_IS_SET: case PR_CAP_AMBIENT_LOWER: case PR_CAP_AMBIENT_RAISE:
          if (a[2]! < 0n || a[2]! > CAP_LAST_CAP) throw new Errno(E.EINVAL);
          if (int(arg2) === PR_CAP_AMBIENT_RAISE) throw new Errno(E.EPERM);
          return 0;
        default: throw new Errno(E.EINVAL);
      }
    case PR_GET_KEEPCAPS: return 0;
    case PR_SET_KEEPCAPS:
      if (arg2 > 1n) throw new Errno(E.EINVAL);
      return 0;
    case PR_GET_SECUREBITS: return 0;
    case PR_SET_PDEATHSIG:
      if (arg2 < 0n || arg2 > 64n) throw new Errno(E.EINVAL);
      p.parentDeathSignal = Number(arg2);
      return 0;
    case PR_GET_PDEATHSIG: p.userBuffer(arg2, 4, PROT_WRITE).writeInt32LE(p.parentDeathSignal); return 0;
    case PR_SET_CHILD_SUBREAPER: p.childSubreaper = arg2 !== 0n; return 0;
    case PR_GET_CHILD_SUBREAPER: p.userBuffer(arg2, 4, PROT_WRITE).writeInt32LE(p.childSubreaper ? 1 : 0); return 0;
    case PR_GET_TIMERSLACK: return t.timerSlackNs;
    case PR_SET_TIMERSLACK:
      // 0 goes back to the default (arg2 is an unsigned long: nothing is below 0).
      t.timerSlackNs = arg2 === 0n ? DEFAULT_TIMER_SLACK_NS : BigInt.asUintN(64, arg2);
      return 0;
    case PR_GET_DUMPABLE: return 1;
    case PR_SET_DUMPABLE:
      if (arg2 > 1n) throw new Errno(E.EINVAL);
      return 0;
    case PR_SET_NAME: {
      t.setName(bytesOf(p.userString(arg2, 4096)));
      return 0;
    }
    case PR_GET_NAME: t.name().copy(p.userBuffer(arg2, TASK_COMM_LEN, PROT_WRITE)); return 0;
    case PR_SET_NO_NEW_PRIVS:
      if (arg2 !== 1n || a[2] !== 0n || a[3] !== 0n || a[4] !== 0n) throw new Errno(E.EINVAL);
      t.noNewPrivs = true;
      return 0;
    case PR_GET_NO_NEW_PRIVS:
      if (arg2 !== 0n || a[2] !== 0n || a[3] !== 0n || a[4] !== 0n) throw new Errno(E.EINVAL);
      return t.noNewPrivs ? 1 : 0;
    case PR_GET_SECCOMP: return t.seccomp?.mode ?? 0;
    case PR_SET_SECCOMP:
      if (arg2 === BigInt(SECCOMP_MODE_STRICT)) return setStrict(t);
      if (arg2 === BigInt(SECCOMP_MODE_FILTER)) return setFilter(t, 0, a[2]!);
      throw new Errno(E.EINVAL);
    default: throw new Errno(E.EINVAL);
  }
}

/** capget/capset header versions: the first takes one 32-bit set of each kind, the others two. */
const CAP_V1 = 0x19980330, CAP_V2 = 0x20071026, CAP_V3 = 0x20080522;
/** struct __user_cap_data_struct: effective, permitted, inheritable (32 bits each). */
const CAP_DATA_SIZE = 12;

/**
 * The header (version, pid) of capget/capset, copied once: how many data structs follow. An
 * unknown version is EINVAL, with the kernel's preferred one written back for the caller to
 * retry (libcap probes this way, with no data: then 0).
 */
function capHeader(p: Process, hdr: bigint, data: bigint): { count: number; pid: number } | null {
  const h = Buffer.from(p.userBuffer(hdr, 8, PROT_READ));
  const version = h.readUInt32LE(0);
  if (version !== CAP_V1 && version !== CAP_V2 && version !== CAP_V3) {
    p.userBuffer(hdr, 4, PROT_WRITE).writeUInt32LE(CAP_V3);
    if (data === 0n) return null;
    throw new Errno(E.EINVAL);
  }
  const pid = h.readInt32LE(4);
  if (pid < 0) throw new Errno(E.EINVAL);
  return { count: version === CAP_V1 ? 1 : 2, pid };
}

/** I/O ports a process may ask ioperm for (IO_BITMAP_BITS). */
const IO_BITMAP_BITS = 65536;

/**
 * Calls only a privileged process may make (mount, chroot, reboot, modules, swap, the kernel
 * log, namespaces, BPF, file handles...): EPERM, which Linux gives an unprivileged caller such
 * as the guest's user, before it looks at the arguments; perf_event_open EACCES, as under
 * Debian's perf_event_paranoid (3). userfaultfd and fanotify_init also refuse the uses an
 * unprivileged caller may have (user-mode faults only, FID reports).
 */
const privileged: SyscallGroup = Object.fromEntries([...['chroot', 'mount', 'umount2', 'pivot_root', 'swapon', 'swapoff', 'reboot',
  'sethostname', 'setdomainname', 'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'acct',
  'vhangup', 'syslog', 'bpf', 'fanotify_init', 'open_by_handle_at', 'setns', 'userfaultfd'].map((name) => [name, E.EPERM] as const),
['perf_event_open', E.EACCES] as const].map(([name, errno]) => [name, () => { throw new Errno(errno); }]));

export const taskSyscalls: SyscallGroup = {
  ...privileged,
  // Port I/O: asking for nothing more than a process has (level 0, turning ports off) succeeds.
  iopl: (_t, a) => {
    const level = Number(BigInt.asUintN(32, a[0]));
    if (level > 3) throw new Errno(E.EINVAL);
    if (level > 0) throw new Errno(E.EPERM);
    return 0;
  },
  ioperm: (_t, a) => {
    const from = BigInt.asUintN(64, a[0]), num = BigInt.asUintN(64, a[1]);
    if (from + num <= from || from + num > BigInt(IO_BITMAP_BITS)) throw new Errno(E.EINVAL);
    if (int(a[2]) !== 0) throw new Errno(E.EPERM);
    return 0;
  },
  capget: ({ process: p }, a) => {
    const h = capHeader(p, a[0], a[1]);
    if (!h) return 0;
    if (h.pid !== 0 && !p.kernel.findTask(h.pid)) throw new Errno(E.ESRCH);
    if (a[1] !== 0n) p.userBuffer(a[1], h.count * CAP_DATA_SIZE, PROT_WRITE).fill(0);
    return 0;
  },
  capset: ({ process: p }, a) => {
    const h = capHeader(p, a[0], a[1]);
    if (!h) return 0;
    if (h.pid !== 0 && h.pid !== p.pid) throw new Errno(E.EPERM);
    const sets = p.userBuffer(a[1], h.count * CAP_DATA_SIZE, PROT_READ);
    if (sets.some((b) => b !== 0)) throw new Errno(E.EPERM);
    return 0;
  },
  prctl: (t, a) => prctl(t, a),
  seccomp: (t, a) => seccomp(t, int(a[0]), int(a[1]), a[2]),
  setuid: (_t, a) => { sameId(a[0], GUEST_UID); return 0; },
  setgid: (_t, a) => { sameId(a[0], GUEST_GID); return 0; },
  setreuid: (_t, a) => { sameId(a[0], GUEST_UID); sameId(a[1], GUEST_UID); return 0; },
  setregid: (_t, a) => { sameId(a[0], GUEST_GID); sameId(a[1], GUEST_GID); return 0; },
  setresuid: (_t, a) => { for (const v of a.slice(0, 3)) sameId(v, GUEST_UID); return 0; },
  setresgid: (_t, a) => { for (const v of a.slice(0, 3)) sameId(v, GUEST_GID); return 0; },
  getresuid: ({ process: p }, a) => writeIds(p, a.slice(0, 3), GUEST_UID),
  getresgid: ({ process: p }, a) => writeIds(p, a.slice(0, 3), GUEST_GID),
  // setfsuid/setfsgid return the previous id and never fail.
  setfsuid: () => GUEST_UID,
  setfsgid: () => GUEST_GID,
  setgroups: (_t, a) => {
    if (int(a[0]) < 0) throw new Errno(E.EINVAL);
    throw new Errno(E.EPERM);
  },
};
