// npm run bench: the workloads of issue 5, run natively, under qemu-user and in kvmbox in the same
// run, interleaved (native, qemu, kvmbox CLI, kvmbox API, native, ...), so that a machine that
// gets busier or quieter half-way affects every runner alike. Prints min, median and the ratio of
// medians to native; writes every sample to bench/results/latest.json and a timestamped copy.
//
//   node build/bench/bench.js [--reps N] [--quick] [--only NAME[,NAME...]] [--profile]
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync as run } from '../src/api/run.js';
import { concurrencyTable, measureConcurrency, type ConcurrencyResult } from './concurrency.js';
import { measureInChild, type MemoryResult } from './memory.js';
import { PROCESS_WORKLOAD_NAMES, processTargets, processWorkloads } from './processes.js';
import { DYNAMIC_WORKLOAD_NAMES, dynamicTargets, dynamicWorkloads } from './dynamic.js';
import { THREAD_WORKLOAD_NAMES, threadTargets, threadWorkloads } from './threads.js';
import { profileTable, profileWorkload } from './profile.js';
import {
  evaluateTargets, fmtMs, fmtRatio, median, memoryTable, min, resultsTable, targetsTable,
  type RunnerStats, type WorkloadResult,
} from './report.js';
import { cliArgs, runOnce, type RunnerEnv } from './runners.js';
import {
  firstDifference, RUNNER_LABELS, sizesFor, SQLITE_SYNC, workloads, type Outcome, type Paths, type RunnerName, type Workload,
} from './workloads.js';

/** The repository root (this file runs from build/bench/). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MIB = 1024 * 1024;
const MEMORY_SANDBOXES = 4;
const WORKLOAD_NAMES = ['true-cli', 'true-api', 'getppid', 'sqlite', 'dd', 'sha256sum', 'find', 'ls-laR', ...DYNAMIC_WORKLOAD_NAMES, ...PROCESS_WORKLOAD_NAMES, ...THREAD_WORKLOAD_NAMES, 'memory', 'concurrency'];

const USAGE = `usage: node build/bench/bench.js [--reps N] [--quick] [--only NAME[,NAME...]] [--profile]
  --reps N     timed repetitions of each workload and runner (default 5; --quick: 2)
  --quick      2 repetitions and smaller inputs (16 MiB file, find over /usr/share/doc, 5000 rows)
  --only LIST  run only these workloads (comma-separated): true-cli, true-api, getppid, sqlite, dd,
               sha256sum, find, ls-laR, dyn-true-cli, dyn-true-api, python-pass, python-compute
               (dynamic programs: bench/dynamic.ts), forkloop, pipeline, script (processes: bench/processes.ts),
               threads-1, threads-2, pingpong, futex-wake (threads: bench/threads.ts),
               memory, concurrency (await run(), sandboxes in parallel, event-loop delay, the cost
               of handing an exit between threads)
  --profile    after the timed runs, one traced and three instrumented kvmbox API runs per
               workload: system calls by name, exits, time in KVM_RUN vs in the host's handlers
  --no-save    do not write bench/results/*.json`;

interface Options { reps: number; quick: boolean; only: Set<string> | null; profile: boolean; save: boolean }

function parseArgs(argv: string[]): Options {
  const o: Options = { reps: 0, quick: false, only: null, profile: false, save: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--reps') {
      o.reps = Number(argv[++i]);
      if (!Number.isInteger(o.reps) || o.reps < 1) usage(`--reps needs a positive integer, not '${argv[i]}'`);
    } else if (a === '--quick') o.quick = true;
    else if (a === '--only') {
      const v = argv[++i];
      if (!v) usage('--only needs a list of workload names');
      o.only = new Set(v.split(',').map((s) => s.trim()).filter(Boolean));
      for (const n of o.only) if (!WORKLOAD_NAMES.includes(n)) usage(`unknown workload '${n}'`);
    } else if (a === '--profile') o.profile = true;
    else if (a === '--no-save') o.save = false;
    else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    else usage(`unknown option '${a}'`);
  }
  if (o.reps === 0) o.reps = o.quick ? 2 : 5;
  return o;
}

function usage(msg: string): never {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

function sh(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 ? r.stdout.trim() : null;
}

function which(cmd: string): string | null {
  return sh('sh', ['-c', `command -v ${cmd}`]);
}

/** Build bench/out/*; returns the programs that exist afterwards. */
function buildPrograms(): Set<string> {
  const r = spawnSync(process.execPath, [join(ROOT, 'bench/build-programs.mjs'), '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = (r.stdout ?? '').trim().split('\n');
  const last = lines.pop() ?? '';
  for (const l of lines) if (l) console.log(l);
  if (r.status !== 0) {
    console.error('bench: building the bench programs failed (see above)');
    process.exit(1);
  }
  return new Set((JSON.parse(last) as { built: string[] }).built);
}

/** bytes of AES-128-CTR keystream with a fixed key: the same incompressible file on every machine. */
function writeDataFile(path: string, bytes: number): void {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 0x6b), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(4 * MIB);
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes; done += zeros.length) writeSync(fd, cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - done))));
  } finally {
    closeSync(fd);
  }
}

