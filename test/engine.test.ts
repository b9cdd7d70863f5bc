// The asynchronous engine (issue 13): run() on worker threads, spawn() with streams, AbortSignal,
// kill(), errors that keep their classes, and release of everything a run holds.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import {
  run, runSync, spawn, configureEngine, engineStats, closeIdleWorkers, warmEngine, GrantError, NotRunnableError,
  ProgramNotFoundError,
} from '../src/index.js';
import { BUSYBOX, dynamicHello, program } from './helpers.js';

configureEngine({ workers: 2 });
after(async () => {
  await closeIdleWorkers();
});

const spin = program('hostile-spin', 'musl');
const hello = program('hello', 'musl');

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

test('the event loop keeps ticking while a CPU-bound guest runs', async () => {
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 10);
  const t0 = performance.now();
  const r = await run(spin, ['spin'], { timeoutSeconds: 1 });
  const ms = performance.now() - t0;
  clearInterval(timer);
  assert.equal(r.exitStatus, 124);
  // A blocked loop would fire the interval once, after the run; a free one ~every 10 ms.
  assert.ok(ticks >= ms / 10 / 4, `${ticks} ticks in ${ms.toFixed(0)} ms`);
});

test('two runs at once both complete with their own outputs', async () => {
  const [a, b] = await Promise.all([
    run(hello, []),
    run(program('exitcode', 'glibc'), ['7']),
  ]);
  assert.equal(a.exitStatus, 0);
  assert.equal(a.stdout.toString(), runSync(hello, []).stdout.toString());
  assert.match(a.stdout.toString(), /hello/i);
  assert.equal(b.exitStatus, 7);
  assert.ok(Buffer.isBuffer(a.stdout) && Buffer.isBuffer(b.stderr));
});

