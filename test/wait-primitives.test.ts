// Wait primitives: timerfd (src/linux/syscalls/timerfd.ts), poll and select that time out, and
// robust futex lists (src/linux/robust.ts). test/programs/timerfd.c checks timerfd's errors and
// settings, reads that wait, ABSTIME on three clocks, poll, select and a blocking epoll_wait woken
// by the timer, and poll/ppoll/select/pselect timeouts that must leave revents 0 and the sets
// empty; it does all the waiting twice, alone (the host sleeps) and with a second thread alive
// (the kernel parks the caller and must wake it at the expiry). test/programs/robust.c ends a
// thread holding a robust mutex (EOWNERDEAD for the next locker, waiting or not) and walks
// hand-made lists: a loop and a bad pointer. The sandbox must print what the native run prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runSync as run } from '../src/index.js';
import { PROGRAMS_DIR, VARIANTS } from './helpers.js';

for (const v of VARIANTS) {
  test(`${v}: timerfd, and poll/select timeouts, as natively`, () => {
    const path = `${PROGRAMS_DIR}/timerfd.${v}`;
    const native = spawnSync(path, [], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    assert.match(native.stdout, /^epoll_wait 2: 1 events 0x1 data 42, read at least 1: 1$/m);
    assert.match(native.stdout, /^poll timeout: 0 revents 0 0$/m);
    const r = run(path, [], { timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
    assert.equal(r.exitStatus, 0);
  });
}

for (const v of VARIANTS) {
  test(`${v}: a robust mutex whose holder ends gives EOWNERDEAD, as natively`, () => {
    const path = `${PROGRAMS_DIR}/robust.${v}`;
    const native = spawnSync(path, [], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    assert.match(native.stdout, /^lock while the holder ends: EOWNERDEAD$/m);
    const r = run(path, [], { timeoutSeconds: 120 });
    assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
    assert.equal(r.exitStatus, 0);
  });
}
