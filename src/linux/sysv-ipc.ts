// System V IPC of one sandbox: message queues, semaphore arrays and shared memory segments, in
// a namespace of the sandbox's own (as a fresh IPC namespace on Linux: ids from 0, keys private
// to it), kept on the host. Nothing here touches guest memory: src/linux/syscalls/ipc.ts copies
// the arguments in and the results out, and maps segments. The objects are bounded (MSGMNI
// queues of at most MSGMNB bytes each, SEMMNI arrays holding SEMMNS semaphores in all, SHMMNI
// segments whose memory is the sandbox's shared-memory budget), so a program cannot grow host
// memory with them. fakeroot (its faked daemon and the library it preloads) talks through them;
// ipcmk and ipcs make and list them.
//
// Waits (msgsnd on a full queue, msgrcv on an empty one, semop that cannot proceed) throw an
// IpcWait: the scheduler runs the call again once its test holds. An object removed meanwhile
// makes the waiters' calls fail with EIDRM, as on Linux; later calls with its id get EINVAL.
import { E, Errno } from '../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../abi/abi.generated.js';
import { WouldBlock } from '../fs/open-file.js';
import { SharedBacking, type SharedBudget } from '../kvm/shared-memory.js';
import { alignUp, PAGE_SIZE } from '../machine/x86.js';
import type { Process } from './process.js';
import type { Task } from './task.js';

export const IPC_PRIVATE = 0, IPC_CREAT = 0o1000, IPC_EXCL = 0o2000, IPC_NOWAIT = 0o4000;
/** Linux's per-message and per-queue limits (unchanged), and how many queues a sandbox may hold. */
export const MSGMAX = 8192, MSGMNB = 16384, MSGMNI = 256;
/** Semaphores: per array, in all, per semop call, the largest value; how many arrays a sandbox may hold. */
export const SEMMSL = 32000, SEMMNS = 32000, SEMOPM = 500, SEMVMX = 32767, SEMMNI = 256;
/** Shared memory segments: the smallest, and how many a sandbox may hold (their bytes: the shared budget). */
export const SHMMIN = 1, SHMMNI = 256;
/** Ids are index + sequence << 15, as Linux's (IPCMNI 32768): an id is not reused at once. */
const IPCMNI_SHIFT = 15, IPCMNI = 1 << IPCMNI_SHIFT;

const now = (): number => Math.floor(Date.now() / 1000);

/** struct ipc64_perm's fields. */
export interface IpcPerm {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
  seq: number;
}

/** What every object has: its id, permissions, change time, and whether it is gone. */
export abstract class IpcObject {
  removed = false;
  ctime = now();
  constructor(readonly id: number, readonly perm: IpcPerm) {}
}

export class MsgQueue extends IpcObject {
  readonly messages: Array<{ type: bigint; text: Buffer }> = [];
  bytes = 0;
  qbytes = MSGMNB;
  stime = 0;
  rtime = 0;
  lspid = 0;
  lrpid = 0;
}

export class SemArray extends IpcObject {
  readonly values: Int32Array;
  readonly pids: Int32Array;
  otime = 0;
  constructor(id: number, perm: IpcPerm, readonly nsems: number) {
    super(id, perm);
    this.values = new Int32Array(nsems);
    this.pids = new Int32Array(nsems);
  }
}

/** A shared memory segment: host memory of its own (a memfd), which shmat maps. */
export class ShmSegment extends IpcObject {
  atime = 0;
  dtime = 0;
  lpid = 0;
  locked = false;
  constructor(id: number, perm: IpcPerm, readonly size: number, readonly backing: SharedBacking, readonly cpid: number) {
    super(id, perm);
  }
}

/** A call waiting on an IPC object; what GETNCNT and GETZCNT count. */
export class IpcWait extends WouldBlock {
  constructor(what: string, ready: () => boolean, readonly object: IpcObject, readonly sem: { num: number; zero: boolean } | null,
    timeout?: { at: number; result: () => number }, onCancel?: () => void) {
    super(what, () => object.removed || ready(), timeout, onCancel);
  }
}

