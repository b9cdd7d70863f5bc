// Issue 2, part 8 (and the exit statuses of part 6) through the kvmbox command itself:
// `node bin/kvmbox.js ...` in a child process, on the real /dev/kvm.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BIN, BUSYBOX, IS_ROOT, NO_BUSYBOX, PACKAGE_VERSION, VARIANTS, bigOutputPattern, dynamicHello,
  firstDifference, lines, program, runCli, type CliResult,
} from './helpers.js';
import { addressSpan } from '../src/machine/machine.js';

const work = realpathSync(mkdtempSync(join(tmpdir(), 'kvmbox-cli-')));
after(() => rmSync(work, { recursive: true, force: true }));

function show(r: CliResult): string {
  return `status ${r.status}, stdout ${JSON.stringify(r.out.slice(0, 400))}, stderr ${JSON.stringify(r.err.slice(0, 400))}`;
}

// ---- --help, --version, usage errors ----

test('--help: exit 0, usage on stdout naming run, raw and the options', () => {
  const r = runCli(['--help']);
  assert.equal(r.status, 0, show(r));
  for (const word of ['kvmbox run', 'kvmbox raw', '--ro', '--rw', '--root', '--system', '--tmp', '--cwd', '--env', '--memory', '--trace', '--mode', '--version']) {
    assert.ok(r.out.includes(word), `--help does not mention ${word}`);
  }
  assert.equal(r.err, '');
  const sub = runCli(['run', '--help']);
  assert.equal(sub.status, 0, show(sub));
  assert.match(sub.out, /--ro/);
});

test('--version: prints the version from package.json', () => {
  const r = runCli(['--version']);
  assert.equal(r.status, 0, show(r));
  assert.match(PACKAGE_VERSION, /^\d+\.\d+\.\d+/);
  assert.equal(r.out.trim(), `kvmbox ${PACKAGE_VERSION}`);
});

test('kvmbox alone: usage and a non-zero status', () => {
  const r = runCli([]);
  assert.notEqual(r.status, 0, show(r));
  assert.match(r.out + r.err, /Usage:/);
  assert.match(r.out + r.err, /kvmbox run/);
});

test('an unknown option: exit 2 and a message naming it', () => {
  const r = runCli(['run', '--bogus-flag', '--', program('hello', 'glibc')]);
  assert.equal(r.status, 2, show(r));
  assert.match(r.err, /--bogus-flag/);
  assert.equal(r.out, '', 'the program must not run');
});

