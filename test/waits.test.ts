// Waits between processes. epoll and eventfd (src/linux/syscalls/epoll.ts): test/programs/epoll.c
// watches a pipe and an eventfd that its child makes ready, waits without a timeout, checks the
// error cases and EPOLLONESHOT. Job control: test/programs/stopcont.c stops and continues a child.
// The sandbox must print what the native run prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { runSync as run } from '../src/index.js';
import { BIN, BUSYBOX, NO_BUSYBOX, PROGRAMS_DIR, VARIANTS } from './helpers.js';

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

test('a read of the inherited stdin that has no data yet lets the other processes run', { skip: NO_BUSYBOX }, async () => {
  // The background job must print while the foreground shell waits for a line the test writes
  // only after seeing that output: a host wait that held the whole sandbox would never let it.
  const child = spawn(process.execPath, [BIN, 'run', '--ro', PROGRAMS_DIR, '--timeout', '120', '--', BUSYBOX, 'sh', '-c',
    '(sleep 1; echo background done) & read line; echo "got $line"; wait'],
  { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const sawBackground = new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('background done')) resolve();
    });
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
  try {
    await Promise.race([sawBackground, closed]);
    assert.equal(out, 'background done\n', `the background job did not print while stdin was empty; stderr: ${err}`);
    child.stdin.end('hello\n');
    const status = await closed;
    assert.equal(out, 'background done\ngot hello\n', err);
    assert.equal(status, 0, err);
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
});
