// The benchmark workloads of issue 5: what runs, under which runners, and which part of the output
// must equal the native run's for a run to count as correct.
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Who runs the program. Timed by wall clock around the whole invocation. */
export type RunnerName = 'native' | 'qemu' | 'node-e' | 'node-import' | 'kvmbox-cli' | 'kvmbox-api';

/** How each runner appears in the table. */
export const RUNNER_LABELS: Record<RunnerName, string> = {
  'native': 'native (spawnSync)',
  'qemu': 'qemu-x86_64 (spawnSync)',
  'node-e': "node -e '' (spawnSync)",
  'node-import': 'node, import kvmbox, no VM (spawnSync)',
  'kvmbox-cli': 'kvmbox CLI (spawnSync node bin/kvmbox.js)',
  'kvmbox-api': 'kvmbox API (run(), in process)',
};

/** One program invocation, with the files the sandbox may see. */
export interface Invocation {
  program: string;
  args: string[];
  ro: string[];
  rw: string[];
  /**
   * Run native and qemu as kvmbox's guest user (uid/gid 1000) when the bench runs as root, so
   * that permission checks match: the guest is never root (a root-owned 0700 directory is
   * unreadable to it, as it is to uid 1000 natively).
   */
  asGuestUser?: boolean;
  /** Called after the run, untimed (e.g. remove a scratch directory). */
  cleanup?: () => void;
  /** Grant the host's system read-only (--system / system: true): dynamic programs. */
  system?: boolean;
}

/** What a run produced. */
export interface Outcome {
  ms: number;
  status: number;
  stdout: Buffer;
  stderr: Buffer;
  /** System calls the program made (kvmbox API runs only). */
  syscalls?: number;
  /** Set when the runner itself failed (spawn error, timeout). */
  error?: string;
}

export interface Workload {
  name: string;
  title: string;
  runners: RunnerName[];
  /** A fresh invocation for each run (called untimed, just before it). */
  invocation(): Invocation;
  /** The part of a run's result that must equal the native run's. */
  normalize(o: Outcome): string;
  /** If known in advance, what normalize() must give for every runner, native included. */
  expected?: () => string;
  /** Untimed runs first: 'all' runners once, or only 'native' (warms the page cache). */
  warmup: 'all' | 'native';
  /** Runs of each runner per repetition (interleaved one by one). */
  batch: number;
}

export interface Paths {
  root: string;
  busybox: string | null;
  benchOut: string;
  /** The deterministic data file and its size. */
  dataFile: string;
  dataBytes: number;
  /** Where scratch directories are made. */
  scratch: string;
}

export interface Sizes {
  quick: boolean;
  getppidCalls: number;
  sqliteRows: number;
  apiWarmBatch: number;
  findRoot: string;
  lsRoot: string;
}

export function sizesFor(quick: boolean): Sizes {
  return quick
    ? { quick, getppidCalls: 20000, sqliteRows: 5000, apiWarmBatch: 20, findRoot: '/usr/share/doc', lsRoot: '/usr/share/doc' }
    : { quick, getppidCalls: 20000, sqliteRows: 20000, apiWarmBatch: 50, findRoot: '/usr/share', lsRoot: '/usr/share/doc' };
}

/** Exit status and stdout, byte for byte. */
function exact(o: Outcome): string {
  return `exit ${o.status}\n${o.stdout.toString('latin1')}`;
}

const LS_ENTRY = /^[-dlcbps][-rwxsStT]{9}\s+(\d+)\s+\S+\s+\S+\s+(.*)$/;

/**
 * ls -l output without what legitimately differs in a sandbox: owner and group (numeric there,
 * since /etc/passwd is not granted), the 'total' lines and the '..' of the granted root (whose
 * parent is a virtual directory).
 */
function lsNormalize(o: Outcome): string {
  const lines = o.stdout.toString('latin1').split('\n');
  const kept: string[] = [];
  for (const line of lines) {
    if (/^total \d+$/.test(line)) continue;
    const m = LS_ENTRY.exec(line);
    if (m) {
      if (/ \.\.$/.test(line)) continue;
      kept.push(`${line.slice(0, 10)} ${m[1]} ${m[2]}`);
    } else {
      kept.push(line);
    }
  }
  return `exit ${o.status}\n${kept.join('\n')}`;
}

/** The digest column of sha256sum. */
function digest(o: Outcome): string {
  return `exit ${o.status}\n${o.stdout.toString('latin1').split(/\s+/)[0] ?? ''}`;
}

