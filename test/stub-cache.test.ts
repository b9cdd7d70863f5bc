// The user-mode stub's caches (read-ahead, stat cache, /dev/null): they must save exits on the
// user-stub path and never show stale data or swallow an EFAULT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync as run } from '../src/index.js';
import { onUserStubPath } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const prog = (name: string) => join(root, 'test/programs/out', name);
const userStub = onUserStubPath();

for (const libc of ['glibc', 'musl']) {
  test(`caches stay coherent with chmod, write, rename, lseek, pread and dup; bad pointers still EFAULT (${libc})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvmbox-stubcache-'));
    try {
      const big = prog('busybox');
      const r = run(prog(`statcache.${libc}`), [dir, big], { rw: [dir], ro: [big] });
      assert.match(r.stdout.toString(), /failures=0/, r.stdout.toString());
      assert.equal(r.exitStatus, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a listed directory is stat-ed without exits, and the output matches the traced (uncached) run', { skip: !userStub && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-stubcache-'));
  try {
    for (let i = 0; i < 200; i++) writeFileSync(join(dir, `file-${i}`), 'x'.repeat(i));
    mkdirSync(join(dir, 'sub'));
    const cached = run(prog('busybox'), ['ls', '-la', dir], { ro: [dir] });
    const traced = run(prog('busybox'), ['ls', '-la', dir], { ro: [dir], trace: () => {} });
    assert.equal(cached.exitStatus, 0);
    assert.equal(cached.stdout.toString(), traced.stdout.toString());
    // 202 entries: the traced run makes a newfstatat exit for each, the cached one does not.
    assert.ok(traced.syscalls - cached.syscalls >= 200, `cached ${cached.syscalls} vs traced ${traced.syscalls} calls`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sequential reads come from the read-ahead cache: sha256sum of 8 MiB makes few read exits', { skip: !userStub && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-stubcache-'));
  try {
    const file = join(dir, 'data');
    const data = Buffer.alloc(8 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(file, data);
    const r = run(prog('busybox'), ['sha256sum', file], { ro: [file] });
    assert.equal(r.stdout.toString().split(' ')[0], createHash('sha256').update(data).digest('hex'));
    // 2048 reads of 4 KiB natively; with 512 KiB read-ahead about 16 reach the host.
    assert.ok(r.syscalls < 100, `${r.syscalls} system calls reached the host`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writes to /dev/null are answered in the guest', { skip: !userStub && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path' }, () => {
  const r = run(prog('busybox'), ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=4096', 'count=2000']);
  assert.equal(r.exitStatus, 0, r.stderr.toString());
  assert.match(r.stderr.toString(), /2000\+0 records out/);
  assert.ok(r.syscalls < 2000 + 100, `${r.syscalls} system calls reached the host (reads of /dev/zero still do)`);
});

for (const libc of ['glibc', 'musl']) {
  test(`clocks answered in the guest agree with the host and with a 100 ms sleep (${libc})`, () => {
    const before = Date.now();
    const r = run(prog(`clocks.${libc}`), []);
    const after = Date.now();
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    const v = Object.fromEntries(r.stdout.toString().trim().split(' ').map((kv) => kv.split('=')).map(([k, x]) => [k, Number(x)]));
    for (const [name, ms] of [['realtime_ns', v.realtime_ns! / 1e6], ['gtod_us', v.gtod_us! / 1e3], ['time', v.time! * 1e3]] as const) {
      assert.ok(ms >= before - 1000 && ms <= after + 1000, `${name} ${ms} outside [${before}, ${after}]`);
    }
    assert.ok(v.slept_ns! >= 100e6 && v.slept_ns! < 1e9, `slept ${v.slept_ns} ns`);
    assert.equal(v.efault, 1);
    assert.equal(v.efault_gtod, 1);
  });
}

test('clock_gettime makes no exit on the user-stub path', { skip: !userStub && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path' }, () => {
  const r = run(prog('clocks.glibc'), []);
  const traced = run(prog('clocks.glibc'), [], { trace: () => {} });
  // Traced, the 4 clock reads and gettimeofday/time reach the host; untraced none of them.
  assert.ok(traced.syscalls - r.syscalls >= 5, `untraced ${r.syscalls}, traced ${traced.syscalls}`);
});

for (const libc of ['glibc', 'musl', 'pie']) {
  test(`brk, getrandom, arch_prctl, prlimit64 and readlink of /proc/self/exe answered in the stub give Linux's results (${libc})`, () => {
    const p = prog(`brkstub.${libc}`);
    const native = spawnSync(p, [p], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    const r = run(p, [p]);
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), native.stdout);
    assert.doesNotMatch(r.stdout.toString(), /FAIL/);
  });
}

test('a rising break and small getrandom calls make no exit on the user-stub path', { skip: !userStub && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path' }, () => {
  const r = run(prog('brkstub.glibc'));
  const traced = run(prog('brkstub.glibc'), [], { trace: () => {} });
  // 128 rises of the break (a few need the host to map more) and 5 small getrandom calls.
  assert.ok(traced.syscalls - r.syscalls >= 120, `untraced ${r.syscalls}, traced ${traced.syscalls}`);
});

for (const libc of ['glibc', 'musl']) {
  test(`captured stdout and stderr buffered by the stub come out as on Linux, also before a crash (${libc})`, () => {
    for (const mode of ['exit', 'crash']) {
      const native = spawnSync(prog(`outbuf.${libc}`), [mode], { maxBuffer: 16 << 20 });
      const r = run(prog(`outbuf.${libc}`), [mode]);
      assert.equal(r.exitStatus, native.status ?? 128 + 11, `${mode}: ${r.stderr.toString().slice(-300)}`);
      assert.ok(r.stdout.equals(native.stdout), `${mode}: stdout differs`);
      // kvmbox adds one line naming the fault to stderr; the program's own lines come first.
      assert.ok(r.stderr.toString().startsWith(native.stderr.toString()), `${mode}: stderr differs`);
    }
  });
}

test('captured output makes few exits; with an output limit nothing is buffered and the limit holds', { skip: !userStub && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path' }, () => {
  const r = run(prog('outbuf.glibc'), ['exit']);
  const traced = run(prog('outbuf.glibc'), ['exit'], { trace: () => {} });
  assert.ok(traced.syscalls - r.syscalls >= 2000, `untraced ${r.syscalls}, traced ${traced.syscalls}`);
  const limited = run(prog('outbuf.glibc'), ['exit'], { maxOutputBytes: 1000 });
  assert.equal(limited.exitStatus, 153);
  // As without the stub: the write that crosses the limit is the last one delivered.
  assert.ok(limited.stdout.length <= 1000 + 64, `output beyond the limit: ${limited.stdout.length}`);
});
