// The cost of handing one exit over between threads (docs/design.md): the same guest makes N
// system calls that only the host answers, once with KVM_RUN called by the serving JavaScript
// thread itself (today's single-vCPU path), once with KVM_RUN on a native vCPU thread of the
// helper library that hands every exit to the JavaScript thread and back by futex
// (native/vcpu.c, KVMBOX_VCPU_THREAD=1): the path of threads and concurrent processes. Each mode
// runs in its own Node process, alternating, and the difference of the per-call medians is the
// hand-over cost of one exit (two thread wake-ups).
//
//   node build/bench/handover.js [--calls N] [--rounds R]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { run as runSync } from '../src/api/run.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROGRAM = join(ROOT, 'bench/out/nullcall');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
  return v;
}

function child(calls: number): void {
  runSync(PROGRAM, ['100']); // warm: a pooled machine, its vCPU (and thread) made
  const r = runSync(PROGRAM, [String(calls)]);
  const m = /ns_per_call=(\d+)/.exec(Buffer.from(r.stdout).toString());
  if (r.exitStatus !== 0 || !m) throw new Error(`nullcall failed: ${r.exitStatus} ${Buffer.from(r.stderr).toString()}`);
  console.log(m[1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function main(): void {
  const calls = arg('--calls', 20000);
  if (process.argv[2] === 'child') return child(calls);
  const build = spawnSync(process.execPath, [join(ROOT, 'bench/build-programs.mjs')], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(1);
  const rounds = arg('--rounds', 5);
  const samples: Record<'direct' | 'thread', number[]> = { direct: [], thread: [] };
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['direct', 'thread'] as const) {
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child', '--calls', String(calls)], {
        encoding: 'utf8', env: { ...process.env, KVMBOX_VCPU_THREAD: mode === 'thread' ? '1' : '0' },
      });
      if (r.status !== 0) throw new Error(`${mode} run failed: ${r.stderr}`);
      samples[mode].push(Number(r.stdout.trim()));
    }
  }
  const d = median(samples.direct);
  const t = median(samples.thread);
  console.log(`exit served by the JS thread's own KVM_RUN : ${(d / 1000).toFixed(2)} us per call (median of ${rounds.toString()} x ${calls.toString()})`);
  console.log(`exit handed over from a native vCPU thread : ${(t / 1000).toFixed(2)} us per call`);
  console.log(`hand-over cost of one exit                  : ${((t - d) / 1000).toFixed(2)} us`);
}

main();
