// System V IPC calls: msgget, msgsnd, msgrcv, msgctl; semget, semop, semtimedop, semctl; shmget,
// shmat, shmdt, shmctl. The objects and their rules are the sandbox's (src/linux/sysv-ipc.ts);
// these functions copy every argument from the guest once, check it in Linux's order, and write
// the results back with the x86-64 layouts (struct ipc64_perm, msqid64_ds, semid64_ds,
// shmid64_ds, msginfo, seminfo, shminfo64, shm_info). A segment is mapped as a MAP_SHARED
// mapping of its memfd (as /dev/shm files are: syscalls/mm.ts), where address spaces have
// memory of their own (the cpl0-entry path); on kvm_pvm shmget is ENOSYS.
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../address-space.js';
import { alignUp, PAGE_SIZE } from '../../machine/x86.js';
import { E, Errno } from '../../abi/linux.js';
import type { Task } from '../task.js';
import {
  checkOwner, MSG_COPY, MSG_EXCEPT, MSGMAX, MSGMNB, MSGMNI, IPC_NOWAIT, SEMMNI, SEMMNS, SEMMSL, SEMOPM, SEMVMX, SHMMIN, SHMMNI,
  type IpcObject, type IpcPerm, type IpcTable, type MsgQueue, type SemArray, type SemOp, type ShmSegment, type SysvIpc,
} from '../sysv-ipc.js';
import { clearFixed, inUserRange } from './mm.js';
import { int, long, type SyscallGroup } from './args.js';
import { timeoutFromTimespec } from './io.js';

/** msgctl and semctl commands (glibc adds IPC_64, 0x100, which changes nothing on x86-64). */
const IPC_RMID = 0, IPC_SET = 1, IPC_STAT = 2, IPC_INFO = 3, IPC_64 = 0x100;
const MSG_STAT = 11, MSG_INFO = 12, MSG_STAT_ANY = 13;
const GETPID = 11, GETVAL = 12, GETALL = 13, GETNCNT = 14, GETZCNT = 15, SETVAL = 16, SETALL = 17;
const SEM_STAT = 18, SEM_INFO = 19, SEM_STAT_ANY = 20;
const MSQID_DS_SIZE = 120, SEMID_DS_SIZE = 104, MSGINFO_SIZE = 32, SEMINFO_SIZE = 40;
const SEMBUF_SIZE = 6;

function writePerm(b: Buffer, perm: IpcPerm): void {
  b.writeInt32LE(perm.key, 0);
  b.writeUInt32LE(perm.uid, 4);
  b.writeUInt32LE(perm.gid, 8);
  b.writeUInt32LE(perm.cuid, 12);
  b.writeUInt32LE(perm.cgid, 16);
  b.writeUInt32LE(perm.mode, 20);
  b.writeUInt16LE(perm.seq, 24);
}

/** IPC_SET's new owner and mode (the low 9 bits), from a struct whose ipc64_perm comes first. */
function setPerm(perm: IpcPerm, raw: Buffer): void {
  const uid = raw.readUInt32LE(4), gid = raw.readUInt32LE(8);
  if (uid === 0xffffffff || gid === 0xffffffff) throw new Errno(E.EINVAL);
  perm.uid = uid;
  perm.gid = gid;
  perm.mode = (perm.mode & ~0o777) | (raw.readUInt32LE(20) & 0o777);
}

/** What the control calls of one kind of object share (commonCtl). */
interface CtlKind<T extends IpcObject> {
  table: IpcTable<T>;
  /** The size of its struct *id64_ds, and its by-index STAT commands. */
  dsSize: number;
  stat: number;
  statAny: number;
  encode: (o: T) => Buffer;
  /** IPC_SET beyond the owner and mode: checks the struct (throwing), and returns what to apply. */
  set?: (o: T, raw: Buffer) => () => void;
  remove: (o: T) => void;
}

/**
 * The commands msgctl, semctl and shmctl share: IPC_STAT (by id, read access) and the kind's
 * STAT (by index, read access) and STAT_ANY (by index), which return the id; IPC_SET and
 * IPC_RMID, for the owner or creator. null for any other command.
 */
