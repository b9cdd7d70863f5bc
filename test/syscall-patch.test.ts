// Rewriting `syscall` sites into jumps to the user-mode stub (src/guest/syscall-patch.ts): done
// only where safe, only on the user-stub path, never when traced or refused, and the program
// behaves the same either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../src/index.js';
import { acquireMachine, releaseMachine } from '../src/machine/pool.js';
import { onUserStubPath } from './helpers.js';
import { planPatches } from '../src/guest/syscall-patch.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const prog = (name: string) => join(root, 'test/programs/out', name);
const userStub = onUserStubPath();

for (const libc of ['glibc', 'musl', 'pie']) {
  test(`patched where safe, left alone where a branch lands after syscall or the next instruction is unknown (${libc})`, () => {
    const r = run(prog(`patch.${libc}`));
    assert.equal(r.exitStatus, 0, r.stdout.toString() + r.stderr.toString());
    assert.match(r.stdout.toString(), /failures=0/);
    const plain = userStub ? 'jump' : 'syscall';
    assert.match(r.stdout.toString(), new RegExp(`^plain=${plain} joined=syscall other=syscall$`, 'm'));
  });
}

test('no rewriting with patchSyscalls: false or when traced; same results', () => {
  const off = run(prog('patch.glibc'), [], { patchSyscalls: false });
  assert.match(off.stdout.toString(), /^plain=syscall joined=syscall other=syscall\nfailures=0$/m);
  const lines: string[] = [];
  const traced = run(prog('patch.glibc'), [], { trace: (l) => lines.push(l) });
  assert.match(traced.stdout.toString(), /^plain=syscall joined=syscall other=syscall\nfailures=0$/m);
  assert.ok(lines.some((l) => l.includes('getpid(')), 'traced: every call reaches the host');
});

test('the CLI takes --no-patch', async () => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, [join(root, 'bin/kvmbox.js'), 'run', '--no-patch', '--', prog('patch.glibc')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^plain=syscall/);
});

test('a pooled machine holds no trampolines of the program before', { skip: !userStub && 'hardware KVM: nothing is patched' }, () => {
  // Many sites (glibc busybox), then a program with one: the second run's stub region beyond its
  // own trampolines must be int3 filler, not code of the first program.
  const a = run(prog('busybox'), ['true']);
  assert.equal(a.exitStatus, 0);
  const m = acquireMachine({ memoryBytes: 256 << 20 });
  try {
    const region = m.memory.slice(m.trampolineBase, m.trampolineRoom);
    assert.ok(region.every((b) => b === 0 || b === 0xcc), 'stub region after a reset holds no trampoline');
  } finally {
    releaseMachine(m, true);
  }
});

test('the planner finds glibc and musl sites, skips branch targets, and keeps trampolines in their room', () => {
  for (const name of ['busybox', 'patch.glibc', 'patch.musl']) {
    const file = readFileSync(prog(name));
    const plan = planPatches(file, 0, 0x8000, 0x6000, 0x7080);
    assert.ok(plan.sites.length > 0, `${name}: no site found`);
    assert.ok(plan.trampolines.length <= 0x6000);
    for (const s of plan.sites) {
      assert.equal(s.bytes[0], 0xe9, 'a site starts with jmp rel32');
      const target = s.addr + 5 + s.bytes.readInt32LE(1);
      assert.ok(target >= 0x8000 && target < 0x8000 + plan.trampolines.length, 'jumps into the trampolines');
      assert.ok(s.bytes.subarray(5).every((b) => b === 0xcc), 'the rest of the site is int3');
    }
    assert.ok(plan.skipped >= (name.startsWith('patch') ? 1 : 0));
  }
  // With no room, nothing is patched and every site is counted as skipped.
  const file = readFileSync(prog('busybox'));
  const none = planPatches(file, 0, 0x8000, 0, 0x7080);
  assert.equal(none.sites.length, 0);
  assert.ok(none.skipped > 100);
});
