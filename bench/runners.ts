// Runs one invocation under one runner and times it by wall clock. Child processes are started
// with spawnSync for every runner, so native, qemu and the kvmbox CLI pay the same spawn cost;
// the kvmbox API runs in this process and pays none.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runSync as run } from '../src/api/run.js';
import type { Invocation, Outcome, RunnerName } from './workloads.js';

/** A child that runs longer than this is killed and its run counted as failed. */
const CHILD_TIMEOUT_MS = 300_000;
const MAX_OUTPUT = 256 * 1024 * 1024;

export interface RunnerEnv {
  root: string;
  /** The qemu-user binary, or null when it is not installed. */
  qemu: string | null;
}

/** kvmbox's guest identity (src/abi/abi.generated.ts GUEST_UID/GUEST_GID). */
const GUEST_ID = 1000;

function child(cmd: string, args: string[], asGuestUser = false): Outcome {
  const id = asGuestUser && process.getuid?.() === 0 ? { uid: GUEST_ID, gid: GUEST_ID } : {};
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: MAX_OUTPUT, timeout: CHILD_TIMEOUT_MS, ...id });
  const ms = performance.now() - t0;
  const error = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : undefined;
  return { ms, status: r.status ?? -1, stdout: r.stdout ?? Buffer.alloc(0), stderr: r.stderr ?? Buffer.alloc(0), error };
}

/** The kvmbox command line for an invocation. */
export function cliArgs(root: string, inv: Invocation): string[] {
  const grants = [...(inv.system ? ['--system'] : []), ...inv.ro.flatMap((p) => ['--ro', p]), ...inv.rw.flatMap((p) => ['--rw', p])];
  return [join(root, 'bin/kvmbox.js'), 'run', ...grants, '--', inv.program, ...inv.args];
}

export function runOnce(runner: RunnerName, inv: Invocation, env: RunnerEnv): Outcome {
  switch (runner) {
    case 'native':
      return child(inv.program, inv.args, inv.asGuestUser);
    case 'qemu':
      if (!env.qemu) throw new Error('qemu-x86_64 is not installed');
      return child(env.qemu, [inv.program, ...inv.args], inv.asGuestUser);
    case 'node-e':
      return child(process.execPath, ['-e', '']);
    case 'node-import':
      return child(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(join(env.root, 'build/src/index.js')).href)})`]);
    case 'kvmbox-cli':
      return child(process.execPath, cliArgs(env.root, inv));
    case 'kvmbox-api': {
      const t0 = performance.now();
      try {
        const r = run(inv.program, inv.args, { ro: inv.ro, rw: inv.rw, system: inv.system, stdout: 'capture', stderr: 'capture' });
        const ms = performance.now() - t0;
        return { ms, status: r.exitStatus, stdout: r.stdout, stderr: r.stderr, syscalls: r.syscalls };
      } catch (e) {
        return { ms: performance.now() - t0, status: -1, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), error: (e as Error).message };
      }
    }
  }
}
