// kvmbox on a terminal: the CLI run with its standard streams on a pseudo-terminal (python3's
// pty module makes one), as a user at a shell runs it. The program sees its terminal as /dev/tty
// (ttyname finds it), and the terminal's session and foreground process group are the sandbox's
// own (tcgetpgrp, tcsetpgrp, tcgetsid), so a shell's job control works; nothing of the host
// terminal's device or process groups shows. test/programs/tty.c is compared with its native run
// on a pseudo-terminal. A program may set the terminal's modes (test/programs/rawkeys.c reads
// keys one at a time without echo), kvmbox puts them back at its end, and Ctrl-C reaches the
// sandbox's foreground process group as SIGINT: a handler in rawkeys.c, python3's
// KeyboardInterrupt, a foreground job of bash -i. A background group that changes the terminal is
// stopped by SIGTTOU (test/programs/bgterm.c).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { BIN, PROGRAMS_DIR } from './helpers.js';

const PYTHON = '/usr/bin/python3';

type Step = ['expect', string] | ['send', string] | ['sleep', number] | ['until', string, string];

/**
 * Run argv with its standard streams on a new pseudo-terminal, going through steps: 'expect'
 * waits until the terminal has shown the text (at most 120 s), 'send' types the text, 'sleep'
 * waits, 'until' types its second text every 2 s until the terminal has shown the first (at
 * most 120 s: for what a loaded host may take a while to reach). Returns what the terminal showed (with its \r\n), the exit status, and whether the
 * terminal's modes at the end are a new terminal's (what it had before the program started).
 * A program still running 240 s after the last step is killed, and the output says so.
 */
