// Dynamically linked programs (issue 14): the host's own Debian programs, unmodified, run with the
// system directories granted read-only; kvmbox maps the program and its interpreter (ld.so), and
// ld.so maps the libraries itself through open, pread, mmap and mprotect. Every output is compared
// with the same program run natively with the same environment.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InterpreterNotFoundError, NotRunnableError, runSync as run, type RunOptions, type RunResult } from '../src/index.js';
import { dynamicHello, onUserStubPath, program, PROGRAMS_DIR, runCli } from './helpers.js';
import { imageCacheStats } from '../src/linux/image-cache.js';

/** Debian's system directories (merged /usr: /lib and /lib64 are symlinks into /usr) and ld.so's cache. */
const SYSTEM = ['/usr', '/lib', '/lib64', '/etc/ld.so.cache'];
const SYSTEM_FLAGS = SYSTEM.flatMap((d) => ['--ro', d]);
const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];

const work = mkdtempSync(join(tmpdir(), 'kvmbox-dynamic-'));
after(() => rmSync(work, { recursive: true, force: true }));

function show(r: RunResult): string {
  return `status ${r.exitStatus}\nstdout: ${r.stdout.toString().slice(0, 2000)}\nstderr: ${r.stderr.toString().slice(0, 2000)}`;
}

/** Run in kvmbox with the system granted (plus `ro`), and natively, with the same argv, env and stdin. */
function both(program: string, args: string[], opts: { ro?: string[]; stdin?: string } = {}): { guest: RunResult; native: { status: number | null; stdout: string; stderr: string } } {
  const options: RunOptions = { ro: [...SYSTEM, ...(opts.ro ?? [])], env: ENV, stdin: opts.stdin };
  const guest = run(program, args, options);
  const n = spawnSync(program, args, {
    env: Object.fromEntries(ENV.map((e) => e.split('=') as [string, string])), input: opts.stdin ?? '', encoding: 'utf8',
  });
  return { guest, native: { status: n.status, stdout: n.stdout, stderr: n.stderr } };
}

function same(program: string, args: string[], opts: { ro?: string[]; stdin?: string } = {}): RunResult {
  const { guest, native } = both(program, args, opts);
  assert.equal(guest.stdout.toString(), native.stdout, show(guest));
  assert.equal(guest.exitStatus, native.status, show(guest));
  return guest;
}

test('/bin/true: status 0, nothing printed', () => {
  const r = run('/bin/true', [], { ro: SYSTEM, env: ENV });
  assert.equal(r.exitStatus, 0, show(r));
  assert.equal(r.stdout.length + r.stderr.length, 0, show(r));
});

test('/bin/false: status 1', () => {
  const r = run('/bin/false', [], { ro: SYSTEM, env: ENV });
  assert.equal(r.exitStatus, 1, show(r));
});

test('/bin/echo and the dynamically linked test program print what they print natively', () => {
  same('/bin/echo', ['hello', 'from', 'ld.so']);
  same(dynamicHello(), []);
});

test('the auxiliary vector, static and dynamic, PIE and ET_EXEC: what getauxval and dl_iterate_phdr see is as natively', () => {
  for (const variant of ['glibc', 'musl', 'pie', 'dyn', 'dynexec']) {
    const exe = `${PROGRAMS_DIR}/auxv.${variant}`;
    const r = same(exe, []);
    assert.match(r.stdout.toString(), variant.startsWith('dyn') ? /AT_BASE set: 1\n[^]*object: libc\.so\.6/ : /AT_BASE set: 0/, variant);
  }
  // ET_EXEC at its own address, with arguments, environment and exit status.
  const { guest, native } = both(`${PROGRAMS_DIR}/hello.dynexec`, ['7', 'two words']);
  assert.equal(guest.stdout.toString(), native.stdout, show(guest));
  assert.equal(guest.exitStatus, 7, show(guest));
});

