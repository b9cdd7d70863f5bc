// Issue 2, parts 4-8 through the TypeScript API, on the real /dev/kvm: static glibc, musl and
// static-PIE programs start with the right argv/envp, exit with their status, fault like Linux,
// make the system calls libc needs, and see only the host files they were granted.
// (Raw mode and the KVM struct layouts are tested in raw.test.ts and kvm-abi.test.ts; the
// command line in cli.test.ts.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  runSync as run, KvmUnavailableError, NotRunnableError, ProgramNotFoundError, type RunOptions, type RunResult,
} from '../src/index.js';
import { Kvm } from '../src/kvm/kvm.js';
import { PIE_BASE } from '../src/linux/exec.js';
import {
  BUSYBOX, NO_BUSYBOX, VARIANTS, bigOutputPattern, dynamicHello, firstDifference, lines, program,
  type ProgramName, type Variant,
  onUserStubPath,
} from './helpers.js';

// ---- a scratch tree on the host ----
//   work/secret                 never granted: no test may read it through the guest
//   work/grant/                 granted read-only in most tests
//     file.txt, big.bin (> 4 KiB: several reads), sub/nested.txt
//     rel_in -> file.txt, sub/up_in -> ../file.txt          (symlinks that stay inside)
//     abs_out -> work/secret, rel_out -> ../secret,          (symlinks that lead outside)
//     sub/deep_out -> ../../secret, dir_abs -> work, dir_rel -> ..
// realpath: on hosts where tmpdir is itself behind a symlink, grants resolve to the real path.
const work = realpathSync(mkdtempSync(join(tmpdir(), 'kvmbox-foundation-')));
after(() => rmSync(work, { recursive: true, force: true }));
const SECRET = `TOP-SECRET-${randomBytes(8).toString('hex')}\n`;
const secretPath = join(work, 'secret');
writeFileSync(secretPath, SECRET);
const D = join(work, 'grant');
mkdirSync(join(D, 'sub'), { recursive: true });
const FILE_TXT = 'contents of file.txt\n';
writeFileSync(join(D, 'file.txt'), FILE_TXT);
const BIG = randomBytes(3 * 4096 + 1234);
writeFileSync(join(D, 'big.bin'), BIG);
writeFileSync(join(D, 'sub', 'nested.txt'), 'nested\n');
symlinkSync('file.txt', join(D, 'rel_in'));
symlinkSync('../file.txt', join(D, 'sub', 'up_in'));
symlinkSync(secretPath, join(D, 'abs_out'));
symlinkSync('../secret', join(D, 'rel_out'));
symlinkSync('../../secret', join(D, 'sub', 'deep_out'));
symlinkSync(work, join(D, 'dir_abs'));
symlinkSync('..', join(D, 'dir_rel'));

let scratch = 0;
/** A fresh empty host directory under work/. */
function freshDir(name: string): string {
  const dir = join(work, `${name}-${scratch++}`);
  mkdirSync(dir);
  return dir;
}

/** Run a test program with captured output. */
function runProgram(name: ProgramName, variant: Variant, args: string[] = [], options: RunOptions = {}): RunResult {
  return run(program(name, variant), args, options);
}

/** A string as a literal part of a RegExp. */
function escapeRe(s: string): string {
  return s.replace(/[.*+?^$()|[\]{}\\]/g, '\\$&');
}

/** Describe a result for assertion messages. */
function show(r: RunResult): string {
  return `exit ${r.exitStatus}, stdout ${JSON.stringify(r.stdout.toString().slice(0, 400))}, stderr ${JSON.stringify(r.stderr.toString().slice(0, 400))}`;
}

// ---- hello: argv, envp, exit status ----

