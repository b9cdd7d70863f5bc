// Real programs with threads (issue 16, item 5): the host's own python3 (threading with a Lock
// and a Condition, queue.Queue, concurrent.futures), perl (ithreads), xz, zstd and sort with
// worker threads, java, go, sqlite3 (PRAGMA threads: the sorter's worker threads) and node (worker_threads),
// each run in kvmbox with the system granted and natively with the same argv and environment;
// the outputs must be the same. Each prints only deterministic results (no timings, no thread
// ids), and each traced run must show the threads it made ('pid.tid' in --trace).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync as run, type RunOptions, type RunResult } from '../src/index.js';
import { firstDifference, onUserStubPath, PROGRAMS_DIR, ROOT } from './helpers.js';
import { addressSpan } from '../src/machine/machine.js';

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'HOME=/'];
/** Generous: the software-emulated lane is 10-50x slower than real KVM. */
const TIMEOUT_S = 240;

const work = mkdtempSync(join(tmpdir(), 'kvmbox-threaded-'));
after(() => rmSync(work, { recursive: true, force: true }));

function show(r: RunResult, trace: string[] = []): string {
  const tail = trace.length ? `\ntrace (last 120 of ${trace.length} lines):\n${trace.slice(-120).join('\n')}` : '';
  return `status ${r.exitStatus} (${r.reason.kind})\nstdout:\n${r.stdout.toString().slice(-3000)}\nstderr:\n${r.stderr.toString().slice(-3000)}${tail}`;
}

interface NativeResult { status: number | null; stdout: string; stderr: string }