// test/programs/maps.c: /proc/self/maps as glibc's and musl's pthread_getattr_np read it for the
// main thread's stack, and as sanitizers and collectors read it: runs of pages with their rights,
// offsets and names.
test('/proc/self/maps: the stack, a file at an offset, mprotect splits, shared memory, names; pthread_getattr_np finds the main stack', () => {
  for (const v of ['glibc', 'musl', 'pie', 'dyn']) {
    const prog = `${PROGRAMS_DIR}/maps.${v}`;
    const { guest, native } = both(prog, [prog], { ro: [PROGRAMS_DIR] });
    assert.equal(native.status, 0, native.stderr);
    assert.doesNotMatch(native.stdout, /: 0$/m, `natively: ${native.stdout}`);
    // On kvm_pvm a MAP_SHARED anonymous mapping is private to each process, so 'p'.
    const drop = (s: string) => (onUserStubPath() ? s.replace(/^shared line: .\n/m, '') : s);
    assert.equal(drop(guest.stdout.toString()), drop(native.stdout), `${v}: ${show(guest)}`);
    assert.equal(guest.exitStatus, 0, show(guest));
  }
});

test('ls -l of a granted directory: the same names, sizes and modes as natively', () => {
  const dir = join(work, 'listing');
  rmSync(dir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', join(dir, 'sub')]);
  writeFileSync(join(dir, 'a.txt'), 'alpha\n');
  writeFileSync(join(dir, 'b.bin'), Buffer.alloc(12345, 7));
  writeFileSync(join(dir, 'empty'), '');
  const { guest, native } = both('/bin/ls', ['-l', '--time-style=+%s', dir], { ro: [dir] });
  assert.equal(guest.exitStatus, 0, show(guest));
  // The owner columns differ (the guest is uid 1000): compare mode, size, time and name.
  const cols = (text: string): string[] => text.trim().split('\n').map((l) => {
    const f = l.split(/\s+/);
    return f.length < 7 ? l : [f[0], ...f.slice(-3)].join(' ');
  });
  assert.deepEqual(cols(guest.stdout.toString()), cols(native.stdout), show(guest));
  assert.match(guest.stdout.toString(), /12345 \d+ b\.bin/);
  same('/bin/ls', ['-a', dir], { ro: [dir] });
});

test('sort, sha256sum and mawk over stdin and a granted file', () => {
  const lines = Array.from({ length: 500 }, (_, i) => `${(i * 7919) % 1000} line ${i}`).join('\n') + '\n';
  const file = join(work, 'data.txt');
  writeFileSync(file, lines);
  same('/usr/bin/sort', ['-n'], { stdin: lines });
  same('/usr/bin/sort', ['-r', file], { ro: [file] });
  same('/usr/bin/sha256sum', [file], { ro: [file] });
  same('/usr/bin/mawk', ['{ s += $1 } END { print NR, s, s / NR }'], { stdin: lines });
  same('/usr/bin/mawk', ['BEGIN { printf "%.6f %d\\n", atan2(0, -1), 2 ^ 40 }']);
});

test("dash -c 'echo hi; exit 3': builtins, status 3", () => {
  const r = same('/bin/dash', ['-c', 'echo hi; exit 3']);
  assert.equal(r.exitStatus, 3);
  assert.equal(r.stdout.toString(), 'hi\n');
});

/**
 * Run exe DIR natively and in kvmbox, each with an empty writable DIR of its own: the same
 * output and status 0. Returns the native output.
 */
function sameInDirs(exe: string, label: string, options: RunOptions = {}): string {
  const native = join(work, `${label}-native`);
  const guest = join(work, `${label}-guest`);
  mkdirSync(native);
  mkdirSync(guest);
  const want = spawnSync(exe, [native], { encoding: 'utf8' });
  assert.equal(want.status, 0, want.stderr);
  const r = run(exe, [guest], { rw: [guest], ...options });
  assert.equal(r.stdout.toString(), want.stdout, `${label}: ${show(r)}`);
  assert.equal(r.exitStatus, 0, show(r));
  return want.stdout;
}

test('file-backed mmap: private and shared, at offsets, fixed over a reserve, partial pages, mprotect/munmap of parts, refusals', () => {
  for (const variant of ['glibc', 'musl', 'pie'] as const) {
    assert.doesNotMatch(sameInDirs(program('mmap-file', variant), `mmap-${variant}`), /: 0/);
  }
});

// Pages wholly past a file's end read as zeros, and stayed zeros when the file grew; mremap grew
// a file mapping with zeros. Now they are SIGBUS (BUS_ADRERR) and EFAULT to system calls until
// the file covers them, then the file's bytes (AddressSpace.pastEnd, syscalls/mm.ts).
test('file mappings past the end of the file: SIGBUS, then the bytes once the file grows; mremap grows with the file', () => {
  for (const variant of ['glibc', 'musl', 'pie'] as const) {
    const out = sameInDirs(join(PROGRAMS_DIR, `mapgrow.${variant}`), `mapgrow-${variant}`);
    assert.match(out, /^private-ro: page 1 past the end: SIGBUS, code 2, address right 1$/m);
  }
});

// A read-only mapping of a file larger than --memory was a copy of all of it: ENOMEM. Past 64 MiB
// it is now filled where it is read, 2 MiB at a time (syscalls/mm.ts FILL_LAZILY).
test('a read-only mapping of a 512 MiB file under --memory 128: the parts read hold the file, past the end is SIGBUS', () => {
  for (const variant of ['glibc', 'musl', 'pie'] as const) {
    const out = sameInDirs(join(PROGRAMS_DIR, `mapbig.${variant}`), `mapbig-${variant}`, { memoryMiB: 128 });
    assert.match(out, /^shared: at an offset: same$/m);
    assert.doesNotMatch(out, /differs|failed/);
  }
});

/** A copy of the dynamic test program whose PT_INTERP names `interp` instead (padded with NULs). */
function withInterpreter(interp: string, file: string): string {
  const image = readFileSync(dynamicHello());
  const name = '/lib64/ld-linux-x86-64.so.2';
  const at = image.indexOf(Buffer.from(name + '\0'));
  assert.ok(at > 0 && interp.length <= name.length);
  const patched = Buffer.from(image);
  patched.fill(0, at, at + name.length);
  Buffer.from(interp).copy(patched, at);
  const path = join(work, file);
  writeFileSync(path, patched, { mode: 0o755 });
  return path;
}

test('a missing interpreter: InterpreterNotFoundError (127) naming it; through the CLI, 127 and one line', () => {
  const path = withInterpreter('/lib64/ld-missing.so.2', 'hello-missing-interp');
  assert.throws(() => run(path, [], { ro: SYSTEM }), (e: unknown) => {
    assert.ok(e instanceof InterpreterNotFoundError, String(e));
    assert.equal(e.exitStatus, 127);
    assert.match(e.message, /interpreter \/lib64\/ld-missing\.so\.2 does not exist/);
    return true;
  });
  const r = runCli(['run', ...SYSTEM_FLAGS, '--', path]);
  assert.equal(r.status, 127, r.err);
  assert.match(r.err, /^kvmbox: .*interpreter \/lib64\/ld-missing\.so\.2 does not exist.*--ro \/lib64/);
  assert.equal(r.out, '');
});

test('an interpreter that exists but is not granted: 126, with the grant to add', () => {
  assert.throws(() => run('/bin/true', [], { ro: ['/usr'] }), (e: unknown) => {
    assert.ok(e instanceof NotRunnableError, String(e));
    assert.equal(e.exitStatus, 126);
    assert.match(e.message, /\/bin\/true: its interpreter \/lib64\/ld-linux-x86-64\.so\.2 is not granted.*--ro \/lib64 --ro \/lib --ro \/usr/);
    return true;
  });
});

test('a program in the sandbox cannot learn whether the host has an interpreter it was not granted: ENOENT either way', () => {
  // Natively the first would be ENOENT and the second (not an ELF) ELIBBAD: both must look missing.
  const missing = withInterpreter('/etc/no-such-kvmbox-file', 'hello-interp-missing');
  const hidden = withInterpreter('/etc/passwd', 'hello-interp-hidden');
  assert.ok(existsSync('/etc/passwd'));
  const r = run(program('procs', 'glibc'), ['exec-errno', missing, hidden], { ro: [...SYSTEM, work] });
  assert.equal(r.stdout.toString(), `exec-errno: ${missing} ENOENT\nexec-errno: ${hidden} ENOENT\n`, show(r));
  assert.equal(r.exitStatus, 0, show(r));
});

test('hostile interpreters are refused with 126 before anything runs: a FIFO, a directory, a file that is not ELF', () => {
  // PT_INTERP's room in the test program is 27 bytes: a short directory.
  const dir = mkdtempSync(join(tmpdir(), 'ki'));
  try {
    assert.equal(spawnSync('mkfifo', [join(dir, 'f')]).status, 0);
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 't'), 'not an ELF\n');
    for (const [name, why] of [['f', /not a regular file/], ['d', /not a regular file|EISDIR/], ['t', /not an ELF/]] as const) {
      const path = withInterpreter(join(dir, name), `hello-interp-${name}`);
      assert.throws(() => run(path, [], { ro: [...SYSTEM, dir] }), (e: unknown) => {
        assert.ok(e instanceof NotRunnableError, `${name}: ${String(e)}`);
        assert.equal(e.exitStatus, 126);
        assert.match(e.message, why);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A script as the program runs as Linux's execve runs it: its #! interpreter, found in the guest's
// namespace, with argv [interpreter, argument, script, args...]; an interpreter may be a script too.
test('scripts as the program: #! interpreters with an argument, through env, nested, and their errors', () => {
  const dir = join(work, 'scripts');
  mkdirSync(dir);
  const script = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o755 });
    return path;
  };
  const show = script('show', '#!/bin/sh\necho "$0 | $# | $*"\n');
  const withArg = script('with-arg', '#!/usr/bin/python3 -S\nimport sys; print(sys.argv, "site" in sys.modules)\n');
  const viaEnv = script('via-env', '#!/usr/bin/env python3\nimport sys; print(sys.argv[1:])\n');
  const nested = script('nested', `#!${show} first\n`);
  for (const [path, args] of [[show, ['a b', 'c']], [withArg, ['x']], [viaEnv, ['y', 'z']], [nested, ['last']]] as const) {
    same(path, [...args], { ro: [dir, '/bin'] });
  }
  // Through the CLI, as a user types it.
  const r = runCli(['run', ...SYSTEM_FLAGS, '--ro', '/bin', '--ro', dir, '--', show, 'one']);
  assert.equal(r.out, `${show} | 1 | one\n`, r.err);
  assert.equal(r.status, 0);
  // A missing interpreter is 127, naming it; a script the guest cannot open is 126, with the grant to add.
  const missing = script('missing', '#!/usr/bin/no-such-interpreter\n');
  assert.throws(() => run(missing, [], { ro: [...SYSTEM, dir] }), (e: unknown) => {
    assert.ok(e instanceof InterpreterNotFoundError, String(e));
    assert.equal(e.exitStatus, 127);
    assert.match(e.message, /interpreter \/usr\/bin\/no-such-interpreter does not exist/);
    return true;
  });
  const r2 = runCli(['run', ...SYSTEM_FLAGS, '--ro', '/bin', '--', show]);
  assert.equal(r2.status, 126, r2.err);
  assert.match(r2.err, new RegExp(`a script, which its interpreter /bin/sh opens by path, and it is not granted.*--ro ${show}`));
});

test('npm, a #!/usr/bin/env node script, prints its version as natively', { skip: existsSync('/usr/bin/npm') ? false : 'npm is missing' }, () => {
  // Its process.title is written over the argument strings (libuv), so their layout must be Linux's.
  const env = ['PATH=/usr/bin:/bin', 'HOME=/'];
  const guest = run('/usr/bin/npm', ['--version'], { system: true, env });
  const native = spawnSync('/usr/bin/npm', ['--version'], { env: Object.fromEntries(env.map((e) => e.split('=') as [string, string])), encoding: 'utf8' });
  assert.equal(guest.stdout.toString(), native.stdout, show(guest));
  assert.equal(guest.exitStatus, 0, show(guest));
});

test('the CLI runs a dynamic program with the grant line from the README', () => {
  const r = runCli(['run', ...SYSTEM_FLAGS, '--', '/bin/echo', 'via', 'the', 'CLI']);
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, 'via the CLI\n');
  assert.equal(r.err, '');
});

const NO_SCRIPTING = !existsSync('/usr/bin/python3') || !existsSync('/usr/bin/perl') ? 'python3 or perl is missing' : false;

test('python3 and perl, with C extension modules loaded by dlopen', { skip: NO_SCRIPTING }, () => {
  same('/usr/bin/python3', ['-c', 'print(1+1)']);
  same('/usr/bin/python3', ['-c', [
    'import json, hashlib, zlib, math, struct',
    'print(json.dumps({"a": [1, 2.5, None]}, sort_keys=True))',
    'print(hashlib.sha256(b"kvmbox").hexdigest(), zlib.crc32(b"kvmbox"), math.factorial(20))',
    'print(struct.pack("<Q", 2**40).hex())',
  ].join('\n')]);
  same('/usr/bin/perl', ['-e', 'print 6*7, "\\n"']);
  same('/usr/bin/perl', ['-MPOSIX', '-MList::Util=sum', '-e', 'print floor(7.9), " ", sum(1..100), "\\n"']);
});

test('sqlite3: SQL on an in-memory database', { skip: existsSync('/usr/bin/sqlite3') ? false : 'sqlite3 is missing' }, () => {
  same('/usr/bin/sqlite3', [':memory:', [
    'create table t(x integer, y text);',
    "insert into t values (1, 'one'), (2, 'two'), (3, 'three');",
    "select sum(x), group_concat(y, '+') from t;",
    'select sqlite_version();',
  ].join(' ')]);
});

// WAL mode maps the database's -shm file MAP_SHARED for writing (its mirror, src/linux/file-mirror.ts).
test('sqlite3 in WAL mode on a --rw database: the same results, and a database that reads back natively', {
  skip: existsSync('/usr/bin/sqlite3') ? false : 'sqlite3 is missing',
}, () => {
  const sql = [
    'PRAGMA journal_mode=WAL;',
    'create table t(x integer, y text);',
    "insert into t values (1, 'one'), (2, 'two'), (3, 'three');",
    'begin; update t set x = x * 10; commit;',
    "select sum(x), group_concat(y, '+') from t;",
  ].join(' ');
  const dirs = ['native', 'guest'].map((k) => {
    const d = join(work, `wal-${k}`);
    mkdirSync(d, { recursive: true });
    return d;
  });
  const n = spawnSync('/usr/bin/sqlite3', [join(dirs[0]!, 'db'), sql], { encoding: 'utf8' });
  assert.equal(n.status, 0, n.stderr);
  const g = run('/usr/bin/sqlite3', [join(dirs[1]!, 'db'), sql], { ro: SYSTEM, rw: [dirs[1]!], env: ENV });
  assert.equal(g.stdout.toString(), n.stdout, show(g));
  assert.equal(g.exitStatus, 0, show(g));
  assert.equal(n.stdout, 'wal\n60|one+two+three\n');
  // The host's sqlite3 reads what the sandbox wrote.
  const back = spawnSync('/usr/bin/sqlite3', [join(dirs[1]!, 'db'), 'select count(*), sum(x) from t; PRAGMA integrity_check;'], { encoding: 'utf8' });
  assert.equal(back.stdout, '3|60\nok\n', back.stderr);
});

test('a program that signals itself ends as natively: abort() is 134, kill -TERM $$ is 143', { skip: NO_SCRIPTING }, () => {
  const abort = run('/usr/bin/python3', ['-c', 'import os; print("before", flush=True); os.abort()'], { ro: SYSTEM, env: ENV });
  assert.equal(abort.exitStatus, 134, show(abort));
  assert.equal(abort.signal, 6);
  assert.equal(abort.stdout.toString(), 'before\n');
  const term = run('/bin/dash', ['-c', 'echo hi; kill -TERM $$; echo not reached'], { ro: SYSTEM, env: ENV });
  assert.equal(term.exitStatus, 143, show(term));
  assert.equal(term.stdout.toString(), 'hi\n');
  const zero = run('/bin/dash', ['-c', 'kill -0 $$ && echo alive; kill -CHLD $$; echo ignored'], { ro: SYSTEM, env: ENV });
  assert.equal(zero.stdout.toString(), 'alive\nignored\n', show(zero));
  assert.equal(zero.exitStatus, 0);
});

test('a library\'s image is read once and shared between runs: a second python3 run adds no image', {
  skip: NO_SCRIPTING || (onUserStubPath() && 'kvm_pvm: processes take turns in one memory; programs are copied there'),
}, () => {
  same('/usr/bin/python3', ['-c', 'import json, zlib; print(json.dumps([zlib.crc32(b"x")]))']);
  const first = imageCacheStats();
  // ld.so, python3 itself, libc, libm, libz, libexpat and the extension modules it loads.
  assert.ok(first.images >= 5, `images: ${JSON.stringify(first)}`);
  same('/usr/bin/python3', ['-c', 'import json, zlib; print(json.dumps([zlib.crc32(b"x")]))']);
  assert.deepEqual(imageCacheStats(), first);
});

test('/proc/self/exe names the program with its symlinks resolved, after execve too', { skip: NO_SCRIPTING }, () => {
  // /usr/bin/python3 is a symlink to python3.11 (Debian 12); ld.so's $ORIGIN reads the link.
  const code = 'import os; print(os.readlink("/proc/self/exe"))';
  const r = same('/usr/bin/python3', ['-c', code]);
  assert.match(r.stdout.toString(), /^\/usr\/bin\/python3\.\d+\n$/);
  same('/bin/dash', ['-c', `exec /usr/bin/python3 -c '${code}'`]);
});
