// The directory prefetcher (native/prefetch.c, driven by src/fs/dir-cache.ts): a thread of the
// host helper library that lists a program's walk of a read-only tree ahead of the batches. The
// program must not be able to tell (same output as when the host serves every call), the
// listings must come from it, and it must end with the program: no thread or descriptor left.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSync as run, type RunOptions } from '../src/index.js';
import { Process } from '../src/linux/process.js';
import * as libc from '../src/kvm/libc.js';
import { onUserStubPath } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const prog = (name: string) => join(root, 'test/programs/out', name);
const busybox = prog('busybox');
const noStub = !onUserStubPath() && 'needs the kvm_pvm system-call path (user-mode stub, directory cache); this KVM takes the cpl0-entry path';

type CacheStats = Process['dirCache']['stats'];

/** Run a program and return, with its result, its directory cache's counts at its end. */
function runCounted(program: string, args: string[], opts: RunOptions) {
  const close = Process.prototype.close;
  let stats: CacheStats | undefined;
  Process.prototype.close = function (this: Process) {
    close.call(this);
    stats = { ...this.dirCache.stats };
  };
  try {
    const r = run(program, args, opts);
    return { ...r, stats: stats! };
  } finally {
    Process.prototype.close = close;
  }
}

let base = '';
let tree = '';
/** A tree deeper than the prefetcher goes (native/prefetch.c: MAX_DEPTH levels below its root). */
let deep = '';
const PF_MAX_DEPTH = 64;
const DEEP = 100;
/** Directories in tree, counted as they are made. */
let dirs = 0;
before(() => {
  base = mkdtempSync(join(tmpdir(), 'kvmbox-prefetch-'));
  tree = join(base, 'tree');
  const dir = (p: string) => { mkdirSync(p); dirs++; };
  dir(tree);
  for (let i = 0; i < 24; i++) {
    const top = join(tree, `top${i}`);
    dir(top);
    for (let j = 0; j < 8; j++) {
      const mid = join(top, `m${j}`);
      dir(mid);
      writeFileSync(join(mid, 'x.txt'), `${i}.${j}\n`);
      for (let k = 0; k < 2; k++) dir(join(mid, `leaf${k}`));
    }
  }
  // Too big for the directory cache (over 1 MiB of entries): the host serves it, and the walk
  // goes on below it.
  const big = join(tree, 'top5', 'big');
  dir(big);
  for (let i = 0; i < 5000; i++) writeFileSync(join(big, `file-with-a-long-name-${i}`), '');
  for (let i = 0; i < 3; i++) dir(join(big, `sub${i}`));
  // A link to a directory outside the grant, and a directory the guest (uid 1000) may not list.
  const outside = join(base, 'outside');
  mkdirSync(join(outside, 'secret-dir'), { recursive: true });
  writeFileSync(join(outside, 'secret-dir', 'secret.txt'), 's');
  symlinkSync(outside, join(tree, 'top3', 'm1', 'escape'));
  const locked = join(tree, 'top7', 'locked');
  dir(locked);
  dir(join(locked, 'inner'));
  chmodSync(locked, 0o700);
  if (process.geteuid?.() === 0) chownSync(locked, 65534, 65534);
  // top0..top3, with a chain of DEEP directories in top1 (a file and an empty directory at each
  // level): the walk goes past the prefetcher's limit and comes back up to top2 and top3.
  deep = join(base, 'deep');
  for (let i = 0; i < 4; i++) {
    mkdirSync(join(deep, `top${i}`, 'sub'), { recursive: true });
    writeFileSync(join(deep, `top${i}`, 'file'), `${i}\n`);
  }
  let d = join(deep, 'top1');
  for (let level = 0; level < DEEP; level++) {
    writeFileSync(join(d, 'f'), `${level}\n`);
    mkdirSync(join(d, 'e'));
    d = join(d, 'd');
    mkdirSync(d);
  }
});
after(() => {
  rmSync(base, { recursive: true, force: true });
});

const countTasks = () => readdirSync('/proc/self/task').length;
const countFds = () => readdirSync('/proc/self/fd').length;

