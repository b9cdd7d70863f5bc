// System V IPC calls: msgget, msgsnd, msgrcv, msgctl; semget, semop, semtimedop, semctl. The
// objects and their rules are the sandbox's (src/linux/sysv-ipc.ts); these functions copy every
// argument from the guest once, check it in Linux's order, and write the results back with the
// x86-64 layouts (struct ipc64_perm, msqid64_ds, semid64_ds, msginfo, seminfo).
import { PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno } from '../../abi/linux.js';
import type { Task } from '../task.js';
import {
  checkOwner, MSG_COPY, MSG_EXCEPT, MSGMAX, MSGMNB, MSGMNI, IPC_NOWAIT, SEMMNI, SEMMNS, SEMMSL, SEMOPM, SEMVMX,
  type IpcPerm, type MsgQueue, type SemArray, type SemOp, type SysvIpc,
} from '../sysv-ipc.js';
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
    case IPC_STAT: case MSG_STAT: case MSG_STAT_ANY: {
      const out = p.userBuffer(addr, MSQID_DS_SIZE, PROT_WRITE);
      const q = ipc.queues.statTarget(t, id, cmd === IPC_STAT ? 'id' : cmd === MSG_STAT ? 'index' : 'index-any');
      msqidDs(q).copy(out);
      return cmd === IPC_STAT ? 0 : q.id;
    }
    case IPC_SET: {
      const raw = Buffer.from(p.userBuffer(addr, MSQID_DS_SIZE, PROT_READ));
      const q = ipc.queues.get(t, id, 0);
      checkOwner(q.perm);
      const qbytes = raw.readBigUInt64LE(88);
      // Above MSGMNB needs CAP_SYS_RESOURCE, which the guest's user lacks.
      if (qbytes > BigInt(MSGMNB)) throw new Errno(E.EPERM);
      setPerm(q.perm, raw);
      q.qbytes = Number(qbytes);
      q.ctime = Math.floor(Date.now() / 1000);
      return 0;
    }
    case IPC_RMID: {
      const q = ipc.queues.get(t, id, 0);
      checkOwner(q.perm);
      ipc.removeQueue(q);
      return 0;
    }
    default: throw new Errno(E.EINVAL);
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
    case IPC_STAT: case SEM_STAT: case SEM_STAT_ANY: {
      const out = p.userBuffer(arg, SEMID_DS_SIZE, PROT_WRITE);
      const a = ipc.arrays.statTarget(t, id, cmd === IPC_STAT ? 'id' : cmd === SEM_STAT ? 'index' : 'index-any');
      semidDs(a).copy(out);
      return cmd === IPC_STAT ? 0 : a.id;
    }
    case IPC_SET: {
      const raw = Buffer.from(p.userBuffer(arg, SEMID_DS_SIZE, PROT_READ));
      const a = ipc.arrays.get(t, id, 0);
      checkOwner(a.perm);
      setPerm(a.perm, raw);
      a.ctime = Math.floor(Date.now() / 1000);
      return 0;
    }
    case IPC_RMID: {
      const a = ipc.arrays.get(t, id, 0);
      checkOwner(a.perm);
      ipc.removeArray(a);
      return 0;
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
    default: throw new Errno(E.EINVAL);
  }
}

export const ipcSyscalls: SyscallGroup = {
  msgget: ({ process: p }, a) => p.kernel.ipc.msgget(int(a[0]), int(a[1])),
  msgsnd: (t, a) => msgsnd(t, t.process.kernel.ipc, int(a[0]), a[1], a[2], int(a[3])),
  msgrcv: (t, a) => msgrcv(t, t.process.kernel.ipc, int(a[0]), a[1], a[2], long(a[3]), int(a[4])),
  msgctl: (t, a) => msgctl(t, t.process.kernel.ipc, int(a[0]), int(a[1]), a[2]),
  semget: ({ process: p }, a) => p.kernel.ipc.semget(int(a[0]), int(a[1]), int(a[2])),
  semop: (t, a) => semop(t, t.process.kernel.ipc, int(a[0]), a[1], Number(BigInt.asUintN(32, a[2])), 0n),
  semtimedop: (t, a) => semop(t, t.process.kernel.ipc, int(a[0]), a[1], Number(BigInt.asUintN(32, a[2])), a[3]),
  semctl: (t, a) => semctl(t, t.process.kernel.ipc, int(a[0]), int(a[1]), int(a[2]), a[3]),
};
