// The kernel's objects on real runs (src/linux/kernel.ts, process.ts, task.ts): the ids a program
// sees (getpid, gettid, getppid, through libc and raw system calls), state kept per process
// (signal actions, the name set with prctl), per thread (the signal mask), the ids the host
// publishes for the user-mode stub, and fresh state for every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run } from '../src/index.js';
import { Kernel } from '../src/linux/kernel.js';
import { Vfs } from '../src/fs/vfs.js';
import { acquireMachine, releaseMachine } from '../src/machine/pool.js';
import { GUEST_PID, GUEST_PPID, PHYS_SHARED, SH_PID, SH_PPID, SH_TID } from '../src/abi/abi.generated.js';
import { PROGRAMS_DIR, VARIANTS } from './helpers.js';

const ident = (v: string): string => `${PROGRAMS_DIR}/ident.${v}`;
const SIGUSR1 = 10;
const SIGUSR2 = 12;

function fields(out: string): Record<string, string> {
  const f: Record<string, string> = {};
  for (const m of out.matchAll(/([a-z0-9_-]+(?: [a-z]+)?)=(\S+)/g)) f[m[1]!] = m[2]!;
  return f;
}

for (const v of VARIANTS) {
  test(`${v}: pid, tid and ppid as the program sees them; name and signal action per process`, () => {
    const r = run(ident(v), ['renamed']);
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    const f = fields(r.stdout.toString());
    assert.equal(f.pid, String(GUEST_PID));
    assert.equal(f.ppid, String(GUEST_PPID));
    assert.equal(f['raw pid'], String(GUEST_PID));
    assert.equal(f.tid, String(GUEST_PID), 'the main thread has tid = pid');
    assert.equal(f.set_tid_address, String(GUEST_PID));
    assert.equal(f.pgrp, String(GUEST_PID));
    assert.equal(f.sid, String(GUEST_PID));
    assert.equal(f.comm0, `ident.${v}`, 'the name is the program file\'s base name until set');
    assert.equal(f.comm1, 'renamed');
    assert.equal(f['usr1-before'], 'default');
    assert.equal(f['usr1-after'], 'handler');
    assert.equal(f['usr2-blocked'], '1', 'the thread\'s signal mask keeps what it blocked');

    // A second run in the same host process (a reused machine) starts from fresh state.
    const again = fields(run(ident(v)).stdout.toString());
    assert.equal(again.comm0, `ident.${v}`);
    assert.equal(again['usr1-before'], 'default');
    assert.equal(again.pid, String(GUEST_PID));
  });
}

test('the kernel: first process and task, state on the objects, ids in the shared page, fresh per sandbox', () => {
  const image = readFileSync(ident('glibc'));
  const names: string[] = [];
  for (const name of ['first', 'second']) {
    const vfs = new Vfs([]);
    const machine = acquireMachine({ memoryBytes: 64 << 20 });
    const out: Buffer[] = [];
    const kernel = new Kernel(machine, {
      vfs, argv: ['/bin/ident', name], envp: [], exePath: '/bin/ident', cwd: '/', stdin: null,
      stdout: { write: (b) => { out.push(Buffer.from(b)); } }, stderr: { write: () => {} },
    });
    try {
      const p = kernel.exec(image);
      const t = p.leader;
      assert.equal(p.pid, GUEST_PID);
      assert.equal(p.ppid, GUEST_PPID);
      assert.equal(p.parent, null);
      assert.equal(t.tid, p.pid);
      assert.equal(t.process, p);
      assert.deepEqual(p.tasks, [t]);
      assert.equal(kernel.processes.get(GUEST_PID), p);
      assert.equal(p.comm.toString().replace(/\0+$/, ''), 'ident', 'exec names the process after the program');
      assert.equal(p.sigactions.size, 0);
      // The host publishes the ids where the stub reads them (kernel/stub.S ret_pid/ret_tid/ret_ppid).
      assert.equal(machine.memory.u32(PHYS_SHARED + SH_PID), GUEST_PID);
      assert.equal(machine.memory.u32(PHYS_SHARED + SH_TID), GUEST_PID);
      assert.equal(machine.memory.u32(PHYS_SHARED + SH_PPID), GUEST_PPID);

      const reason = kernel.run();
      assert.deepEqual(reason, { kind: 'exited', status: 0 });
      assert.match(Buffer.concat(out).toString(), new RegExp(`comm1=${name}\n`));
      assert.equal(p.comm.toString().replace(/\0+$/, ''), name);
      assert.ok(p.sigactions.has(SIGUSR1), 'the signal action is kept on the process');
      assert.equal(t.sigmask & (1n << BigInt(SIGUSR2 - 1)), 1n << BigInt(SIGUSR2 - 1));
      assert.ok(t.clearChildTid !== 0n, 'set_tid_address is kept on the task');
      assert.ok(p.startNs() > 0n);
      assert.equal(kernel.allocPid(), GUEST_PID + 1, 'pids count up from the first');
      names.push(p.comm.toString());
    } finally {
      kernel.close();
      releaseMachine(machine, true);
      vfs.close();
    }
  }
  assert.equal(names.length, 2);
});

