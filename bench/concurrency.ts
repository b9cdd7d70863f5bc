// The concurrency rows of npm run bench (issue 13): the warm `await run()` of static true, N
// sandboxes in parallel against N in sequence (runs per second) for static true and a CPU-bound
// program, with the same for native processes in the same run, the event loop's delay while 4
// sandboxes run, and the cost of handing one exit between threads (bench/handover.ts).
import { execFile, spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { closeIdleWorkers, engineStats, run } from '../src/api/engine.js';
import { measureHandover, type HandoverResult } from './thread-handover.js';
import { median } from './report.js';

const execFileAsync = promisify(execFile);

export interface ParallelRow {
  label: string;
  n: number;
  /** Runs per second, N one after another and N at once; speed-up = parallel / sequential. */
  sequential: number;
  parallel: number;
  speedup: number;
  native: { sequential: number; parallel: number; speedup: number };
}

export interface ConcurrencyResult {
  workers: number;
  /** Median ms of one warm `await run()` of static true, native spawnSync's, and their ratio. */
  trueAsync: { apiMs: number; nativeMs: number; ratio: number; syncMs: number; syncTimerMs: number };
  parallel: ParallelRow[];
  /** Event-loop delay of this process while 4 CPU-bound sandboxes run (ms). */
  loopDelay: { p50Ms: number; p99Ms: number; maxMs: number; sandboxes: number; runMs: number };
  handover: HandoverResult;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function ok(p: Promise<{ exitStatus: number; stderr: Buffer }>): Promise<void> {
  const r = await p;
  if (r.exitStatus !== 0) throw new Error(`bench: a sandbox failed (exit ${r.exitStatus}): ${r.stderr.toString()}`);
}

/** Runs per second of n runs in sequence and n at once, over reps rounds (medians). */
async function parallelRow(label: string, n: number, reps: number, program: string, args: string[],
  sync: (p: string, a: string[]) => void): Promise<ParallelRow> {
  const seq: number[] = [], par: number[] = [], nseq: number[] = [], npar: number[] = [];
  for (let r = 0; r < reps; r++) {
    seq.push(await timeIt(async () => { for (let i = 0; i < n; i++) await ok(run(program, args)); }));
    par.push(await timeIt(() => Promise.all(Array.from({ length: n }, () => ok(run(program, args))))));
    nseq.push(await timeIt(async () => { for (let i = 0; i < n; i++) sync(program, args); }));
    npar.push(await timeIt(() => Promise.all(Array.from({ length: n }, () => execFileAsync(program, args)))));
  }
  const rate = (ms: number[]) => (n * 1000) / median(ms);
  return {
    label, n, sequential: rate(seq), parallel: rate(par), speedup: median(seq) / median(par),
    native: { sequential: rate(nseq), parallel: rate(npar), speedup: median(nseq) / median(npar) },
  };
}

export async function measureConcurrency(opts: { truePath: string; spinPath: string; spinRounds: number; reps: number; batch: number }): Promise<ConcurrencyResult> {
  const workers = engineStats().size;
  const native = (p: string, a: string[]): void => { spawnSync(p, a, { stdio: 'ignore' }); };
  // Start every worker and warm its machine pool (untimed).
  await Promise.all(Array.from({ length: workers }, () => ok(run(opts.truePath, []))));

  const api: number[] = [], nat: number[] = [];
  for (let i = 0; i < opts.batch; i++) api.push(await timeIt(() => ok(run(opts.truePath, []))));
  for (let i = 0; i < opts.batch; i++) nat.push(await timeIt(async () => native(opts.truePath, [])));
  const { runSync } = await import('../src/api/run.js');
  runSync(opts.truePath, []);
  const syncMs: number[] = [];
  for (let i = 0; i < opts.batch; i++) syncMs.push(await timeIt(async () => runSync(opts.truePath, [])));
  // runSync with a signal runs with the guest timer on, as every worker run does.
  const signal = new AbortController().signal;
  runSync(opts.truePath, [], { signal });
  const syncTimerMs: number[] = [];
  for (let i = 0; i < opts.batch; i++) syncTimerMs.push(await timeIt(async () => runSync(opts.truePath, [], { signal })));
  const trueAsync = {
    apiMs: median(api), nativeMs: median(nat), ratio: median(api) / median(nat), syncMs: median(syncMs), syncTimerMs: median(syncTimerMs),
  };

  const spinArgs = [String(opts.spinRounds)];
  const parallel = [
    await parallelRow('static true', Math.max(2, workers), opts.reps, opts.truePath, [], native),
    await parallelRow(`spin ${opts.spinRounds}M rounds (CPU-bound)`, Math.max(2, workers), opts.reps, opts.spinPath, spinArgs, native),
  ];

  const h = monitorEventLoopDelay({ resolution: 1 });
  const sandboxes = 4;
  h.enable();
  const runMs = await timeIt(() => Promise.all(Array.from({ length: sandboxes }, () => ok(run(opts.spinPath, spinArgs)))));
  h.disable();
  const loopDelay = { p50Ms: h.percentile(50) / 1e6, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6, sandboxes, runMs };

  const handover = await measureHandover(20_000);
  await closeIdleWorkers();
  return { workers, trueAsync, parallel, loopDelay, handover };
}

export function concurrencyTable(c: ConcurrencyResult): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const lines = [
    `Concurrency (engine: ${c.workers} workers)`,
    `  warm await run() of static true: ${f(c.trueAsync.apiMs, 3)} ms (native spawnSync ${f(c.trueAsync.nativeMs, 3)} ms, ${f(c.trueAsync.ratio)}x native; runSync ${f(c.trueAsync.syncMs, 3)} ms, with the timer on ${f(c.trueAsync.syncTimerMs, 3)} ms; goal <= 0.5 ms)`,
    ...c.parallel.map((p) => `  ${p.label}, ${p.n} at once vs in sequence: ${f(p.parallel, 1)} vs ${f(p.sequential, 1)} runs/s = ${f(p.speedup)}x ` +
      `(native ${f(p.native.parallel, 1)} vs ${f(p.native.sequential, 1)} runs/s = ${f(p.native.speedup)}x; goal for CPU-bound >= 1.8x on 2 cores)`),
    `  event-loop delay while ${c.loopDelay.sandboxes} CPU-bound sandboxes run (${f(c.loopDelay.runMs, 0)} ms): p50 ${f(c.loopDelay.p50Ms)} ms, p99 ${f(c.loopDelay.p99Ms)} ms, max ${f(c.loopDelay.maxMs)} ms (goal p99 < 5 ms)`,
    `  handing one exit between threads: postMessage round trip ${f(c.handover.postMessageUs)} us, Atomics.wait/notify round trip ${f(c.handover.atomicsUs)} us`,
  ];
  return lines.join('\n');
}
