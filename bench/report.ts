// Statistics, the printed tables and the JSON written for tracking.
import type { MemoryResult } from './memory.js';
import type { RunnerName } from './workloads.js';

export interface RunnerStats {
  runner: RunnerName;
  label: string;
  samplesMs: number[];
  minMs: number;
  medianMs: number;
  /** median / native median of the same workload (null without a native run). */
  ratio: number | null;
  /** Median system calls per run (kvmbox API only). */
  syscalls: number | null;
  /** Runs whose normalized output differed from the reference, and runs that failed outright. */
  mismatches: number;
  failures: number;
  /** The first problem seen, for the report. */
  problem: string | null;
}

export interface WorkloadResult {
  name: string;
  title: string;
  /** The command of the first timed run (scratch paths vary from run to run). */
  command: { program: string; args: string[]; ro: string[]; rw: string[] };
  runners: RunnerStats[];
}

export interface Target {
  what: string;
  limit: string;
  measured: string;
  pass: boolean | null;
}

/**
 * A goal on the kvmbox API's median time over native's for one workload (ratio <= maxRatio),
 * with native's and qemu-user's numbers beside it (detail formats a median). In the emulated
 * lane (KVMBOX_BENCH_IN_LANE=1) it is printed but not judged. Null when the workload did not run.
 */
