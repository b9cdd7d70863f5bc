// Bounded waits on the host. A system call that waits for something outside the sandbox (an
// inherited stdin, a terminal, a guest sleep) never blocks the host thread for long: it waits in
// slices of at most WAIT_SLICE_MS and, between slices, asks whether the run must end (its time
// limit is reached or its owner cancelled it). So --timeout, timeoutSeconds and a cancel end the
// run within about one slice of the moment, whatever the guest waits on.
import * as libc from '../kvm/libc.js';
import { E, Errno } from '../abi/linux.js';

/** The longest the host blocks in one go on behalf of a guest. */
export const WAIT_SLICE_MS = 50;

/** What a wait needs of the process: its deadline and its stop check. */
export interface Stoppable {
  /** Milliseconds until the time limit, or null when there is none. */
  timeLeftMs(): number | null;
  /** End the program if its time is up or it was cancelled; true when it has ended. */
  checkDeadline(): boolean;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Milliseconds spent in the waits below, in all: time the host served nobody (not CPU time). */
let waitedMs = 0;
export function hostWaitedMs(): number {
  return waitedMs;
}

function slice(p: Stoppable, left: number | null): number {
  const toDeadline = p.timeLeftMs();
  let ms = WAIT_SLICE_MS;
  if (left !== null) ms = Math.min(ms, left);
  if (toDeadline !== null) ms = Math.min(ms, Math.max(0, Math.ceil(toDeadline)));
  return Math.max(0, ms);
}

/** Sleep ms (null: forever) in slices. False when the program was stopped meanwhile. */
export function sleepBounded(p: Stoppable, ms: number | null): boolean {
  const end = ms === null ? Infinity : performance.now() + ms;
  for (;;) {
    if (p.checkDeadline()) return false;
    const left = end - performance.now();
    if (left <= 0) return true;
    const s = slice(p, Number.isFinite(left) ? Math.ceil(left) : null);
    if (s > 0) {
      const t0 = performance.now();
      Atomics.wait(sleeper, 0, 0, s);
      waitedMs += performance.now() - t0;
    }
  }
}

/**
 * poll(2) the host fds in pfds (struct pollfd entries, 8 bytes each) for up to ms (null: no
 * limit), in slices. Returns the ready count (revents filled), 0 when ms passed, or -1 when the
 * program was stopped meanwhile (time limit or cancel).
 */
export function pollBounded(p: Stoppable, pfds: Buffer, n: number, ms: number | null): number {
  const end = ms === null ? Infinity : performance.now() + ms;
  for (;;) {
    if (p.checkDeadline()) return -1;
    const left = end - performance.now();
    const s = left <= 0 ? 0 : slice(p, Number.isFinite(left) ? Math.ceil(left) : null);
    const t0 = performance.now();
    const r = libc.poll(pfds, n, s);
    if (s > 0) waitedMs += performance.now() - t0;
    if (r > 0) return r;
    if (r < 0 && r !== -E.EINTR) throw new Errno(-r);
    if (left <= 0) return 0;
  }
}

/** struct pollfd entries for pollBounded: each host fd with the events it waits for. */
export function pollfds(entries: Iterable<readonly [fd: number, events: number]>): Buffer {
  const list = [...entries];
  const pfds = Buffer.alloc(list.length * 8);
  list.forEach(([fd, events], i) => {
    pfds.writeInt32LE(fd, i * 8);
    pfds.writeInt16LE(events, i * 8 + 4);
  });
  return pfds;
}

/** Wait until host fd is ready for events (POLLIN or POLLOUT); false when the program was stopped. */
export function waitHostFd(p: Stoppable, fd: number, events: number): boolean {
  return pollBounded(p, pollfds([[fd, events]]), 1, null) > 0;
}