/** One kind of object (queues or arrays): keys, ids, and the EIDRM owed to waiters of removed ones. */
export class IpcTable<T extends IpcObject> {
  readonly byId = new Map<number, T>();
  private readonly byKey = new Map<number, T>();
  private lastIdx = -1;
  private seq = 0;
  /** Tasks that waited on an object when it was removed: their next call with its id is EIDRM. */
  private readonly owed = new Map<Task, number>();
  constructor(readonly max: number) {}

  /** The object with id, for a call of t that needs access (4 read, 2 write, 0 none). */
  get(t: Task, id: number, access: number): T {
    const o = id >= 0 ? this.byId.get(id) : undefined;
    if (!o) {
      if (this.owed.get(t) === id) {
        this.owed.delete(t);
        throw new Errno(E.EIDRM);
      }
      throw new Errno(E.EINVAL);
    }
    this.owed.delete(t);
    if (access && !permits(o.perm, access)) throw new Errno(E.EACCES);
    return o;
  }

  /**
   * msgget, semget, shmget: the object of key (IPC_PRIVATE: always a new one), made by make when
   * allowed. An existing one must grant every right any triad of flags' mode asks (ipcperms).
   */
  lookup(key: number, flags: number, existing: (o: T) => void, make: (id: number, perm: IpcPerm) => T): number {
    const found = key === IPC_PRIVATE ? undefined : this.byKey.get(key);
    if (found) {
      if (flags & IPC_CREAT && flags & IPC_EXCL) throw new Errno(E.EEXIST);
      const access = ((flags >> 6) | (flags >> 3) | flags) & 7;
      if (access && !permits(found.perm, access)) throw new Errno(E.EACCES);
      existing(found);
      return found.id;
    }
    if (key !== IPC_PRIVATE && !(flags & IPC_CREAT)) throw new Errno(E.ENOENT);
    if (this.byId.size >= this.max) throw new Errno(E.ENOSPC);
    // The next free index after the last one given (cyclic); the sequence moves on at a wrap.
    let idx = this.lastIdx + 1;
    const used = new Set([...this.byId.keys()].map((i) => i & (IPCMNI - 1)));
    for (let n = 0; n < IPCMNI && used.has(idx % IPCMNI); n++) idx++;
    idx %= IPCMNI;
    if (idx <= this.lastIdx) this.seq = (this.seq + 1) & 0xffff;
    this.lastIdx = idx;
    const id = (this.seq << IPCMNI_SHIFT) + idx;
    const perm: IpcPerm = { key, uid: GUEST_UID, gid: GUEST_GID, cuid: GUEST_UID, cgid: GUEST_GID, mode: flags & 0o777, seq: this.seq };
    const o = make(id, perm);
    this.byId.set(id, o);
    if (key !== IPC_PRIVATE) this.byKey.set(key, o);
    return id;
  }

  /** IPC_RMID: gone for new calls; the calls waiting on it fail with EIDRM. */
  remove(o: T, tasks: Iterable<Task>): void {
    o.removed = true;
    this.byId.delete(o.id);
    if (this.byKey.get(o.perm.key) === o) this.byKey.delete(o.perm.key);
    for (const t of tasks) if (t.wait?.why instanceof IpcWait && t.wait.why.object === o) this.owed.set(t, o.id);
  }

  /**
   * A shared memory segment's IPC_RMID: its key is free at once (it reads as IPC_PRIVATE), but
   * its id stays valid, for shmat too, until the last attachment goes (drop), as on Linux.
   */
  unname(o: T): void {
    o.removed = true;
    if (this.byKey.get(o.perm.key) === o) this.byKey.delete(o.perm.key);
    o.perm.key = IPC_PRIVATE;
  }

  drop(o: T): void {
    this.byId.delete(o.id);
  }

  /** A wait that ended otherwise (a signal, a timeout) owes nothing. */
  forget(t: Task): void {
    this.owed.delete(t);
  }

  /**
   * What a STAT command names: IPC_STAT an id (read access); MSG_STAT and SEM_STAT an index
   * (read access), MSG_STAT_ANY and SEM_STAT_ANY an index (none).
   */
  statTarget(t: Task, idOrIndex: number, how: 'id' | 'index' | 'index-any'): T {
    if (how === 'id') return this.get(t, idOrIndex, 4);
    let found: T | undefined;
    for (const o of this.byId.values()) if ((o.id & (IPCMNI - 1)) === idOrIndex) found = o;
    if (!found) throw new Errno(E.EINVAL);
    return how === 'index' ? this.get(t, found.id, 4) : found;
  }

