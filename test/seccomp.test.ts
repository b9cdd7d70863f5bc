// seccomp (src/linux/seccomp.ts): test/programs/seccomp.c installs filters and strict mode in
// children of its own and prints what each action did; the output in the sandbox must be the
// native one, line for line, for glibc, musl and static-PIE. Lines that depend on who runs the
// program ("priv:") are checked against what the guest's unprivileged user gets. Before:
// seccomp was ENOSYS and PR_SET_SECCOMP EINVAL, so a program that sandboxes itself ran unfiltered
// or refused to run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runSync as run } from '../src/index.js';
import { PROGRAMS_DIR, VARIANTS } from './helpers.js';

const UNPRIVILEGED = [
  'priv: at the start: PR_GET_SECCOMP 0, PR_GET_NO_NEW_PRIVS 0, filters 0',
  'priv: without no_new_privs: EACCES',
];

for (const v of VARIANTS) {
  test(`${v}: seccomp filters and strict mode act as natively`, () => {
    const path = `${PROGRAMS_DIR}/seccomp.${v}`;
    const native = spawnSync(path, [path], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(native.status, 0, native.stderr);
    const r = run(path, [path], { ro: [PROGRAMS_DIR], timeoutSeconds: 120 });
    const out = r.stdout.toString();
    const portable = (text: string) => text.split('\n').filter((l) => !l.startsWith('priv: ')).join('\n');
    assert.equal(portable(out), portable(native.stdout), `${v}: ${r.stderr.toString()}`);
    assert.deepEqual(out.split('\n').filter((l) => l.startsWith('priv: ')), UNPRIVILEGED);
    assert.equal(r.exitStatus, 0);
  });
}

// A real program that sandboxes itself: universal-ctags' sandbox mode loads a libseccomp filter
// (seccomp(SECCOMP_SET_MODE_FILTER) after libseccomp's probes), then tags what comes on stdin and
// refuses a request that would open a file. scripts/deps.sh installs universal-ctags.
test('universal-ctags --_interactive=sandbox runs under its own libseccomp filter, as natively', () => {
  const src = 'int main(void) { return 0; }\nstatic int helper;\n';
  for (const input of [`{"command":"generate-tags","filename":"a.c","size":${src.length}}\n${src}`,
    '{"command":"generate-tags","filename":"/etc/passwd"}\n']) {
    const native = spawnSync('ctags', ['--_interactive=sandbox'], { input, encoding: 'utf8' });
    assert.equal(native.status, 0, native.stderr);
    const calls: string[] = [];
    const r = run('/usr/bin/ctags', ['--_interactive=sandbox'], { system: true, stdin: input, timeoutSeconds: 120, trace: (l) => calls.push(l) });
    assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
    assert.equal(r.exitStatus, 0);
    assert.ok(calls.some((l) => /seccomp\(0x1, 0x0, 0x[0-9a-f]+\) = 0/.test(l)), 'the filter was installed');
  }
});
