// What all the processes of one sandbox share and are stopped by: the time limit and the
// output budget, its cancel hook and the host memory its pipes may take. The kernel
// (src/linux/kernel.ts) makes one per sandbox; each process holds it.
import { PipeBudget } from '../fs/open-file.js';

/**
 * Pipe contents live in host memory, outside the guest's: they may take 1/PIPE_BUDGET_SHARE of
 * the guest memory size (4 MiB for --memory 64), at least MIN_PIPE_BUDGET, so that the host's
 * memory for a sandbox stays its --memory plus a small fixed part (SECURITY.md).
 */
const PIPE_BUDGET_SHARE = 16;
const MIN_PIPE_BUDGET = 1 << 20;

/** Real-time signals queued on one task at most (its RLIMIT_SIGPENDING): host memory they may take. */
export const MAX_QUEUED_SIGNALS = 1024;

export class SandboxLimits {
  /** performance.now() at which the time is up; 0 when there is no time limit. */
  private deadline = 0;
  /** Bytes written to stdout and stderr so far. */
  outputBytes = 0;
  /** Entries in all the sandbox's epoll interest lists (src/linux/syscalls/epoll.ts). */
  epollWatches = 0;

  /** Host memory for the contents of the sandbox's pipes (see PIPE_BUDGET_SHARE). */
  readonly pipeBudget: PipeBudget;

  /** memoryBytes: the guest's memory size; cancelHook: asked on every timer tick and host-side wait. */
  constructor(readonly timeoutMs: number | undefined, readonly maxOutputBytes: number | undefined,
    memoryBytes: number, private readonly cancelHook?: () => boolean) {
    this.pipeBudget = new PipeBudget(Math.max(MIN_PIPE_BUDGET, Math.floor(memoryBytes / PIPE_BUDGET_SHARE)));
  }

  /** The clock starts when the program starts running. */
  start(): void {
    if (this.timeoutMs) this.deadline = performance.now() + this.timeoutMs;
  }

  /** Milliseconds until the time limit, or null when there is none. For calls that block. */
  timeLeftMs(): number | null {
    return this.deadline ? this.deadline - performance.now() : null;
  }

  timedOut(): boolean {
    return this.deadline !== 0 && performance.now() >= this.deadline;
  }

  /** Whether the run was cancelled from outside (ProcessOptions.cancelled). */
  cancelled(): boolean {
    return this.cancelHook?.() ?? false;
  }

  outputExceeded(): boolean {
    return this.maxOutputBytes !== undefined && this.outputBytes > this.maxOutputBytes;
  }
}