for (const [what, program, args] of [
  ['busybox find (siblings as listed)', busybox, ['find']],
  ['busybox ls -laR (siblings sorted)', busybox, ['ls', '-laR']],
  ['a walk that closes each directory before going into it (readdir, sort, lstat)', prog('dircache.glibc'), ['walk']],
] as const) {
  test(`${what}: the same output as with the host serving every call, listed ahead by the prefetcher`, { skip: noStub }, () => {
    const cached = runCounted(program, [...args, tree], { ro: [tree] });
    const traced = run(program, [...args, tree], { ro: [tree], trace: () => {} });
    assert.equal(cached.stdout.toString(), traced.stdout.toString());
    assert.equal(cached.stderr.toString(), traced.stderr.toString());
    assert.equal(cached.exitStatus, traced.exitStatus);
    const out = cached.stdout.toString();
    assert.match(out, /top23/);
    assert.match(out, /sub2/, 'the walk goes on below the directory too big to cache');
    assert.doesNotMatch(out, /secret/, 'nothing of the link target outside the grant');
    // Nearly every directory listed by the prefetcher, nearly none listed for nothing.
    const { prefetched, listed, prefetchDropped, prefetchers } = cached.stats;
    assert.ok(prefetchers >= 1, JSON.stringify(cached.stats));
    assert.ok(prefetched >= dirs * 0.8, `${prefetched} of ${dirs} directories from the prefetcher (${listed} listed in line)`);
    assert.ok(prefetchDropped <= 20, `${prefetchDropped} listings made ahead and never used`);
  });
}

test('a tree deeper than the prefetcher goes, under --ro: the same output as native find and ls -R', () => {
  for (const args of [['find'], ['ls', '-R']]) {
    const native = execFileSync(busybox, [...args, deep], { maxBuffer: 16 << 20 }).toString();
    assert.match(native, new RegExp(`(/d){${DEEP}}`), 'the deepest directory');
    const cached = run(busybox, [...args, deep], { ro: [deep] });
    assert.equal(cached.stderr.toString(), '');
    assert.equal(cached.exitStatus, 0);
    assert.equal(cached.stdout.toString(), native, `busybox ${args.join(' ')}`);
    const traced = run(busybox, [...args, deep], { ro: [deep], trace: () => {} });
    assert.equal(traced.stdout.toString(), native);
  }
});

test('a program that opens one directory starts no prefetcher', { skip: noStub }, () => {
  const r = runCounted(busybox, ['ls', join(tree, 'top1')], { ro: [tree] });
  assert.equal(r.exitStatus, 0);
  assert.match(r.stdout.toString(), /m7/);
  assert.equal(r.stats.prefetchers, 0);
});

test('a program stopped in the middle of a walk leaves no thread or descriptor of the prefetcher behind', { skip: noStub }, () => {
  const full = run(busybox, ['ls', '-laR', tree], { ro: [tree] }).stdout.length;
  // Warm up the pool first, so that a pooled machine's own descriptors are counted before.
  run(busybox, ['true'], {});
  const tasks = countTasks(), fds = countFds();
  for (const limit of [full / 4, full / 2]) {
    const r = runCounted(busybox, ['ls', '-laR', tree], { ro: [tree], maxOutputBytes: Math.floor(limit) });
    assert.equal(r.reason.kind, 'output-limit');
    assert.ok(r.stats.prefetchers >= 1, 'the prefetcher was running when the program was stopped');
  }
  assert.equal(countTasks(), tasks, 'threads');
  assert.equal(countFds(), fds, 'descriptors');
});

test('a directory the program makes, in a read-write grant inside the read-only tree it walks, is in the rest of its walk', () => {
  // Made after top1 is walked, in top9, which comes last (byte order): by then the prefetcher
  // has listed top9 (it works ahead), and must not hand out that listing.
  const rw = join(tree, 'top9');
  const made = join(rw, 'made-here');
  const walk = (trace?: () => void) => {
    rmSync(made, { recursive: true, force: true });
    return run(prog('dircache.glibc'), ['walkmk', tree, join(tree, 'top1'), made], { ro: [tree], rw: [rw], trace });
  };
  try {
    const cached = walk();
    const traced = walk(() => {});
    const out = cached.stdout.toString();
    assert.equal(cached.exitStatus, 0, cached.stderr.toString());
    const [before, after] = out.split(`-- made ${made}\n`);
    assert.doesNotMatch(before!, /made-here/);
    assert.match(after!, /top9\/made-here\/made mode=100644 size=4/);
    // The made directory and file are new in each run: their inode numbers differ.
    const fresh = (s: string) => s.replace(/(made-here\S*) (.*) ino=\d+/g, '$1 $2');
    assert.equal(fresh(out), fresh(traced.stdout.toString()));
  } finally {
    rmSync(made, { recursive: true, force: true });
  }
});

