// Shared by the test files: where the test programs and the CLI are, and how to run the CLI.
// Side-effect free on import: node --test also loads this file (build/test/helpers.js) as a
// test file, where it must define no tests and leave nothing behind.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectSyscallPath } from '../src/machine/machine.js';

/** The repository root (this file runs from build/test/). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where scripts/build-test-programs.mjs puts the test programs. */
export const PROGRAMS_DIR = `${ROOT}test/programs/out`;
/** The kvmbox command. */
export const BIN = `${ROOT}bin/kvmbox.js`;
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version;

/** The static builds of every test program: gcc -static, musl-gcc -static, gcc -static-pie. */
export const VARIANTS = ['glibc', 'musl', 'pie'] as const;
export type Variant = (typeof VARIANTS)[number];
export type ProgramName = 'hello' | 'exitcode' | 'big-output' | 'orw' | 'fault' | 'syscalls' | 'hostile-spin' | 'mmap-file' | 'procs' | 'outside';

function built(path: string): string {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: build the test programs with 'node scripts/build-test-programs.mjs' (npm test does)`);
  }
  return path;
}

/** Absolute path of test/programs/out/<name>.<variant>; throws with the fix when it was not built. */
export function program(name: ProgramName, variant: Variant): string {
  return built(`${PROGRAMS_DIR}/${name}.${variant}`);
}

/** hello.c linked dynamically (has PT_INTERP): runs when ld.so and libc are granted. */
export function dynamicHello(): string {
  return built(`${PROGRAMS_DIR}/hello.dyn`);
}

/** Debian's static busybox, copied by the build script when busybox-static is installed. */
export const BUSYBOX = `${PROGRAMS_DIR}/busybox`;
/** For `test(..., { skip: NO_BUSYBOX })`: false when busybox is there, else why the test skips. */
export const NO_BUSYBOX: string | false = existsSync(BUSYBOX)
  ? false
  : 'test/programs/out/busybox is missing (apt-get install busybox-static, then node scripts/build-test-programs.mjs)';

/** True when the tests run as root (needed to simulate a missing or forbidden /dev/kvm). */
export const IS_ROOT = process.getuid?.() === 0;

export interface CliResult {
  /** Exit status, or null when a signal ended the process. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  /** stdout as UTF-8. */
  out: string;
  /** stderr as UTF-8. */
  err: string;
}

export interface CliOptions {
  /** Bytes to pipe into the command's stdin (default: empty, closed at once). */
  input?: string | Uint8Array;
  /** Working directory of the kvmbox process (default: the repository root). */
  cwd?: string;
  /** Extra environment variables for the kvmbox process. */
  env?: Record<string, string>;
  /** Run `command... node bin/kvmbox.js ARGS` instead of node directly (e.g. unshare, setpriv). */
  wrapper?: readonly string[];
  timeoutMs?: number;
}

/** Run `node bin/kvmbox.js ARGS...` to the end and capture everything. */
export function runCli(args: readonly string[], opts: CliOptions = {}): CliResult {
  const command = [...(opts.wrapper ?? []), process.execPath, BIN, ...args];
  const r = spawnSync(command[0]!, command.slice(1), {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** The byte pattern big-output writes: byte i is i % 251. */
export function bigOutputPattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = i % 251;
  return b;
}

/** Index of the first byte where a and b differ, or -1 when they are equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Whether this host's KVM takes system calls through the user-mode stub (kvm_pvm: its caches and
 * call-site patching apply) rather than the CPL0 entry (hardware KVM). Probes once, on first call. */
export function onUserStubPath(): boolean {
  return detectSyscallPath() === 'user-stub';
}

/**
 * Everything about a host tree that a sandbox must not change: each path below dir with its
 * mode, link count, size, mtime and inode, a symlink's target and a file's bytes. Two equal
 * snapshots mean the tree is the same, byte for byte.
 */
export function treeSnapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const extra = st.isSymbolicLink() ? readlinkSync(p) : st.isFile() ? readFileSync(p).toString('hex') : '';
      out.push(`${p} ${st.mode.toString(8)} ${st.nlink} ${st.size} ${st.mtimeMs} ${st.ino} ${extra}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.join('\n');
}
