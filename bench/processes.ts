// The process workloads of issue 15, run beside native and qemu-user like the others (bench.ts):
//   forkloop  fork + execve + wait of a static program (bench/out/true) in a loop: cost per iteration
//   pipeline  busybox sh -c 'dd if=/dev/zero bs=65536 count=8192 | cat | wc -c': 512 MiB through
//             a 3-stage pipeline (throughput)
//   script    busybox sh running 500 small commands, each an execve of a busybox applet by path
//             (a symlink, so that the shell cannot run it as a builtin or in-process applet)
// and the goals, printed next to the measured ratios; judged only on a real KVM host.
// qemu-user emulates the first program and those its processes fork, but an execve under it runs
// the new x86-64 program on the host CPU (no binfmt_misc here): its numbers for these workloads are
// partly native.
import { mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ratioGoal, type Target, type WorkloadResult } from './report.js';
import type { Invocation, Outcome, Paths, Workload } from './workloads.js';

const MIB = 1024 * 1024;
/** The pipeline's volume: 8192 blocks of 64 KiB. */
const PIPELINE_BLOCKS = 8192;
const PIPELINE_BYTES = PIPELINE_BLOCKS * 65536;
/** Commands the script runs. */
const SCRIPT_COMMANDS = 500;
/** The busybox applets the script runs through execve, one symlink each. */
const SCRIPT_APPLETS = ['true', 'echo', 'basename', 'expr', 'printf'];

export const PROCESS_WORKLOAD_NAMES = ['forkloop', 'pipeline', 'script'];

/** Iterations of the fork + exec + wait loop. */
export function forkloopIterations(quick: boolean): number {
  return quick ? 50 : 200;
}

function exact(o: Outcome): string {
  return `exit ${o.status}\n${o.stdout.toString('latin1')}`;
}

/** The script: SCRIPT_COMMANDS commands, each an applet run by path from dir. */
function scriptText(dir: string): string {
  return [
    'i=0',
    `while [ $i -lt ${SCRIPT_COMMANDS} ]; do`,
    '  i=$((i+1))',
    '  case $((i % 5)) in',
    `    0) ${dir}/true ;;`,
    `    1) ${dir}/echo "line $i" ;;`,
    `    2) ${dir}/basename /a/b/file$i ;;`,
    `    3) ${dir}/expr $i \\* 3 ;;`,
    `    4) ${dir}/printf '%s\\n' x$i ;;`,
    '  esac',
    'done',
    'echo end',
  ].join('\n');
}

/** What the script prints. */
function scriptExpected(): string {
  const out: string[] = [];
  for (let i = 1; i <= SCRIPT_COMMANDS; i++) {
    switch (i % 5) {
      case 0: break;
      case 1: out.push(`line ${i}`); break;
      case 2: out.push(`file${i}`); break;
      case 3: out.push(String(i * 3)); break;
      case 4: out.push(`x${i}`); break;
    }
  }
  out.push('end');
  return `exit 0\n${out.join('\n')}\n`;
}

export function processWorkloads(p: Paths, quick: boolean): Workload[] {
  const n = forkloopIterations(quick);
  const list: Workload[] = [
    {
      name: 'forkloop', title: `fork + execve + wait of a static program (bench/out/true), ${n} iterations`,
      runners: ['native', 'qemu', 'kvmbox-cli', 'kvmbox-api'],
      invocation: (): Invocation => ({ program: join(p.benchOut, 'forkloop'), args: [String(n), join(p.benchOut, 'true')], ro: [p.benchOut], rw: [] }),
      normalize: exact, expected: () => `exit 0\nforkloop iterations=${n} ok=${n}\n`, warmup: 'native', batch: 1,
    },
  ];
  if (p.busybox) {
    const bb = p.busybox;
    const bbDir = dirname(bb);
    const appletDir = join(p.scratch, 'applets');
    let made = false;
    const applets = () => {
      if (made) return;
      mkdirSync(appletDir, { recursive: true });
      for (const a of SCRIPT_APPLETS) symlinkSync(bb, join(appletDir, a));
      made = true;
    };
    list.push(
      {
        name: 'pipeline', title: `busybox sh: dd if=/dev/zero bs=65536 count=${PIPELINE_BLOCKS} | cat | wc -c (${PIPELINE_BYTES / MIB} MiB)`,
        runners: ['native', 'qemu', 'kvmbox-cli', 'kvmbox-api'],
        invocation: (): Invocation => ({
          program: bb, args: ['sh', '-c', `dd if=/dev/zero bs=65536 count=${PIPELINE_BLOCKS} | cat | wc -c`], ro: [bbDir], rw: [],
        }),
        normalize: exact, expected: () => `exit 0\n${PIPELINE_BYTES}\n`, warmup: 'native', batch: 1,
      },
      {
        name: 'script', title: `busybox sh: a script running ${SCRIPT_COMMANDS} commands (applets by path: fork + execve each)`,
        runners: ['native', 'qemu', 'kvmbox-cli', 'kvmbox-api'],
        invocation: (): Invocation => {
          applets();
          return { program: bb, args: ['sh', '-c', scriptText(appletDir)], ro: [bbDir, appletDir], rw: [] };
        },
        normalize: exact, expected: scriptExpected, warmup: 'native', batch: 1,
      },
    );
  }
  return list;
}

function fmtUs(ms: number): string {
  const us = ms * 1000;
  return us >= 100 ? `${us.toFixed(0)} us` : `${us.toFixed(1)} us`;
}

/**
 * Issue 15's goals, on the in-process API time: the loop at <= 2x native per iteration, the
 * pipeline at >= 0.5x native throughput (<= 2x its time), the script at <= 2x native. In the
 * emulated lane they are printed but not judged (pass null).
 */
export function processTargets(results: readonly WorkloadResult[], quick: boolean): Target[] {
  const targets: Target[] = [];
  const goal = (workload: string, what: string, limit: string, maxRatio: number, detail: (ms: number) => string) => {
    const t = ratioGoal(results, workload, `${what} (issue 15, kvmbox API)`, limit, maxRatio, detail);
    if (t) targets.push(t);
  };
  const n = forkloopIterations(quick);
  goal('forkloop', 'fork + exec + wait, per iteration', '<= 2x native', 2, (ms) => `${fmtUs(ms / n)}/iteration`);
  goal('pipeline', `${PIPELINE_BYTES / MIB} MiB through dd | cat | wc -c`, '>= 0.5x native throughput (time <= 2x)', 2,
    (ms) => `${(PIPELINE_BYTES / MIB / (ms / 1000)).toFixed(0)} MiB/s`);
  goal('script', `a shell script running ${SCRIPT_COMMANDS} commands`, '<= 2x native', 2, (ms) => `${fmtUs(ms / SCRIPT_COMMANDS)}/command`);
  return targets;
}
