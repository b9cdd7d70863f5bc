// spawn(): a running sandbox as a handle in the manner of node:child_process's ChildProcess:
// stdin/stdout/stderr streams, 'spawn', 'exit' and 'close' events, kill(), and a promise of the
// RunResult. The program runs on one of the engine's workers (src/api/engine.ts).
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { SIG, SIGNAL_NAMES } from '../abi/linux.js';
import { abortError, type RunOptions, type RunResult } from './run.js';
import { abortedResult, finishQueued, Job, jobMessage, submit } from './engine.js';
import { CANCEL_ABORT, CANCEL_KILL, CTL, CTL_BYTES, RING_BYTES } from './protocol.js';

export interface SpawnOptions extends Omit<RunOptions, 'stdin' | 'stdout' | 'stderr'> {
  /** 'pipe' (default): write to `sandbox.stdin`; or as in RunOptions (then `sandbox.stdin` is null). */
  stdin?: RunOptions['stdin'] | 'pipe';
  /** 'pipe' (default): read `sandbox.stdout`/`stderr`; or as in RunOptions (then that stream is null;
   * 'capture' puts the output in the RunResult). */
  stdout?: RunOptions['stdout'] | 'pipe';
  stderr?: RunOptions['stderr'] | 'pipe';
}

let nextId = 1;

/**
 * A running sandbox. Events: 'spawn' (the program is loaded and starts), 'exit' (code, signal):
 * code is the exit status, or null when a signal ended it, with the signal's name ('SIGKILL' for
 * an aborted run); 'close' after 'exit', once stdout and stderr have ended; 'error' (only when
 * someone listens: a failure to start, or an abort; `result` rejects with the same error).
 *
 * Output backpressure: chunks the consumer of stdout/stderr has not taken count against 1 MiB
 * per sandbox; beyond it the guest is held on its next write until the reader catches up.
 * stdin goes through a 64 KiB shared ring; `stdin.write` waits while the ring is full.
 */
export class Sandbox extends EventEmitter {
  readonly id = nextId++;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves with the RunResult when the program ends (also after kill()); rejects as run() does. */
  readonly result: Promise<RunResult>;
  /** Exit status once ended (null before, and after an abort or a signal). */
  exitCode: number | null = null;
  signalCode: string | null = null;
  killed = false;
  private readonly job: Job;
  private ended = false;
  /** Bytes handed to a stream that refused more; given back to the guest when the stream reads. */
  private held: [number, number] = [0, 0];

  constructor(program: string, args: readonly string[], options: SpawnOptions) {
    super();
    const stdinMode = options.stdin ?? 'pipe';
    const outMode = options.stdout ?? 'pipe';
    const errMode = options.stderr ?? 'pipe';
    const readable = (i: 0 | 1): Readable => new Readable({
      read: () => {
        const n = this.held[i];
        this.held[i] = 0;
        if (n > 0) this.job.release(n);
      },
    });
    this.stdout = outMode === 'pipe' ? readable(0) : null;
    this.stderr = errMode === 'pipe' ? readable(1) : null;
    this.stdin = stdinMode === 'pipe' ? new Writable({
      write: (chunk: Buffer, _enc, cb) => { void this.writeRing(chunk).then(() => cb(), cb); },
      final: (cb) => { this.endRing(); cb(); },
      destroy: (err, cb) => { this.endRing(); cb(err); },
    }) : null;
    const signal = options.signal;
    const call = (m: SpawnOptions['stdout']) => (typeof m === 'function' ? m : null);
    const out = call(options.stdout), err = call(options.stderr);
    const onAbort = (): void => {
      if (!finishQueued(this.job, abortedResult())) this.job.cancel(CANCEL_ABORT);
    };
    let resolve!: (r: RunResult) => void, reject!: (e: Error) => void;
    this.result = new Promise<RunResult>((res, rej) => { resolve = res; reject = rej; });
    this.result.catch(() => {}); // a rejection nobody awaits is not an unhandled one
    const streams: (Readable | null)[] = [this.stdout, this.stderr];
    this.job = new Job(jobMessage(program, args, { ...options, stdin: stdinMode, stdout: outMode, stderr: errMode }, true), {
      onStart: () => this.emit('spawn'),
      onOutput: (fd, chunk) => {
        const s = streams[fd - 1];
        if (s) {
          if (s.push(chunk)) this.job.release(chunk.length);
          else this.held[fd - 1] += chunk.length;
          return;
        }
        try {
          (fd === 1 ? out : err)?.(chunk);
        } finally {
          this.job.release(chunk.length);
        }
      },
      onTrace: (line) => options.trace?.(line),
      onDone: (r) => {
        signal?.removeEventListener('abort', onAbort);
        this.end(r.reason.kind === 'aborted' ? null : r.reason.kind === 'exited' ? r.exitStatus : null,
          r.reason.kind === 'aborted' ? 'SIGKILL' : r.signal !== undefined ? SIGNAL_NAMES[r.signal] ?? `SIG${r.signal}` : null);
        if (r.reason.kind === 'aborted') this.fail(abortError(signal), reject);
        else resolve(r);
      },
      onError: (e) => {
        signal?.removeEventListener('abort', onAbort);
        this.end(null, null, false);
        this.fail(e, reject);
      },
    });
    if (signal?.aborted) {
      queueMicrotask(() => onAbort());
    } else {
      signal?.addEventListener('abort', onAbort, { once: true });
    }
    submit(this.job);
  }

