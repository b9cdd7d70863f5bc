// The system-call fuzzer (issue 12, item 7): test/programs/fuzz-syscalls.c makes random system
// calls with hostile arguments, the same ones for the same seed. Whatever it does, the host
// serves it: the run ends with the program's own exit status (no kvmbox error, no exception),
// and nothing outside the read-write grant changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run } from '../src/index.js';
import { PROGRAMS_DIR, treeSnapshot } from './helpers.js';

/** Seeds and calls per seed: a fixed budget (a few minutes in the emulated lane). */
const SEEDS = [1, 2, 3, 4, 5, 6];
const CALLS = 2500;


for (const variant of ['glibc', 'musl'] as const) {
  test(`random system calls with hostile arguments: no host error, nothing outside the grant changes (${variant})`, () => {
    const top = mkdtempSync(join(tmpdir(), 'kvmbox-fuzz-'));
    try {
      const ro = join(top, 'ro'), outside = join(top, 'outside');
      // A read-write grant per seed: what one run did to its grant (chmod 0 of the directory
      // itself, say) is no concern of the next.
      const rws = SEEDS.map((seed) => join(top, `rw${seed}`));
      for (const d of [...rws, ro, join(ro, 'sub'), outside]) mkdirSync(d);
      writeFileSync(join(ro, 'file'), 'read-only contents\n');
      writeFileSync(join(ro, 'sub', 'deep'), 'deep\n');
      writeFileSync(join(outside, 'secret'), 'not granted\n');
      for (const rw of rws) writeFileSync(join(rw, 'f0'), 'scratch\n');
      const before = treeSnapshot(ro) + treeSnapshot(outside);
      const topBefore = readdirSync(top).sort().join(',');
      for (const [i, seed] of SEEDS.entries()) {
        const rw = rws[i]!;
        const r = run(`${PROGRAMS_DIR}/fuzz-syscalls.${variant}`, [String(seed), String(CALLS), rw, ro, outside], {
          rw: [rw], ro: [ro], timeoutSeconds: 300, memoryMiB: 64,
        });
        const err = r.stderr.toString();
        assert.equal(r.reason.kind, 'exited', `seed ${seed}: ${err.slice(-2000)}`);
        assert.equal(r.exitStatus, 0, `seed ${seed}: ${err.slice(-2000)}`);
        assert.doesNotMatch(err, /internal error|kvmbox:/, `seed ${seed}`);
      }
      assert.equal(treeSnapshot(ro) + treeSnapshot(outside), before, 'the read-only grant and the ungranted directory are unchanged');
      assert.equal(readdirSync(top).sort().join(','), topBefore, 'nothing was created beside the grants');
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
}
