// Real programs built on real libraries (issue 3): SQLite and Lua, linked statically against
// Debian's libsqlite3.a and liblua5.4.a (libsqlite3-dev, liblua5.4-dev; .ci/run installs them).
// Each runs natively and in kvmbox: the output must be identical, and so must SQLite's database.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync as run } from '../src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'test/real');
const out = join(src, 'out');
const sqlite = join(out, 'sqlite-demo');
const lua = join(out, 'lua-demo');

function build(output: string, source: string, args: string[]): void {
  if (existsSync(output) && statSync(output).mtimeMs > statSync(source).mtimeMs) return;
  try {
    execFileSync('gcc', ['-static', '-O2', '-o', output, source, ...args], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`building ${output} failed (install libsqlite3-dev and liblua5.4-dev): ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
  }
}

before(() => {
  mkdirSync(out, { recursive: true });
  build(sqlite, join(src, 'sqlite-demo.c'), ['-lsqlite3', '-lm']);
  build(lua, join(src, 'lua-demo.c'), ['-I/usr/include/lua5.4', '-llua5.4', '-lm']);
});

test('SQLite: 20,000 rows into a --rw directory give the same output and a byte-identical database', () => {
  const base = mkdtempSync(join(tmpdir(), 'kvmbox-sqlite-'));
  try {
    const nativeDir = join(base, 'native');
    const guestDir = join(base, 'guest');
    mkdirSync(nativeDir);
    mkdirSync(guestDir);
    const native = spawnSync(sqlite, [nativeDir]);
    assert.equal(native.status, 0, native.stderr.toString());
    const r = run(sqlite, [guestDir], { rw: [guestDir] });
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), native.stdout.toString());
    assert.match(r.stdout.toString(), /n=20000 /);
    assert.match(r.stdout.toString(), /integrity_check=ok/);
    const a = readFileSync(join(nativeDir, 'demo.db'));
    const b = readFileSync(join(guestDir, 'demo.db'));
    assert.ok(a.length > 100_000);
    assert.ok(a.equals(b), 'the database files differ');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('Lua 5.4: a script with tables, closures, coroutines, patterns and file I/O prints the same', () => {
  const file = '/etc/os-release';
  const native = spawnSync(lua, [file]);
  assert.equal(native.status, 0, native.stderr.toString());
  const r = run(lua, [file], { ro: [file] });
  assert.equal(r.exitStatus, 0, r.stderr.toString());
  assert.equal(r.stdout.toString(), native.stdout.toString());
  assert.match(r.stdout.toString(), /^fib\t23416728348467685$/m);
});
