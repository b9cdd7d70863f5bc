// Run a flat binary in a fresh VM with no kernel at all: the two first demos of "Learning KVM -
// implement your own kernel" (david942j). The guest talks to the host through two instructions:
// `out` of a byte to port 0x217 prints it, `hlt` ends the run. Anything else ends the run with an
// error that carries a register dump.
//
// Guest physical memory (memoryBytes, a multiple of 2 MiB, at most 1 GiB) is one memslot at 0:
//
//   real mode:  [0, memoryBytes)           code at 0, CS base 0 selector 0, IP 0, SP 0 (first push
//                                           wraps to 0xfffe), CR0.PE clear: 16-bit real mode.
//   long mode:  [0, tables)                code at 0, RIP 0, RSP = tables (grows down below them)
//               [tables, tables + 3 pages) PML4, PDPT, PD built by the host, at the top of memory:
//                                           tables = memoryBytes - 3 * 4 KiB
//               The PD identity-maps all of guest memory with 2 MiB pages (VA == PA), writable,
//               supervisor. CS is a flat 64-bit code segment (L=1) and DS/ES/FS/GS/SS flat data
//               segments, all CPL0; the GDT and IDT are empty, so any exception is a triple fault.
//
// A guest that never exits (`jmp .`) would block KVM_RUN, and with it the JS thread, forever. The
// time limit works by kicking the vCPU out of the guest with a signal: a process-wide watchdog
// worker thread waits for the deadline and then sends SIGURG to this process. The kernel gives a
// process-directed signal to the main thread when it does not block it, a pending signal makes
// KVM_RUN return EINTR (KVM_EXIT_INTR), the run loop sees the expired deadline and stops. SIGURG is
// ignored by default; a no-op listener makes it interrupt KVM_RUN while changing nothing else (an
// ignored signal would be discarded without waking the vCPU). Limitation: this only works when
// runRaw is called on the main thread; in a worker thread the signal lands on the main thread
// instead and only maxExits bounds the run (a guest that never exits then blocks that worker).
import { Worker, isMainThread } from 'node:worker_threads';
import type { Segment, SpecialRegisters, Vcpu, VcpuExit } from '../kvm/kvm.js';
import { kvm, zeroRegs } from './machine.js';
import { GuestMemory } from './memory.js';
import {
  CR0_AM, CR0_ET, CR0_MP, CR0_NE, CR0_PE, CR0_PG, CR0_WP, CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_PAE,
  EFER_LMA, EFER_LME, PAGE_SIZE, PTE_PRESENT, PTE_PS, PTE_WRITABLE, RFLAGS_RESERVED1,
  SEG_TYPE_CODE_XRA, SEG_TYPE_DATA_RWA,
} from './x86.js';

export type RawMode = 'real' | 'long';

export interface RawResult {
  /** 0 after `hlt`, 1 after anything else. */
  exitStatus: number;
  /** Why the run failed, with a register dump; absent on success. */
  error?: string;
}

export interface RawOptions {
  /** Receives the bytes of each `out` to RAW_PORT_PUTC, in order. */
  write(bytes: Uint8Array): void;
  /** Guest memory in bytes: a multiple of 2 MiB, at most 1 GiB. Default 2 MiB. */
  memoryBytes?: number;
  /** Stop after this many exits to the host (each `out` is one). Default 1e6. */
  maxExits?: number;
  /** Wall-clock limit in milliseconds, also for a guest that never exits. Default 5000. */
  timeoutMs?: number;
}

/** The port the guest prints a byte on. */
export const RAW_PORT_PUTC = 0x217;
/** Where the code is loaded and starts, in both modes. */
export const RAW_LOAD_ADDRESS = 0;
export const RAW_DEFAULT_MEMORY_BYTES = 0x200000;
export const RAW_DEFAULT_MAX_EXITS = 1_000_000;
export const RAW_DEFAULT_TIMEOUT_MS = 5000;

const EXIT_FAILURE = 1;
const LARGE_PAGE_SIZE = 0x200000;
const PD_ENTRIES = 512;
const MAX_MEMORY_BYTES = PD_ENTRIES * LARGE_PAGE_SIZE;
/** PML4, PDPT and PD, one page each, at the top of guest memory in long mode. */
const PAGE_TABLE_PAGES = 3;
/** GDT selectors the flat long-mode segments claim (the GDT itself stays empty). */
const SELECTOR_CODE64 = 0x8;
const SELECTOR_DATA = 0x10;
const SEGMENT_LIMIT_4G = 0xffffffff;
const MEMSLOT = 0;
/** Signal the watchdog sends to interrupt KVM_RUN (default action: ignore). */
const KICK_SIGNAL = 'SIGURG';
/** While the deadline has passed, the watchdog re-sends the kick this often (a kick that arrives
 *  between two KVM_RUN calls is otherwise lost). */
const KICK_REPEAT_MS = 20;

