// The library API: run one static program in a fresh micro-VM and get its exit status and output.
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import * as libc from '../kvm/libc.js';
import { GrantError, readWhole, Vfs, type GrantSpec } from '../fs/vfs.js';
import { systemGrants } from '../fs/system.js';
import { E, Errno, SIG, STAT, STAT_SIZE } from '../abi/linux.js';
import { MAX_VCPUS } from '../abi/abi.generated.js';
import type { InputSource, OutputSink } from '../fs/open-file.js';
import { exitStatusOf, type ExitReason, type OutsideSignal } from '../linux/process.js';
import { Kernel } from '../linux/kernel.js';
import { WAIT_SLICE_MS } from '../linux/host-wait.js';
import type { Machine } from '../machine/machine.js';
import { NotRunnableError } from '../linux/elf.js';
import { MAX_SCRIPT_DEPTH, readInterpreter, scriptArgv, shebang } from '../linux/interp.js';
import { acquireMachine, releaseMachine } from '../machine/pool.js';

export interface RunOptions {
  /** Host paths visible read-only at the same path in the guest (over the root, if one is given). */
  ro?: readonly string[];
  /** Host paths visible read-write. */
  rw?: readonly string[];
  /**
   * A host directory that becomes the guest's `/`, read-only (a debootstrap'd tree, an unpacked
   * container image). The ro and rw grants are laid over it, at their host paths; the program
   * path is then a path inside the root, and absolute symlinks in it resolve inside it.
   */
  root?: string;
  /**
   * Grant the host's own system read-only: SYSTEM_GRANTS (src/fs/system.ts; the README lists
   * them), those that exist on this host. Never /etc/shadow or other secrets.
   */
  system?: boolean;
  /**
   * Give the program an empty, writable /tmp of its own: a new host directory (made with
   * mkdtemp under os.tmpdir(), mode 0700) granted read-write at /tmp, and removed with all it
   * holds when the run ends. What is written there is not bounded, as in any --rw grant.
   */
  tmp?: boolean;
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
  /**
   * Most processes the sandbox may hold at once, the first included and ended ones not yet
   * waited for counted (fork, vfork and clone fail with EAGAIN beyond). Default 128.
   */
  maxProcesses?: number;
  /**
   * Most vCPUs the threads of a process run on in parallel. Default: the host's CPUs, at most 16.
   * Where the KVM cannot run several (kvm_pvm), threads take turns on one.
   */
  vcpus?: number;
  /**
   * Stop the program once it has written more than this many bytes to stdout+stderr (exit
   * status 153, reason 'output-limit'). Also the most a 'capture' keeps per stream.
   */
  maxOutputBytes?: number;
  /** Standard input: bytes, or 'inherit' to read the host's fd 0. Default: empty. */
  stdin?: Uint8Array | string | 'inherit';
  /**
   * Standard output/error: 'capture' (default, returned in the result), 'inherit' (host fd 1/2), or
   * a callback. A capture keeps at most maxOutputBytes per stream; by default DEFAULT_CAPTURE_LIMIT
   * (64 MiB), or half of memoryMiB when that is less (captured bytes are host memory that the
   * sandbox costs). A program that writes more is stopped as by maxOutputBytes (exit status 153,
   * reason 'output-limit'); the result holds its bytes up to the limit.
   */
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
  /**
   * Ends the run when aborted, even while the program spins in user mode (the guest's timer
   * ticks every 50 ms and each tick checks it). `run()` then rejects with an Error named
   * 'AbortError' whose `cause` is `signal.reason`, like node:child_process. `runSync()` can only
   * honour a signal that is already aborted when it is called.
   */
  signal?: AbortSignal;
  /**
   * runSync() only (run() and spawn() reject it; use Sandbox.sendSignal()): while the program
   * runs, the signals that reach this Node process go to the program instead, as they would reach
   * it if it ran natively in Node's place. SIGINT, SIGQUIT, SIGTSTP, SIGWINCH and SIGCONT (what
   * a terminal sends) go to the foreground process group of the sandbox's terminal; SIGTERM,
   * SIGHUP, SIGUSR1 and SIGUSR2 to its first process. The program may catch them; by default
   * they end it with status 128+N. When the program stops (SIGTSTP, SIGSTOP), this process stops
   * too, with the terminal's modes put back, and SIGCONT continues both. What Node did with the
   * signals before is restored at the end. With
   * it set, a program that waits for something only a signal could end waits (until then, or
   * timeoutSeconds) instead of being stopped as blocked forever. The CLI sets it.
   */
  forwardSignals?: boolean;
}

