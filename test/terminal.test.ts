// kvmbox on a terminal: the CLI run with its standard streams on a pseudo-terminal (python3's
// pty module makes one), as a user at a shell runs it. The program sees its terminal as /dev/tty
// (ttyname finds it), and the terminal's session and foreground process group are the sandbox's
// own (tcgetpgrp, tcsetpgrp, tcgetsid), so a shell's job control works; nothing of the host
// terminal's device or process groups shows. test/programs/tty.c is compared with its native run
// on a pseudo-terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BIN, PROGRAMS_DIR } from './helpers.js';

const PYTHON = '/usr/bin/python3';

/**
 * Run argv with its standard streams on a new pseudo-terminal, writing `input` to it once the
 * program has started; what the terminal showed (with its \r\n), and the exit status.
 */
function onPty(argv: readonly string[], input = ''): { out: string; status: number } {
  const driver = String.raw`
import os, pty, sys, time, json
argv, data = json.loads(sys.argv[1]), sys.argv[2].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
if data:
    time.sleep(0.5)
    os.write(fd, data)
out = b''
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'out': out.decode(errors='replace'), 'status': os.waitstatus_to_exitcode(st)}))
`;
  const r = spawnSync(PYTHON, ['-c', driver, JSON.stringify(argv), input], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `the pty driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { out: string; status: number };
}

const hasPty = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import os; os.close(os.openpty()[0])']).status === 0;
const skip = hasPty ? false : 'no pseudo-terminals here (python3, /dev/ptmx)';

test('on a terminal: ttyname, /dev/tty, the foreground group and session, tcsetpgrp as natively', { skip }, () => {
  const prog = `${PROGRAMS_DIR}/tty.glibc`;
  const native = onPty([prog]);
  assert.equal(native.status, 0, native.out);
  const guest = onPty([process.execPath, BIN, 'run', '--ro', prog, '--', prog]);
  assert.equal(guest.out, native.out);
  assert.equal(guest.status, 0, guest.out);
  assert.match(guest.out, /^ttyname: a \/dev path\r$/m);
  assert.match(guest.out, /^child: foreground group is the child's: yes\r$/m);
});

test('bash -i on a terminal has job control: no warning, a foreground job, its status', { skip }, () => {
  const input = 'sleep 0.1; echo "answer $((6 * 7))"\nexit 5\n';
  const r = onPty([process.execPath, BIN, 'run', '--system', '--env', 'TERM=dumb', '--env', 'PS1=$ ', '--', '/bin/bash', '--norc', '-i'], input);
  assert.equal(r.status, 5, r.out);
  assert.match(r.out, /^answer 42\r$/m);
  assert.doesNotMatch(r.out, /job control|ioctl/);
});
