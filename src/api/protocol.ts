// What the engine (src/api/engine.ts, main thread) and its workers (src/api/worker.ts) say to
// each other. A job is one run; a worker runs one job at a time, synchronously, so the only way
// to reach a running job is shared memory: the control block below. Messages go the other way
// (worker -> main): start, output chunks, trace lines, the result or the error.
import type { RunOptions, RunResult } from './run.js';

/** Int32 slots of a job's control block (a SharedArrayBuffer made by the main thread). */
export const CTL = {
  /** 0 while running; CANCEL_ABORT or CANCEL_KILL once the main thread wants the run ended. */
  cancel: 0,
  /** The signal number kill() asked for. */
  killSignal: 1,
  /** Bytes written to the stdin ring by the main thread, and read by the worker (both wrap as int32). */
  inWritten: 2,
  inRead: 3,
  /** 1 once the main thread has ended stdin. */
  inEof: 4,
  /** Output bytes posted by the worker and not yet taken by their consumer (backpressure). */
  outPending: 5,
  /** Signals Sandbox.sendSignal() sent and the worker has not taken yet (bit N: signal N, 1..31):
   * to the first process, and to the terminal's foreground process group. */
  sigProcess: 6,
  sigForeground: 7,
} as const;
export const CANCEL_ABORT = 1;
export const CANCEL_KILL = 2;
/** Bytes of the control block before the stdin ring. */
export const CTL_BYTES = 64;
/** Size of the stdin ring (a power of two: positions are taken with `& (RING_BYTES - 1)`). */
export const RING_BYTES = 64 * 1024;
/** The worker stops the guest (waits, checking for cancellation) while more than this is pending. */
export const OUT_HIGH_WATER = 1024 * 1024;

export type StreamMode = 'capture' | 'inherit' | 'post';

/** RunOptions without what cannot cross threads (callbacks, the AbortSignal). */
export type WireOptions = Omit<RunOptions, 'stdout' | 'stderr' | 'trace' | 'signal' | 'stdin'>;

export interface JobMessage {
  program: string;
  args: readonly string[];
  options: WireOptions;
  stdin: Uint8Array | string | 'inherit' | 'pipe' | undefined;
  stdout: StreamMode;
  stderr: StreamMode;
  trace: boolean;
  /** Whether signals may come from outside (spawn(): Sandbox.sendSignal()). */
  signals: boolean;
  control: SharedArrayBuffer;
}

export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable properties (exitStatus, code...). */
  props: Record<string, unknown>;
}

export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'start' }
  | { t: 'out'; fd: 1 | 2; chunk: Uint8Array }
  | { t: 'trace'; line: string }
  | { t: 'done'; result: RunResult }
  | { t: 'error'; error: WireError };

/** Sent to an idle worker by warmEngine(): make and pool one VM, then answer { t: 'ready' }. */
export interface WarmMessage { warm: true }
