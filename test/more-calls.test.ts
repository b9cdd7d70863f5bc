// System calls programs make less often (test/programs/morecalls.c): preadv2/pwritev2, readahead,
// sync_file_range, splice, tee, vmsplice, mincore, membarrier, sendmmsg/recvmmsg and
// process_vm_readv/writev give the native results and errors, in a writable grant; the calls
// only a privileged process may make give what an unprivileged caller gets. All of them were
// ENOSYS before.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run } from '../src/index.js';
import { PROGRAMS_DIR, VARIANTS } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'kvmbox-morecalls-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** What the guest's unprivileged user gets from the privileged calls, and from port I/O. */
const UNPRIVILEGED = [
  'priv: chroot: EPERM', 'priv: mount: EPERM', 'priv: umount2: EPERM', 'priv: sethostname too long: EPERM',
  'priv: reboot with a wrong magic: EPERM', 'priv: swapoff: EPERM', 'priv: delete_module: EPERM', 'priv: syslog size: EPERM',
  'priv: perf_event_open: EACCES', 'priv: bpf: EPERM', 'priv: setns: EPERM', 'priv: open_by_handle_at: EPERM',
  'priv: userfaultfd: EPERM', 'priv: fanotify_init: EPERM',
  'priv: iopl 3: EPERM', 'priv: ioperm on: EPERM', 'priv: iopl 0: 0', 'priv: iopl 4: EINVAL', 'priv: ioperm off: 0',
  'priv: ioperm of nothing: EINVAL', 'priv: ioperm past the ports: EINVAL',
];

for (const v of VARIANTS) {
  test(`${v}: preadv2, splice, tee, vmsplice, mincore, membarrier, sendmmsg, process_vm_readv... as natively`, () => {
    const path = `${PROGRAMS_DIR}/morecalls.${v}`;
    const nativeDir = join(work, `native-${v}`), guestDir = join(work, `guest-${v}`);
    mkdirSync(nativeDir);
    mkdirSync(guestDir);
    const native = spawnSync(path, [nativeDir], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    const r = run(path, [guestDir], { rw: [guestDir], timeoutSeconds: 120, vcpus: 2 });
    const out = r.stdout.toString();
    const portable = (text: string) => text.split('\n').filter((l) => !l.startsWith('priv: ')).join('\n');
    assert.equal(portable(out), portable(native.stdout), `${v}: ${r.stderr.toString()}`);
    assert.deepEqual(out.split('\n').filter((l) => l.startsWith('priv: ')), UNPRIVILEGED);
    assert.equal(r.exitStatus, 0);
  });
}

// test/programs/streams.c: what the third survey found. unzip lost the end of each 64 KiB write
// to a pipe that took only part of it (a blocking write must wait until all is in); xargs's
// 128 KiB of arguments overran the stack mapped for them (SIGKILL); MREMAP_DONTUNMAP was EINVAL;
// a non-blocking TCP connect over loopback returned 0; linking an O_TMPFILE through
// /proc/self/fd/N was EXDEV; openat2 was ENOSYS. All as natively, except the count of an
// interrupted write, which depends on the pipe's size (64 KiB natively, grown to 1 MiB here).
for (const v of VARIANTS) {
  test(`${v}: whole blocking writes to pipes and sockets, big argv, MREMAP_DONTUNMAP, EINPROGRESS, O_TMPFILE links, openat2, as natively`, () => {
    const path = `${PROGRAMS_DIR}/streams.${v}`;
    const nativeDir = join(work, `streams-native-${v}`), guestDir = join(work, `streams-guest-${v}`);
    mkdirSync(nativeDir);
    mkdirSync(guestDir);
    const native = spawnSync(path, [nativeDir], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(native.status, 0, native.stderr);
    const r = run(path, [guestDir], { rw: [guestDir], timeoutSeconds: 180 });
    assert.equal(r.stdout.toString(), native.stdout, `${v}: ${r.stderr.toString()}`);
    assert.match(r.stdout.toString(), /pipe, write: one call wrote 4194304 of 4194304\n/);
    assert.match(r.stdout.toString(), /the new program has 20002 arguments\n/);
    assert.equal(r.exitStatus, 0);
  });
}

// python3's os.splice, os.preadv and os.pwritev with flags, as a program reaches them.
const PYTHON = `
import os, sys
d = sys.argv[1]
fd = os.open(os.path.join(d, 'f'), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, b'0123456789')
r, w = os.pipe()
print('splice to a pipe', os.splice(fd, w, 4, offset_src=3), os.read(r, 10))
os.write(w, b'abc')
print('splice to a file', os.splice(r, fd, 10, offset_dst=12))
print('pwritev RWF_APPEND', os.pwritev(fd, [b'X', b'Y'], 0, os.RWF_APPEND), os.lseek(fd, 0, os.SEEK_CUR))
print('pwritev RWF_DSYNC', os.pwritev(fd, [b'Z'], 1, os.RWF_DSYNC))
a, b = bytearray(4), bytearray(20)
print('preadv RWF_HIPRI', os.preadv(fd, [a, b], 0, os.RWF_HIPRI), bytes(a), bytes(b))
try:
    os.preadv(fd, [a], 0, 1 << 20)
except OSError as e:
    print('preadv unknown flag', e.errno == 95)
`;

test('python3: os.splice, os.preadv and os.pwritev with flags, as natively', () => {
  const nativeDir = join(work, 'py-native'), guestDir = join(work, 'py-guest');
  mkdirSync(nativeDir);
  mkdirSync(guestDir);
  const native = spawnSync('python3', ['-c', PYTHON, nativeDir], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stderr);
  const r = run('/usr/bin/python3', ['-c', PYTHON, guestDir], { system: true, rw: [guestDir], timeoutSeconds: 120 });
  assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
  assert.equal(r.exitStatus, 0);
});

// test/programs/mqueue.c: POSIX message queues (priorities, limits, O_NONBLOCK, timeouts, the
// status line, poll, mq_notify with SI_MESGQ, a receiver in a child, unlink while open). They
// were ENOSYS. Lines that depend on privilege and on the host user's other queues ("priv:") are
// checked against what the sandbox's unprivileged user with a namespace of its own gets.
test('POSIX message queues: mq_open, mq_send, mq_receive, mq_notify... as natively', () => {
  for (const v of VARIANTS) {
    const path = `${PROGRAMS_DIR}/mqueue.${v}`;
    const native = spawnSync(path, [], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(native.status, 0, native.stderr);
    const r = run(path, [], { timeoutSeconds: 120 });
    const out = r.stdout.toString();
    const portable = (text: string) => text.split('\n').filter((l) => !l.startsWith('priv: ')).join('\n');
    assert.equal(portable(out), portable(native.stdout), `${v}: ${r.stderr.toString()}`);
    assert.deepEqual(out.split('\n').filter((l) => l.startsWith('priv: ')),
      ['priv: maxmsg 11: EINVAL', 'priv: reopen for writing without the right: EACCES', 'priv: default queues: 9 then EMFILE']);
    assert.equal(r.exitStatus, 0);
  }
});