function native(program: string, args: readonly string[], env: readonly string[], stdin: string): NativeResult {
  const r = spawnSync(program, args, {
    env: Object.fromEntries(env.map((e) => e.split('=') as [string, string])), input: stdin, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  assert.equal(r.signal, null, `the native run ended by ${r.signal}: ${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The tids of the threads a traced run made: 'pid.tid' prefixes of its trace lines. */
function threadsSeen(trace: readonly string[]): Set<string> {
  const seen = new Set<string>();
  for (const l of trace) {
    const m = /^\[kvmbox (\d+\.\d+)\]/.exec(l);
    if (m) seen.add(m[1]!);
  }
  return seen;
}

/** Run with the system granted and traced; stdout and status must equal the native run's. */
function same(program: string, args: readonly string[], options: RunOptions = {}, nativeEnv?: readonly string[]): { guest: RunResult; trace: string[] } {
  const env = nativeEnv ?? (Array.isArray(options.env) ? options.env as readonly string[] : ENV);
  const want = native(program, args, env, typeof options.stdin === 'string' ? options.stdin : '');
  assert.equal(want.status, 0, `the native run failed: ${want.stderr}`);
  const trace: string[] = [];
  const guest = run(program, args, { system: true, env: ENV, timeoutSeconds: TIMEOUT_S, trace: (l) => trace.push(l), ...options });
  assert.equal(guest.stdout.toString(), want.stdout, show(guest, trace));
  assert.equal(guest.exitStatus, want.status, show(guest, trace));
  return { guest, trace };
}

// ---------------------------------------------------------------------------------------------
// python3: threading.

const PYTHON = '/usr/bin/python3';

const PY_SCRIPT = String.raw`
import threading, queue, concurrent.futures

# A counter behind a Lock, from 4 threads.
lock = threading.Lock()
counter = 0
def add(n):
    global counter
    for _ in range(n):
        with lock:
            counter += 1
ts = [threading.Thread(target=add, args=(500,)) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("lock counter", counter)

# A Condition: 3 threads take turns, 4 rounds each.
cond = threading.Condition()
turn = 0
order = []
def player(me):
    global turn
    for i in range(4):
        with cond:
            while turn != me:
                cond.wait()
            order.append("%d%d" % (me, i))
            turn = (me + 1) % 3
            cond.notify_all()
ps = [threading.Thread(target=player, args=(k,)) for k in range(3)]
for t in ps: t.start()
for t in ps: t.join()
print("condition order", " ".join(order))

# queue.Queue: 2 producers, 3 consumers, a bounded queue and a sentinel per consumer.
q = queue.Queue(maxsize=3)
results = queue.Queue()
def produce(base):
    for i in range(50):
        q.put(base + i)
def consume():
    got = []
    while True:
        x = q.get()
        if x is None:
            break
        got.append(x * x)
    results.put(got)
producers = [threading.Thread(target=produce, args=(b,)) for b in (0, 1000)]
consumers = [threading.Thread(target=consume) for _ in range(3)]
for t in producers + consumers: t.start()
for t in producers: t.join()
for _ in consumers: q.put(None)
for t in consumers: t.join()
squares = sorted(x for _ in consumers for x in results.get())
print("queue", len(squares), sum(squares), squares[:3], squares[-3:])

# An Event and a Barrier.
ev = threading.Event()
barrier = threading.Barrier(3)
passed = []
def waiter(k):
    ev.wait()
    barrier.wait()
    with lock:
        passed.append(k)
ws = [threading.Thread(target=waiter, args=(k,)) for k in range(3)]
for t in ws: t.start()
ev.set()
for t in ws: t.join()
print("barrier passed", sorted(passed))

# concurrent.futures: map keeps the order of its inputs.
def work(n):
    return sum(i * i for i in range(n * 100))
with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
    print("pool map", list(ex.map(work, range(12))))
    fs = [ex.submit(pow, 2, k) for k in range(10)]
    print("pool submit", sum(f.result() for f in fs))
print("threads left", threading.active_count())
`;

test('python3 threading: Lock, Condition, Event, Barrier, queue.Queue, ThreadPoolExecutor', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest, trace } = same(PYTHON, ['-c', PY_SCRIPT]);
  assert.match(guest.stdout.toString(), /^lock counter 2000$/m);
  assert.match(guest.stdout.toString(), /^condition order 00 10 20 01 11 21 02 12 22 03 13 23$/m);
  assert.ok(threadsSeen(trace).size >= 10, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
});

// python3 multiprocessing (fork start method): a Pool, Value and Array with a Lock, a Queue, a
// Pipe, shared_memory (shm_open in /dev/shm) and exit codes. Its locks are POSIX semaphores
// (sem_open: files in /dev/shm, mapped MAP_SHARED) that the processes share through fork; its
// Manager serves over an AF_UNIX socket in a temporary directory (--tmp), and forkserver's
// server gets the descriptors of each worker's pipes over one (SCM_RIGHTS).
const MP_SCRIPT = join(ROOT, 'test/fixtures/mp-check.py');

test('python3 multiprocessing: Pool, Value, Array, Lock, Queue, Pipe, shared_memory, a Manager and forkserver (with --tmp)', {
  skip: !existsSync(PYTHON) ? `${PYTHON} is missing` : onUserStubPath() && 'kvm_pvm: processes take turns in one memory, where MAP_SHARED memory is private to each',
}, () => {
  // Natively the Manager's socket goes to the host's temporary directory (the lane's / is read-only).
  const { guest } = same(PYTHON, [MP_SCRIPT], { ro: [MP_SCRIPT], tmp: true }, [...ENV, `TMPDIR=${tmpdir()}`]);
  assert.match(guest.stdout.toString(), /^manager \[\(0, 0\), \(1, 1\), \(2, 4\)\] \[0, 1, 2\]$/m);
  assert.match(guest.stdout.toString(), /^forkserver \[9, 16\]$/m);
  assert.match(guest.stdout.toString(), /^value 600 exit codes \[0, 0, 0\]$/m);
  assert.match(guest.stdout.toString(), /^exit code 3$/m);
});

// ioctl(FIONBIO) is how libuv and CPython's socket.setblocking make an fd non-blocking; then a
// blocking read of a pipe that another thread fills.
const FIONBIO_SCRIPT = String.raw`import fcntl, os, struct, termios, threading
r, w = os.pipe()
fcntl.ioctl(r, termios.FIONBIO, struct.pack('i', 1))
print("blocking after FIONBIO 1:", os.get_blocking(r))
try:
    os.read(r, 1)
except BlockingIOError as e:
    print("read of the empty pipe:", e.strerror)
fcntl.ioctl(r, termios.FIONBIO, struct.pack('i', 0))
print("blocking after FIONBIO 0:", os.get_blocking(r))
t = threading.Thread(target=lambda: os.write(w, b"x"))
t.start()
print("blocking read:", os.read(r, 1))
t.join()`;

test('python3: ioctl(FIONBIO) sets and clears O_NONBLOCK; a blocking read waits for another thread', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest } = same(PYTHON, ['-c', FIONBIO_SCRIPT]);
  assert.match(guest.stdout.toString(), /^blocking after FIONBIO 1: False\nread of the empty pipe: Resource temporarily unavailable\n/);
});

const ASYNCIO_SCRIPT = String.raw`
import asyncio, threading
def blocking(n):
    return sum(i * i for i in range(n))
async def main():
    r = await asyncio.gather(*(asyncio.to_thread(blocking, n) for n in (10, 100, 1000)))
    print("to_thread", r)
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    threading.Thread(target=lambda: loop.call_soon_threadsafe(fut.set_result, 42)).start()
    print("call_soon_threadsafe", await fut)
asyncio.run(main())
`;

test('python3 asyncio with threads: to_thread and call_soon_threadsafe (its self-pipe is a socketpair)', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest } = same(PYTHON, ['-c', ASYNCIO_SCRIPT]);
  assert.equal(guest.stdout.toString(), 'to_thread [285, 328350, 332833500]\ncall_soon_threadsafe 42\n');
});

// Process file descriptors from python3: os.pidfd_open, select on it, signal.pidfd_send_signal,
// os.waitid(P_PIDFD), and asyncio's PidfdChildWatcher, which waits for children through them.
// Before: pidfd_open was ENOSYS.
const PIDFD_SCRIPT = String.raw`import asyncio, os, select, signal, subprocess, warnings
warnings.simplefilter("ignore")
p = subprocess.Popen(["/bin/sleep", "30"])
fd = os.pidfd_open(p.pid)
print("alive, not readable:", select.select([fd], [], [], 0)[0] == [])
signal.pidfd_send_signal(fd, signal.SIGTERM)
print("readable at its end:", select.select([fd], [], [], 30)[0] == [fd])
r = os.waitid(os.P_PIDFD, fd, os.WEXITED)
print("waitid:", r.si_pid == p.pid, r.si_code == os.CLD_KILLED, r.si_status)
os.close(fd)
async def main():
    proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", "exit 5")
    return await proc.wait()
asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
print("asyncio child:", asyncio.run(main()))
`;

test('python3 pidfds: pidfd_open, pidfd_send_signal, waitid(P_PIDFD) and asyncio\'s PidfdChildWatcher', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest } = same(PYTHON, ['-c', PIDFD_SCRIPT]);
  assert.equal(guest.stdout.toString(), 'alive, not readable: True\nreadable at its end: True\nwaitid: True True 15\nasyncio child: 5\n');
});

// Named datagram sockets (socket(AF_UNIX, SOCK_DGRAM)): abstract and path names, sendto and
// recvfrom with the sender's name (none for an unbound one), a reply, message boundaries and
// truncation, EAGAIN, poll, connect's default receiver used by a child process, recvmsg's
// msg_name, and Linux's errors (ECONNREFUSED, ENOENT, EPERM from a socket connected elsewhere,
// listen's EOPNOTSUPP, ENOTCONN). Before: socket() was EOPNOTSUPP.
const DGRAM_SCRIPT = String.raw`import os, socket, select, sys
d = sys.argv[1]
if os.path.exists(os.path.join(d, "cli.sock")):
    os.unlink(os.path.join(d, "cli.sock"))
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
srv.bind("\0kvmbox-dgram-test")
print("bound:", srv.getsockname())
print("type:", srv.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_DGRAM)
cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
cli.sendto(b"from an unbound socket", "\0kvmbox-dgram-test")
print("got:", srv.recvfrom(100))
cli.bind(os.path.join(d, "cli.sock"))
cli.sendto(b"hello", "\0kvmbox-dgram-test")
data, addr = srv.recvfrom(100)
print("got:", data, os.path.basename(addr))
srv.sendto(b"reply", addr)
print("reply:", cli.recv(100))
# Message boundaries, truncation, nonblocking, poll.
cli.sendto(b"0123456789", "\0kvmbox-dgram-test")
cli.sendto(b"second", "\0kvmbox-dgram-test")
print("truncated:", srv.recv(4), "then", srv.recv(100))
srv.setblocking(False)
try:
    srv.recv(10)
except BlockingIOError:
    print("nothing: EAGAIN")
srv.setblocking(True)
p = select.poll(); p.register(srv, select.POLLIN)
print("poll empty:", p.poll(0))
# connect: a default receiver; a child process sends through it.
cli.connect("\0kvmbox-dgram-test")
print("peer:", cli.getpeername())
pid = os.fork()
if pid == 0:
    cli.send(b"from the child")
    os._exit(0)
os.waitpid(pid, 0)
print("poll:", p.poll(1000) == [(srv.fileno(), select.POLLIN)])
print("got:", srv.recv(100))
# recvmsg gives the sender's name.
cli.send(b"via sendmsg")
data, anc, flags, addr = srv.recvmsg(100)
print("recvmsg:", data, os.path.basename(addr), flags)
# Errors: nobody at a name; a path that is no socket; a socket connected elsewhere refuses others.
try:
    cli.sendto(b"x", "\0nobody-here")
except ConnectionRefusedError:
    print("no such name: ECONNREFUSED")
try:
    cli.sendto(b"x", os.path.join(d, "missing.sock"))
except FileNotFoundError:
    print("no such path: ENOENT")
third = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    third.sendto(b"x", os.path.join(d, "cli.sock"))
except PermissionError:
    print("connected elsewhere: EPERM")
try:
    srv.listen(1)
except OSError as e:
    print("listen:", e.errno == 95)
unb = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    unb.send(b"x")
except OSError as e:
    print("send unconnected:", e.errno == 107)
`;

test('python3 named AF_UNIX datagram sockets: sendto, recvfrom, connect, across fork, as natively', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const dir = join(work, 'dgram');
  mkdirSync(dir);
  const { guest } = same(PYTHON, ['-c', DGRAM_SCRIPT, dir], { rw: [dir] });
  assert.match(guest.stdout.toString(), /^got: b'from the child'$/m);
});

// /proc/PID/task lists the threads (it was ENOENT), each with its own name: pthread_setname_np
// of another thread writes /proc/self/task/TID/comm, prctl(PR_SET_NAME) names the caller, and
// the leader's name stays the process's.
const TASK_SCRIPT = String.raw`import threading, os, ctypes
e = threading.Event()
t = threading.Thread(target=e.wait); t.start()
print(sorted(os.listdir("/proc/self/task")) == sorted(str(x) for x in (os.getpid(), t.native_id)))
libc = ctypes.CDLL(None)
print(libc.pthread_setname_np(ctypes.c_ulong(t.ident), b"helper"))
print(open(f"/proc/self/task/{t.native_id}/comm").read().strip(), open(f"/proc/self/task/{os.getpid()}/comm").read().strip(), open("/proc/self/comm").read().strip())
print(open(f"/proc/self/task/{t.native_id}/stat").read().split()[:2] == [str(t.native_id), "(helper)"])
with open(f"/proc/self/task/{t.native_id}/comm", "w") as f: f.write("renamed")
buf = ctypes.create_string_buffer(16); libc.pthread_getname_np(ctypes.c_ulong(t.ident), buf, 16); print(buf.value)
print([l for l in open(f"/proc/self/task/{t.native_id}/status").read().splitlines() if l.startswith(("Name", "Pid", "Tgid"))] == ["Name:\trenamed", f"Tgid:\t{os.getpid()}", f"Pid:\t{t.native_id}"])
e.set(); t.join()
print(len(os.listdir("/proc/self/task")))
`;

test('python3: /proc/self/task lists the threads; pthread_setname_np and /proc/self/task/TID/comm name one, as natively', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest } = same(PYTHON, ['-c', TASK_SCRIPT]);
  assert.equal(guest.stdout.toString(), "True\n0\nhelper python3 python3\nTrue\nb'renamed'\nTrue\n1\n");
});

// TCP and UDP on the sandbox's own loopback (AF_INET, AF_INET6): bind to port 0, getsockname,
// connect by name (localhost, through /etc/hosts) and address, accept with the client's address,
// socket options kept, EOF, EADDRINUSE, ECONNREFUSED, EADDRNOTAVAIL, UDP both ways with the
// sender's address, IPv6 on ::1, a dual-stack listener reached over IPv4, a child process as the
// client, and python's http.server answering urllib. Before: socket(AF_INET) was EAFNOSUPPORT.
const INET_SCRIPT = String.raw`import os, socket, threading, http.server, urllib.request, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen()
port = srv.getsockname()[1]
print("bound", srv.getsockname()[0], 32768 <= port <= 60999, srv.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
cl = socket.create_connection(("localhost", port))
c, addr = srv.accept()
print("accepted from", addr[0], addr[1] == cl.getsockname()[1], c.getsockname() == ("127.0.0.1", port))
cl.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("nodelay", cl.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), "peer", cl.getpeername() == ("127.0.0.1", port))
print("domain", cl.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), "protocol", cl.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
cl.sendall(b"hello"); c.sendall(c.recv(100).upper()); c.close()
print(cl.recv(100), cl.recv(100)); cl.close()
try: socket.socket().bind(("127.0.0.1", port))
except OSError as e: print("in use", e.errno)
try: socket.create_connection(("127.0.0.1", 1))
except OSError as e: print("refused", e.errno)
try: socket.socket().bind(("10.1.2.3", 0))
except OSError as e: print("not available", e.errno)
for f in (lambda: socket.socket().send(b"x"), lambda: socket.socket().recv(1), lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).send(b"x"), lambda: socket.socket().getpeername()):
    try: f()
    except OSError as e: print("unconnected", e.errno)
l = socket.socket(); l.listen(); print("listen without bind", l.getsockname()[0], l.getsockname()[1] > 0)
pid = os.fork()
if pid == 0:
    k = socket.create_connection(("127.0.0.1", port)); k.sendall(b"from a child"); os._exit(0)
c, _ = srv.accept(); print(c.recv(100)); os.waitpid(pid, 0)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v.sendto(b"dgram", u.getsockname()); d, a = u.recvfrom(100); print(d, a[0], a[1] == v.getsockname()[1])
u.sendto(b"back", a); print(v.recvfrom(100)[0])
v.connect(u.getsockname()); v.send(b"connected"); print(u.recv(100), v.getpeername() == u.getsockname())
w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); w.bind(("0.0.0.0", 0)); w.connect(("127.0.0.1", 9)); print("udp local", w.getsockname()[0])
s6 = socket.socket(socket.AF_INET6); s6.bind(("::1", 0)); s6.listen(); p6 = s6.getsockname()[1]
c6 = socket.create_connection(("::1", p6)); a6, addr6 = s6.accept(); print("v6", addr6[0], c6.getpeername()[:2] == ("::1", p6))
d6 = socket.socket(socket.AF_INET6); d6.bind(("::", 0)); d6.listen()
c4 = socket.create_connection(("127.0.0.1", d6.getsockname()[1])); a4, addr4 = d6.accept(); print("dual stack", addr4[0])
os.chdir(sys.argv[1])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
h = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
t = threading.Thread(target=h.handle_request); t.start()
r = urllib.request.urlopen(f"http://127.0.0.1:{h.server_address[1]}/page.txt")
print("http", r.status, r.read()); t.join()
`;

test('python3 TCP and UDP on the sandbox\'s loopback: IPv4, IPv6, across fork, http.server and urllib, as natively', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const dir = join(work, 'inet');
  mkdirSync(dir);
  writeFileSync(join(dir, 'page.txt'), 'served from the sandbox\n');
  const { guest } = same(PYTHON, ['-c', INET_SCRIPT, dir], { ro: [dir] });
  assert.match(guest.stdout.toString(), /^http 200 b'served from the sandbox\\n'$/m);
  // Ports below 1024 need a privilege the sandbox's user lacks (natively, the tests run as root).
  const r = run(PYTHON, ['-c', 'import socket\ntry: socket.socket().bind(("127.0.0.1", 80))\nexcept OSError as e: print(e.errno)'], { system: true, env: ENV, timeoutSeconds: TIMEOUT_S });
  assert.equal(r.stdout.toString(), '13\n', r.stderr.toString());
});

// node's net and http on the loopback: a server on port 0, http.get to it, the body back.
const NODE = process.execPath;
const NODE_HTTP_SCRIPT = String.raw`const http = require("http");
const s = http.createServer((req, res) => res.end("hello " + req.url)).listen(0, "127.0.0.1", () => {
  http.get("http://localhost:" + s.address().port + "/x", (res) => {
    let body = ""; res.on("data", (d) => body += d); res.on("end", () => { console.log(res.statusCode, body); s.close(); });
  });
});`;

test('node: an http server and http.get on the sandbox\'s loopback', { skip: existsSync(NODE) ? false : `${NODE} is missing` }, () => {
  const { guest } = same(NODE, ['-e', NODE_HTTP_SCRIPT]);
  assert.equal(guest.stdout.toString(), '200 hello /x\n');
});

// fetch() parses HTTP with llhttp compiled to WebAssembly, and V8 reserves ~10 GiB of addresses
// for a wasm memory (bounds are checked by guard pages): a process's address space spans at
// least 16 GiB on the cpl0-entry path, so this works without --disable-wasm-trap-handler; and a
// wasm memory of its own grows and traps out of bounds as natively. Where the span is 256 GiB
// (48 physical-address bits, spanFor), eight wasm memories are alive at once.
test('node: fetch() over the sandbox\'s loopback, and a WebAssembly memory', { skip: existsSync(NODE) ? false : `${NODE} is missing` }, (t) => {
  if (onUserStubPath()) { t.skip('on kvm_pvm an address space is --memory itself'); return; }
  const src = 'const s = require("http").createServer((q, r) => r.end("fetched")).listen(0, async () => { ' +
    'const r = await fetch("http://localhost:" + s.address().port); console.log(r.status, await r.text()); s.close(); })';
  const { guest } = same(NODE, ['-e', src]);
  assert.equal(guest.stdout.toString(), '200 fetched\n');
  // (module (memory (export "m") 1) (func (export "ld") (param i32) (result i32) local.get 0 i32.load))
  const wasm = 'const b = Buffer.from("AGFzbQEAAAABBgFgAX8BfwMCAQAFAwEAAQcKAgFtAgACbGQAAAoJAQcAIAAoAgAL", "base64"); ' +
    'const { instance: { exports: e } } = await WebAssembly.instantiate(b); ' +
    'const m = new Uint32Array(e.m.buffer); m[100] = 7; console.log("load", e.ld(400)); ' +
    'e.m.grow(255); console.log("pages", e.m.buffer.byteLength / 65536); ' +
    'try { e.ld(256 * 65536); } catch (x) { console.log(x.constructor.name, x.message); }';
  const w = same(NODE, ['--input-type=module', '-e', wasm]);
  assert.equal(w.guest.stdout.toString(), 'load 7\npages 256\nRuntimeError memory access out of bounds\n');
  if (addressSpan(0).bytes >= 128 * 1024 ** 3) {
    const eight = 'const m = []; for (let i = 0; i < 8; i++) m.push(new WebAssembly.Memory({ initial: i + 1 })); ' +
      'm.forEach((x, i) => new Uint8Array(x.buffer)[i * 65536] = i + 1); ' +
      'console.log(m.map((x, i) => x.buffer.byteLength / 65536 + ":" + new Uint8Array(x.buffer)[i * 65536]).join(" "))';
    const e = same(NODE, ['-e', eight]);
    assert.equal(e.guest.stdout.toString(), '1:1 2:2 3:3 4:4 5:5 6:6 7:7 8:8\n');
  }
});

// socketpair(AF_UNIX, SOCK_STREAM): send/recv both ways, EAGAIN, a thread streaming to the main
// thread until shutdown(SHUT_WR), a forked child answering through its end, EPIPE once it is gone.
const SOCKETPAIR_SCRIPT = String.raw`import os, socket, stat, threading
a, b = socket.socketpair()
print("is a socket:", stat.S_ISSOCK(os.fstat(a.fileno()).st_mode))
a.sendall(b"ping")
print("b got", b.recv(100))
b.sendall(b"pong" * 3)
print("a got", a.recv(5), a.recv(100))
b.setblocking(False)
try:
    b.recv(10)
except BlockingIOError:
    print("nothing to read: EAGAIN")
b.setblocking(True)
# A thread sends 100 numbered lines; the main thread reads until the stream ends.
def sender():
    for i in range(100):
        a.sendall(b"line %d\n" % i)
    a.shutdown(socket.SHUT_WR)
t = threading.Thread(target=sender)
t.start()
data = b""
while True:
    chunk = b.recv(64)
    if not chunk:
        break
    data += chunk
t.join()
lines = data.decode().splitlines()
print("lines", len(lines), lines[0], lines[-1])
# fork: the child answers through its end.
c, d = socket.socketpair()
pid = os.fork()
if pid == 0:
    c.close()
    msg = d.recv(100)
    d.sendall(msg.upper())
    os._exit(0)
d.close()
c.sendall(b"from the parent")
print("child said", c.recv(100))
os.waitpid(pid, 0)
print("after the child closed:", c.recv(100))
try:
    c.send(b"x")
except BrokenPipeError:
    print("send to a closed peer: EPIPE")`;

test('python3 socket.socketpair: both ways, non-blocking, between threads, across fork, EOF and EPIPE', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest } = same(PYTHON, ['-c', SOCKETPAIR_SCRIPT]);
  assert.match(guest.stdout.toString(), /^lines 100 line 0 line 99$/m);
  assert.match(guest.stdout.toString(), /^send to a closed peer: EPIPE$/m);
});

// A port was one socket's whatever the address: 127.0.0.1:P and ::1:P, or 0.0.0.0:P and a
// V6ONLY [::]:P (nginx's two listens), could not both be bound. Binds now conflict as Linux's,
// and a connection or datagram goes to the socket bound to its address, else the wildcard.
const PORTS_SCRIPT = String.raw`import socket, errno
def listener(fam, addr, port=0, v6only=None):
    s = socket.socket(fam)
    if v6only is not None: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((addr, port)); s.listen(); return s
def tryit(f):
    try: f(); return "ok"
    except OSError as e: return errno.errorcode[e.errno]
a = listener(socket.AF_INET, "127.0.0.1"); p = a.getsockname()[1]
b = listener(socket.AF_INET6, "::1", p)
print("127.0.0.1 and ::1 on one port: both bound")
for host, want in (("127.0.0.1", a), ("::1", b)):
    c = socket.create_connection((host, p)); s, _ = want.accept(); c.sendall(host.encode()); print("reached", s.recv(20).decode(), "at", host)
print("another 127.0.0.1 bind:", tryit(lambda: listener(socket.AF_INET, "127.0.0.1", p)))
print("0.0.0.0 over it:", tryit(lambda: listener(socket.AF_INET, "0.0.0.0", p)))
w4 = listener(socket.AF_INET, "0.0.0.0"); q = w4.getsockname()[1]
print("[::] dual-stack beside 0.0.0.0:", tryit(lambda: listener(socket.AF_INET6, "::", q, 0)))
w6 = listener(socket.AF_INET6, "::", q, 1)
print("[::] V6ONLY beside 0.0.0.0: bound")
c = socket.create_connection(("127.0.0.1", q)); s, _ = w4.accept(); print("v4 goes to the v4 wildcard:", s.family == socket.AF_INET)
c = socket.create_connection(("::1", q)); s, _ = w6.accept(); print("v6 goes to the v6 wildcard:", s.family == socket.AF_INET6)
d = listener(socket.AF_INET6, "::", 0, 0); r = d.getsockname()[1]
print("v4 bind under a dual-stack [::]:", tryit(lambda: listener(socket.AF_INET, "127.0.0.1", r)))
c = socket.create_connection(("127.0.0.1", r)); s, addr = d.accept(); print("v4 reaches the dual-stack socket from", addr[0])
x = listener(socket.AF_INET, "127.0.0.2"); t = x.getsockname()[1]
y = listener(socket.AF_INET, "127.0.0.1", t)
print("127.0.0.2 and 127.0.0.1 on one port: both bound")
print("connect to 127.0.0.3 there:", tryit(lambda: socket.create_connection(("127.0.0.3", t))))
c = socket.create_connection(("127.0.0.2", t)); s, _ = x.accept(); print("127.0.0.2 reached its own:", s.getsockname()[0], "from", c.getsockname()[0], s.getpeername()[0])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.bind(("127.0.0.2", 0))
v.sendto(b"hi", u.getsockname()); data, frm = u.recvfrom(10); print("udp from", frm[0], frm[1] == v.getsockname()[1])`;

test('python3 binds by address: IPv4 and IPv6 on one port, V6ONLY and dual-stack wildcards, 127.0.0.x, as natively', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest } = same(PYTHON, ['-c', PORTS_SCRIPT]);
  assert.match(guest.stdout.toString(), /^udp from 127\.0\.0\.2 True$/m);
});

// MSG_PEEK was EOPNOTSUPP on every socket but netlink: recv and recvmsg may look at what is
// there and leave it, on streams (socketpair, AF_UNIX, TCP), record sockets and datagrams.
const PEEK_SCRIPT = String.raw`import os, socket
a, b = socket.socketpair()
a.sendall(b"hello world")
print("stream peek", b.recv(5, socket.MSG_PEEK), b.recv(100, socket.MSG_PEEK), "then", b.recv(100))
b.setblocking(False)
try:
    b.recv(10, socket.MSG_PEEK)
except BlockingIOError:
    print("empty peek: EAGAIN")
a.sendall(b"abcdef")
x, y = bytearray(2), bytearray(10)
print("recvmsg_into peek", b.recvmsg_into([x, y], 0, socket.MSG_PEEK)[0], bytes(x), bytes(y[:4]), "then", b.recv(100))
p, q = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p.send(b"first message"); p.send(b"second")
m = q.recvmsg(5, 0, socket.MSG_PEEK)
print("seqpacket peek", m[0], m[2] & socket.MSG_TRUNC != 0, q.recv(100), q.recv(100))
r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); r.bind("\0peek-r-%d" % os.getpid())
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("\0peek-s-%d" % os.getpid())
s.sendto(b"datagram one", r.getsockname()); s.sendto(b"two", r.getsockname())
data, frm = r.recvfrom(4, socket.MSG_PEEK)
print("unix dgram peek", data, frm == s.getsockname(), r.recvfrom(100)[0], r.recvfrom(100)[0])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
c.sendall(b"GET / HTTP/1.0\r\n\r\n")
print("tcp peek", conn.recv(3, socket.MSG_PEEK), conn.recv(100))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.bind(("127.0.0.1", 0))
v.sendto(b"udp payload", u.getsockname())
data, frm = u.recvfrom(3, socket.MSG_PEEK)
print("udp peek", data, frm == v.getsockname(), u.recvfrom(100)[0])`;

test('python3 MSG_PEEK on stream, seqpacket, datagram, TCP and UDP sockets, as natively', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
  const { guest } = same(PYTHON, ['-c', PEEK_SCRIPT]);
  assert.match(guest.stdout.toString(), /^udp peek b'udp' True b'udp payload'$/m);
});

// ---------------------------------------------------------------------------------------------
// perl's ithreads: a shared counter under lock, Thread::Queue workers, a shared hash.

const PERL = '/usr/bin/perl';
const PERL_SCRIPT = String.raw`use strict; use warnings;
use threads; use threads::shared; use Thread::Queue;
my $count :shared = 0;
my @t = map { threads->create(sub { my $k = shift; for (1 .. 500) { lock($count); $count++ } return $k * 10 }, $_) } 1 .. 4;
my @r = map { $_->join } @t;
print "count $count results @r\n";
my $q = Thread::Queue->new;
my $out = Thread::Queue->new;
my @w = map { threads->create(sub { while (defined(my $x = $q->dequeue)) { $out->enqueue($x * $x) } }) } 1 .. 3;
$q->enqueue($_) for 1 .. 100;
$q->end;
$_->join for @w;
my @sq = sort { $a <=> $b } $out->dequeue_nb($out->pending);
my $sum = 0; $sum += $_ for @sq;
print "queue ", scalar(@sq), " $sum $sq[0] $sq[-1]\n";
my %h :shared;
my @s = map { my $k = $_; threads->create(sub { lock(%h); $h{"t$k"} = $k * $k; }) } 1 .. 3;
$_->join for @s;
print "shared hash ", join(' ', map { "$_=$h{$_}" } sort keys %h), "\n";
print "threads left ", scalar(threads->list), "\n";`;

test('perl threads: threads::shared with lock, Thread::Queue workers, a shared hash', { skip: existsSync(PERL) ? false : `${PERL} is missing` }, () => {
  const { guest, trace } = same(PERL, ['-e', PERL_SCRIPT]);
  assert.match(guest.stdout.toString(), /^count 2000 results 10 20 30 40\nqueue 100 338350 1 10000\n/);
  assert.ok(threadsSeen(trace).size >= 10, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
});

// ---------------------------------------------------------------------------------------------
// Compressors and sort with worker threads, on a 2.4 MB text (xz, zstd) and 300,000 lines (sort:
// GNU sort splits the work among threads from 128 Ki lines on). Their output is bytes: compared
// byte for byte with the native run's.

const DATA = join(work, 'data.txt');
const LINES = join(work, 'lines.txt');
writeFileSync(DATA, Array.from({ length: 100_000 }, (_, i) => `${String((i * 2654435761) % 100_000_007).padStart(8, '0')} ${'abcdefghij'[i % 10]!.repeat(i % 7 + 1)} line ${i}\n`).join(''));
writeFileSync(LINES, Array.from({ length: 300_000 }, (_, i) => `${String(((i + 1) * 40503) % 1_000_003).padStart(7, '0')} line ${i}\n`).join(''));
const XZ = '/usr/bin/xz';
const ZSTD = '/usr/bin/zstd';

/** Run natively and in kvmbox (system and `ro` granted, traced); the stdout bytes and status must agree. */
function sameBytes(program: string, args: readonly string[], ro: readonly string[], explain = (_out: Buffer): string => ''): { guest: RunResult; trace: string[] } {
  const want = spawnSync(program, args, { env: Object.fromEntries(ENV.map((e) => e.split('=') as [string, string])), input: '', timeout: 120_000, maxBuffer: 64 << 20 });
  assert.equal(want.status, 0, `the native run failed: ${want.stderr}`);
  const trace: string[] = [];
  const guest = run(program, args, { system: true, ro, env: ENV, timeoutSeconds: TIMEOUT_S, trace: (l) => trace.push(l) });
  const why = (): string => `status ${guest.exitStatus} (${guest.reason.kind})\nstderr:\n${guest.stderr.toString().slice(-3000)}\n` +
    `trace (last 60 of ${trace.length} lines):\n${trace.slice(-60).join('\n')}`;
  assert.equal(guest.exitStatus, 0, why());
  assert.ok(guest.stdout.equals(want.stdout), `${program} ${args.join(' ')}: ${guest.stdout.length} bytes, natively ${want.stdout.length}, ` +
    `first difference at ${firstDifference(guest.stdout, want.stdout)}${explain(guest.stdout)}\n${why()}`);
  return { guest, trace };
}

test('xz -T4: multi-threaded compression (20 blocks) and decompression give the native bytes', { skip: existsSync(XZ) ? false : `${XZ} is missing` }, () => {
  const packed = join(work, 'data.txt.xz');
  // Different bytes: is the sandbox's output a valid .xz at all?
  const check = (out: Buffer): string => {
    writeFileSync(packed, out);
    const t = spawnSync(XZ, ['-t', packed], { encoding: 'utf8' });
    return t.status === 0 ? ' (a valid .xz)' : ` (native xz -t: ${t.stderr.trim()})`;
  };
  const { guest, trace } = sameBytes(XZ, ['-T4', '-1', '--block-size=128KiB', '-c', DATA], [DATA], check);
  assert.ok(threadsSeen(trace).size >= 2, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
  writeFileSync(packed, guest.stdout);
  const back = sameBytes(XZ, ['-d', '-T4', '-c', packed], [packed]);
  assert.ok(back.guest.stdout.equals(readFileSync(DATA)));
  assert.ok(threadsSeen(back.trace).size >= 2, `threads seen: ${[...threadsSeen(back.trace)].join(' ')}`);
});

test('zstd -T4: multi-threaded compression (5 jobs) gives the native bytes', { skip: existsSync(ZSTD) ? false : `${ZSTD} is missing` }, () => {
  const { trace } = sameBytes(ZSTD, ['-T4', '-B512KiB', '-c', DATA], [DATA]);
  assert.ok(threadsSeen(trace).size >= 2, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
});

test('sort --parallel=4: 300,000 lines sorted by several threads', () => {
  const { trace } = sameBytes('/usr/bin/sort', ['--parallel=4', '-S', '64M', LINES], [LINES]);
  assert.ok(threadsSeen(trace).size >= 2, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
});

// ---------------------------------------------------------------------------------------------
// Java (OpenJDK 17): test/real/Threads.java, compiled natively with javac, runs ~20 JVM threads
// (compiler, GC, the pool's, the common ForkJoinPool's). /usr/bin/java reaches libjli.so through
// $ORIGIN, which ld.so reads from /proc/self/exe. The JVM reserves its heap, code cache and class
// space as address space (PROT_NONE): with hardware paging that is free, and the JVM runs with
// its defaults at the default --memory; on kvm_pvm the address space is the memory, so they are
// kept small there.

const JAVA = '/usr/bin/java';
const JAVAC = '/usr/bin/javac';
const JAVA_FLAGS = onUserStubPath()
  ? ['-Xmx64m', '-XX:+UseSerialGC', '-XX:ReservedCodeCacheSize=32m', '-XX:CompressedClassSpaceSize=64m', '-XX:-UsePerfData']
  : ['-XX:-UsePerfData'];

test('java: synchronized, a thread pool, a blocking queue, a parallel stream and a child process', {
  skip: existsSync(JAVA) && existsSync(JAVAC) ? false : 'java or javac is missing (openjdk-17-jdk-headless)',
}, () => {
  const classes = join(work, 'java');
  mkdirSync(classes);
  const javac = spawnSync(JAVAC, ['-d', classes, join(ROOT, 'test/real/Threads.java')], { encoding: 'utf8' });
  assert.equal(javac.status, 0, javac.stderr);
  const { guest, trace } = same(JAVA, [...JAVA_FLAGS, '-cp', classes, 'Threads'], { ro: [classes], ...(onUserStubPath() ? { memoryMiB: 1024 } : {}) });
  assert.match(guest.stdout.toString(), /^synchronized counter 4000\npool 0 332833500 /);
  assert.match(guest.stdout.toString(), /^child 42, exit 0$/m);
  assert.match(guest.stdout.toString(), /^terminated true$/m);
  assert.ok(threadsSeen(trace).size >= 10, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
});

// ---------------------------------------------------------------------------------------------
// Go (Debian's golang-go): test/real/gocheck.go, built natively twice, static (CGO_ENABLED=0: the
// Go runtime makes its own system calls, no libc) and with cgo (dynamic: threads through glibc's
// pthread_create). The runtime asks much of a kernel: goroutines on threads that park on futexes,
// SIGURG sent by tgkill to preempt a loop, signals on an alternate stack, the netpoller's epoll on
// pipes and a unix socket, a parallel garbage collector, os/exec's clone + execve + wait4.

const GO = '/usr/bin/go';

test('go, static and with cgo: goroutines, preemption by signal, the netpoller, the GC, a child and os/signal', {
  skip: existsSync(GO) ? false : `${GO} is missing (apt-get install golang-go)`,
}, () => {
  const child = `${PROGRAMS_DIR}/procs.glibc`;
  const env = { PATH: '/usr/bin:/bin', HOME: work, GOCACHE: join(work, 'gocache'), GOPATH: join(work, 'gopath'), GOFLAGS: '-buildvcs=false', TMPDIR: work };
  for (const cgo of ['0', '1']) {
    const exe = join(work, `gocheck-${cgo}`);
    const built = spawnSync(GO, ['build', '-o', exe, join(ROOT, 'test/real/gocheck.go')], { env: { ...env, CGO_ENABLED: cgo }, encoding: 'utf8', timeout: 300_000 });
    assert.equal(built.status, 0, `go build: ${built.stderr}`);
    // The program writes files and a socket into its directory: the native run and the sandbox's get one each.
    const dirs = ['native', 'guest'].map((w) => join(work, `go${cgo}-${w}`));
    for (const d of dirs) mkdirSync(d);
    const args = (dir: string): string[] => [dir, '/etc/os-release', child];
    const want = native(exe, args(dirs[0]!), ENV, '');
    assert.equal(want.status, 7, `the native run: ${want.stderr}`);
    const trace: string[] = [];
    const guest = run(exe, args(dirs[1]!), {
      system: true, env: ENV, ro: [exe, '/etc/os-release', child], rw: [dirs[1]!], timeoutSeconds: TIMEOUT_S, trace: (l) => trace.push(l),
    });
    assert.equal(guest.stdout.toString(), want.stdout, `CGO_ENABLED=${cgo}: ${show(guest, trace)}`);
    assert.equal(guest.exitStatus, 7, show(guest, trace));
    assert.match(guest.stdout.toString(), /^preempted a tight loop true$/m);
    assert.match(guest.stdout.toString(), /^child "show-args: argc=4 \[from\] \[go\]/m);
    assert.ok(threadsSeen(trace).size >= 3, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
  }
});

// ---------------------------------------------------------------------------------------------
// sqlite3: the sorter's worker threads (PRAGMA threads). They run only when the sorter writes its
// runs to temporary files (not with temp_store=memory) and a run is flushed: a small cache makes
// the 60,000-row sort flush many times. The temporary files go to a granted TMPDIR.

const SQLITE = '/usr/bin/sqlite3';

const SQL = `
PRAGMA threads = 4;
PRAGMA threads;
PRAGMA cache_size = -128;
CREATE TABLE t(k INTEGER, v TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
  INSERT INTO t SELECT (i * 2654435761) % 1000003, printf('row-%08d-%s', i, hex(i * 7919)) FROM n;
CREATE TABLE sorted AS SELECT k, v FROM t ORDER BY k, v;
SELECT count(*), sum(rowid * (k % 1009)) % 1000000007 FROM sorted;
SELECT rowid, k, v FROM sorted WHERE rowid % 15000 = 1;
SELECT count(*) FROM sorted a JOIN sorted b ON b.rowid = a.rowid + 1 WHERE b.k < a.k OR (b.k = a.k AND b.v < a.v);
CREATE INDEX t_v ON t(v DESC);
SELECT v FROM t ORDER BY v DESC LIMIT 3;
PRAGMA integrity_check;
`;

test('sqlite3 with PRAGMA threads=4: a sort and CREATE INDEX that use the sorter\'s worker threads', { skip: existsSync(SQLITE) ? false : `${SQLITE} is missing (apt-get install sqlite3)` }, () => {
  const tmpGuest = join(work, 'sqlite-tmp-guest');
  const tmpNative = join(work, 'sqlite-tmp-native');
  mkdirSync(tmpGuest);
  mkdirSync(tmpNative);
  const { guest, trace } = same(SQLITE, [':memory:'], { stdin: SQL, env: [...ENV, `TMPDIR=${tmpGuest}`], rw: [tmpGuest] }, [...ENV, `TMPDIR=${tmpNative}`]);
  const out = guest.stdout.toString();
  assert.match(out, /^4\n4\n60000\|/);
  assert.match(out, /^ok$/m);
  assert.ok(threadsSeen(trace).size >= 2, `the sorter started worker threads: ${[...threadsSeen(trace)].join(' ')}`);
});

// ---------------------------------------------------------------------------------------------
// Node.js itself: 3 worker_threads Workers, each with its own event loop and V8 isolate, add into a
// SharedArrayBuffer with Atomics (futex underneath) and post messages back through parentPort and
// a transferred MessagePort; then libuv's thread pool runs a pbkdf2 and a file read. Node also
// starts its own threads (V8's platform workers, libuv's pool). Each V8 isolate reserves 512 MiB
// of address space for its code (PROT_NONE, untouched), and the sandbox's address space is its
// memory: at the default --memory 256 node stops with 'Failed to reserve virtual memory for
// CodeRange' (so does 512, before the first Worker); one Worker ran at 2048, three at 3072, and
// 4096 leaves room. Guest memory is reserved, not committed: untouched pages cost the host nothing.

const NODE_SCRIPT = String.raw`const { Worker, MessageChannel } = require('node:worker_threads');
const crypto = require('node:crypto');
const fs = require('node:fs');
const src = [
  "const { parentPort, workerData } = require('node:worker_threads');",
  'const view = new Int32Array(workerData.shared);',
  'let s = 0;',
  'for (let i = 0; i < workerData.n; i++) s += i * workerData.k;',
  'Atomics.add(view, 0, s);',
  'Atomics.add(view, 1, 1);',
  'Atomics.notify(view, 1);',
  'workerData.port.postMessage({ k: workerData.k, s });',
  "parentPort.postMessage('done ' + workerData.k);",
].join('\n');
async function main() {
  const shared = new SharedArrayBuffer(8);
  const view = new Int32Array(shared);
  const got = [];
  const portMessages = [];
  const workers = [1, 2, 3].map((k) => new Promise((resolve, reject) => {
    const { port1, port2 } = new MessageChannel();
    portMessages.push(new Promise((done) => port1.on('message', (m) => { got.push(m); port1.close(); done(); })));
    const w = new Worker(src, { eval: true, workerData: { shared, k, n: 1000, port: port2 }, transferList: [port2] });
    w.on('message', (m) => got.push(m));
    w.on('error', reject);
    w.on('exit', (c) => resolve(c));
  }));
  const codes = await Promise.all(workers);
  await Promise.all(portMessages);
  console.log('exit codes', codes.join(' '));
  console.log('messages', got.map((m) => JSON.stringify(m)).sort().join(' '));
  console.log('shared', Atomics.load(view, 0), Atomics.load(view, 1));
  // libuv's thread pool: pbkdf2 and a file read run off the main thread.
  const key = await new Promise((res, rej) => crypto.pbkdf2('kvmbox', 'salt', 1000, 16, 'sha256', (e, k) => (e ? rej(e) : res(k))));
  console.log('pbkdf2', key.toString('hex'));
  const text = await fs.promises.readFile('/etc/debian_version', 'utf8');
  console.log('read', text.length > 0);
}
main().catch((e) => { console.error(e); process.exit(1); });`;

test('node: 3 worker_threads Workers with Atomics and MessagePorts, then libuv\'s thread pool', () => {
  // At the default --memory with hardware paging; kvm_pvm's address space is its memory.
  const { guest, trace } = same(process.execPath, ['-e', NODE_SCRIPT], onUserStubPath() ? { memoryMiB: 4096 } : {});
  assert.match(guest.stdout.toString(), /^exit codes 0 0 0\nmessages "done 1" "done 2" "done 3" \{"k":1,"s":499500\}/);
  assert.match(guest.stdout.toString(), /^shared 2997000 3$/m);
  assert.ok(threadsSeen(trace).size >= 6, `threads seen: ${[...threadsSeen(trace)].join(' ')}`);
});

// V8 reserves 512 MiB of addresses for each isolate's CodeRange (PROT_NONE), glibc 64 MiB for
// each thread's malloc arena: the address space spans more than --memory, which bounds only what
// is mapped with some right.
test('node at the default --memory 256', {
  skip: onUserStubPath() ? 'on kvm_pvm the address space is --memory: V8 cannot reserve its CodeRange' : false,
}, () => {
  const r = run(process.execPath, ['-p', '6 * 7'], { system: true, env: ENV, timeoutSeconds: TIMEOUT_S });
  assert.equal(r.stdout.toString(), '42\n', show(r));
  assert.equal(r.exitStatus, 0, show(r));
  // And a Worker: a second isolate, with its own CodeRange and its thread's arena.
  const src = "const { Worker } = require('worker_threads'); const w = new Worker(" +
    "\"require('worker_threads').parentPort.postMessage(6 * 7)\", { eval: true }); w.on('message', (m) => console.log('worker', m));";
  const { guest } = same(process.execPath, ['-e', src]);
  assert.equal(guest.stdout.toString(), 'worker 42\n');
});

// os.networkInterfaces() asks the routing netlink socket (getifaddrs); it threw ERR_SYSTEM_ERROR
// when the socket could not be made. A sandbox has no network, only its own loopback: lo, as
// natively (the host's other interfaces aside), and python's if_nameindex.
test('node\'s os.networkInterfaces() and python\'s if_nameindex: lo with 127.0.0.1/8 and ::1/128, as natively', {
  skip: onUserStubPath() ? 'on kvm_pvm node needs --memory 2048' : false,
}, () => {
  const src = 'const lo = require("os").networkInterfaces().lo; console.log(Object.keys(require("os").networkInterfaces()).includes("lo"), JSON.stringify(lo.map((a) => [a.address, a.netmask, a.family, a.mac, a.internal, a.cidr])))';
  const want = spawnSync(process.execPath, ['-e', src], { encoding: 'utf8' });
  const r = run(process.execPath, ['-e', src], { system: true, env: ENV, timeoutSeconds: TIMEOUT_S });
  assert.equal(r.stdout.toString(), want.stdout, show(r));
  assert.equal(r.stdout.toString(), 'true [["127.0.0.1","255.0.0.0","IPv4","00:00:00:00:00:00",true,"127.0.0.1/8"],["::1","ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff","IPv6","00:00:00:00:00:00",true,"::1/128"]]\n', show(r));
  const py = run('/usr/bin/python3', ['-c', 'import socket; print(socket.if_nameindex())'], { system: true, env: ENV, timeoutSeconds: TIMEOUT_S });
  assert.equal(py.stdout.toString(), "[(1, 'lo')]\n", show(py));
  assert.equal(r.exitStatus, 0, show(r));
});

// os.cpus() reads /proc/stat and /proc/cpuinfo (libuv): it was empty in the sandbox. Both are made
// up now, /proc/cpuinfo from the vCPUs' CPUID answers, one processor per vCPU the sandbox offers.
test('node\'s os.cpus(): one entry per CPU the sandbox offers, named as the host\'s CPU', {
  skip: onUserStubPath() ? 'on kvm_pvm node needs --memory 2048' : false,
}, () => {
  const src = "const os = require('os'); const c = os.cpus(); console.log(c.length, os.availableParallelism(), JSON.stringify(c[0].model)); " +
    "const info = require('fs').readFileSync('/proc/cpuinfo', 'utf8'); " +
    "console.log(/^vendor_id\\t: (\\S+)$/m.exec(info)[1], /^flags\\t+: .*\\bsse2\\b/m.test(info))";
  const r = run(process.execPath, ['-e', src], { system: true, env: ENV, timeoutSeconds: TIMEOUT_S });
  assert.equal(r.exitStatus, 0, show(r));
  const [first, second] = r.stdout.toString().split('\n');
  const [, count, parallelism, model] = /^(\d+) (\d+) (".*")$/.exec(first!) ?? [];
  assert.ok(Number(count) >= 1, show(r));
  assert.equal(count, parallelism, show(r));
  assert.equal(JSON.parse(model!), cpus()[0]!.model);
  const hostVendor = /^vendor_id\s*: (\S+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  assert.equal(second, `${hostVendor} true`);
});

test('node --jitless at the default --memory 256: without a CodeRange, node runs', () => {
  // (A Worker still needs more: its thread's malloc arena reserves 64 MiB, its isolate a heap.)
  const { guest } = same(process.execPath, ['--jitless', '-p', '6 * 7']);
  assert.equal(guest.stdout.toString(), '42\n');
});

// test/programs/ymm-threads.c: 4 threads that check their YMM registers after a spin. When a
// task's saved FPU state was only the FXSAVE image, the lane found 16-48 of 2560 changed (and
// xz -T4 and java, above, failed now and then); the whole XSAVE area is kept now.
const HAS_AVX = /^flags\s*:.*\bavx\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));

test('threads keep the upper halves of their YMM registers (AVX) across switches', {
  skip: HAS_AVX ? false : 'the CPU has no AVX',
}, () => {
  const path = `${PROGRAMS_DIR}/ymm-threads.glibc`;
  const native = spawnSync(path, [], { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stdout);
  const r = run(path, [], { timeoutSeconds: TIMEOUT_S });
  assert.equal(r.stdout.toString(), native.stdout, r.stderr.toString());
  assert.equal(r.exitStatus, 0);
});
