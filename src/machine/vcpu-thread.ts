// A worker thread that enters the guest on the main thread's behalf, so that the main thread
// stays free to answer system calls the guest posts in the ring page without exiting (see
// Machine.runThreaded). It does nothing but KVM_RUN: every decision stays on the main thread.
//
// Control words (Int32Array over a SharedArrayBuffer):
//   [CMD]   0 idle, 1 enter the guest (vCPU fd in [FD]), 2 quit
//   [EXITS] incremented after each KVM_RUN returns; [RESULT] holds its return value (or -errno)
//   [READY] set to 1 once the thread is running
import { parentPort, workerData } from 'node:worker_threads';
import * as libc from '../kvm/libc.js';
import { KVM_RUN_IOCTL } from '../kvm/kvm.js';

export const CTL_CMD = 0;
export const CTL_EXITS = 1;
export const CTL_RESULT = 2;
export const CTL_FD = 3;
export const CTL_READY = 4;
export const CTL_WORDS = 8;
export const CMD_IDLE = 0;
export const CMD_RUN = 1;
export const CMD_QUIT = 2;

if (parentPort && workerData?.kvmboxVcpuThread) {
  const ctl = new Int32Array(workerData.sab as SharedArrayBuffer);
  Atomics.store(ctl, CTL_READY, 1);
  Atomics.notify(ctl, CTL_READY);
  for (;;) {
    Atomics.wait(ctl, CTL_CMD, CMD_IDLE);
    const cmd = Atomics.load(ctl, CTL_CMD);
    if (cmd === CMD_QUIT) break;
    if (cmd !== CMD_RUN) continue;
    const r = libc.ioctlIntRaw(Atomics.load(ctl, CTL_FD), KVM_RUN_IOCTL, 0);
    Atomics.store(ctl, CTL_RESULT, r);
    Atomics.store(ctl, CTL_CMD, CMD_IDLE);
    Atomics.add(ctl, CTL_EXITS, 1);
    Atomics.notify(ctl, CTL_EXITS);
  }
}
