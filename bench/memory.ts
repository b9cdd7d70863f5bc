// Host memory per additional concurrent sandbox. run() is synchronous and hands its machine back
// to the pool, so K sandboxes cannot be alive at once through it; instead this takes K machines
// from the pool layer (src/machine/pool.ts) and runs a program in each through Kernel, the same
// steps as run(), but keeps every machine (with the guest pages its program touched) until all K
// have run. The RSS growth divided by K is the cost of one more sandbox; the guest memory each
// touched (resident pages of its memslot) is reported next to it, since the budget is
// 16 MiB plus that. It runs in a child process of its own (node build/bench/memory.js JOB), so
// that garbage left by earlier workloads does not blur the RSS readings.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Vfs } from '../src/fs/vfs.js';
import { Kernel } from '../src/linux/kernel.js';
import type { Machine } from '../src/machine/machine.js';
import { acquireMachine, drainMachinePool } from '../src/machine/pool.js';
import { DEFAULT_MEMORY_MIB, run } from '../src/api/run.js';
import type { Invocation } from './workloads.js';

const MIB = 1024 * 1024;

export interface RssSnapshot { rssKiB: number; anonKiB: number; fileKiB: number; shmemKiB: number }

export interface MemoryResult {
  program: string;
  sandboxes: number;
  guestMemoryMiB: number;
  before: RssSnapshot;
  /** RSS after each additional sandbox had run (index k: k+1 sandboxes alive). */
  after: RssSnapshot[];
  /** Per sandbox, MiB. */
  rssPerSandboxMiB: number;
  touchedPerSandboxMiB: number;
  overheadPerSandboxMiB: number;
  /** Growth of system-wide unreclaimable slab + page tables + kernel stacks per sandbox (noisy). */
  kernelPerSandboxMiB: number;
  exitStatuses: number[];
}

export function rss(): RssSnapshot {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), anonKiB: kib('RssAnon'), fileKiB: kib('RssFile'), shmemKiB: kib('RssShmem') };
}

let gcFn: (() => void) | undefined;
function gc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

/**
 * Bytes of the machine's guest memory that the host holds (mincore over its mapping; these are
 * private pages, the zero page is never mapped there: checked against /proc/self/pagemap).
 * (/proc/self/smaps cannot tell: the kernel merges the mapping with its anonymous neighbours.)
 */
function guestResidentBytes(m: Machine): number {
  return m.memory.residentBytes();
}

/** System-wide kernel memory that KVM may use per VM (page tables, slab); other processes add noise. */
export function kernelMemoryKiB(): number {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(info)?.[1] ?? 0);
  return kib('SUnreclaim') + kib('PageTables') + kib('SecPageTables') + kib('KernelStack');
}

interface Held { machine: Machine; vfs: Vfs; inv: Invocation }

/** K machines alive at once, each after one run of inv(). */
export function measureSandboxMemory(label: string, inv: () => Invocation, sandboxes: number): MemoryResult {
  const memoryBytes = DEFAULT_MEMORY_MIB * MIB;
  drainMachinePool();
  gc();
  const before = rss();
  const kernelBefore = kernelMemoryKiB();
  const after: RssSnapshot[] = [];
  const held: Held[] = [];
  const exitStatuses: number[] = [];
  let touched = 0;
  let kernelAfter = kernelBefore;
  try {
    for (let k = 0; k < sandboxes; k++) {
      const i = inv();
      const vfs = new Vfs([...i.ro.map((path) => ({ path, writable: false })), ...i.rw.map((path) => ({ path, writable: true }))]);
      let machine: Machine;
      try {
        machine = acquireMachine({ memoryBytes, timer: false });
      } catch (e) {
        vfs.close();
        throw e;
      }
      held.push({ machine, vfs, inv: i });
      const discard = { write: () => {} };
      const kernel = new Kernel(machine, {
        vfs, argv: [i.program, ...i.args], envp: ['PATH=/usr/bin:/bin', 'HOME=/'], exePath: i.program, cwd: '/',
        stdin: { read: () => 0 }, stdout: discard, stderr: discard,
      });
      kernel.exec(readFileSync(i.program));
      const reason = kernel.run();
      kernel.close();
      exitStatuses.push(reason.kind === 'exited' ? reason.status : -1);
      touched += guestResidentBytes(machine);
      gc();
      after.push(rss());
    }
    kernelAfter = kernelMemoryKiB();
  } finally {
    for (const h of held) {
      h.machine.close();
      h.vfs.close();
      h.inv.cleanup?.();
    }
  }
  const last = after[after.length - 1] ?? before;
  const rssPerSandboxMiB = (last.rssKiB - before.rssKiB) / 1024 / sandboxes;
  const touchedPerSandboxMiB = touched / MIB / sandboxes;
  return {
    program: label, sandboxes, guestMemoryMiB: DEFAULT_MEMORY_MIB, before, after,
    rssPerSandboxMiB, touchedPerSandboxMiB, overheadPerSandboxMiB: rssPerSandboxMiB - touchedPerSandboxMiB,
    kernelPerSandboxMiB: (kernelAfter - kernelBefore) / 1024 / sandboxes, exitStatuses,
  };
}

/** What the child measures: K sandboxes each running program; with scratchDir, each gets a fresh --rw directory as argv[1]. */
export interface MemoryJob {
  label: string;
  program: string;
  args: string[];
  scratchDir?: string;
  sandboxes: number;
}

function jobInvocation(job: MemoryJob): () => Invocation {
  return () => {
    if (!job.scratchDir) return { program: job.program, args: job.args, ro: [], rw: [] };
    const dir = mkdtempSync(join(job.scratchDir, 'mem-'));
    return { program: job.program, args: [dir, ...job.args], ro: [], rw: [dir], cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  };
}

/** Run the job in a fresh Node process and return its result. */
export function measureInChild(job: MemoryJob): MemoryResult {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`bench memory child for ${job.label} failed with exit ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as MemoryResult;
}

function childMain(job: MemoryJob): void {
  const inv = jobInvocation(job);
  // Pay the one-time costs (KVM handle, kernel image, syscall-path probe, program image) first.
  const warm = inv();
  try {
    run(warm.program, warm.args, { ro: warm.ro, rw: warm.rw, stdout: 'capture', stderr: 'capture' });
  } finally {
    warm.cleanup?.();
  }
  process.stdout.write(JSON.stringify(measureSandboxMemory(job.label, inv, job.sandboxes)) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) childMain(JSON.parse(process.argv[2]!) as MemoryJob);