test('stdout and stderr callbacks and trace receive chunks from the worker', async () => {
  const chunks: Buffer[] = [];
  const lines: string[] = [];
  const r = await run(hello, [], { stdout: (c) => chunks.push(Buffer.from(c)), trace: (l) => lines.push(l) });
  assert.equal(r.exitStatus, 0);
  assert.equal(r.stdout.length, 0);
  assert.match(Buffer.concat(chunks).toString(), /hello/i);
  assert.ok(lines.some((l) => /\bwritev?\(1, /.test(l)), lines.join('\n'));
});

test('spawn: stdin piped in reaches fd 0, stdout is read as a stream', { skip: !existsSync(BUSYBOX) && 'no busybox' }, async () => {
  const sb = spawn(BUSYBOX, ['cat']);
  const events: string[] = [];
  sb.on('spawn', () => events.push('spawn'));
  sb.on('exit', (code: number | null, signal: string | null) => events.push(`exit ${code} ${signal}`));
  const closed = new Promise((res) => sb.on('close', res));
  const got: Buffer[] = [];
  sb.stdout!.on('data', (c: Buffer) => got.push(c));
  // More than the 64 KiB stdin ring, in pieces.
  const line = Buffer.from('0123456789abcdef'.repeat(63) + '\n');
  const want: Buffer[] = [];
  for (let i = 0; i < 100; i++) want.push(line);
  for (const piece of want) sb.stdin!.write(piece);
  sb.stdin!.end();
  const r = await sb.result;
  await closed;
  assert.equal(r.exitStatus, 0);
  assert.equal(Buffer.concat(got).equals(Buffer.concat(want)), true, `got ${Buffer.concat(got).length} bytes`);
  assert.deepEqual(events, ['spawn', 'exit 0 null']);
  assert.equal(typeof sb.id, 'number');
});

test('kill() ends a spinning program as if the signal killed it', async () => {
  const sb = spawn(spin, ['spin'], { timeoutSeconds: 60 });
  await new Promise((res) => sb.once('spawn', res));
  const exit = new Promise<[number | null, string | null]>((res) => sb.once('exit', (c: number | null, s: string | null) => res([c, s])));
  assert.equal(sb.kill('SIGTERM'), true);
  const r = await sb.result;
  assert.equal(r.reason.kind, 'signaled');
  assert.equal(r.signal, 15);
  assert.equal(r.exitStatus, 143);
  assert.deepEqual(await exit, [null, 'SIGTERM']);
  assert.equal(sb.kill(), false);
});

// A lone thread's FUTEX_WAIT with a timeout sleeps on the host: in slices, so that kill() and an
// abort end it (it slept for the whole timeout before, whatever happened meanwhile).
test('kill() and an abort end a program waiting on a futex with a long timeout', { timeout: 120_000 }, async () => {
  const sb = spawn(spin, ['futex']);
  await new Promise((res) => sb.once('spawn', res));
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(sb.kill('SIGKILL'), true);
  const r = await sb.result;
  assert.equal(r.exitStatus, 137);
  const ac = new AbortController();
  const p = run(spin, ['futex'], { signal: ac.signal });
  setTimeout(() => ac.abort(), 500);
  await assert.rejects(p, { name: 'AbortError' });
});

test('an AbortSignal ends a user-mode spin promptly with an AbortError', async () => {
  const ac = new AbortController();
  const sb = spawn(spin, ['spin'], { signal: ac.signal, timeoutSeconds: 60, stdout: 'capture' });
  await new Promise((res) => sb.once('spawn', res));
  await new Promise((res) => setTimeout(res, 100));
  const t0 = performance.now();
  ac.abort(new Error('enough'));
  await assert.rejects(sb.result, (e: Error) => e.name === 'AbortError' && (e.cause as Error).message === 'enough');
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `ended ${ms.toFixed(0)} ms after the abort`);
  // run() too: an abort while the guest runs rejects the promise.
  const ac2 = new AbortController();
  const p = run(spin, ['spin'], { signal: ac2.signal, timeoutSeconds: 60 });
  setTimeout(() => ac2.abort(), 200);
  await assert.rejects(p, { name: 'AbortError' });
  // An already-aborted signal rejects at once.
  await assert.rejects(run(hello, [], { signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('errors from the worker keep their classes', async () => {
  await assert.rejects(run('/no/such/program'), (e: Error) => e instanceof ProgramNotFoundError && (e as ProgramNotFoundError).exitStatus === 127);
  await assert.rejects(run(dynamicHello()), (e: Error) => e instanceof NotRunnableError && /dynamic|interp/i.test(e.message));
  await assert.rejects(run(hello, [], { ro: ['/no/such/dir'] }), (e: Error) => e instanceof GrantError);
  await assert.rejects(run(hello, [], { memoryMiB: 3 }), RangeError);
  const sb = spawn('/no/such/program');
  await assert.rejects(sb.result, ProgramNotFoundError);
});

test('a dynamically linked program runs through the worker once its interpreter is granted', async () => {
  const r = await run(dynamicHello(), ['x'], { ro: ['/lib', '/lib64', '/usr'] });
  assert.equal(r.exitStatus, 0, r.stderr.toString());
  assert.match(r.stdout.toString(), /x/);
});

test('runs that end, fail or are aborted release everything; dispose kills and releases', async () => {
  await run(hello, []); // warm: the workers and their pooled VMs exist
  await Promise.all([run(hello, []), run(hello, [])]);
  const before = openFds();
  for (let i = 0; i < 50; i++) {
    const r = await run(hello, []);
    assert.equal(r.exitStatus, 0);
  }
  await assert.rejects(run('/no/such/program'));
  const ac = new AbortController();
  const p = run(spin, ['spin'], { signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(p, { name: 'AbortError' });
  {
    await using sb = spawn(spin, ['spin']);
    await new Promise((res) => sb.once('spawn', res));
  }
  assert.equal(engineStats().busy, 0);
  const grown = openFds() - before;
  // A VM the pool could not keep (pool full) is closed; no run may leave fds behind.
  assert.ok(grown <= 0, `${grown} more fds open after 50 runs, an abort and a dispose`);
  await closeIdleWorkers();
  assert.equal(engineStats().workers, 0);
});

test('warmEngine starts the pool\'s workers ahead of the first run, and runs then start none', async () => {
  await closeIdleWorkers();
  const before = engineStats().started;
  await warmEngine();
  const s = engineStats();
  assert.equal(s.workers, s.size);
  assert.equal(s.started - before, s.size);
  assert.equal(s.busy, 0);
  // Each warmed worker holds a VM that was made but never ran: the runs reset and use it.
  const rs = await Promise.all(Array.from({ length: s.size }, (_, i) => run(hello, [`w${i}`])));
  for (const [i, r] of rs.entries()) {
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    assert.match(r.stdout.toString(), new RegExp(`w${i}`));
  }
  assert.equal(engineStats().started, s.started, 'the runs started no new worker');
  await warmEngine(); // a full pool: nothing to start
  assert.equal(engineStats().started, s.started);
});
