// A Task is one thread of a guest process, as in a kernel: the vCPU it runs on and the state
// that is its own rather than its process's (the FS base, its id, its signal mask and pending
// signals, the address set_tid_address gave). Everything it shares with the other threads of
// its process (memory, files, signal actions...) is on t.process (src/linux/process.ts).
//
// kvmbox runs one thread of one process per VM so far: every Task runs on the machine's only
// vCPU. Threads on several vCPUs (issue 16) and fork (issue 15) build on this split.
import type { Vcpu } from '../kvm/kvm.js';
import type { Process } from './process.js';

export class Task {
  /** The FS base (ARCH_SET_FS): the thread pointer of the program's libc. */
  fsBase = 0n;
  /** Blocked signals (rt_sigprocmask), bit n-1 for signal n. */
  sigmask = 0n;
  /** Signals raised for this thread and not yet delivered (src/linux/signals.ts). */
  pending = 0n;
  /** The siginfo fields of each pending signal (standard signals do not queue: one each). */
  readonly pendingInfo = new Map<number, { code: number; pid: number; addr: bigint }>();
  /** The mask to restore after the handler when rt_sigsuspend replaced it (null: none). */
  savedMask: bigint | null = null;
  /** sigaltstack: base, size, and whether it is disabled. */
  altStack = { sp: 0n, size: 0n, disabled: true };
  /** set_tid_address: where to clear the tid and wake a futex when the thread exits. */
  clearChildTid = 0n;

  /** The registers live in the vCPU while the task runs there (one task per vCPU so far). */
  constructor(readonly process: Process, readonly tid: number, readonly vcpu: Vcpu) {}
}
