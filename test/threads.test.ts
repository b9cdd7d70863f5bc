// Threads (clone with CLONE_THREAD, futex, CLONE_CHILD_CLEARTID, sched_yield): they take turns on
// the sandbox's one vCPU (src/linux/kernel.ts). test/programs/threads.c runs a mutex-protected
// counter from 4 threads, a condition variable, a barrier, a semaphore, TLS, join results, a
// detached thread and pthread_exit; the sandbox must print what the native run prints. --trace
// names threads as pid.tid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runSync as run } from '../src/index.js';
import { PROGRAMS_DIR, VARIANTS } from './helpers.js';

for (const v of VARIANTS) {
  test(`${v}: pthreads work as natively`, () => {
    const path = `${PROGRAMS_DIR}/threads.${v}`;
    const native = spawnSync(path, [], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    const r = run(path, [], { timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
    assert.equal(r.exitStatus, 0);
  });
}

test('a vfork child\'s execve leaves the parent\'s futex waiters (pthread_join, a condition variable)', () => {
  for (const v of VARIANTS) {
    const path = `${PROGRAMS_DIR}/threads.${v}`;
    const native = spawnSync(path, ['spawnjoin'], { encoding: 'utf8' });
    assert.equal(native.stdout, 'child ran\nspawned child exited with 3\nspawner done, waiter woken\n', native.stderr);
    const r = run(path, ['spawnjoin'], { timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout, v + ': ' + r.stderr.toString());
    assert.equal(r.exitStatus, 0, v);
  }
});

test('a thread limit: pthread_create fails with EAGAIN past maxProcesses, and the program goes on', () => {
  for (const v of ['glibc', 'musl']) {
    const r = run(`${PROGRAMS_DIR}/threads.${v}`, ['limit'], { timeoutSeconds: 120, maxProcesses: 5 });
    assert.equal(r.stdout.toString(), 'created 4 threads, then EAGAIN\njoined 4\n', v + ': ' + r.stderr.toString());
    assert.equal(r.exitStatus, 0);
  }
});

test('--trace names a thread other than the first as pid.tid', () => {
  const lines: string[] = [];
  const r = run(`${PROGRAMS_DIR}/threads.musl`, [], { timeoutSeconds: 120, trace: (l) => lines.push(l) });
  assert.equal(r.exitStatus, 0, r.stderr.toString());
  assert.ok(lines.some((l) => /^\[kvmbox 1\.\d+\] /.test(l)), lines.slice(0, 30).join('\n'));
  assert.ok(lines.some((l) => /^\[kvmbox 1\] /.test(l)));
});
