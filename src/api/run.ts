// The library API: run one static program in a fresh micro-VM and get its exit status and output.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import * as libc from '../kvm/libc.js';
import { Vfs, type GrantSpec } from '../fs/vfs.js';
import type { InputSource, OutputSink } from '../fs/open-file.js';
import { exitStatusOf, type ExitReason } from '../linux/process.js';
import { Kernel } from '../linux/kernel.js';
import type { Machine } from '../machine/machine.js';
import { NotRunnableError } from '../linux/elf.js';
import { acquireMachine, releaseMachine } from '../machine/pool.js';

export interface RunOptions {
  /** Host paths visible read-only at the same path in the guest. */
  ro?: readonly string[];
  /** Host paths visible read-write. */
  rw?: readonly string[];
  /** Working directory in the guest (default /). */
  cwd?: string;
  /** Environment as KEY=VALUE strings or an object. Default: PATH, HOME=/ and nothing from the host. */
  env?: readonly string[] | Readonly<Record<string, string>>;
  /** Guest memory in MiB (default 256). */
  memoryMiB?: number;
  /** Stop the program after this many seconds (exit status 124). */
  timeoutSeconds?: number;
  /** Most descriptors the program may hold open (EMFILE beyond). Default 1024. */
  maxOpenFiles?: number;
  /** Stop the program once it has written more than this many bytes to stdout+stderr. */
  maxOutputBytes?: number;
  /** Standard input: bytes, or 'inherit' to read the host's fd 0. Default: empty. */
  stdin?: Uint8Array | string | 'inherit';
  /** Standard output/error: 'capture' (default, returned in the result), 'inherit' (host fd 1/2), or a callback. */
  stdout?: 'capture' | 'inherit' | ((chunk: Uint8Array) => void);
  stderr?: 'capture' | 'inherit' | ((chunk: Uint8Array) => void);
  /** Called with one strace-like line per system call. */
  trace?: (line: string) => void;
  /** argv[0] as the program sees it (default: the program path as given). */
  argv0?: string;
  /**
   * Let kvmbox rewrite the program's `syscall` instructions, where provably safe, into direct
   * jumps to its in-guest system-call stub (default true). Only on KVMs where `syscall` does not
   * reach the guest kernel (kvm_pvm); see docs/performance.md. Set false for a program that
   * reads or checksums its own machine code.
   */
  patchSyscalls?: boolean;
}

export interface RunResult {
  /** The exit status as `docker run` reports it: the program's own, 128+N for signal N, 124 on timeout, 125 on a kvmbox failure. */
  exitStatus: number;
  /** The signal that killed the program, if one did. */
  signal?: number;
  /** Why the run ended, with a message for anything other than a normal exit. */
  reason: ExitReason;
  stdout: Buffer;
  stderr: Buffer;
  /** System calls the program made. */
  syscalls: number;
}

/** The program file does not exist (exit status 127). */
export class ProgramNotFoundError extends Error {
  readonly exitStatus = 127;
  constructor(path: string, why: string) {
    super(`${path}: ${why}`);
    this.name = 'ProgramNotFoundError';
  }
}

export const DEFAULT_MEMORY_MIB = 256;
const DEFAULT_ENV = ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/'];
const EAGAIN = 11;

/** Program images by path, reused while the file's identity and mtime are unchanged. */
const imageCache = new Map<string, { key: string; image: Buffer }>();
const IMAGE_CACHE_ENTRIES = 8;

function readProgram(path: string): Buffer {
  const st = statSync(path);
  if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  const hit = imageCache.get(path);
  if (hit && hit.key === key) return hit.image;
  const image = readFileSync(path);
  if (imageCache.size >= IMAGE_CACHE_ENTRIES) imageCache.delete(imageCache.keys().next().value!);
  imageCache.set(path, { key, image });
  return image;
}

/** Write all of buf to a host fd, waiting out EAGAIN on non-blocking pipes. */
function writeAllToFd(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) {
    const n = libc.write(fd, buf.subarray(off));
    if (n === -EAGAIN) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      continue;
    }
    if (n < 0) return; // EPIPE and friends: the reader is gone; drop output like a closed pipe
    off += n;
  }
}