function commonCtl<T extends IpcObject>(t: Task, id: number, cmd: number, addr: bigint, kind: CtlKind<T>): number | null {
  const p = t.process;
  if (cmd === IPC_STAT || cmd === kind.stat || cmd === kind.statAny) {
    const out = p.userBuffer(addr, kind.dsSize, PROT_WRITE);
    const o = kind.table.statTarget(t, id, cmd === IPC_STAT ? 'id' : cmd === kind.stat ? 'index' : 'index-any');
    kind.encode(o).copy(out);
    return cmd === IPC_STAT ? 0 : o.id;
  }
  if (cmd === IPC_SET) {
    const raw = Buffer.from(p.userBuffer(addr, kind.dsSize, PROT_READ));
    const o = kind.table.get(t, id, 0);
    checkOwner(o.perm);
    const apply = kind.set?.(o, raw);
    setPerm(o.perm, raw);
    apply?.();
    o.ctime = Math.floor(Date.now() / 1000);
    return 0;
  }
  if (cmd === IPC_RMID) {
    const o = kind.table.get(t, id, 0);
    checkOwner(o.perm);
    kind.remove(o);
    return 0;
  }
  return null;
}

function msgsnd(t: Task, ipc: SysvIpc, id: number, addr: bigint, sizeArg: bigint, flags: number): number {
  const p = t.process;
  const type = p.userBuffer(addr, 8, PROT_READ).readBigInt64LE(0);
  const n = long(sizeArg);
  if (n > BigInt(MSGMAX) || n < 0n || id < 0 || type < 1n) throw new Errno(E.EINVAL);
  const text = Buffer.from(p.userBuffer(addr + 8n, Number(n), PROT_READ));
  return ipc.msgsnd(t, id, type, text, flags);
}

function msgrcv(t: Task, ipc: SysvIpc, id: number, addr: bigint, sizeArg: bigint, type: bigint, flags: number): number {
  const n = long(sizeArg);
  if (id < 0 || n < 0n) throw new Errno(E.EINVAL);
  if (flags & MSG_COPY && (flags & MSG_EXCEPT || !(flags & IPC_NOWAIT))) throw new Errno(E.EINVAL);
  const max = Number(n > BigInt(MSGMAX) ? BigInt(MSGMAX) : n);
  const m = ipc.msgrcv(t, id, max, type, flags);
  const out = t.process.userBuffer(addr, 8 + m.text.length, PROT_WRITE);
  out.writeBigInt64LE(m.type, 0);
  m.text.copy(out, 8);
  return m.text.length;
}

function msqidDs(q: MsgQueue): Buffer {
  const b = Buffer.alloc(MSQID_DS_SIZE);
  writePerm(b, q.perm);
  b.writeBigInt64LE(BigInt(q.stime), 48);
  b.writeBigInt64LE(BigInt(q.rtime), 56);
  b.writeBigInt64LE(BigInt(q.ctime), 64);
  b.writeBigUInt64LE(BigInt(q.bytes), 72);
  b.writeBigUInt64LE(BigInt(q.messages.length), 80);
  b.writeBigUInt64LE(BigInt(q.qbytes), 88);
  b.writeInt32LE(q.lspid, 96);
  b.writeInt32LE(q.lrpid, 100);
  return b;
}

function msgctl(t: Task, ipc: SysvIpc, id: number, cmdArg: number, addr: bigint): number {
  const p = t.process;
  const cmd = cmdArg & ~IPC_64;
  if (id < 0 && cmd !== IPC_INFO && cmd !== MSG_INFO) throw new Errno(E.EINVAL);
  switch (cmd) {
    case IPC_INFO: case MSG_INFO: {
      const out = p.userBuffer(addr, MSGINFO_SIZE, PROT_WRITE);
      const { messages, bytes } = ipc.queueTotals();
      const info = cmd === MSG_INFO;
      // msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql, then msgseg (a short).
      [info ? ipc.queues.byId.size : (MSGMNI * MSGMNB) >> 10, info ? messages : MSGMNB, MSGMAX, MSGMNB, MSGMNI, 16, info ? bytes : MSGMNB]
        .forEach((v, i) => out.writeInt32LE(v, i * 4));
      out.writeUInt16LE(0xffff, 28);
      return Math.max(0, ipc.queues.maxIndex());
    }
    default: {
      const r = commonCtl(t, id, cmd, addr, {
        table: ipc.queues, dsSize: MSQID_DS_SIZE, stat: MSG_STAT, statAny: MSG_STAT_ANY, encode: msqidDs,
        set: (q, raw) => {
          const qbytes = raw.readBigUInt64LE(88);
          // Above MSGMNB needs CAP_SYS_RESOURCE, which the guest's user lacks.
          if (qbytes > BigInt(MSGMNB)) throw new Errno(E.EPERM);
          return () => { q.qbytes = Number(qbytes); };
        },
        remove: (q) => ipc.removeQueue(q),
      });
      if (r === null) throw new Errno(E.EINVAL);
      return r;
    }
  }
}

