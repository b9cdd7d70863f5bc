// --root DIR and --system (issue 14, item 5). A small root is built here from Debian's static
// busybox: DIR is the guest's /, read-only, its absolute symlinks resolve inside it (as in a
// chroot), the program is looked up in it, and --ro/--rw grants are laid over it. --system grants
// the host's own system (SYSTEM_GRANTS), and no secret: outputs are compared with native runs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run, NotRunnableError, ProgramNotFoundError, GrantError, SYSTEM_GRANTS, systemGrants, type RunResult } from '../src/index.js';
import { BUSYBOX, dynamicHello, NO_BUSYBOX, runCli } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'kvmbox-rootfs-'));
after(() => rmSync(work, { recursive: true, force: true }));
const R = join(work, 'root');
const ENV = { PATH: '/usr/bin:/bin', HOME: '/' };

function show(r: RunResult): string {
  return `status ${r.exitStatus}\nstdout: ${r.stdout.toString().slice(0, 2000)}\nstderr: ${r.stderr.toString().slice(0, 2000)}`;
}

if (!NO_BUSYBOX) {
  mkdirSync(join(R, 'bin'), { recursive: true });
  mkdirSync(join(R, 'etc', 'real'), { recursive: true });
  mkdirSync(join(R, 'home'));
  copyFileSync(BUSYBOX, join(R, 'bin', 'busybox'));
  for (const a of ['sh', 'ls', 'cat']) symlinkSync('busybox', join(R, 'bin', a));
  writeFileSync(join(R, 'etc', 'real', 'x'), 'from the root\n');
  // Absolute symlinks: they resolve against the root, never against the host's /.
  symlinkSync('/etc/real', join(R, 'etc', 'alt'));
  symlinkSync('/etc/hostname', join(R, 'etc', 'escape'));
  symlinkSync('../../../../../../../etc/hostname', join(R, 'etc', 'climb'));
  symlinkSync('/bin/busybox', join(R, 'bin', 'abs-busybox'));
}

test('--root: /bin/sh of the root runs; builtins read through an absolute symlink inside the root', { skip: NO_BUSYBOX }, () => {
  const r = runCli(['run', '--root', R, '--', '/bin/sh', '-c', 'echo hi; read l < /etc/alt/x; echo "$l"; test -e /etc/escape || echo no-escape']);
  assert.equal(r.err, '');
  assert.equal(r.out, 'hi\nfrom the root\nno-escape\n');
  assert.equal(r.status, 0);
});

test('--root: ls / lists the root, as natively; cat follows absolute symlinks inside it', { skip: NO_BUSYBOX }, () => {
  const native = spawnSync(BUSYBOX, ['ls', R], { encoding: 'utf8' });
  const r = run('/bin/ls', ['/'], { root: R });
  assert.equal(r.stdout.toString(), native.stdout, show(r));
  assert.equal(r.exitStatus, 0, show(r));
  const cat = run('/bin/cat', ['/etc/alt/x'], { root: R });
  assert.equal(cat.stdout.toString(), 'from the root\n', show(cat));
  // The program itself through an absolute symlink in the root, and relative to the guest's cwd.
  const abs = run('/bin/abs-busybox', ['/etc/real/x'], { root: R, argv0: 'cat' });
  assert.equal(abs.stdout.toString(), 'from the root\n', show(abs));
  const rel = run('cat', ['../etc/alt/x'], { root: R, cwd: '/bin' });
  assert.equal(rel.stdout.toString(), 'from the root\n', show(rel));
});

test("--root: the host's / is not visible, not even through symlinks that point out of the root", { skip: NO_BUSYBOX }, () => {
  for (const path of ['/etc/hostname', '/etc/escape', '/etc/climb', '/etc/passwd', join(work, 'root', 'bin', 'busybox')]) {
    const r = run('/bin/cat', [path], { root: R });
    assert.equal(r.exitStatus, 1, `${path}: ${show(r)}`);
    assert.match(r.stderr.toString(), /No such file or directory/, path);
    assert.equal(r.stdout.length, 0, path);
  }
});

