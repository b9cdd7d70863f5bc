// The file trees the conformance cases run in, and the snapshot used to compare trees.
//
// Layout under one temporary base directory (mode 0755, so uid 1000 can traverse it):
//   <base>/ro   the read-only fixture (granted --ro to kvmbox; the native run reads the same files)
//   <base>/rw   the work directory of write cases (granted --rw), rebuilt before every run
//
// Every fixture entry gets a fixed mtime/atime (FIXTURE_TIME) and, when the suite runs as root,
// owner 1000:1000: the guest runs as uid/gid 1000, so the native run is started as 1000:1000 too
// and both see the files as their own (ls -ln, test -r/-w, access()).
import { createHash } from 'node:crypto';
import {
  chmodSync, lchownSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync,
  rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** One entry of a tree: a file's contents, or a described file, directory or symlink. */
export type Entry =
  | string
  | Buffer
  | { file: string | Buffer; mode?: number }
  | { dir: true; mode?: number }
  | { symlink: string };

/** Relative path -> entry. Parent directories are created as needed (mode 0755). */
export type TreeSpec = Record<string, Entry>;

/** 2024-01-02 03:04:05 UTC: every fixture entry's atime and mtime. */
export const FIXTURE_TIME = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
/** The identity the guest runs as (src/linux/process.ts GUEST_UID/GUEST_GID). */
export const GUEST_ID = 1000;
export const asRoot = process.getuid?.() === 0;

/** Deterministic pseudo-random bytes (a 32-bit LCG), so binary fixtures are the same every run. */
export function prng(n: number, seed = 12345): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A binary file with printable strings buried in noise, for `strings`. */
function blob(): Buffer {
  const parts: Buffer[] = [];
  const words = ['kvmbox-conformance', 'hello strings', 'GNU is not busybox', 'short', 'x', 'the last string here'];
  words.forEach((w, i) => {
    parts.push(Buffer.from(prng(37 + i * 11, i + 1).map((b) => (b < 0x20 || b > 0x7e ? b : b & 0x1f))));
    parts.push(Buffer.from(w));
  });
  parts.push(Buffer.from([0, 1, 2, 3]));
  return Buffer.concat(parts);
}

const WORDS = ['pear', 'apple', 'fig', 'banana', 'apple', 'cherry', 'date', 'fig', 'elderberry', 'grape', 'apple', 'kiwi'];
const POEM = [
  'The quick brown fox jumps over the lazy dog while the busybox applets count every byte twice.',
  'foo bar foo baz foo',
  '',
  'Lines of varying length: short.',
  'A much longer line that wraps when folded at twenty columns, or thirty, or forty if you like.',
  'tab\tseparated\tfields\there',
  'UPPER lower MiXeD 12345 !@#$%',
].join('\n') + '\n';

/** xz -c of "xz compressed line one\nline two\nline three\n", made once with xz-utils (busybox's xz only decompresses). */
const XZ_SAMPLE = Buffer.from(
  '/Td6WFoAAATm1rRGAgAhARYAAAB0L+Wj4AAqACZdADwegAUyOHQoU00T9K3ZfimujEV/kvwco8qvrLfDZ4YTSrZwueHgAAAAZEPtrXEcvxMAAUIr7GF1Th+2830BAAAAAARZWg==',
  'base64');

/** The read-only fixture. `abs` is the absolute path of the ro directory (for absolute symlinks). */
export function roTree(ro: string): TreeSpec {
  return {
    'text/words.txt': WORDS.join('\n') + '\n',
    'text/numbers.txt': [42, 7, 100, -3, 7, 19, 3.5, 0, 1000, 12].join('\n') + '\n',
    'text/data.csv': 'name,qty,price\nwidget,3,2.50\ngadget,10,1.25\ndoohickey,1,99.99\nsprocket,7,0.10\n',
    'text/poem.txt': POEM,
    'text/a.txt': 'alpha\nbeta\ngamma\ndelta\nepsilon\n',
    'text/b.txt': 'alpha\nbeta\nGAMMA\ndelta\nzeta\n',
    'text/sorted1.txt': 'apple\nbanana\ncherry\nfig\n',
    'text/sorted2.txt': 'banana\ncherry\ndate\nfig\ngrape\n',
    'text/a-copy.txt': 'alpha\nbeta\ngamma\ndelta\nepsilon\n',
    'text/empty.txt': '',
    'text/crlf.txt': 'one\r\ntwo\r\n',
    'text/sums.md5': '', // filled below: md5sum -c input
    'bin/blob.bin': blob(),
    'bin/random.bin': prng(3000, 99),
    'comp/hello.gz': gzipSync(Buffer.from('hello from gzip\n'.repeat(20))),
    'comp/lines.xz': XZ_SAMPLE,
    'tree/top.txt': 'top\n',
    'tree/.hidden': 'hidden\n',
    'tree/a/one.txt': 'one\n',
    'tree/a/b/two.txt': 'two two\n',
    'tree/a/b/c/three.dat': prng(5000, 3),
    'tree/empty-dir': { dir: true },
    'tree/script.sh': { file: '#!/bin/sh\necho hi\n', mode: 0o755 },
    'links/rel-file': { symlink: '../text/words.txt' },
    'links/rel-dir': { symlink: '../tree/a' },
    'links/abs-file': { symlink: join(ro, 'text/a.txt') },
    'links/abs-dir': { symlink: join(ro, 'tree') },
    'links/chain': { symlink: 'rel-file' },
    'links/dangling': { symlink: 'no-such-target' },
    // Links that leave the fixture: natively they reach the host, in kvmbox nothing (only the
    // security tests use them; conformance cases stay out of escape/).
    'escape/abs': { symlink: '/etc/hostname' },
    'escape/dotdot': { symlink: '../../../../../../../../etc/hostname' },
    'escape/dir': { symlink: '/etc' },
    'perms/private.txt': { file: 'secret\n', mode: 0o600 },
    'perms/readonly.txt': { file: 'read only\n', mode: 0o444 },
    'perms/none.txt': { file: 'no access\n', mode: 0o000 },
    'perms/exec.sh': { file: '#!/bin/sh\n', mode: 0o750 },
    'perms/sticky-dir': { dir: true, mode: 0o1777 },
  };
}

function contentOf(e: Entry): Buffer | null {
  if (typeof e === 'string') return Buffer.from(e);
  if (Buffer.isBuffer(e)) return e;
  if ('file' in e) return Buffer.from(e.file);
  return null;
}

/** Create `spec` under `root` (which must exist), then fix owners and times. */
export function buildTree(root: string, spec: TreeSpec): void {
  for (const [rel, e] of Object.entries(spec)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const data = contentOf(e);
    if (data) {
      writeFileSync(path, data);
      chmodSync(path, typeof e === 'object' && !Buffer.isBuffer(e) && 'mode' in e && e.mode !== undefined ? e.mode : 0o644);
    } else if (typeof e === 'object' && 'dir' in e) {
      mkdirSync(path, { recursive: true });
      chmodSync(path, e.mode ?? 0o755);
    } else if (typeof e === 'object' && 'symlink' in e) {
      symlinkSync(e.symlink, path);
    }
  }
  settle(root);
}

/** chown (as root) and set fixed times, children before their directory. */
function settle(path: string): void {
  const st = lstatSync(path);
  if (st.isDirectory()) for (const name of readdirSync(path)) settle(join(path, name));
  if (asRoot) lchownSync(path, GUEST_ID, GUEST_ID);
  lutimesSync(path, FIXTURE_TIME, FIXTURE_TIME);
}

export interface Fixture {
  base: string;
  ro: string;
  rw: string;
}

export function createFixture(): Fixture {
  const base = mkdtempSync(join(tmpdir(), 'kvmbox-conformance-'));
  chmodSync(base, 0o755);
  const ro = join(base, 'ro');
  const rw = join(base, 'rw');
  mkdirSync(ro);
  const spec = roTree(ro);
  // md5sum -c input: sums of two fixture files (computed here, not by busybox).
  const md5 = (rel: string) => createHash('md5').update(contentOf(spec[rel]!)!).digest('hex');
  spec['text/sums.md5'] = `${md5('text/a.txt')}  text/a.txt\n${md5('text/words.txt')}  text/words.txt\n`;
  buildTree(ro, spec);
  resetRw({ base, ro, rw }, {});
  return { base, ro, rw };
}

/** Recreate the rw directory with `spec` in it. */
export function resetRw(f: Fixture, spec: TreeSpec): void {
  rmSync(f.rw, { recursive: true, force: true });
  mkdirSync(f.rw, { mode: 0o755 });
  buildTree(f.rw, spec);
}

export function removeFixture(f: Fixture): void {
  rmSync(f.base, { recursive: true, force: true });
}

/** One entry of a snapshot: what a tree comparison looks at. */
export interface SnapEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  size?: number;
  sha256?: string;
  target?: string;
  /** Whole seconds, or 'now' for a time inside the run's own window (see snapshot). */
  mtime?: number | 'now';
}

