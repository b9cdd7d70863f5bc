#!/usr/bin/env node
// Builds the test programs in test/programs/*.c into test/programs/out/:
//   <name>.glibc  gcc -static            (static glibc)
//   <name>.musl   musl-gcc -static       (static musl)
//   <name>.pie    gcc -static-pie -fPIE  (static-PIE glibc: self-relocating, ET_DYN without PT_INTERP)
//   hello.dyn     gcc                    (dynamically linked: needs ld.so and libc granted)
//   hello.dynexec gcc -no-pie            (dynamically linked ET_EXEC, at its link address)
// and copies Debian's busybox-static binary to out/busybox when the package is installed.
// A target is skipped when its output is newer than its source. Compiles run two at a time.
// Exits 1, after printing the compiler output, when any compile fails.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onPath, upToDate } from './build-util.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'test/programs');
const outDir = join(srcDir, 'out');
const JOBS = 2;
const CFLAGS = ['-O2', '-Wall', '-Wextra'];

/** Only hello gets a dynamically linked build (Debian's own programs test the rest: test/dynamic.test.ts). */
const DYNAMIC = new Set(['hello', 'auxv', 'maps']);

const variants = [
  { suffix: 'glibc', cc: 'gcc', flags: ['-static'] },
  { suffix: 'musl', cc: 'musl-gcc', flags: ['-static'] },
  { suffix: 'pie', cc: 'gcc', flags: ['-static-pie', '-fPIE'] },
  { suffix: 'dyn', cc: 'gcc', flags: [], only: DYNAMIC },
  { suffix: 'dynexec', cc: 'gcc', flags: ['-no-pie'], only: DYNAMIC },
];

function run(cmd, args) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${stdout}${stderr}`.trim(), err });
    });
  });
}

/** Runs `tasks` (functions returning promises) with at most `n` in flight. */
async function pool(tasks, n) {
  const results = [];
  let next = 0;
  async function worker() {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker));
  return results;
}

/** Path of /bin/busybox as installed by the busybox-static package, or null. */
function busyboxStatic() {
  let files;
  try {
    files = execFileSync('dpkg', ['-L', 'busybox-static'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
  const path = files.split('\n').find((f) => f.endsWith('/bin/busybox'));
  return path && existsSync(path) ? path : null;
}

function copyBusybox() {
  const src = busyboxStatic();
  const out = join(outDir, 'busybox');
  if (!src) {
    console.log('busybox: package busybox-static is not installed; tests that need it will skip. ' +
      'Install it with: apt-get install busybox-static');
    return;
  }
  if (upToDate(src, out)) return;
  copyFileSync(src, out);
  chmodSync(out, 0o755);
  console.log(`copied ${src} -> ${relative(root, out)}`);
}

async function main() {
  if (!onPath('gcc')) {
    console.error('build-test-programs: gcc not found. Install it with: apt-get install gcc');
    process.exit(1);
  }
  if (!onPath('musl-gcc')) {
    console.error('build-test-programs: musl-gcc not found; it builds the musl variants of the test programs. ' +
      'Install it with: apt-get install musl-tools');
    process.exit(1);
  }
  mkdirSync(outDir, { recursive: true });

  const sources = readdirSync(srcDir).filter((f) => f.endsWith('.c')).sort();
  const tasks = [];
  let skipped = 0;
  for (const file of sources) {
    const name = basename(file, '.c');
    const src = join(srcDir, file);
    for (const v of variants) {
      if (v.only && !v.only.has(name)) continue;
      const out = join(outDir, `${name}.${v.suffix}`);
      if (upToDate(src, out)) {
        skipped++;
        continue;
      }
      const args = [...v.flags, ...CFLAGS, '-o', out, src];
      tasks.push(async () => {
        const r = await run(v.cc, args);
        const line = `${v.cc} ${args.map((a) => (a.startsWith('/') ? relative(root, a) : a)).join(' ')}`;
        return { ...r, line, out };
      });
    }
  }

  const results = await pool(tasks, JOBS);
  const failed = results.filter((r) => !r.ok);
  for (const r of results) {
    if (r.ok) {
      console.log(`built ${relative(root, r.out)}`);
      if (r.output) console.log(r.output); // warnings
    }
  }
  for (const r of failed) {
    console.error(`\nFAILED: ${r.line}\n${r.output || r.err.message}`);
  }
  console.log(`test programs: ${results.length - failed.length} built, ${skipped} up to date, ${failed.length} failed`);

  copyBusybox();
  if (failed.length > 0) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
