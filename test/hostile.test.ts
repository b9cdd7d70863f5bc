// The hostile-guest suite (issue 4): one program or scenario per attack, against the real
// /dev/kvm. Each test states the attack and what must hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run as runAsync, runSync as run, type RunOptions } from '../src/index.js';
import { acquireMachine, releaseMachine, machinePoolStats } from '../src/machine/pool.js';
import { Kernel } from '../src/linux/kernel.js';
import { Machine } from '../src/machine/machine.js';
import { PROT_READ, PROT_WRITE } from '../src/machine/paging.js';
import { Vfs } from '../src/fs/vfs.js';
import { HC_COUNT, HC_PORT_BASE, HYPERCALLS, Hypercall } from '../src/abi/abi.generated.js';
import { vmallocUsedKb, type Vcpu } from '../src/kvm/kvm.js';
import { BUSYBOX, NO_BUSYBOX, onUserStubPath, treeSnapshot } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const prog = (name: string, libc = 'glibc') => join(root, 'test/programs/out', `${name}.${libc}`);
const LIBCS = ['glibc', 'musl'] as const;

function runIt(name: string, args: string[], opts: RunOptions = {}, libc = 'glibc') {
  const r = run(prog(name, libc), args, opts);
  return { ...r, out: r.stdout.toString(), err: r.stderr.toString() };
}

// ---- part 4: kernel integrity ----

for (const what of ['kernel-read', 'kernel-write', 'kernel-exec']) {
  test(`user mode cannot ${what.replace('kernel-', '')} guest-kernel memory`, () => {
    const r = runIt('fault', [what]);
    assert.equal(r.exitStatus, 139, r.err);
    assert.match(r.err, /SIGSEGV: page fault .*0xffffffff80020000 \(kernel memory\)/);
  });
}

for (const what of ['hlt', 'cli', 'out', 'wrmsr', 'lidt', 'cr3']) {
  test(`privileged instruction ${what} in user mode ends the program with SIGSEGV`, () => {
    const r = runIt('fault', [what]);
    assert.equal(r.exitStatus, 139, r.err);
    assert.doesNotMatch(r.out, /survived/);
  });
}

for (const libc of LIBCS) {
  test(`every bad pointer passed to a system call gets EFAULT (${libc})`, () => {
    // Any regular file of more than 8 KiB: the program itself will do.
    const file = prog('hostile-badptr', libc);
    const r = runIt('hostile-badptr', [file], { ro: [file] }, libc);
    assert.match(r.out, /ok cached-read-into-kernel/);
    assert.match(r.out, /failures=0/, r.out);
    assert.equal(r.exitStatus, 0);
  });
}

test('unknown and out-of-range system-call numbers get ENOSYS', () => {
  const r = runIt('hostile-sysnum', []);
  assert.match(r.out, /failures=0/, r.out);
  assert.equal(r.exitStatus, 0);
});

test('hypercalls issued from user mode: only the ports the stub needs are open, and only on the user-stub path', () => {
  const probe = acquireMachine({ memoryBytes: 64 << 20 });
  const path = probe.syscallPath;
  releaseMachine(probe, true);
  const open = new Set(HYPERCALLS.filter((h) => h.userAllowed).map((h) => h.port));
  assert.ok(open.has(HC_PORT_BASE + Hypercall.SYSCALL) && !open.has(HC_PORT_BASE + Hypercall.FAULT));
  for (let port = HC_PORT_BASE - 1; port <= HC_PORT_BASE + HC_COUNT; port++) {
    const r = runIt('hostile-usercall', [String(port)]);
    if (open.has(port) && path === 'user-stub') {
      // Served like any system call (SYSCALL: getpid = 1) or a wait on an empty ring: validated by the host.
      assert.equal(r.exitStatus, 0, `port ${port}: ${r.err}`);
      assert.match(r.out, /survived rax=/);
    } else {
      assert.equal(r.exitStatus, 139, `port ${port} must fault: ${r.out} ${r.err}`);
      assert.match(r.err, /general protection/);
    }
  }
});

// ---- part 3: limits ----

