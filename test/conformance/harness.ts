// Runs one conformance case natively and in kvmbox and compares the two runs.
import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { runSync as run } from '../../src/index.js';
import { ENV, type Case } from './cases.js';
import { asRoot, GUEST_ID, resetRw, snapshot, type Fixture, type SnapEntry } from './fixture.js';

export interface RunOutput {
  exitStatus: number;
  /** Every invocation's exit status (cases with `then`). */
  statuses?: number[];
  stdout: Buffer;
  stderr: Buffer;
  /** The rw tree after the run (write cases). */
  tree?: Record<string, SnapEntry>;
}

export interface Verdict {
  name: string;
  stdout: boolean;
  /** null when the case does not compare stderr. */
  stderr: boolean | null;
  exit: boolean;
  /** null when the case does not write. */
  tree: boolean | null;
  /** The read-only fixture is unchanged by the kvmbox run. */
  roIntact: boolean;
  pass: boolean;
  native: RunOutput;
  guest: RunOutput;
  /** Human-readable differences. */
  diffs: string[];
}

const UMASK = 0o022;

function expand(s: string, f: Fixture): string {
  return s.replaceAll('{ro}', f.ro).replaceAll('{rw}', f.rw).replaceAll('{base}', f.base);
}

function cwdOf(c: Case, f: Fixture): string {
  return join(f.base, c.cwd ?? 'ro');
}

/** Run every invocation of the case; outputs appended, exit statuses listed. */
function runAll(c: Case, one: (args: string[]) => RunOutput): RunOutput {
  const outs = [c.args, ...(c.then ?? [])].map(one);
  return {
    exitStatus: outs[outs.length - 1]!.exitStatus,
    statuses: outs.map((o) => o.exitStatus),
    stdout: Buffer.concat(outs.map((o) => o.stdout)),
    stderr: Buffer.concat(outs.map((o) => o.stderr)),
  };
}

export function runNative(busybox: string, c: Case, f: Fixture): RunOutput {
  return runAll(c, (args) => {
    const old = process.umask(UMASK);
    try {
      const r = spawnSync(busybox, args.map((a) => expand(a, f)), {
        cwd: cwdOf(c, f),
        env: ENV,
        input: c.stdin ?? '',
        maxBuffer: 64 << 20,
        timeout: 30_000,
        ...(asRoot ? { uid: GUEST_ID, gid: GUEST_ID } : {}),
      });
      if (r.error) throw r.error;
      const exitStatus = r.status ?? 128 + (r.signal ? constants.signals[r.signal] : 0);
      return { exitStatus, stdout: r.stdout, stderr: r.stderr };
    } finally {
      process.umask(old);
    }
  });
}

export function runGuest(busybox: string, c: Case, f: Fixture): RunOutput {
  return runAll(c, (args) => {
    const r = run(busybox, args.map((a) => expand(a, f)), {
      ro: [f.ro, ...(c.extraRo ?? [])],
      rw: [f.rw],
      cwd: cwdOf(c, f),
      env: ENV,
      stdin: c.stdin === undefined ? '' : c.stdin,
      stdout: 'capture',
      stderr: 'capture',
      timeoutSeconds: 60,
    });
    return { exitStatus: r.exitStatus, stdout: r.stdout, stderr: r.stderr };
  });
}

function show(b: Buffer, max = 400): string {
  const s = b.toString('latin1');
  return JSON.stringify(s.length > max ? s.slice(0, max) + `... (${b.length} bytes)` : s);
}

/** The first line where two outputs differ, for messages. */
function firstDifference(a: Buffer, b: Buffer): string {
  const la = a.toString('latin1').split('\n');
  const lb = b.toString('latin1').split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}: native ${JSON.stringify(la[i] ?? '<end>')} vs kvmbox ${JSON.stringify(lb[i] ?? '<end>')}`;
  }
  return `lengths ${a.length} vs ${b.length}`;
}

function treeDiff(a: Record<string, SnapEntry>, b: Record<string, SnapEntry>): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!isDeepStrictEqual(a[k], b[k])) out.push(`${k}: native ${JSON.stringify(a[k] ?? null)} vs kvmbox ${JSON.stringify(b[k] ?? null)}`);
  }
  return out;
}

export function runCase(busybox: string, c: Case, f: Fixture): Verdict {
  const roBefore = snapshot(f.ro, { mtimes: true });
  const mtimes = c.compareMtime === true;
  const seconds = () => Math.floor(Date.now() / 1000);
  const timed = (fn: () => RunOutput): RunOutput => {
    if (c.rw) resetRw(f, c.rw);
    const start = seconds();
    const out = fn();
    if (c.rw) out.tree = snapshot(f.rw, { mtimes, window: [start, seconds()] });
    return out;
  };
  const native = timed(() => runNative(busybox, c, f));
  const guest = timed(() => runGuest(busybox, c, f));
  const roIntact = isDeepStrictEqual(roBefore, snapshot(f.ro, { mtimes: true }));

  const norm = (b: Buffer) => (c.normalize ? Buffer.from(c.normalize.fn(b.toString('latin1')), 'latin1') : b);
  const diffs: string[] = [];
  const stdout = norm(native.stdout).equals(norm(guest.stdout));
  if (!stdout) diffs.push(`stdout differs: ${firstDifference(norm(native.stdout), norm(guest.stdout))}`);
  const stderr = c.stderr ? null : native.stderr.equals(guest.stderr);
  if (stderr === false) diffs.push(`stderr differs: native ${show(native.stderr)} vs kvmbox ${show(guest.stderr)}`);
  const exit = isDeepStrictEqual(native.statuses, guest.statuses);
  if (!exit) diffs.push(`exit status: native ${native.statuses!.join(',')} vs kvmbox ${guest.statuses!.join(',')}`);
  let tree: boolean | null = null;
  if (c.rw) {
    const d = treeDiff(native.tree!, guest.tree!);
    tree = d.length === 0;
    if (!tree) diffs.push(`trees differ:\n  ${d.join('\n  ')}`);
  }
  if (!roIntact) diffs.push('the read-only fixture changed during the run');
  return {
    name: c.name, stdout, stderr, exit, tree, roIntact,
    pass: stdout && stderr !== false && exit && tree !== false && roIntact,
    native, guest, diffs,
  };
}

/** A fixed-width pass table. */
export function passTable(verdicts: readonly Verdict[]): string {
  const mark = (v: boolean | null) => (v === null ? '-' : v ? 'ok' : 'FAIL');
  const w = Math.max(4, ...verdicts.map((v) => v.name.length));
  const lines = [
    `${'case'.padEnd(w)}  stdout  stderr  exit  tree  result`,
    `${'-'.repeat(w)}  ------  ------  ----  ----  ------`,
    ...verdicts.map((v) =>
      `${v.name.padEnd(w)}  ${mark(v.stdout).padEnd(6)}  ${mark(v.stderr).padEnd(6)}  ${mark(v.exit).padEnd(4)}  ${mark(v.tree).padEnd(4)}  ${v.pass ? 'PASS' : 'FAIL'}`),
  ];
  const passed = verdicts.filter((v) => v.pass).length;
  lines.push(`conformance: ${passed}/${verdicts.length} cases pass`);
  return lines.join('\n');
}

export { show };
