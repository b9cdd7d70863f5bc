// Host-side limits (issue 12, items 4 and 5): the host never blocks past a run's time limit on
// something outside the sandbox, and the memory it holds for a sandbox is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run, NotRunnableError, DEFAULT_CAPTURE_LIMIT } from '../src/index.js';
import { BIN, PROGRAMS_DIR, ROOT } from './helpers.js';

const prog = (variant = 'glibc') => `${PROGRAMS_DIR}/limits.${variant}`;

/**
 * Run the CLI with a stdin pipe that the test holds open and never writes, and stdout a pipe
 * (or the fd given, which nobody reads). ms: from the program's first line on stderr
 * ('started') to kvmbox's exit.
 */
function runHolding(args: string[], stdout: 'pipe' | number = 'pipe'): Promise<{ ms: number; status: number | null; err: string }> {
  return new Promise((resolve) => {
    let started = 0;
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', stdout, 'pipe'] });
    let err = '';
    child.stdout?.on('data', () => {});
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (!started && err.includes('started\n')) started = performance.now();
    });
    // Before the fix the host blocked in read(2) or write(2) for ever: a safety net for the test.
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (status) => {
      clearTimeout(killer);
      child.stdin!.destroy();
      resolve({ ms: started ? performance.now() - started : Infinity, status, err });
    });
  });
}

test('--timeout ends a run waiting on the host (stdin that never delivers, stdout nobody reads) within about a second', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-stdout-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // O_RDWR: the FIFO has a reader (this fd), which never reads; kvmbox's stdout fills up.
  const full = openSync(fifo, constants.O_RDWR);
  try {
    for (const what of ['read-stdin', 'poll-stdin', 'flood']) {
      const args = what === 'flood' ? ['flood', '1', '65536'] : [what];
      const r = await runHolding(['run', '--timeout', '2', prog(), ...args], what === 'flood' ? full : 'pipe');
      assert.equal(r.status, 124, `${what}: ${r.err}`);
      assert.match(r.err, /time limit of 2 s reached/);
      // The deadline is 2 s after the program starts. About a second past it, and more for the
      // emulated lane, where ending the VM and node itself take a while.
      t.diagnostic(`${what}: kvmbox exited ${Math.round(r.ms - 2000)} ms after the deadline`);
      assert.ok(r.ms < 2000 + 2500, `${what}: kvmbox exited ${Math.round(r.ms)} ms after the program started`);
    }
  } finally {
    closeSync(full);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** script(1) gives a program a terminal; it needs a pseudo-terminal device (/dev/pts). */
const NO_SCRIPT: string | false = spawnSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore' }).status === 0
  ? false : 'needs script(1) (util-linux) and a pseudo-terminal to give the program a terminal';

test('--timeout ends a read of a terminal that never delivers', { skip: NO_SCRIPT }, async (t) => {
  // script(1) runs kvmbox on a new terminal and copies its own stdin (held open, never written)
  // to it: the program reads a terminal with no input.
  const cmd = [process.execPath, BIN, 'run', '--timeout', '2', prog(), 'read-stdin'].map((a) => `'${a}'`).join(' ');
  const r = await new Promise<{ ms: number; status: number | null; out: string }>((resolve) => {
    let started = 0, out = '';
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!started && out.includes('started')) started = performance.now();
    });
    child.stderr.on('data', () => {});
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (status) => {
      clearTimeout(killer);
      child.stdin.destroy();
      resolve({ ms: started ? performance.now() - started : Infinity, status, out });
    });
  });
  assert.equal(r.status, 124, r.out);
  assert.match(r.out, /time limit of 2 s reached/);
  t.diagnostic(`terminal: kvmbox exited ${Math.round(r.ms - 2000)} ms after the deadline`);
  assert.ok(r.ms < 2000 + 2500, `kvmbox exited ${Math.round(r.ms)} ms after the program started`);
});

