// Bundles the compiled CLI (build/src/cli/main.js and everything it imports) into one CommonJS
// file, build/src/cli/kvmbox.bundle.cjs, and makes its V8 code cache, which bin/load-cli.js
// loads. Node then reads one file instead of ~95, and deserializes compiled code instead of
// compiling 600 KB of source: together most of the CLI's start-up beyond Node's own
// (docs/performance.md). koffi stays outside (a native addon). The bundle sits beside main.js,
// so paths made from import.meta.url (the kernel, the host helper, package.json) resolve as
// from any module of build/src/<layer>/; CommonJS has no import.meta, so the bundle makes the
// URL from its __filename.
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}build/src/cli/kvmbox.bundle.js`, { force: true }); // the ESM bundle of earlier builds
await build({
  absWorkingDir: root,
  entryPoints: ['build/src/cli/main.js'],
  outfile: 'build/src/cli/kvmbox.bundle.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['koffi'],
  logLevel: 'warning',
  define: { 'import.meta.url': '__kvmboxModuleUrl' },
  banner: { js: 'const __kvmboxModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  // Less source to read and hash; names kept for error messages and stack traces (class names
  // are used in errors).
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
});

// The code cache: made after the bundle's top level has run, so it holds what that compiled.
const { loadCli, bundleHash, cacheOf, BUNDLE } = await import('../bin/load-cli.js');
rmSync(cacheOf(BUNDLE), { force: true });
const { script, source } = loadCli();
writeFileSync(cacheOf(BUNDLE), Buffer.concat([bundleHash(source), script.createCachedData()]));
