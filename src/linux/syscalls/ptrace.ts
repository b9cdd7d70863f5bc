// ptrace(2): the tracer's requests. src/linux/ptrace.ts keeps the tracees' state and the kernel
// takes their stops; this file checks and serves what a tracer asks. Every value from the guest
// is checked here:
// - the tracee must be a live thread of the sandbox that the caller's process traces, and in a
//   stop for every request that reads or changes it (ESRCH otherwise, as Linux);
// - registers the tracer sets stay within what user mode may hold (addresses in the user half,
//   the user segments, no GS base): the context is loaded as any saved user context is;
// - memory is reached through the tracee's own mappings (readMemoryOf and writeMemoryOf in
//   src/linux/ptrace.ts, which /proc/PID/mem shares).
import { E, Errno, PTRACE, PTRACE_EVENT, PTRACE_O, SIG } from '../../abi/linux.js';
import type { Registers } from '../../kvm/kvm.js';
import { PROT_WRITE } from '../address-space.js';
import type { Process } from '../process.js';
import type { Task } from '../task.js';
import { attach, readMemoryOf, resume, untrace, writeMemoryOf } from '../ptrace.js';
import { stopEvent, stopSignal, type TraceStop, type Tracing } from '../tracing.js';
import { bit, raise, siginfo, SI_USER, waitForContinue } from '../signals.js';
import { int, size, type SyscallGroup } from './args.js';

/** struct user_regs_struct (x86-64), in order. */
const USER_REGS = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs'] as const;
type UserReg = (typeof USER_REGS)[number];
const USER_REGS_SIZE = USER_REGS.length * 8;
/** struct user's size and where its debug registers start (PEEKUSER/POKEUSER offsets). */
const SIZEOF_USER = 912, U_DEBUGREG = 848;
const FXSAVE_SIZE = 512;
const USER_CS = 0x33n, USER_SS = 0x2bn;
/** The end of the user half (Linux's TASK_SIZE_MAX): registers holding addresses stay below it. */
const TASK_SIZE_MAX = 0x7ffffffff000n;
const NT_PRSTATUS = 1, NT_PRFPREG = 2;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const SYSCALL_INFO_NONE = 0, SYSCALL_INFO_ENTRY = 1, SYSCALL_INFO_EXIT = 2;
const KNOWN_OPTIONS = Object.values(PTRACE_O).reduce((a, b) => a | b, 0);
const MAX_ERRNO = 4095n;

/** A tracee of p by thread id: traced by p (ESRCH otherwise), and, if stopped, in a stop p may act on. */
function traceeOf(p: Process, tid: number, stopped: boolean): { t: Task; tr: Tracing; stop: TraceStop } {
  const t = p.kernel.findTask(tid);
  const tr = t?.trace;
  if (!t || !tr || tr.tracer !== p) throw new Errno(E.ESRCH);
  const stop = tr.stop;
  if (stopped && (!stop || stop.listening || !t.saved)) throw new Errno(E.ESRCH);
  return { t, tr, stop: stop! };
}

function readReg(t: Task, stop: TraceStop, name: UserReg): bigint {
  const ctx = t.saved!;
  switch (name) {
    case 'orig_rax': return BigInt.asUintN(64, stop.origRax);
    case 'eflags': return ctx.regs.rflags;
    case 'cs': return USER_CS;
    case 'ss': return USER_SS;
    case 'fs_base': return ctx.fsBase;
    case 'gs_base': case 'ds': case 'es': case 'fs': case 'gs': return 0n;
    default: return BigInt.asUintN(64, ctx.regs[name]);
  }
}

/** The registers as struct user_regs_struct. */
function userRegs(t: Task, stop: TraceStop): Buffer {
  const b = Buffer.alloc(USER_REGS_SIZE);
  USER_REGS.forEach((name, i) => b.writeBigUInt64LE(readReg(t, stop, name), i * 8));
  return b;
}

/**
 * Set one register of the stopped tracee, checked as Linux's putreg checks it (EIO): addresses
 * that user mode would load (rip, rsp, the FS base) in the user half, the segment registers at
 * their only user values. Checked first for all registers by setUserRegs, so none changes on EIO.
 */