export function ratioGoal(results: readonly WorkloadResult[], workload: string, what: string, limit: string, maxRatio: number,
  detail: (ms: number) => string): Target | null {
  const lane = process.env.KVMBOX_BENCH_IN_LANE === '1';
  const w = results.find((r) => r.name === workload);
  const k = w?.runners.find((r) => r.runner === 'kvmbox-api');
  if (!w || !k) return null;
  const nat = w.runners.find((r) => r.runner === 'native');
  const q = w.runners.find((r) => r.runner === 'qemu');
  const correct = k.failures === 0 && k.mismatches === 0;
  const parts = [
    `kvmbox ${fmtRatio(k.ratio)} (${detail(k.medianMs)})`,
    nat ? `native ${detail(nat.medianMs)}` : '',
    q ? `qemu-user ${fmtRatio(q.ratio)} (${detail(q.medianMs)})` : '',
    correct ? '' : 'WRONG OUTPUT',
  ].filter(Boolean);
  return {
    what, limit, measured: parts.join(', ') + (lane ? ' (emulated lane: not judged)' : ''),
    pass: lane ? null : correct && k.ratio !== null && k.ratio <= maxRatio,
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function min(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : Math.min(...xs);
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(0)} ms`;
}

export function fmtRatio(r: number | null): string {
  if (r === null || !Number.isFinite(r)) return '-';
  return r >= 100 ? `${r.toFixed(0)}x` : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

function check(s: RunnerStats): string {
  const n = s.samplesMs.length;
  if (s.failures > 0) return `FAILED ${s.failures}/${n}`;
  if (s.mismatches > 0) return `MISMATCH ${s.mismatches}/${n}`;
  return 'ok';
}

/** A Markdown table with padded columns (readable as plain text too). */
export function markdownTable(header: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) => (rightAlign[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!));
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (rightAlign[i] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** One row per (workload, runner). */
export function resultsTable(results: readonly WorkloadResult[]): string {
  const header = ['workload', 'runner', 'n', 'min', 'median', 'x native', 'syscalls', 'check'];
  const rows: string[][] = [];
  for (const w of results) {
    for (const s of w.runners) {
      rows.push([w.name, s.label, String(s.samplesMs.length), fmtMs(s.minMs), fmtMs(s.medianMs), fmtRatio(s.ratio),
        s.syscalls === null ? '' : String(s.syscalls), check(s)]);
    }
  }
  return markdownTable(header, rows, [false, false, true, true, true, true, true, false]);
}

export function memoryTable(results: readonly MemoryResult[]): string {
  const header = ['program', 'sandboxes', 'guest MiB', 'RSS before', 'RSS after', 'RSS per sandbox', 'guest touched per sandbox', 'overhead per sandbox', 'kernel memory per sandbox (system-wide)', 'exit'];
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  const rows = results.map((m) => [
    m.program, String(m.sandboxes), String(m.guestMemoryMiB), mib(m.before.rssKiB), mib(m.after[m.after.length - 1]?.rssKiB ?? NaN),
    `${m.rssPerSandboxMiB.toFixed(1)} MiB`, `${m.touchedPerSandboxMiB.toFixed(1)} MiB`, `${m.overheadPerSandboxMiB.toFixed(1)} MiB`,
    `${m.kernelPerSandboxMiB.toFixed(1)} MiB`, m.exitStatuses.join(','),
  ]);
  return markdownTable(header, rows, [false, true, true, true, true, true, true, true, true, false]);
}

export function targetsTable(targets: readonly Target[]): string {
  const rows = targets.map((t) => [t.what, t.limit, t.measured, t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'FAIL']);
  return markdownTable(['target (issue 5; 14, 15, 16 where named)', 'limit', 'measured', ''], rows, [false, false, false, false]);
}

function stat(results: readonly WorkloadResult[], workload: string, runner: RunnerName): RunnerStats | undefined {
  return results.find((w) => w.name === workload)?.runners.find((r) => r.runner === runner);
}

/**
 * The issue's targets, judged on the in-process API time (which, like the peers' numbers, leaves
 * out Node's own start-up); a run with a wrong output cannot pass.
 */
export function evaluateTargets(results: readonly WorkloadResult[], memory: readonly MemoryResult[]): Target[] {
  const targets: Target[] = [];
  const correct = (s: RunnerStats) => s.failures === 0 && s.mismatches === 0;
  const ratioTarget = (workload: string, limit: number | null, belowQemu: boolean) => {
    const k = stat(results, workload, 'kvmbox-api');
    if (!k) return;
    const q = stat(results, workload, 'qemu');
    const parts: string[] = [];
    const limits: string[] = [];
    let pass = correct(k) && k.ratio !== null;
    if (limit !== null) {
      limits.push(`<= ${limit}x native`);
      pass &&= (k.ratio ?? Infinity) <= limit;
    }
    if (belowQemu) {
      limits.push('< qemu-user ratio');
      if (q && q.ratio !== null) pass &&= (k.ratio ?? Infinity) < q.ratio;
      parts.push(`qemu ${fmtRatio(q?.ratio ?? null)}`);
    }
    targets.push({
      what: `${workload} (kvmbox API)`, limit: limits.join(' and '),
      measured: [`${fmtRatio(k.ratio)}`, ...parts, correct(k) ? '' : 'WRONG OUTPUT'].filter(Boolean).join(', '), pass,
    });
  };
  ratioTarget('sha256sum', 1.2, false);
  ratioTarget('dd', 2, false);
  ratioTarget('find', 2, true);
  ratioTarget('ls-laR', 2, true);
  ratioTarget('getppid', null, true);
  const warm = stat(results, 'true-api', 'kvmbox-api');
  if (warm) {
    // In the software-emulated lane (scripts/bench.sh) a time in ms is QEMU's, not the hardware's.
    const lane = process.env.KVMBOX_BENCH_IN_LANE === '1';
    targets.push({
      what: 'warm API run of static true', limit: '<= 1 ms',
      measured: fmtMs(warm.medianMs) + (lane ? ' (in the emulated lane: checked only on a real KVM host)' : ''),
      pass: lane ? null : correct(warm) && warm.medianMs <= 1,
    });
  }
  const cli = stat(results, 'true-cli', 'kvmbox-cli');
  const node = stat(results, 'true-cli', 'node-e');
  const imp = stat(results, 'true-cli', 'node-import');
  if (cli && node) {
    const parts = [`${fmtMs(cli.medianMs)} vs node -e '' ${fmtMs(node.medianMs)}: kvmbox adds ${fmtMs(cli.medianMs - node.medianMs)}`];
    if (imp) parts.push(`of which importing kvmbox ${fmtMs(imp.medianMs - node.medianMs)}`);
    targets.push({ what: 'cold CLI run of static true', limit: "report next to node -e ''", measured: parts.join(', '), pass: null });
  }
  for (const m of memory) {
    targets.push({
      what: `host memory per extra sandbox (${m.program})`, limit: '<= 16 MiB + guest touched',
      measured: `${m.rssPerSandboxMiB.toFixed(1)} MiB = ${m.touchedPerSandboxMiB.toFixed(1)} touched + ${m.overheadPerSandboxMiB.toFixed(1)}`,
      pass: m.overheadPerSandboxMiB <= 16 && m.exitStatuses.every((s) => s === 0),
    });
  }
  return targets;
}