  maxIndex(): number {
    let m = -1;
    for (const id of this.byId.keys()) m = Math.max(m, id & (IPCMNI - 1));
    return m;
  }
}

/** Linux's ipcperms for the guest's user: the owner's or creator's bits, else the group's, else the others'. */
function permits(perm: IpcPerm, access: number): boolean {
  const bits = perm.uid === GUEST_UID || perm.cuid === GUEST_UID ? perm.mode >> 6
    : perm.gid === GUEST_GID || perm.cgid === GUEST_GID ? perm.mode >> 3 : perm.mode;
  return (bits & access) === access;
}

/** IPC_SET and IPC_RMID are for the owner or creator (EPERM). */
export function checkOwner(perm: IpcPerm): void {
  if (perm.uid !== GUEST_UID && perm.cuid !== GUEST_UID) throw new Errno(E.EPERM);
}

/** One semaphore operation of a semop call (struct sembuf). */
export interface SemOp { num: number; op: number; flags: number }
export const SEM_UNDO = 0x1000;

export class SysvIpc {
  readonly queues = new IpcTable<MsgQueue>(MSGMNI);
  readonly arrays = new IpcTable<SemArray>(SEMMNI);
  readonly segments = new IpcTable<ShmSegment>(SHMMNI);
  /** Semaphores of every array together (SEMMNS). */
  private semCount = 0;
  /** SEM_UNDO adjustments by process (threads share them; a fork's child starts with none), applied when it ends. */
  private readonly undo = new Map<Process, Map<SemArray, Map<number, number>>>();

  /** processes: every process of the sandbox (zombies too). */
  constructor(private readonly processes: () => Iterable<Process>) {}

  /** Every task of the sandbox (dead ones too: callers look at what they wait for). */
  private *tasks(): Iterable<Task> {
    for (const q of this.processes()) yield* q.tasks;
  }

  msgget(key: number, flags: number): number {
    return this.queues.lookup(key, flags, () => {}, (id, perm) => new MsgQueue(id, perm));
  }

  /** msgsnd: append, or wait for room (EAGAIN with IPC_NOWAIT). */
  msgsnd(t: Task, id: number, type: bigint, text: Buffer, flags: number): number {
    const q = this.queues.get(t, id, 2);
    const fits = () => q.bytes + text.length <= q.qbytes && q.messages.length + 1 <= q.qbytes;
    if (!fits()) {
      if (flags & IPC_NOWAIT) throw new Errno(E.EAGAIN);
      throw new IpcWait('it sends to a full message queue', fits, q, null, undefined, () => this.queues.forget(t));
    }
    q.messages.push({ type, text: Buffer.from(text) });
    q.bytes += text.length;
    q.lspid = t.process.pid;
    q.stime = now();
    return 0;
  }

  /**
   * msgrcv: the first message of type (0: any; below 0: the lowest type up to -type; with
   * MSG_EXCEPT, the first of another type), or with MSG_COPY a copy of the one at index type.
   * Waits for one unless IPC_NOWAIT (ENOMSG). A longer message than max is E2BIG and stays,
   * unless MSG_NOERROR truncates it.
   */
  msgrcv(t: Task, id: number, max: number, type: bigint, flags: number): { type: bigint; text: Buffer } {
    const q = this.queues.get(t, id, 4);
    const pick = (): number => {
      if (flags & MSG_COPY) return type >= 0n && type < BigInt(q.messages.length) ? Number(type) : -1;
      if (type === 0n) return q.messages.length > 0 ? 0 : -1;
      if (type > 0n) return q.messages.findIndex((m) => (flags & MSG_EXCEPT ? m.type !== type : m.type === type));
      let best = -1;
      q.messages.forEach((m, i) => { if (m.type <= -type && (best < 0 || m.type < q.messages[best]!.type)) best = i; });
      return best;
    };
    const i = pick();
    if (i < 0) {
      if (flags & (IPC_NOWAIT | MSG_COPY)) throw new Errno(E.ENOMSG);
      throw new IpcWait('it receives from a message queue', () => pick() >= 0, q, null, undefined, () => this.queues.forget(t));
    }
    const m = q.messages[i]!;
    if (m.text.length > max && !(flags & MSG_NOERROR)) throw new Errno(E.E2BIG);
    if (flags & MSG_COPY) return { type: m.type, text: m.text.subarray(0, max) };
    q.messages.splice(i, 1);
    q.bytes -= m.text.length;
    q.lrpid = t.process.pid;
    q.rtime = now();
    return { type: m.type, text: m.text.subarray(0, max) };
  }

