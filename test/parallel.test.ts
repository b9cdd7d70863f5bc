// Threads on parallel vCPUs (src/linux/kernel.ts, the run loop of several vCPUs): with vcpus > 1 a
// process's threads each get a vCPU, on native threads of the helper library. These tests need
// two threads really at the same time (a rendezvous by spinning, with no system call and no guest
// timer, never ends on one vCPU), check that one thread's munmap and mprotect reach another
// thread's vCPU (TLB shootdown), and run the pthreads program and processes with vcpus > 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { closeIdleWorkers, run as runAsync, runSync as run, type RunResult } from '../src/index.js';
import { PROGRAMS_DIR, VARIANTS, runCli } from './helpers.js';
import { detectSyscallPath } from '../src/machine/machine.js';

const path = detectSyscallPath();
const skip = path === 'cpl0-entry' ? false : 'several vCPUs need the cpl0-entry path (hardware KVM); kvm_pvm runs threads on one';
const show = (r: RunResult) => `status ${r.exitStatus}; stderr: ${r.stderr.toString()}`;

test('two threads that spin until they see each other meet, on two different vCPUs', { skip }, () => {
  for (const v of VARIANTS) {
    // No time limit: no guest timer, so on one vCPU the first spinning thread would never let
    // the other run. The async engine's tests cover the timer; here only parallelism helps.
    // The run loop also time-slices threads, so now and then a meeting ends on one vCPU after a
    // preemption: the program meets up to 5 times until the two are on different vCPUs.
    const r = run(`${PROGRAMS_DIR}/parallel.${v}`, ['rendezvous', '5'], { vcpus: 2 });
    assert.equal(r.stdout.toString(), 'rendezvous ok\n', `${v}: ${show(r)}`);
    const m = /cpus (\d+) (\d+)/.exec(r.stderr.toString());
    assert.ok(m, `${v}: ${show(r)}`);
    assert.notEqual(m[1], m[2], `${v}: both threads reported the same vCPU: ${r.stderr.toString()}`);
    assert.equal(r.exitStatus, 0);
  }
});

test('on one vCPU with no guest timer, the run loop preempts spinning threads so that they meet', { skip }, () => {
  const r = run(`${PROGRAMS_DIR}/parallel.musl`, ['rendezvous'], { vcpus: 1 });
  assert.equal(r.stdout.toString(), 'rendezvous ok\n', show(r));
  assert.match(r.stderr.toString(), /cpus 0 0/);
  assert.equal(r.exitStatus, 0);
});

test("one thread's munmap and mprotect reach the other thread's vCPU at once (as natively)", { skip }, () => {
  for (const v of VARIANTS) {
    const native = spawnSync(`${PROGRAMS_DIR}/parallel.${v}`, ['shootdown'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(native.stdout, 'read after munmap faulted: 1\nwrite after mprotect faulted: 1\n');
    const r = run(`${PROGRAMS_DIR}/parallel.${v}`, ['shootdown'], { vcpus: 2, timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout, `${v}: ${show(r)}`);
    assert.equal(r.exitStatus, 0);
  }
});

test('pthreads on 2 and 3 vCPUs print what they print natively', { skip }, () => {
  for (const v of VARIANTS) {
    const native = spawnSync(`${PROGRAMS_DIR}/threads.${v}`, [], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    for (const vcpus of [2, 3]) {
      // With and without the guest timer (a time limit turns it on).
      const r = run(`${PROGRAMS_DIR}/threads.${v}`, [], { vcpus, ...(vcpus === 3 ? { timeoutSeconds: 120 } : {}) });
      assert.equal(r.stdout.toString(), native.stdout, `${v} on ${vcpus} vCPUs: ${show(r)}`);
      assert.equal(r.exitStatus, 0);
    }
  }
});

test('a CPU-bound sum split over 4 threads on 2 vCPUs is right', { skip }, () => {
  const native = spawnSync(`${PROGRAMS_DIR}/parallel.glibc`, ['sum', '4'], { encoding: 'utf8' });
  const r = run(`${PROGRAMS_DIR}/parallel.glibc`, ['sum', '4'], { vcpus: 2, timeoutSeconds: 300 });
  assert.equal(r.stdout.toString(), native.stdout, show(r));
});

test('sched_getaffinity and glibc\'s get_nprocs show as many CPUs as vCPUs; --vcpus is checked', { skip }, () => {
  const r = runCli(['run', '--vcpus', '3', '--', `${PROGRAMS_DIR}/threads.glibc`, 'nproc']);
  // glibc's get_nprocs and get_nprocs_conf read /sys/devices/system/cpu/online and possible.
  assert.equal(r.out, '3 3 3\n', r.err);
  const bad = runCli(['run', '--vcpus', '99', '--', `${PROGRAMS_DIR}/threads.glibc`]);
  assert.notEqual(bad.status, 0);
  assert.match(bad.err, /vcpus must be a whole number from 1 to 16/);
});

// lscpu opens /sys/devices/system/cpu and reads the masks and each CPU's topology relative to
// it: it failed ("failed to determine number of CPUs") while only the three masks existed.
test('/sys/devices/system/cpu lists the vCPUs with a topology, and lscpu counts them', {
  skip: skip || (!existsSync('/usr/bin/lscpu') && 'no /usr/bin/lscpu here'),
}, () => {
  const r = run('/bin/sh', ['-c', 'cd /sys/devices/system/cpu && ls && cat online cpu2/topology/core_cpus_list cpu2/topology/package_cpus && ls cpu3 cpu0/topology/constructor 2>&1; lscpu'],
    { vcpus: 3, system: true, timeoutSeconds: 120 });
  const out = r.stdout.toString();
  assert.equal(r.exitStatus, 0, show(r));
  assert.ok(out.startsWith('cpu0\ncpu1\ncpu2\nonline\npossible\npresent\n0-2\n2\n7\nls: cannot access \'cpu3\': No such file or directory\nls: cannot access \'cpu0/topology/constructor\': No such file or directory\n'), out);
  assert.match(out, /^CPU\(s\): +3$/m);
  assert.match(out, /^Thread\(s\) per core: +1$/m);
  assert.match(out, /^Core\(s\) per socket: +3$/m);
  assert.match(out, /^Socket\(s\): +1$/m);
});

test('fork and exec from a process whose threads run on several vCPUs', { skip }, () => {
  const native = spawnSync(`${PROGRAMS_DIR}/threads.glibc`, ['forkexec'], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stderr);
  const r = run(`${PROGRAMS_DIR}/threads.glibc`, ['forkexec'], { vcpus: 2, timeoutSeconds: 120 });
  assert.equal(r.stdout.toString(), native.stdout, show(r));
  assert.equal(r.exitStatus, 0);
});

test('the async API runs threads on parallel vCPUs in its worker, beside the event loop', { skip }, async () => {
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 5);
  try {
    const [a, b] = await Promise.all([
      runAsync(`${PROGRAMS_DIR}/parallel.glibc`, ['rendezvous', '5'], { vcpus: 2, timeoutSeconds: 120 }),
      runAsync(`${PROGRAMS_DIR}/threads.musl`, [], { vcpus: 2, timeoutSeconds: 120 }),
    ]);
    assert.equal(a.stdout.toString(), 'rendezvous ok\n', show(a));
    assert.match(a.stderr.toString(), /cpus (0 1|1 0)/);
    assert.equal(b.exitStatus, 0, show(b));
    assert.match(b.stdout.toString(), /counter=80000 \(want 80000\)/);
    assert.ok(ticks > 0, 'the event loop ran meanwhile');
  } finally {
    clearInterval(timer);
    await closeIdleWorkers();
  }
});