test('other usage errors exit 2 with a message', () => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /frobnicate/],
    [['run'], /PROGRAM/],
    [['run', '--ro'], /--ro/],
    [['run', '--env', 'NOEQUALS', '--', program('hello', 'glibc')], /KEY=VALUE|NOEQUALS/],
    [['run', '--memory', 'lots', '--', program('hello', 'glibc')], /--memory/],
  ];
  for (const [args, message] of cases) {
    const r = runCli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${show(r)}`);
    assert.match(r.err, message, args.join(' '));
    assert.doesNotMatch(r.out, /hello, world/, args.join(' '));
  }
});

// ---- running programs ----

test('the headline demo: kvmbox run --ro /etc/os-release -- orw /etc/os-release', () => {
  for (const v of VARIANTS) {
    const r = runCli(['run', '--ro', '/etc/os-release', '--', program('orw', v), '/etc/os-release']);
    assert.equal(r.status, 0, `${v}: ${show(r)}`);
    assert.ok(r.stdout.equals(readFileSync('/etc/os-release')), `${v}: stdout differs from /etc/os-release`);
    assert.equal(r.err, '');
  }
});

test('without a grant the same file is not there (deny by default)', () => {
  const r = runCli(['run', '--', program('orw', 'musl'), '/etc/os-release']);
  assert.equal(r.status, 1, show(r));
  assert.equal(r.out, '');
  assert.equal(r.err, 'orw: /etc/os-release: No such file or directory\n');
});

test('argv and the exit status pass through the command; -- is optional', () => {
  for (const v of VARIANTS) {
    const prog = program('hello', v);
    const r = runCli(['run', '--', prog, '42', 'a b', '--not-a-kvmbox-flag']);
    assert.equal(r.status, 42, `${v}: ${show(r)}`);
    assert.equal(r.out, `hello, world\nargv[0]=${prog}\nargv[1]=42\nargv[2]=a b\nargv[3]=--not-a-kvmbox-flag\nargc=4\n`);
  }
  const noDashes = runCli(['run', program('exitcode', 'pie'), '17', '_exit']);
  assert.equal(noDashes.status, 17, show(noDashes));
});

test('--env sets variables (repeatable); the host environment does not leak', () => {
  const prog = program('hello', 'glibc');
  const r = runCli(['run', '--env', 'FOO=from the flag', '--env', 'BAR=2', '--', prog], { env: { FOO: 'from-host' } });
  assert.equal(r.status, 0, show(r));
  assert.match(r.out, /^env FOO=from the flag$/m);
  const none = runCli(['run', '--', prog], { env: { FOO: 'from-host' } });
  assert.doesNotMatch(none.out, /env FOO=/);
});

test('--memory: a program runs in a smaller VM', () => {
  const r = runCli(['run', '--memory', '64', '--', program('hello', 'musl'), '5']);
  assert.equal(r.status, 5, show(r));
  assert.match(r.out, /^hello, world$/m);
});

test('1 MiB of output through a pipe arrives intact', () => {
  for (const v of VARIANTS) {
    const r = runCli(['run', '--', program('big-output', v)]);
    assert.equal(r.status, 0, `${v}: ${show(r)}`);
    assert.equal(r.stdout.length, 1 << 20, v);
    assert.equal(firstDifference(r.stdout, bigOutputPattern(1 << 20)), -1, v);
  }
});

test('a fault: the signal status and exactly one kvmbox line on stderr', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['segv', 139, /SIGSEGV.*\b0x10\b/], ['ill', 132, /SIGILL/], ['fpe', 136, /SIGFPE/], ['int3', 133, /SIGTRAP/],
    ['kernel-write', 139, /SIGSEGV.*0xffffffff80020000.*kernel memory/], ['hlt', 139, /SIGSEGV/],
  ];
  for (const v of VARIANTS) {
    for (const [kind, status, message] of cases) {
      const r = runCli(['run', '--', program('fault', v), kind]);
      assert.equal(r.status, status, `${kind} (${v}): ${show(r)}`);
      assert.equal(r.out, `about to ${kind}\n`);
      assert.equal(lines(r.err).length, 1, `${kind} (${v}): ${r.err}`);
      assert.match(r.err, /^kvmbox: [^\n]+\n$/);
      assert.match(r.err, message);
    }
  }
});

// ---- exit statuses of kvmbox itself ----

test('126: a dynamically linked program whose interpreter is not granted, with how to grant it', () => {
  const r = runCli(['run', '--', dynamicHello()]);
  assert.equal(r.status, 126, show(r));
  assert.match(r.err, /interpreter \/lib64\/ld-linux-x86-64\.so\.2 is not granted/);
  assert.match(r.err, /--ro \/lib64 --ro \/lib --ro \/usr/);
  assert.equal(lines(r.err).length, 1, r.err);
  assert.equal(r.out, '');
});

test('126: a file that is not an ELF program', () => {
  const text = join(work, 'notes.txt');
  writeFileSync(text, 'not a program\n', { mode: 0o755 });
  const r = runCli(['run', '--', text]);
  assert.equal(r.status, 126, show(r));
  assert.ok(r.err.includes(text), r.err);
  assert.match(r.err, /not an ELF/);
});

test('127: a program that does not exist', () => {
  const missing = join(work, 'no-such-program');
  const r = runCli(['run', '--', missing, 'arg']);
  assert.equal(r.status, 127, show(r));
  assert.ok(r.err.includes(missing), r.err);
  assert.equal(r.out, '');
});

test('125: a grant that does not exist is a kvmbox failure, with the path', () => {
  const missing = join(work, 'not-there');
  const r = runCli(['run', '--ro', missing, '--', program('hello', 'glibc')]);
  assert.equal(r.status, 125, show(r));
  assert.ok(r.err.includes(missing), r.err);
  assert.doesNotMatch(r.out, /hello, world/);
});

/** True when `cmd args` runs successfully here (e.g. unshare needs privileges). */
function works(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

// Without /dev/kvm: a private mount namespace whose /dev is an empty tmpfs (the host's /dev is
// untouched: the mount dies with the namespace).
const noDevKvm = IS_ROOT && works('unshare', ['--mount', 'sh', '-c', 'mount -t tmpfs none /dev && test ! -e /dev/kvm'])
  ? false : 'needs root and unshare --mount to hide /dev/kvm';
test('125: no /dev/kvm at all, and the message says how to fix it', { skip: noDevKvm }, () => {
  const r = runCli(['run', '--', program('hello', 'glibc')], {
    wrapper: ['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs none /dev && exec "$0" "$@"'],
  });
  assert.equal(r.status, 125, show(r));
  assert.match(r.err, /\/dev\/kvm/);
  assert.match(r.err, /modprobe|load the kvm module/);
  assert.equal(r.out, '');
});

// /dev/kvm without permission: the same command as an unprivileged user (nobody), for whom
// /dev/kvm (mode 0600 or 0660, owned by root:kvm) is closed.
const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const noAccess = IS_ROOT && works(nobody[0]!, [...nobody.slice(1), process.execPath, '-e',
  `const fs = require('fs'); fs.accessSync(${JSON.stringify(BIN)}, fs.constants.R_OK); ` +
  `try { fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK); process.exit(1); } catch {}`])
  ? false : 'needs root, setpriv, a checkout readable by nobody, and a /dev/kvm closed to nobody';
test('125: /dev/kvm not accessible, and the message says how to fix it', { skip: noAccess }, () => {
  const r = runCli(['run', '--', program('hello', 'glibc')], { wrapper: nobody });
  assert.equal(r.status, 125, show(r));
  assert.match(r.err, /\/dev\/kvm/);
  assert.match(r.err, /group|usermod/);
  assert.equal(r.out, '');
});

// ---- doctor ----

test('doctor: on this host KVM works; it names the device, its kind and the system-call path, exit 0', () => {
  const r = runCli(['doctor']);
  assert.equal(r.status, 0, show(r));
  assert.match(r.out, /kvm device: +\/dev\/kvm: KVM API 12/);
  assert.match(r.out, /kvm kind: +(hardware KVM|kvm_pvm)/);
  assert.match(r.out, /syscall path: +(user-stub|cpl0-entry)/);
  assert.match(r.out, /address space: +(\d+ GiB|--memory) per process \(.*\d+-bit guest-physical addresses/);
  assert.match(r.out, /host kernel: /);
  assert.match(r.out, /verdict: +kvmbox can run programs here/);
  const json = runCli(['doctor', '--json']);
  assert.equal(json.status, 0, show(json));
  const report = JSON.parse(json.out) as { ok: boolean; syscallPath: string; stubAccelerations: boolean; addressSpan: { bytes: number | string; physBits: number } };
  assert.equal(report.ok, true);
  assert.equal(report.stubAccelerations, report.syscallPath === 'user-stub');
  // The span as the machine computes it: --memory on kvm_pvm, at least 16 GiB (less only on a
  // CPU with few physical-address bits) with hardware paging.
  assert.equal(report.addressSpan.bytes, report.syscallPath === 'user-stub' ? 'memory' : addressSpan(0).bytes);
  if (report.syscallPath !== 'user-stub' && report.addressSpan.physBits >= 40) assert.ok(Number(report.addressSpan.bytes) >= 16 * 1024 ** 3);
});

test('doctor: unknown options are usage errors (exit 2)', () => {
  const r = runCli(['doctor', '--bogus']);
  assert.equal(r.status, 2, show(r));
  assert.match(r.err, /unknown option '--bogus' for doctor/);
});

test('doctor without /dev/kvm: says so, says what to do, exit 125', { skip: noDevKvm }, () => {
  const r = runCli(['doctor'], { wrapper: ['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs none /dev && exec "$0" "$@"'] });
  assert.equal(r.status, 125, show(r));
  assert.match(r.out, /kvm kind: +none/);
  assert.match(r.out, /cannot run programs here/);
  assert.match(r.out, /what to do: .*npm test/);
});

// A file that is not a KVM device bound over /dev/kvm (as a CI runner may have): opening works,
// KVM_GET_API_VERSION does not. Both the run and doctor say so.
const bindable = IS_ROOT && works('unshare', ['--mount', 'sh', '-c', 'mount --bind /dev/null /dev/kvm'])
  ? false : 'needs root and unshare --mount to bind a file over /dev/kvm';
test('125: a /dev/kvm that does not answer KVM_GET_API_VERSION, for run and doctor', { skip: bindable }, () => {
  const wrapper = ['unshare', '--mount', 'sh', '-c', 'mount --bind /dev/null /dev/kvm && exec "$0" "$@"'];
  const r = runCli(['run', '--', program('hello', 'glibc')], { wrapper });
  assert.equal(r.status, 125, show(r));
  assert.match(r.err, /\/dev\/kvm is not a KVM device/);
  const d = runCli(['doctor'], { wrapper });
  assert.equal(d.status, 125, show(d));
  assert.match(d.out, /not a KVM device/);
});

// ---- --trace ----

test('--trace: strace-like lines on stderr, program output untouched on stdout', () => {
  for (const v of VARIANTS) {
    const r = runCli(['run', '--trace', '--ro', '/etc/os-release', '--', program('orw', v), '/etc/os-release']);
    assert.equal(r.status, 0, `${v}: ${show(r)}`);
    assert.ok(r.stdout.equals(readFileSync('/etc/os-release')), `${v}: trace lines leaked into stdout`);
    const trace = lines(r.err);
    assert.ok(trace.length > 5, `${v}: ${r.err}`);
    assert.deepEqual(trace.filter((l) => !l.startsWith('[kvmbox] ')), [], `${v}: every stderr line is a trace line`);
    assert.match(r.err, /^\[kvmbox\] open(at)?\((-100, )?"\/etc\/os-release", .*\) = 3$/m);
    assert.match(r.err, /^\[kvmbox\] read\(3, 0x[0-9a-f]+, \d+\) = \d+$/m);
    assert.match(r.err, /^\[kvmbox\] exit_group\(0\)/m);
  }
  const quiet = runCli(['run', '--ro', '/etc/os-release', '--', program('orw', 'glibc'), '/etc/os-release']);
  assert.equal(quiet.err, '', 'no trace without --trace');
});

test('--trace: an unknown system call is ENOSYS and marked (not implemented)', () => {
  const r = runCli(['run', '--trace', '--', program('syscalls', 'musl')]);
  assert.equal(r.status, 0, show(r));
  assert.match(r.out, /^ok enosys$/m);
  assert.match(r.err, /^\[kvmbox\] \S*1000\(.*\) = -1 ENOSYS \(not implemented\)$/m);
});

// ---- stdin, stdout, stderr are the host's ----

test('stdin: a pipe into kvmbox reaches the program', { skip: NO_BUSYBOX }, () => {
  const r = runCli(['run', '--', BUSYBOX, 'cat'], { input: 'a\nb\n' });
  assert.equal(r.status, 0, show(r));
  assert.equal(r.out, 'a\nb\n');

  const bytes = Buffer.alloc(300_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 13 + (i >> 10)) & 0xff;
  const big = runCli(['run', '--', BUSYBOX, 'cat'], { input: bytes });
  assert.equal(big.status, 0, show(big));
  assert.equal(firstDifference(big.stdout, bytes), -1);
});

test('stderr: the program\'s fd 2 is kvmbox\'s stderr', () => {
  const r = runCli(['run', '--', program('orw', 'glibc'), '/nowhere']);
  assert.equal(r.status, 1);
  assert.equal(r.err, 'orw: /nowhere: No such file or directory\n');
  assert.equal(r.out, '');
});

// ---- --ro, --rw, --cwd ----

test('--cwd: relative paths resolve against it', () => {
  const dir = join(work, 'cwd');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'sub', 'rel.txt'), 'relative\n');
  for (const v of VARIANTS) {
    const r = runCli(['run', '--ro', dir, '--cwd', dir, '--', program('orw', v), 'sub/rel.txt']);
    assert.equal(r.status, 0, `${v}: ${show(r)}`);
    assert.equal(r.out, 'relative\n');
    const inSub = runCli(['run', '--ro', dir, '--cwd', join(dir, 'sub'), '--', program('orw', v), 'rel.txt']);
    assert.equal(inSub.out, 'relative\n', `${v}: ${show(inSub)}`);
    // Default cwd is /: the same relative path is not there.
    const dflt = runCli(['run', '--ro', dir, '--', program('orw', v), 'sub/rel.txt']);
    assert.equal(dflt.status, 1, `${v}: ${show(dflt)}`);
  }
});

test('--rw lets the program write the host file; --ro refuses and leaves it unchanged', { skip: NO_BUSYBOX }, () => {
  const dir = join(work, 'rw');
  mkdirSync(dir);
  const rw = runCli(['run', '--rw', dir, '--cwd', dir, '--', BUSYBOX, 'sh', '-c', 'echo written > out.txt']);
  assert.equal(rw.status, 0, show(rw));
  assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'written\n');

  const ro = runCli(['run', '--ro', dir, '--cwd', dir, '--', BUSYBOX, 'sh', '-c', 'echo again > out.txt']);
  assert.notEqual(ro.status, 0, show(ro));
  assert.match(ro.err, /Read-only file system/);
  assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'written\n');

  const cp = runCli(['run', '--rw', dir, '--', BUSYBOX, 'cp', join(dir, 'out.txt'), join(dir, 'copy.txt')]);
  assert.equal(cp.status, 0, show(cp));
  assert.equal(readFileSync(join(dir, 'copy.txt'), 'utf8'), 'written\n');
});

test('--tmp: python3 tempfile works in a /tmp of its own', { skip: existsSync('/usr/bin/python3') ? false : 'python3 is missing' }, () => {
  const code = 'import tempfile, os\nwith tempfile.NamedTemporaryFile("w") as f:\n    f.write("x"); f.flush()\n    print(os.path.dirname(f.name), os.path.getsize(f.name))';
  const r = runCli(['run', '--system', '--tmp', '--', '/usr/bin/python3', '-c', code]);
  assert.equal(r.status, 0, show(r));
  assert.equal(r.out, '/tmp 1\n');
});