  removeQueue(q: MsgQueue): void {
    this.queues.remove(q, this.tasks());
  }

  /** Messages and bytes in every queue (MSG_INFO). */
  queueTotals(): { messages: number; bytes: number } {
    let messages = 0, bytes = 0;
    for (const q of this.queues.byId.values()) { messages += q.messages.length; bytes += q.bytes; }
    return { messages, bytes };
  }

  semget(key: number, nsems: number, flags: number): number {
    if (nsems < 0 || nsems > SEMMSL) throw new Errno(E.EINVAL);
    return this.arrays.lookup(key, flags, (a) => { if (nsems > a.nsems) throw new Errno(E.EINVAL); }, (id, perm) => {
      if (nsems === 0) throw new Errno(E.EINVAL);
      if (this.semCount + nsems > SEMMNS) throw new Errno(E.ENOSPC);
      this.semCount += nsems;
      return new SemArray(id, perm, nsems);
    });
  }

  /**
   * semop/semtimedop: every operation or none, in order. A call that cannot go on waits (for
   * the value it needs, or zero) unless the operation that blocks has IPC_NOWAIT (EAGAIN); a
   * result above SEMVMX is ERANGE. SEM_UNDO records the opposite for the process's end.
   */
  semop(t: Task, id: number, ops: readonly SemOp[], timeoutMs: number | null): number {
    const alters = ops.some((o) => o.op !== 0);
    const a = this.arrays.get(t, id, alters ? 2 : 4);
    if (ops.some((o) => o.num >= a.nsems)) throw new Errno(E.EFBIG);
    const p = t.process;
    const undo = this.undo.get(p)?.get(a);
    const attempt = (): { blocked: SemOp } | null => {
      const v = Int32Array.from(a.values);
      const adj = new Map<number, number>();
      for (const o of ops) {
        const r = v[o.num]! + o.op;
        if (o.op === 0 ? v[o.num] !== 0 : r < 0) return { blocked: o };
        if (r > SEMVMX) throw new Errno(E.ERANGE);
        if (o.flags & SEM_UNDO) {
          const u = (adj.get(o.num) ?? undo?.get(o.num) ?? 0) - o.op;
          if (u < -SEMVMX || u > SEMVMX) throw new Errno(E.ERANGE);
          adj.set(o.num, u);
        }
        v[o.num] = r;
      }
      a.values.set(v);
      for (const o of ops) a.pids[o.num] = p.pid;
      a.otime = now();
      if (adj.size > 0) {
        let perProcess = this.undo.get(p);
        if (!perProcess) this.undo.set(p, perProcess = new Map());
        let forArray = perProcess.get(a);
        if (!forArray) perProcess.set(a, forArray = new Map());
        for (const [n, u] of adj) forArray.set(n, u);
      }
      return null;
    };
    const r = attempt();
    if (!r) return 0;
    if (r.blocked.flags & IPC_NOWAIT) throw new Errno(E.EAGAIN);
    const ready = () => {
      const b = r.blocked;
      return b.op === 0 ? a.values[b.num] === 0 : a.values[b.num]! + b.op >= 0;
    };
    throw new IpcWait('it waits on a semaphore', ready, a, { num: r.blocked.num, zero: r.blocked.op === 0 },
      timeoutMs === null ? undefined : { at: performance.now() + timeoutMs, result: () => -E.EAGAIN }, () => this.arrays.forget(t));
  }

