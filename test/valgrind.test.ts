// valgrind's memcheck inside the sandbox: it loads a PIE at 0x108000 (the user range starts at
// 1 MiB, USER_BASE), keeps its own memory from 64 GiB and the program's stack near 128 GiB (an
// address space spans 256 GiB with 48 physical-address bits, spanFor), and reads every signal's
// action first, SIGKILL's and SIGSTOP's included. Its report is compared with a native run's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run } from '../src/index.js';
import { onUserStubPath } from './helpers.js';
import { addressSpan } from '../src/machine/machine.js';

const VALGRIND = '/usr/bin/valgrind';
const work = mkdtempSync(join(tmpdir(), 'kvmbox-valgrind-'));
after(() => rmSync(work, { recursive: true, force: true }));

// Three errors memcheck reports: a write past a block, a read of a freed block, a branch on an
// uninitialised value; and a leak.
const TARGET = `#include <stdio.h>
#include <stdlib.h>
int main(void) {
  int *p = malloc(10 * sizeof(int));
  p[10] = 1;
  int *q = malloc(sizeof(int));
  free(q);
  volatile int v = *q;
  int *u = malloc(sizeof(int));
  if (*u > 3) puts("big");
  malloc(24);
  printf("done %d\\n", v * 0);
  free(p);
  free(u);
  return 0;
}
`;

/** What differs between two runs made the same: valgrind's pid on every line. */
const normalize = (text: string) => text.replace(/^==\d+==/gm, '==PID==');

test('valgrind memcheck finds the same errors and leaks as natively', (t) => {
  if (!existsSync(VALGRIND)) { t.skip(`${VALGRIND} is missing (scripts/deps.sh installs it)`); return; }
  if (onUserStubPath()) { t.skip('on kvm_pvm an address space is --memory itself: valgrind keeps its memory from 64 GiB'); return; }
  // Each address space takes as many guest-physical addresses as it spans: with fewer than 48
  // bits (TCG's default is 40) a span is too short for valgrind.
  const span = addressSpan(0);
  if (span.bytes < 192 * 1024 ** 3) { t.skip(`with ${span.physBits}-bit guest-physical addresses a process's addresses span ${span.bytes / 1024 ** 3} GiB, and valgrind uses them up to 128 GiB`); return; }
  const dir = join(work, 'memcheck');
  mkdirSync(dir);
  writeFileSync(join(dir, 'm.c'), TARGET);
  const cc = spawnSync('gcc', ['-g', '-O0', '-o', join(dir, 'm'), join(dir, 'm.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const args = ['--leak-check=full', '--error-exitcode=9', './m'];
  const native = spawnSync(VALGRIND, args, { encoding: 'utf8', cwd: dir, env: { PATH: '/usr/bin:/bin', TMPDIR: dir } });
  assert.equal(native.status, 9, native.stderr);
  const r = run(VALGRIND, args, { system: true, rw: [dir], cwd: dir, env: { PATH: '/usr/bin:/bin', TMPDIR: dir }, timeoutSeconds: 300 });
  assert.equal(r.stdout.toString(), native.stdout);
  assert.equal(normalize(r.stderr.toString()), normalize(native.stderr));
  for (const what of [/Invalid write of size 4/, /Invalid read of size 4/, /Conditional jump or move depends on uninitialised value/, /24 bytes in 1 blocks are definitely lost/]) {
    assert.match(r.stderr.toString(), what);
  }
  assert.equal(r.exitStatus, 9);
});