/**
 * The temporary directory for the data file and SQLite databases: kvmbox-bench-PID. A bench
 * stopped by Ctrl-C leaves its directory behind (everything here is synchronous, so no signal
 * handler could run before the end); the next bench removes those whose process is gone.
 */
function makeScratch(): string {
  for (const name of readdirSync(tmpdir())) {
    const pid = /^kvmbox-bench-(\d+)$/.exec(name)?.[1];
    if (!pid || Number(pid) === process.pid) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
  const dir = join(tmpdir(), `kvmbox-bench-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

function progress(msg: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${msg}`);
}

/** The checked outcome: null when it matches the reference, else what went wrong. */
function judge(o: Outcome, reference: string, w: Workload): { failed: boolean; problem: string } | null {
  if (o.error) return { failed: true, problem: o.error };
  const got = w.normalize(o);
  if (got === reference) return null;
  const stderr = o.stderr.toString('utf8').trim().split('\n').slice(-2).join(' / ');
  if (!reference.startsWith(`exit ${o.status}\n`)) return { failed: true, problem: `exit ${o.status}${stderr ? `: ${stderr}` : ''}` };
  return { failed: false, problem: firstDifference(reference, got) };
}

function runWorkload(w: Workload, reps: number, env: RunnerEnv): WorkloadResult {
  const samples = new Map<RunnerName, Outcome[]>(w.runners.map((r) => [r, []]));
  const problems = new Map<RunnerName, { mismatches: number; failures: number; first: string | null }>(
    w.runners.map((r) => [r, { mismatches: 0, failures: 0, first: null }]));
  const once = (r: RunnerName): Outcome => {
    const inv = w.invocation();
    try {
      return runOnce(r, inv, env);
    } finally {
      inv.cleanup?.();
    }
  };

  // Warm-up (untimed): the native run also gives the reference output when none is known in advance.
  const nativeRef = once('native');
  let reference = w.expected ? w.expected() : w.normalize(nativeRef);
  if (!w.expected && (nativeRef.error || nativeRef.status !== 0)) {
    console.error(`bench: ${w.name}: the native run failed (${nativeRef.error ?? `exit ${nativeRef.status}`}): ${nativeRef.stderr.toString().trim()}`);
    reference = w.normalize(nativeRef);
  }
  if (w.warmup === 'all') for (const r of w.runners) if (r !== 'native') once(r);

  const first = w.invocation();
  const command = { program: first.program, args: first.args, ro: first.ro, rw: first.rw };
  first.cleanup?.();

  // Runners take turns per repetition; a batch (true-api) runs back to back within its turn. A
  // native run in between would fork this process before every API run, and on kvm_pvm a fork
  // makes KVM drop the guest's translations (~0.5 ms of first touches per run, measured): that
  // measures forking, not a warm API run. docs/performance.md has both numbers.
  for (let rep = 0; rep < reps; rep++) {
    for (const r of w.runners) {
      for (let b = 0; b < w.batch; b++) {
        progress(`${w.name}: repetition ${rep + 1}/${reps}, ${r}`);
        const o = once(r);
        samples.get(r)!.push(o);
        const bad = judge(o, reference, w);
        if (bad) {
          const p = problems.get(r)!;
          if (bad.failed) p.failures++;
          else p.mismatches++;
          p.first ??= bad.problem;
        }
      }
    }
  }
  progress('');

  const nativeMedian = median(samples.get('native')!.map((o) => o.ms));
  const runners: RunnerStats[] = w.runners.map((r) => {
    const os = samples.get(r)!;
    const ms = os.map((o) => o.ms);
    const sc = os.map((o) => o.syscalls).filter((n): n is number => n !== undefined);
    const p = problems.get(r)!;
    return {
      runner: r, label: RUNNER_LABELS[r], samplesMs: ms, minMs: min(ms), medianMs: median(ms),
      ratio: Number.isFinite(nativeMedian) ? median(ms) / nativeMedian : null,
      syscalls: sc.length ? median(sc) : null, mismatches: p.mismatches, failures: p.failures, problem: p.first,
    };
  });
  return { name: w.name, title: w.title, command, runners };
}

function printWorkload(r: WorkloadResult): void {
  const cells = r.runners.map((s) => `${s.runner} ${fmtMs(s.medianMs)} (${fmtRatio(s.ratio)})${s.failures ? ' FAILED' : s.mismatches ? ' MISMATCH' : ''}`);
  console.log(`${r.name.padEnd(10)} ${cells.join(', ')}`);
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const started = new Date();
  const t0 = performance.now();
  const built = buildPrograms();
  const busyboxPath = join(ROOT, 'test/programs/out/busybox');
  const busybox = existsSync(busyboxPath) ? busyboxPath : null;
  if (!busybox) console.log('bench: test/programs/out/busybox is missing (apt-get install busybox-static, then node scripts/build-test-programs.mjs); busybox workloads skipped');
  const qemu = which('qemu-x86_64');
  if (!qemu) console.log('bench: qemu-x86_64 not found (apt-get install qemu-user); qemu runs skipped');

  const sizes = sizesFor(opts.quick);
  const scratch = makeScratch();
  const cleanup = () => rmSync(scratch, { recursive: true, force: true });
  try {
    const paths: Paths = {
      root: ROOT, busybox, benchOut: join(ROOT, 'bench/out'), scratch,
      dataFile: join(scratch, 'data.bin'), dataBytes: (opts.quick ? 16 : 64) * MIB,
    };
    const selected = (n: string) => opts.only === null || opts.only.has(n);
    let list = [...workloads(paths, sizes), ...dynamicWorkloads(opts.quick, sizes.apiWarmBatch), ...processWorkloads(paths, opts.quick), ...threadWorkloads(paths, opts.quick)].filter((w) => selected(w.name));
    const needs: Record<string, string> = { 'true-cli': 'true', 'true-api': 'true', getppid: 'getppid', sqlite: 'sqlite', forkloop: 'forkloop', 'threads-1': 'threadbench', 'threads-2': 'threadbench', pingpong: 'threadbench', 'futex-wake': 'threadbench' };
    list = list.filter((w) => !needs[w.name] || built.has(needs[w.name]!));
    if (!qemu) for (const w of list) w.runners = w.runners.filter((r) => r !== 'qemu');
    if (list.some((w) => w.name === 'dd' || w.name === 'sha256sum')) writeDataFile(paths.dataFile, paths.dataBytes);

    const env: RunnerEnv = { root: ROOT, qemu };
    const loadBefore = loadavg();
    const commit = sh('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown';
    const dirty = (sh('git', ['status', '--porcelain', '--', 'src', 'kernel', 'abi']) ?? '') !== '';
    console.log(`kvmbox bench: ${started.toISOString()}, commit ${commit}${dirty ? ' (src/kernel modified)' : ''}, node ${process.version}, ` +
      `linux ${release()}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, ` +
      `${opts.reps} repetitions${opts.quick ? ' (quick)' : ''}`);
    if (loadBefore[0]! > cpus().length / 2) console.log(`bench: the machine is busy (load ${loadBefore[0]!.toFixed(2)} on ${cpus().length} CPUs): expect noisy numbers`);

    // The first run() in a process creates the KVM handle, reads the kernel image and probes the
    // syscall path; do that before anything is timed.
    const warm = run(join(paths.benchOut, 'true'), [], { stdout: 'capture', stderr: 'capture' });
    if (warm.exitStatus !== 0) throw new Error(`kvmbox cannot run bench/out/true: ${warm.stderr.toString()}`);

    const results: WorkloadResult[] = [];
    for (const w of list) {
      const r = runWorkload(w, opts.reps, env);
      results.push(r);
      printWorkload(r);
    }

    const memory: MemoryResult[] = [];
    if (selected('memory')) {
      memory.push(measureInChild({ label: 'true', program: join(paths.benchOut, 'true'), args: [], sandboxes: MEMORY_SANDBOXES }));
      if (built.has('sqlite')) {
        memory.push(measureInChild({
          label: `sqlite ${sizes.sqliteRows} rows`, program: join(paths.benchOut, 'sqlite'), args: [String(sizes.sqliteRows), SQLITE_SYNC],
          scratchDir: scratch, sandboxes: MEMORY_SANDBOXES,
        }));
      }
    }

    let concurrency: ConcurrencyResult | null = null;
    if (selected('concurrency') && built.has('spin')) {
      progress('concurrency');
      concurrency = await measureConcurrency({
        truePath: join(paths.benchOut, 'true'), spinPath: join(paths.benchOut, 'spin'),
        spinRounds: opts.quick ? 20 : 100, reps: opts.reps, batch: sizes.apiWarmBatch,
      });
      progress('');
    }

    const profiles = opts.profile ? list.filter((w) => w.runners.includes('kvmbox-api')).map(profileWorkload) : [];
    const targets = [...evaluateTargets(results, memory), ...dynamicTargets(results, sizes.apiWarmBatch), ...processTargets(results, opts.quick), ...threadTargets(results, opts.quick)];
    const loadAfter = loadavg();
    const totalSeconds = (performance.now() - t0) / 1000;

    console.log(`\n${resultsTable(results)}`);
    const problems = results.flatMap((w) => w.runners.filter((s) => s.problem).map((s) => `  ${w.name} / ${s.runner}: ${s.problem}`));
    if (problems.length) console.log(`\nOutput checks (against the native run):\n${problems.join('\n')}`);
    if (memory.length) console.log(`\n${memoryTable(memory)}`);
    if (concurrency) console.log(`\n${concurrencyTable(concurrency)}`);
    console.log(`\n${targetsTable(targets)}`);
    if (profiles.length) console.log(`\nProfile, the median of 3 instrumented kvmbox API runs per workload (--profile):\n${profileTable(profiles)}`);
    console.log(`\nx native = median / native median. 'kvmbox CLI' includes Node's start-up (see node -e ''); ` +
      `'kvmbox API' is run() in this process, pool warm. Targets use the API time.`);
    console.log(`load average ${loadBefore[0]!.toFixed(2)} -> ${loadAfter[0]!.toFixed(2)}; ${totalSeconds.toFixed(0)} s in all`);

    if (opts.save) {
      const report = {
        schema: 1,
        meta: {
          date: started.toISOString(), commit, dirty, node: process.version, kernel: release(),
          cpu: cpus()[0]?.model ?? null, cpus: cpus().length, loadBefore, loadAfter, reps: opts.reps, quick: opts.quick,
          only: opts.only ? [...opts.only] : null, seconds: totalSeconds, qemu, busybox,
          cliExample: cliArgs(ROOT, { program: join(paths.benchOut, 'true'), args: [], ro: [], rw: [] }).join(' '),
        },
        workloads: results, memory, targets, profiles, concurrency,
      };
      const dir = join(ROOT, 'bench/results');
      mkdirSync(dir, { recursive: true });
      // Microsecond resolution is plenty; it keeps the file small.
      const round = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v);
      const json = JSON.stringify(report, round, 1) + '\n';
      const stamp = started.toISOString().replace(/[:.]/g, '-').replace(/-\d\d\dZ$/, 'Z');
      writeFileSync(join(dir, 'latest.json'), json);
      writeFileSync(join(dir, `${stamp}.json`), json);
      console.log(`wrote bench/results/latest.json and bench/results/${stamp}.json`);
    }
  } finally {
    cleanup();
  }
}

await main();