  /** Whether the program is still running (or waiting for a worker). */
  get running(): boolean {
    return !this.ended;
  }

  /**
   * End the program as if `signal` killed it (default SIGTERM): `result` resolves with reason
   * 'signaled' and exit status 128+N. The guest stops at its next timer tick or host wait
   * (within ~50 ms). Returns false when the program had already ended.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.ended) return false;
    const n = typeof signal === 'number' ? signal : (SIG as Record<string, number>)[signal] ?? SIG.SIGTERM;
    this.killed = true;
    const name = SIGNAL_NAMES[n] ?? `SIG${n}`;
    if (!finishQueued(this.job, {
      exitStatus: 128 + n, signal: n, reason: { kind: 'signaled', signal: n, message: `kvmbox: program killed by ${name} (kill())` },
      stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), syscalls: 0,
    })) this.job.cancel(CANCEL_KILL, n);
    return true;
  }

  /**
   * Send `signal` to the program inside, as kill(2) from outside the sandbox would: the program
   * may catch, block or ignore it, and by default it acts as on Linux (SIGTERM ends the program
   * with status 143, SIGSTOP stops it until SIGCONT). `to`: 'process' (default) is the first
   * process; 'foreground' is the foreground process group of its terminal, where a terminal's
   * Ctrl-C goes (the first process's group, until a shell in the sandbox moves it). Signals 1 to
   * 31; the guest sees it at its next timer tick or host wait. Returns false when the program
   * had already ended. kill(), by contrast, ends the run whatever the program does.
   */
  sendSignal(signal: NodeJS.Signals | number, to: 'process' | 'foreground' = 'process'): boolean {
    const n = typeof signal === 'number' ? signal : ((osConstants.signals as Record<string, number>)[signal] ?? 0);
    if (!Number.isInteger(n) || n < 1 || n > 31) throw new RangeError(`sendSignal: no signal ${String(signal)} (1 to 31, or a name such as 'SIGINT')`);
    if (to !== 'process' && to !== 'foreground') throw new RangeError(`sendSignal: to must be 'process' or 'foreground', not ${String(to)}`);
    if (this.ended) return false;
    Atomics.or(this.job.ctl, to === 'process' ? CTL.sigProcess : CTL.sigForeground, 1 << n);
    return true;
  }

  /** Kill the program if it runs and wait until its VM and files are released. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill('SIGKILL');
    await this.result.catch(() => {});
  }

  /** Kill the program if it runs; the worker releases its VM and files within one timer tick. */
  [Symbol.dispose](): void {
    this.kill('SIGKILL');
  }

  private end(code: number | null, signal: string | null, emitExit = true): void {
    if (this.ended) return;
    this.ended = true;
    this.exitCode = code;
    this.signalCode = signal;
    this.endRing();
    this.stdout?.push(null);
    this.stderr?.push(null);
    if (emitExit) this.emit('exit', code, signal);
    const waits = [this.stdout, this.stderr].filter((s): s is Readable => s !== null && !s.readableEnded && !s.destroyed)
      .map((s) => new Promise<void>((res) => { s.once('end', res); s.once('close', res); }));
    void Promise.all(waits).then(() => this.emit('close', code, signal));
    // As node:child_process does on exit: a stream nobody ever read from is drained, so that it
    // ends and 'close' comes; one being read, or paused, ends when its reader reaches the end.
    for (const s of [this.stdout, this.stderr]) if (s && s.readableFlowing === null) s.resume();
  }

  private fail(e: Error, reject: (e: Error) => void): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
    reject(e);
  }

  private endRing(): void {
    if (this.job.message.stdin !== 'pipe') return;
    Atomics.store(this.job.ctl, CTL.inEof, 1);
    Atomics.notify(this.job.ctl, CTL.inWritten);
  }

  /** Copy chunk into the stdin ring, waiting while it is full. Dropped once the program ended. */
  private async writeRing(chunk: Buffer): Promise<void> {
    const ctl = this.job.ctl;
    const ring = new Uint8Array(this.job.control, CTL_BYTES, RING_BYTES);
    let off = 0;
    while (off < chunk.length && !this.ended) {
      const w = Atomics.load(ctl, CTL.inWritten);
      const r = Atomics.load(ctl, CTL.inRead);
      const space = RING_BYTES - ((w - r) | 0);
      if (space === 0) {
        const waiter = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { value: Promise<string> | string } })
          .waitAsync(ctl, CTL.inRead, r, 50);
        await waiter.value;
        continue;
      }
      const n = Math.min(space, chunk.length - off);
      const at = w & (RING_BYTES - 1);
      const first = Math.min(n, RING_BYTES - at);
      ring.set(chunk.subarray(off, off + first), at);
      if (first < n) ring.set(chunk.subarray(off + first, off + n), 0);
      Atomics.store(ctl, CTL.inWritten, (w + n) | 0);
      Atomics.notify(ctl, CTL.inWritten);
      off += n;
    }
  }
}

/**
 * Start a static x86-64 Linux program in a new micro-VM and return its handle at once (see
 * Sandbox). Like node:child_process's spawn(), with stdin/stdout/stderr piped by default.
 */
export function spawn(program: string, args: readonly string[] = [], options: SpawnOptions = {}): Sandbox {
  return new Sandbox(program, args, options);
}
