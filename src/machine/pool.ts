// Idle machines kept for reuse. Creating a VM (memslot, vCPU, CPUID) costs milliseconds; a
// reset costs tens of microseconds. A machine goes back to the pool only after a clean run, and
// is reset before it is handed out again.
import { Machine, type MachineOptions } from './machine.js';

const MAX_IDLE_PER_SIZE = 2;
const idle = new Map<string, Machine[]>();
const stats = { created: 0, reused: 0 };

/** How many machines were created and how many reused, since start-up. */
export function machinePoolStats(): Readonly<typeof stats> {
  return { ...stats };
}

function key(opts: MachineOptions): string {
  return `${opts.memoryBytes}:${opts.timer ? 1 : 0}`;
}

/** A machine ready for start(): a reset idle one, or a new one. */
export function acquireMachine(opts: MachineOptions): Machine {
  const list = idle.get(key(opts));
  const m = list?.pop();
  if (!m) {
    stats.created++;
    return new Machine(opts);
  }
  try {
    m.reset();
    stats.reused++;
    return m;
  } catch (e) {
    m.close();
    throw e;
  }
}

/** Give a machine back after a run that ended cleanly (else close it). */
export function releaseMachine(m: Machine, reusable: boolean): void {
  const k = key({ memoryBytes: m.memoryLimit, timer: m.hasTimer });
  const list = idle.get(k) ?? [];
  // A machine that ran threads in parallel keeps its extra vCPUs: not worth pooling.
  if (!reusable || m.cpus.length > 1 || list.length >= MAX_IDLE_PER_SIZE) {
    m.close();
    return;
  }
  list.push(m);
  idle.set(k, list);
}

/** Close every idle machine (frees their memory). */
export function drainMachinePool(): void {
  for (const list of idle.values()) for (const m of list) m.close();
  idle.clear();
}