/**
 * The tree under root as path -> entry: names, types, permission bits, file contents (sha256) and
 * size, symlink targets, and (with mtimes) whole-second mtimes of files and symlinks; an mtime
 * inside `window` (the seconds during which the run went on) is 'now': a run stamps "now" on
 * what it creates, and two runs cannot share a "now". Directories' mtimes are not compared
 * (every entry created or removed changes them). Owners are
 * not compared: files the guest creates are created by the host process, so they belong to the
 * user running kvmbox, while the native run creates them as uid 1000.
 */
export function snapshot(root: string, opts: { mtimes?: boolean; window?: [number, number] } = {}): Record<string, SnapEntry> {
  const out: Record<string, SnapEntry> = {};
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = prefix + name;
      const st = lstatSync(path);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      let mtime: number | 'now' | undefined = opts.mtimes ? Math.floor(st.mtimeMs / 1000) : undefined;
      if (mtime !== undefined && opts.window && mtime >= opts.window[0] && mtime <= opts.window[1]) mtime = 'now';
      if (st.isDirectory()) {
        out[rel] = { type: 'dir', mode };
        walk(path, rel + '/');
      } else if (st.isSymbolicLink()) {
        out[rel] = { type: 'symlink', mode: '', target: readlinkSync(path), mtime };
      } else if (st.isFile()) {
        let data: Buffer;
        try { data = readFileSync(path); } catch { data = Buffer.from('(unreadable)'); }
        out[rel] = { type: 'file', mode, size: st.size, sha256: createHash('sha256').update(data).digest('hex'), mtime };
      } else {
        out[rel] = { type: 'other', mode };
      }
    }
  };
  walk(root, '');
  return out;
}
