#!/usr/bin/env node
// Builds the benchmark programs in bench/programs/*.c into bench/out/ (git-ignored), all static glibc:
//   true     int main() { return 0; }: start-to-exit cost
//   getppid  N getppid system calls through syscall(2)
//   nullcall N system calls only the host answers (ENOSYS), timed inside: the cost of one exit
//   cowtouch N writes to read-only pages, timed inside (bench/fork-costs.ts answers the faults)
//   forkloop N PROGRAM: N times fork + execve(PROGRAM) + wait (bench/processes.ts)
//   threadbench spin|pingpong|wake ...: thread workloads (bench/threads.ts)
//   sqlite   N SQLite inserts in one transaction, linked against Debian's static libsqlite3.a
// A program is skipped when its output is newer than its source. sqlite is left out, with a hint,
// when libsqlite3-dev is not installed. Exits 1, after printing the compiler output, when a compile fails.
// Prints one JSON line on the last line of stdout when run with --json: { "built": [...], "missing": {...} }.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onPath, upToDate } from '../scripts/build-util.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const srcDir = join(benchDir, 'programs');
const outDir = join(benchDir, 'out');
const CFLAGS = ['-O2', '-Wall', '-Wextra'];
const LIBSQLITE = '/usr/lib/x86_64-linux-gnu/libsqlite3.a';

const programs = [
  { name: 'true', libs: [] },
  { name: 'getppid', libs: [] },
  { name: 'nullcall', libs: [] },
  { name: 'spin', libs: [] },
  { name: 'cowtouch', libs: [] },
  { name: 'forkloop', libs: [] },
  { name: 'threadbench', libs: ['-lpthread'] },
  {
    name: 'sqlite', libs: [LIBSQLITE, '-lm', '-lpthread', '-ldl'],
    needs: [LIBSQLITE, '/usr/include/sqlite3.h'],
    hint: 'install it with: apt-get install libsqlite3-dev',
  },
];

/** The linker warns that dlopen in a static binary needs glibc's shared objects at run time: expected. */
const KNOWN_WARNING = /unixDlOpen|Using 'dlopen' in statically linked/;


function main() {
  const json = process.argv.includes('--json');
  if (!onPath('gcc')) {
    console.error('bench/build-programs: gcc not found. Install it with: apt-get install gcc');
    process.exit(1);
  }
  mkdirSync(outDir, { recursive: true });
  const built = [];
  const missing = {};
  let failed = 0;
  for (const p of programs) {
    const src = join(srcDir, `${p.name}.c`);
    const out = join(outDir, p.name);
    const absent = (p.needs ?? []).filter((f) => !existsSync(f));
    if (absent.length > 0) {
      missing[p.name] = `${absent.join(', ')} not found; ${p.hint}`;
      console.log(`bench program ${p.name}: skipped, ${missing[p.name]}`);
      continue;
    }
    if (upToDate(src, out)) {
      built.push(p.name);
      continue;
    }
    const args = ['-static', ...CFLAGS, '-o', out, src, ...p.libs];
    const r = spawnSync('gcc', args, { cwd: root, encoding: 'utf8' });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')
      .filter((l) => l.trim() !== '' && !KNOWN_WARNING.test(l) && !/: in function `unixDlOpen'/.test(l)).join('\n');
    if (r.status !== 0) {
      failed++;
      console.error(`\nFAILED: gcc ${args.map((a) => (a.startsWith('/') ? relative(root, a) : a)).join(' ')}\n${output || r.error?.message || ''}`);
      continue;
    }
    console.log(`built ${relative(root, out)}`);
    if (output) console.log(output);
    built.push(p.name);
  }
  if (json) console.log(JSON.stringify({ built, missing }));
  if (failed > 0) process.exit(1);
}

main();
