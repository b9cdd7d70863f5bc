// The main thread's handle on the vCPU worker thread (src/machine/vcpu-thread.ts): created on
// first need, shared by every machine of the process (runs are sequential), and unref'd so it
// never keeps the process alive.
import { Worker } from 'node:worker_threads';
import {
  CMD_QUIT, CMD_RUN, CTL_CMD, CTL_EXITS, CTL_FD, CTL_READY, CTL_RESULT, CTL_WORDS,
} from './vcpu-thread.js';

export interface VcpuThread {
  ready(): boolean;
  /** Enter the guest with this vCPU fd, on the worker. */
  enter(fd: number): void;
  /** Count of KVM_RUN returns so far. */
  exits(): number;
  /** KVM_RUN's return value (or -errno) for the latest exit. */
  result(): number;
  /** Block until the exit count moves past seen. */
  waitExit(seen: number): void;
}

let thread: VcpuThread | undefined;

/** KVMBOX_THREADED=0 turns the exitless mode off (every system call then exits). */
export function threadedEnabled(): boolean {
  return process.env.KVMBOX_THREADED !== '0';
}

export function vcpuThread(): VcpuThread {
  if (thread) return thread;
  const sab = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(sab);
  const worker = new Worker(new URL('./vcpu-thread.js', import.meta.url), {
    workerData: { kvmboxVcpuThread: true, sab },
  });
  worker.unref();
  process.once('exit', () => {
    Atomics.store(ctl, CTL_CMD, CMD_QUIT);
    Atomics.notify(ctl, CTL_CMD);
  });
  thread = {
    ready: () => Atomics.load(ctl, CTL_READY) === 1,
    enter: (fd) => {
      Atomics.store(ctl, CTL_FD, fd);
      Atomics.store(ctl, CTL_CMD, CMD_RUN);
      Atomics.notify(ctl, CTL_CMD);
    },
    exits: () => Atomics.load(ctl, CTL_EXITS),
    result: () => Atomics.load(ctl, CTL_RESULT),
    waitExit: (seen) => {
      while (Atomics.load(ctl, CTL_EXITS) === seen) Atomics.wait(ctl, CTL_EXITS, seen);
    },
  };
  return thread;
}
