// The costs that decide how fork is built (docs/design.md, "Processes"; issue 15): several
// address spaces (page-table roots) in one VM, or a VM per process. One run measures, as medians
// over many repetitions, on whatever KVM this host has:
//   1. a VM made from scratch (new Machine: KVM_CREATE_VM, memslot, vCPU, CPUID, system tables),
//      and a pooled reset (releaseMachine + acquireMachine of a machine that has just run a small
//      static program, so that reset zeroes what a real program touched);
//   2. a CR3 switch: KVM_GET_SREGS + KVM_SET_SREGS with another, equivalent page-table root (a copy
//      of the PML4 in a free page of the page-table pool) on every exit of bench/out/nullcall,
//      against the same exits with no sregs call and with get+set of unchanged sregs;
//   3. a 4 KiB copy inside guest memory on the host (Buffer.copy within the mapping), and a fork's
//      page-table work for a small static program: its PT pages copied and their writable PTEs
//      write-protected in both copies, plus the host's per-page permission bytes copied;
//   4. a copy-on-write fault round trip: bench/out/cowtouch maps pages read-only and writes to
//      each; this script's handler answers each write fault (an exit) by making the page writable
//      and copying 4 KiB, and the guest retries the write (FAULT_RETRY, as stack growth does).
// Then an estimate of fork + exec + wait of a small static program under each option (one VM with
// copy-on-write, one VM copying the writable pages at fork, a VM per process).
//
//   node build/bench/fork-costs.js [--reps N] [--calls N] [--rounds R]
//   node build/bench/fork-costs.js --copies-only [--reps N]   (section 3 only, in host memory: no KVM needed)
//   node build/bench/fork-costs.js --cr3-only [--calls N] [--rounds R]   (section 2 only)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Vcpu, VcpuExit } from '../src/kvm/kvm.js';
import { Machine, type HypercallHandler, type HypercallResult, type MachineOptions } from '../src/machine/machine.js';
import { acquireMachine, drainMachinePool, releaseMachine } from '../src/machine/pool.js';
import { PAGE_MAPPED, PROT_READ, PROT_WRITE } from '../src/machine/paging.js';
import { PAGE_SIZE, PTE_ADDR_MASK, PTE_PRESENT, PTE_PS, PTE_WRITABLE } from '../src/machine/x86.js';
import { FAULT_RETRY, Hypercall, PHYS_PML4, USER_BASE } from '../src/abi/abi.generated.js';
import { Kernel } from '../src/linux/kernel.js';
import { Vfs } from '../src/fs/vfs.js';
import type { OutputSink } from '../src/fs/open-file.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HELLO = join(ROOT, 'test/programs/out/hello.glibc');
const NULLCALL = join(ROOT, 'bench/out/nullcall');
const COWTOUCH = join(ROOT, 'bench/out/cowtouch');
/** As a default run (src/api/run.ts DEFAULT_MEMORY_MIB), with no timer. */
const OPTS: MachineOptions = { memoryBytes: 256 << 20 };
const PF_WRITE = 2;
const VEC_PF = 14;
const ENTRIES = 512;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer`);
  return v;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Nanoseconds fn takes, one sample per call. */
function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t);
}

const us = (ns: number) => Math.abs(ns) >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1000).toFixed(2)} us`;

/** Wraps the kernel's handler: what the bench does on an exit before the kernel serves it. */
class BenchHandler implements HypercallHandler {
  mode: 'plain' | 'sregs' | 'cr3' | 'cow' = 'plain';
  /** The two equivalent roots the 'cr3' mode alternates between. */
  roots: [bigint, bigint] = [0n, 0n];
  /** Where 'cow' copies each faulting page to (rotating through scratch pages). */
  scratch = 0;
  scratchPages = 1;
  cowFaults = 0;
  private nextScratch = 0;

  constructor(private readonly kernel: Kernel, private readonly machine: Machine) {}

