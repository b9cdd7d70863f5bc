// --profile: where a kvmbox API run spends its time. One traced run counts the system calls by
// name; three untraced runs (the median one is reported) are timed in parts by wrapping, for its duration, the methods that mark
// the boundaries (nothing in src/ changes):
//   setup+teardown  run() minus Kernel.run: pool acquire and reset, ELF load, closing files
//   in KVM_RUN      time inside Vcpu.runOnce: guest execution plus the cost of each exit
//   host handlers   Kernel.run minus KVM_RUN: the TypeScript that serves hypercalls
import { runSync as run } from '../src/api/run.js';
import { Kernel } from '../src/linux/kernel.js';
import { Vcpu } from '../src/kvm/kvm.js';
import { Machine } from '../src/machine/machine.js';
import { fmtMs, markdownTable } from './report.js';
import type { Workload } from './workloads.js';

export interface Profile {
  workload: string;
  totalMs: number;
  resetMs: number;
  setupMs: number;
  kvmRunMs: number;
  handlerMs: number;
  exits: number;
  syscalls: number;
  /** Traced system calls by name, most frequent first. */
  byName: [string, number][];
}

function traceCounts(w: Workload): [string, number][] {
  const counts = new Map<string, number>();
  const inv = w.invocation();
  try {
    run(inv.program, inv.args, {
      ro: inv.ro, rw: inv.rw, system: inv.system, stdout: 'capture', stderr: 'capture',
      trace: (line) => {
        const name = /^(?:\[[^\]]*\]\s*)?([a-z0-9_]+)\(/.exec(line)?.[1] ?? '?';
        counts.set(name, (counts.get(name) ?? 0) + 1);
      },
    });
  } finally {
    inv.cleanup?.();
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}

/** The instrumented run is repeated this many times; the one with the median total is kept. */
const PROFILE_RUNS = 3;

export function profileWorkload(w: Workload): Profile {
  const byName = traceCounts(w);
  const runs: Profile[] = [];
  for (let i = 0; i < PROFILE_RUNS; i++) runs.push(instrumentedRun(w, byName));
  runs.sort((a, b) => a.totalMs - b.totalMs);
  return runs[runs.length >> 1]!;
}

function instrumentedRun(w: Workload, byName: [string, number][]): Profile {
  let kvmRunMs = 0, exits = 0, processRunMs = 0, resetMs = 0;
  const runOnce = Vcpu.prototype.runOnce;
  const procRun = Kernel.prototype.run;
  const reset = Machine.prototype.reset;
  Vcpu.prototype.runOnce = function (this: Vcpu) {
    const t = performance.now();
    try { return runOnce.call(this); } finally { kvmRunMs += performance.now() - t; exits++; }
  };
  Kernel.prototype.run = function (this: Kernel) {
    const t = performance.now();
    try { return procRun.call(this); } finally { processRunMs += performance.now() - t; }
  };
  Machine.prototype.reset = function (this: Machine) {
    const t = performance.now();
    try { reset.call(this); } finally { resetMs += performance.now() - t; }
  };
  const inv = w.invocation();
  let totalMs = 0, syscalls = 0;
  try {
    const t = performance.now();
    const r = run(inv.program, inv.args, { ro: inv.ro, rw: inv.rw, system: inv.system, stdout: 'capture', stderr: 'capture' });
    totalMs = performance.now() - t;
    syscalls = r.syscalls;
  } finally {
    Vcpu.prototype.runOnce = runOnce;
    Kernel.prototype.run = procRun;
    Machine.prototype.reset = reset;
    inv.cleanup?.();
  }
  return {
    workload: w.name, totalMs, resetMs, setupMs: totalMs - processRunMs, kvmRunMs, handlerMs: processRunMs - kvmRunMs,
    exits, syscalls, byName,
  };
}

export function profileTable(ps: readonly Profile[]): string {
  const us = (ms: number, n: number) => (n > 0 ? `${((ms * 1000) / n).toFixed(1)} us` : '-');
  const rows = ps.map((p) => [
    p.workload, fmtMs(p.totalMs), `${fmtMs(p.setupMs)} (reset ${fmtMs(p.resetMs)})`, fmtMs(p.kvmRunMs), fmtMs(p.handlerMs),
    String(p.exits), us(p.kvmRunMs, p.exits), us(p.handlerMs, p.exits),
    p.byName.slice(0, 5).map(([n, c]) => `${n} ${c}`).join(', '),
  ]);
  return markdownTable(
    ['workload', 'API run', 'setup+teardown', 'in KVM_RUN', 'host handlers', 'exits', 'KVM_RUN per exit', 'handler per exit', 'top traced system calls'],
    rows, [false, true, true, true, true, true, true, true, false]);
}
