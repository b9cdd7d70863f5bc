// The CLI's bundle and its V8 code cache (bin/load-cli.js, scripts/bundle-cli.mjs): the cache
// made at build time is used, and a cache made from other source is not, even when V8's own
// check (the source's length) would take it. Host-only: no KVM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_VERSION, ROOT } from './helpers.js';

const LOADER = pathToFileURL(join(ROOT, 'bin/load-cli.js')).href;

/** In a fresh Node: load the bundle at path (the built one when undefined), then run `--version`. */
function load(path?: string): { usedCache: boolean; stdout: string } {
  const arg = path === undefined ? '' : JSON.stringify(path);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
    const { loadCli } = await import(${JSON.stringify(LOADER)});
    const cli = loadCli(${arg});
    process.stderr.write(cli.usedCache ? 'cache used' : 'cache not used');
    process.exitCode = cli.exports.main(['--version']);
  `], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { usedCache: r.stderr === 'cache used', stdout: r.stdout };
}

test('the CLI starts from the code cache made with its bundle', () => {
  const r = load();
  assert.equal(r.stdout, `kvmbox ${PACKAGE_VERSION}\n`);
  assert.ok(r.usedCache, 'the built code cache was not used');
});

test('a code cache made from another bundle of the same length is not used', () => {
  const bundle = join(ROOT, 'build/src/cli/kvmbox.bundle.cjs');
  // The copy sits three directories below a package.json and its node_modules (koffi), as the
  // bundle does.
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-bundle-'));
  try {
    const cli = join(dir, 'build/src/cli');
    mkdirSync(cli, { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const copy = join(cli, 'kvmbox.bundle.cjs');
    copyFileSync(bundle, copy);
    copyFileSync(`${bundle}.cache`, `${copy}.cache`);
    assert.ok(load(copy).usedCache, 'the same bundle elsewhere should use its cache');
    // One byte of the help text changed: same length, other source.
    const source = readFileSync(copy, 'latin1');
    const at = source.indexOf('Usage:');
    assert.ok(at > 0);
    writeFileSync(copy, source.slice(0, at) + 'usage:' + source.slice(at + 6), 'latin1');
    const r = load(copy);
    assert.equal(r.stdout, `kvmbox ${PACKAGE_VERSION}\n`);
    assert.equal(r.usedCache, false, 'a cache of other source was used');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
