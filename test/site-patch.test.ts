// Rewriting `syscall` and `cpuid` sites into jumps to the user-mode stub (src/linux/site-patch.ts):
// done only where safe, only on the user-stub path, never when traced or refused, and the program
// behaves the same either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync as run } from '../src/index.js';
import { acquireMachine, releaseMachine } from '../src/machine/pool.js';
import { onUserStubPath } from './helpers.js';
import { decodeSimple } from '../src/linux/x86-insn.js';

const onPath = (cmd: string) => { try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; } };
import { planPatches } from '../src/linux/site-patch.js';

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

test('a pooled machine holds no trampolines of the program before', { skip: !userStub && 'needs the kvm_pvm system-call path (patched sites); this KVM takes the cpl0-entry path' }, () => {
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

const LAYOUT = { trampolineBase: 0x8000, trampolineRoom: 0x5000, syscallEntry: 0x7080, cpuidEntry: 0x7680 };

test('the planner finds glibc and musl sites, skips branch targets, and keeps trampolines in their room', () => {
  for (const name of ['busybox', 'patch.glibc', 'patch.musl']) {
    const file = readFileSync(prog(name));
    const plan = planPatches(file, 0, LAYOUT);
    assert.ok(plan.sites.some((s) => s.kind === 'syscall'), `${name}: no syscall site found`);
    assert.ok(plan.trampolines.length <= LAYOUT.trampolineRoom);
    for (const s of plan.sites) {
      assert.equal(s.bytes[0], 0xe9, 'a site starts with jmp rel32');
      const target = s.addr + 5 + s.bytes.readInt32LE(1);
      assert.ok(target >= LAYOUT.trampolineBase && target < LAYOUT.trampolineBase + plan.trampolines.length, 'jumps into the trampolines');
      assert.ok(s.bytes.subarray(5).every((b) => b === 0xcc), 'the rest of the site is int3');
    }
    assert.ok(plan.skipped >= (name.startsWith('patch') ? 1 : 0));
  }
  // glibc's start-up asks cpuid ~50 times from ~29 sites; most are rewritten.
  const glibc = planPatches(readFileSync(prog('busybox')), 0, LAYOUT);
  assert.ok(glibc.sites.filter((s) => s.kind === 'cpuid').length >= 15, 'cpuid sites in busybox');
  // With no room, nothing is patched and every site is counted as skipped.
  const none = planPatches(readFileSync(prog('busybox')), 0, { ...LAYOUT, trampolineRoom: 0 });
  assert.equal(none.sites.length, 0);
  assert.ok(none.skipped > 100);
});

test('the instruction decoder agrees with objdump on every instruction it accepts', { skip: !onPath('objdump') && 'objdump (binutils) is not installed' }, () => {
  const file = prog('busybox');
  const bytes = readFileSync(file);
  const out = execFileSync('objdump', ['-d', '-w', '--no-addresses', '-F', file], { encoding: 'utf8', maxBuffer: 512 << 20 });
  // Each function header "<name> (File Offset: 0x...):" gives where its bytes are in the file;
  // each line after it is "\tBYTES\tMNEMONIC".
  let off = -1, checked = 0, accepted = 0;
  for (const line of out.split('\n')) {
    const head = /\(File Offset: 0x([0-9a-f]+)\):$/.exec(line);
    if (head) { off = parseInt(head[1]!, 16); continue; }
    const m = /^\t((?:[0-9a-f]{2} )+)\s*\t/.exec(line);
    if (!m || off < 0) continue;
    const len = m[1]!.trim().split(' ').length;
    const insn = decodeSimple(bytes, off);
    checked++;
    if (insn) {
      accepted++;
      assert.equal(insn.length, len, `at file offset 0x${off.toString(16)}: ${line.trim()}`);
    }
    off += len;
  }
  assert.ok(checked > 100000 && accepted > checked / 3, `checked ${checked}, accepted ${accepted}`);
});

test('cpuid through a patched site answers as the instruction does', () => {
  const r = run(prog('patch.glibc'), ['cpuid']);
  assert.equal(r.exitStatus, 0, r.stdout.toString() + r.stderr.toString());
  assert.match(r.stdout.toString(), /cpuid=(jump|cpuid) leaves=\d+ failures=0/);
  if (userStub) assert.match(r.stdout.toString(), /cpuid=jump/);
});