for (const v of VARIANTS) {
  test(`hello (${v}): prints argv exactly as given and exits with argv[1]`, () => {
    const prog = program('hello', v);
    const args = ['42', 'two words', '', 'ünïcødé', '--flag=x'];
    const r = run(prog, args);
    assert.equal(r.exitStatus, 42, show(r));
    assert.equal(r.reason.kind, 'exited');
    assert.equal(r.signal, undefined);
    const expected = ['hello, world', `argv[0]=${prog}`, ...args.map((a, i) => `argv[${i + 1}]=${a}`), `argc=${args.length + 1}`];
    assert.equal(r.stdout.toString(), expected.join('\n') + '\n');
    assert.equal(r.stderr.length, 0, show(r));
    assert.ok(r.syscalls > 0, 'a program that prints makes system calls');
  });

  test(`hello (${v}): exit status 0 without a numeric argv[1], and many arguments`, () => {
    const args = Array.from({ length: 300 }, (_, i) => `arg${i}-${'x'.repeat(i % 50)}`);
    const r = runProgram('hello', v, args);
    assert.equal(r.exitStatus, 0, show(r));
    const out = lines(r.stdout.toString());
    assert.equal(out.at(-1), `argc=${args.length + 1}`);
    assert.equal(out[1 + 300], `argv[300]=${args[299]}`);
  });

  test(`hello (${v}): options.env reaches getenv, the host environment does not`, () => {
    process.env.FOO = 'from-the-host';
    try {
      const none = runProgram('hello', v);
      assert.equal(none.exitStatus, 0, show(none));
      assert.doesNotMatch(none.stdout.toString(), /env FOO=/, 'the host environment leaked into the guest');

      const obj = runProgram('hello', v, ['7'], { env: { FOO: 'bar = baz', OTHER: '1' } });
      assert.equal(obj.exitStatus, 7, show(obj));
      assert.match(obj.stdout.toString(), /^env FOO=bar = baz$/m);

      const list = runProgram('hello', v, [], { env: ['A=1', 'FOO=from-list'] });
      assert.match(list.stdout.toString(), /^env FOO=from-list$/m);
    } finally {
      delete process.env.FOO;
    }
  });
}

test('the environment is exactly options.env (busybox env)', { skip: NO_BUSYBOX }, () => {
  process.env.KVMBOX_TEST_LEAK = 'leak';
  try {
    const r = run(BUSYBOX, ['env'], { env: { A: '1', B: 'two words' } });
    assert.equal(r.exitStatus, 0, show(r));
    assert.deepEqual(lines(r.stdout.toString()).sort(), ['A=1', 'B=two words']);
    const dflt = run(BUSYBOX, ['env']);
    assert.doesNotMatch(dflt.stdout.toString(), /KVMBOX_TEST_LEAK/);
    assert.match(dflt.stdout.toString(), /^PATH=/m, 'the default environment has a PATH');
  } finally {
    delete process.env.KVMBOX_TEST_LEAK;
  }
});

// ---- exitcode: every exit path ----

for (const v of VARIANTS) {
  test(`exitcode (${v}): return from main, exit() and _exit() all reach the host, modulo 256`, () => {
    const cases: Array<[string[], number]> = [
      [[], 0], [['1'], 1], [['7', '_exit'], 7], [['9', 'exit'], 9], [['255'], 255],
      [['256'], 0], [['300', '_exit'], 44], [['-1'], 255], [['123', 'exit'], 123],
    ];
    for (const [args, status] of cases) {
      const r = runProgram('exitcode', v, args);
      assert.equal(r.exitStatus, status, `exitcode ${args.join(' ')}: ${show(r)}`);
      assert.equal(r.reason.kind, 'exited');
      assert.equal(r.stdout.length + r.stderr.length, 0, show(r));
    }
  });
}

// ---- big-output: a large stream arrives intact ----

for (const v of VARIANTS) {
  test(`big-output (${v}): 1 MiB on stdout, byte i == i % 251`, () => {
    const size = 1 << 20;
    const r = runProgram('big-output', v);
    assert.equal(r.exitStatus, 0, show(r));
    assert.equal(r.stderr.length, 0, r.stderr.toString());
    assert.equal(r.stdout.length, size);
    assert.equal(firstDifference(r.stdout, bigOutputPattern(size)), -1, 'output differs from the pattern');
    // The program writes 4 KiB at a time. On hardware KVM each write reaches the host; on
    // kvm_pvm the stub buffers captured output and the host takes it in a few large pieces.
    if (onUserStubPath()) assert.ok(r.syscalls < size / 4096 / 4, `captured writes buffered, got ${r.syscalls} system calls`);
    else assert.ok(r.syscalls >= size / 4096, `at least one write per 4 KiB chunk, got ${r.syscalls} system calls`);
  });
}

test('big-output: an odd size that ends mid-chunk', () => {
  const r = runProgram('big-output', 'musl', ['100003']);
  assert.equal(r.exitStatus, 0, show(r));
  assert.equal(r.stdout.length, 100003);
  assert.equal(firstDifference(r.stdout, bigOutputPattern(100003)), -1);
});

// ---- orw: reading granted files, and nothing else ----

function expectRead(r: RunResult, expected: string | Buffer): void {
  assert.equal(r.exitStatus, 0, show(r));
  assert.equal(r.stderr.toString(), '');
  assert.ok(r.stdout.equals(Buffer.from(expected)), `stdout differs from the host file: ${show(r)}`);
}