  /** SETVAL and SETALL: the new values, and every process's adjustment of them forgotten. */
  setValues(t: Task, a: SemArray, from: number, values: readonly number[]): void {
    if (values.some((v) => v < 0 || v > SEMVMX)) throw new Errno(E.ERANGE);
    values.forEach((v, i) => {
      a.values[from + i] = v;
      a.pids[from + i] = t.process.pid;
      for (const perProcess of this.undo.values()) perProcess.get(a)?.delete(from + i);
    });
    a.ctime = now();
  }

  /** Tasks waiting on semaphore num of a: for an increase (GETNCNT) or for zero (GETZCNT). */
  waiters(a: SemArray, num: number, zero: boolean): number {
    let n = 0;
    for (const t of this.tasks()) {
      const w = t.wait?.why;
      if (w instanceof IpcWait && w.object === a && w.sem?.num === num && w.sem.zero === zero) n++;
    }
    return n;
  }

  removeArray(a: SemArray): void {
    this.semCount -= a.nsems;
    for (const perProcess of this.undo.values()) perProcess.delete(a);
    this.arrays.remove(a, this.tasks());
  }

  /** Arrays and semaphores in use (SEM_INFO). */
  semTotals(): { arrays: number; semaphores: number } {
    return { arrays: this.arrays.byId.size, semaphores: this.semCount };
  }

  /**
   * shmget: a segment of size bytes (whole pages of the sandbox's shared-memory budget: ENOMEM
   * when it has no room), or the existing one of key (EINVAL when asked for more than it has).
   */
  shmget(t: Task, key: number, size: number, flags: number, budget: SharedBudget): number {
    return this.segments.lookup(key, flags, (s) => { if (size > s.size) throw new Errno(E.EINVAL); }, (id, perm) => {
      if (size < SHMMIN || size > budget.limit) throw new Errno(E.EINVAL);
      const backing = SharedBacking.create(alignUp(size, PAGE_SIZE), budget);
      if (!backing) throw new Errno(E.ENOMEM);
      return new ShmSegment(id, perm, size, backing, t.process.pid);
    });
  }

  /** IPC_RMID: the segment's key goes at once, the segment with its last attachment. */
  removeSegment(s: ShmSegment): void {
    this.segments.unname(s);
    this.purgeSegments();
  }

  /**
   * Attachments of s in every live process (shm_nattch). One counts while its address still
   * maps the segment's memory (a munmap or a MAP_FIXED mapping over it ends it, as on Linux);
   * those that do not are forgotten.
   */
  attachments(s: ShmSegment): number {
    let n = 0;
    for (const q of this.processes()) {
      if (q.zombie) continue;
      for (const [start, seg] of q.shmAttached) {
        if (q.space.memory.sharedAt(start)?.backing !== seg.backing) q.shmAttached.delete(start);
        else if (seg === s) n++;
      }
    }
    return n;
  }

  /** Removed segments that nothing attaches any more go, with their memory. */
  purgeSegments(): void {
    for (const s of [...this.segments.byId.values()]) {
      if (!s.removed || this.attachments(s) > 0) continue;
      this.segments.drop(s);
      s.backing.release();
    }
  }

  /** Pages of every segment (SHM_INFO's shm_tot). */
  segmentPages(): number {
    let n = 0;
    for (const s of this.segments.byId.values()) n += alignUp(s.size, PAGE_SIZE) / PAGE_SIZE;
    return n;
  }

  /** The end of the sandbox: the segments' memory goes. */
  close(): void {
    for (const s of [...this.segments.byId.values()]) {
      this.segments.drop(s);
      s.backing.release();
    }
  }

  /** A process ended: its SEM_UNDO adjustments are applied, each value kept within 0..SEMVMX. */
  processEnded(p: Process): void {
    if (p.shmAttached.size > 0) {
      p.shmAttached.clear();
      this.purgeSegments();
    }
    const perProcess = this.undo.get(p);
    if (!perProcess) return;
    this.undo.delete(p);
    for (const [a, adj] of perProcess) {
      if (a.removed) continue;
      for (const [n, u] of adj) {
        a.values[n] = Math.max(0, Math.min(SEMVMX, a.values[n]! + u));
        a.pids[n] = p.pid;
      }
      a.otime = now();
    }
  }
}

export const MSG_NOERROR = 0o10000, MSG_EXCEPT = 0o20000, MSG_COPY = 0o40000;