  hypercall(nr: number, vcpu: Vcpu): HypercallResult {
    if (nr === Hypercall.SYSCALL && (this.mode === 'sregs' || this.mode === 'cr3')) {
      const s = vcpu.getSregs();
      if (this.mode === 'cr3') s.cr3 = s.cr3 === this.roots[0] ? this.roots[1] : this.roots[0];
      vcpu.setSregs(s);
    }
    if (nr === Hypercall.FAULT && this.mode === 'cow' && this.cowStep(vcpu)) return { action: 'resume' };
    return this.kernel.hypercall(nr, vcpu);
  }

  unexpectedExit(exit: VcpuExit, vcpu: Vcpu): void {
    this.kernel.unexpectedExit(exit, vcpu);
  }

  /** A write to a read-only data page: copy it (as COW would, to a new frame), make it writable, retry. */
  private cowStep(vcpu: Vcpu): boolean {
    const m = this.machine;
    if (Number(vcpu.reg('rdi')) !== VEC_PF || !(Number(vcpu.reg('rsi')) & PF_WRITE)) return false;
    const cr2 = vcpu.reg('rdx');
    if (cr2 < BigInt(USER_BASE) || cr2 >= BigInt(m.paging.userTop)) return false;
    const page = Math.floor(Number(cr2) / PAGE_SIZE) * PAGE_SIZE;
    if (m.paging.pageProt(page) !== (PAGE_MAPPED | PROT_READ)) return false;
    const dst = this.scratch + (this.nextScratch++ % this.scratchPages) * PAGE_SIZE;
    m.memory.copyWithin(dst, page, PAGE_SIZE);
    m.paging.map(page, PAGE_SIZE, PROT_READ | PROT_WRITE);
    this.cowFaults++;
    vcpu.setReg('rax', BigInt(FAULT_RETRY));
    return true;
  }
}

interface Run { stdout: string; status: string; kernel: Kernel }

/** Run a program in machine m (no grants, output captured); setup, when given, runs after exec and puts the bench's handler in front of the kernel. */
function runIn(m: Machine, path: string, args: string[], setup?: (h: BenchHandler) => void): Run {
  const chunks: Buffer[] = [];
  const sink: OutputSink = { write: (b) => { chunks.push(Buffer.from(b)); }, deferrable: true };
  const vfs = new Vfs([]);
  const kernel = new Kernel(m, {
    vfs, argv: [path, ...args], envp: [], exePath: path, cwd: '/', stdin: null, stdout: sink, stderr: sink,
  });
  try {
    kernel.exec(readFileSync(path));
    let status: string;
    if (setup) {
      const h = new BenchHandler(kernel, m);
      setup(h);
      kernel.limits.start();
      m.run(h);
      const init = kernel.init!;
      init.stubCache.drainOutput(init.fds);
      status = JSON.stringify(init.exit);
    } else {
      status = JSON.stringify(kernel.run());
    }
    return { stdout: Buffer.concat(chunks).toString(), status, kernel };
  } finally {
    kernel.close();
    vfs.close();
  }
}

function check(r: Run, what: string): void {
  if (!r.status.includes('"exited"') || !r.status.includes('"status":0')) throw new Error(`${what} failed: ${r.status}\n${r.stdout}`);
}

/** The PT pages (one per 2 MiB of user VA) that hold at least one PTE, and the PTE count. */
function userPtPages(m: Machine): { pages: Buffer[]; ptes: number; writable: number } {
  const mem = m.memory;
  const pages: Buffer[] = [];
  let ptes = 0, writable = 0;
  const next = (e: bigint) => Number(e & PTE_ADDR_MASK);
  const pml4e = mem.u64(PHYS_PML4);
  if (!(pml4e & PTE_PRESENT)) return { pages, ptes, writable };
  const pdpt = next(pml4e);
  for (let i = 0; i < ENTRIES; i++) {
    const pdpte = mem.u64(pdpt + i * 8);
    if (!(pdpte & PTE_PRESENT) || pdpte & PTE_PS) continue;
    for (let j = 0; j < ENTRIES; j++) {
      const pde = mem.u64(next(pdpte) + j * 8);
      if (!(pde & PTE_PRESENT) || pde & PTE_PS) continue;
      const pt = next(pde);
      let here = 0;
      for (let k = 0; k < ENTRIES; k++) {
        const e = mem.u64(pt + k * 8);
        if (!(e & PTE_PRESENT)) continue;
        here++;
        if (e & PTE_WRITABLE) writable++;
      }
      if (here) pages.push(Buffer.from(mem.slice(pt, PAGE_SIZE)));
      ptes += here;
    }
  }
  return { pages, ptes, writable };
}