/** orw could not open path: status 1, nothing on stdout, the secret nowhere, and strerror(errno). */
function expectDenied(r: RunResult, path: string, strerror = 'No such file or directory'): void {
  assert.equal(r.exitStatus, 1, `${path}: ${show(r)}`);
  assert.equal(r.stdout.length, 0, `${path} revealed something: ${show(r)}`);
  assert.ok(!r.stderr.includes(SECRET.trim()), `${path} revealed the secret: ${show(r)}`);
  assert.equal(r.stderr.toString(), `orw: ${path}: ${strerror}\n`);
}

for (const v of VARIANTS) {
  test(`orw (${v}): a granted file reads as on the host (/etc/os-release, the headline demo)`, () => {
    const r = runProgram('orw', v, ['/etc/os-release'], { ro: ['/etc/os-release'] });
    expectRead(r, readFileSync('/etc/os-release'));
  });

  test(`orw (${v}): a granted file larger than one 4 KiB read arrives whole`, () => {
    const path = join(D, 'big.bin');
    expectRead(runProgram('orw', v, [path], { ro: [path] }), BIG);
  });

  test(`orw (${v}): files below a granted directory are readable`, () => {
    expectRead(runProgram('orw', v, [join(D, 'file.txt')], { ro: [D] }), FILE_TXT);
    expectRead(runProgram('orw', v, [join(D, 'sub', 'nested.txt')], { ro: [D] }), 'nested\n');
    expectRead(runProgram('orw', v, [join(D, 'big.bin')], { rw: [D] }), BIG);
  });

  test(`orw (${v}): an ungranted file does not exist for the guest`, () => {
    expectDenied(runProgram('orw', v, ['/etc/os-release']), '/etc/os-release');
    expectDenied(runProgram('orw', v, [secretPath], { ro: [D] }), secretPath);
    // Granting one file shows neither its siblings nor its directory's other entries.
    const big = join(D, 'big.bin');
    expectDenied(runProgram('orw', v, [big], { ro: [join(D, 'file.txt')] }), big);
    // The same file, granted, is readable: the denial above is the grant's doing.
    expectRead(runProgram('orw', v, [secretPath], { ro: [secretPath] }), SECRET);
  });

  test(`orw (${v}): '..' cannot climb out of a grant`, () => {
    for (const path of [`${D}/../secret`, `${D}/sub/../../secret`, `${D}/./sub/.././../secret`, `${D}/sub/../../grant/../secret`]) {
      expectDenied(runProgram('orw', v, [path], { ro: [D] }), path);
    }
    // Relative to a working directory inside the grant.
    expectDenied(runProgram('orw', v, ['../secret'], { ro: [D], cwd: D }), '../secret');
    expectDenied(runProgram('orw', v, ['sub/../../secret'], { ro: [D], cwd: D }), 'sub/../../secret');
    // '..' that stays inside the grant works.
    expectRead(runProgram('orw', v, [`${D}/sub/../file.txt`], { ro: [D] }), FILE_TXT);
  });

  test(`orw (${v}): a symlink inside a grant cannot reveal a file outside it`, () => {
    for (const rel of ['abs_out', 'rel_out', 'sub/deep_out', 'dir_abs/secret', 'dir_rel/secret']) {
      const path = `${D}/${rel}`;
      const r = runProgram('orw', v, [path], { ro: [D] });
      assert.equal(r.exitStatus, 1, `${rel}: ${show(r)}`);
      assert.equal(r.stdout.length, 0, `${rel} revealed something: ${show(r)}`);
      assert.ok(!r.stderr.includes(SECRET.trim()), `${rel}: ${show(r)}`);
      assert.match(r.stderr.toString(), new RegExp(`^orw: ${escapeRe(path)}: .+\\n$`));
    }
  });

  test(`orw (${v}): symlinks that stay inside the grant are followed`, () => {
    expectRead(runProgram('orw', v, [`${D}/rel_in`], { ro: [D] }), FILE_TXT);
    expectRead(runProgram('orw', v, [`${D}/sub/up_in`], { ro: [D] }), FILE_TXT);
  });
}

// ---- the guest sees only its grants (busybox ls) ----

