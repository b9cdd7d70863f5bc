// Signals from outside the sandbox (issue 15): those sent to the kvmbox CLI reach the program
// inside as they would reach it natively (SIGTERM, SIGUSR1 to the program; the terminal's
// signals to its foreground group: test/terminal.test.ts), and Sandbox.sendSignal() sends them
// through the API. The program may catch them; by default they end it with 128+N. A program
// waiting in sigsuspend() with nothing inside that could end the wait is not stopped as a deadlock,
// since a signal may come. test/programs/outside.c is compared with its native run.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { closeIdleWorkers, run, spawn, type Sandbox } from '../src/index.js';
import { BIN, program } from './helpers.js';

after(async () => {
  await closeIdleWorkers();
});

const outside = program('outside', 'glibc');

/** Everything a stream has shown, and a way to wait for a text in it. */
class Seen {
  out = '';
  private waiters: Array<() => void> = [];
  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (d: Buffer) => {
      this.out += d.toString();
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async waitFor(text: string): Promise<void> {
    while (!this.out.includes(text)) await new Promise<void>((res) => this.waiters.push(res));
  }
}

/** argv as a child with piped stdout: signals sent once it printed "ready" (and each answer); its output and exit. */
async function signalled(argv: string[], steps: Array<[NodeJS.Signals, string]>): Promise<{ out: string; status: number | null; signal: string | null }> {
  const child: ChildProcess = spawnChild(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = new Seen(child.stdout!);
  const closed = new Promise<{ status: number | null; signal: string | null }>((res) => child.on('close', (status, signal) => res({ status, signal })));
  await seen.waitFor('ready\n');
  for (const [sig, answer] of steps) {
    child.kill(sig);
    if (answer) await seen.waitFor(answer);
  }
  const end = await closed;
  return { out: seen.out, ...end };
}

test('the CLI passes SIGUSR1 and SIGTERM to the program, whose handlers run, as natively', async () => {
  const steps: Array<[NodeJS.Signals, string]> = [['SIGUSR1', 'got SIGUSR1\n'], ['SIGHUP', 'got SIGHUP\n'], ['SIGTERM', '']];
  const native = await signalled([outside], steps);
  assert.deepEqual(native, { out: 'ready\ngot SIGUSR1\ngot SIGHUP\ngot SIGTERM\n', status: 3, signal: null });
  for (const prog of [outside, program('outside', 'musl')]) {
    const guest = await signalled([process.execPath, BIN, 'run', '--ro', prog, '--', prog], steps);
    assert.deepEqual(guest, native, prog);
  }
});

test('the CLI: a signal the program does not catch ends it with 128+N', async () => {
  const native = await signalled([outside, 'default'], [['SIGTERM', '']]);
  assert.equal(native.signal, 'SIGTERM');
  const guest = await signalled([process.execPath, BIN, 'run', '--ro', outside, '--', outside, 'default'], [['SIGTERM', '']]);
  assert.equal(guest.out, 'ready\n');
  assert.equal(guest.status, 143);
});

test('Sandbox.sendSignal: to the program, to its foreground group, and past the end', async () => {
  const sb: Sandbox = spawn(outside, ['child'], { timeoutSeconds: 120 });
  const seen = new Seen(sb.stdout!);
  await seen.waitFor('ready\n');
  assert.equal(sb.sendSignal('SIGUSR1'), true);
  await seen.waitFor('got SIGUSR1\n');
  // The group: the parent and its child both get it.
  sb.sendSignal('SIGINT', 'foreground');
  await seen.waitFor('child got SIGINT\n');
  await seen.waitFor('\ngot SIGINT\n');
  sb.sendSignal(15);
  const r = await sb.result;
  assert.equal(r.exitStatus, 3, seen.out);
  assert.equal(sb.sendSignal('SIGTERM'), false);
  assert.throws(() => sb.sendSignal(40), RangeError);
  assert.throws(() => sb.sendSignal('SIGNOPE' as NodeJS.Signals), RangeError);
});

test('Sandbox.sendSignal: an uncaught SIGINT ends the program with 130', async () => {
  const sb = spawn(outside, ['default'], { timeoutSeconds: 120 });
  const seen = new Seen(sb.stdout!);
  await seen.waitFor('ready\n');
  sb.sendSignal('SIGINT');
  const r = await sb.result;
  assert.equal(r.exitStatus, 130);
  assert.equal(r.signal, 2);
});

test('forwardSignals is for runSync only: run() refuses it', async () => {
  await assert.rejects(run(outside, [], { forwardSignals: true }), (e: Error) => e instanceof TypeError && /runSync/.test(e.message));
});
