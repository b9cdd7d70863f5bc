// The dynamic-program workloads of issue 14, run beside native and qemu-user like the others
// (bench.ts), with the host's system granted (--system / system: true):
//   dyn-true-cli    dynamic /bin/true (coreutils), start to exit through the CLI, cold process
//   dyn-true-api    the same through the warm API, a batch of runs per repetition
//   python-pass     python3 -c pass, start to exit (ld.so, libpython, its start-up modules)
//   python-compute  a compute-heavy python3 loop (user mode throughout)
// and the issue's goals, printed next to the measured numbers; judged only on a real KVM host.
import { existsSync } from 'node:fs';
import { fmtMs, ratioGoal, type Target, type WorkloadResult } from './report.js';
import type { Invocation, Outcome, Workload } from './workloads.js';

export const DYNAMIC_WORKLOAD_NAMES = ['dyn-true-cli', 'dyn-true-api', 'python-pass', 'python-compute'];

const TRUE = '/bin/true';
const PYTHON = '/usr/bin/python3';

/** Iterations of the compute loop (about 0.2 s natively with --quick, 1 s without, on this kind of host). */
function computeIterations(quick: boolean): number {
  return quick ? 1_000_000 : 5_000_000;
}

function computeScript(n: number): string {
  return `s = 0\nfor i in range(${n}):\n    s += i * i % 7\nprint(s)`;
}

function computeExpected(n: number): string {
  let s = 0;
  for (let i = 0; i < n; i++) s += Number((BigInt(i) * BigInt(i)) % 7n);
  return `exit 0\n${s}\n`;
}

function exact(o: Outcome): string {
  return `exit ${o.status}\n${o.stdout.toString('latin1')}`;
}

export function dynamicWorkloads(quick: boolean, apiWarmBatch: number): Workload[] {
  const list: Workload[] = [];
  const sys = (program: string, args: string[]) => (): Invocation => ({ program, args, ro: [], rw: [], system: true });
  if (existsSync(TRUE)) {
    list.push(
      {
        name: 'dyn-true-cli', title: `dynamic ${TRUE} (--system), start to exit, cold process`,
        runners: ['native', 'qemu', 'kvmbox-cli'],
        invocation: sys(TRUE, []), normalize: exact, expected: () => 'exit 0\n', warmup: 'all', batch: 1,
      },
      {
        name: 'dyn-true-api', title: `dynamic ${TRUE} (--system), warm API: ${apiWarmBatch} runs per repetition`,
        runners: ['native', 'kvmbox-api'],
        invocation: sys(TRUE, []), normalize: exact, expected: () => 'exit 0\n', warmup: 'all', batch: apiWarmBatch,
      },
    );
  }
  if (existsSync(PYTHON)) {
    const n = computeIterations(quick);
    list.push(
      {
        name: 'python-pass', title: `${PYTHON} -c pass (--system), start to exit`,
        runners: ['native', 'qemu', 'kvmbox-cli', 'kvmbox-api'],
        invocation: sys(PYTHON, ['-c', 'pass']), normalize: exact, expected: () => 'exit 0\n', warmup: 'all', batch: 1,
      },
      {
        name: 'python-compute', title: `${PYTHON}: a loop of ${n} multiplications and remainders (--system)`,
        runners: ['native', 'qemu', 'kvmbox-cli', 'kvmbox-api'],
        invocation: sys(PYTHON, ['-c', computeScript(n)]), normalize: exact, expected: () => computeExpected(n), warmup: 'native', batch: 1,
      },
    );
  }
  return list;
}

/**
 * Issue 14's goals, on the in-process API time: dynamic true through the warm API in 2 ms or
 * less, python3 -c pass at 1.5x native or better, the compute-heavy script at 1.1x or better.
 * In the emulated lane they are printed but not judged.
 */
export function dynamicTargets(results: readonly WorkloadResult[], apiWarmBatch: number): Target[] {
  const lane = process.env.KVMBOX_BENCH_IN_LANE === '1';
  const targets: Target[] = [];
  const w = results.find((r) => r.name === 'dyn-true-api');
  const k = w?.runners.find((r) => r.runner === 'kvmbox-api');
  if (w && k) {
    const each = k.medianMs / apiWarmBatch;
    const nat = w.runners.find((r) => r.runner === 'native');
    const correct = k.failures === 0 && k.mismatches === 0;
    targets.push({
      what: `dynamic ${TRUE}, warm API, per run (issue 14)`, limit: '<= 2 ms',
      measured: `${fmtMs(each)}${nat ? ` (native ${fmtMs(nat.medianMs / apiWarmBatch)})` : ''}${correct ? '' : ', WRONG OUTPUT'}${lane ? ' (emulated lane: not judged)' : ''}`,
      pass: lane ? null : correct && each <= 2,
    });
  }
  for (const t of [
    ratioGoal(results, 'python-pass', `${PYTHON} -c pass (issue 14, kvmbox API)`, '<= 1.5x native', 1.5, fmtMs),
    ratioGoal(results, 'python-compute', `compute-heavy python3 (issue 14, kvmbox API)`, '<= 1.1x native', 1.1, fmtMs),
  ]) if (t) targets.push(t);
  return targets;
}