test('a tree the program makes deeper than the prefetcher goes, in a read-write grant inside the read-only tree it walks, is in the rest of its walk', () => {
  const rw = join(tree, 'top9');
  const made = join(rw, 'made-deep');
  const walk = (trace?: () => void) => {
    rmSync(made, { recursive: true, force: true });
    return run(prog('dircache.glibc'), ['walkmk', tree, join(tree, 'top1'), made, String(DEEP)], { ro: [tree], rw: [rw], trace });
  };
  try {
    const cached = walk();
    const traced = walk(() => {});
    const out = cached.stdout.toString();
    assert.equal(cached.exitStatus, 0, cached.stderr.toString());
    assert.doesNotMatch(out, /(mkdir|create)( depth \d+)? errno/, 'the tree is made');
    assert.match(out, new RegExp(`made-deep(/d){${DEEP}} mode=40755`), 'the deepest directory made');
    // Every directory made is new in each run, and so is the inode number its `..` shows.
    const fresh = (s: string) => s.replace(/^(.*made-deep.* )ino=\d+/gm, '$1ino=');
    assert.equal(fresh(out), fresh(traced.stdout.toString()));
  } finally {
    rmSync(made, { recursive: true, force: true });
  }
});

test('listing records reach the program with zeroed padding, never bytes of an earlier listing', () => {
  // Long names listed first (the host's listing buffers then hold them), then short names: the
  // bytes after each short name's NUL, up to the record's end, must be zeros, as the kernel would
  // leave them in a zeroed buffer.
  const long = join(base, 'long-names');
  const short = join(base, 'short-names');
  for (let i = 0; i < 40; i++) mkdirSync(join(long, `d${i}`, 'L'.repeat(200 + i)), { recursive: true });
  for (let i = 0; i < 40; i++) mkdirSync(join(short, `d${i}`, 's'), { recursive: true });
  const first = run(busybox, ['find', long], { ro: [long] });
  assert.equal(first.exitStatus, 0);
  const r = run(prog('dircache.glibc'), ['padding', short], { ro: [short] });
  assert.equal(r.stdout.toString(), 'padding=0\n');
});

// ---- the helper library's prefetcher on its own (no VM) ----

const O_DIRECTORY = 0o200000;
const owners = { uid: 0, gid: 0, toUid: 0, toGid: 0 };
const CAP = 4 << 20;

/** The directories of tree from `resume` on, in a depth-first walk with siblings sorted by name. */
function walkFrom(top: string, resume: string): string[] {
  const all: string[] = [];
  const visit = (d: string) => {
    all.push(d);
    const names = readdirSync(d).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const n of names) if (lstatSync(join(d, n)).isDirectory()) visit(join(d, n));
  };
  visit(top);
  return all.slice(all.indexOf(join(top, resume)));
}

/** A listing as listDir makes it for a path: its records and stats. */
function listed(path: string): Buffer {
  const fd = libc.open(path, O_DIRECTORY);
  try {
    const out = Buffer.alloc(CAP);
    const r = libc.listDir(fd, out, Buffer.byteLength(path), owners);
    assert.ok(typeof r !== 'number');
    return Buffer.concat([out.subarray(0, r.blobLen), out.subarray(r.statsOff, r.statsOff + r.count * 144)]);
  } finally {
    libc.close(fd);
  }
}

test('the prefetcher lists depth first from where a walk resumes, in its order, as listDir would, and not through symlinks', () => {
  const fd = libc.open(tree, O_DIRECTORY);
  const pf = libc.prefetchStart(fd, tree, 'top3/m1', true, CAP, 1 << 30, owners);
  libc.close(fd); // the prefetcher has its own
  assert.ok(typeof pf !== 'number');
  try {
    const expected = walkFrom(tree, 'top3/m1');
    assert.ok(expected.length > 150 && expected.includes(join(tree, 'top5', 'big', 'sub2')));
    const out = Buffer.alloc(CAP);
    for (const path of expected) {
      if (path.startsWith(join(tree, 'top7', 'locked')) && process.geteuid?.() !== 0) continue;
      const r = libc.prefetchTake(pf, path, out);
      assert.ok(r !== null && typeof r !== 'number', `${path}: ${String(r)}`);
      // The same listing, but for the stat times of the directories read meanwhile (atime).
      const want = listed(path);
      assert.equal(r.count * 144 + r.blobLen, want.length, path);
      assert.deepEqual(out.subarray(0, r.blobLen), want.subarray(0, r.blobLen), path);
    }
    // Nothing past the walk, nothing through the link to the outside, nothing behind.
    assert.equal(libc.prefetchTake(pf, join(tree, 'top3', 'm1', 'escape'), out), null);
    assert.equal(libc.prefetchTake(pf, join(tree, 'top0'), out), null);
    assert.deepEqual(libc.prefetchStats(pf).dropped, 0);
  } finally {
    libc.prefetchStop(pf);
  }
});

