// The busybox conformance suite: every case of test/conformance/cases.ts runs natively and in
// kvmbox, and must give the same stdout, stderr, exit status (and tree, for write cases).
// Then the security invariants of the file system: writes outside --rw grants fail and change
// nothing on the host.
// Needs test/programs/out/busybox (scripts/build-test-programs.mjs copies Debian's busybox-static).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run } from '../src/index.js';
import { CASES, ENV } from './conformance/cases.js';
import { createFixture, removeFixture, snapshot, type Fixture } from './conformance/fixture.js';
import { passTable, runCase, show, type Verdict } from './conformance/harness.js';

const BUSYBOX = fileURLToPath(new URL('../../test/programs/out/busybox', import.meta.url));
const skip = existsSync(BUSYBOX) ? false : 'test/programs/out/busybox missing: apt-get install busybox-static, then node scripts/build-test-programs.mjs';

let fixture: Fixture;
const verdicts: Verdict[] = [];
before(() => { fixture = createFixture(); });
after(() => {
  if (fixture) removeFixture(fixture);
  if (verdicts.length) console.log('\n' + passTable(verdicts));
});

const names = new Set<string>();
for (const c of CASES) {
  if (names.has(c.name)) throw new Error(`duplicate conformance case name: ${c.name}`);
  names.add(c.name);
  test(`busybox ${c.name}`, { skip }, () => {
    const v = runCase(BUSYBOX, c, fixture);
    verdicts.push(v);
    assert.ok(v.pass, `${c.args.join(' ')}\n${v.diffs.join('\n')}\nnative stdout ${show(v.native.stdout)}\nkvmbox stdout ${show(v.guest.stdout)}\nkvmbox stderr ${show(v.guest.stderr)}`);
  });
}

// ---- writes outside --rw grants ----

function guest(script: string, opts: { rw?: string[] } = {}) {
  return run(BUSYBOX, ['sh', '-c', script], {
    ro: [fixture.ro], rw: opts.rw ?? [], cwd: fixture.ro, env: ENV, stdout: 'capture', stderr: 'capture', timeoutSeconds: 60,
  });
}

test('writes into a read-only grant fail with EROFS and change nothing', { skip }, () => {
  const before = snapshot(fixture.ro, { mtimes: true });
  const r = guest([
    'echo x > new.txt', 'echo x >> text/a.txt', 'mkdir d', 'rm text/a.txt', 'rmdir tree/empty-dir', 'touch text/a.txt',
    'chmod 777 text/a.txt', 'ln -s a text/l', 'mv text/a.txt text/z.txt', 'truncate -s 0 text/a.txt',
  ].map((s) => `${s} 2>&1 | true; ${s} 2>/dev/null; echo "$?"`).join('; '));
  void r;
  const r2 = guest('for c in "echo x > new.txt" "mkdir d" "rm text/a.txt" "touch text/a.txt" "chmod 777 text/a.txt" "ln -s a text/l" "mv text/a.txt text/z.txt" "rmdir tree/empty-dir"; do eval "$c"; done');
  assert.deepEqual(snapshot(fixture.ro, { mtimes: true }), before);
  const err = r2.stderr.toString();
  assert.match(err, /Read-only file system/, err);
  assert.doesNotMatch(err, /Permission denied|No such file/, err);
});

test('the virtual directories above a grant are read-only', { skip }, () => {
  const r = guest('mkdir /newdir; echo x > /tmp/x; touch /etc; echo done');
  assert.equal(r.stdout.toString(), 'done\n');
  assert.match(r.stderr.toString(), /Read-only file system/);
  assert.ok(!existsSync('/newdir'));
});

test('paths outside every grant do not exist', { skip }, () => {
  const r = guest('cat /etc/hostname; ls /; cat links/outside; cd ..; pwd; ls', { rw: [] });
  const err = r.stderr.toString();
  assert.match(err, /can't open '\/etc\/hostname': No such file or directory/);
  assert.match(err, /can't open 'links\/outside': No such file or directory/);
  // `ls /` shows only the first component of the grant's path.
  const top = fixture.base.split('/').filter(Boolean)[0]!;
  assert.ok(r.stdout.toString().startsWith(`${top}\n`), r.stdout.toString());
  assert.ok(readdirSync(fixture.ro).length > 0);
});
