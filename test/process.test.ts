// The kernel's objects on real runs (src/linux/kernel.ts, process.ts, task.ts): the ids a program
// sees (getpid, gettid, getppid, through libc and raw system calls), state kept per process
// (signal actions, the name set with prctl), per thread (the signal mask), the ids the host
// publishes for the user-mode stub, and fresh state for every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { run } from '../src/index.js';
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
