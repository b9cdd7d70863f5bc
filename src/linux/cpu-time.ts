// A thread's or a process's CPU time, as the run loop measures it (Kernel.onExit).

/**
 * CPU time in milliseconds: user, the time in the guest (between an entry and the next exit of
 * the vCPU that ran it); system, the time the host spent serving its exits, less the host's
 * waits meanwhile (a sleep, a poll of host fds). Measured on the host's monotonic clock, so a
 * busy host that takes the core away counts as the guest's time, as a VM's steal time would.
 */
export class CpuTime {
  user = 0;
  sys = 0;
  add(o: CpuTime): void {
    this.user += o.user;
    this.sys += o.sys;
  }
}

/** Linux's USER_HZ: the unit of times(2) and /proc tick counts. */
export const CLK_TCK = 100;

/** CPU time (ms) in clock ticks (USER_HZ), as times(2) and /proc/PID/stat give it. */
export function msTicks(ms: number): bigint {
  return BigInt(Math.floor(ms * CLK_TCK / 1000));
}
