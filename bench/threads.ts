// The thread workloads of issue 16, run beside native and qemu-user like the others (bench.ts):
//   threads-1   CPU work on 1 thread          (bench/programs/threadbench.c spin 1 UNITS)
//   threads-2   the same work split over 2    (spin 2 UNITS): the speed-up is threads-1 / threads-2
//   pingpong    a mutex + condition variable ping-pong between 2 threads (round trips)
//   futex-wake  a futex wake answered by a futex wake, in a loop (wake round trip)
// and the goals next to the measured figures, judged only on a real KVM host. kvmbox
// runs a process's threads on parallel vCPUs (one per host CPU by default) on hardware KVM.
import { join } from 'node:path';
import { fmtRatio, type Target, type WorkloadResult } from './report.js';
import type { Invocation, Outcome, Paths, Workload } from './workloads.js';

export const THREAD_WORKLOAD_NAMES = ['threads-1', 'threads-2', 'pingpong', 'futex-wake'];

function sizes(quick: boolean) {
  return { units: quick ? 200 : 1000, rounds: quick ? 5000 : 20000 };
}

function exact(o: Outcome): string {
  return `exit ${o.status}\n${o.stdout.toString('latin1')}`;
}

export function threadWorkloads(p: Paths, quick: boolean): Workload[] {
  const { units, rounds } = sizes(quick);
  const prog = join(p.benchOut, 'threadbench');
  const w = (name: string, title: string, args: string[], expected: string): Workload => ({
    name, title, runners: ['native', 'qemu', 'kvmbox-cli', 'kvmbox-api'],
    invocation: (): Invocation => ({ program: prog, args, ro: [], rw: [] }),
    normalize: exact, expected: () => `exit 0\n${expected}\n`, warmup: 'native', batch: 1,
  });
  return [
    w('threads-1', `CPU work (${units} units) on 1 thread`, ['spin', '1', String(units)], `spin threads=1 units=${units}`),
    w('threads-2', `the same CPU work split over 2 threads`, ['spin', '2', String(units)], `spin threads=2 units=${units}`),
    w('pingpong', `mutex + condvar ping-pong between 2 threads, ${rounds} rounds`, ['pingpong', String(rounds)], `pingpong rounds=${rounds}`),
    w('futex-wake', `futex wake answered by a futex wake, ${rounds} round trips`, ['wake', String(rounds)], `wake rounds=${rounds}`),
  ];
}

/** Issue 16's goals on the in-process API time: a 2-thread speed-up of 1.8x, ping-pong at 0.5x native or better. */
export function threadTargets(results: readonly WorkloadResult[], quick: boolean): Target[] {
  const lane = process.env.KVMBOX_BENCH_IN_LANE === '1';
  const note = lane ? ' (emulated lane: not judged)' : '';
  const targets: Target[] = [];
  const ms = (w: string, runner: string) => results.find((r) => r.name === w)?.runners.find((r) => r.runner === runner);
  const k1 = ms('threads-1', 'kvmbox-api'), k2 = ms('threads-2', 'kvmbox-api');
  const n1 = ms('threads-1', 'native'), n2 = ms('threads-2', 'native');
  if (k1 && k2 && n1 && n2) {
    const kv = k1.medianMs / k2.medianMs, nat = n1.medianMs / n2.medianMs;
    targets.push({
      what: '2-thread speed-up of CPU work (issue 16, kvmbox API)', limit: '>= 1.8x',
      measured: `kvmbox ${kv.toFixed(2)}x, native ${nat.toFixed(2)}x${note}`, pass: lane ? null : kv >= 1.8,
    });
  }
  const { rounds } = sizes(quick);
  for (const [name, what] of [['pingpong', 'mutex/condvar ping-pong'], ['futex-wake', 'futex wake round trip']] as const) {
    const k = ms(name, 'kvmbox-api'), n = ms(name, 'native');
    if (!k || !n) continue;
    const per = (x: number) => `${((x / rounds) * 1000).toFixed(1)} us/round`;
    targets.push({
      what: `${what} (issue 16, kvmbox API)`, limit: name === 'pingpong' ? '>= 0.5x native rate (time <= 2x)' : 'measured',
      measured: `kvmbox ${fmtRatio(k.ratio)} (${per(k.medianMs)}), native ${per(n.medianMs)}${note}`,
      pass: lane || name !== 'pingpong' ? null : k.ratio !== null && k.ratio <= 2,
    });
  }
  return targets;
}