/** A runRaw argument is unusable; nothing was run. */
export class RawConfigError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'RawConfigError';
  }
}

/** Run `code` as a flat binary in a fresh single-vCPU VM in the given mode. */
export function runRaw(mode: RawMode, code: Uint8Array, opts: RawOptions): RawResult {
  const memoryBytes = opts.memoryBytes ?? RAW_DEFAULT_MEMORY_BYTES;
  const maxExits = opts.maxExits ?? RAW_DEFAULT_MAX_EXITS;
  const timeoutMs = opts.timeoutMs ?? RAW_DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes <= 0 || memoryBytes % LARGE_PAGE_SIZE || memoryBytes > MAX_MEMORY_BYTES) {
    throw new RawConfigError(`memoryBytes must be a multiple of 2 MiB between 2 MiB and 1 GiB, got ${memoryBytes}`);
  }
  if (!(maxExits >= 1)) throw new RawConfigError(`maxExits must be at least 1, got ${maxExits}`);
  if (!(timeoutMs > 0)) throw new RawConfigError(`timeoutMs must be positive, got ${timeoutMs}`);
  const tables = memoryBytes - PAGE_TABLE_PAGES * PAGE_SIZE;
  const codeLimit = mode === 'long' ? tables : memoryBytes;
  if (RAW_LOAD_ADDRESS + code.length > codeLimit) {
    throw new RawConfigError(`${code.length} bytes of code do not fit in ${codeLimit - RAW_LOAD_ADDRESS} bytes of guest memory; raise memoryBytes`);
  }

  const vm = kvm().createVm();
  try {
    const memory = new GuestMemory(vm.addMemory(MEMSLOT, 0, memoryBytes));
    memory.write(RAW_LOAD_ADDRESS, code);
    const vcpu = vm.createVcpu(0);
    const initial = vcpu.getSregs();
    let rsp = 0n;
    if (mode === 'real') {
      vcpu.setSregs({ ...initial, cs: { ...initial.cs, base: 0n, selector: 0 }, cr0: initial.cr0 & ~CR0_PE });
    } else {
      buildIdentityMap(memory, tables, memoryBytes);
      vcpu.setSregs(longModeSregs(initial, tables));
      rsp = BigInt(tables);
    }
    vcpu.setRegs({ ...zeroRegs(), rip: BigInt(RAW_LOAD_ADDRESS), rsp, rflags: RFLAGS_RESERVED1 });
    return runLoop(vcpu, opts.write, maxExits, timeoutMs);
  } finally {
    vm.close();
  }
}

/** PML4[0] -> PDPT[0] -> PD, whose entries map [0, memoryBytes) with 2 MiB pages. */
function buildIdentityMap(memory: GuestMemory, tables: number, memoryBytes: number): void {
  const pml4 = tables;
  const pdpt = pml4 + PAGE_SIZE;
  const pd = pdpt + PAGE_SIZE;
  memory.fill(tables, PAGE_TABLE_PAGES * PAGE_SIZE);
  memory.setU64(pml4, BigInt(pdpt) | PTE_PRESENT | PTE_WRITABLE);
  memory.setU64(pdpt, BigInt(pd) | PTE_PRESENT | PTE_WRITABLE);
  for (let i = 0; i < memoryBytes / LARGE_PAGE_SIZE; i++) {
    memory.setU64(pd + i * 8, BigInt(i * LARGE_PAGE_SIZE) | PTE_PRESENT | PTE_WRITABLE | PTE_PS);
  }
}

function longModeSregs(initial: SpecialRegisters, cr3: number): SpecialRegisters {
  const flat: Segment = {
    base: 0n, limit: SEGMENT_LIMIT_4G, selector: SELECTOR_DATA, type: SEG_TYPE_DATA_RWA, present: 1, dpl: 0,
    db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0,
  };
  const code: Segment = { ...flat, selector: SELECTOR_CODE64, type: SEG_TYPE_CODE_XRA, db: 0, l: 1 };
  return {
    ...initial,
    cs: code, ds: flat, es: { ...flat }, fs: { ...flat }, gs: { ...flat }, ss: { ...flat },
    cr0: CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG,
    cr3: BigInt(cr3),
    cr4: CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT,
    efer: EFER_LME | EFER_LMA,
  };
}

function runLoop(vcpu: Vcpu, write: (bytes: Uint8Array) => void, maxExits: number, timeoutMs: number): RawResult {
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string): RawResult => ({ exitStatus: EXIT_FAILURE, error: `${why}\n${registerDump(vcpu)}` });
  const watchdog = isMainThread ? Watchdog.get() : undefined;
  watchdog?.arm(timeoutMs);
  try {
    for (let exits = 0; exits < maxExits; exits++) {
      const exit = vcpu.runOnce();
      if (exit.kind === 'hlt') return { exitStatus: 0 };
      if (exit.kind === 'io' && exit.direction === 'out' && exit.port === RAW_PORT_PUTC && exit.size === 1) {
        // Copy: the kvm_run page is reused by the next exit.
        write(Uint8Array.from(vcpu.ioData(exit.dataOffset, exit.size * exit.count)));
      } else if (exit.kind !== 'interrupted') {
        return fail(describeExit(exit));
      }
      if (Date.now() >= deadline) return fail(`time limit of ${timeoutMs} ms exceeded`);
    }
    return fail(`exit limit of ${maxExits} exits to the host exceeded`);
  } finally {
    watchdog?.disarm();
  }
}