function semop(t: Task, ipc: SysvIpc, id: number, addr: bigint, nops: number, timeoutAddr: bigint): number {
  const p = t.process;
  if (nops < 1 || id < 0) throw new Errno(E.EINVAL);
  if (nops > SEMOPM) throw new Errno(E.E2BIG);
  const raw = Buffer.from(p.userBuffer(addr, nops * SEMBUF_SIZE, PROT_READ));
  const ops: SemOp[] = [];
  for (let i = 0; i < nops; i++) {
    ops.push({ num: raw.readUInt16LE(i * SEMBUF_SIZE), op: raw.readInt16LE(i * SEMBUF_SIZE + 2), flags: raw.readInt16LE(i * SEMBUF_SIZE + 4) });
  }
  const timeoutMs = timeoutFromTimespec(p, timeoutAddr, false);
  return ipc.semop(t, id, ops, timeoutMs);
}

function semidDs(a: SemArray): Buffer {
  const b = Buffer.alloc(SEMID_DS_SIZE);
  writePerm(b, a.perm);
  b.writeBigInt64LE(BigInt(a.otime), 48);
  b.writeBigInt64LE(BigInt(a.ctime), 64);
  b.writeBigUInt64LE(BigInt(a.nsems), 80);
  return b;
}

function semctl(t: Task, ipc: SysvIpc, id: number, num: number, cmdArg: number, arg: bigint): number {
  const p = t.process;
  const cmd = cmdArg & ~IPC_64;
  if (id < 0) throw new Errno(E.EINVAL);
  const one = (a: SemArray): number => {
    if (num < 0 || num >= a.nsems) throw new Errno(E.EINVAL);
    return num;
  };
  switch (cmd) {
    case IPC_INFO: case SEM_INFO: {
      const out = p.userBuffer(arg, SEMINFO_SIZE, PROT_WRITE);
      const { arrays, semaphores } = ipc.semTotals();
      const info = cmd === SEM_INFO;
      // semmap, semmni, semmns, semmnu, semmsl, semopm, semume, semusz, semvmx, semaem.
      [SEMMNS, SEMMNI, SEMMNS, SEMMNS, SEMMSL, SEMOPM, SEMOPM, info ? arrays : 20, SEMVMX, info ? semaphores : SEMVMX]
        .forEach((v, i) => out.writeInt32LE(v, i * 4));
      return Math.max(0, ipc.arrays.maxIndex());
    }
    case GETVAL: { const a = ipc.arrays.get(t, id, 4); return a.values[one(a)]!; }
    case GETPID: { const a = ipc.arrays.get(t, id, 4); return a.pids[one(a)]!; }
    case GETNCNT: case GETZCNT: { const a = ipc.arrays.get(t, id, 4); return ipc.waiters(a, one(a), cmd === GETZCNT); }
    case GETALL: {
      const a = ipc.arrays.get(t, id, 4);
      const out = p.userBuffer(arg, a.nsems * 2, PROT_WRITE);
      a.values.forEach((v, i) => out.writeUInt16LE(v, i * 2));
      return 0;
    }
    case SETVAL: {
      const a = ipc.arrays.get(t, id, 2);
      // union semun is passed by value: its int member is the low 32 bits.
      ipc.setValues(t, a, one(a), [int(arg)]);
      return 0;
    }
    case SETALL: {
      const a = ipc.arrays.get(t, id, 2);
      const raw = p.userBuffer(arg, a.nsems * 2, PROT_READ);
      const values: number[] = [];
      for (let i = 0; i < a.nsems; i++) values.push(raw.readUInt16LE(i * 2));
      ipc.setValues(t, a, 0, values);
      return 0;
    }
    default: {
      const r = commonCtl(t, id, cmd, arg, {
        table: ipc.arrays, dsSize: SEMID_DS_SIZE, stat: SEM_STAT, statAny: SEM_STAT_ANY, encode: semidDs, remove: (a) => ipc.removeArray(a),
      });
      if (r === null) throw new Errno(E.EINVAL);
      return r;
    }
  }
}