// The made-up files are looked up by names the guest chose. /dev/constructor once found
// Object's constructor in the table of devices, and stat of it threw in the host ("kvmbox:
// internal error", status 125): any program could end its own sandbox that way. Now only the
// tables' own names count, under /dev, /proc/sys and /sys.
test('names of Object.prototype\'s properties are no made-up files: ENOENT, never a host error', { skip: NO_BUSYBOX }, () => {
  const paths = ['/dev/constructor', '/dev/__proto__', '/dev/toString', '/proc/sys/kernel/constructor', '/proc/sys/constructor',
    '/proc/sys/__proto__/x', '/proc/sys/kernel/hasOwnProperty', '/sys/devices/system/cpu/cpu0/topology/constructor', '/proc/1/constructor'];
  const script = `for f in ${paths.join(' ')}; do if [ -e $f ]; then echo "$f exists"; fi; cat $f >/dev/null 2>&1 || echo "$f: no"; done; ls /dev/null`;
  const r = run(BUSYBOX, ['sh', '-c', script], { timeoutSeconds: 60 });
  assert.equal(r.stdout.toString(), paths.map((f) => `${f}: no\n`).join('') + '/dev/null\n', r.stderr.toString());
  assert.equal(r.exitStatus, 0, r.stderr.toString());
});

test('fd exhaustion ends in EMFILE at the configured cap', () => {
  const r = runIt('hostile-fdbomb', [], { maxOpenFiles: 64 });
  assert.equal(r.exitStatus, 0, r.out + r.err);
  assert.match(r.out, /opened=61 /); // 64 minus stdin, stdout, stderr
});

for (const mode of ['malloc', 'mmap', 'brk', 'reserve', 'readonly']) {
  for (const libc of LIBCS) {
    test(`memory bomb (${mode}, ${libc}) is refused inside --memory 64 and the host allocates no more`, () => {
      const before = process.memoryUsage().rss;
      const r = runIt('hostile-membomb', [mode], { memoryMiB: 64 }, libc);
      assert.equal(r.exitStatus, 0, r.out + r.err);
      assert.match(r.out, /refused after (\d+) MiB/);
      const mib = Number(/refused after (\d+) MiB/.exec(r.out)![1]);
      assert.ok(mib < 64, `got ${mib} MiB from a 64 MiB guest`);
      const grown = (process.memoryUsage().rss - before) / 2 ** 20;
      assert.ok(grown < 64 + 32, `host RSS grew by ${grown.toFixed(1)} MiB`);
    });
  }
}

test('a program spinning in user mode is stopped by --timeout with status 124, soon after the limit', () => {
  // A machine with a timer in the pool first: creating one is not part of the limit (and takes
  // long under the hardware-KVM lane's emulation).
  runIt('hostile-spin', ['sleep'], { timeoutSeconds: 0.1 }, 'musl');
  const t0 = performance.now();
  const r = runIt('hostile-spin', ['spin'], { timeoutSeconds: 1 });
  const elapsed = (performance.now() - t0) / 1000;
  assert.equal(r.exitStatus, 124);
  assert.match(r.err, /time limit of 1 s/);
  // Not before the limit, and within a few 50 ms ticks after it: the bound is loose because the
  // emulated lane, shared with other work, can stall the host for a while (a timed check of the
  // tick itself belongs in a benchmark).
  assert.ok(elapsed >= 1 && elapsed < 2.5, `stopped after ${elapsed.toFixed(2)} s`);
});

test('a program sleeping forever is stopped by --timeout', () => {
  const t0 = performance.now();
  const r = runIt('hostile-spin', ['sleep'], { timeoutSeconds: 0.5 }, 'musl');
  assert.equal(r.exitStatus, 124);
  assert.ok(performance.now() - t0 < 1500);
});

test('output can be capped', () => {
  const r = runIt('hostile-spin', ['write'], { maxOutputBytes: 100_000 });
  assert.equal(r.exitStatus, 128 + 25); // SIGXFSZ, as for RLIMIT_FSIZE
  assert.ok(r.stdout.length <= 100_000 + 4096, `wrote ${r.stdout.length}`);
  assert.match(r.err, /output limit/);
});

