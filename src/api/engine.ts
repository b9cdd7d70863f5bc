// The asynchronous engine: a pool of worker threads, each running one sandbox at a time with its
// own warm machine pool, so that the main thread's event loop never waits for a guest and several
// sandboxes run at once on several cores (docs/architecture.md, "The engine").
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KvmUnavailableError } from '../kvm/kvm.js';
import { NotRunnableError } from '../linux/elf.js';
import { GrantError } from '../fs/vfs.js';
import { InterpreterNotFoundError } from '../linux/interp.js';
import { abortError, ProgramNotFoundError, type RunOptions, type RunResult } from './run.js';
import {
  CANCEL_ABORT, CANCEL_KILL, CTL, CTL_BYTES, RING_BYTES, type JobMessage, type StreamMode, type WireError,
  type WarmMessage, type WireOptions, type WorkerMessage,
} from './protocol.js';

export interface EngineOptions {
  /** Most worker threads (sandboxes running at once); more runs wait in a queue. Default: the
   * KVMBOX_WORKERS environment variable, else the number of CPUs. */
  workers?: number;
}

export interface EngineStats {
  /** The configured size of the pool. */
  size: number;
  /** Live workers, and how many of them run a sandbox now. */
  workers: number;
  busy: number;
  /** Runs waiting for a worker. */
  queued: number;
  /** Workers started since start-up (a warm pool starts none for a new run). */
  started: number;
  /** Runs finished (resolved or rejected) since start-up. */
  runs: number;
}

/** How the main thread receives a job's life. */
export interface JobHandlers {
  onStart(): void;
  onOutput(fd: 1 | 2, chunk: Buffer): void;
  onTrace(line: string): void;
  onDone(result: RunResult): void;
  onError(error: Error): void;
}

/** Errors keep their class across the thread boundary: recreated here by name. */
const ERROR_CLASSES: Record<string, { prototype: Error }> = {
  ProgramNotFoundError, NotRunnableError, InterpreterNotFoundError, GrantError, KvmUnavailableError,
  RangeError, TypeError, Error,
};

function rebuildError(w: WireError): Error {
  const cls = ERROR_CLASSES[w.name] ?? Error;
  const e = Object.create(cls.prototype) as Error;
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true });
  if (w.stack !== undefined) Object.defineProperty(e, 'stack', { value: w.stack, writable: true, configurable: true });
  Object.assign(e, w.props);
  if (e.name !== w.name) Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true, enumerable: true });
  return e;
}

/** One run, from the queue to its end. The control block is how the main thread reaches it. */
export class Job {
  readonly control: SharedArrayBuffer;
  readonly ctl: Int32Array;
  finished = false;
  worker: PooledWorker | null = null;
  constructor(readonly message: Omit<JobMessage, 'control'>, readonly handlers: JobHandlers) {
    this.control = new SharedArrayBuffer(CTL_BYTES + (message.stdin === 'pipe' ? RING_BYTES : 0));
    this.ctl = new Int32Array(this.control, 0, CTL_BYTES / 4);
  }

  /** Ask the guest to stop: abort (reason 'aborted') or kill(signal) (reason 'signaled'). */
  cancel(how: typeof CANCEL_ABORT | typeof CANCEL_KILL, signal = 0): void {
    if (Atomics.load(this.ctl, CTL.cancel) !== 0) return;
    Atomics.store(this.ctl, CTL.killSignal, signal);
    Atomics.store(this.ctl, CTL.cancel, how);
    // Wake a worker that waits for stdin or for its output to be taken.
    Atomics.notify(this.ctl, CTL.inWritten);
    Atomics.notify(this.ctl, CTL.outPending);
  }

  /** The consumer took n bytes of output: let the guest write more. */
  release(n: number): void {
    Atomics.sub(this.ctl, CTL.outPending, n);
    Atomics.notify(this.ctl, CTL.outPending);
  }
}

interface PooledWorker {
  worker: Worker;
  job: Job | null;
  /** Set while warmEngine() waits for this worker's { t: 'ready' }. */
  onReady?: () => void;
}