const SHM_RDONLY = 0o10000, SHM_RND = 0o20000, SHM_REMAP = 0o40000, SHM_EXEC = 0o100000;
const SHM_LOCK = 11, SHM_UNLOCK = 12, SHM_STAT = 13, SHM_INFO = 14, SHM_STAT_ANY = 15;
/** Mode bits shmctl reports: the segment is removed but still attached, or locked. */
const SHM_DEST = 0o1000, SHM_LOCKED = 0o2000;
const SHMID_DS_SIZE = 112, SHMINFO_SIZE = 72, SHM_INFO_SIZE = 48;

function shmget(t: Task, key: number, sizeArg: bigint, flags: number): number {
  const budget = t.process.kernel.sharedMemory;
  if (!budget) throw new Errno(E.ENOSYS);
  const n = sizeArg > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(sizeArg);
  return t.process.kernel.ipc.shmget(t, key, n, flags, budget);
}

/** shmat: map the segment (where asked, rounded with SHM_RND; over a mapping only with SHM_REMAP). */
function shmat(t: Task, ipc: SysvIpc, id: number, addrArg: bigint, flags: number): number {
  const p = t.process;
  if (id < 0) throw new Errno(E.EINVAL);
  let addr = addrArg > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(addrArg);
  if (addr % PAGE_SIZE !== 0) {
    if (!(flags & SHM_RND) || addr < 0) throw new Errno(E.EINVAL);
    addr -= addr % PAGE_SIZE;
  }
  if (addr === 0 && flags & SHM_REMAP) throw new Errno(E.EINVAL);
  ipc.purgeSegments();
  const s = ipc.segments.get(t, id, flags & SHM_RDONLY ? 4 : 6);
  const len = alignUp(s.size, PAGE_SIZE);
  const prot = PROT_READ | (flags & SHM_RDONLY ? 0 : PROT_WRITE) | (flags & SHM_EXEC ? PROT_EXEC : 0);
  let start: number;
  if (addr !== 0) {
    if (!inUserRange(p, addr, len)) throw new Errno(E.EINVAL);
    if (!p.space.isFree(addr, len) && !(flags & SHM_REMAP)) throw new Errno(E.EINVAL);
    clearFixed(p, addr, len);
    start = addr;
  } else {
    start = p.space.findFree(len);
    if (!start) throw new Errno(E.ENOMEM);
  }
  p.space.map(start, len, PROT_READ | PROT_WRITE);
  p.space.memory.share(start, len, s.backing, 0);
  p.space.nameRange(start, len, `/SYSV${(s.perm.key >>> 0).toString(16).padStart(8, '0')} (deleted)`, 0);
  if (prot !== (PROT_READ | PROT_WRITE)) p.space.map(start, len, prot);
  p.shmAttached.set(start, s);
  s.atime = Math.floor(Date.now() / 1000);
  s.lpid = p.pid;
  return start;
}

/** shmdt: unmap what is left of the attachment at addr (EINVAL when none starts there). */
function shmdt(t: Task, addrArg: bigint): number {
  const p = t.process;
  const addr = addrArg > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(addrArg);
  const s = addr >= 0 && addr % PAGE_SIZE === 0 ? p.shmAttached.get(addr) : undefined;
  if (!s || p.space.memory.sharedAt(addr)?.backing !== s.backing) throw new Errno(E.EINVAL);
  const end = addr + alignUp(s.size, PAGE_SIZE);
  const ranges = p.space.memory.shared.filter((r) => r.backing === s.backing && r.start < end && r.end > addr);
  for (const r of ranges) p.space.unmap(Math.max(r.start, addr), Math.min(r.end, end) - Math.max(r.start, addr));
  p.shmAttached.delete(addr);
  s.dtime = Math.floor(Date.now() / 1000);
  s.lpid = p.pid;
  p.kernel.ipc.purgeSegments();
  return 0;
}

