// How grants are set up, on the host alone (no KVM): a grant given by the user is opened when
// the sandbox is made, so a missing path is a GrantError then; --system's grants are opened when
// the guest first reaches them (GrantSpec.lazy), and the list of them is worked out once while
// the host's system does not change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GrantError, Vfs } from '../src/fs/vfs.js';
import { Errno, E } from '../src/abi/linux.js';
import { systemGrants, SYSTEM_GRANTS } from '../src/fs/system.js';

test('a missing path: a GrantError at set-up when given by the user, ENOENT at first use when lazy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-grants-'));
  try {
    const gone = join(dir, 'gone');
    assert.throws(() => new Vfs([{ path: gone, writable: false }]), (e: unknown) => e instanceof GrantError && /cannot grant .*gone: ENOENT/.test(e.message));
    const vfs = new Vfs([{ path: gone, writable: false, lazy: true }]);
    try {
      const comps = gone.split('/').filter(Boolean);
      assert.throws(() => vfs.openRegular(gone), (e: unknown) => e instanceof Errno && e.errno === E.ENOENT);
      // Made after the sandbox: the lazy grant opens it at its first use, and knows its real path.
      writeFileSync(join(dir, 'real'), 'x');
      symlinkSync('real', gone);
      const f = vfs.openRegular(gone);
      assert.equal(f.size, 1);
      const g = vfs.grants.find((x) => x.guestPath === '/' + comps.join('/'))!;
      assert.equal(g.isDir, false);
      assert.equal(g.realPath, realpathSync(gone));
    } finally {
      vfs.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--system: the same list on every call while nothing changed, and a copy each time', () => {
  const a = systemGrants();
  assert.ok(a.includes('/usr'), a.join(' '));
  a.push('/root');
  const b = systemGrants();
  assert.ok(!b.includes('/root'));
  assert.deepEqual(systemGrants(), b);
  for (const p of b) assert.ok(SYSTEM_GRANTS.includes(p) || /^\/etc\/(python3\.\d+|java-\d+-openjdk|ImageMagick-\d+)$/.test(p), p);
});
