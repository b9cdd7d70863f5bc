// ptrace: a process of the sandbox traces threads of others, as strace and gdb do. A traced
// task stops where Linux stops it: at system-call entry and exit once resumed with
// PTRACE_SYSCALL, before each signal is delivered, at the events its tracer asked for (exec,
// fork, vfork, clone), in a group stop, and at PTRACE_INTERRUPT. While stopped it waits off the
// vCPU with its saved context (Task.saved), which the tracer reads and changes; the tracer learns
// of the stop from wait4/waitid (Kernel.reap asks report()) and from SIGCHLD (CLD_TRAPPED).
//
// This module keeps Linux's rules (the state is in src/linux/tracing.ts). The kernel
// (src/linux/kernel.ts) takes the stops where they happen, and src/linux/syscalls/ptrace.ts
// serves the tracer's requests. The tracer is a process: any of its threads may wait for and
// command its tracees.
import { CLD_TRAPPED, E, Errno, PTRACE_EVENT, PTRACE_O, SIG } from '../abi/linux.js';
import { PAGE_SIZE } from '../machine/x86.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from './address-space.js';
import type { Process } from './process.js';
import type { SavedContext, Task } from './task.js';
import { action, bit, raise, SA_NOCLDSTOP, SI_USER } from './signals.js';
import { callReturned, stopSignal, Tracing, type TraceStop } from './tracing.js';

const SIGKILL_BIT = bit(SIG.SIGKILL);

/**
 * Stop traced task t in context ctx: it waits off the vCPU until its tracer resumes it (or
 * detaches, or SIGKILL comes), and the tracer is told.
 */
export function enterStop(t: Task, ctx: SavedContext, stop: TraceStop): void {
  const tr = t.trace!;
  t.saved = ctx;
  t.state = 'waiting';
  tr.stop = stop;
  if (stop.message !== null) tr.message = stop.message;
  t.wait = { why: { what: 'its tracer', ready: () => t.trace !== tr || tr.stop === null || (t.pending & SIGKILL_BIT) !== 0n }, call: null };
  notifyTracer(tr.tracer, t, stopSignal(stop));
}

/** SIGCHLD (CLD_TRAPPED) to the tracer, unless it asked for none on stops (SA_NOCLDSTOP). */
function notifyTracer(tracer: Process, t: Task, sig: number): void {
  const target = tracer.zombie ? undefined : tracer.signalTarget(SIG.SIGCHLD);
  if (!target || action(tracer, SIG.SIGCHLD).flags & SA_NOCLDSTOP) return;
  raise(target, SIG.SIGCHLD, { code: CLD_TRAPPED, pid: t.tid, status: sig });
}

/**
 * The process of traced t is ending by its call (exit, exit_group): under PTRACE_O_TRACEEXIT, t
 * stops first in ctx (PTRACE_EVENT_EXIT, with the wait status as its message), and the end waits
 * in Tracing.exiting until the tracer lets it go on. False when no stop is due.
 */
export function exitStop(t: Task, ctx: SavedContext): boolean {
  const tr = t.trace, end = t.process.exit;
  if (!tr || !end || end.kind !== 'exited' || !(tr.options & PTRACE_O.TRACEEXIT) || t.pending & SIGKILL_BIT) return false;
  tr.exiting = end;
  t.process.exit = null;
  enterStop(t, ctx, tr.eventStop(PTRACE_EVENT.EXIT, BigInt((end.status & 0xff) << 8)));
  return true;
}

/**
 * exit(2) of traced t, a thread of several: under PTRACE_O_TRACEEXIT its PTRACE_EVENT_EXIT stop
 * is due (the call returns into it) and the exit is held (Tracing.exiting) until the tracer lets
 * it go on. False when the thread is to end now.
 */
export function holdThreadExit(t: Task, status: number): boolean {
  const tr = t.trace;
  if (!tr || !(tr.options & PTRACE_O.TRACEEXIT) || tr.exitStopped || t.pending & SIGKILL_BIT) return false;
  tr.exitStopped = true;
  tr.exiting = { kind: 'thread', status };
  tr.due.push(tr.eventStop(PTRACE_EVENT.EXIT, BigInt((status & 0xff) << 8)));
  return true;
}

/**
 * Trace t from tracer (PTRACE_TRACEME, ATTACH, SEIZE, or a traced parent's fork). A task in a
 * group stop traps into a stop its tracer sees (Linux re-traps it the same way).
 */
export function attach(tracer: Process, t: Task, options: number, seized: boolean): Tracing {
  const tr = new Tracing(tracer, options, seized);
  t.trace = tr;
  tracer.tracees.add(t);
  const p = t.process;
  if (p.stopped && t.state === 'waiting' && t.saved && t.wait?.call === null) enterStop(t, t.saved, tr.groupStop(p.stopped));
  return tr;
}