function checkReg(name: UserReg, v: bigint): void {
  const bad = (() => {
    switch (name) {
      case 'rip': case 'rsp': case 'fs_base': return v >= TASK_SIZE_MAX;
      case 'cs': return v !== USER_CS;
      case 'ss': return v !== USER_SS;
      case 'gs_base': case 'ds': case 'es': case 'fs': case 'gs': return v !== 0n;
      default: return false;
    }
  })();
  if (bad) throw new Errno(E.EIO);
}

function writeReg(t: Task, stop: TraceStop, name: UserReg, v: bigint): void {
  const ctx = t.saved!;
  switch (name) {
    case 'orig_rax': stop.origRax = BigInt.asIntN(64, v); return;
    case 'eflags': ctx.regs.rflags = v; return;
    case 'fs_base': ctx.fsBase = v; return;
    case 'cs': case 'ss': case 'gs_base': case 'ds': case 'es': case 'fs': case 'gs': return;
    default: ctx.regs[name as keyof Registers] = v;
  }
}

function setUserRegs(t: Task, stop: TraceStop, b: Buffer): void {
  const values = USER_REGS.map((name, i) => [name, b.readBigUInt64LE(i * 8)] as const);
  for (const [name, v] of values) checkReg(name, v);
  for (const [name, v] of values) writeReg(t, stop, name, v);
}

/** The siginfo PTRACE_GETSIGINFO gives: the stopped signal's, or SIGTRAP's for a system-call or event stop. */
function stopSiginfo(stop: TraceStop): Buffer {
  if (stop.kind === 'signal') return siginfo(stopSignal(stop), stop.info!);
  if (stop.kind === 'group') throw new Errno(E.EINVAL);
  const code = stop.kind === 'event' ? SIG.SIGTRAP | (stopEvent(stop) << 8) : stopSignal(stop);
  return siginfo(SIG.SIGTRAP, { code, pid: 0, addr: 0n, status: 0 });
}

/** struct ptrace_syscall_info for the stop; its full size is what the call returns. */
function syscallInfo(t: Task, stop: TraceStop): Buffer {
  const r = t.saved!.regs;
  const op = stop.kind === 'entry' ? SYSCALL_INFO_ENTRY : stop.kind === 'exit' ? SYSCALL_INFO_EXIT : SYSCALL_INFO_NONE;
  const b = Buffer.alloc(op === SYSCALL_INFO_ENTRY ? 80 : op === SYSCALL_INFO_EXIT ? 33 : 24);
  b.writeUInt8(op, 0);
  b.writeUInt32LE(AUDIT_ARCH_X86_64, 4);
  b.writeBigUInt64LE(BigInt.asUintN(64, r.rip), 8);
  b.writeBigUInt64LE(BigInt.asUintN(64, r.rsp), 16);
  if (op === SYSCALL_INFO_ENTRY) {
    b.writeBigUInt64LE(BigInt.asUintN(64, stop.origRax), 24);
    [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9].forEach((v, i) => b.writeBigUInt64LE(BigInt.asUintN(64, v), 32 + i * 8));
  } else if (op === SYSCALL_INFO_EXIT) {
    const rval = BigInt.asIntN(64, r.rax);
    b.writeBigInt64LE(rval, 24);
    b.writeUInt8(rval < 0n && rval >= -MAX_ERRNO ? 1 : 0, 32);
  }
  return b;
}

/** The signal a restart request passes (data): 0 for none, EIO past the last. */
function restartSignal(data: bigint): number {
  if (data > 64n) throw new Errno(E.EIO);
  return Number(data);
}

/** PTRACE_TRACEME, ATTACH and SEIZE: the caller's process becomes the tracer of t. */
function startTracing(p: Process, t: Task, options: number, seized: boolean): number {
  if (t.trace) throw new Errno(E.EPERM);
  attach(p, t, options, seized);
  // On kvm_pvm the user-mode stub answers some calls itself: a tracee's must all reach the host.
  p.kernel.serveEveryCall(t);
  return 0;
}

