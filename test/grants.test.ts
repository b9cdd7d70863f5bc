// Grants nested in grants, and set-id bits (issue 12, items 2 and 3). test/programs/hostile-grants.c
// tries every call that can change a file through a symlink that leads from a --rw grant into a
// --ro grant nested in it; each errno must be what Linux gives on a read-only bind mount (the
// expectations below were taken from such a mount), and the read-only tree must be the same,
// byte for byte, afterwards. Files it makes in the --rw part must carry no set-id bit.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run } from '../src/index.js';
import { BUSYBOX, NO_BUSYBOX, PROGRAMS_DIR, treeSnapshot } from './helpers.js';

const prog = `${PROGRAMS_DIR}/hostile-grants.glibc`;


function results(stdout: Buffer): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.toString().split('\n')) {
    const [name, result] = line.split(' ');
    if (name && result) m.set(name, result);
  }
  return m;
}

const EROFS = 'errno=EROFS', EXDEV = 'errno=EXDEV', EBUSY = 'errno=EBUSY', ok = 'ok';

/** What Linux answers with D read-write and D/s, D/p/q, D/rofile.txt read-only bind mounts. */
const NESTED: Record<string, string> = {
  'symlink-rel': ok, 'symlink-abs': ok, 'symlink-self': ok, 'symlink-file': ok,
  truncate: EROFS, 'truncate-filelink': EROFS, 'truncate-abs': EROFS,
  'open-trunc': EROFS, 'open-rdwr': EROFS, 'open-append': EROFS, 'open-rdonly-trunc': EROFS, 'open-filelink': EROFS,
  creat: EROFS, 'creat-excl': EROFS, 'creat-existing': EROFS, 'creat-dir': EROFS, tmpfile: EROFS,
  'creat-on-rodir': 'errno=EISDIR', 'creat-on-rwdir': 'errno=EISDIR',
  'link-out': EXDEV, 'link-follow': EXDEV, 'link-in': EROFS, 'link-within': EROFS,
  'write-hard': 'errno=ENOENT', 'write-hard2': 'errno=ENOENT',
  'rename-out': EXDEV, 'rename-in': EXDEV, 'rename-within': EROFS, 'rename-mountpoint': EBUSY,
  // Linux moves the mount with its parent; a grant is a guest path, so kvmbox refuses instead.
  'rename-ancestor': EBUSY,
  unlink: EROFS, 'rmdir-nested-mountpoint': EBUSY, rmdir: EROFS, 'rmdir-mountpoint': EBUSY,
  mkdir: EROFS, 'symlink-into': EROFS, mknod: EROFS, mkfifo: EROFS,
  chmod: EROFS, 'chmod-filelink': EROFS, chown: EROFS, utimes: EROFS, 'utimensat-nofollow': EROFS,
  'truncate-deep': EROFS,
  'symlink-filegrant': ok, 'write-filegrant': EROFS, 'truncate-filegrant': EROFS, 'link-filegrant': EXDEV,
  'rename-filegrant': EBUSY, 'unlink-filegrant': EBUSY, 'chmod-filegrant': EROFS,
  'open-rdonly': ok, fchmod: EROFS, fchown: EROFS, futimens: EROFS, ftruncate: 'errno=EINVAL',
  fallocate: 'errno=EBADF', 'chmod-procfd': EROFS, copy_file_range: 'errno=EBADF',
  'open-dir': ok, 'openat-rdwr': EROFS, unlinkat: EROFS, mkdirat: EROFS, fchdir: ok, 'truncate-cwd': EROFS,
  'chdir-back': ok,
  'rw-append': ok, 'rw-creat-self': ok, 'rw-rename-self': ok, 'rw-link': ok,
  'creat-suid': ok, 'creat-sgid': ok, 'creat-umask0': ok, 'mkdir-setid': ok, 'mknod-setid': ok,
  'make-f1': ok, 'chmod-suid': ok, 'make-f2': ok, 'chmod-sgid-self': ok, 'make-f3': ok, 'fchmod-setid': ok,
  'make-f4': ok, 'chmod-sticky-file': ok, 'make-f5': ok, 'chmod-procfd-suid': ok,
  'mkdir-dir': ok, 'chmod-dir-sgid': ok, 'mkdir-sticky': ok, 'chmod-dir-sticky': ok,
};

/** Host modes (& 07777) of what the set-id part makes, umask 0: the asked mode minus S_ISUID,
 * S_ISGID, and S_ISVTX on files. */
const MODES: Record<string, number> = {
  'c-suid': 0o777, 'c-sgid': 0o755, 'c-0666': 0o666, 'd-setid': 0o1777, 'n-setid': 0o755,
  f1: 0o755, f2: 0o755, f3: 0o711, f4: 0o644, f5: 0o700, dd: 0o755, ds: 0o1777,
};

function compare(got: Map<string, string>, want: Record<string, string>): string[] {
  const bad: string[] = [];
  for (const [name, result] of Object.entries(want)) {
    if (got.get(name) !== result) bad.push(`${name}: got ${got.get(name) ?? '(nothing)'}, want ${result}`);
  }
  return bad;
}