/**
 * Section 3 on any buffer (guest memory, or host memory with --copies-only): the median cost of a
 * 4 KiB copy between distinct pages of a 16 MiB area, of copying the given PT pages and
 * write-protecting their writable PTEs in both copies, and of copying a 256 MiB machine's
 * per-page permission bytes.
 */
function copyCosts(bytes: Buffer, base: number, ptPages: readonly Buffer[], reps: number): { page: number; tables: number; perms: number } {
  const area = 16 << 20, src0 = base, dst0 = base + area;
  bytes.fill(0x5a, src0, src0 + area); // resident, not zero pages
  bytes.fill(0, dst0, dst0 + area);
  const batch = 1000;
  const pageCopy: number[] = [];
  for (let i = 0; i < reps + 5; i++) {
    const t = timed(() => {
      for (let j = 0; j < batch; j++) {
        const o = ((i * batch + j) * PAGE_SIZE) % area;
        bytes.copy(bytes, dst0 + o, src0 + o, src0 + o + PAGE_SIZE);
      }
    }) / batch;
    if (i >= 5) pageCopy.push(t);
  }
  const n = ptPages.length;
  const restore = () => ptPages.forEach((p, j) => bytes.set(p, src0 + j * PAGE_SIZE));
  const forkTables = () => {
    bytes.copy(bytes, dst0, src0, src0 + n * PAGE_SIZE);
    // Write-protect the writable PTEs in the child's copy and in the parent's (bit 1 of the low word).
    const a = new Uint32Array(bytes.buffer, bytes.byteOffset + src0, n * ENTRIES * 2);
    const b = new Uint32Array(bytes.buffer, bytes.byteOffset + dst0, n * ENTRIES * 2);
    for (let w = 0; w < a.length; w += 2) {
      if ((a[w]! & 3) === 3) { a[w] = a[w]! & ~2; b[w] = b[w]! & ~2; }
    }
  };
  const tables: number[] = [];
  const warm = 200; // the loop's first runs are interpreted, not what a busy host would see
  for (let i = 0; i < warm + reps; i++) {
    restore();
    const t = timed(forkTables);
    if (i >= warm) tables.push(t);
  }
  const permsSrc = new Uint8Array(OPTS.memoryBytes / PAGE_SIZE);
  const perms: number[] = [];
  for (let i = 0; i < warm + reps; i++) {
    const t = timed(() => { permsSrc.slice(); });
    if (i >= warm) perms.push(t);
  }
  return { page: median(pageCopy), tables: median(tables), perms: median(perms) };
}

/** Section 2: nullcall's cost per exit with no sregs call, with get+set of unchanged sregs, and
 * with get+set switching CR3 between two equivalent roots; the modes alternate within each round. */
function cr3Costs(calls: number, rounds: number, out: (s: string) => void): { exitPlain: number; exitSregs: number; exitCr3: number } {
  let m = acquireMachine(OPTS);
  const samples: Record<'plain' | 'sregs' | 'cr3', number[]> = { plain: [], sregs: [], cr3: [] };
  const root1 = m.memory.size - PAGE_SIZE; // the last page of the page-table pool: free for a small program
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['plain', 'sregs', 'cr3'] as const) {
      releaseMachine(m, true);
      m = acquireMachine(OPTS);
      const r = runIn(m, NULLCALL, [String(calls)], (h) => {
        if (m.memory.slice(root1, PAGE_SIZE).some((b) => b !== 0)) throw new Error('the second root page is in use');
        m.memory.write(root1, m.memory.slice(PHYS_PML4, PAGE_SIZE)); // an equivalent root: same lower tables
        h.roots = [BigInt(PHYS_PML4), BigInt(root1)];
        h.mode = mode;
      });
      m.memory.fill(root1, PAGE_SIZE);
      check(r, `nullcall (${mode})`);
      const ns = /ns_per_call=(\d+)/.exec(r.stdout);
      if (!ns) throw new Error(`nullcall printed: ${r.stdout}`);
      samples[mode].push(Number(ns[1]));
    }
  }
  const exitPlain = median(samples.plain), exitSregs = median(samples.sregs), exitCr3 = median(samples.cr3);
  out(`2. exit + return (nullcall, in-guest timing)            : ${us(exitPlain)}`);
  out(`   ... with GET+SET_SREGS, CR3 unchanged               : ${us(exitSregs)}  (+${us(exitSregs - exitPlain)})`);
  out(`   ... with GET+SET_SREGS switching CR3 every exit     : ${us(exitCr3)}  (+${us(exitCr3 - exitPlain)}; the CR3 change alone +${us(exitCr3 - exitSregs)})`);
  releaseMachine(m, true);
  return { exitPlain, exitSregs, exitCr3 };
}