test('deny by default: / holds nothing but the path to the grants', { skip: NO_BUSYBOX }, () => {
  const empty = run(BUSYBOX, ['ls', '-a', '/']);
  assert.equal(empty.exitStatus, 0, show(empty));
  assert.deepEqual(lines(empty.stdout.toString()).filter((n) => n !== '.' && n !== '..'), []);

  const first = D.split('/')[1]!;
  const withGrant = run(BUSYBOX, ['ls', '-a', '/', work], { ro: [D] });
  assert.equal(withGrant.exitStatus, 0, show(withGrant));
  const out = withGrant.stdout.toString();
  // "/:" lists only the first component of the grant's path; work/ lists only "grant", not "secret".
  const [root, workList] = out.split(/\n\n/).map((block) => lines(block).slice(1).filter((n) => n !== '.' && n !== '..'));
  assert.deepEqual(root, [first], out);
  assert.deepEqual(workList, ['grant'], out);
});

// ---- writing: --rw allows it, --ro refuses it, neither leaks outside ----

function sh(script: string, options: RunOptions): RunResult {
  return run(BUSYBOX, ['sh', '-c', script], options);
}

test('--rw: a shell redirection creates and overwrites host files', { skip: NO_BUSYBOX }, () => {
  const dir = freshDir('rw');
  const r = sh('echo x > f', { rw: [dir], cwd: dir });
  assert.equal(r.exitStatus, 0, show(r));
  assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'x\n');

  writeFileSync(join(dir, 'old'), 'old contents that are longer\n');
  const over = sh(`echo new > ${dir}/old`, { rw: [dir] });
  assert.equal(over.exitStatus, 0, show(over));
  assert.equal(readFileSync(join(dir, 'old'), 'utf8'), 'new\n', 'O_TRUNC reached the host');

  const append = sh(`echo more >> ${dir}/old`, { rw: [dir] });
  assert.equal(append.exitStatus, 0, show(append));
  assert.equal(readFileSync(join(dir, 'old'), 'utf8'), 'new\nmore\n');
});

test('--rw on a single file: it can be rewritten', { skip: NO_BUSYBOX }, () => {
  const dir = freshDir('rwfile');
  const file = join(dir, 'only');
  writeFileSync(file, 'before\n');
  const r = sh(`echo after > ${file}`, { rw: [file] });
  assert.equal(r.exitStatus, 0, show(r));
  assert.equal(readFileSync(file, 'utf8'), 'after\n');
});

test('--ro: writing fails with EROFS and leaves the host unchanged', { skip: NO_BUSYBOX }, () => {
  const dir = freshDir('ro');
  writeFileSync(join(dir, 'keep'), 'keep me\n');
  const create = sh('echo x > f', { ro: [dir], cwd: dir });
  assert.notEqual(create.exitStatus, 0, show(create));
  assert.match(create.stderr.toString(), /Read-only file system/);
  assert.equal(existsSync(join(dir, 'f')), false, 'a file appeared in a read-only grant');

  const over = sh(`echo x > ${dir}/keep`, { ro: [dir] });
  assert.notEqual(over.exitStatus, 0, show(over));
  assert.equal(readFileSync(join(dir, 'keep'), 'utf8'), 'keep me\n');

  const rm = run(BUSYBOX, ['rm', join(dir, 'keep')], { ro: [dir] });
  assert.notEqual(rm.exitStatus, 0, show(rm));
  assert.equal(existsSync(join(dir, 'keep')), true, 'rm removed a file in a read-only grant');

  const touch = run(BUSYBOX, ['touch', join(dir, 'new')], { ro: [dir] });
  assert.notEqual(touch.exitStatus, 0, show(touch));
  assert.equal(existsSync(join(dir, 'new')), false);

  // The same removal in a read-write grant succeeds: the refusal above is the grant's doing.
  const rmRw = run(BUSYBOX, ['rm', join(dir, 'keep')], { rw: [dir] });
  assert.equal(rmRw.exitStatus, 0, show(rmRw));
  assert.equal(existsSync(join(dir, 'keep')), false);
});

test('--ro over --rw: the innermost grant decides', { skip: NO_BUSYBOX }, () => {
  const dir = freshDir('nested');
  mkdirSync(join(dir, 'w'));
  const r = sh(`echo a > ${dir}/w/a; echo b > ${dir}/b`, { ro: [dir], rw: [join(dir, 'w')] });
  assert.notEqual(r.exitStatus, 0, 'writing into the read-only part must fail');
  assert.equal(readFileSync(join(dir, 'w', 'a'), 'utf8'), 'a\n');
  assert.equal(existsSync(join(dir, 'b')), false);
});