const RFLAGS_TF = 0x100n;

/**
 * Resume t from its stop (PTRACE_CONT, SYSCALL, SINGLESTEP, DETACH): stopping at system calls or
 * not, after one instruction (step: the trap flag, whose #DB is a SIGTRAP) or not, with sig (0:
 * none). From a signal stop sig is delivered next in place of the stopped signal; from other
 * stops it is sent as a signal. A system call stopped at entry runs now, with the number and
 * arguments the tracer left (orig_rax -1 skips it: rax is its result).
 */
export function resume(t: Task, syscalls: boolean, sig: number, step = false): void {
  const tr = t.trace!;
  const stop = tr.stop!;
  tr.stop = null;
  tr.syscalls = syscalls;
  const regs = t.saved!.regs;
  if (step) regs.rflags |= RFLAGS_TF;
  else if (tr.stepping) regs.rflags &= ~RFLAGS_TF;
  tr.stepping = step;
  if (stop.restartRax !== null) regs.rax = stop.restartRax;
  if (stop.kind === 'entry') {
    if (BigInt.asIntN(64, stop.origRax) === -1n) callReturned(t, stop.origRax);
    else t.wait!.call = { nr: stop.origRax, args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] };
  }
  if (sig === 0) return;
  if (stop.kind === 'signal') tr.inject = { sig, info: sig === stopSignal(stop) && stop.info ? stop.info : { code: SI_USER, pid: tr.tracer.pid, addr: 0n, status: 0 } };
  else if (stop.kind !== 'group' && stop.kind !== 'event') raise(t, sig, { code: SI_USER, pid: tr.tracer.pid });
}

/** t is no longer traced (PTRACE_DETACH, its tracer's end, its own end). */
export function untrace(t: Task): void {
  const tr = t.trace;
  if (!tr) return;
  tr.tracer.tracees.delete(t);
  t.trace = null;
}

/**
 * t ended with wait status: its tracer learns it from wait too (a thread, or a process it is not
 * the parent of: the parent's zombie reports the rest), and t is no longer traced.
 */
export function tracedTaskEnded(t: Task, status: number): void {
  const tr = t.trace;
  if (!tr) return;
  const p = t.process;
  if (!(t === p.tasks[0] && p.parent === tr.tracer) && !tr.tracer.zombie) {
    tr.tracer.traceExits.push({ task: t, status });
    notifyTracer(tr.tracer, t, 0);
  }
  untrace(t);
}

/** The tracer ended: its tracees are let go, or killed under PTRACE_O_EXITKILL. */
export function tracerEnded(tracer: Process): void {
  for (const t of [...tracer.tracees]) {
    const tr = t.trace!;
    if (tr.options & PTRACE_O.EXITKILL) raise(t, SIG.SIGKILL, { code: SI_USER, pid: tracer.pid });
    if (tr.stop && tr.stop.kind !== 'group') resume(t, false, 0);
    untrace(t);
  }
  tracer.traceExits.length = 0;
}

/**
 * A fork, vfork or clone of traced t made child (its first task): it is traced too when the
 * tracer asked for that event, starting with a stop (PTRACE_EVENT_STOP when seized, else
 * SIGSTOP), and t's event stop is due with the child's id.
 */
export function traceClone(t: Task, child: Task, vfork: boolean, thread: boolean, exitSignal: number): void {
  const tr = t.trace;
  if (!tr) return;
  const event = vfork ? PTRACE_EVENT.VFORK : thread || exitSignal !== SIG.SIGCHLD ? PTRACE_EVENT.CLONE : PTRACE_EVENT.FORK;
  const option = event === PTRACE_EVENT.VFORK ? PTRACE_O.TRACEVFORK : event === PTRACE_EVENT.CLONE ? PTRACE_O.TRACECLONE : PTRACE_O.TRACEFORK;
  if (!(tr.options & option)) return;
  const ct = attach(tr.tracer, child, tr.options, tr.seized);
  if (tr.seized) ct.due.push(ct.eventStop(PTRACE_EVENT.STOP));
  else raise(child, SIG.SIGSTOP, { code: SI_USER });
  tr.due.push(tr.eventStop(event, BigInt(child.tid)));
}

/**
 * execve of traced t succeeded (formerTid: the thread that called it): PTRACE_EVENT_EXEC is due,
 * or, without PTRACE_O_TRACEEXEC and not seized, a SIGTRAP is sent as on Linux.
 */
export function traceExec(t: Task, formerTid: number): void {
  const tr = t.trace;
  if (!tr) return;
  if (tr.options & PTRACE_O.TRACEEXEC) tr.due.push(tr.eventStop(PTRACE_EVENT.EXEC, BigInt(formerTid)));
  else if (!tr.seized) raise(t, SIG.SIGTRAP, { code: SI_USER });
}

