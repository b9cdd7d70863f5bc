// ptrace inside the sandbox: one process traces others, as strace does. test/programs/ptrace.c
// checks Linux's rules request by request (stops and their wait statuses, registers, memory,
// signal suppression and injection, exec and fork events, SEIZE/INTERRUPT/LISTEN, errors,
// EXITKILL) against a native run; then Debian's strace traces real programs (a single one, a
// shell pipeline with -f, python3's threads) and gdb debugs one (breakpoints, stepping, a
// backtrace, a fault), and each prints what it prints natively.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run } from '../src/index.js';
import { PROGRAMS_DIR, VARIANTS } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'kvmbox-ptrace-'));
after(() => rmSync(work, { recursive: true, force: true }));

for (const v of VARIANTS) {
  test(`${v}: ptrace stops, registers, memory, signals, events and errors as natively`, () => {
    const path = `${PROGRAMS_DIR}/ptrace.${v}`;
    const native = spawnSync(path, [], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    const r = run(path, [], { ro: [path], timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
    assert.equal(r.exitStatus, 0);
  });
}

const STRACE = '/usr/bin/strace';

/**
 * strace's lines with what differs between any two runs made the same: addresses, how many
 * environment variables, ids of processes, the sender's uid (root natively, the guest's user in
 * the sandbox), CPU times, and the padding to the result's column (it follows the addresses).
 */
function normalize(text: string): string {
  return text
    .replace(/0x[0-9a-f]+/g, 'ADDR')
    .replace(/\s+= /g, ' = ')
    .replace(/\/\* \d+ vars? \*\//g, '/* N vars */')
    .replace(/(si_pid|si_uid)=\d+/g, '$1=N')
    .replace(/^kill\(\d+, /gm, 'kill(PID, ')
    .replace(/si_utime=[^,]+, si_stime=[^}]+/g, 'si_utime=T, si_stime=T')
    .replace(/^(wait4\(.*\) = )\d+$/gm, '$1PID');
}

test('strace traces a program: its calls, their arguments and results, as natively', () => {
  const args = ['-qq', '-e', 'trace=execve,uname,getcwd,write,kill,rt_sigreturn,exit_group', '/usr/bin/sh', '-c',
    'trap "echo got" USR1; kill -USR1 $$; cd /usr && pwd && echo hi >&2; exit 3'];
  const native = spawnSync(STRACE, args, { encoding: 'utf8', cwd: '/' });
  assert.equal(native.status, 3, native.stderr);
  const r = run(STRACE, args, { system: true, timeoutSeconds: 120 });
  assert.equal(r.exitStatus, 3, r.stderr.toString());
  assert.equal(r.stdout.toString(), native.stdout);
  assert.equal(normalize(r.stderr.toString()), normalize(native.stderr));
  // PTRACE_EVENT_EXIT is what lets strace print exit_group's "= ?"; the handler's return stops
  // at rt_sigreturn's entry and exit like any call.
  assert.match(r.stderr.toString(), /^exit_group\(3\)\s+= \?$/m);
  assert.match(r.stderr.toString(), /^rt_sigreturn\(\{mask=\[\]\}\)\s+= 0$/m);
});

/**
 * strace -f -ff of argv natively and in the sandbox, tracing the calls of trace: each process's
 * (or thread's) trace file, normalized (and by tidy), sorted, from the native run and from kvmbox's.
 */
function tracesEach(name: string, trace: string, argv: string[], tidy: (text: string) => string = (x) => x): { native: string[]; guest: string[] } {
  const traceArgs = (dir: string) => ['-f', '-ff', '-qq', '-o', `${dir}/t`, '-e', `trace=${trace}`, '-e', 'signal=none', ...argv];
  const nativeDir = join(work, `${name}-native`), guestDir = join(work, `${name}-guest`);
  mkdirSync(nativeDir);
  mkdirSync(guestDir);
  const native = spawnSync(STRACE, traceArgs(nativeDir), { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stderr);
  const r = run(STRACE, traceArgs(guestDir), { system: true, rw: [guestDir], timeoutSeconds: 180 });
  assert.equal(r.exitStatus, 0, r.stderr.toString());
  assert.equal(r.stdout.toString(), native.stdout);
  // One file per process or thread (t.ID): the same traces, whatever the ids.
  const traces = (dir: string) => readdirSync(dir).map((f) => tidy(normalize(readFileSync(join(dir, f), 'utf8')))).sort();
  return { native: traces(nativeDir), guest: traces(guestDir) };
}

test('strace -f follows a pipeline, a subshell and its exits, process by process (-ff)', () => {
  const { native, guest } = tracesEach('ff', 'execve,pipe2,dup2,wait4,exit_group', ['/usr/bin/sh', '-c', 'echo hi | cat; (exit 3); echo $?; sleep 0.1 & wait']);
  assert.equal(native.length, 5);
  assert.deepEqual(guest, native);
});

const GDB_TARGET = `#include <stdio.h>
static int square(int x) { return x * x; }
int main(void) {
  int total = 0;
  for (int i = 1; i <= 3; i++) total += square(i);
  printf("total %d\\n", total);
  int *p = 0;
  if (total == 14) *p = 1;
  return 0;
}
`;

// gdb: breakpoints written into the program's text (POKETEXT, /proc/PID/mem), stepping over
// them (PTRACE_SINGLESTEP), registers and memory for a backtrace, finish's temporary breakpoint,
// and the fault's SIGSEGV stopping the program where it happened.
test('gdb sets breakpoints, steps, prints a backtrace and stops at a fault, as natively', () => {
  const dir = join(work, 'gdb');
  mkdirSync(dir);
  const src = join(dir, 'g.c');
  writeFileSync(src, GDB_TARGET);
  const cc = spawnSync('gcc', ['-g', '-O0', '-o', join(dir, 'g'), src], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const commands = ['break square', 'run', 'bt', 'print x', 'next', 'finish', 'delete', 'continue', 'bt', 'print total'];
  const args = ['-q', '-nx', '-batch', ...commands.flatMap((c) => ['-ex', c]), './g'];
  const native = spawnSync('gdb', args, { encoding: 'utf8', cwd: dir });
  assert.equal(native.status, 0, native.stderr);
  const r = run('/usr/bin/gdb', args, { system: true, ro: [dir], cwd: dir, timeoutSeconds: 300 });
  const shown = (text: string) => text.replace(/0x[0-9a-f]+/g, 'ADDR').split('\n').filter((l) => !l.startsWith('warning: ')).join('\n');
  assert.equal(shown(r.stdout.toString()), shown(native.stdout), r.stderr.toString());
  assert.match(r.stdout.toString(), /^Program received signal SIGSEGV, Segmentation fault\.$/m);
  assert.equal(r.exitStatus, 0);
});

// strace -f of python3's threads: the clone3 of a thread (PTRACE_O_TRACECLONE traces it from its
// first instruction), its own calls, and its exit(0) = ? (PTRACE_EVENT_EXIT of one thread).
test('strace -f follows python3\'s threads, each in its own trace (-ff)', () => {
  const script = 'import os, threading\nt = threading.Thread(target=os.write, args=(1, b"from the thread\\n"))\nt.start(); t.join(); os.write(1, b"done\\n")';
  // Thread ids differ: clone3's result and the parent_tid it wrote.
  const { native, guest } = tracesEach('threads', 'clone3,exit,write', ['/usr/bin/python3', '-c', script],
    (text) => text.replace(/\[\d+\]/g, '[TID]').replace(/^(clone3\(.*\) = )\d+$/gm, '$1TID'));
  assert.equal(native.length, 2);
  assert.deepEqual(guest, native);
});