function describeExit(exit: VcpuExit): string {
  const hex = (n: number | bigint) => `0x${n.toString(16)}`;
  switch (exit.kind) {
    case 'io':
      return `unexpected ${exit.direction === 'in' ? '`in` from' : '`out` to'} port ${hex(exit.port)} ` +
        `(size ${exit.size}, count ${exit.count}); only a byte \`out\` to ${hex(RAW_PORT_PUTC)} and \`hlt\` are allowed`;
    case 'mmio':
      return `unexpected MMIO ${exit.isWrite ? 'write to' : 'read from'} ${hex(exit.address)} (${exit.length} bytes): ` +
        'the address is outside guest memory';
    case 'shutdown':
      // AMD (SVM) KVM resets the vCPU before it reports a shutdown, so there the dump shows the
      // reset state (rip 0xfff0), not the faulting one.
      return 'the guest shut down (KVM_EXIT_SHUTDOWN): a triple fault, e.g. an exception with no usable IDT ' +
        '(on AMD hosts KVM resets the vCPU first, so the registers may show the reset state, rip=0xfff0)';
    case 'fail-entry':
      return `KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason ${hex(exit.reason)}): invalid guest state`;
    case 'internal-error':
      return `KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror ${exit.suberror}): ` +
        'an instruction KVM could not emulate (on kvm_pvm: SSE, x87 and a few others at CPL0)';
    case 'hlt':
    case 'interrupted':
      return `unexpected ${exit.kind} exit`;
    case 'other':
      return `unexpected exit reason ${exit.reason}`;
  }
}

function registerDump(vcpu: Vcpu): string {
  const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;
  try {
    const r = vcpu.getRegs();
    const s = vcpu.getSregs();
    const gp = (['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const)
      .map((n) => `${n.padStart(3)}=${hex(r[n])}`);
    const lines = [`rip=${hex(r.rip)} rsp=${hex(r.rsp)} rflags=${hex(r.rflags)}`];
    for (let i = 0; i < gp.length; i += 4) lines.push(gp.slice(i, i + 4).join(' '));
    lines.push(`cr0=${hex(s.cr0)} cr2=${hex(s.cr2)} cr3=${hex(s.cr3)} cr4=${hex(s.cr4)} efer=${hex(s.efer)}`);
    lines.push(`cs=0x${s.cs.selector.toString(16)} (base ${hex(s.cs.base)}, ${s.cs.l ? '64-bit' : s.cs.db ? '32-bit' : '16-bit'}, dpl ${s.cs.dpl})`);
    return lines.join('\n');
  } catch (e) {
    return `(registers unavailable: ${e instanceof Error ? e.message : String(e)})`;
  }
}

// The watchdog thread. state[0] is a generation counter, odd while a run is armed; state[1] is the
// armed run's timeout in ms. Kept as source text so that it needs no file of its own at run time.
const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const state = new Int32Array(workerData.buffer);
for (;;) {
  const generation = Atomics.load(state, 0);
  if (generation % 2 === 0) { Atomics.wait(state, 0, generation); continue; }
  if (Atomics.wait(state, 0, generation, Atomics.load(state, 1)) !== 'timed-out') continue;
  while (Atomics.load(state, 0) === generation) {
    process.kill(process.pid, workerData.signal);
    Atomics.wait(state, 0, generation, workerData.repeatMs);
  }
}
`;

class Watchdog {
  private static instance: Watchdog | undefined;
  private readonly state = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));

  private constructor() {
    // Without a listener SIGURG is discarded at once and would not interrupt KVM_RUN.
    process.on(KICK_SIGNAL, () => {});
    const worker = new Worker(WATCHDOG_SOURCE, {
      eval: true,
      workerData: { buffer: this.state.buffer, signal: KICK_SIGNAL, repeatMs: KICK_REPEAT_MS },
      stdout: false, stderr: false,
    });
    worker.unref();
  }

  static get(): Watchdog {
    Watchdog.instance ??= new Watchdog();
    return Watchdog.instance;
  }

  arm(timeoutMs: number): void {
    Atomics.store(this.state, 1, Math.min(timeoutMs, 0x7fffffff));
    Atomics.add(this.state, 0, 1);
    Atomics.notify(this.state, 0);
  }

  disarm(): void {
    Atomics.add(this.state, 0, 1);
    Atomics.notify(this.state, 0);
  }
}
