// The busybox conformance suite: every case of test/conformance/cases.ts runs natively and in
// kvmbox, and must give the same stdout, stderr, exit status (and tree, for write cases).
// Then the security invariants of the file system: writes outside --rw grants fail and change
// nothing on the host.
// Needs test/programs/out/busybox (scripts/build-test-programs.mjs copies Debian's busybox-static).
import { lstatSync } from 'node:fs';
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync as run } from '../src/index.js';
import { CASES, ENV } from './conformance/cases.js';
import { createFixture, removeFixture, resetRw, snapshot, type Fixture } from './conformance/fixture.js';
import { passTable, runCase, show, type Verdict } from './conformance/harness.js';

const BUSYBOX = fileURLToPath(new URL('../../test/programs/out/busybox', import.meta.url));
const skip = existsSync(BUSYBOX) ? false : 'test/programs/out/busybox missing: apt-get install busybox-static, then node scripts/build-test-programs.mjs';

let fixture: Fixture;
const verdicts: Verdict[] = [];
before(() => { fixture = createFixture(); });
after(() => {
  if (fixture) removeFixture(fixture);
  if (verdicts.length) console.log('\n' + passTable(verdicts));
});

const names = new Set<string>();
for (const c of CASES) {
  if (names.has(c.name)) throw new Error(`duplicate conformance case name: ${c.name}`);
  names.add(c.name);
  test(`busybox ${c.name}`, { skip }, () => {
    const v = runCase(BUSYBOX, c, fixture);
    verdicts.push(v);
    assert.ok(v.pass, `${c.args.join(' ')}\n${v.diffs.join('\n')}\nnative stdout ${show(v.native.stdout)}\nkvmbox stdout ${show(v.guest.stdout)}\nkvmbox stderr ${show(v.guest.stderr)}`);
  });
}

// ---- the file-system boundary ----

function guest(args: string[], opts: { rw?: string[]; cwd?: string } = {}) {
  return run(BUSYBOX, args, {
    ro: [fixture.ro], rw: opts.rw ?? [], cwd: opts.cwd ?? fixture.ro, env: ENV, stdout: 'capture', stderr: 'capture', timeoutSeconds: 60,
  });
}

test('writes into a read-only grant fail with EROFS and change nothing', { skip }, () => {
  const before = snapshot(fixture.ro, { mtimes: true });
  const attempts = [
    ['sh', '-c', 'echo x > new.txt'], ['sh', '-c', 'echo x >> text/a.txt'], ['mkdir', 'd'], ['rm', 'text/a.txt'],
    ['rmdir', 'tree/empty-dir'], ['touch', 'text/a.txt'], ['chmod', '777', 'text/a.txt'], ['ln', '-s', 'a', 'text/l'],
    ['ln', 'text/a.txt', 'text/hard'], ['mv', 'text/a.txt', 'text/z.txt'], ['truncate', '-s', '0', 'text/a.txt'],
    ['cp', 'text/b.txt', 'text/a.txt'], ['sed', '-i', 's/a/b/', 'text/a.txt'],
    ['dd', 'if=/dev/zero', 'of=text/a.txt', 'count=1'],
  ];
  for (const args of attempts) {
    const r = guest(args);
    assert.notEqual(r.exitStatus, 0, `${args.join(' ')} succeeded`);
    const err = r.stderr.toString();
    assert.match(err, /Read-only file system/, `${args.join(' ')}: ${err}`);
  }
  assert.deepEqual(snapshot(fixture.ro, { mtimes: true }), before);
});

test('the virtual directories above a grant are read-only', { skip }, () => {
  const top = '/' + fixture.base.split('/').filter(Boolean)[0]!;
  for (const args of [['mkdir', '/newdir'], ['touch', '/newfile'], ['sh', '-c', `echo x > ${top}/x`], ['rmdir', top], ['mkdir', fixture.base]]) {
    const r = guest(args);
    assert.notEqual(r.exitStatus, 0, args.join(' '));
    assert.match(r.stderr.toString(), /Read-only file system|File exists/, args.join(' '));
  }
  assert.equal(guest(['mkdir', '-p', fixture.ro + '/tree']).exitStatus, 0, 'mkdir -p of existing directories succeeds');
  assert.ok(!existsSync('/newdir') && !existsSync('/newfile') && !existsSync(`${top}/x`));
});