/** The host signals forwardSignals catches, and where each goes. */
const FORWARDED: ReadonlyMap<number, OutsideSignal['to']> = new Map([
  [SIG.SIGINT, 'foreground'], [SIG.SIGQUIT, 'foreground'], [SIG.SIGTSTP, 'foreground'], [SIG.SIGWINCH, 'foreground'],
  [SIG.SIGCONT, 'foreground'],
  [SIG.SIGTERM, 'process'], [SIG.SIGHUP, 'process'], [SIG.SIGUSR1, 'process'], [SIG.SIGUSR2, 'process'],
] as Array<[number, OutsideSignal['to']]>);
const FORWARDED_MASK = [...FORWARDED.keys()].reduce((m, sig) => m | (1n << BigInt(sig)), 0n);

/** The signals of mask (bit N: signal N), each with where it goes (routes: by signal; default 'process'). */
export function outsideSignalsOf(mask: bigint, routes: ReadonlyMap<number, OutsideSignal['to']> = FORWARDED): OutsideSignal[] {
  const out: OutsideSignal[] = [];
  for (let sig = 1; sig < 64; sig++) {
    if (mask & (1n << BigInt(sig))) out.push({ signal: sig, to: routes.get(sig) ?? 'process' });
  }
  return out;
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
/** What 'capture' keeps of each of stdout and stderr by default (see RunOptions.stdout). */
export const DEFAULT_CAPTURE_LIMIT = 64 << 20;
const DEFAULT_ENV = ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/'];
const EAGAIN = 11, EINTR = 4;

/** Program images by path, reused while the file's identity and mtime are unchanged. */
const imageCache = new Map<string, { key: string; image: Buffer }>();
const IMAGE_CACHE_ENTRIES = 8;

function readProgram(path: string): Buffer {
  const st = statSync(path);
  if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  // A FIFO or device would block the read below (or never end): only regular files run.
  if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  const hit = imageCache.get(path);
  if (hit && hit.key === key) return hit.image;
  const image = readFileSync(path);
  if (imageCache.size >= IMAGE_CACHE_ENTRIES) imageCache.delete(imageCache.keys().next().value!);
  imageCache.set(path, { key, image });
  return image;
}

const POLLOUT = 4;
/** Bytes a pipe takes at once without blocking once poll says it is writable (PIPE_BUF). */
const PIPE_BUF = 4096;
const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFCHR = 0o020000, DEV_NULL_RDEV = 0x103;

/** Whether a write to host fd may have to wait (anything but a regular file or /dev/null). */
function mayBlock(fd: number): boolean {
  const st = Buffer.alloc(STAT_SIZE);
  if (libc.fstat(fd, st) < 0) return true;
  const type = st.readUInt32LE(STAT.mode) & S_IFMT;
  return !(type === S_IFREG || (type === S_IFCHR && st.readBigUInt64LE(STAT.rdev) === BigInt(DEV_NULL_RDEV)));
}

/**
 * Write all of buf to a host fd. To a pipe, socket or terminal (which may not take it: a reader
 * that does not read, a stopped terminal) it waits for room with poll in bounded slices and
 * writes at most PIPE_BUF bytes at a time, which then never block; stop() true (the run's time
 * is up, or it was cancelled) drops the rest. The host never blocks in write(2) itself.
 */
function writeAllToFd(fd: number, buf: Uint8Array, blocking: boolean, stop?: () => boolean): void {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  let off = 0;
  while (off < buf.length) {
    if (blocking) {
      pfd.writeInt16LE(POLLOUT, 4);
      const r = libc.poll(pfd, 1, WAIT_SLICE_MS);
      if (r === 0 || r === -EINTR) {
        if (stop?.()) return;
        continue;
      }
      if (r < 0) return;
    }
    const n = libc.write(fd, buf.subarray(off, blocking ? Math.min(buf.length, off + PIPE_BUF) : buf.length));
    if (n === -EAGAIN) {
      if (!blocking) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      if (stop?.()) return;
      continue;
    }
    if (n < 0) return; // EPIPE and friends: the reader is gone; drop output like a closed pipe
    off += n;
  }
}

/**
 * Captured output: the bytes in a few blocks that grow by doubling up to CAPTURE_BLOCK_MAX, each
 * filled before the next is made (never one Buffer per write: a program writing one byte at a
 * time would otherwise cost the host a hundred bytes of heap per byte).
 */
class Capture {
  private readonly blocks: Buffer[] = [];
  private used = 0;
  write(b: Uint8Array): void {
    for (let off = 0; off < b.length;) {
      let last = this.blocks[this.blocks.length - 1];
      if (!last || this.used === last.length) {
        last = Buffer.allocUnsafe(Math.min(CAPTURE_BLOCK_MAX, Math.max(4096, (last?.length ?? 0) * 2)));
        this.blocks.push(last);
        this.used = 0;
      }
      const n = Math.min(b.length - off, last.length - this.used);
      last.set(b.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
    }
  }
  /** Everything written, in one Buffer. */
  bytes(): Buffer {
    const parts = this.blocks.map((blk, i) => (i === this.blocks.length - 1 ? blk.subarray(0, this.used) : blk));
    return Buffer.concat(parts);
  }
}
const CAPTURE_BLOCK_MAX = 1 << 20;

function sink(mode: RunOptions['stdout'], fd: number, capture: Capture, limit: number): OutputSink {
  if (mode === 'inherit') {
    const blocking = mayBlock(fd);
    return { hostFd: fd, tty: libc.isatty(fd), write: (b, stop) => writeAllToFd(fd, b, blocking, stop) };
  }
  if (typeof mode === 'function') return { write: (b) => mode(Buffer.from(b)) };
  return { write: (b) => capture.write(b), deferrable: true, limit };
}

export function source(stdin: RunOptions['stdin']): InputSource {
  if (stdin === 'inherit') {
    return {
      hostFd: 0, tty: libc.isatty(0),
      // Called only once poll says fd 0 is readable (src/linux/syscalls/io.ts waitingIo); EAGAIN
      // (ready no more) makes it wait again, never the host block.
      read: (buf) => {
        const n = libc.read(0, buf);
        if (n === -EAGAIN) throw new Errno(EAGAIN);
        return n < 0 ? 0 : n;
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
 * Make one VM of the size and kind an engine run uses (default memory, guest timer on) and put it
 * in this thread's pool, so that the next run here resets it instead of creating it. Does nothing
 * (the first run reports why) when KVM is not usable.
 */
export function warmMachine(): void {
  let m: Machine;
  try {
    m = acquireMachine({ memoryBytes: DEFAULT_MEMORY_MIB * 1024 * 1024, timer: true });
  } catch {
    return;
  }
  releaseMachine(m, true);
}

/** An Error named 'AbortError' (as node:child_process and fetch throw), cause = signal.reason. */
export function abortError(signal: AbortSignal | undefined): Error {
  const e = new Error('The operation was aborted', { cause: signal?.reason });
  e.name = 'AbortError';
  Object.defineProperty(e, 'code', { value: 'ABORT_ERR', enumerable: true });
  return e;
}

/** What a caller other than runSync (the engine's worker) puts in place of options' own streams. */
export interface RunHooks {
  cancelled?: () => boolean;
  stdin?: InputSource;
  stdout?: OutputSink;
  stderr?: OutputSink;
  /** Called once the program is loaded and about to start. */
  onStart?: () => void;
  /** Signals sent to the program from outside since the last call (polled between exits). */
  outsideSignals?: () => OutsideSignal[] | null;
  /** The first process stopped: see ProcessOptions.onStopped. */
  onStopped?: (signal: number) => void;
}

/**
 * Run an x86-64 Linux program in a new micro-VM, in the calling thread: the event loop is
 * blocked until the program ends (see run() in src/api/engine.ts for the asynchronous form).
 * `program` is a host path (with options.root, a path inside the root); the program sees only
 * the root and the paths granted in options.ro / options.rw / options.system.
 * Throws KvmUnavailableError (no usable /dev/kvm), ProgramNotFoundError, NotRunnableError,
 * GrantError; all carry a message that says what to do.
 */
export function runSync(program: string, args: readonly string[] = [], options: RunOptions = {}): RunResult {
  if (options.signal?.aborted) throw abortError(options.signal);
  const signal = options.signal;
  const hooks: RunHooks = signal ? { cancelled: () => signal.aborted } : {};
  if (!options.forwardSignals) return runHere(program, args, options, hooks);
  const catchOrThrow = (mask: bigint): void => {
    if (libc.catchSignals(mask)) return;
    libc.uncatchSignals(FORWARDED_MASK);
    throw new Error('kvmbox: cannot catch the signals to forward (sigaction failed)');
  };
  catchOrThrow(FORWARDED_MASK);
  libc.takeCaughtSignals(); // only what arrives from now on
  hooks.outsideSignals = () => {
    const mask = libc.takeCaughtSignals();
    return mask === 0n ? null : outsideSignalsOf(mask);
  };
  // The program stopped: so does this process, as the program would have natively; the shell
  // that ran it sees it stopped, and its `fg` (SIGCONT) continues both. Where the host discards
  // the stop (an orphaned process group), the program goes on at once, as it would natively.
  hooks.onStopped = (sig) => {
    if (sig === SIG.SIGSTOP) {
      process.kill(process.pid, 'SIGSTOP');
      return;
    }
    const tstp = 1n << BigInt(SIG.SIGTSTP);
    libc.uncatchSignals(tstp); // SIGTSTP's own action for a moment: stop
    process.kill(process.pid, 'SIGTSTP');
    catchOrThrow(tstp);
  };
  try {
    return runHere(program, args, options, hooks);
  } finally {
    libc.uncatchSignals(FORWARDED_MASK);
  }
}

/** runSync's body, with the engine's hooks. Returns reason 'aborted' when hooks.cancelled fired. */
export function runHere(program: string, args: readonly string[], options: RunOptions, hooks: RunHooks): RunResult {
  const memoryMiB = options.memoryMiB ?? DEFAULT_MEMORY_MIB;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB % 2 !== 0 || memoryMiB > 65536) {
    throw new RangeError(`memory must be an even number of MiB between 16 and 65536, not ${memoryMiB}`);
  }
  if (options.vcpus !== undefined && (!Number.isInteger(options.vcpus) || options.vcpus < 1 || options.vcpus > MAX_VCPUS)) {
    throw new RangeError(`vcpus must be a whole number from 1 to ${MAX_VCPUS}, not ${options.vcpus}`);
  }
  const root = options.root !== undefined ? resolve(options.root) : undefined;
  if (root !== undefined) {
    let isDir = false;
    try { isDir = statSync(root).isDirectory(); } catch (e) {
      throw new GrantError(`root directory ${options.root}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message}`);
    }
    if (!isDir) throw new GrantError(`root directory ${options.root}: not a directory`);
  }
  // With a root, the program is a guest path (relative to the guest's working directory).
  const exePath = root !== undefined ? posix.resolve(options.cwd ?? '/', program) : resolve(program);
  let image: Buffer | undefined;
  if (root === undefined) {
    try {
      image = readProgram(exePath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new ProgramNotFoundError(program, 'no such file');
      if (code === 'EISDIR') throw new NotRunnableError(`${program}: is a directory, not a program`);
      if (code === 'EACCES') throw new NotRunnableError(`${program}: permission denied`);
      if (code === 'ENOTREG') throw new NotRunnableError(`${program}: not a regular file, not a program`);
      throw new ProgramNotFoundError(program, (e as Error).message);
    }
  }
  const grants: GrantSpec[] = [
    ...(root !== undefined ? [{ path: root, writable: false, guestPath: '/' }] : []),
    ...(options.system ? systemGrants() : []).map((path) => ({ path, writable: false, lazy: true })),
    ...(options.ro ?? []).map((path) => ({ path, writable: false })),
    ...(options.rw ?? []).map((path) => ({ path, writable: true })),
  ];
  let tmp: string | undefined;
  if (options.tmp) {
    const taken = [...(options.ro ?? []), ...(options.rw ?? [])].find((p) => resolve(p) === '/tmp');
    if (taken !== undefined) throw new GrantError(`tmp: /tmp is granted already (${taken}); drop one of the two`);
    tmp = mkdtempSync(join(tmpdir(), 'kvmbox-tmp-'));
    grants.push({ path: tmp, writable: true, guestPath: '/tmp' });
  }
  try {
    const vfs = new Vfs(grants);
    try {
      image ??= readGuestProgram(vfs, exePath, root!);
    } catch (e) {
      vfs.close();
      throw e;
    }
    let start: FirstProgram;
    try {
      start = firstProgram(vfs, image, exePath, [options.argv0 ?? program, ...args], options.cwd ?? '/');
    } catch (e) {
      vfs.close();
      throw e;
    }
    return runIn(vfs, start, options, hooks);
  } finally {
    if (tmp !== undefined) removeTree(tmp);
  }
}

/**
 * Remove a directory the guest wrote in, with everything in it. A directory the guest made
 * unreadable or unwritable (chmod 0) is given its owner's rights back first; symlinks are
 * removed, never followed.
 */
function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
    return;
  } catch {
    // below
  }
  const open = (d: string): void => {
    try { chmodSync(d, 0o700); } catch { return; }
    let names: string[] = [];
    try { names = readdirSync(d); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      try { if (lstatSync(p).isDirectory()) open(p); } catch { /* gone */ }
    }
  };
  open(dir);
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* left for the host's tmp cleaner */ }
}

/** Read the program at a guest path through the grants (with --root: inside the root). */
function readGuestProgram(vfs: Vfs, path: string, root: string): Buffer {
  let file: { fd: number; size: number };
  try {
    file = vfs.openRegular(path);
  } catch (e) {
    if (!(e instanceof Errno)) throw e;
    if (e.errno === E.ENOENT || e.errno === E.ENOTDIR) throw new ProgramNotFoundError(path, `no such file in the root ${root}`);
    if (e.errno === E.EISDIR) throw new NotRunnableError(`${path}: is a directory, not a program`);
    if (e.errno === E.ENXIO) throw new NotRunnableError(`${path}: not a regular file, not a program`);
    throw new NotRunnableError(`${path}: ${libc.errnoName(e.errno)}`);
  }
  try {
    const image = readWhole(file.fd, file.size);
    if (!image) throw new NotRunnableError(`${path}: changed while it was read`);
    return image;
  } catch (e) {
    if (e instanceof Errno) throw new NotRunnableError(`${path}: ${libc.errnoName(e.errno)}`);
    throw e;
  } finally {
    libc.closeFd(file.fd);
  }
}

interface FirstProgram { image: Buffer; exePath: string; argv: string[] }

/**
 * What the sandbox's first process execs for the program: the program itself or, for a script
 * (`#!interpreter [argument]`, as npm's `#!/usr/bin/env node`), its interpreter, found in the
 * guest's namespace, with argv [interpreter, argument, script, args...], as Linux's execve does.
 * The interpreter opens the script by its path, so the script must be granted.
 */
function firstProgram(vfs: Vfs, image: Buffer, exePath: string, argv: string[], cwd: string): FirstProgram {
  for (let depth = 0; ; depth++) {
    let line: ReturnType<typeof shebang>;
    try {
      line = shebang(image);
    } catch (e) {
      if (e instanceof NotRunnableError) throw new NotRunnableError(`${exePath}: ${e.message}`);
      throw e;
    }
    if (!line) return { image, exePath, argv };
    if (depth >= MAX_SCRIPT_DEPTH) throw new NotRunnableError(`${exePath}: more than ${MAX_SCRIPT_DEPTH} levels of #! interpreters`);
    try {
      libc.closeFd(vfs.openRegular(exePath).fd);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      throw new NotRunnableError(`${exePath}: a script, which its interpreter ${line.interp} opens by path, and it is not granted to the program; grant it, e.g. --ro ${exePath}`);
    }
    argv = scriptArgv(line, exePath, argv);
    const interp = posix.resolve(cwd, line.interp);
    image = readInterpreter(vfs, interp, exePath);
    exePath = interp;
  }
}

/** The run itself, once the grants are open and the program is read; closes vfs. */
function runIn(vfs: Vfs, start: FirstProgram, options: RunOptions, hooks: RunHooks): RunResult {
  const { image, exePath, argv } = start;
  const out = new Capture();
  const err = new Capture();
  const memoryMiB = options.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const captureLimit = options.maxOutputBytes ?? Math.min(DEFAULT_CAPTURE_LIMIT, memoryMiB * 1024 * 1024 / 2);
  const stderr = hooks.stderr ?? sink(options.stderr, 2, err, captureLimit);
  let kernel: Kernel | undefined;
  let machine: Machine | undefined;
  let reusable = false;
  try {
    machine = acquireMachine({
      memoryBytes: memoryMiB * 1024 * 1024,
      timer: options.timeoutSeconds !== undefined || hooks.cancelled !== undefined || hooks.outsideSignals !== undefined,
    });
    kernel = new Kernel(machine, {
      vfs,
      argv,
      envp: envList(options.env),
      exePath,
      cwd: options.cwd ?? '/',
      stdin: hooks.stdin ?? source(options.stdin),
      stdout: hooks.stdout ?? sink(options.stdout, 1, out, captureLimit),
      stderr,
      trace: options.trace,
      timeoutMs: options.timeoutSeconds !== undefined ? options.timeoutSeconds * 1000 : undefined,
      maxOpenFiles: options.maxOpenFiles,
      maxProcesses: options.maxProcesses,
      vcpus: options.vcpus,
      maxOutputBytes: options.maxOutputBytes,
      patchSyscalls: options.patchSyscalls,
      cancelled: hooks.cancelled,
      outsideSignals: hooks.outsideSignals,
      onStopped: hooks.onStopped,
    });
    kernel.exec(image);
    hooks.onStart?.();
    const reason = kernel.run();
    reusable = reason.kind !== 'vm-error';
    // Not waiting long for a stderr that takes nothing (a pipe nobody reads): one poll slice.
    if (reason.kind !== 'exited' && reason.kind !== 'aborted') stderr.write(Buffer.from(reason.message + '\n'), () => true);
    return {
      exitStatus: exitStatusOf(reason),
      signal: reason.kind === 'signaled' ? reason.signal : undefined,
      reason,
      stdout: out.bytes(),
      stderr: err.bytes(),
      syscalls: kernel.syscallCount,
    };
  } finally {
    kernel?.close();
    if (machine) releaseMachine(machine, reusable);
    vfs.close();
  }
}
