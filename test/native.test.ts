// The host helper library (native/): its C under AddressSanitizer and UndefinedBehaviorSanitizer
// (test/native/helper-asan.c drives every entry point on real directories, deep trees and
// hostile records), the hardening of the library the host loads, and its record parser as the
// host calls it. Needs no KVM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from '../src/kvm/libc.js';
import { ROOT } from './helpers.js';

const NATIVE = join(ROOT, 'native');

test('the helper library passes its driver under AddressSanitizer and UndefinedBehaviorSanitizer', () => {
  execFileSync('make', ['-s', '-C', NATIVE, 'asan'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-asan-'));
  try {
    const r = spawnSync(join(NATIVE, 'out', 'helper-asan'), [dir], {
      encoding: 'utf8',
      env: {
        ...process.env,
        ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1',
        UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      },
      maxBuffer: 16 << 20,
      timeout: 600_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^ok \d+ checks$/m);
    assert.doesNotMatch(r.stderr, /Sanitizer|runtime error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the library the host loads is built with the stack protector', () => {
  const so = readFileSync(join(NATIVE, 'out', 'libkvmbox-host.so'));
  assert.ok(so.includes('__stack_chk_fail'), 'built with -fstack-protector-strong');
  assert.match(readFileSync(join(NATIVE, 'Makefile'), 'utf8'), /-D_FORTIFY_SOURCE=2/);
});

/** getdents64 records by hand: [name, reclen (0: the right one)]. */
function records(list: Array<[string, number]>): Buffer {
  const parts = list.map(([name, reclen]) => {
    const right = (19 + Buffer.byteLength(name) + 1 + 7) & ~7;
    const b = Buffer.alloc(Math.max(right, reclen || right));
    b.writeBigUInt64LE(1n, 0);
    b.writeUInt16LE(reclen || right, 16);
    b.write(name, 19);
    return b;
  });
  return Buffer.concat(parts);
}

test('the host refuses getdents64 records that are short, misaligned, unterminated or name a path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-records-'));
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'f'), 'x');
    const fd = libc.open(dir, 0o200000 /* O_DIRECTORY */);
    try {
      const count = (recs: Buffer) => libc.statDirents(fd, recs, Buffer.alloc(Math.floor(recs.length / 24) * 144));
      assert.equal(count(records([['f', 0], ['sub', 0]])), 2);
      // reclen 20 was taken before: more records than len / 24, past the stats buffer.
      const short = Buffer.alloc(20 * 6);
      for (let i = 0; i < 6; i++) { short.writeUInt16LE(20, i * 20 + 16); short.write('f', i * 20 + 19); }
      assert.equal(count(short), 0);
      assert.equal(count(records([['f', 0], ['sub', 36]])), 1, 'a misaligned record');
      assert.equal(count(records([['f', 0], ['../../etc', 0], ['sub', 0]])), 1, 'a name with a slash');
      const unterminated = records([['f', 0]]);
      unterminated.fill(0x61, 19);
      assert.equal(count(unterminated), 0);
    } finally {
      libc.close(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
