// The conformance table: busybox applet invocations run natively and in kvmbox, whose stdout,
// stderr and exit status must be identical (and, for write cases, the resulting trees).
//
// How a case runs (test/conformance/harness.ts):
// - natively: spawnSync(test/programs/out/busybox, args) as uid/gid 1000 (when the suite runs as
//   root), umask 022, env ENV below, cwd and stdin as given;
// - in kvmbox: run(busybox, args) with --ro <base>/ro and --rw <base>/rw (plus `extraRo`), the
//   same env, cwd and stdin. The guest runs as uid/gid 1000, so the fixture is owned by 1000:1000.
// - `{ro}`, `{rw}` and `{base}` in args are replaced by the absolute fixture paths, which are the
//   same in both runs (a grant appears in the guest at its host path).
//
// Comparisons are exact unless a case says otherwise; every exception is written in the case:
// - `stderr: { ignore: why }` skips the stderr comparison (exit status and stdout still count);
// - `normalize: { why, fn }` rewrites both stdouts the same way before comparing;
// - write cases (`rw`) start from the same rw tree and compare the trees after the run: names,
//   types, permission bits, sizes, contents and symlink targets, and mtimes of files and links
//   when `compareMtime` is set: exactly, except that a time inside the run's own time window
//   counts as "now" on both sides (a run that stamps "now" cannot match another run's "now").
//   Owners are not compared: the guest's files are created by the host process (the guest sees
//   them as its own, uid 1000, through the owner mapping of src/linux/syscalls/fs.ts).
import { gzipSync } from 'node:zlib';
import type { TreeSpec } from './fixture.js';

export interface Case {
  /** Unique name, shown in the pass table. */
  name: string;
  /** What busybox gets after argv[0]: the applet and its arguments. */
  args: string[];
  /**
   * More invocations run after `args`, one after the other, in the same trees (what a shell
   * script would do; kvmbox runs one process, so `sh -c` can only use shell builtins). Their
   * stdout and stderr are appended, and every exit status is compared.
   */
  then?: string[][];
  /** Bytes fed on standard input (default: empty). */
  stdin?: string | Buffer;
  /** Working directory: 'ro' (default), 'rw', or a path relative to the fixture base. */
  cwd?: string;
  /** A write case: the rw directory starts as this tree, and the trees after the runs are compared. */
  rw?: TreeSpec;
  /** Compare mtimes in the write-case tree (only where the case sets them deterministically). */
  compareMtime?: boolean;
  /** stderr is not compared, for the reason given. */
  stderr?: { ignore: string };
  /** Both stdouts are rewritten with fn before comparison, for the reason given. */
  normalize?: { why: string; fn: (s: string) => string };
  /** More host paths granted read-only to the guest (the native run sees the whole host). */
  extraRo?: string[];
  /** The checklist item this case covers. */
  covers: string;
}

/** The environment of both runs. TZ=UTC so that times print the same without /etc/localtime. */
export const ENV: Record<string, string> = { PATH: '/usr/bin:/bin', HOME: '/', TZ: 'UTC', LC_ALL: 'C' };

/** /etc/passwd and /etc/group, for applets that print user and group names (ls -l, tar tv, id). */
const NAMES = ['/etc/passwd', '/etc/group'];

const SORT_INPUT = 'delta\nalpha\ncharlie\nbravo\nalpha\necho\n';