let configured: number | undefined;
const workers: PooledWorker[] = [];
const queue: Job[] = [];
const stats = { started: 0, runs: 0 };
// Through ../api so that it resolves from build/src/cli's bundle too (scripts/bundle-cli.mjs).
const WORKER_URL = new URL('../api/worker.js', import.meta.url);

function poolSize(): number {
  if (configured !== undefined) return configured;
  const env = Number(process.env.KVMBOX_WORKERS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

/** Size the worker pool (takes effect for the next runs; busy workers above the size end when idle). */
export function configureEngine(options: EngineOptions): void {
  if (options.workers !== undefined) {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new RangeError(`workers must be a positive integer, not ${options.workers}`);
    }
    configured = options.workers;
  }
  pump();
}

export function engineStats(): EngineStats {
  return {
    size: poolSize(), workers: workers.length, busy: workers.filter((w) => w.job).length,
    queued: queue.length, started: stats.started, runs: stats.runs,
  };
}

/** End the idle workers (and their pooled VMs). Idle workers never keep the process alive anyway. */
export async function closeIdleWorkers(): Promise<void> {
  const idle = workers.filter((w) => !w.job);
  for (const w of idle) workers.splice(workers.indexOf(w), 1);
  await Promise.all(idle.map((w) => w.worker.terminate()));
}

/**
 * Start the pool's workers ahead of the first run(), so that it pays no worker start-up (the
 * thread and its modules: 0.1-0.2 s) and finds a VM ready in the worker's pool. Resolves when
 * every worker is ready. The warmed workers are idle: they do not keep the process alive. On a
 * host without usable KVM it resolves as well; run() then says what is wrong.
 */
export async function warmEngine(): Promise<void> {
  const ready: Promise<void>[] = [];
  while (workers.length < poolSize()) {
    const pw = startWorker(); // ref'd while it warms up: the caller awaits it
    ready.push(new Promise<void>((resolve) => { pw.onReady = resolve; }));
    pw.worker.postMessage({ warm: true } satisfies WarmMessage);
  }
  await Promise.all(ready);
}

function startWorker(): PooledWorker {
  const pw: PooledWorker = { worker: new Worker(WORKER_URL), job: null };
  stats.started++;
  pw.worker.on('message', (m: WorkerMessage) => onMessage(pw, m));
  pw.worker.on('error', (e: Error) => lost(pw, e));
  pw.worker.on('exit', (code) => lost(pw, new Error(`kvmbox: the engine's worker thread exited (code ${code})`)));
  workers.push(pw);
  return pw;
}

/** A worker died (an uncaught error, terminate()): its job fails, the pool forgets it. */
function lost(pw: PooledWorker, e: Error): void {
  pw.onReady?.();
  const i = workers.indexOf(pw);
  if (i >= 0) workers.splice(i, 1);
  const job = pw.job;
  pw.job = null;
  if (job) finish(job, () => job.handlers.onError(e));
  pump();
}

function finish(job: Job, report: () => void): void {
  if (job.finished) return;
  job.finished = true;
  job.worker = null;
  stats.runs++;
  report();
}

function onMessage(pw: PooledWorker, m: WorkerMessage): void {
  if (m.t === 'ready') {
    if (!pw.job) pw.worker.unref(); // warm and idle: it must not keep the process alive
    pw.onReady?.();
    pw.onReady = undefined;
    return;
  }
  const job = pw.job;
  if (!job) return;
  switch (m.t) {
    case 'start': job.handlers.onStart(); return;
    case 'out': job.handlers.onOutput(m.fd, Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength)); return;
    case 'trace': job.handlers.onTrace(m.line); return;
    case 'done':
    case 'error':
      pw.job = null;
      pw.worker.unref();
      if (workers.length > poolSize()) {
        workers.splice(workers.indexOf(pw), 1);
        void pw.worker.terminate();
      }
      if (m.t === 'done') {
        const r = m.result;
        // Buffers arrive as plain Uint8Arrays.
        r.stdout = Buffer.from(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
        r.stderr = Buffer.from(r.stderr.buffer, r.stderr.byteOffset, r.stderr.byteLength);
        finish(job, () => job.handlers.onDone(r));
      } else {
        finish(job, () => job.handlers.onError(rebuildError(m.error)));
      }
      pump();
  }
}

/** Hand queued jobs to idle workers, starting workers up to the pool's size. */
function pump(): void {
  while (queue.length > 0) {
    let pw = workers.find((w) => !w.job);
    if (!pw) {
      if (workers.length >= poolSize()) return;
      pw = startWorker();
    }
    const job = queue.shift()!;
    pw.job = job;
    job.worker = pw;
    pw.worker.ref(); // a running sandbox keeps the process alive, an idle worker does not
    pw.worker.postMessage({ ...job.message, control: job.control } satisfies JobMessage);
  }
}

export function submit(job: Job): void {
  queue.push(job);
  pump();
}

/** End a job that no worker took yet with the given result; false when it already runs. */
export function finishQueued(job: Job, result: RunResult): boolean {
  const i = queue.indexOf(job);
  if (i < 0) return false;
  queue.splice(i, 1);
  finish(job, () => job.handlers.onDone(result));
  return true;
}

type Stdio = RunOptions['stdout'] | 'pipe';

export type AnyStdioOptions = Omit<RunOptions, 'stdin' | 'stdout' | 'stderr'> & { stdin?: RunOptions['stdin'] | 'pipe'; stdout?: Stdio; stderr?: Stdio };

/** The wire form of a run's options; callbacks stay on this thread. */
export function jobMessage(program: string, args: readonly string[], options: AnyStdioOptions, signals = false): Omit<JobMessage, 'control'> {
  const { stdout, stderr, trace, signal: _signal, stdin, ...rest } = options;
  if (rest.forwardSignals) {
    throw new TypeError('forwardSignals is for runSync() only: the engine runs programs on worker threads, which host signals do not reach; use spawn() and Sandbox.sendSignal()');
  }
  const mode = (s: Stdio): StreamMode => (s === 'inherit' ? 'inherit' : s === undefined || s === 'capture' ? 'capture' : 'post');
  return {
    program, args: [...args], options: rest satisfies WireOptions, stdin,
    stdout: mode(stdout), stderr: mode(stderr), trace: trace !== undefined, signals,
  };
}

/**
 * Run a static x86-64 Linux program in a new micro-VM on one of the engine's worker threads.
 * The event loop keeps running meanwhile. Resolves with the RunResult; rejects with
 * KvmUnavailableError, ProgramNotFoundError, NotRunnableError, GrantError (the same classes
 * runSync throws), or with an Error named 'AbortError' (cause: signal.reason) when
 * options.signal aborts.
 */
export function run(program: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const signal = options.signal;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<RunResult>((resolve, reject) => {
    const onAbort = (): void => {
      if (!finishQueued(job, abortedResult())) job.cancel(CANCEL_ABORT);
    };
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    const call = (fn: RunOptions['stdout']) => (typeof fn === 'function' ? fn : null);
    const out = call(options.stdout), err = call(options.stderr);
    const job: Job = new Job(jobMessage(program, args, options), {
      onStart: () => {},
      onOutput: (fd, chunk) => {
        try {
          (fd === 1 ? out : err)?.(chunk);
        } finally {
          job.release(chunk.length);
        }
      },
      onTrace: (line) => options.trace?.(line),
      onDone: (r) => {
        done();
        if (r.reason.kind === 'aborted') reject(abortError(signal));
        else resolve(r);
      },
      onError: (e) => {
        done();
        reject(e);
      },
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    submit(job);
  });
}

/** The result of a run aborted before it started. */
export function abortedResult(): RunResult {
  return {
    exitStatus: 137, reason: { kind: 'aborted', message: 'kvmbox: run aborted' },
    stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), syscalls: 0,
  };
}