function sink(mode: RunOptions['stdout'], fd: number, chunks: Buffer[]): OutputSink {
  if (mode === 'inherit') return { hostFd: fd, tty: libc.isatty(fd), write: (b) => writeAllToFd(fd, b) };
  if (typeof mode === 'function') return { write: (b) => mode(Buffer.from(b)) };
  return { write: (b) => { chunks.push(Buffer.from(b)); }, deferrable: true };
}

function source(stdin: RunOptions['stdin']): InputSource {
  if (stdin === 'inherit') {
    return {
      hostFd: 0, tty: libc.isatty(0),
      read: (buf) => {
        for (;;) {
          const n = libc.read(0, buf);
          if (n === -EAGAIN) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); continue; }
          return n < 0 ? 0 : n;
        }
      },
    };
  }
  const data = stdin === undefined ? Buffer.alloc(0) : Buffer.from(stdin);
  let pos = 0;
  return {
    read: (buf) => {
      const n = data.copy(buf, 0, pos);
      pos += n;
      return n;
    },
  };
}

function envList(env: RunOptions['env']): string[] {
  if (env === undefined) return [...DEFAULT_ENV];
  if (Array.isArray(env)) return [...(env as readonly string[])];
  return Object.entries(env as Record<string, string>).map(([k, v]) => `${k}=${v}`);
}

/**
 * Run a static x86-64 Linux program in a new micro-VM. `program` is a host path; the program
 * sees only the paths granted in options.ro / options.rw.
 * Throws KvmUnavailableError (no usable /dev/kvm), ProgramNotFoundError, NotRunnableError,
 * GrantError; all carry a message that says what to do.
 */
export function run(program: string, args: readonly string[] = [], options: RunOptions = {}): RunResult {
  const exePath = resolve(program);
  let image: Buffer;
  try {
    image = readProgram(exePath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ProgramNotFoundError(program, 'no such file');
    if (code === 'EISDIR') throw new NotRunnableError(`${program}: is a directory, not a program`);
    if (code === 'EACCES') throw new NotRunnableError(`${program}: permission denied`);
    throw new ProgramNotFoundError(program, (e as Error).message);
  }
  const grants: GrantSpec[] = [
    ...(options.ro ?? []).map((path) => ({ path, writable: false })),
    ...(options.rw ?? []).map((path) => ({ path, writable: true })),
  ];
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stderr = sink(options.stderr, 2, err);
  const memoryMiB = options.memoryMiB ?? DEFAULT_MEMORY_MIB;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB % 2 !== 0 || memoryMiB > 65536) {
    throw new RangeError(`memory must be an even number of MiB between 16 and 65536, not ${memoryMiB}`);
  }
  const vfs = new Vfs(grants);
  let kernel: Kernel | undefined;
  let machine: Machine | undefined;
  let reusable = false;
  try {
    machine = acquireMachine({ memoryBytes: memoryMiB * 1024 * 1024, timer: options.timeoutSeconds !== undefined });
    kernel = new Kernel(machine, {
      vfs,
      argv: [options.argv0 ?? program, ...args],
      envp: envList(options.env),
      exePath,
      cwd: options.cwd ?? '/',
      stdin: source(options.stdin),
      stdout: sink(options.stdout, 1, out),
      stderr,
      trace: options.trace,
      timeoutMs: options.timeoutSeconds !== undefined ? options.timeoutSeconds * 1000 : undefined,
      maxOpenFiles: options.maxOpenFiles,
      maxOutputBytes: options.maxOutputBytes,
      patchSyscalls: options.patchSyscalls,
    });
    kernel.exec(image);
    const reason = kernel.run();
    reusable = reason.kind !== 'vm-error';
    if (reason.kind !== 'exited') stderr.write(Buffer.from(reason.message + '\n'));
    return {
      exitStatus: exitStatusOf(reason),
      signal: reason.kind === 'signaled' ? reason.signal : undefined,
      reason,
      stdout: Buffer.concat(out),
      stderr: Buffer.concat(err),
      syscalls: kernel.syscallCount,
    };
  } finally {
    kernel?.close();
    if (machine) releaseMachine(machine, reusable);
    vfs.close();
  }
}