test('paths outside every grant do not exist, even through symlinks', { skip }, () => {
  for (const path of ['/etc/hostname', 'escape/abs', 'escape/dotdot', 'escape/dir/hostname', '/proc/1/environ/../../../etc/hostname']) {
    const r = guest(['cat', path]);
    assert.equal(r.exitStatus, 1, path);
    assert.equal(r.stderr.toString(), `cat: can't open '${path}': No such file or directory\n`);
  }
  const ls = guest(['ls', '/']);
  // `ls /` shows only the first component of the grants' paths.
  assert.equal(ls.stdout.toString(), fixture.base.split('/').filter(Boolean)[0]! + '\n');
  const cd = guest(['sh', '-c', 'cd escape/dir && pwd; cd ../../../../../../.. && pwd && echo *']);
  assert.match(cd.stderr.toString(), /can't cd to escape\/dir/);
  assert.equal(cd.stdout.toString().split('\n')[0], '/');
  assert.ok(readdirSync(fixture.ro).length > 0);
});

test('a --rw grant follows absolute symlinks into other grants only', { skip }, () => {
  // A link in the rw grant to a path in the ro grant: reading works, writing is EROFS.
  const rw = fixture.rw;
  const outside = fixture.base + '/made-by-guest';
  resetRw(fixture, {
    'to-ro': { symlink: fixture.ro + '/text/a.txt' }, 'to-etc': { symlink: '/etc/hostname' }, 'to-base': { symlink: outside },
  });
  const hostname = readFileSync('/etc/hostname');
  const read = guest(['cat', 'to-ro'], { rw: [rw], cwd: rw });
  assert.equal(read.stdout.toString(), 'alpha\nbeta\ngamma\ndelta\nepsilon\n');
  const write = guest(['sh', '-c', 'echo x >> to-ro'], { rw: [rw], cwd: rw });
  assert.match(write.stderr.toString(), /Read-only file system/);
  // Writing or creating through links that lead outside the grants touches nothing on the host.
  for (const link of ['to-etc', 'to-base']) {
    const r = guest(['sh', '-c', `echo x > ${link}; echo x >> ${link}`], { rw: [rw], cwd: rw });
    assert.notEqual(r.exitStatus, 0, link);
  }
  assert.deepEqual(readFileSync('/etc/hostname'), hostname);
  assert.ok(!existsSync(outside));
});

test('a read-only grant nested in a --rw grant stays read-only, even through symlinks', { skip }, () => {
  resetRw(fixture, { 'locked/f.txt': 'keep\n', 'locked/d/g.txt': 'keep\n', 'via': { symlink: 'locked' }, 'abs': { symlink: fixture.rw + '/locked' } });
  const locked = fixture.rw + '/locked';
  const before = snapshot(locked, { mtimes: true });
  const attempts = [
    ['sh', '-c', 'echo x >> via/f.txt'], ['sh', '-c', 'echo x > abs/new.txt'], ['rm', 'via/f.txt'], ['mkdir', 'via/n'],
    ['mv', 'via/f.txt', 'moved.txt'], ['mv', 'via/d', 'via/e'], ['touch', 'abs/f.txt'], ['chmod', '0', 'via/f.txt'],
    ['ln', '-s', 'x', 'via/l'], ['truncate', '-s', '0', 'abs/f.txt'], ['rm', '-r', 'via/d'],
  ];
  for (const args of attempts) {
    const r = run(BUSYBOX, args, { ro: [locked], rw: [fixture.rw], cwd: fixture.rw, env: ENV, stdout: 'capture', stderr: 'capture', timeoutSeconds: 60 });
    assert.notEqual(r.exitStatus, 0, `${args.join(' ')} succeeded`);
    assert.match(r.stderr.toString(), /Read-only file system/, `${args.join(' ')}: ${r.stderr}`);
  }
  assert.deepEqual(snapshot(locked, { mtimes: true }), before);
});

// ---- system calls, one by one: test/conformance/abi.c natively and in kvmbox ----

test('system calls give the same results and errno values as Linux (abi.c)', { skip: skip || (hasGcc() ? false : 'gcc not installed') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-abi-'));
  try {
    chmodSync(dir, 0o755);
    const exe = join(dir, 'abi');
    execFileSync('gcc', ['-static', '-O1', '-o', exe, fileURLToPath(new URL('../../test/conformance/abi.c', import.meta.url))]);
    resetRw(fixture, {});
    const native = spawnSync(exe, [fixture.ro, fixture.rw, 'native'], {
      cwd: fixture.ro, env: ENV, encoding: 'utf8', ...(process.getuid?.() === 0 ? { uid: 1000, gid: 1000 } : {}),
    });
    const nativeTree = snapshot(fixture.rw);
    resetRw(fixture, {});
    const guest = run(exe, [fixture.ro, fixture.rw], {
      ro: [fixture.ro], rw: [fixture.rw], cwd: fixture.ro, env: ENV, stdout: 'capture', stderr: 'capture', timeoutSeconds: 60,
    });
    let a = native.stdout.split('\n');
    // A minimal host (the hardware-KVM lane's initramfs) has no /dev/stdin symlink; on a standard
    // Linux system udev makes it a link to /proc/self/fd/0, which is what kvmbox serves. Compare
    // against the standard answers there rather than against the bare host.
    let hostHasStdinLink = false;
    try { hostHasStdinLink = lstatSync('/dev/stdin').isSymbolicLink(); } catch { /* absent */ }
    if (!hostHasStdinLink) {
      const standard: Record<string, string> = {
        'lstat /dev/stdin is link': 'lstat /dev/stdin is link = 1',
        'readlink /dev/stdin': 'readlink /dev/stdin = 15',
        '/dev/stdin ->': '/dev/stdin -> /proc/self/fd/0',
      };
      a = a.map((l) => Object.entries(standard).find(([k]) => l.startsWith(k))?.[1] ?? l);
    }
    const all = guest.stdout.toString().split('\n');
    const b = all.filter((l) => !l.startsWith('ro: '));
    // Writes into the read-only grant run in kvmbox only (abi.c RO_CHECK): Linux's answers on a
    // read-only mount, and EXDEV for a link or rename between two grants (two mounts: Linux
    // checks that before it checks for a read-only one).
    const roLines = all.filter((l) => l.startsWith('ro: ')).map((l) => l.slice(4));
    assert.deepEqual(roLines, [
      'open ro O_WRONLY = -1 EROFS', 'open ro O_CREAT new = -1 EROFS', 'O_CREAT in virtual dir = -1 EROFS',
      'mkdir in ro = -1 EROFS', 'symlink in ro = -1 EROFS', 'link across grants = -1 EXDEV',
      'rename into ro = -1 EXDEV', 'chmod in ro = -1 EROFS', 'utimensat in ro = -1 EROFS',
      'truncate in ro = -1 EROFS', 'access W_OK ro grant = -1 EROFS',
    ]);
    const diffs: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i] !== b[i]) diffs.push(`  native: ${a[i] ?? '<end>'}\n  kvmbox: ${b[i] ?? '<end>'}`);
    }
    assert.equal(guest.exitStatus, native.status, guest.stderr.toString());
    assert.deepEqual(diffs, [], `abi.c differs on ${diffs.length} lines:\n${diffs.join('\n')}`);
    assert.deepEqual(snapshot(fixture.rw), nativeTree);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function hasGcc(): boolean {
  return spawnSync('gcc', ['--version']).status === 0;
}
