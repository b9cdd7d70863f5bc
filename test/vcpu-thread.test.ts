// vCPU threads (native/vcpu.c): KVM_RUN on a native thread of the helper library, each exit
// handed to the serving JavaScript thread and back by futex. KVMBOX_VCPU_THREAD=1 puts a
// sandbox's one vCPU on such a thread; programs must not be able to tell, and the time limit
// (the guest timer's exits, then the stop of the thread) must work as on the direct path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, PROGRAMS_DIR, program, runCli, lines, type CliResult } from './helpers.js';

const THREAD = { KVMBOX_VCPU_THREAD: '1' };
const DIRECT = { KVMBOX_VCPU_THREAD: '0' };
const show = (r: CliResult) => `status ${String(r.status)}; stderr: ${r.err}`;

test('a program on a vCPU thread prints what it prints on the direct path (glibc and musl)', () => {
  for (const v of ['glibc', 'musl'] as const) {
    const direct = runCli(['run', '--', program('hello', v), 'a', 'b'], { env: DIRECT });
    const threaded = runCli(['run', '--', program('hello', v), 'a', 'b'], { env: THREAD });
    assert.equal(direct.status, 0, show(direct));
    assert.equal(threaded.status, 0, show(threaded));
    assert.equal(threaded.out, direct.out);
  }
});

test('thousands of host-served system calls on a vCPU thread all come back right', () => {
  const d = mkdtempSync(join(tmpdir(), 'kvmbox-vt-'));
  try {
    const file = join(d, 'data.bin');
    writeFileSync(file, Buffer.alloc(3 << 20, 7));
    const r = runCli(['run', '--ro', d, '--', program('syscalls', 'glibc'), file], { env: THREAD });
    const out = lines(r.out);
    assert.deepEqual(out.filter((l) => l.startsWith('FAIL')), [], show(r));
    assert.equal(out.at(-1), 'failures=0', show(r));
    assert.equal(r.status, 0, show(r));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('--timeout stops a program spinning on a vCPU thread (status 124)', () => {
  const t0 = Date.now();
  const r = runCli(['run', '--timeout', '1', '--', `${PROGRAMS_DIR}/hostile-spin.glibc`, 'spin'], { env: THREAD, timeoutMs: 60_000 });
  assert.equal(r.status, 124, show(r));
  assert.ok(Date.now() - t0 < 30_000, `took ${String(Date.now() - t0)} ms`);
});

/** The names of the threads of process pid. */
function threadNames(pid: number): string[] {
  const names: string[] = [];
  for (const t of readdirSync(`/proc/${pid.toString()}/task`)) {
    try {
      names.push(readFileSync(`/proc/${pid.toString()}/task/${t}/comm`, 'utf8').trim());
    } catch { /* the thread ended meanwhile */ }
  }
  return names;
}

test('KVMBOX_VCPU_THREAD=1 really runs the vCPU on a thread of its own, and only then', async () => {
  for (const [env, want] of [[THREAD, true], [DIRECT, false]] as const) {
    const child = spawn(process.execPath, [BIN, 'run', '--timeout', '3', '--', `${PROGRAMS_DIR}/hostile-spin.glibc`, 'spin'], {
      env: { ...process.env, ...env }, stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let seen = false;
    const until = Date.now() + 25_000;
    while (!seen && Date.now() < until && child.exitCode === null) {
      seen = threadNames(child.pid!).some((n) => n.startsWith('kvmbox-vcpu'));
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await exited, 124);
    assert.equal(seen, want, `KVMBOX_VCPU_THREAD=${env.KVMBOX_VCPU_THREAD}: vCPU thread ${seen ? 'seen' : 'not seen'}`);
  }
});