test('a read-only grant nested in a read-write one holds against writes through symlinks; no set-id bit reaches the host', () => {
  const top = mkdtempSync(join(tmpdir(), 'kvmbox-grants-'));
  try {
    const d = join(top, 'D');
    mkdirSync(join(d, 's', 'dir'), { recursive: true });
    mkdirSync(join(d, 'p', 'q'), { recursive: true });
    writeFileSync(join(d, 'own.txt'), 'own\n');
    writeFileSync(join(d, 'rofile.txt'), 'one read-only file\n');
    writeFileSync(join(d, 's', 'file.txt'), 'read-only bytes\n');
    writeFileSync(join(d, 'p', 'q', 'file.txt'), 'deeper read-only bytes\n');
    const roFile = () => `${statSync(join(d, 'rofile.txt')).mode} ${readFileSync(join(d, 'rofile.txt'), 'hex')}`;
    const roBefore = [treeSnapshot(join(d, 's')), treeSnapshot(join(d, 'p')), roFile()];
    const r = run(prog, ['nested', d], { rw: [d], ro: [join(d, 's'), join(d, 'p', 'q'), join(d, 'rofile.txt')] });
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    const got = results(r.stdout);
    assert.match(r.stdout.toString(), /^done$/m, 'the program ran to its end');
    assert.deepEqual(compare(got, NESTED), []);
    assert.deepEqual([treeSnapshot(join(d, 's')), treeSnapshot(join(d, 'p')), roFile()], roBefore, 'the read-only trees changed');
    assert.equal(statSync(join(d, 's', 'file.txt')).nlink, 1);
    // The writes the rules allow went through.
    assert.equal(readFileSync(join(d, 'own.txt'), 'utf8'), 'own\npwned\n');
    assert.equal(statSync(join(d, 'own4.txt')).nlink, 2);
    const modes: string[] = [];
    for (const [name, mode] of Object.entries(MODES)) {
      const got = statSync(join(d, name)).mode & 0o7777;
      if (got !== mode) modes.push(`${name}: ${got.toString(8)}, want ${mode.toString(8)}`);
    }
    assert.deepEqual(modes, []);
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});

test('a read-write grant nested in a read-only one is writable through a symlink, and only it', () => {
  const top = mkdtempSync(join(tmpdir(), 'kvmbox-grants-'));
  try {
    const d = join(top, 'D');
    mkdirSync(join(d, 'w'), { recursive: true });
    writeFileSync(join(d, 'file.txt'), 'outer\n');
    writeFileSync(join(d, 'w', 'file.txt'), 'inner\n');
    symlinkSync('w', join(d, 'lw'));
    const r = run(prog, ['inner', d], { ro: [d], rw: [join(d, 'w')] });
    assert.equal(r.exitStatus, 0, r.stderr.toString());
    const want = { 'inner-creat': ok, 'inner-write': ok, 'inner-mkdir': ok, 'outer-creat': EROFS, 'outer-truncate': EROFS };
    assert.deepEqual(compare(results(r.stdout), want), []);
    assert.equal(readFileSync(join(d, 'file.txt'), 'utf8'), 'outer\n');
    assert.equal(readFileSync(join(d, 'w', 'file.txt'), 'utf8'), 'inner\npwned\n');
    assert.equal(readFileSync(join(d, 'w', 'new.txt'), 'utf8'), 'pwned\n');
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});

// --tmp / tmp: a private, empty, writable /tmp, gone after the run.
const tmpLeftovers = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('kvmbox-tmp-'));

test('tmp: an empty /tmp of its own, writable, removed with all it holds (even a chmod 0 directory) when the run ends', { skip: NO_BUSYBOX }, () => {
  const before = tmpLeftovers();
  const script = 'ls -A /tmp; echo kept > /tmp/f && cat /tmp/f && mkdir /tmp/d && echo x > /tmp/d/x && chmod 0 /tmp/d && ls -A /tmp';
  const r = run(BUSYBOX, ['sh', '-c', script], { ro: [PROGRAMS_DIR], tmp: true });
  assert.equal(r.stderr.toString(), '');
  assert.equal(r.stdout.toString(), 'kept\nd\nf\n');
  assert.equal(r.exitStatus, 0);
  assert.deepEqual(tmpLeftovers(), before, 'the host directory behind /tmp is gone');
  // The next sandbox starts with an empty one; without tmp there is none.
  const again = run(BUSYBOX, ['sh', '-c', 'ls -A /tmp; echo status $?'], { ro: [PROGRAMS_DIR], tmp: true });
  assert.equal(again.stdout.toString(), 'status 0\n');
  const none = run(BUSYBOX, ['sh', '-c', 'ls -A /tmp 2>/dev/null; echo status $?'], { ro: [PROGRAMS_DIR] });
  assert.notEqual(none.stdout.toString(), 'status 0\n');
});

// The sticky bit (a shared /tmp): a name of another user there may not be removed or replaced by
// the guest (EPERM), its own may. A root kvmbox checks it itself, as the host lets root through;
// as another user the host refuses the same names. Expectations as Linux gives them to a
// non-root user.
test('sticky directory: another owner\'s file may not be removed, renamed or replaced; the guest\'s own may', { skip: NO_BUSYBOX || process.getuid?.() !== 0 }, () => {
  const d = mkdtempSync(join(tmpdir(), 'kvmbox-sticky-'));
  try {
    const t = join(d, 't');
    mkdirSync(t);
    chmodSync(t, 0o1777);
    // Owned by neither the guest nor the user running kvmbox (whose files are the guest's), as
    // /tmp is root's.
    chownSync(t, 4322, 4322);
    for (const n of ['theirs', 'theirs2', 'target']) {
      writeFileSync(join(t, n), n);
      chownSync(join(t, n), 4321, 4321);
    }
    const script = [
      `cd ${t}`,
      'rm -f theirs; echo "rm theirs $?"',
      'mv theirs2 moved; echo "mv theirs $?"',
      'echo mine > mine && mv mine target; echo "mv onto theirs $?"',
      'mv mine mine2 && rm mine2; echo "mine $?"',
      'ls',
    ].join('\n');
    const r = run(BUSYBOX, ['sh', '-c', script], { ro: [PROGRAMS_DIR], rw: [d] });
    assert.equal(r.stdout.toString(), 'rm theirs 1\nmv theirs 1\nmv onto theirs 1\nmine 0\ntarget\ntheirs\ntheirs2\n', r.stderr.toString());
    assert.match(r.stderr.toString(), /Operation not permitted/);
    // Without the sticky bit the directory's write permission is all it takes.
    chmodSync(t, 0o777);
    const r2 = run(BUSYBOX, ['sh', '-c', `cd ${t} && rm -f theirs && mv theirs2 moved && ls`], { ro: [PROGRAMS_DIR], rw: [d] });
    assert.equal(r2.stdout.toString(), 'moved\ntarget\n', r2.stderr.toString());
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('tmp with /tmp granted too is refused before anything runs', () => {
  assert.throws(() => run(prog, [], { rw: ['/tmp'], tmp: true }), /tmp: \/tmp is granted already/);
});

// A granted file that is a symlink on the host is its target in the guest when that target is
// not granted: lstat says a regular file, so an open with O_NOFOLLOW must work as on any regular
// file (it gave ELOOP once: the host saw the /proc/self/fd link, and `tar cf x.tar
// /etc/os-release` failed with status 2). When the link's text leads, in the guest, to the file
// it grants (--system's /etc/localtime -> /usr/share/zoneinfo/..., /bin -> usr/bin), the grant
// shows as that symlink, as natively: lstat, readlink (ICU and Java name the time zone from it;
// ICU read all of /usr/share/zoneinfo instead and named the zone "Universal"), O_NOFOLLOW's
// ELOOP, and the file type in a listing of the directory above it (every entry there was a
// directory: `ls -F /etc` put a slash after passwd).
const LINK_PROBE = [
  'import os, stat, sys',
  'for p in sys.argv[1:]:',
  '    try:',
  '        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW); got = os.read(fd, 100)',
  '    except OSError as e:',
  '        got = e.strerror',
  '    try:',
  '        text = os.readlink(p)',
  '    except OSError as e:',
  '        text = e.strerror',
  '    d = os.path.dirname(p)',
  '    kinds = {e.name: (e.is_symlink(), e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in os.scandir(d)}',
  '    print(os.path.basename(p), stat.S_ISLNK(os.lstat(p).st_mode), got, text, kinds[os.path.basename(p)], open(p).read(8) == open(os.path.realpath(p)).read(8))',
].join('\n');

test('a granted host symlink: its target when that is not granted, the symlink when it is, as natively', { skip: existsSync('/usr/bin/python3') ? false : 'no python3' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-filelink-'));
  try {
    writeFileSync(join(dir, 'real'), 'content\n');
    symlinkSync('real', join(dir, 'link'));
    const opts = { system: true, stdout: 'capture', stderr: 'capture' } as const;
    // Only the link granted: the guest sees a regular file with the target's bytes.
    const alone = run('/usr/bin/python3', ['-c', LINK_PROBE, join(dir, 'link')], { ...opts, ro: [join(dir, 'link')] });
    assert.equal(alone.stderr.toString(), '');
    assert.equal(alone.stdout.toString(), "link False b'content\\n' Invalid argument (False, False, True) True\n");
    // Link and target granted, and --system's links: what Linux shows.
    const paths = [join(dir, 'link'), join(dir, 'real'), '/etc/localtime', '/etc/os-release', '/etc/passwd'].filter((p) => existsSync(p));
    const native = spawnSync('/usr/bin/python3', ['-c', LINK_PROBE, ...paths], { encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    const both = run('/usr/bin/python3', ['-c', LINK_PROBE, ...paths], { ...opts, ro: [join(dir, 'link'), join(dir, 'real')] });
    assert.equal(both.stderr.toString(), '');
    assert.equal(both.stdout.toString(), native.stdout);
    assert.match(native.stdout, /^link True Too many levels of symbolic links real \(True, False, False\) True$/m);
    assert.equal(both.exitStatus, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
