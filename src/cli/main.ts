// The kvmbox command: a thin layer over the API in src/api.
import { readFileSync } from 'node:fs';
import { runSync as run, DEFAULT_MEMORY_MIB, type RunOptions } from '../api/run.js';
import { runRaw, type RawMode } from '../machine/raw.js';
import { doctor, formatDoctorReport } from '../api/doctor.js';

const VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const HELP = `kvmbox ${VERSION}: run Linux x86-64 programs in a KVM micro-VM

Usage:
  kvmbox run [OPTIONS] [--] PROGRAM [ARGS...]
  kvmbox raw --mode real|long FILE
  kvmbox doctor [--json]
  kvmbox --help | --version

run: PROGRAM (a host path to an x86-64 ELF; with --root, a path inside DIR) runs in a fresh VM.
It sees no host file except those granted, at the same path; its stdin, stdout and stderr are
kvmbox's. Signals sent to kvmbox go to the program: Ctrl-C, Ctrl-\\, Ctrl-Z and a terminal's
resize to its foreground process group, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 to the program
itself; when the program stops, kvmbox stops with it (fg continues both). On a terminal, the
program may set its modes (raw keys, no echo); kvmbox puts them back when it ends.
  --ro PATH          grant PATH (file or directory) read-only; repeatable
  --rw PATH          grant PATH read-write; repeatable
  --root DIR         DIR becomes the guest's /, read-only (a debootstrap'd tree, an unpacked
                     container image); --ro/--rw grants are laid over it at their host paths,
                     and PROGRAM is a path inside DIR
  --system           grant the host's own system read-only: /usr, /bin, /sbin, /lib*, and the
                     parts of /etc programs read at start-up (ld.so.cache, passwd without
                     hashes, alternatives...); never /etc/shadow or other secrets (see README)
  --tmp              give the program an empty, writable /tmp of its own (a new directory
                     under the host's $TMPDIR, removed when the run ends; not size-limited)
  --cwd DIR          working directory in the guest (default /)
  --env KEY=VALUE    set an environment variable; repeatable (default: PATH and HOME=/ only)
  --memory MIB       guest memory in MiB (default ${DEFAULT_MEMORY_MIB}): the most a process may have mapped
                     writable or filled from files; beyond it, ENOMEM (reservations that were never
                     writable are free)
  --timeout SECONDS  stop the program after SECONDS (exit status 124)
  --max-output BYTES stop the program once it has written more than BYTES
  --max-files N      most open descriptors (default 1024; EMFILE beyond)
  --max-procs N      most processes at once, the first included (default 128; fork fails
                     with EAGAIN beyond)
  --vcpus N          most vCPUs a process's threads run on in parallel (default: the host's
                     CPUs, at most 16; always 1 on kvm_pvm, where threads take turns)
  --trace            print each system call and its result on stderr, like strace
  --no-patch         leave the program's code as it is (by default kvmbox rewrites 'syscall'
                     instructions into direct calls of its in-guest stub where safe, on KVMs
                     where that saves a trap; use this for programs that read their own code)

raw: run a flat binary with no kernel: 16-bit real mode at address 0 (--mode real), or 64-bit
long mode with identity paging (--mode long). Bytes written with 'out' to port 0x217 go to
stdout; 'hlt' ends the run.

doctor: print what this host offers (the KVM device and its kind, the system-call path, the
host kernel and CPU) and what to do when it cannot run programs; exits 0 when it can, else 125.
--json prints the same as JSON.

Exit status: the program's own; 128+N when signal N killed it; 124 on timeout; 125 when
kvmbox itself failed (also: a --root DIR that does not exist); 126 when PROGRAM is not a
runnable x86-64 ELF; 127 when it does not exist (with --root: inside DIR).
`;

class UsageError extends Error {}

function takeValue(argv: string[], i: number, flag: string): string {
  const v = argv[i + 1];
  if (v === undefined) throw new UsageError(`${flag} needs a value`);
  return v;
}

function positiveNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} needs a positive number, not '${v}'`);
  return n;
}

function parseRun(argv: string[]): { program: string; args: string[]; options: RunOptions } {
  const ro: string[] = [], rw: string[] = [], env: string[] = ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/'];
  // Signals sent to kvmbox (Ctrl-C, SIGTERM, a terminal resize) go to the program, as if it ran
  // natively in kvmbox's place.
  const options: RunOptions = { ro, rw, stdin: 'inherit', stdout: 'inherit', stderr: 'inherit', forwardSignals: true };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') break;
    switch (a) {
      case '--ro': ro.push(takeValue(argv, i++, a)); break;
      case '--rw': rw.push(takeValue(argv, i++, a)); break;
      case '--root': options.root = takeValue(argv, i++, a); break;
      case '--system': options.system = true; break;
      case '--tmp': options.tmp = true; break;
      case '--cwd': options.cwd = takeValue(argv, i++, a); break;
      case '--env': {
        const v = takeValue(argv, i++, a);
        if (!v.includes('=')) throw new UsageError(`--env needs KEY=VALUE, not '${v}'`);
        const key = v.slice(0, v.indexOf('='));
        const at = env.findIndex((e) => e.startsWith(key + '='));
        if (at >= 0) env.splice(at, 1);
        env.push(v);
        break;
      }
      case '--memory': options.memoryMiB = positiveNumber(takeValue(argv, i++, a), a); break;
      case '--timeout': options.timeoutSeconds = positiveNumber(takeValue(argv, i++, a), a); break;
      case '--max-output': options.maxOutputBytes = positiveNumber(takeValue(argv, i++, a), a); break;
      case '--max-files': options.maxOpenFiles = positiveNumber(takeValue(argv, i++, a), a); break;
      case '--max-procs': options.maxProcesses = positiveNumber(takeValue(argv, i++, a), a); break;
      case '--vcpus': options.vcpus = positiveNumber(takeValue(argv, i++, a), a); break;
      case '--trace': options.trace = (line) => process.stderr.write(line + '\n'); break;
      case '--no-patch': options.patchSyscalls = false; break;
      default: throw new UsageError(`unknown option '${a}' for run`);
    }
  }
  const program = argv[i];
  if (program === undefined) throw new UsageError('run needs a PROGRAM');
  options.env = env;
  return { program, args: argv.slice(i + 1), options };
}

export function main(argv: string[]): number {
  try {
    const cmd = argv[0];
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      process.stdout.write(HELP);
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === '--version' || cmd === '-V') {
      process.stdout.write(`kvmbox ${VERSION}\n`);
      return 0;
    }
    if (cmd === 'run') {
      if (argv[1] === '--help' || argv[1] === '-h') { process.stdout.write(HELP); return 0; }
      const { program, args, options } = parseRun(argv.slice(1));
      return run(program, args, options).exitStatus;
    }
    if (cmd === 'doctor') {
      const rest = argv.slice(1);
      const bad = rest.find((a) => a !== '--json');
      if (bad !== undefined) throw new UsageError(`unknown option '${bad}' for doctor`);
      const report = doctor();
      process.stdout.write(rest.includes('--json') ? JSON.stringify(report, null, 2) + '\n' : formatDoctorReport(report));
      return report.ok ? 0 : 125;
    }
    if (cmd === 'raw') {
      let mode: string | undefined, file: string | undefined;
      for (let i = 1; i < argv.length; i++) {
        const a = argv[i]!;
        if (a === '--mode') mode = takeValue(argv, i++, a);
        else if (a.startsWith('--mode=')) mode = a.slice(7);
        else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}' for raw`);
        else if (file === undefined) file = a;
        else throw new UsageError(`raw takes one FILE, got '${file}' and '${a}'`);
      }
      if (mode !== 'real' && mode !== 'long') throw new UsageError(`raw needs --mode real or --mode long`);
      if (file === undefined) throw new UsageError('raw needs a FILE');
      let code: Buffer;
      try {
        code = readFileSync(file);
      } catch (e) {
        process.stderr.write(`kvmbox: ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
        return 127;
      }
      const r = runRaw(mode as RawMode, code, { write: (b) => process.stdout.write(Buffer.from(b)) });
      if (r.error) process.stderr.write(`kvmbox: ${r.error}\n`);
      return r.exitStatus;
    }
    throw new UsageError(`unknown command '${cmd}'`);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kvmbox: ${e.message}\nTry 'kvmbox --help'.\n`);
      return 2;
    }
    const status = typeof (e as { exitStatus?: unknown }).exitStatus === 'number' ? (e as { exitStatus: number }).exitStatus : 125;
    process.stderr.write(`kvmbox: ${(e as Error).message}\n`);
    return status;
  }
}