/** dd's record counts (its stderr); the timing line, if any, varies. */
function ddRecords(o: Outcome): string {
  const recs = o.stderr.toString('latin1').split('\n').filter((l) => /records (in|out)/.test(l));
  return `exit ${o.status}\n${recs.join('\n')}`;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** PRAGMA synchronous for the SQLite workload (see there). */
export const SQLITE_SYNC = 'off';

const ALL_RUNNERS: RunnerName[] = ['native', 'qemu', 'kvmbox-cli', 'kvmbox-api'];

export function workloads(p: Paths, s: Sizes): Workload[] {
  const out = (name: string) => join(p.benchOut, name);
  const fixed = (program: string, args: string[], ro: string[] = []) => (): Invocation => ({ program, args, ro, rw: [] });
  const list: Workload[] = [
    {
      name: 'true-cli', title: 'static true, start to exit, cold process',
      runners: ['native', 'node-e', 'node-import', 'qemu', 'kvmbox-cli'],
      invocation: fixed(out('true'), []), normalize: exact, expected: () => 'exit 0\n', warmup: 'all', batch: 1,
    },
    {
      name: 'true-api', title: `static true, warm API: ${s.apiWarmBatch} runs per repetition`,
      runners: ['native', 'kvmbox-api'],
      invocation: fixed(out('true'), []), normalize: exact, expected: () => 'exit 0\n', warmup: 'all', batch: s.apiWarmBatch,
    },
    {
      name: 'getppid', title: `${s.getppidCalls} getppid system calls`,
      runners: ALL_RUNNERS,
      invocation: fixed(out('getppid'), [String(s.getppidCalls)]), normalize: exact,
      expected: () => `exit 0\ngetppid calls=${s.getppidCalls}\n`, warmup: 'native', batch: 1,
    },
    {
      // synchronous=OFF: no fsync in any runner. kvmbox's fsync does not reach the disk yet, and
      // native fdatasync costs ~10 ms of a ~20 ms run here, so with syncs the ratio would flatter kvmbox.
      name: 'sqlite', title: `SQLite: ${s.sqliteRows} inserts in one transaction into a --rw directory, then a query (synchronous=OFF)`,
      runners: ALL_RUNNERS,
      invocation: () => {
        const dir = mkdtempSync(join(p.scratch, 'sqlite-'));
        return {
          program: out('sqlite'), args: [dir, String(s.sqliteRows), SQLITE_SYNC], ro: [], rw: [dir],
          cleanup: () => rmSync(dir, { recursive: true, force: true }),
        };
      },
      normalize: exact, warmup: 'native', batch: 1,
    },
  ];
  if (p.busybox) {
    const bb = p.busybox;
    const mib = p.dataBytes / (1024 * 1024);
    list.push(
      {
        name: 'dd', title: `busybox dd if=FILE of=/dev/null bs=64k, ${mib} MiB`,
        runners: ALL_RUNNERS,
        invocation: fixed(bb, ['dd', `if=${p.dataFile}`, 'of=/dev/null', 'bs=64k'], [p.dataFile]),
        normalize: ddRecords, warmup: 'native', batch: 1,
      },
      {
        name: 'sha256sum', title: `busybox sha256sum of a ${mib} MiB file`,
        runners: ALL_RUNNERS,
        invocation: fixed(bb, ['sha256sum', p.dataFile], [p.dataFile]),
        normalize: digest, expected: () => `exit 0\n${sha256File(p.dataFile)}`, warmup: 'native', batch: 1,
      },
      {
        name: 'find', title: `busybox find ${s.findRoot} -name '*.txt'`,
        runners: ALL_RUNNERS,
        invocation: () => ({ ...fixed(bb, ['find', s.findRoot, '-name', '*.txt'], [s.findRoot])(), asGuestUser: true }),
        normalize: exact, warmup: 'native', batch: 1,
      },
      {
        name: 'ls-laR', title: `busybox ls -laR ${s.lsRoot}`,
        runners: ALL_RUNNERS,
        // ls -l reads /etc/passwd and /etc/group (owner names) and /etc/localtime (dates), as the
        // native run does; without them busybox and glibc retry the lookup for every file.
        invocation: fixed(bb, ['ls', '-laR', s.lsRoot], [s.lsRoot, ...['/etc/passwd', '/etc/group', '/etc/localtime'].filter((f) => existsSync(f))]),
        normalize: lsNormalize, warmup: 'native', batch: 1,
      },
    );
  }
  return list;
}

/** The first line where two normalized outputs differ, for the mismatch report. */
export function firstDifference(expected: string, got: string): string {
  const a = expected.split('\n');
  const b = got.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      const clip = (s: string | undefined) => (s === undefined ? '<end>' : JSON.stringify(s.length > 120 ? s.slice(0, 120) + '...' : s));
      return `line ${i + 1}: expected ${clip(a[i])}, got ${clip(b[i])} (${a.length} vs ${b.length} lines)`;
    }
  }
  return 'identical';
}