test('the prefetcher lists a tree deeper than its limit down to the limit, and leaves what lies below to the host', () => {
  const fd = libc.open(deep, O_DIRECTORY);
  const pf = libc.prefetchStart(fd, deep, '', true, CAP, 1 << 30, owners);
  libc.close(fd);
  assert.ok(typeof pf !== 'number');
  try {
    const out = Buffer.alloc(CAP);
    let hits = 0, misses = 0;
    for (const path of walkFrom(deep, '')) {
      const level = path.slice(deep.length).split('/').length - 1;
      const r = libc.prefetchTake(pf, path, out);
      if (r === null) {
        assert.ok(level > PF_MAX_DEPTH, `${path} (level ${level}) missed`);
        misses++;
        continue;
      }
      assert.ok(typeof r !== 'number', `${path}: ${String(r)}`);
      const want = listed(path);
      assert.deepEqual(out.subarray(0, r.blobLen), want.subarray(0, r.blobLen), path);
      hits++;
    }
    assert.ok(hits > PF_MAX_DEPTH + 4 && misses > 0, `${hits} listed, ${misses} left to the host`);
    assert.equal(libc.prefetchTake(pf, join(deep, 'top3', 'sub', 'none'), out), null);
  } finally {
    libc.prefetchStop(pf);
  }
  // Resumed below the limit: it lists nothing, and stops.
  const fd2 = libc.open(deep, O_DIRECTORY);
  const below = libc.prefetchStart(fd2, deep, `top1${'/d'.repeat(PF_MAX_DEPTH + 4)}`, false, CAP, 1 << 30, owners);
  libc.close(fd2);
  assert.ok(typeof below !== 'number');
  try {
    assert.equal(libc.prefetchTake(below, join(deep, `top1${'/d'.repeat(PF_MAX_DEPTH + 4)}`), Buffer.alloc(CAP)), null);
  } finally {
    libc.prefetchStop(below);
  }
});

test('the prefetcher holds no more than its window of listings untaken, and drops those a walk went past', async () => {
  const fd = libc.open(tree, O_DIRECTORY);
  const out = Buffer.alloc(CAP);
  // A window of 0 bytes: one listing ahead at a time.
  const narrow = libc.prefetchStart(fd, tree, '', true, CAP, 0, owners);
  const wide = libc.prefetchStart(fd, tree, '', true, CAP, 1 << 30, owners);
  libc.close(fd);
  assert.ok(typeof narrow !== 'number' && typeof wide !== 'number');
  try {
    assert.ok(libc.prefetchTake(narrow, tree, out) !== null);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(libc.prefetchStats(narrow).listed, 2, 'the root, then one more while it waits');
    // Taking the fourth directory of the walk drops the three before it.
    const fourth = walkFrom(tree, '')[3]!;
    assert.ok(libc.prefetchTake(wide, fourth, out) !== null);
    const counts = libc.prefetchStats(wide);
    assert.equal(counts.taken, 1);
    assert.equal(counts.dropped, 3);
  } finally {
    libc.prefetchStop(narrow);
    libc.prefetchStop(wide);
  }
});

test('stats of a big directory read in chunks come from its earlier listing, and are right when the reads do not follow it', () => {
  const big = join(tree, 'top5', 'big');
  const listing = Buffer.alloc(CAP);
  const fd = libc.open(big, O_DIRECTORY);
  try {
    const r = libc.listDir(fd, listing, Buffer.byteLength(big), owners);
    assert.ok(typeof r !== 'number' && r.count > 5000);
    const blob = listing.subarray(0, r.blobLen);
    const lstats = listing.subarray(r.statsOff, r.statsOff + r.count * 144);
    const cursor = new BigUint64Array(2);
    // Twice through: in the listing's order, then again from the start with the cursor at the end.
    for (let pass = 0; pass < 2; pass++) {
      libc.lseek(fd, 0n, 0);
      const chunk = Buffer.alloc(32 * 1024);
      let records = 0;
      for (let n; (n = libc.getdents64(fd, chunk)) > 0;) {
        const dirents = chunk.subarray(0, n);
        const from = Buffer.alloc(Math.floor(n / 24) * 144), direct = Buffer.alloc(from.length);
        const k = libc.statDirentsFrom(fd, dirents, from, blob, lstats, cursor);
        assert.equal(libc.statDirents(fd, dirents, direct), k);
        // The same stats, but for the directory's own times ('.': its atime moves as it is read).
        for (let i = 0; i < k; i++) {
          const a = from.subarray(i * 144, i * 144 + 72), b = direct.subarray(i * 144, i * 144 + 72);
          assert.deepEqual(a, b, `record ${records + i}`);
        }
        records += k;
      }
      assert.equal(records, r.count);
      assert.equal(Number(cursor[1]), r.count, 'every record taken from the listing, once');
    }
  } finally {
    libc.close(fd);
  }
});
