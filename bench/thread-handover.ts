// The cost of handing one exit between two threads (issue 13): a worker_threads postMessage round
// trip, and an Atomics.wait/notify round trip on a shared Int32 word (what a native vCPU thread
// running KVM_RUN would do with a futex, handing its exit to the sandbox's worker and waiting for
// the answer). No KVM needed. Usage: node build/bench/thread-handover.js [round trips]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface HandoverResult {
  postMessageUs: number;
  atomicsUs: number;
}

const PING = 1, PONG = 2, STOP = 3;

function peer(): void {
  const { sab } = workerData as { sab: SharedArrayBuffer };
  const w = new Int32Array(sab);
  parentPort!.on('message', (m: number) => {
    if (m === 0) {
      // Atomics mode: answer every PING with PONG until STOP.
      for (;;) {
        Atomics.wait(w, 0, PONG);
        const v = Atomics.load(w, 0);
        if (v === STOP) break;
        if (v === PING) {
          Atomics.store(w, 0, PONG);
          Atomics.notify(w, 0);
        }
      }
      parentPort!.postMessage('stopped');
      return;
    }
    parentPort!.postMessage(m);
  });
}

/** Median-free simple means over n round trips, after a warm-up of n/10. */
export async function measureHandover(n = 20_000): Promise<HandoverResult> {
  const sab = new SharedArrayBuffer(4);
  const w = new Int32Array(sab);
  const worker = new Worker(new URL(import.meta.url), { workerData: { sab } });
  const roundTrip = (m: number): Promise<unknown> => new Promise((res) => worker.once('message', res)).then(() => m);
  // postMessage: the main thread sends, the worker echoes, the main thread receives.
  const warm = Math.max(1, Math.floor(n / 10));
  for (let i = 1; i <= warm; i++) { const p = roundTrip(i); worker.postMessage(i); await p; }
  let t0 = performance.now();
  for (let i = 1; i <= n; i++) { const p = roundTrip(i); worker.postMessage(i); await p; }
  const postMessageUs = ((performance.now() - t0) * 1000) / n;
  // Atomics: the worker spins in Atomics.wait; the main thread stores PING, notifies, waits for PONG.
  Atomics.store(w, 0, PONG);
  const stopped = new Promise((res) => worker.once('message', res));
  worker.postMessage(0);
  await new Promise((res) => setTimeout(res, 20));
  const ping = (): void => {
    Atomics.store(w, 0, PING);
    Atomics.notify(w, 0);
    while (Atomics.wait(w, 0, PING) === 'ok' && Atomics.load(w, 0) === PING) { /* spurious */ }
  };
  for (let i = 0; i < warm; i++) ping();
  t0 = performance.now();
  for (let i = 0; i < n; i++) ping();
  const atomicsUs = ((performance.now() - t0) * 1000) / n;
  Atomics.store(w, 0, STOP);
  Atomics.notify(w, 0);
  await stopped;
  await worker.terminate();
  return { postMessageUs, atomicsUs };
}

if (!isMainThread) {
  peer();
} else if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const n = Number(process.argv[2] ?? 20_000);
  const r = await measureHandover(n);
  console.log(`postMessage round trip: ${r.postMessageUs.toFixed(2)} us`);
  console.log(`Atomics.wait/notify round trip: ${r.atomicsUs.toFixed(2)} us`);
}
