// inotify (src/linux/syscalls/inotify.ts): test/programs/inotify.c watches a granted directory and
// must print what it prints natively (events of its own changes, of a child's while it blocks,
// errors, poll, epoll, FIONREAD, IN_IGNORED, a watch on kvmbox's made-up /); a change made on the
// host reaches a program that waits in the sandbox; a sandbox's instances are bounded; and Node's
// fs.watch, which failed with ENOSYS, reports as natively.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run } from '../src/index.js';
import { onUserStubPath, PROGRAMS_DIR, ROOT, VARIANTS } from './helpers.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kvmbox-inotify-'));
}

for (const v of VARIANTS) {
  test(`${v}: inotify on a granted directory, as natively`, () => {
    const path = `${PROGRAMS_DIR}/inotify.${v}`;
    const nativeDir = tempDir(), guestDir = tempDir();
    try {
      const native = spawnSync(path, [nativeDir], { encoding: 'utf8' });
      assert.equal(native.status, 0, native.stderr);
      assert.match(native.stdout, /^rename, mkdir, rmdir, unlink: MOVED_TO b \(same cookie\)$/m);
      assert.match(native.stdout, /^blocking, child creates: CREATE a$/m);
      const r = run(path, [guestDir], { rw: [guestDir], timeoutSeconds: 120 });
      assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
      assert.equal(r.exitStatus, 0);
    } finally {
      rmSync(nativeDir, { recursive: true, force: true });
      rmSync(guestDir, { recursive: true, force: true });
    }
  });
}

test('a sandbox holds at most 128 inotify instances (EMFILE), as Linux\'s default per user', () => {
  const r = run(`${PROGRAMS_DIR}/inotify.glibc`, ['limits'], { timeoutSeconds: 120 });
  assert.equal(r.stdout.toString(), 'instances: 128, then EMFILE\n', r.stderr.toString());
});

test('a file made on the host wakes a program that waits on inotify in the sandbox', async () => {
  const dir = tempDir();
  try {
    const child = spawn(process.execPath, [join(ROOT, 'bin/kvmbox.js'), 'run', '--rw', dir, '--timeout', '120', '--',
      `${PROGRAMS_DIR}/inotify.glibc`, 'wait', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('watching\n')) resolve();
    }));
    writeFileSync(join(dir, 'from-host'), 'x');
    const code = await exited;
    assert.equal(out, 'watching\nhost change: CREATE from-host\n', err);
    assert.equal(code, 0, err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('node\'s fs.watch reports a change in a granted directory, as natively', {
  skip: onUserStubPath() ? 'on kvm_pvm node needs --memory 2048' : false,
}, () => {
  const src = "const fs = require('fs'); const dir = process.argv[1]; " +
    "const w = fs.watch(dir, (type, name) => { console.log(type, name); w.close(); }); " +
    "fs.writeFileSync(dir + '/made', 'x');";
  const nativeDir = tempDir(), guestDir = tempDir();
  try {
    const native = spawnSync(process.execPath, ['-e', src, nativeDir], { encoding: 'utf8' });
    assert.equal(native.stdout, 'rename made\n', native.stderr);
    const r = run(process.execPath, ['-e', src, guestDir], { system: true, rw: [guestDir], timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
    assert.equal(r.exitStatus, 0);
  } finally {
    rmSync(nativeDir, { recursive: true, force: true });
    rmSync(guestDir, { recursive: true, force: true });
  }
});