function shmidDs(ipc: SysvIpc, s: ShmSegment): Buffer {
  const b = Buffer.alloc(SHMID_DS_SIZE);
  writePerm(b, { ...s.perm, mode: s.perm.mode | (s.removed ? SHM_DEST : 0) | (s.locked ? SHM_LOCKED : 0) });
  b.writeBigUInt64LE(BigInt(s.size), 48);
  b.writeBigInt64LE(BigInt(s.atime), 56);
  b.writeBigInt64LE(BigInt(s.dtime), 64);
  b.writeBigInt64LE(BigInt(s.ctime), 72);
  b.writeInt32LE(s.cpid, 80);
  b.writeInt32LE(s.lpid, 84);
  b.writeBigUInt64LE(BigInt(ipc.attachments(s)), 88);
  return b;
}

function shmctl(t: Task, ipc: SysvIpc, id: number, cmdArg: number, addr: bigint): number {
  const p = t.process;
  const cmd = cmdArg & ~IPC_64;
  ipc.purgeSegments(); // those whose last attachment went with an exec or a munmap
  if (id < 0 && cmd !== IPC_INFO && cmd !== SHM_INFO) throw new Errno(E.EINVAL);
  switch (cmd) {
    case IPC_INFO: {
      const out = p.userBuffer(addr, SHMINFO_SIZE, PROT_WRITE);
      const limit = BigInt(p.kernel.sharedMemory?.limit ?? 0);
      out.fill(0);
      // shmmax, shmmin, shmmni, shmseg, shmall (pages).
      [limit, BigInt(SHMMIN), BigInt(SHMMNI), BigInt(SHMMNI), limit / BigInt(PAGE_SIZE)].forEach((v, i) => out.writeBigUInt64LE(v, i * 8));
      return Math.max(0, ipc.segments.maxIndex());
    }
    case SHM_INFO: {
      const out = p.userBuffer(addr, SHM_INFO_SIZE, PROT_WRITE);
      out.fill(0);
      out.writeInt32LE(ipc.segments.byId.size, 0);
      const pages = BigInt(ipc.segmentPages());
      out.writeBigUInt64LE(pages, 8); // shm_tot
      out.writeBigUInt64LE(pages, 16); // shm_rss
      return Math.max(0, ipc.segments.maxIndex());
    }
    case SHM_LOCK: case SHM_UNLOCK: {
      // The owner may, within RLIMIT_MEMLOCK (guest memory is never swapped: nothing changes).
      const s = ipc.segments.get(t, id, 0);
      checkOwner(s.perm);
      s.locked = cmd === SHM_LOCK;
      return 0;
    }
    default: {
      const r = commonCtl(t, id, cmd, addr, {
        table: ipc.segments, dsSize: SHMID_DS_SIZE, stat: SHM_STAT, statAny: SHM_STAT_ANY,
        encode: (s) => shmidDs(ipc, s), remove: (s) => ipc.removeSegment(s),
      });
      if (r === null) throw new Errno(E.EINVAL);
      return r;
    }
  }
}

export const ipcSyscalls: SyscallGroup = {
  shmget: (t, a) => shmget(t, int(a[0]), a[1], int(a[2])),
  shmat: (t, a) => shmat(t, t.process.kernel.ipc, int(a[0]), a[1], int(a[2])),
  shmdt: (t, a) => shmdt(t, a[0]),
  shmctl: (t, a) => shmctl(t, t.process.kernel.ipc, int(a[0]), int(a[1]), a[2]),
  msgget: ({ process: p }, a) => p.kernel.ipc.msgget(int(a[0]), int(a[1])),
  msgsnd: (t, a) => msgsnd(t, t.process.kernel.ipc, int(a[0]), a[1], a[2], int(a[3])),
  msgrcv: (t, a) => msgrcv(t, t.process.kernel.ipc, int(a[0]), a[1], a[2], long(a[3]), int(a[4])),
  msgctl: (t, a) => msgctl(t, t.process.kernel.ipc, int(a[0]), int(a[1]), a[2]),
  semget: ({ process: p }, a) => p.kernel.ipc.semget(int(a[0]), int(a[1]), int(a[2])),
  semop: (t, a) => semop(t, t.process.kernel.ipc, int(a[0]), a[1], Number(BigInt.asUintN(32, a[2])), 0n),
  semtimedop: (t, a) => semop(t, t.process.kernel.ipc, int(a[0]), a[1], Number(BigInt.asUintN(32, a[2])), a[3]),
  semctl: (t, a) => semctl(t, t.process.kernel.ipc, int(a[0]), int(a[1]), int(a[2]), a[3]),
};