function ptrace(caller: Task, a: bigint[]): number {
  const p = caller.process;
  const req = Number(BigInt.asIntN(64, a[0]!));
  const pid = int(a[1]!);
  const addr = a[2]!, data = a[3]!;
  switch (req) {
    case PTRACE.TRACEME: {
      const parent = p.parent;
      // The first process's parent is outside the sandbox: nothing in it can trace.
      if (!parent || parent.zombie) throw new Errno(E.EPERM);
      return startTracing(parent, caller, 0, false);
    }
    case PTRACE.ATTACH: case PTRACE.SEIZE: {
      const t = p.kernel.findTask(pid);
      if (!t) throw new Errno(E.ESRCH);
      if (t.process === p) throw new Errno(E.EPERM);
      const seize = req === PTRACE.SEIZE;
      if (seize && addr !== 0n) throw new Errno(E.EIO);
      const options = seize ? Number(BigInt.asUintN(64, data) & 0xffffffffn) : 0;
      if (seize && (BigInt.asUintN(64, data) > 0xffffffffn || options & ~KNOWN_OPTIONS)) throw new Errno(E.EINVAL);
      startTracing(p, t, options, seize);
      if (!seize) raise(t, SIG.SIGSTOP, { code: SI_USER, pid: p.pid });
      return 0;
    }
    case PTRACE.KILL: {
      const { t } = traceeOf(p, pid, false);
      raise(t, SIG.SIGKILL, { code: SI_USER, pid: p.pid });
      return 0;
    }
    case PTRACE.INTERRUPT: {
      const { tr } = traceeOf(p, pid, false);
      if (!tr.seized) throw new Errno(E.EIO);
      if (!tr.stop) tr.interrupt = true;
      return 0;
    }
  }
  const { t, tr, stop } = traceeOf(p, pid, true);
  switch (req) {
    case PTRACE.CONT: case PTRACE.SYSCALL: case PTRACE.SINGLESTEP:
      resume(t, req === PTRACE.SYSCALL, restartSignal(data), req === PTRACE.SINGLESTEP);
      return 0;
    case PTRACE.DETACH: {
      resume(t, false, restartSignal(data));
      untrace(t);
      // Let go in a group stop, it stays stopped with its process until SIGCONT.
      if (stop.kind === 'group' && t.process.stopped) waitForContinue(t);
      return 0;
    }
    case PTRACE.LISTEN: {
      if (!tr.seized || !(stop.kind === 'group' || (stop.kind === 'event' && stopEvent(stop) === PTRACE_EVENT.STOP))) throw new Errno(E.EIO);
      // It traps again when SIGCONT ends the group stop (at once if that happened already: see report).
      stop.listening = true;
      return 0;
    }
    case PTRACE.PEEKTEXT: case PTRACE.PEEKDATA: {
      const word = readMemoryOf(p, t.process, addr, 8);
      if (word.length < 8) throw new Errno(E.EIO);
      word.copy(p.userBuffer(data, 8, PROT_WRITE));
      return 0;
    }
    case PTRACE.POKETEXT: case PTRACE.POKEDATA: {
      const word = Buffer.alloc(8);
      word.writeBigUInt64LE(BigInt.asUintN(64, data));
      if (writeMemoryOf(p, t.process, addr, word) < 8) throw new Errno(E.EIO);
      return 0;
    }
    case PTRACE.PEEKUSER: {
      if (addr % 8n !== 0n || addr >= BigInt(SIZEOF_USER)) throw new Errno(E.EIO);
      const i = Number(addr) / 8;
      const v = i < USER_REGS.length ? readReg(t, stop, USER_REGS[i]!) : 0n;
      p.userBuffer(data, 8, PROT_WRITE).writeBigUInt64LE(v);
      return 0;
    }
    case PTRACE.POKEUSER: {
      if (addr % 8n !== 0n || addr >= BigInt(SIZEOF_USER)) throw new Errno(E.EIO);
      const i = Number(addr) / 8;
      const v = BigInt.asUintN(64, data);
      if (i < USER_REGS.length) {
        checkReg(USER_REGS[i]!, v);
        writeReg(t, stop, USER_REGS[i]!, v);
      } else if (addr < BigInt(U_DEBUGREG) || v !== 0n) {
        // No debug registers: clearing one is all that works.
        throw new Errno(E.EIO);
      }
      return 0;
    }
    case PTRACE.GETREGS:
      userRegs(t, stop).copy(p.userBuffer(data, USER_REGS_SIZE, PROT_WRITE));
      return 0;
    case PTRACE.SETREGS:
      setUserRegs(t, stop, Buffer.from(p.userBuffer(data, USER_REGS_SIZE)));
      return 0;
    case PTRACE.GETFPREGS:
      t.saved!.fpu.copy(p.userBuffer(data, FXSAVE_SIZE, PROT_WRITE), 0, 0, FXSAVE_SIZE);
      return 0;
    case PTRACE.GETREGSET: case PTRACE.SETREGSET: {
      const iov = p.userBuffer(data, 16, PROT_WRITE);
      const base = iov.readBigUInt64LE(0), len = size(iov.readBigUInt64LE(8));
      const type = Number(addr);
      if (req === PTRACE.SETREGSET) {
        if (addr !== BigInt(NT_PRSTATUS) || len !== USER_REGS_SIZE) throw new Errno(E.EINVAL);
        setUserRegs(t, stop, Buffer.from(p.userBuffer(base, len)));
        return 0;
      }
      const regs = addr === BigInt(NT_PRSTATUS) ? userRegs(t, stop) : type === NT_PRFPREG ? t.saved!.fpu.subarray(0, FXSAVE_SIZE) : null;
      if (!regs || len < 0) throw new Errno(E.EINVAL);
      const n = Math.min(len, regs.length);
      regs.copy(p.userBuffer(base, n, PROT_WRITE), 0, 0, n);
      iov.writeBigUInt64LE(BigInt(n), 8);
      return 0;
    }
    case PTRACE.GETSIGINFO:
      stopSiginfo(stop).copy(p.userBuffer(data, 128, PROT_WRITE));
      return 0;
    case PTRACE.SETSIGINFO: {
      const raw = Buffer.from(p.userBuffer(data, 128));
      if (stop.kind === 'group') throw new Errno(E.EINVAL);
      if (stop.kind === 'signal') stop.info = { code: raw.readInt32LE(8), pid: raw.readInt32LE(16), addr: 0n, status: 0, raw };
      return 0;
    }
    case PTRACE.SETOPTIONS: {
      const options = BigInt.asUintN(64, data);
      if (options > 0xffffffffn || Number(options) & ~KNOWN_OPTIONS) throw new Errno(E.EINVAL);
      tr.options = Number(options);
      return 0;
    }
    case PTRACE.GETEVENTMSG:
      p.userBuffer(data, 8, PROT_WRITE).writeBigUInt64LE(tr.message);
      return 0;
    case PTRACE.GETSIGMASK: case PTRACE.SETSIGMASK: {
      if (addr !== 8n) throw new Errno(E.EINVAL);
      if (req === PTRACE.GETSIGMASK) {
        p.userBuffer(data, 8, PROT_WRITE).writeBigUInt64LE(t.sigmask);
      } else {
        t.sigmask = p.userBuffer(data, 8).readBigUInt64LE(0) & ~(bit(SIG.SIGKILL) | bit(SIG.SIGSTOP));
      }
      return 0;
    }
    case PTRACE.GET_SYSCALL_INFO: {
      const info = syscallInfo(t, stop);
      const n = Math.min(size(addr) < 0 ? info.length : size(addr), info.length);
      if (n > 0) info.copy(p.userBuffer(data, n, PROT_WRITE), 0, 0, n);
      return info.length;
    }
    default:
      // SETFPREGS, the hardware-breakpoint and the rest: not offered.
      throw new Errno(E.EIO);
  }
}

export const ptraceSyscalls: SyscallGroup = {
  ptrace: (t, a) => ptrace(t, a),
};