test('--rw: writes cannot escape the grant through .. or symlinks', { skip: NO_BUSYBOX }, () => {
  const base = freshDir('escape');
  const dir = join(base, 'g');
  mkdirSync(dir);
  const target = join(base, 'target');
  writeFileSync(target, 'untouched\n');
  symlinkSync(target, join(dir, 'abs_existing'));
  symlinkSync('../target', join(dir, 'rel_existing'));
  symlinkSync(join(base, 'created_abs'), join(dir, 'abs_dangling'));
  symlinkSync('../created_rel', join(dir, 'rel_dangling'));
  symlinkSync(base, join(dir, 'dir_abs'));
  const attempts = ['../dotdot', `${dir}/../dotdot2`, `${base}/outside`, 'abs_existing', 'rel_existing',
    'abs_dangling', 'rel_dangling', 'dir_abs/via_dir', 'dir_abs/target'];
  for (const path of attempts) {
    const r = sh(`echo pwned > ${path}`, { rw: [dir], cwd: dir });
    assert.notEqual(r.exitStatus, 0, `writing ${path} succeeded: ${show(r)}`);
  }
  assert.equal(readFileSync(target, 'utf8'), 'untouched\n');
  for (const name of ['dotdot', 'dotdot2', 'outside', 'created_abs', 'created_rel', 'via_dir']) {
    assert.equal(existsSync(join(base, name)), false, `${name} was created outside the grant`);
  }
  // Control: a plain write in the same grant works.
  const ok = sh('echo fine > plain', { rw: [dir], cwd: dir });
  assert.equal(ok.exitStatus, 0, show(ok));
  assert.equal(readFileSync(join(dir, 'plain'), 'utf8'), 'fine\n');
});

// stat() and utimensat() of a path below a granted directory (the O_PATH lookups behind cp and touch).

test('--rw: busybox cp and touch create host files', { skip: NO_BUSYBOX }, () => {
  const dir = freshDir('cp');
  writeFileSync(join(dir, 'src'), 'copy me\n');
  const cp = run(BUSYBOX, ['cp', 'src', 'dst'], { rw: [dir], cwd: dir });
  assert.equal(cp.exitStatus, 0, show(cp));
  assert.equal(readFileSync(join(dir, 'dst'), 'utf8'), 'copy me\n');
  const touch = run(BUSYBOX, ['touch', join(dir, 'touched')], { rw: [dir] });
  assert.equal(touch.exitStatus, 0, show(touch));
  assert.equal(existsSync(join(dir, 'touched')), true);
});

test('newfstatat: stat of a file below a granted directory gives its size and type', { skip: NO_BUSYBOX }, () => {
  const r = run(BUSYBOX, ['stat', '-c', '%s %F', join(D, 'big.bin')], { ro: [D] });
  assert.equal(r.exitStatus, 0, show(r));
  assert.equal(r.stdout.toString(), `${BIG.length} regular file\n`);
});

// ---- fault: CPU exceptions end the program as Linux's signals would ----

const GUEST_KERNEL_ADDR = 0xffffffff80020000n; // fault.c
const SIGNALS = { SIGILL: 4, SIGTRAP: 5, SIGFPE: 8, SIGSEGV: 11 } as const;

interface FaultCase {
  kind: string;
  signal: keyof typeof SIGNALS;
  /** How the message names the exception. */
  names: RegExp;
  /** Page faults: the address the message must give. */
  address?: bigint;
  /** The instruction at the reported rip (before it, for the trap int3). */
  insn?: (at: Buffer, before: number) => boolean;
}

const GP = /#GP|general protection/i;
const PF = /page fault/i;
/** Opcode 0F xx with ModRM.reg == reg (when given). */
const op0f = (second: number, reg?: number) => (b: Buffer) =>
  b[0] === 0x0f && b[1] === second && (reg === undefined || ((b[2]! >> 3) & 7) === reg);