/** PT pages like a static hello's (as counted in the lane: 246 PTEs, 74 writable, 3 PT pages). */
function syntheticHelloTables(): Buffer[] {
  const counts = [[120, 0], [80, 60], [46, 14]] as const; // [present, of which writable] per PT page
  return counts.map(([present, writable]) => {
    const b = Buffer.alloc(PAGE_SIZE);
    for (let k = 0; k < present; k++) b.writeUInt32LE((0x400000 + k * PAGE_SIZE) | 5 | (k < writable ? 2 : 0), k * 8);
    return b;
  });
}

function main(): void {
  const reps = arg('--reps', 30);
  if (process.argv.includes('--copies-only')) {
    // No KVM needed: the host-side copies on this host's own CPU, in an ordinary buffer.
    const c = copyCosts(Buffer.alloc(48 << 20), 0, syntheticHelloTables(), reps);
    console.log(`4 KiB copy: ${us(c.page)}; hello's page tables copied + write-protected: ${us(c.tables)}; perms bytes copied: ${us(c.perms)}`);
    return;
  }
  const calls = arg('--calls', 2000);
  const rounds = arg('--rounds', 5);
  const out = (s: string) => { console.log(s); };
  if (process.argv.includes('--cr3-only')) {
    cr3Costs(calls, rounds, out);
    drainMachinePool();
    return;
  }
  out(`fork costs on this host (medians; --reps ${reps}, --calls ${calls}, --rounds ${rounds})`);

  // ---- 1. VM creation and pooled reset ----
  new Machine(OPTS).close(); // warm: the kernel image, CPUID, the path probe
  const create: number[] = [], close: number[] = [];
  for (let i = 0; i < reps; i++) {
    let m: Machine | undefined;
    create.push(timed(() => { m = new Machine(OPTS); }));
    close.push(timed(() => m!.close()));
  }
  const vmNew = median(create);
  out(`1. new VM (create VM, memslot, vCPU, CPUID, tables) : ${us(vmNew)}   (close: ${us(median(close))})`);

  let m = acquireMachine(OPTS);
  check(runIn(m, HELLO, []), 'hello');
  const reset: number[] = [], helloRun: number[] = [];
  let hello: ReturnType<typeof userPtPages> | undefined;
  let resident = 0;
  for (let i = 0; i < reps; i++) {
    releaseMachine(m, true);
    reset.push(timed(() => { m = acquireMachine(OPTS); }));
    let r: Run | undefined;
    helloRun.push(timed(() => { r = runIn(m, HELLO, []); }));
    check(r!, 'hello');
    if (!hello) {
      hello = userPtPages(m);
      for (let p = USER_BASE / PAGE_SIZE; p < m.paging.userTop / PAGE_SIZE; p++) if (m.paging.perms[p]) resident++;
    }
  }
  const poolReset = median(reset);
  const execRun = median(helloRun);
  out(`   pooled reset after a static hello (release + acquire)  : ${us(poolReset)}`);
  out(`   exec + run + exit of static hello in a reset VM       : ${us(execRun)}`);
  releaseMachine(m, true);

  // ---- 2. CR3 switch on every exit ----
  const { exitPlain, exitCr3 } = cr3Costs(calls, rounds, out);

  // ---- 3. page copy and page-table copy, in a machine that runs nothing ----
  const scratchMachine = new Machine(OPTS);
  const c = copyCosts(scratchMachine.memory.slice(0, USER_BASE + (48 << 20)), USER_BASE + (16 << 20), hello!.pages, reps);
  scratchMachine.close();
  const copy4k = c.page, ptFork = c.tables + c.perms;
  out(`3. 4 KiB copy in guest memory (Buffer.copy)             : ${us(copy4k)}`);
  out(`   static hello: ${hello!.ptes} PTEs (${hello!.writable} writable) in ${hello!.pages.length} PT pages, ${resident} pages mapped`);
  out(`   its PT pages copied + writable PTEs write-protected   : ${us(c.tables)}  (+ the host's perms bytes copied: ${us(c.perms)})`);

  // ---- 4. copy-on-write fault round trip ----
  const pagesPerRun = 256;
  const fault: number[] = [], write: number[] = [];
  m = acquireMachine(OPTS);
  for (let i = 0; i < rounds; i++) {
    releaseMachine(m, true);
    m = acquireMachine(OPTS);
    let handler: BenchHandler | undefined;
    const r = runIn(m, COWTOUCH, [String(pagesPerRun)], (hh) => {
      handler = hh;
      hh.mode = 'cow';
      hh.scratch = USER_BASE + (8 << 20); // below the mmap area of a program this small; zeroed by reset
      hh.scratchPages = 64;
    });
    m.memory.fill(USER_BASE + (8 << 20), 64 * PAGE_SIZE); // the scratch frames: no page the pool's next program maps holds data
    check(r, 'cowtouch');
    if (handler!.cowFaults !== pagesPerRun) throw new Error(`cowtouch: ${handler!.cowFaults} COW faults, expected ${pagesPerRun}`);
    const mm = /fault_ns_per_page=(\d+) write_ns_per_page=(\d+)/.exec(r.stdout);
    if (!mm) throw new Error(`cowtouch printed: ${r.stdout}`);
    fault.push(Number(mm[1]));
    write.push(Number(mm[2]));
  }
  releaseMachine(m, true);
  const cowFault = median(fault) - median(write);
  out(`4. COW fault round trip (exit, copy 4 KiB, map RW, retry): ${us(cowFault)}  (${us(median(fault))} per faulting write, ${us(median(write))} per plain write)`);

  // ---- the estimate ----
  // A small static program's fork + exec + wait. The parent is as small (a hello-sized shell);
  // before exec the child touches a few pages (stack, libc data): COW_TOUCHED faults, and the
  // parent as many after fork returns. Exec's own cost (execRun: load, run, exit) is the same in
  // both options and was measured in a reset VM.
  const COW_TOUCHED = 8;
  const switches = 4; // parent -> child at fork, child -> parent at exit/wait, and back once more
  const oneVm = ptFork + switches * (exitCr3 - exitPlain) + 2 * COW_TOUCHED * cowFault + execRun;
  // The same, but fork copies the writable pages at once (read-only ones stay shared): no COW fault.
  const oneVmEager = ptFork + switches * (exitCr3 - exitPlain) + hello!.writable * copy4k + execRun;
  const perProcPooled = poolReset + resident * copy4k + execRun;
  const perProcNew = vmNew + resident * copy4k + execRun;
  out('');
  out(`fork + exec + wait of static hello (exec+run+exit ${us(execRun)} included in each):`);
  out(`  one VM, copy-on-write            : ${us(oneVm)}  (PT copy ${us(ptFork)}, ${switches} CR3 switches, ${2 * COW_TOUCHED} COW faults)`);
  out(`  one VM, writable pages copied    : ${us(oneVmEager)}  (PT copy, ${switches} CR3 switches, ${hello!.writable} pages copied)`);
  out(`  a VM per process, pooled reset   : ${us(perProcPooled)}  (reset ${us(poolReset)}, ${resident} pages copied)`);
  out(`  a VM per process, new VM         : ${us(perProcNew)}`);
  drainMachinePool();
}

main();