// test/programs/schedlock.c: sched_get_priority_max/min, sched_getscheduler/setscheduler/
// getparam/setparam (the policy kept and inherited by fork), sched_getattr/setattr, personality,
// ioprio_get and ioprio_set (the same, and ionice's ENOSYS before), prctl's capability sets,
// get_mempolicy and set_mempolicy (one node), unshare (ps's and unshare's ENOSYS before),
// sched_setaffinity, mlock, mlock2,
// munlock, mlockall, munlockall, capget and capset (no capabilities), and utime, utimes and
// futimesat on a file in a --rw grant. The lines that depend on privilege (the host runs tests
// as root) are checked against what Linux gives an unprivileged user, as kvmbox's guest user is. Before: each was ENOSYS (python's
// os.sched_get_priority_max failed, gpg's mlock, node's capget).
test('scheduling policies, memory locks, utime and utimes as natively (as an unprivileged user)', () => {
  for (const v of VARIANTS) {
    const path = `${PROGRAMS_DIR}/schedlock.${v}`;
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'kvmbox-schedlock-')));
    try {
      const native = spawnSync(path, [dir], { encoding: 'utf8' });
      assert.equal(native.status, 0, native.stderr);
      const r = run(path, [dir], { rw: [dir] });
      const out = r.stdout.toString();
      assert.equal(r.exitStatus, 0, r.stderr.toString());
      // "priv:" lines depend on privilege, "host:" lines on the host's defaults (systemd may change them).
      const portable = (text: string) => text.split('\n').filter((l) => !l.startsWith('priv:') && !l.startsWith('host:')).join('\n');
      assert.equal(portable(out), portable(native.stdout), v);
      assert.match(out, /^host: RLIMIT_CORE 0 -1\nhost: RLIMIT_NICE 0 0\nhost: RLIMIT_RTPRIO 0 0$/m);
      // A directory made read-only keeps its entries for the guest's user, even with the host's root behind it.
      assert.match(out, /^priv: unlink in a 0555 directory: EACCES\npriv: create in it: EACCES\npriv: mkdir in it: EACCES\n/m);
      assert.match(out, /^priv: rename out of it: EACCES\npriv: rmdir of it while it holds f: (EACCES|ENOTEMPTY)\nafter chmod 755: unlink 0, rmdir 0$/m);
      if (v === 'musl') continue; // musl's sched_* calls are ENOSYS in libc itself
      assert.match(out, /^priority range: FIFO 1-99 RR 1-99 OTHER 0-0 BATCH 0-0 IDLE 0-0$/m);
      assert.match(out, /^child's scheduler 3$/m);
      assert.match(out, /^priv: setscheduler FIFO 10: EPERM$/m);
      assert.match(out, /^priv: ioprio set real-time 0: EPERM$/m);
      assert.match(out, /^ioprio set idle: 0, now 0x6000$/m);
      assert.match(out, /^priv: RLIMIT_MEMLOCK 8388608$/m);
      assert.match(out, /^priv: mlock 16 MiB: ENOMEM$/m);
      assert.match(out, /^priv: mlock 4 MiB, twice: 0 0$/m);
      assert.match(out, /^priv: then 4 MiB more and a page: ENOMEM$/m);
      assert.match(out, /^priv: after munmap, mlock 8 MiB: 0$/m);
      assert.match(out, /^priv: capget: 0, sets 0 0 0 0 0 0$/m);
      assert.match(out, /^priv: capbset drop 39: EPERM$/m);
      assert.match(out, /^priv: unshare user namespace: EPERM$/m);
      assert.match(out, /^priv: capbset read 0 and 40: 1 1, 41: EINVAL$/m);
      assert.match(out, /^utimes: 0 -> atime 1200000000.250000 mtime 1300000000.500000$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