test('clone refuses what it does not offer; fork and vfork work; a fork bomb ends at --max-procs', () => {
  const r = runIt('hostile-clone', ['bomb'], { maxProcesses: 10, timeoutSeconds: 120 });
  assert.equal(r.out, [
    'thread without CLONE_SIGHAND=-1 errno=EINVAL', 'shared memory process=-1 refused=1', 'namespace clone=-1 ok=1', 'fork: waited=1 status=5', 'vfork: waited=1 status=6',
    // 10 processes in all: the first and 9 children.
    'bomb: stopped by EAGAIN after 9 children', 'bomb: reaped 9', '',
  ].join('\n'), r.err);
  assert.equal(r.exitStatus, 0, r.err);
});

/** The host kernel's vmalloc area in use, in bytes, or null where it is not shown. */
function vmallocUsed(): number | null {
  const kb = vmallocUsedKb();
  return kb === null ? null : kb * 1024;
}

test('each process costs the host kernel at most 16 MiB for its address space, so a full --max-procs stays bounded', {
  skip: (onUserStubPath() && 'on kvm_pvm processes take turns in one memory') || NO_BUSYBOX,
}, async (t) => {
  // KVM keeps metadata for every page of a memslot on some kernels (2 bytes a page for write
  // tracking where KVMGT is configured, before 2024): a 256 GiB span would cost 128 MiB each.
  const before = vmallocUsed();
  if (before === null) { t.skip('this /proc/meminfo has no VmallocUsed'); return; }
  const done = runAsync(BUSYBOX, ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait; echo done'], { timeoutSeconds: 120 });
  let peak = before, finished = false;
  void done.finally(() => { finished = true; });
  while (!finished) {
    peak = Math.max(peak, vmallocUsed() ?? 0);
    await new Promise((r) => setTimeout(r, 20));
  }
  const r = await done;
  assert.equal(r.stdout.toString(), 'done\n', r.stderr.toString());
  // The shell and its 8 children: 9 address spaces.
  const perProcess = (peak - before) / 9;
  assert.ok(perProcess <= 16 * 1024 ** 2, `${(perProcess / 1024 ** 2).toFixed(1)} MiB of vmalloc'd kernel memory per process`);
});

test('released address spaces are reused by the next forks and hold nothing of their last process, kept with their pages or without', {
  skip: onUserStubPath() && 'on kvm_pvm processes take turns in one memory',
}, () => {
  using m = new Machine({ memoryBytes: 16 << 20 });
  const va = m.paging.userFloor + 0x200000, len = 0x4000;
  const first = [];
  for (let i = 0; i < 4; i++) {
    const sm = m.newSpace();
    sm.paging.map(va, len, PROT_READ | PROT_WRITE);
    sm.memory.write(va, Buffer.alloc(len, 0xa0 + i));
    first.push(sm);
  }
  // Two are kept with their pages (zeroed when mapped again), two with their pages given back.
  for (const sm of first) m.releaseSpace(sm);
  for (let i = 0; i < 4; i++) {
    const sm = m.newSpace();
    assert.ok(first.includes(sm), `fork ${i}: a kept space, not a new memslot`);
    assert.equal(sm.paging.perms[va / 4096], 0, 'nothing mapped');
    sm.paging.map(va, len, PROT_READ | PROT_WRITE);
    assert.ok(sm.memory.slice(va, len).every((b) => b === 0), `fork ${i}: the last process's bytes are gone`);
  }
});

test('a reused VM holds nothing of the previous program: memory, translations and vector registers', () => {
  const before = machinePoolStats().reused;
  for (const libc of LIBCS) {
    const w = runIt('hostile-residue', ['write'], {}, libc);
    assert.equal(w.exitStatus, 0, w.err);
    const c = runIt('hostile-residue', ['check'], {}, libc);
    assert.equal(c.exitStatus, 0, c.out + c.err);
    // The layout is deterministic, so the second run really looked where the first wrote.
    const where = (s: string) => /heap=(\S+) map=(\S+)/.exec(s)!.slice(1).join(' ');
    assert.equal(where(c.out), where(w.out));
  }
  assert.ok(machinePoolStats().reused > before, 'the pool must have reused a machine');
});

test('fork copies a large heap into each child, and fails with ENOMEM once all processes\' pages would pass --memory', () => {
  // 64 MiB touched, --memory 256: each child holds its own copy (checked by the child), and all
  // processes' pages together stay within 256 MiB, so 8 such children cannot all exist.
  const r = runIt('hostile-forkmem', ['64'], { memoryMiB: 256, timeoutSeconds: 300 });
  assert.equal(r.exitStatus, 0, r.out + r.err);
  const m = /^forks=(\d+) errno=(\d+)\ncopies ok=(\d+)\n$/.exec(r.out);
  assert.ok(m, r.out);
  const [forks, errno, good] = [Number(m[1]), Number(m[2]), Number(m[3])];
  assert.ok(forks >= 1 && forks < 8, r.out);
  assert.equal(errno, 12, r.out); // ENOMEM
  assert.equal(good, forks, r.out);
});

test('shared memory is bounded: 1024 mappings or /dev/shm files, --memory bytes in all; ENOMEM or ENOSPC past either, and all of it given back', {
  skip: onUserStubPath() && 'kvm_pvm: processes take turns in one memory, where MAP_SHARED anonymous memory is private to each',
}, () => {
  const fds = () => readdirSync('/proc/self/fd').length;
  let before = 0;
  // The second run reuses the first's machine (the pool): the host's descriptors must then be as
  // many after it as before. Each shared mapping held one (a memfd).
  for (const round of [1, 2]) {
    if (round === 2) before = fds();
    const r = runIt('hostile-shmbomb', ['512', '100'], { memoryMiB: 256, timeoutSeconds: 300 });
    assert.equal(r.exitStatus, 0, r.out + r.err);
    // Natively: maps=5000 errno=0, big errno=0, halves=8 errno=0 (the rest fills the host's /dev/shm).
    assert.equal(r.out, 'maps=1024 errno=12\nagain=ok\nbig errno=12\nhalves=2 errno=12\nfiles=1024 errno=28\nfilemib=256 errno=28\n');
  }
  assert.equal(fds(), before, 'no host descriptor is left open');
});

test('a program that a fork child execs holds nothing of its parent; the parent\'s pages survive', () => {
  // execve clears the old program's pages lazily (Machine.reset): each is zeroed when mapped again.
  for (const libc of LIBCS) {
    const r = runIt('hostile-residue', ['fork-exec'], {}, libc);
    assert.equal(r.exitStatus, 0, r.out + r.err);
    assert.match(r.out, /found=0\nparent's pages intact; child status 0\n$/, r.out);
    // The child looked where the parent wrote (the layout is deterministic).
    const where = [...r.out.matchAll(/heap=(\S+) map=(\S+)/g)].map((m) => m.slice(1).join(' '));
    assert.equal(where.length, 2, r.out);
    assert.equal(where[0], where[1], r.out);
  }
});

test('a reused VM gives no program the rights the previous one had on a page', () => {
  for (const libc of LIBCS) {
    const before = machinePoolStats().reused;
    const a = runIt('hostile-stale', ['a'], {}, libc);
    assert.equal(a.exitStatus, 0, a.out + a.err);
    const b = runIt('hostile-stale', ['b'], {}, libc);
    assert.ok(machinePoolStats().reused > before, 'the pool must have reused a machine');
    assert.match(b.out, /mapped r/);
    assert.equal(b.exitStatus, 128 + 11, `a write to a read-only page must fault: ${b.out}${b.err}`);
  }
});

test('records forged in the stub\'s output buffer reach no file, only the captured stdout they claim to', { skip: !onUserStubPath() && 'needs the kvm_pvm system-call path (user-mode stub); this KVM takes the cpl0-entry path' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-outbuf-'));
  try {
    const target = join(dir, 'target');
    writeFileSync(target, '');
    const r = runIt('hostile-outbuf', [target], { rw: [dir] });
    assert.equal(r.exitStatus, 0, r.out + r.err);
    assert.equal(readFileSync(target, 'utf8'), '', 'a forged record was written to the file');
    assert.doesNotMatch(r.out, /HELLO/);
    assert.match(r.out, /done/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- part 2: file confinement ----

interface Tree { dir: string; grant: string; ro: string; outside: string }
function makeTree(): Tree {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-hostile-'));
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'TOP-SECRET\n');
  writeFileSync(join(dir, 'secret.txt'), 'TOP-SECRET\n');
  const grant = join(dir, 'grant');
  mkdirSync(join(grant, 'sub'), { recursive: true });
  writeFileSync(join(grant, 'file.txt'), 'granted\n');
  symlinkSync(join(outside, 'secret.txt'), join(grant, 'link-abs'));
  symlinkSync('../secret.txt', join(grant, 'link-rel'));
  symlinkSync('../../outside', join(grant, 'sub', 'link-dir'));
  const ro = join(dir, 'ro');
  mkdirSync(join(ro, 'dir'), { recursive: true });
  writeFileSync(join(ro, 'file.txt'), 'read-only\n');
  return { dir, grant, ro, outside };
}


test('no path leads outside a grant: .., absolute and relative symlinks planted on the host', () => {
  const t = makeTree();
  try {
    const opts: RunOptions = { rw: [t.grant] };
    const attempts = [
      join(t.grant, '..', 'secret.txt'),
      `${t.grant}/sub/../../secret.txt`,
      join(t.grant, 'link-abs'),
      join(t.grant, 'link-rel'),
      join(t.grant, 'sub', 'link-dir', 'secret.txt'),
      join(t.outside, 'secret.txt'),
      '/etc/passwd',
    ];
    for (const path of attempts) {
      const r = runIt('hostile-files', ['read', path], opts);
      assert.doesNotMatch(r.out, /TOP-SECRET|root:/, `read ${path} leaked: ${r.out}`);
      assert.match(r.out, /errno=/, `read ${path}: ${r.out}`);
    }
    // The granted file itself is readable, so the failures above are not a broken harness.
    assert.match(runIt('hostile-files', ['read', join(t.grant, 'file.txt')], opts).out, /ok content=granted/);
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test('symlinks the guest creates in a --rw grant cannot lead outside it, for reading or writing', () => {
  const t = makeTree();
  try {
    const opts: RunOptions = { rw: [t.grant] };
    for (const target of [join(t.outside, 'secret.txt'), '../secret.txt', '../../../../../../etc/passwd', '/proc/self/root/etc/passwd']) {
      const link = join(t.grant, 'evil');
      rmSync(link, { force: true });
      assert.match(runIt('hostile-files', ['symlink', target, link], opts).out, /^ok/);
      const r = runIt('hostile-files', ['read', link], opts);
      assert.doesNotMatch(r.out, /TOP-SECRET|root:/, `through ${target}: ${r.out}`);
      runIt('hostile-files', ['creat', link], opts);
      assert.equal(readFileSync(join(t.outside, 'secret.txt'), 'utf8'), 'TOP-SECRET\n');
      assert.equal(readFileSync(join(t.dir, 'secret.txt'), 'utf8'), 'TOP-SECRET\n');
    }
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test('a read-only grant holds against every kind of write', () => {
  const t = makeTree();
  try {
    const opts: RunOptions = { ro: [t.ro], rw: [t.grant] };
    const before = treeSnapshot(t.dir);
    const f = join(t.ro, 'file.txt');
    const d = join(t.ro, 'dir');
    const ops: string[][] = [
      ['write', f], ['append', f], ['creat', f], ['creat', join(t.ro, 'new.txt')], ['trunc', f], ['unlink', f],
      ['rmdir', d], ['mkdir', join(t.ro, 'newdir')], ['rename', f, join(t.ro, 'moved.txt')],
      ['rename', f, join(t.grant, 'stolen.txt')], ['chmod', f], ['utimes', f],
      ['symlink', '/etc/passwd', join(t.ro, 'lnk')], ['link', f, join(t.ro, 'hard')],
      ['creat', '/new-at-root'], ['mkdir', '/tmp-made-by-guest'],
    ];
    for (const op of ops) {
      const r = runIt('hostile-files', op, opts);
      assert.match(r.out, /errno=(EROFS|EACCES|EXDEV|EPERM)/, `${op.join(' ')} -> ${r.out}`);
    }
    assert.equal(treeSnapshot(t.dir), before, 'the host tree changed');
    assert.equal(existsSync('/new-at-root'), false);
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test('lookups stay inside the grant while the host swaps a directory for a symlink to outside', async () => {
  const t = makeTree();
  try {
    const d = join(t.grant, 'd');
    mkdirSync(d);
    writeFileSync(join(d, 'secret.txt'), 'inside\n');
    // Another process flips grant/d between the real directory and a symlink to the outside
    // directory (which holds a secret.txt too) as fast as it can.
    // Its own process group, so that killing it also stops the mv/ln/rm it is running.
    const swapper = spawn('sh', ['-c', `cd '${t.grant}' && while :; do mv d d.real && ln -s '${t.outside}' d && rm d && mv d.real d; done`], { stdio: 'ignore', detached: true });
    try {
      await new Promise((r) => setTimeout(r, 50));
      const r = runIt('hostile-files', ['loop', '3000', join(d, 'secret.txt')], { rw: [t.grant] });
      assert.doesNotMatch(r.out, /TOP-SECRET/, r.out);
      assert.match(r.out, /first=inside/);
    } finally {
      try { process.kill(-swapper.pid!, 'SIGKILL'); } catch { /* already gone */ }
      await new Promise((r) => swapper.once('exit', r));
    }
    // Make sure the race really happened: the swapper ran.
    assert.ok(existsSync(d) || existsSync(d + '.real'));
  } finally {
    rmSync(t.dir, { recursive: true, force: true, maxRetries: 5 });
  }
});

// ---- the guest-kernel-level fuzzer ----

class CountingKernel extends Kernel {
  hypercalls = 0;
  override hypercall(nr: number, vcpu: Vcpu) {
    this.hypercalls++;
    return super.hypercall(nr, vcpu);
  }
}

test('fuzzer: random hypercalls with random arguments from guest kernel mode never crash the host', () => {
  const image = readFileSync(prog('hello'));
  const canary = Buffer.alloc(1 << 20, 0xa5);
  const budgetMs = Number(process.env.KVMBOX_FUZZ_MS ?? 4000);
  const t0 = performance.now();
  let total = 0, vms = 0;
  const endings = new Map<string, number>();
  while (performance.now() - t0 < budgetMs) {
    const vfs = new Vfs([]);
    const machine = acquireMachine({ memoryBytes: 32 << 20, timer: true });
    const sink = { write() {} };
    const p = new CountingKernel(machine, {
      vfs, argv: ['fuzz'], envp: [], exePath: '/fuzz', cwd: '/', stdin: null, stdout: sink, stderr: sink,
      timeoutMs: 200, maxOutputBytes: 1 << 20,
    });
    p.exec(image);
    machine.startKernelFunction(machine.kernel.fuzzEntry, BigInt(vms * 7919 + 1));
    const reason = p.run();
    p.close();
    releaseMachine(machine, false);
    vfs.close();
    total += p.hypercalls;
    vms++;
    const key = reason.kind === 'vm-error' ? reason.message.replace(/0x[0-9a-f]+|\d+/g, 'N').slice(0, 60) : reason.kind;
    endings.set(key, (endings.get(key) ?? 0) + 1);
    assert.ok(!/internal error/.test(reason.kind === 'vm-error' ? reason.message : ''), `host error: ${JSON.stringify(reason)}`);
  }
  assert.ok(canary.every((b) => b === 0xa5));
  console.log(`fuzzer: ${total} hypercalls in ${vms} VMs over ${budgetMs} ms; endings: ${JSON.stringify(Object.fromEntries(endings))}`);
  assert.ok(total > vms, 'the fuzzer issued hypercalls');
});

test('a host socket in a grant is never reached: connect gives ECONNREFUSED and the host server sees no connection', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-hostsock-'));
  const path = join(dir, 'host.sock');
  let connections = 0;
  const server = createServer(() => { connections++; });
  await new Promise<void>((ok) => server.listen(path, ok));
  try {
    const r = runIt('unixsock', ['connect', path], { rw: [dir] });
    assert.equal(r.out, 'connect: errno 111\n', r.err); // ECONNREFUSED: no socket of the sandbox is bound there
    await new Promise((ok) => setTimeout(ok, 200));
    assert.equal(connections, 0);
  } finally {
    await new Promise((ok) => server.close(ok));
    rmSync(dir, { recursive: true, force: true });
  }
});

// AF_INET sockets reach only the sandbox's own loopback: a host server on 127.0.0.1 is not
// there (ECONNREFUSED, no connection arrives), its port is free inside, and any other address is
// unreachable. A UDP datagram to the host's port never arrives either.
test('a guest TCP or UDP socket never reaches a host socket on 127.0.0.1, nor any other address', { skip: existsSync('/usr/bin/python3') ? false : 'python3 is missing' }, async () => {
  let connections = 0;
  const server = createServer(() => { connections++; });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  const { createSocket } = await import('node:dgram');
  const udp = createSocket('udp4');
  let datagrams = 0;
  udp.on('message', () => { datagrams++; });
  await new Promise<void>((ok) => udp.bind(0, '127.0.0.1', ok));
  const script = [
    'import socket, sys',
    'port, uport = int(sys.argv[1]), int(sys.argv[2])',
    'for host in ("127.0.0.1", "localhost", "10.0.2.2", "8.8.8.8"):',
    '    try: socket.create_connection((host, port), timeout=5); print(host, "connected")',
    '    except OSError as e: print(host, e.errno)',
    's = socket.socket(); s.bind(("127.0.0.1", port)); s.listen(); print("bound the host\'s port inside")',
    'u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); print("udp sent", u.sendto(b"x" * 10, ("127.0.0.1", uport)))',
    'try: u.sendto(b"x", ("8.8.8.8", 53))',
    'except OSError as e: print("udp elsewhere", e.errno)',
  ].join('\n');
  try {
    const r = run('/usr/bin/python3', ['-c', script, String(port), String((udp.address()).port)], { system: true });
    assert.equal(r.stdout.toString(), '127.0.0.1 111\nlocalhost 111\n10.0.2.2 101\n8.8.8.8 101\nbound the host\'s port inside\nudp sent 10\nudp elsewhere 101\n', r.stderr.toString());
    await new Promise((ok) => setTimeout(ok, 200));
    assert.equal(connections, 0);
    assert.equal(datagrams, 0);
  } finally {
    await new Promise((ok) => server.close(ok));
    udp.close();
  }
});

// Nothing can receive a file sent into a socket's own queue, once the socket is closed: Linux's
// unix_gc finds such cycles. kvmbox closes what is still in flight when the sandbox ends; before,
// each such file's host descriptor stayed open in the host process for good.
test('descriptors left in flight in a socket cycle are closed on the host when the sandbox ends', () => {
  const hostFds = () => readdirSync('/proc/self/fd').length;
  // A first run leaves what stays for the next (a pooled VM, the program's image): then count.
  run(prog('hostile-inflight'), ['cycle', '1', '/etc/os-release'], { ro: ['/etc/os-release'] });
  const before = hostFds();
  const r = run(prog('hostile-inflight'), ['cycle', '100', '/etc/os-release'], { ro: ['/etc/os-release'] });
  assert.equal(r.stdout.toString(), 'cycle: 100 files left in flight\n', r.stderr.toString());
  assert.equal(hostFds(), before);
  // And in all a sandbox's sockets together at most its descriptor limit wait (8 pairs, 200 each).
  const f = run(prog('hostile-inflight', 'musl'), ['flood', '/etc/os-release'], { ro: ['/etc/os-release'] });
  assert.equal(f.stdout.toString(), 'flood: 1024 descriptors in flight, then ETOOMANYREFS\n', f.stderr.toString());
});

// Each of these grew a host Map or list without bound before: /dev/shm names (links), inotify
// watches on kvmbox's own directories, epoll interest lists. (Natively, as root, none stops.)
test('shm links, made-up inotify watches and epoll entries stop at the sandbox\'s limits', { skip: onUserStubPath() && 'no /dev/shm on kvm_pvm' }, () => {
  const r = run(prog('hostile-bounds'), []);
  assert.equal(r.stdout.toString(), 'links: 1023, then ENOSPC\ninotify: the same watch again: yes\nepoll: 65536 entries, then ENOSPC\n', r.stderr.toString());
  assert.equal(r.exitStatus, 0);
});

test('descriptors sent over a socket and never received are bounded: ETOOMANYREFS past 1024 at one end', () => {
  const r = runIt('unixsock', ['rights-bomb']);
  assert.equal(r.exitStatus, 0, r.err);
  // Four messages of 253 (1012) wait; a fifth would pass 1024. (Linux bounds them by RLIMIT_NOFILE per user.)
  assert.equal(r.out, 'messages=4 errno=109\n');
});