test('--root is read-only; a --rw grant laid over it is writable, at its host path', { skip: NO_BUSYBOX }, () => {
  const w = join(work, 'writable');
  mkdirSync(w, { recursive: true });
  const r = runCli(['run', '--root', R, '--rw', w, '--', '/bin/sh', '-c', `echo written > ${w}/out.txt; echo x > /etc/new || echo refused`]);
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, 'refused\n');
  assert.match(r.err, /Read-only file system/);
  assert.equal(readFileSync(join(w, 'out.txt'), 'utf8'), 'written\n');
  assert.equal(existsSync(join(R, 'etc', 'new')), false);
  // The directories leading to the grant, which the root lacks, appear as in a grant-only namespace.
  const ls = run('/bin/ls', ['-d', w], { root: R, rw: [w] });
  assert.equal(ls.stdout.toString(), `${w}\n`, show(ls));
});

test('--root with a dynamically linked program: its interpreter and libraries come from grants over the root', { skip: NO_BUSYBOX }, () => {
  copyFileSync(dynamicHello(), join(R, 'bin', 'hello.dyn'));
  const native = spawnSync(dynamicHello(), ['3'], { encoding: 'utf8', argv0: '/bin/hello.dyn' });
  const r = run('/bin/hello.dyn', ['3'], { root: R, ro: ['/usr', '/lib64', '/lib', '/etc/ld.so.cache'] });
  assert.equal(r.stdout.toString(), native.stdout, show(r));
  assert.equal(r.exitStatus, native.status, show(r));
});

