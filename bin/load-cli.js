// Loads the CLI bundle (build/src/cli/kvmbox.bundle.cjs, made by scripts/bundle-cli.mjs) with
// the V8 code cache made beside it at build time, so that Node deserializes the compiled code
// instead of parsing and compiling 600 KB of JavaScript at each start (docs/performance.md).
// The cache file starts with the SHA-256 of the bundle it was made from: a cache of another
// bundle is never used (V8's own check looks only at the source's length). Without a usable
// cache the bundle compiles as any script does.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

export const BUNDLE = fileURLToPath(new URL('../build/src/cli/kvmbox.bundle.cjs', import.meta.url));
const HASH_BYTES = 32;

export function bundleHash(source) {
  return createHash('sha256').update(source).digest();
}

/** The code cache of a bundle: its file name. */
export function cacheOf(bundle) {
  return `${bundle}.cache`;
}

/**
 * Compiles and runs the bundle with its code cache, if that was made from it; returns its
 * exports, the vm.Script (to make the cache from) and whether the cache was used.
 */
export function loadCli(bundle = BUNDLE) {
  const source = readFileSync(bundle, 'utf8');
  let cachedData;
  try {
    const file = readFileSync(cacheOf(bundle));
    if (file.length > HASH_BYTES && file.subarray(0, HASH_BYTES).equals(bundleHash(source))) cachedData = file.subarray(HASH_BYTES);
  } catch {
    // No cache: compile from the source.
  }
  const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return { exports: module.exports, script, source, usedCache: cachedData !== undefined && !script.cachedDataRejected };
}
