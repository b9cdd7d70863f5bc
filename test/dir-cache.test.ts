// The user-mode stub's directory cache and anonymous-mapping pool (src/fs/dir-cache.ts,
// src/linux/map-pool.ts, kernel/dstub.c): the program must not be able to tell them from the
// host serving every call, they must save exits, and nothing the program writes to the stub's
// shared page may hurt the host.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync as run } from '../src/index.js';
import { onUserStubPath } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const prog = (name: string) => join(root, 'test/programs/out', name);
const userStub = onUserStubPath();
const noStub = !userStub && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path';

/** uid and gid of nobody: neither the guest's (1000) nor root's. */
const NOBODY = 65534;

let tree = '';
let file = '';
before(() => {
  tree = mkdtempSync(join(tmpdir(), 'kvmbox-dircache-'));
  mkdirSync(join(tree, 'a', 'inner'), { recursive: true });
  writeFileSync(join(tree, 'a', 'file'), 'hi\n');
  for (let i = 0; i < 40; i++) {
    const d = join(tree, `dir${i}`, 'deeper', 'still');
    mkdirSync(d, { recursive: true });
    for (let j = 0; j < 25; j++) writeFileSync(join(tree, `dir${i}`, `f${j}`), 'x'.repeat(j));
    writeFileSync(join(d, 'leaf'), String(i));
  }
  for (let i = 0; i < 8; i++) mkdirSync(join(tree, `d${i}`));
  symlinkSync('a', join(tree, 'dirlink'));
  symlinkSync('a/file', join(tree, 'filelink'));
  mkdirSync(join(tree, 'locked'));
  writeFileSync(join(tree, 'locked', 'secret'), 's');
  chmodSync(join(tree, 'locked'), 0o700);
  // The guest (uid 1000) may not list it: not its owner. The user running kvmbox is shown to the
  // guest as uid 1000 and owns what it owns (src/fs/identity.ts), so when root runs this the
  // directory is given to another user (nobody), as natively for a process of uid 1000.
  if (process.geteuid?.() === 0) chownSync(join(tree, 'locked'), NOBODY, NOBODY);
  file = join(tree, 'a', 'file');
});
after(() => {
  chmodSync(join(tree, 'locked'), 0o755);
  rmSync(tree, { recursive: true, force: true });
});

test('a walk of a read-only tree is the same with the cache as traced (every call on the host), with far fewer exits', () => {
  const cached = run(prog('dircache.glibc'), ['walk', tree], { ro: [tree] });
  const traced = run(prog('dircache.glibc'), ['walk', tree], { ro: [tree], trace: () => {} });
  assert.equal(cached.exitStatus, 0, cached.stderr.toString());
  assert.equal(cached.stdout.toString(), traced.stdout.toString());
  assert.match(cached.stdout.toString(), /dir39\/deeper\/still\/leaf mode=100644 size=2/);
  if (userStub) {
    // ~130 directories (open, fstat, 2 getdents, close, lstat of ..) and ~1,300 lstats traced;
    // cached, a few batches and the calls around them.
    assert.ok(traced.syscalls > 1500, `traced ${traced.syscalls}`);
    assert.ok(cached.syscalls < traced.syscalls / 10, `cached ${cached.syscalls} vs traced ${traced.syscalls} calls on the host`);
  }
});

for (const libc of ['glibc', 'musl', 'pie']) {
  for (const grant of ['ro', 'rw'] as const) {
    test(`directory descriptors and reused mappings behave as on Linux (${libc}, --${grant})`, () => {
      const opts = grant === 'ro' ? { ro: [tree] } : { rw: [tree] };
      const r = run(prog(`dircache.${libc}`), ['checks', tree, file], opts);
      assert.match(r.stdout.toString(), /failures=0/, r.stdout.toString() + r.stderr.toString());
      assert.equal(r.exitStatus, 0);
    });
  }
}

test('the checks pass traced too, where the host serves every call', () => {
  const r = run(prog('dircache.glibc'), ['checks', tree, file], { ro: [tree], trace: () => {} });
  assert.match(r.stdout.toString(), /failures=0/, r.stdout.toString());
});

test('a directory the guest may not list is refused from the cache as from the host', () => {
  const r = run(prog('busybox'), ['ls', join(tree, 'locked')], { ro: [tree] });
  const traced = run(prog('busybox'), ['ls', join(tree, 'locked')], { ro: [tree], trace: () => {} });
  assert.equal(r.exitStatus, traced.exitStatus);
  if (process.geteuid?.() === 0) {
    // nobody's directory: the guest (uid 1000) has no rights on it (0700)
    assert.notEqual(r.exitStatus, 0);
    assert.match(r.stderr.toString(), /Permission denied/);
  }
});

test('repeated mmap/munmap of one size is served in the guest', { skip: noStub }, () => {
  // busybox find over the tree: glibc's opendir maps its buffer when the heap is fragmented.
  const cached = run(prog('dircache.glibc'), ['checks', tree, file], { ro: [tree] });
  assert.match(cached.stdout.toString(), /failures=0/);
  const traced = run(prog('dircache.glibc'), ['checks', tree, file], { ro: [tree], trace: () => {} });
  // 4 rounds of mmap+munmap: the traced run makes all 8+ of them on the host, the cached one
  // (after the first pair) none of the whole-region ones.
  assert.ok(traced.syscalls - cached.syscalls > 50, `cached ${cached.syscalls}, traced ${traced.syscalls}`);
});

for (const seed of [1, 2, 3, 4, 5, 6]) {
  test(`a program scribbling on the stub's shared page cannot hurt the host (seed ${seed})`, { skip: noStub }, () => {
    const r = run(prog('hostile-stubstate.glibc'), [tree, String(seed), '300'], { ro: [tree] });
    assert.notEqual(r.exitStatus, 125, `kvmbox failed: ${r.stderr.toString()}`);
    assert.doesNotMatch(r.stderr.toString(), /internal error/);
    // and the next program on the (pooled, reset) machine runs normally
    const ok = run(prog('dircache.glibc'), ['checks', tree, file], { ro: [tree] });
    assert.match(ok.stdout.toString(), /failures=0/, ok.stdout.toString());
  });
}
