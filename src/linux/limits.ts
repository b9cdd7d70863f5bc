// What all the processes of one sandbox share and are stopped by: the time limit and the
// output budget. The kernel (src/linux/kernel.ts) makes one per sandbox; each process holds it.
export class SandboxLimits {
  /** performance.now() at which the time is up; 0 when there is no time limit. */
  private deadline = 0;
  /** Bytes written to stdout and stderr so far. */
  outputBytes = 0;

  constructor(readonly timeoutMs: number | undefined, readonly maxOutputBytes: number | undefined) {}

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

  outputExceeded(): boolean {
    return this.maxOutputBytes !== undefined && this.outputBytes > this.maxOutputBytes;
  }
}