export const CASES: Case[] = [
  // ---- text tools ----
  { name: 'cat', covers: 'text', args: ['cat', 'text/words.txt', 'text/a.txt'] },
  { name: 'cat -n', covers: 'text', args: ['cat', '-n', 'text/poem.txt'] },
  { name: 'cat missing file', covers: 'text', args: ['cat', 'text/nope.txt'] },
  { name: 'head -n 3', covers: 'text', args: ['head', '-n', '3', 'text/words.txt'] },
  { name: 'head -c 10 two files', covers: 'text', args: ['head', '-c', '10', 'text/a.txt', 'text/b.txt'] },
  { name: 'tail -n 2', covers: 'text', args: ['tail', '-n', '2', 'text/words.txt'] },
  { name: 'tail -c 25', covers: 'text', args: ['tail', '-c', '25', 'text/poem.txt'] },
  { name: 'tail -n +4', covers: 'text', args: ['tail', '-n', '+4', 'text/a.txt'] },
  { name: 'wc', covers: 'text', args: ['wc', 'text/poem.txt'] },
  { name: 'wc -l several', covers: 'text', args: ['wc', '-l', 'text/words.txt', 'text/a.txt', 'text/empty.txt'] },
  { name: 'sort', covers: 'text', args: ['sort', 'text/words.txt'] },
  { name: 'sort -n -r', covers: 'text', args: ['sort', '-n', '-r', 'text/numbers.txt'] },
  { name: 'sort -t, -k3 -n', covers: 'text', args: ['sort', '-t', ',', '-k', '3', '-n', 'text/data.csv'] },
  { name: 'sort -u', covers: 'text', args: ['sort', '-u', 'text/words.txt'] },
  { name: 'uniq -c', covers: 'text', args: ['uniq', '-c', 'text/sorted1.txt'] },
  { name: 'sort | uniq -c (stdin)', covers: 'stdin', args: ['uniq', '-c'], stdin: 'a\na\nb\nc\nc\nc\n' },
  { name: 'cut -d, -f1,3', covers: 'text', args: ['cut', '-d', ',', '-f', '1,3', 'text/data.csv'] },
  { name: 'cut -c 1-5', covers: 'text', args: ['cut', '-c', '1-5', 'text/poem.txt'] },
  { name: 'tr a-z A-Z (stdin)', covers: 'stdin', args: ['tr', 'a-z', 'A-Z'], stdin: 'hello, World\n' },
  { name: 'tr -d (stdin)', covers: 'stdin', args: ['tr', '-d', 'aeiou'], stdin: 'the quick brown fox\n' },
  { name: 'sed s///g', covers: 'text', args: ['sed', 's/foo/FOO/g', 'text/poem.txt'] },
  { name: 'sed -n 2,4p', covers: 'text', args: ['sed', '-n', '2,4p', 'text/a.txt'] },
  { name: 'sed -e script (stdin)', covers: 'stdin', args: ['sed', '-e', '/^#/d', '-e', 's/=/ is /'], stdin: '# comment\na=1\nb=2\n' },
  { name: 'awk sum', covers: 'text', args: ['awk', '-F', ',', 'NR>1 {s+=$2*$3} END {printf "%.2f\\n", s}', 'text/data.csv'] },
  { name: 'awk fields', covers: 'text', args: ['awk', '{print NR": "$1, NF}', 'text/poem.txt'] },
  { name: 'awk BEGIN math', covers: 'calc', args: ['awk', 'BEGIN {for (i=1;i<=5;i++) printf "%d %.4f\\n", i, sqrt(i); print 2^10, int(7/2), 7%3}'] },
  { name: 'grep -n', covers: 'text', args: ['grep', '-n', 'apple', 'text/words.txt'] },
  { name: 'grep -c -v', covers: 'text', args: ['grep', '-c', '-v', 'a', 'text/words.txt'] },
  { name: 'grep -r', covers: 'text', args: ['grep', '-r', 'two', 'tree'] },
  { name: 'grep no match (exit 1)', covers: 'text', args: ['grep', 'zzz', 'text/words.txt'] },
  { name: 'grep -i -o', covers: 'text', args: ['grep', '-i', '-o', 'mixed', 'text/poem.txt'] },
  { name: 'egrep alternation', covers: 'text', args: ['egrep', '^(fig|kiwi)$', 'text/words.txt'] },
  { name: 'od -c', covers: 'text', args: ['od', '-c', 'text/crlf.txt'] },
  { name: 'od -A x -t x1z', covers: 'text', args: ['od', '-A', 'x', '-t', 'x1z', 'bin/blob.bin'] },
  { name: 'hexdump -C', covers: 'text', args: ['hexdump', '-C', 'bin/blob.bin'] },
  { name: 'xxd', covers: 'text', args: ['xxd', 'text/a.txt'] },
  { name: 'xxd -p | xxd -r -p (stdin)', covers: 'stdin', args: ['xxd', '-r', '-p'], stdin: '68656c6c6f0a' },
  { name: 'fold -w 20', covers: 'text', args: ['fold', '-w', '20', 'text/poem.txt'] },
  { name: 'nl', covers: 'text', args: ['nl', 'text/poem.txt'] },
  { name: 'rev', covers: 'text', args: ['rev', 'text/a.txt'] },
  { name: 'tac', covers: 'text', args: ['tac', 'text/words.txt'] },
  { name: 'paste', covers: 'text', args: ['paste', '-d', ':', 'text/a.txt', 'text/b.txt'] },
  { name: 'diff (exit 1)', covers: 'text', args: ['diff', 'text/a.txt', 'text/b.txt'] },
  { name: 'diff -u (exit 1)', covers: 'text', args: ['diff', '-u', 'text/a.txt', 'text/b.txt'] },
  { name: 'diff -u identical (exit 0)', covers: 'text', args: ['diff', '-u', 'text/a.txt', 'text/a-copy.txt'] },
  { name: 'cmp differ (exit 1)', covers: 'text', args: ['cmp', 'text/a.txt', 'text/b.txt'] },
  { name: 'cmp -l', covers: 'text', args: ['cmp', '-l', 'text/a.txt', 'text/b.txt'] },
  { name: 'strings', covers: 'text', args: ['strings', 'bin/blob.bin'] },
  { name: 'strings -n 8', covers: 'text', args: ['strings', '-n', '8', 'bin/blob.bin'] },
  { name: 'expand/unexpand (stdin)', covers: 'stdin', args: ['expand', '-t', '4'], stdin: 'a\tb\tc\n\tindented\n' },

  // ---- hashes and encoders ----
  { name: 'md5sum', covers: 'hash', args: ['md5sum', 'text/words.txt', 'bin/random.bin'] },
  { name: 'sha1sum', covers: 'hash', args: ['sha1sum', 'bin/random.bin'] },
  { name: 'sha256sum', covers: 'hash', args: ['sha256sum', 'text/poem.txt', 'tree/a/b/c/three.dat'] },
  { name: 'sha512sum', covers: 'hash', args: ['sha512sum', 'bin/blob.bin'] },
  { name: 'sha3sum', covers: 'hash', args: ['sha3sum', 'text/a.txt'] },
  { name: 'crc32 (busybox has no cksum)', covers: 'hash', args: ['crc32', 'bin/random.bin'] },
  { name: 'md5sum -c', covers: 'hash', args: ['md5sum', '-c', 'text/sums.md5'] },
  { name: 'sha256sum (stdin)', covers: 'stdin', args: ['sha256sum'], stdin: 'piped data\n'.repeat(1000) },
  { name: 'base64', covers: 'hash', args: ['base64', 'bin/blob.bin'] },
  { name: 'base64 -d (stdin)', covers: 'stdin', args: ['base64', '-d'], stdin: 'aGVsbG8gd29ybGQK\n' },
  { name: 'uuencode', covers: 'hash', args: ['uuencode', 'text/a.txt', 'a.txt'] },

  // ---- file-system tools on granted trees ----
  { name: 'ls -la', covers: 'fs', args: ['ls', '-la', 'tree', 'links', 'perms'], extraRo: NAMES },
  { name: 'ls -lan', covers: 'fs', args: ['ls', '-lan', 'text'] },
  { name: 'ls -lR', covers: 'fs', args: ['ls', '-lR', 'tree'], extraRo: NAMES },
  { name: 'ls -1a', covers: 'fs', args: ['ls', '-1a', '.', 'tree/a'] },
  { name: 'ls -ld absolute path', covers: 'fs', args: ['ls', '-ldn', '{ro}/tree', '{ro}/links/abs-dir', '{ro}/links/abs-dir/'] },
  { name: 'ls missing (exit 1)', covers: 'fs', args: ['ls', 'nothing-here'] },
  { name: 'find .', covers: 'fs', args: ['find', '.'], cwd: 'ro/tree' },
  { name: 'find -type f -name', covers: 'fs', args: ['find', 'tree', '-type', 'f', '-name', '*.txt'] },
  { name: 'find -type l', covers: 'fs', args: ['find', 'links', '-type', 'l'] },
  { name: 'find -L -type f', covers: 'fs', args: ['find', '-L', 'links', '-type', 'f'] },
  { name: 'find -size', covers: 'fs', args: ['find', 'tree', '-size', '+1k'] },
  { name: 'du -a', covers: 'fs', args: ['du', '-a', 'tree'] },
  { name: 'du -s -k', covers: 'fs', args: ['du', '-s', '-k', 'tree', 'text'] },
  { name: 'stat', covers: 'fs', args: ['stat', 'text/a.txt', 'tree', 'links/rel-file'], extraRo: NAMES },
  { name: 'stat -L -c', covers: 'fs', args: ['stat', '-L', '-c', '%n %s %a %F %h %u %g %Y', 'links/abs-file', 'links/rel-dir', 'perms/none.txt'] },
  { name: 'realpath', covers: 'fs', args: ['realpath', 'links/rel-file', 'links/abs-dir', 'tree/a/../top.txt'] },
  { name: 'readlink', covers: 'fs', args: ['readlink', 'links/rel-file', 'links/abs-file'] },
  { name: 'readlink -f', covers: 'fs', args: ['readlink', '-f', 'links/chain', 'links/abs-dir/a/b'] },
  { name: 'cat through absolute symlink', covers: 'fs', args: ['cat', 'links/abs-file', 'links/abs-dir/top.txt'] },
  { name: 'cat through dangling symlink', covers: 'fs', args: ['cat', 'links/dangling'] },
  { name: 'cat unreadable (mode 000)', covers: 'fs', args: ['cat', 'perms/none.txt'] },
  { name: 'test -f -d -L -x', covers: 'fs', args: ['sh', '-c',
    'for p in text/a.txt tree links/rel-dir links/dangling perms/exec.sh perms/none.txt nope; do ' +
    'r=""; for o in -e -f -d -L -h -r -w -x -s; do if test $o $p; then r="$r$o"; fi; done; echo "$p:$r"; done'] },
  { name: 'test -e missing (exit 1)', covers: 'fs', args: ['test', '-e', 'nope'] },
  { name: 'head /dev/zero /dev/null', covers: 'dev', args: ['head', '-c', '100', '/dev/zero', '/dev/null'] },
  { name: 'readlink /proc/self/exe', covers: 'dev', args: ['readlink', '/proc/self/exe'] },
  { name: 'pwd in a subdirectory', covers: 'fs', args: ['pwd'], cwd: 'ro/tree/a/b' },
  { name: 'dirname/basename', covers: 'fs', args: ['dirname', '{ro}/tree/a/one.txt'], then: [['basename', '{ro}/tree/a/one.txt', '.txt']] },

  // ---- compressors to stdout ----
  { name: 'gzip -c file', covers: 'compress', args: ['gzip', '-c', 'text/poem.txt'] },
  { name: 'gzip -9 -c (stdin)', covers: 'stdin', args: ['gzip', '-9', '-c'], stdin: 'squeeze me '.repeat(500) },
  // (zcat FILE decompresses through a child process in busybox 1.35, which kvmbox refuses.)
  { name: 'gzip -dc', covers: 'compress', args: ['gzip', '-d', '-c', 'comp/hello.gz'] },
  { name: 'gunzip -c (stdin)', covers: 'stdin', args: ['gunzip', '-c'], stdin: gzipSync(Buffer.from('zipped on stdin\n'.repeat(10))) },
  { name: 'bzip2 -c', covers: 'compress', args: ['bzip2', '-c', 'bin/random.bin'] },
  { name: 'bzip2 -c | bzcat (stdin)', covers: 'stdin', args: ['bzip2', '-c'], stdin: 'bz '.repeat(2000) },
  { name: 'xz -dc', covers: 'compress', args: ['xz', '-d', '-c', 'comp/lines.xz'] },
  { name: 'xzcat (stdin)', covers: 'stdin', args: ['xzcat'],
    stdin: Buffer.from('/Td6WFoAAATm1rRGAgAhARYAAAB0L+Wj4AAqACZdADwegAUyOHQoU00T9K3ZfimujEV/kvwco8qvrLfDZ4YTSrZwueHgAAAAZEPtrXEcvxMAAUIr7GF1Th+2830BAAAAAARZWg==', 'base64') },
  { name: 'gzip -t corrupt (stdin)', covers: 'compress', args: ['gzip', '-t'], stdin: 'not gzip at all' },

  // ---- calculators ----
  { name: 'expr arithmetic', covers: 'calc', args: ['expr', '3', '+', '4', '*', '5'] },
  { name: 'expr length/match', covers: 'calc', args: ['expr', 'length', 'hello world'], then: [['expr', 'match', 'abc123', '[a-z]*'], ['expr', '7', '/', '2']] },
  { name: 'expr false (exit 1)', covers: 'calc', args: ['expr', '1', '=', '2'] },
  { name: 'expr divide by zero', covers: 'calc', args: ['expr', '1', '/', '0'] },
  { name: 'dc -e', covers: 'calc', args: ['dc', '-e', '2 10 ^ p 17 3 / p 5 k 1 3 / p'] },
  { name: 'dc (stdin)', covers: 'stdin', args: ['dc'], stdin: '1 2 + p 3 * p\n' },
  { name: 'bc (stdin)', covers: 'stdin', args: ['bc'], stdin: 'scale=20\n4*a(1)\n2^64\n1/7\n' },
  { name: 'bc -l sqrt', covers: 'calc', args: ['bc', '-l'], stdin: 'sqrt(2)\ne(1)\n' },
  { name: 'seq', covers: 'calc', args: ['seq', '1', '15'] },
  { name: 'seq -s -w', covers: 'calc', args: ['seq', '-s', ',', '-w', '5', '3', '50'] },
  { name: 'factor', covers: 'calc', args: ['factor', '360', '9973', '1234567890', '18446744073709551615'] },
  { name: 'printf', covers: 'calc', args: ['printf', '%05d|%-6s|%x|%o|%.3e\\n', '42', 'ab', '255', '8', '12345.678'] },
  { name: 'sh arithmetic and loops', covers: 'calc', args: ['sh', '-c', 'i=0; s=0; while [ $i -lt 100 ]; do i=$((i+1)); s=$((s+i*i)); done; echo $s'] },

  // ---- pipelines fed on stdin ----
  { name: 'sort (stdin)', covers: 'stdin', args: ['sort'], stdin: SORT_INPUT },
  { name: 'sort -r | head (stdin)', covers: 'stdin', args: ['sort', '-r'], stdin: SORT_INPUT },
  { name: 'wc -l (stdin)', covers: 'stdin', args: ['wc', '-l'], stdin: 'x\n'.repeat(12345) },
  { name: 'cat large (stdin)', covers: 'stdin', args: ['cat'], stdin: Buffer.concat([Buffer.from('big\n'), Buffer.alloc(300_000, 0x61)]) },
  { name: 'awk (stdin)', covers: 'stdin', args: ['awk', '{n[$1]++} END {print n["alpha"], n["echo"], NR}'], stdin: SORT_INPUT },
  { name: 'tee /dev/null (stdin)', covers: 'stdin', args: ['tee', '/dev/null'], stdin: 'tee me\n' },
  { name: 'head -n 1 (stdin)', covers: 'stdin', args: ['head', '-n', '1'], stdin: 'first\nsecond\n' },

  // ---- writes into a --rw directory, compared as trees ----
  { name: 'mkdir -p', covers: 'write', cwd: 'rw', rw: {}, args: ['mkdir', '-p', 'a/b/c', 'x/y'] },
  { name: 'mkdir existing (exit 1)', covers: 'write', cwd: 'rw', rw: { d: { dir: true } }, args: ['mkdir', 'd'] },
  { name: 'cp file', covers: 'write', cwd: 'rw', rw: {}, args: ['cp', '../ro/text/poem.txt', 'poem.txt'] },
  { name: 'cp -r tree', covers: 'write', cwd: 'rw', rw: {}, args: ['cp', '-r', '../ro/tree', 'copy'] },
  { name: 'cp -a (modes, times, links)', covers: 'write', cwd: 'rw', rw: {}, compareMtime: true,
    args: ['cp', '-a', '../ro/tree', '../ro/links', '../ro/perms', '.'] },
  { name: 'mv file and dir', covers: 'write', cwd: 'rw', rw: { 'f.txt': 'f\n', 'd/inner.txt': 'i\n' }, args: ['mv', 'f.txt', 'g.txt'], then: [['mv', 'd', 'e'], ['ls', '-R']] },
  { name: 'rm -r', covers: 'write', cwd: 'rw', rw: { 'keep.txt': 'k\n', 'gone/a/b/c.txt': 'c\n', 'gone/d.txt': 'd\n', 'gone/l': { symlink: '../keep.txt' } }, args: ['rm', '-r', 'gone'] },
  { name: 'rm missing (exit 1)', covers: 'write', cwd: 'rw', rw: {}, args: ['rm', 'nope'] },
  { name: 'rmdir non-empty (exit 1)', covers: 'write', cwd: 'rw', rw: { 'd/f': 'x' }, args: ['rmdir', 'd'] },
  { name: 'ln -s and ln', covers: 'write', cwd: 'rw', rw: { 'target.txt': 't\n' },
    args: ['ln', '-s', 'target.txt', 'rel'],
    then: [['ln', '-s', '{rw}/target.txt', 'abs'], ['ln', 'target.txt', 'hard'], ['cat', 'abs', 'hard', 'rel'], ['stat', '-c', '%N %h %u %g %A', 'rel', 'abs', 'hard'],
      ['ln', '-s', 'target.txt', 'rel'], ['ln', '-sf', 'hard', 'rel'], ['readlink', 'rel']] },
  { name: 'touch -d and touch new', covers: 'write', cwd: 'rw', rw: { 'old.txt': 'o\n' }, compareMtime: true,
    args: ['touch', '-d', '2001-02-03 04:05:06', 'old.txt', 'new.txt'] },
  { name: 'chmod', covers: 'write', cwd: 'rw', rw: { 'a': 'a', 'b': 'b', 'd/c': 'c' }, args: ['chmod', '600', 'a'], then: [['chmod', 'u+x,g-r', 'b'], ['chmod', '-R', 'go-rwx', 'd'], ['ls', '-ln', 'a', 'b', 'd']] },
  { name: 'tar c to stdout', covers: 'write', args: ['tar', '-c', '-f', '-', 'tree', 'links'], extraRo: NAMES },
  { name: 'tar cf then xf', covers: 'write', cwd: 'rw', rw: {}, compareMtime: true, extraRo: NAMES,
    args: ['tar', 'cf', 't.tar', '-C', '../ro', 'tree', 'text'], then: [['mkdir', 'out'], ['tar', 'xf', 't.tar', '-C', 'out'], ['tar', 'tvf', 't.tar']] },
  // (tar -z runs gzip as a child process, which kvmbox refuses: compress and extract in steps.)
  { name: 'tar c, gzip, gunzip, tar x', covers: 'write', cwd: 'rw', rw: {}, compareMtime: true,
    args: ['tar', 'cf', 't.tar', '-C', '../ro', 'links', 'perms'], then: [['gzip', 't.tar'], ['gunzip', 't.tar.gz'], ['tar', 'xf', 't.tar'], ['rm', 't.tar']] },
  { name: 'gzip -k', covers: 'write', cwd: 'rw', rw: { 'p.txt': 'zip me\n'.repeat(100) }, args: ['gzip', '-k', 'p.txt'] },
  { name: 'gzip then gunzip', covers: 'write', cwd: 'rw', rw: { 'p.txt': 'round trip\n'.repeat(50) }, args: ['gzip', 'p.txt'], then: [['ls'], ['gunzip', 'p.txt.gz']] },
  { name: 'shell redirections', covers: 'write', cwd: 'rw', rw: {},
    args: ['sh', '-c', 'echo one > f; echo two >> f; printf x >> f; while read -r l; do echo "[$l]"; done < f; echo err 1>&2; exec 3<f; read -r l <&3; echo "$l"; echo "$(( 5 + 1 ))"; set -- a b c; echo $# "$@"'] },
  { name: 'dd', covers: 'write', cwd: 'rw', rw: {}, args: ['dd', 'if=../ro/bin/random.bin', 'of=part.bin', 'bs=100', 'skip=2', 'count=5'] },
  { name: 'sed -i', covers: 'write', cwd: 'rw', rw: { 's.txt': 'a=1\nb=2\n' }, args: ['sed', '-i', 's/=/: /', 's.txt'] },
  { name: 'truncate', covers: 'write', cwd: 'rw', rw: { 'big': 'x'.repeat(1000) }, args: ['truncate', '-s', '100', 'big'] },
];