test("--root with a dynamically linked program whose ld.so and libc are the root's own (merged /usr, absolute ld.so link)", () => {
  // Laid out as Debian 12 does: /lib64 -> usr/lib64, and usr/lib64/ld-linux-x86-64.so.2 an
  // absolute symlink to /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; no ld.so.cache, so ld.so
  // finds libc in its default directories. Everything must resolve inside the root.
  const R2 = join(work, 'dynroot');
  const lib = join(R2, 'usr', 'lib', 'x86_64-linux-gnu');
  mkdirSync(lib, { recursive: true });
  mkdirSync(join(R2, 'usr', 'lib64'));
  mkdirSync(join(R2, 'usr', 'bin'));
  for (const [l, t] of [['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['bin', 'usr/bin']] as const) symlinkSync(t, join(R2, l));
  for (const f of ['ld-linux-x86-64.so.2', 'libc.so.6']) copyFileSync(realpathSync(`/lib/x86_64-linux-gnu/${f}`), join(lib, f));
  symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(R2, 'usr', 'lib64', 'ld-linux-x86-64.so.2'));
  copyFileSync(dynamicHello(), join(R2, 'usr', 'bin', 'hello.dyn'));
  const r = run('/bin/hello.dyn', ['5'], { root: R2 });
  assert.equal(r.stdout.toString(), 'hello, world\nargv[0]=/bin/hello.dyn\nargv[1]=5\nargc=2\n', show(r));
  assert.equal(r.exitStatus, 5, show(r));
  // Without its libc, ld.so (from the root) says so, as natively.
  rmSync(join(lib, 'libc.so.6'));
  const missing = run('/bin/hello.dyn', [], { root: R2 });
  assert.equal(missing.exitStatus, 127, show(missing));
  assert.match(missing.stderr.toString(), /libc\.so\.6: cannot open shared object file/);
});

test('--root errors: a missing DIR is 125 naming it; a program missing in the root is 127 naming the guest path', { skip: NO_BUSYBOX }, () => {
  const missing = join(work, 'no-such-root');
  const a = runCli(['run', '--root', missing, '--', '/bin/sh']);
  assert.equal(a.status, 125, a.err);
  assert.ok(a.err.includes(missing), a.err);
  const b = runCli(['run', '--root', R, '--', '/bin/nope']);
  assert.equal(b.status, 127, b.err);
  assert.match(b.err, /\/bin\/nope: no such file in the root/);
  assert.throws(() => run('/bin/sh', [], { root: missing }), GrantError);
  assert.throws(() => run('/bin/nope', [], { root: R }), ProgramNotFoundError);
  // What is not a regular file is refused with 126 before anything runs.
  spawnSync('mkfifo', [join(R, 'bin', 'fifo')]);
  for (const p of ['/bin/fifo', '/etc', '/etc/alt']) {
    assert.throws(() => run(p, [], { root: R }), (e: unknown) => e instanceof NotRunnableError && e.exitStatus === 126, p);
  }
  // A host program that exists outside the root is not found in it.
  assert.throws(() => run(BUSYBOX, ['true'], { root: R }), ProgramNotFoundError);
});

test('SYSTEM_GRANTS holds no secret; what it grants of /etc is what ls /etc shows under --system', () => {
  for (const secret of ['/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/etc/sudoers.d', '/etc/ssh', '/etc/ssl/private', '/etc', '/']) {
    assert.ok(!SYSTEM_GRANTS.includes(secret), secret);
  }
  const r = runCli(['run', '--system', '--', '/bin/ls', '/etc']);
  assert.equal(r.status, 0, r.err);
  const want = [...new Set(systemGrants().filter((p) => p.startsWith('/etc/')).map((p) => p.split('/')[2]!))].sort();
  assert.deepEqual(r.out.split('\n').filter((l) => l !== ''), want);
  assert.ok(!want.includes('shadow'));
});

test('--system: /bin/ls /usr prints what it prints natively; /etc/shadow does not exist', () => {
  const native = spawnSync('/bin/ls', ['/usr'], { encoding: 'utf8', env: ENV });
  const r = runCli(['run', '--system', '--', '/bin/ls', '/usr']);
  assert.equal(r.out, native.stdout, r.err);
  assert.equal(r.status, 0, r.err);
  const shadow = runCli(['run', '--system', '--', '/bin/cat', '/etc/shadow']);
  assert.equal(shadow.status, 1);
  assert.match(shadow.err, /\/etc\/shadow: No such file or directory/);
  assert.equal(shadow.out, '');
});

test('--system: getent passwd, awk, readlink -f through /etc/alternatives, python3 -c', () => {
  const cases: [string, string[]][] = [
    ['/usr/bin/getent', ['passwd', 'root']],
    ['/usr/bin/awk', ['BEGIN { print 6 * 7 }']],
    // Absolute symlinks through the granted /etc/alternatives, resolved in the guest.
    // (/bin, /lib64... are directories in the guest, not symlinks: so only paths under /usr here.)
    ['/usr/bin/readlink', ['-f', '/usr/bin/awk', '/usr/bin/sh']],
    ['/usr/bin/readlink', ['/etc/alternatives/awk']],
  ];
  if (existsSync('/usr/bin/python3')) cases.push(['/usr/bin/python3', ['-c', 'import json, hashlib; print(1, json.dumps([2]), hashlib.sha256(b"").hexdigest()[:8])']]);
  for (const [exe, args] of cases) {
    const native = spawnSync(exe, args, { encoding: 'utf8', env: ENV });
    const r = run(exe, args, { system: true, env: ENV });
    assert.equal(r.stdout.toString(), native.stdout, `${exe}: ${show(r)}`);
    assert.equal(r.exitStatus, native.status, `${exe}: ${show(r)}`);
  }
});

// man-db reads /etc/manpath.config and groff /etc/groff; the JVM its jvm.cfg under
// /etc/java-N-openjdk (Debian links /usr/lib/jvm/*/conf there); php its php.ini under /etc/php:
// --system grants them.
test('--system: man -P cat, java -version and php\'s php.ini need no other grant', () => {
  if (existsSync('/usr/bin/php')) {
    const args = ['-r', 'echo php_ini_loaded_file(), " ", ini_get("memory_limit"), "\\n";'];
    const native = spawnSync('/usr/bin/php', args, { encoding: 'utf8', env: ENV });
    assert.match(native.stdout, /^\/etc\/php\//);
    const r = run('/usr/bin/php', args, { system: true, env: ENV });
    assert.equal(r.stdout.toString(), native.stdout, show(r));
  }
  if (existsSync('/usr/bin/man')) {
    const r = runCli(['run', '--system', '--', '/usr/bin/man', '-P', 'cat', 'true']);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /TRUE\(1\)/);
    assert.equal(r.err, '');
  }
  if (existsSync('/usr/bin/java')) {
    const r = runCli(['run', '--system', '--', '/usr/bin/java', '-version'], { timeoutMs: 300_000 });
    assert.equal(r.status, 0, r.err);
    assert.match(r.err, /^openjdk version "/);
  }
});
