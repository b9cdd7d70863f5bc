// Waits between processes. epoll and eventfd (src/linux/syscalls/epoll.ts): test/programs/epoll.c
// watches a pipe and an eventfd that its child makes ready, waits without a timeout, checks the
// error cases and EPOLLONESHOT. Job control: test/programs/stopcont.c stops and continues a child.
// The sandbox must print what the native run prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runSync as run } from '../src/index.js';
import { PROGRAMS_DIR, VARIANTS } from './helpers.js';

for (const v of VARIANTS) {
  test(`${v}: epoll and eventfd between a parent and its child, as natively`, () => {
    const path = `${PROGRAMS_DIR}/epoll.${v}`;
    const native = spawnSync(path, [], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    assert.match(native.stdout, /^first wait: n=1 data=111 events=0x1$/m);
    const r = run(path, [], { timeoutSeconds: 60 });
    assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
    assert.equal(r.exitStatus, 0);
  });
}

test('job control: SIGSTOP, SIGCONT and SIGTERM between processes, seen by waitpid and SIGCHLD', () => {
  const path = `${PROGRAMS_DIR}/stopcont.glibc`;
  const native = spawnSync(path, [], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stderr);
  const r = run(path, [], { timeoutSeconds: 60 });
  assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
  assert.match(r.stdout.toString(), /^stopped again: stopped by 19$/m);
  assert.equal(r.exitStatus, 0);
});
