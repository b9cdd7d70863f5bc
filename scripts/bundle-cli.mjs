// Bundles the compiled CLI (build/src/cli/main.js and everything it imports) into one module,
// build/src/cli/kvmbox.bundle.js, which bin/kvmbox.js loads: Node then resolves, reads and
// compiles one file instead of ~95, which took about 40% of the CLI's start-up beyond Node's own
// (docs/performance.md). koffi stays outside (a native addon). The bundle sits beside main.js,
// so paths made from import.meta.url (the kernel, the host helper, package.json) resolve as
// from any module of build/src/<layer>/.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  absWorkingDir: root,
  entryPoints: ['build/src/cli/main.js'],
  outfile: 'build/src/cli/kvmbox.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  logLevel: 'warning',
  // Names kept for error messages and stack traces (class names are used in errors).
  keepNames: true,
});