// A FIFO in a grant names a pipe inside the sandbox (src/fs/fifo.ts): the host's FIFO is never
// read or written, so a host process at its other end neither feeds the guest nor hears from it.
test('a FIFO in a grant is a pipe inside the sandbox: the host FIFO is never read or written, and no open waits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-fifo-'));
  try {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // The host holds both ends, with bytes waiting that the guest must not get.
    const host = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      writeSync(host, 'host-bytes');
      for (const [grant, mode] of [['rw', 'w'], ['rw', 'rn'], ['ro', 'w'], ['ro', 'rn'], ['file', 'w'], ['file', 'rn']] as const) {
        const opts = grant === 'rw' ? { rw: [dir] } : grant === 'ro' ? { ro: [dir] } : { rw: [fifo] };
        const r = run(prog(), ['open-fifo', fifo, mode], { ...opts, timeoutSeconds: 30 });
        const out = r.stdout.toString();
        assert.equal(r.exitStatus, 0, `${grant} ${mode}: ${r.stderr.toString()}`);
        // Opened (writing to a FIFO changes no file: a read-only grant allows it, as Linux does),
        // and a non-blocking read finds the sandbox's own empty pipe (a write end cannot read).
        assert.match(out, /open=3 errno=0/, `${grant} ${mode}: ${out}`);
        assert.match(out, /fifo=1/, 'stat of the FIFO still works');
        assert.match(out, /read=-1/, `${grant} ${mode}: ${out}`);
      }
      const left = Buffer.alloc(64);
      assert.equal(readSync(host, left).valueOf(), 10);
      assert.equal(left.subarray(0, 10).toString(), 'host-bytes', 'the host FIFO holds its bytes, and nothing more');
    } finally {
      closeSync(host);
    }
    // A FIFO as the program itself: refused before the host reads it.
    assert.throws(() => run(fifo), NotRunnableError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('captured output is capped by default: status 153 and the bytes up to the cap', () => {
  // --memory 64: the cap is half of it, 32 MiB per stream.
  const r = run(prog(), ['flood', '1', '65536'], { memoryMiB: 64 });
  assert.equal(r.exitStatus, 153, r.stderr.toString());
  assert.equal(r.reason.kind, 'output-limit');
  assert.equal(r.stdout.length, Math.min(DEFAULT_CAPTURE_LIMIT, 32 << 20));
  assert.match(r.stderr.toString(), /captured output limit of 33554432 bytes reached/);
  assert.ok(r.stdout.every((b) => b === 0x66));
  // maxOutputBytes sets it; small writes are kept in a few blocks, not one Buffer each.
  const s = run(prog(), ['flood', '2', '7'], { maxOutputBytes: 50_000 });
  assert.equal(s.exitStatus, 153);
  assert.equal(s.stderr.subarray(0, 8).toString(), 'started\n');
  assert.ok(s.stderr.subarray(8, 50_000).every((b) => b === 0x66));
  assert.match(s.stderr.subarray(50_000).toString(), /^kvmbox: .*limit/);
});

test('--memory 2048 and more: the default cap is DEFAULT_CAPTURE_LIMIT (half the memory does not overflow 32 bits)', () => {
  // Was (2048 << 20) / 2, negative: the first byte written stopped the program.
  const r = run(prog(), ['flood', '1', '65536'], { memoryMiB: 2048 });
  assert.equal(r.exitStatus, 153, r.stderr.toString());
  assert.equal(r.reason.kind, 'output-limit');
  assert.equal(r.stdout.length, DEFAULT_CAPTURE_LIMIT);
  assert.match(r.stderr.toString(), new RegExp(`captured output limit of ${DEFAULT_CAPTURE_LIMIT} bytes reached`));
});

test('the pipes of a sandbox hold no more than its pipe budget (1/16 of --memory)', () => {
  for (const variant of ['glibc', 'musl']) {
    const r = run(prog(variant), ['pipes', '500', '65536'], { memoryMiB: 64, timeoutSeconds: 120 });
    const out = r.stdout.toString();
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    const m = /made=(\d+) grown=(\d+) eperm=(\d+) nomore=(\w+) held=(\d+)/.exec(out);
    assert.ok(m, out);
    const [made, grown, eperm, held] = [m[1], m[2], m[3], m[5]].map(Number) as [number, number, number, number];
    assert.ok(held <= 4 << 20, `pipes held ${held} bytes: ${out}`);
    assert.ok(held >= 3 << 20, `the budget is usable: ${out}`);
    assert.ok(grown >= 1, `F_SETPIPE_SZ works while the budget has room: ${out}`);
    // Once the budget is spent, F_SETPIPE_SZ fails with EPERM and pipe2 with ENFILE, as Linux
    // does past its pipe-user-pages limits.
    assert.ok(made < 500 && m[4] === 'ENFILE', `pipe2 fails with ENFILE once nothing is left: ${out}`);
    assert.ok(made === grown + eperm, out);
  }
});

test('the host process stays well under 400 MiB for a --memory 64 sandbox filling pipes and captures', (t) => {
  const script = `
    import { runSync as run } from ${JSON.stringify(`${ROOT}build/src/index.js`)};
    import { readFileSync } from 'node:fs';
    const p = ${JSON.stringify(prog())};
    const a = run(p, ['pipes', '1000', '65536'], { memoryMiB: 64 });
    const b = run(p, ['flood', '1', '65536'], { memoryMiB: 64 });
    const c = run(p, ['flood', '2', '65536'], { memoryMiB: 64 });
    const hwm = Number(/VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    console.log(JSON.stringify({ hwmKiB: hwm, statuses: [a.exitStatus, b.exitStatus, c.exitStatus] }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 600_000 });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { hwmKiB: number; statuses: number[] };
  assert.deepEqual(r.statuses, [0, 153, 153]);
  t.diagnostic(`peak RSS of the host process: ${Math.round(r.hwmKiB / 1024)} MiB`);
  assert.ok(r.hwmKiB < 300 * 1024, `peak RSS ${Math.round(r.hwmKiB / 1024)} MiB`);
});

// test/programs/rlimit.c: limits a program lowers (setrlimit) stay lowered and are inherited;
// RLIMIT_NOFILE's soft limit is where EMFILE starts. Natively the same, except that the native
// run may be root, which may raise a hard limit again: the guest user never may (EPERM).
test('setrlimit lowers limits for the process and its children; RLIMIT_NOFILE is enforced', () => {
  for (const v of ['glibc', 'musl', 'pie']) {
    const path = `${PROGRAMS_DIR}/rlimit.${v}`;
    const native = spawnSync(path, [], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    const r = run(path, ['unprivileged'], { timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout + 'hard above 64: -1 Operation not permitted\n', `${v}: ${r.stderr.toString()}`);
    assert.equal(r.exitStatus, 0);
  }
});