function onPtySteps(argv: readonly string[], steps: readonly Step[]): { out: string; status: number; modesAsNew: boolean } {
  const driver = String.raw`
import os, pty, sys, time, json, select, termios
argv, steps = json.loads(sys.argv[1]), json.loads(sys.argv[2])
m, s = os.openpty()
fresh = termios.tcgetattr(s)
os.close(m); os.close(s)
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b''
def more(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return True
    try:
        d = os.read(fd, 4096)
    except OSError:
        return False
    out += d
    return bool(d)
for step in steps:
    op, arg = step[0], step[1]
    if op == 'expect':
        end = time.time() + 120
        while arg.encode() not in out and time.time() < end:
            if not more(0.5):
                break
    elif op == 'send':
        try:
            os.write(fd, arg.encode())
        except OSError:
            pass
    elif op == 'sleep':
        time.sleep(arg)
    elif op == 'until':
        end = time.time() + 120
        while time.time() < end and arg.encode() not in out:
            os.write(fd, step[2].encode())
            stop = time.time() + 2
            while time.time() < stop and arg.encode() not in out and more(0.5):
                pass
end = time.time() + 240
while time.time() < end and more(1):
    pass
if time.time() >= end:
    out += b'\n[driver: still running after the steps; killed]'
    os.killpg(pid, 9)
_, st = os.waitpid(pid, 0)
modes = termios.tcgetattr(fd)
sys.stdout.write(json.dumps({'out': out.decode(errors='replace'), 'status': os.waitstatus_to_exitcode(st), 'modesAsNew': modes == fresh}))
`;
  const r = spawnSync(PYTHON, ['-c', driver, JSON.stringify(argv), JSON.stringify(steps)], { encoding: 'utf8', timeout: 400_000 });
  assert.equal(r.status, 0, `the pty driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { out: string; status: number; modesAsNew: boolean };
}

/** onPtySteps with input typed once the program has had half a second to start. */
function onPty(argv: readonly string[], input = ''): { out: string; status: number } {
  return onPtySteps(argv, input ? [['sleep', 0.5], ['send', input]] : []);
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

test('raw keys: tcsetattr, Ctrl-C to a handler, modes put back at the end, as natively', { skip }, () => {
  const prog = `${PROGRAMS_DIR}/rawkeys.glibc`;
  const steps: Step[] = [['expect', 'ready'], ['send', 'a'], ['expect', 'key 97\r\n'], ['send', '\x03'], ['expect', 'EINTR'], ['send', 'q']];
  // Ctrl-C also flushes the terminal's output queue (ISIG without NOFLSH): each key is sent only
  // once the program's line for the last one has arrived whole.
  const native = onPtySteps([prog], steps);
  assert.equal(native.status, 0, native.out);
  assert.match(native.out, /^wait: EINTR after signal 2\r$/m);
  for (const p of [prog, `${PROGRAMS_DIR}/rawkeys.musl`]) {
    const guest = onPtySteps([process.execPath, BIN, 'run', '--ro', p, '--', p], steps);
    assert.equal(guest.out, native.out, p);
    assert.equal(guest.status, 0, guest.out);
    assert.ok(guest.modesAsNew, 'the terminal\'s modes after the run');
  }
  // A program that leaves the terminal raw: kvmbox puts the modes back (natively they stay raw).
  const left = onPtySteps([prog, 'leave'], steps);
  assert.equal(left.status, 4, left.out);
  assert.ok(!left.modesAsNew, 'natively, the modes stay as the program left them');
  const guest = onPtySteps([process.execPath, BIN, 'run', '--ro', prog, '--', prog, 'leave'], steps);
  assert.equal(guest.status, 4, guest.out);
  assert.equal(guest.out, left.out);
  assert.ok(guest.modesAsNew, 'kvmbox put the modes back');
});

test('Ctrl-C: python3 gets KeyboardInterrupt, bash -i ends its foreground job and goes on', { skip }, () => {
  const py = 'import time\ntry:\n    print("sleeping", flush=True)\n    time.sleep(120)\nexcept KeyboardInterrupt:\n    print("interrupted")\n';
  const r = onPtySteps([process.execPath, BIN, 'run', '--system', '--', '/usr/bin/python3', '-c', py],
    [['expect', 'sleeping'], ['sleep', 0.5], ['send', '\x03']]);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /interrupted\r$/m);
  const b = onPtySteps([process.execPath, BIN, 'run', '--system', '--env', 'TERM=dumb', '--env', 'PS1=$ ', '--', '/bin/bash', '--norc', '-i'],
    [['expect', '$ '], ['send', 'echo go; sleep 100; echo not reached\n'], ['expect', 'go\r\n'], ['sleep', 2], ['send', '\x03'], ['sleep', 0.5],
      ['send', 'echo "after $?"\n'], ['expect', 'after 130'], ['send', 'exit 6\n']]);
  assert.equal(b.status, 6, b.out);
  assert.match(b.out, /^after 130/m);
  assert.doesNotMatch(b.out, /^not reached\r$/m);
});

test('a program that stops itself stops kvmbox: the shell reports it, fg continues both, as natively', { skip }, () => {
  const prog = `${PROGRAMS_DIR}/outside.glibc`;
  const shell = (cmd: string) => onPtySteps(['/usr/bin/env', 'PS1=$ ', 'TERM=dumb', '/bin/bash', '--norc', '-i'],
    [['expect', '$ '], ['send', `${cmd}\n`], ['expect', 'Stopped'], ['send', 'fg\n'], ['expect', 'continued'],
      ['send', 'echo "status $?"\n'], ['expect', 'status '], ['send', 'exit\n'], ['sleep', 1], ['send', 'exit\n']]);
  const native = shell(`${prog} stop`);
  assert.match(native.out, /^stopping\r$/m);
  assert.match(native.out, /Stopped/);
  assert.match(native.out, /^continued/m);
  assert.match(native.out, /^status 0\r$/m);
  const guest = shell(`${process.execPath} ${BIN} run --ro ${prog} -- ${prog} stop`);
  assert.match(guest.out, /^stopping\r$/m);
  assert.match(guest.out, /Stopped/);
  assert.match(guest.out, /^continued/m);
  assert.match(guest.out, /^status 0\r$/m);
});

test('bash -i: a background job that reads the terminal stops (SIGTTIN), and fg gives it the terminal', { skip }, () => {
  // bash reports the stop at its next prompt: an empty line after the job had time to stop.
  const steps: Step[] = [['expect', '$ '], ['send', 'cat &\n'], ['sleep', 2], ['until', 'Stopped', '\n'], ['send', 'fg\n'], ['sleep', 1],
    ['send', 'typed\n'], ['expect', 'typed\r\ntyped'], ['send', '\x04'], ['sleep', 0.5], ['send', 'echo "st $?"\n'], ['expect', 'st '],
    ['send', 'exit\n']];
  for (const argv of [['/usr/bin/env', 'PS1=$ ', 'TERM=dumb', '/bin/bash', '--norc', '-i'],
    [process.execPath, BIN, 'run', '--system', '--env', 'TERM=dumb', '--env', 'PS1=$ ', '--', '/bin/bash', '--norc', '-i']]) {
    const r = onPtySteps(argv, steps);
    assert.match(r.out, /Stopped\s+cat/, r.out);
    assert.match(r.out, /^typed\r\ntyped\r$/m, r.out);
    assert.match(r.out, /^st 0/m, r.out);
    assert.equal(r.status, 0, r.out);
  }
});

test('a background group that changes the terminal, or writes to it under TOSTOP, is stopped by SIGTTOU, as natively', { skip }, () => {
  const prog = `${PROGRAMS_DIR}/bgterm.glibc`;
  const native = onPty([prog]);
  assert.equal(native.status, 0, native.out);
  assert.match(native.out, /^case 1: child stopped by SIGTTOU\r$/m);
  assert.match(native.out, /^case 2: child stopped by SIGTTOU\r$/m);
  for (const p of [prog, `${PROGRAMS_DIR}/bgterm.musl`]) {
    // Before: the background child's tcsetattr and TOSTOP write went through at once.
    const guest = onPty([process.execPath, BIN, 'run', '--ro', p, '--', p]);
    assert.equal(guest.out, native.out, p);
    assert.equal(guest.status, 0, guest.out);
  }
});

// test/programs/pty.c: the sandbox's own pseudo-terminals (/dev/ptmx, /dev/pts/N): the line
// discipline between master and slave, a child's controlling terminal with ^C and a new window
// size, openpty, EIO at the master once the slaves are closed. Before: /dev/ptmx was ENOENT
// (`script` failed with "failed to create pseudo-terminal").
test('pseudo-terminals inside the sandbox: posix_openpt, the line discipline, a controlling terminal, as natively', { skip }, () => {
  for (const v of ['glibc', 'musl', 'pie']) {
    const prog = `${PROGRAMS_DIR}/pty.${v}`;
    const native = spawnSync(prog, [], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(native.status, 0, native.stderr);
    const guest = spawnSync(process.execPath, [BIN, 'run', '--ro', prog, '--', prog], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(guest.stdout, native.stdout, `${v}: ${guest.stderr}`);
    assert.equal(guest.status, 0, guest.stderr);
  }
  // Real programs on them: util-linux's script (openpty, signalfd, a shell on the slave) and
  // python3's pty.spawn.
  const cmd = 'script -qc \'echo in-script; test -t 0 && echo "stdin is a terminal"; exit 3\' /dev/null; echo "script $?"; ' +
    'python3 -c \'import pty; pty.spawn(["sh", "-c", "tty >/dev/null && echo spawned on a terminal"])\'';
  const native = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', timeout: 60_000 });
  assert.match(native.stdout, /^in-script\r\nstdin is a terminal\r\nscript 0\nspawned on a terminal\r\n$/);
  const guest = spawnSync(process.execPath, [BIN, 'run', '--system', '--', '/bin/sh', '-c', cmd], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(guest.stdout, native.stdout, guest.stderr);
  // Job control on the sandbox's own pty: test/programs/bgterm.c run by script on one (its
  // background child stopped by SIGTTOU). Before: the child's calls went through at once.
  const bg = `${PROGRAMS_DIR}/bgterm.glibc`;
  const nativeBg = spawnSync('/usr/bin/script', ['-qc', bg, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
  assert.match(nativeBg.stdout, /^case 1: child stopped by SIGTTOU\r$/m);
  const guestBg = spawnSync(process.execPath, [BIN, 'run', '--system', '--ro', bg, '--', '/usr/bin/script', '-qc', bg, '/dev/null'],
    { encoding: 'utf8', timeout: 120_000 });
  assert.equal(guestBg.stdout, nativeBg.stdout, guestBg.stderr);
});

test('programs that take the terminal raw: less and top quit on q, python3\'s REPL edits a line and takes Ctrl-C', { skip }, () => {
  const src = dirname(PROGRAMS_DIR);
  const kv = [process.execPath, BIN, 'run', '--system', '--ro', src, '--env', 'TERM=xterm', '--'];
  // Before: less waited for Enter after q, top failed ("failed tty set"), Ctrl-C ended the sandbox.
  const less = onPtySteps([...kv, '/usr/bin/less', `${src}/rawkeys.c`], [['expect', 'Keys one at a time'], ['send', 'q']]);
  assert.equal(less.status, 0, less.out);
  assert.ok(less.modesAsNew);
  const top = onPtySteps([...kv, '/usr/bin/top'], [['expect', 'PID'], ['send', 'q']]);
  assert.equal(top.status, 0, top.out);
  assert.ok(top.modesAsNew);
  const py = onPtySteps([...kv, '/usr/bin/python3', '-q'],
    [['expect', '>>> '], ['send', 'print(6*8)\x7f\x7f7)\r'], ['expect', '42\r\n>>> '], ['sleep', 0.5], ['send', '\x03'],
      ['expect', 'KeyboardInterrupt'], ['send', 'exit()\r']]);
  assert.equal(py.status, 0, py.out);
  assert.match(py.out, /^42\r$/m);
  assert.ok(py.modesAsNew);
});

test('Ctrl-Z: stops a program and kvmbox with it under the host\'s shell; a bash -i inside stops its job', { skip }, () => {
  const kv = `${process.execPath} ${BIN} run --system --`;
  const steps = (cmd: string): Step[] => [['expect', '$ '], ['send', `${cmd}\n`], ['expect', 'go\r\n'], ['sleep', 1], ['send', '\x1a'],
    ['expect', 'Stopped'], ['send', 'fg\n'], ['sleep', 1], ['send', '\x03'], ['sleep', 0.5], ['send', 'echo "st $?"\n'], ['expect', 'st '],
    ['send', 'exit\n'], ['sleep', 1], ['send', 'exit\n']];
  const host = ['/usr/bin/env', 'PS1=$ ', 'TERM=dumb', '/bin/bash', '--norc', '-i'];
  const native = onPtySteps(host, steps('/bin/sh -c "echo go; exec sleep 60"'));
  assert.match(native.out, /Stopped/);
  assert.match(native.out, /^st 130/m, native.out);
  const guest = onPtySteps(host, steps(`${kv} /bin/sh -c "echo go; exec sleep 60"`));
  assert.match(guest.out, /Stopped/, guest.out);
  assert.match(guest.out, /^st 130/m, guest.out);
  const inside = onPtySteps([process.execPath, BIN, 'run', '--system', '--env', 'TERM=dumb', '--env', 'PS1=$ ', '--', '/bin/bash', '--norc', '-i'],
    steps('echo go; sleep 60'));
  assert.match(inside.out, /Stopped\s+sleep 60/, inside.out);
  assert.match(inside.out, /^st 130/m, inside.out);
  assert.equal(inside.status, 0, inside.out);
});
