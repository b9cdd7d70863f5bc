// The engine's worker thread: runs one job at a time with runHere(), in this thread, so the main
// thread's event loop stays free. Its machine pool (src/machine/pool.ts) lives as long as the
// worker, so the VMs stay warm between jobs. See src/api/protocol.ts for what crosses threads.
import { parentPort } from 'node:worker_threads';
import type { InputSource, OutputSink } from '../fs/open-file.js';
import { SIGNAL_NAMES } from '../abi/linux.js';
import { outsideSignalsOf, runHere, warmMachine, type RunHooks } from './run.js';
import { WAIT_SLICE_MS } from '../linux/host-wait.js';
import {
  CANCEL_KILL, CTL, CTL_BYTES, OUT_HIGH_WATER, RING_BYTES, type JobMessage, type WarmMessage, type WireError,
  type WorkerMessage,
} from './protocol.js';

const port = parentPort!;
const TO_PROCESS = new Map<number, 'process' | 'foreground'>();
const TO_FOREGROUND = new Map<number, 'process' | 'foreground'>(Array.from({ length: 32 }, (_, i) => [i, 'foreground']));
const post = (m: WorkerMessage, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);


function wireError(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e), props: {} };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) props[k] = v;
  }
  return { name: e.name, message: e.message, stack: e.stack, props };
}

/** stdin read from the main thread's ring: waits in slices, and gives EOF once cancelled. */
function ringSource(ctl: Int32Array, ring: Uint8Array, cancelled: () => boolean): InputSource {
  return {
    read: (buf) => {
      for (;;) {
        const w = Atomics.load(ctl, CTL.inWritten);
        const r = Atomics.load(ctl, CTL.inRead);
        const avail = (w - r) | 0;
        if (avail > 0) {
          const n = Math.min(avail, buf.length);
          const at = r & (RING_BYTES - 1);
          const first = Math.min(n, RING_BYTES - at);
          buf.set(ring.subarray(at, at + first), 0);
          if (first < n) buf.set(ring.subarray(0, n - first), first);
          Atomics.store(ctl, CTL.inRead, (r + n) | 0);
          Atomics.notify(ctl, CTL.inRead);
          return n;
        }
        if (Atomics.load(ctl, CTL.inEof) !== 0 || cancelled()) return 0;
        Atomics.wait(ctl, CTL.inWritten, w, WAIT_SLICE_MS);
      }
    },
  };
}

/** Output posted to the main thread; the guest waits while too much is unconsumed there. */
function postSink(ctl: Int32Array, fd: 1 | 2, cancelled: () => boolean): OutputSink {
  return {
    write: (b) => {
      const chunk = new Uint8Array(b); // a copy this thread gives away
      Atomics.add(ctl, CTL.outPending, chunk.length);
      post({ t: 'out', fd, chunk }, [chunk.buffer]);
      for (;;) {
        const pending = Atomics.load(ctl, CTL.outPending);
        if (pending <= OUT_HIGH_WATER || cancelled()) break;
        Atomics.wait(ctl, CTL.outPending, pending, WAIT_SLICE_MS);
      }
    },
  };
}

function runJob(job: JobMessage): void {
  const ctl = new Int32Array(job.control, 0, CTL_BYTES / 4);
  const cancelled = (): boolean => Atomics.load(ctl, CTL.cancel) !== 0;
  const hooks: RunHooks = { cancelled, onStart: () => post({ t: 'start' }) };
  if (job.stdin === 'pipe') hooks.stdin = ringSource(ctl, new Uint8Array(job.control, CTL_BYTES, RING_BYTES), cancelled);
  if (job.stdout === 'post') hooks.stdout = postSink(ctl, 1, cancelled);
  if (job.stderr === 'post') hooks.stderr = postSink(ctl, 2, cancelled);
  if (job.signals) {
    // Sandbox.sendSignal(): the bits it set, taken at each look (signals 1..31).
    hooks.outsideSignals = () => {
      const process = BigInt(Atomics.exchange(ctl, CTL.sigProcess, 0) >>> 0);
      const foreground = BigInt(Atomics.exchange(ctl, CTL.sigForeground, 0) >>> 0);
      if (process === 0n && foreground === 0n) return null;
      return [...outsideSignalsOf(process, TO_PROCESS), ...outsideSignalsOf(foreground, TO_FOREGROUND)];
    };
  }
  const stdin = job.stdin === 'pipe' ? undefined : job.stdin;
  const result = runHere(job.program, job.args, {
    ...job.options,
    stdin,
    stdout: job.stdout === 'inherit' ? 'inherit' : 'capture',
    stderr: job.stderr === 'inherit' ? 'inherit' : 'capture',
    trace: job.trace ? (line) => post({ t: 'trace', line }) : undefined,
  }, hooks);
  if (result.reason.kind === 'aborted' && Atomics.load(ctl, CTL.cancel) === CANCEL_KILL) {
    // kill(signal): the program ends as if that signal had killed it.
    const signal = Atomics.load(ctl, CTL.killSignal);
    const message = `kvmbox: program killed by ${SIGNAL_NAMES[signal] ?? `signal ${signal}`} (kill())`;
    result.reason = { kind: 'signaled', signal, message };
    result.signal = signal;
    result.exitStatus = 128 + signal;
  }
  post({ t: 'done', result });
}

port.on('message', (job: JobMessage | WarmMessage) => {
  if ('warm' in job) {
    warmMachine();
    post({ t: 'ready' });
    return;
  }
  try {
    runJob(job);
  } catch (e) {
    post({ t: 'error', error: wireError(e) });
  }
});