/** What wait reports of a tracee: its tid, wait status, SIGCHLD's si_code and si_status. */
export interface TraceReport { task: Task; status: number; code: number; value: number }

/**
 * A stop or an end of one of tracer's tracees that wait has not reported, among those match
 * accepts; taken unless peek (WNOWAIT). null when there is none.
 */
export function report(tracer: Process, match: (t: Task) => boolean, peek: boolean): TraceReport | null {
  for (const t of tracer.tracees) {
    const tr = t.trace!;
    // A tracee listening (PTRACE_LISTEN) in a group stop that SIGCONT ended traps again, into
    // PTRACE_EVENT_STOP with SIGTRAP: so the tracer learns that the stop is over.
    if (tr.stop?.listening && !t.process.stopped) tr.stop = tr.eventStop(PTRACE_EVENT.STOP);
    const s = tr.stop;
    if (!s || s.reported || !match(t)) continue;
    if (!peek) s.reported = true;
    return { task: t, status: s.status, code: CLD_TRAPPED, value: stopSignal(s) };
  }
  const i = tracer.traceExits.findIndex((e) => match(e.task));
  if (i < 0) return null;
  const e = tracer.traceExits[i]!;
  if (!peek) tracer.traceExits.splice(i, 1);
  const sig = e.status & 0x7f;
  return { task: e.task, status: e.status, code: sig === 0 ? 1 : 2, value: sig === 0 ? (e.status >> 8) & 0xff : sig };
}

/** Whether tracer has a tracee match accepts: wait then waits for it rather than fail with ECHILD. */
export function hasTracee(tracer: Process, match: (t: Task) => boolean): boolean {
  for (const t of tracer.tracees) if (match(t)) return true;
  return tracer.traceExits.some((e) => match(e.task));
}

/**
 * Whether p may reach q's memory at all: always where each process has its own address space in
 * guest memory; where processes take turns in one memory (kvm_pvm) only its own.
 */
export function reachable(p: Process, q: Process): boolean {
  return q.space === p.space || p.kernel.sharedMemory !== null;
}

/**
 * Bytes of q's memory at addr for p (PTRACE_PEEKDATA, /proc/PID/mem): up to len, as far as q's
 * readable pages go from addr. EIO when not one byte can be read.
 */
export function readMemoryOf(p: Process, q: Process, addr: bigint, len: number): Buffer {
  const out: Buffer[] = [];
  let done = 0;
  if (reachable(p, q)) {
    while (done < len) {
      const a = addr + BigInt(done);
      const n = Math.min(len - done, PAGE_SIZE - Number(a % BigInt(PAGE_SIZE)));
      if (a >= 1n << 53n || !q.space.paging.accessible(Number(a), n, PROT_READ)) break;
      out.push(Buffer.from(q.space.memory.slice(Number(a), n)));
      done += n;
    }
  }
  if (done === 0 && len > 0) throw new Errno(E.EIO);
  return Buffer.concat(out);
}

/**
 * Write data at addr of q's memory for p (PTRACE_POKEDATA, /proc/PID/mem), page by page as far
 * as it goes; the bytes written, EIO when none. As Linux's forced write, a page q may read or
 * run but not write (program text: a debugger's breakpoints) is written too if it is private:
 * it first becomes q's own (an image page is copied, so the cached image stays the file's
 * bytes). Shared memory and a MAP_SHARED file's copy are never written that way.
 */
export function writeMemoryOf(p: Process, q: Process, addr: bigint, data: Buffer): number {
  let done = 0;
  if (reachable(p, q)) {
    const { paging, memory } = q.space;
    while (done < data.length) {
      const big = addr + BigInt(done);
      if (big >= 1n << 53n) break;
      const a = Number(big);
      const n = Math.min(data.length - done, PAGE_SIZE - (a % PAGE_SIZE));
      if (!paging.accessible(a, n, PROT_WRITE)) {
        if (!paging.accessible(a, n, PROT_READ) && !paging.accessible(a, n, PROT_EXEC)) break;
        const shared = memory.sharedAt(a);
        if ((shared && !shared.copyOnWrite) || q.space.hasSharedFile(a, n)) break;
        // A page never writable may have no charge yet (it held zeros): it takes one now.
        if (!paging.chargeForWrite(a - (a % PAGE_SIZE), PAGE_SIZE)) break;
        memory.privatize(a - (a % PAGE_SIZE), PAGE_SIZE);
      }
      memory.write(a, data.subarray(done, done + n));
      done += n;
    }
  }
  if (done === 0 && data.length > 0) throw new Errno(E.EIO);
  return done;
}