const FAULTS: FaultCase[] = [
  { kind: 'segv', signal: 'SIGSEGV', names: PF, address: 0x10n },
  { kind: 'null', signal: 'SIGSEGV', names: PF, address: 0n },
  { kind: 'ill', signal: 'SIGILL', names: /#UD|invalid opcode/i, insn: op0f(0x0b) },
  // idiv/div r/m32: F7 /7 or /6, maybe behind a REX prefix.
  { kind: 'fpe', signal: 'SIGFPE', names: /#DE|divide/i,
    insn: (b) => { const o = b[0]! >= 0x40 && b[0]! <= 0x4f ? 1 : 0; return b[o] === 0xf7 && ((b[o + 1]! >> 3) & 7) >= 6; } },
  { kind: 'kernel-read', signal: 'SIGSEGV', names: PF, address: GUEST_KERNEL_ADDR },
  { kind: 'kernel-write', signal: 'SIGSEGV', names: PF, address: GUEST_KERNEL_ADDR },
  { kind: 'kernel-exec', signal: 'SIGSEGV', names: PF, address: GUEST_KERNEL_ADDR },
  { kind: 'hlt', signal: 'SIGSEGV', names: GP, insn: (b) => b[0] === 0xf4 },
  { kind: 'cli', signal: 'SIGSEGV', names: GP, insn: (b) => b[0] === 0xfa },
  { kind: 'out', signal: 'SIGSEGV', names: GP, insn: (b) => b[0] === 0xee },
  { kind: 'wrmsr', signal: 'SIGSEGV', names: GP, insn: op0f(0x30) },
  { kind: 'lidt', signal: 'SIGSEGV', names: GP, insn: op0f(0x01, 3) },
  { kind: 'cr3', signal: 'SIGSEGV', names: GP, insn: op0f(0x20, 3) },
  { kind: 'int3', signal: 'SIGTRAP', names: /#BP|breakpoint/i, insn: (_b, before) => before === 0xcc },
];

/** The bytes of an ELF file at a guest virtual address (static-PIE programs sit at PIE_BASE). */
function bytesAt(file: Buffer, addr: number, n: number): Buffer {
  const type = file.readUInt16LE(16);
  const phoff = Number(file.readBigUInt64LE(32));
  const phnum = file.readUInt16LE(56);
  const loads: Array<{ offset: number; vaddr: number; filesz: number }> = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 56;
    if (file.readUInt32LE(o) !== 1) continue;
    loads.push({ offset: Number(file.readBigUInt64LE(o + 8)), vaddr: Number(file.readBigUInt64LE(o + 16)), filesz: Number(file.readBigUInt64LE(o + 32)) });
  }
  const bias = type === 3 ? PIE_BASE - Math.floor(Math.min(...loads.map((l) => l.vaddr)) / 4096) * 4096 : 0;
  const seg = loads.find((l) => addr - bias >= l.vaddr && addr - bias + n <= l.vaddr + l.filesz);
  assert.ok(seg, `0x${addr.toString(16)} is not in the program's file-backed segments`);
  const off = seg.offset + (addr - bias - seg.vaddr);
  return file.subarray(off, off + n);
}

for (const v of VARIANTS) {
  for (const f of FAULTS) {
    const status = 128 + SIGNALS[f.signal];
    test(`fault ${f.kind} (${v}): ${f.signal}, exit status ${status}, one line naming the fault and address`, () => {
      const r = runProgram('fault', v, [f.kind]);
      assert.equal(r.exitStatus, status, show(r));
      assert.equal(r.signal, SIGNALS[f.signal]);
      assert.equal(r.reason.kind, 'signaled');
      assert.equal(r.stdout.toString(), `about to ${f.kind}\n`, 'the program must die at the fault, not survive it');
      const err = r.stderr.toString();
      assert.match(err, /^[^\n]+\n$/, `exactly one line on stderr: ${JSON.stringify(err)}`);
      assert.match(err, /^kvmbox: /);
      assert.ok(err.includes(f.signal), err);
      assert.match(err, f.names);
      if (f.address !== undefined) {
        assert.match(err, new RegExp(`\\b0x0*${f.address.toString(16)}\\b`), `the fault address is missing: ${err}`);
      }
      if (f.address === GUEST_KERNEL_ADDR) assert.match(err, /kernel memory/);
      if (f.insn) {
        const rip = /\brip 0x([0-9a-f]+)/.exec(err);
        assert.ok(rip, `no rip in ${err}`);
        const at = Number.parseInt(rip[1]!, 16);
        const image = readFileSync(program('fault', v));
        assert.ok(f.insn(bytesAt(image, at, 3), bytesAt(image, at - 1, 1)[0]!),
          `rip 0x${at.toString(16)} is not the faulting instruction (bytes ${bytesAt(image, at - 1, 4).toString('hex')})`);
      }
    });
  }
}

// ---- the system calls libc needs ----

for (const v of VARIANTS) {
  test(`syscalls (${v}): every check passes with a granted file`, () => {
    const file = join(D, 'big.bin');
    const r = runProgram('syscalls', v, [file], { ro: [D] });
    const out = lines(r.stdout.toString());
    assert.deepEqual(out.filter((l) => l.startsWith('FAIL')), []);
    assert.equal(out.at(-1), 'failures=0');
    assert.equal(r.exitStatus, 0, show(r));
    for (const name of ['fstat', 'lseek', 'enosys', 'enoent', 'readlink', 'ioctl-tcgets', 'tls', 'brk', 'mmap', 'getrandom']) {
      assert.ok(out.includes(`ok ${name}`), `"ok ${name}" missing (or skipped) in ${JSON.stringify(out)}`);
    }
  });

  test(`syscalls (${v}): the exit status counts failures (ungranted file: fstat and lseek fail)`, () => {
    const file = join(D, 'big.bin');
    const r = runProgram('syscalls', v, [file]);
    const out = lines(r.stdout.toString());
    assert.deepEqual(out.filter((l) => l.startsWith('FAIL')).map((l) => l.split(':')[0]), ['FAIL fstat', 'FAIL lseek']);
    assert.equal(out.at(-1), 'failures=2');
    assert.equal(r.exitStatus, 2);
  });

  test(`unknown system call (${v}): ENOSYS, a "(not implemented)" trace line, and the program goes on`, () => {
    const trace: string[] = [];
    const r = runProgram('syscalls', v, [], { trace: (l) => trace.push(l) });
    assert.equal(r.exitStatus, 0, show(r));
    assert.ok(lines(r.stdout.toString()).includes('ok enosys'));
    const unknown = trace.filter((l) => /\b(syscall_)?1000\(/.test(l));
    assert.equal(unknown.length, 1, `one trace line for syscall 1000 in:\n${trace.join('\n')}`);
    assert.match(unknown[0]!, /^\[kvmbox\] .*= -1 ENOSYS \(not implemented\)$/);
    // Implemented calls are not marked, and the trace went to the callback, not into stderr.
    assert.ok(trace.some((l) => /^\[kvmbox\] write\(1, /.test(l) && !l.includes('not implemented')));
    assert.doesNotMatch(r.stderr.toString(), /\[kvmbox\]/);
  });
}

// ---- --trace ----

for (const v of VARIANTS) {
  test(`trace (${v}): one strace-like line per system call, with arguments and results`, () => {
    const trace: string[] = [];
    const file = join(D, 'file.txt');
    const r = runProgram('orw', v, [file], { ro: [D], trace: (l) => trace.push(l) });
    expectRead(r, FILE_TXT);
    assert.ok(trace.every((l) => l.startsWith('[kvmbox] ') && !l.includes('\n')), trace.join('\n'));
    assert.equal(trace.length, r.syscalls, 'one line per system call');
    const text = trace.join('\n');
    const n = FILE_TXT.length;
    assert.match(text, new RegExp(`^\\[kvmbox\\] open(at)?\\((-100, )?"${escapeRe(file)}", .*\\) = 3$`, 'm'));
    assert.match(text, new RegExp(`^\\[kvmbox\\] read\\(3, 0x[0-9a-f]+, \\d+\\) = ${n}$`, 'm'));
    assert.match(text, new RegExp(`^\\[kvmbox\\] write\\(1, 0x[0-9a-f]+, ${n}\\) = ${n}$`, 'm'));
    assert.match(text, /^\[kvmbox\] close\(3\) = 0$/m);
    assert.match(trace.at(-1)!, /^\[kvmbox\] exit_group\(0\)/);
    // A failing call shows its errno.
    const denied: string[] = [];
    runProgram('orw', v, ['/nonexistent/x'], { trace: (l) => denied.push(l) });
    assert.match(denied.join('\n'), /^\[kvmbox\] open(at)?\(.*"\/nonexistent\/x".*\) = -1 ENOENT$/m);
  });
}

// ---- stdin and the working directory ----

test('stdin: options.stdin bytes reach the program intact', { skip: NO_BUSYBOX }, () => {
  const text = run(BUSYBOX, ['cat'], { stdin: 'a\nb\n' });
  assert.equal(text.exitStatus, 0, show(text));
  assert.equal(text.stdout.toString(), 'a\nb\n');

  const bytes = Buffer.alloc(256 * 300);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  const bin = run(BUSYBOX, ['cat'], { stdin: new Uint8Array(bytes) });
  assert.equal(bin.exitStatus, 0, show(bin));
  assert.equal(firstDifference(bin.stdout, bytes), -1);

  const wc = run(BUSYBOX, ['wc', '-l'], { stdin: 'one\ntwo\nthree\n' });
  assert.equal(wc.stdout.toString().trim(), '3');
});

test('stdin: empty by default, so a reader sees end of file at once', { skip: NO_BUSYBOX }, () => {
  const r = run(BUSYBOX, ['cat'], { timeoutSeconds: 20 });
  assert.equal(r.exitStatus, 0, show(r));
  assert.equal(r.stdout.length, 0);
});

for (const v of VARIANTS) {
  test(`cwd (${v}): relative paths resolve against options.cwd`, () => {
    expectRead(runProgram('orw', v, ['file.txt'], { ro: [D], cwd: D }), FILE_TXT);
    expectRead(runProgram('orw', v, ['nested.txt'], { ro: [D], cwd: join(D, 'sub') }), 'nested\n');
    expectRead(runProgram('orw', v, ['../file.txt'], { ro: [D], cwd: join(D, 'sub') }), FILE_TXT);
    expectRead(runProgram('orw', v, ['sub/nested.txt'], { ro: [D], cwd: D }), 'nested\n');
    // The default working directory is /, where file.txt does not exist.
    expectDenied(runProgram('orw', v, ['file.txt'], { ro: [D] }), 'file.txt');
  });
}

test('cwd: getcwd reports options.cwd, and / by default', { skip: NO_BUSYBOX }, () => {
  const r = run(BUSYBOX, ['pwd'], { ro: [D], cwd: join(D, 'sub') });
  assert.equal(r.stdout.toString(), `${join(D, 'sub')}\n`, show(r));
  const dflt = run(BUSYBOX, ['pwd']);
  assert.equal(dflt.stdout.toString(), '/\n', show(dflt));
});

// ---- what cannot run, and why ----

test('a dynamically linked program without its interpreter granted is refused: NotRunnableError, 126, says how to grant it', () => {
  assert.throws(() => run(dynamicHello()), (e: unknown) => {
    assert.ok(e instanceof NotRunnableError, String(e));
    assert.equal(e.exitStatus, 126);
    assert.match(e.message, /interpreter \/lib64\/ld-linux-x86-64\.so\.2 is not granted/);
    assert.match(e.message, /--ro \/lib64/);
    return true;
  });
});

test('files that are not x86-64 ELF executables are refused with 126', () => {
  const dir = freshDir('notelf');
  const hello = readFileSync(program('hello', 'glibc'));
  const elf32 = Buffer.from(hello);
  elf32[4] = 1; // ELFCLASS32
  elf32.writeUInt16LE(3, 18); // EM_386
  const arm = Buffer.from(hello);
  arm.writeUInt16LE(183, 18); // EM_AARCH64
  const cases: Array<[string, Buffer | string, RegExp]> = [
    ['text.txt', 'just some text\n', /not an ELF/],
    // A script runs through its interpreter, which opens it by path: ungranted, it is refused.
    ['script.sh', '#!/bin/sh\necho hi\n', /a script, which its interpreter \/bin\/sh opens by path, and it is not granted.*--ro /],
    ['noline.sh', '#!   \necho hi\n', /#! line names no interpreter/],
    ['empty', '', /not an ELF/],
    ['elf32', elf32, /x86-64/],
    ['aarch64', arm, /x86-64/],
    ['truncated', hello.subarray(0, 40), /truncated|ELF/],
  ];
  for (const [name, contents, why] of cases) {
    const path = join(dir, name);
    writeFileSync(path, contents, { mode: 0o755 });
    assert.throws(() => run(path), (e: unknown) => {
      assert.ok(e instanceof NotRunnableError, `${name}: ${String(e)}`);
      assert.equal(e.exitStatus, 126);
      assert.match(e.message, why, name);
      assert.ok(e.message.includes(path), `${name}: the message names the file: ${e.message}`);
      return true;
    });
  }
});

test('a missing program: ProgramNotFoundError, 127', () => {
  const path = join(work, 'no-such-program');
  assert.throws(() => run(path), (e: unknown) => {
    assert.ok(e instanceof ProgramNotFoundError, String(e));
    assert.equal(e.exitStatus, 127);
    assert.ok(e.message.includes(path));
    return true;
  });
});

test('a directory as the program exists but is not runnable: 126, like env(1)', () => {
  assert.throws(() => run(work), (e: unknown) => (e as { exitStatus?: number }).exitStatus === 126);
});

test('no usable KVM device: KvmUnavailableError naming the device and how to fix it', () => {
  assert.throws(() => new Kvm('/nonexistent/kvm'), (e: unknown) => {
    assert.ok(e instanceof KvmUnavailableError, String(e));
    assert.ok(e.message.includes('/nonexistent/kvm'), e.message);
    assert.match(e.message, /modprobe|load the kvm module/);
    return true;
  });
  // The real device works (the same constructor, so the failure above is the path's doing).
  const kvm = new Kvm();
  kvm.close();
});

test('a device that is not KVM: KvmUnavailableError naming it', () => {
  assert.throws(() => new Kvm('/dev/null'), (e: unknown) =>
    e instanceof KvmUnavailableError && e.message.includes('/dev/null'));
});
