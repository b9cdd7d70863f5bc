// Process identity, limits, signals bookkeeping, and the end of the program.
import { randomFillSync } from 'node:crypto';
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS, E, Errno } from '../../abi/linux.js';
import { GUEST_GID, GUEST_PID, GUEST_PPID, GUEST_UID, type Process } from '../process.js';
import { MSR_FS_BASE, MSR_GS_BASE } from '../../machine/x86.js';
import { int, size, type SyscallGroup } from './table.js';

const RLIMIT_STACK = 3, RLIMIT_NOFILE = 7, RLIMIT_AS = 9;
const RLIM_INFINITY = 0xffffffffffffffffn;
const NSIG = 64;
const SIGKILL = 9, SIGSTOP = 19;
const GRND_NONBLOCK = 1, GRND_RANDOM = 2, GRND_INSECURE = 4;
const UTS_FIELD = 65;
const CANONICAL_LIMIT = 0x800000000000n;

function utsname(): Buffer {
  const out = Buffer.alloc(UTS_FIELD * 6);
  ['Linux', 'kvmbox', '6.1.0-kvmbox', '#1 SMP kvmbox', 'x86_64', '(none)'].forEach((s, i) => out.write(s, i * UTS_FIELD));
  return out;
}

export function rlimit(p: Process, resource: number): [bigint, bigint] {
  switch (resource) {
    case RLIMIT_STACK: return [BigInt(p.space.stackTop - p.space.stackLimit), BigInt(p.space.stackTop - p.space.stackLimit)];
    case RLIMIT_NOFILE: return [BigInt(p.fds.limit), BigInt(p.fds.limit)];
    case RLIMIT_AS: return [BigInt(p.space.memory.size), BigInt(p.space.memory.size)];
    default:
      if (resource < 0 || resource > 15) throw new Errno(E.EINVAL);
      return [RLIM_INFINITY, RLIM_INFINITY];
  }
}

/** Signal dispositions the program set; faults are delivered by the host (see Process.fault). */
const sigactions = new WeakMap<Process, Map<number, Buffer>>();

/** The handler the program set for sig (sa_handler: 0 is SIG_DFL, 1 SIG_IGN). */
export function signalHandler(p: Process, sig: number): bigint {
  return sigactions.get(p)?.get(sig)?.readBigUInt64LE(0) ?? 0n;
}

export const procSyscalls: SyscallGroup = {
  exit: (p, a) => { p.exit = { kind: 'exited', status: int(a[0]) & 0xff }; return 0; },
  exit_group: (p, a) => { p.exit = { kind: 'exited', status: int(a[0]) & 0xff }; return 0; },
  getpid: () => GUEST_PID,
  gettid: () => GUEST_PID,
  getppid: () => GUEST_PPID,
  getuid: () => GUEST_UID,
  geteuid: () => GUEST_UID,
  getgid: () => GUEST_GID,
  getegid: () => GUEST_GID,
  getpgrp: () => GUEST_PID,
  getpgid: () => GUEST_PID,
  getsid: () => GUEST_PID,
  setpgid: () => 0,
  getgroups: () => 0,
  uname: (p, a) => { utsname().copy(p.userBuffer(a[0], UTS_FIELD * 6, PROT_WRITE)); return 0; },
  arch_prctl: (p, a) => {
    const code = int(a[0]);
    switch (code) {
      case ARCH_SET_FS: case ARCH_SET_GS: {
        if (a[1] >= CANONICAL_LIMIT) throw new Errno(E.EPERM);
        p.machine.vcpu.setMsrs([[code === ARCH_SET_FS ? MSR_FS_BASE : MSR_GS_BASE, a[1]]]);
        if (code === ARCH_SET_FS) p.fsBase = a[1];
        return 0;
      }
      case ARCH_GET_FS: p.userBuffer(a[1], 8, PROT_WRITE).writeBigUInt64LE(p.fsBase); return 0;
      case ARCH_GET_GS: p.userBuffer(a[1], 8, PROT_WRITE).writeBigUInt64LE(0n); return 0;
      default: throw new Errno(E.EINVAL);
    }
  },
  set_tid_address: () => GUEST_PID,
  set_robust_list: () => 0,
  rseq: () => { throw new Errno(E.ENOSYS); },
  prlimit64: (p, a) => {
    if (int(a[0]) !== 0 && int(a[0]) !== GUEST_PID) throw new Errno(E.ESRCH);
    const [cur, max] = rlimit(p, int(a[1]));
    if (a[3] !== 0n) {
      const out = p.userBuffer(a[3], 16, PROT_WRITE);
      out.writeBigUInt64LE(cur, 0);
      out.writeBigUInt64LE(max, 8);
    }
    if (a[2] !== 0n) p.userBuffer(a[2], 16, PROT_READ); // new limits are accepted but not raised
    return 0;
  },
  getrlimit: (p, a) => {
    const [cur, max] = rlimit(p, int(a[0]));
    const out = p.userBuffer(a[1], 16, PROT_WRITE);
    out.writeBigUInt64LE(cur, 0);
    out.writeBigUInt64LE(max, 8);
    return 0;
  },
  setrlimit: (p, a) => { p.userBuffer(a[1], 16, PROT_READ); return 0; },
  getrandom: (p, a) => {
    if (int(a[2]) & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) throw new Errno(E.EINVAL);
    const n = Math.min(size(a[1]), 33554431);
    randomFillSync(p.userBuffer(a[0], n < 0 ? a[1] : n, PROT_WRITE));
    return n;
  },
  rt_sigaction: (p, a) => {
    const sig = int(a[0]);
    if (sig < 1 || sig > NSIG || sig === SIGKILL || sig === SIGSTOP) throw new Errno(E.EINVAL);
    if (size(a[3]) !== 8) throw new Errno(E.EINVAL);
    let table = sigactions.get(p);
    if (!table) sigactions.set(p, (table = new Map()));
    const old = table.get(sig) ?? Buffer.alloc(32);
    if (a[2] !== 0n) old.copy(p.userBuffer(a[2], 32, PROT_WRITE));
    if (a[1] !== 0n) table.set(sig, Buffer.from(p.userBuffer(a[1], 32, PROT_READ)));
    return 0;
  },
  rt_sigprocmask: (p, a) => {
    if (size(a[3]) !== 8) throw new Errno(E.EINVAL);
    if (a[1] !== 0n) p.userBuffer(a[1], 8, PROT_READ);
    if (a[2] !== 0n) p.userBuffer(a[2], 8, PROT_WRITE).writeBigUInt64LE(0n);
    return 0;
  },
  sigaltstack: (p, a) => {
    if (a[0] !== 0n) p.userBuffer(a[0], 24, PROT_READ);
    if (a[1] !== 0n) {
      const out = p.userBuffer(a[1], 24, PROT_WRITE);
      out.fill(0);
      out.writeInt32LE(2, 8); // SS_DISABLE
    }
    return 0;
  },
  sched_yield: () => 0,
  sched_getaffinity: (p, a) => {
    const n = size(a[1]);
    if (n < 8 || n % 8) throw new Errno(E.EINVAL);
    const out = p.userBuffer(a[2], 8, PROT_WRITE);
    out.writeBigUInt64LE(1n);
    return 8;
  },
  getcpu: (p, a) => {
    if (a[0] !== 0n) p.userBuffer(a[0], 4, PROT_WRITE).writeUInt32LE(0);
    if (a[1] !== 0n) p.userBuffer(a[1], 4, PROT_WRITE).writeUInt32LE(0);
    return 0;
  },
};
