// The vDSO of the cpl0-entry path (kernel/vdso.c, Machine.publishClock): programs get
// AT_SYSINFO_EHDR, glibc and musl read the clocks through it without an exit, its clocks agree
// with the host's (the system calls'), and CLOCK_MONOTONIC never goes back, within a thread or
// between two threads on two vCPUs. python3 started 236 clock_gettime exits before; none now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runSync as run } from '../src/index.js';
import { onUserStubPath, PROGRAMS_DIR, VARIANTS } from './helpers.js';

const skip = onUserStubPath() ? 'the vDSO is offered on the cpl0-entry path only (the kvm_pvm stub answers the clocks itself)' : false;

for (const v of VARIANTS) {
  test(`${v}: clocks through the vDSO agree with the host's, stay monotonic on two vCPUs, and make no exit`, { skip }, () => {
    const r = run(`${PROGRAMS_DIR}/vdso.${v}`, [], { vcpus: 2, timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), 'vdso: yes\nagree: monotonic yes, realtime yes, gettimeofday yes, time yes\nmonotonic: ok\n',
      r.stderr.toString());
    assert.equal(r.exitStatus, 0);
    // 400,000 clock reads; start-up, two threads and the checks make well under 200 calls.
    assert.ok(r.syscalls < 200, `${r.syscalls} system calls reached the host`);
  });
}

// The host re-anchors the clocks about once a second (at an exit): each anchor corrects the TSC's
// period as measured against the host's clock and slews away any lead, without going back.
test('over 3 s of re-anchoring, on two vCPUs, the vDSO\'s clocks stay monotonic and agree with the host\'s', { skip }, () => {
  const r = run(`${PROGRAMS_DIR}/vdso.glibc`, ['long'], { vcpus: 2, timeoutSeconds: 120 });
  assert.equal(r.stdout.toString(), 'monotonic: ok\nagree after re-anchoring: yes\n', r.stderr.toString());
});

test('/proc/self/maps names the vDSO [vdso] and [vvar]; calls read it but never write it; ldd lists linux-vdso.so.1', { skip }, () => {
  for (const v of VARIANTS) {
    const r = run(`${PROGRAMS_DIR}/vdso.${v}`, ['maps']);
    assert.equal(r.stdout.toString(), 'maps: [vdso] at AT_SYSINFO_EHDR yes, [vvar] yes\nwrite from the vDSO: 4 4 ELF; read into it: -1 Bad address\n', `${v}: ${r.stderr.toString()}`);
  }
  // ld.so lists the vDSO by its soname, which it writes (writev) from the vDSO's own pages.
  if (existsSync('/bin/true')) {
    const r = run('/bin/true', [], { system: true, env: ['LD_TRACE_LOADED_OBJECTS=1'], stdout: 'capture', stderr: 'capture' });
    assert.match(r.stdout.toString(), /^\tlinux-vdso\.so\.1 \(0x[0-9a-f]+\)\n\tlibc\.so\.6 => /, r.stderr.toString());
  }
});

test('python3 -c pass reads its clocks without an exit', { skip: skip || (existsSync('/usr/bin/python3') ? false : 'no python3') }, () => {
  const lines: string[] = [];
  const r = run('/usr/bin/python3', ['-c', 'import time; print(time.monotonic() > 0, abs(time.time() - time.clock_gettime(0)) < 1)'], {
    system: true, stdout: 'capture', stderr: 'capture', trace: (l) => lines.push(l),
  });
  assert.equal(r.stdout.toString(), 'True True\n', r.stderr.toString());
  assert.deepEqual(lines.filter((l) => /clock_gettime|gettimeofday|\btime\(/.test(l)), []);
});
