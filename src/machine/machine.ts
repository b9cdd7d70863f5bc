// A long-mode machine ready to run one user program: guest memory, one vCPU, the kernel, and the
// structures the CPU needs (GDT, IDT, TSS, page tables), all built by the host so that the guest
// spends no CPL0 instructions on set-up. The run loop turns exits into hypercalls for the layer
// above (src/linux) and knows nothing of Linux.
import { readFileSync } from 'node:fs';
import { Kvm, memslotBytesPerPage, sparseMemslots, type MemoryRegion, type Vcpu, type VcpuExit, type Vm, type Segment, type SpecialRegisters, type CpuidEntry, type Registers } from '../kvm/kvm.js';
import { caps } from '../kvm/abi.js';
import { GuestMemory, type SharedRange } from './memory.js';
import { PAGE_CHARGED, PageTables, PROT_EXEC, PROT_READ, PROT_WRITE } from './paging.js';
import { loadKernelImage, type KernelImage } from './kernel-image.js';
import { cpuidRequests, cpuidTable, emptyCpuidTable, withBrand } from './cpuid-table.js';
import * as x86 from './x86.js';
import {
  GDT_KERNEL_CS, GDT_KERNEL_DS, GDT_TSS, GDT_USER_CS, GDT_USER_DS, HC_COUNT, HC_PORT_BASE, HYPERCALLS, Hypercall,
  KERNEL_VBASE, PHYS_GDT, PHYS_IDT, PHYS_ISTSTACK_TOP, PHYS_KSTACK_BOTTOM, PHYS_CPU_STACKS, CPU_STACKS_SIZE, CPU_TSS_SIZE, MAX_VCPUS, PHYS_KERNEL, PHYS_KSTACK_TOP, PHYS_TSS,
  CACHE_BUF, CACHE_SIZE, DCACHE, DCACHE_SIZE, PHYS_SHARED, SHARED_SIZE, STUB_SIZE, PHYS_USER_STUB, SH_CACHE_FD, STUB_ENTRY_OFFSET, STUB_PROBE_OFFSET, STUB_TRACED_OFFSET, VEC_TIMER,
  PHYS_CPUID_TABLE, STUB_CPUID_OFFSET, STUB_CPUID_FILL_OFFSET, OUTBUF, OUTBUF_SIZE, USER_BASE,
  PHYS_VDSO, PHYS_VVAR, VDSO_SIZE, VV_MONO0, VV_MULT, VV_REAL0, VV_SEQ, VV_TSC0, VV_VALID,
} from '../abi/abi.generated.js';

/**
 * How `syscall` reaches the host on this KVM, detected at start-up:
 * - 'cpl0-entry': hardware KVM; `syscall` switches to CPL0 and lands in the kernel's LSTAR entry.
 * - 'user-stub': kvm_pvm; `syscall` stays at CPL3, so LSTAR is a user-executable stub page.
 */
export type SyscallPath = 'cpl0-entry' | 'user-stub';

export interface MachineOptions {
  /**
   * Guest memory in bytes (a multiple of 2 MiB): the most user memory one address space may hold
   * bytes in at once (PageTables' commit limit). With hardware paging each address space spans
   * more than that (addressSpaceBytes), so that reservations (PROT_NONE, or never writable) fit.
   */
  memoryBytes: number;
  /** Give the guest a local APIC timer (needed for time limits). */
  timer?: boolean;
}

/** Where code the host writes for one program goes in the stub region, and the stub entries it
 * may jump to (used by src/linux/site-patch.ts). Guest addresses. */
export interface PatchLayout {
  trampolineBase: number;
  trampolineRoom: number;
  /** The stub's system-call entry (what LSTAR holds on the user-stub path, untraced). */
  syscallEntry: number;
  /** The stub's cpuid_emul. */
  cpuidEntry: number;
}

/** What the layer above answers to a hypercall. */
/** resume: enter the guest again. stop: the run ends. idle: the vCPU has nothing to run for now
 * (with several vCPUs, the kernel's run loop resumes it when it has). */
export type HypercallResult = { action: 'resume' } | { action: 'stop' } | { action: 'idle' };

export interface HypercallHandler {
  hypercall(nr: number, vcpu: Vcpu): HypercallResult;
  /** An exit that is not a hypercall (fault of the VM itself). Returns the stop reason. */
  unexpectedExit(exit: VcpuExit, vcpu: Vcpu): void;
}

/**
 * The memory and page tables of one process's address space beyond the machine's first
 * (newSpace): its own host memory in its own memslot, at its own guest-physical offset, with
 * its own page-table root. Switching processes is then a CR3 change, not a copy.
 */
export class SpaceMemory {
  constructor(readonly memory: GuestMemory, readonly paging: PageTables, readonly slot: number, readonly region: MemoryRegion) {}
}

/**
 * Released address spaces kept for the next fork: the first SPARE_SPACES with their pages
 * resident (zeroed as they are mapped again), up to KEPT_SPACES with their pages given back to
 * the host. A kept space spares the next fork a new memslot (KVM's metadata for it, and a
 * synchronization of the memslot tables) and new per-page tables, whose allocation makes V8
 * collect garbage: together ~20 ms in the lane for each fork beyond the spares.
 */
const SPARE_SPACES = 2;
const KEPT_SPACES = 8;

export class MachineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MachineError';
  }
}

let sharedKvm: Kvm | undefined;
let detectedPath: SyscallPath | undefined;
let cpuidCache: CpuidEntry[] | undefined;
/** Whether this host's memslots are sparse (measureSparse), measured once by the probe machine. */
let sparse: boolean | undefined;
/** The guest's own cpuid answers, measured by the first machine (src/machine/cpuid-table.ts),
 * and whether user mode may use the FS base instructions (measured with them). */
let measuredCpuid: Buffer | undefined;
let measuredFsBase = false;
/** How far a new vCPU's TSC may be from the clock anchor's (see Machine.checkTsc). */
const CLOCK_SKEW_NS = 50_000_000n;

/** A vCPU's TSC, the host's monotonic time it was read at, and how far that time may be off. */
interface TscReading { tsc: bigint; host: bigint; spread: bigint }

/**
 * vcpu's TSC (it must be out of the guest) and the midpoint of the host's clock read before and
 * after it: of up to 5 tries, the most tightly bracketed, stopping at one within 1 ms. A host
 * thread preempted between the two host readings would otherwise shift the midpoint by half the
 * preemption: once, under load in the lane, the vDSO's anchor was 530 ms off, and a second
 * vCPU's check then took the vDSO away for the whole run.
 */
function readTsc(vcpu: Vcpu): TscReading {
  let best: TscReading | null = null;
  for (let i = 0; i < 5 && !(best && best.spread <= 1_000_000n); i++) {
    const before = process.hrtime.bigint();
    const tsc = vcpu.getMsr(x86.MSR_IA32_TSC);
    const after = process.hrtime.bigint();
    if (!best || after - before < best.spread) best = { tsc, host: (before + after) / 2n, spread: after - before };
  }
  return best!;
}

/** The host CPU's name (its /proc/cpuinfo's first model name), or '' when it has none. */
function hostCpuName(): string {
  try {
    return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'))?.[1]?.trim() ?? '';
  } catch {
    return '';
  }
}

/** Bytes of cpuid_fill in the stub (a fault there means it finished). */
const CPUID_FILL_SIZE = 0x40;

/** The process-wide /dev/kvm handle. */
export function kvm(): Kvm {
  sharedKvm ??= new Kvm();
  return sharedKvm;
}

/** Guest memory of the throwaway machine that detectSyscallPath() may build to run the probe. */
const PROBE_MEMORY_BYTES = 16 << 20;

/**
 * How many bytes of addresses each address space spans, for memoryBytes of memory. With hardware
 * paging (cpl0-entry) far more than memory: a program may reserve far more than it touches (V8
 * ~10 GiB for each WebAssembly memory, valgrind its own memory from 64 GiB up, java's class-data
 * archive at 32 GiB), and the host memory behind the addresses is only taken when touched
 * (MAP_NORESERVE), within the commit limit. Each further address space takes as much
 * guest-physical address space, so the span follows the CPU's physical-address width: room for
 * 1024 spaces (48 bits, as on server CPUs: 256 GiB each), but never less than
 * ADDRESS_SPACE_BYTES while that leaves room for 64 (40 bits: 16 GiB), and at most
 * MAX_ADDRESS_SPACE_BYTES, which one page-directory-pointer table maps; and more than
 * ADDRESS_SPACE_BYTES only where memslots are sparse (spanFor). On kvm_pvm (user-stub:
 * shadow paging, processes take turns in one memory and fork copies images of the whole span)
 * it stays memoryBytes.
 */
export const ADDRESS_SPACE_BYTES = 16 * 1024 ** 3;
export const MAX_ADDRESS_SPACE_BYTES = 256 * 1024 ** 3;

/**
 * The guest's real time: the host's monotonic clock plus the real-time offset when kvmbox
 * started (performance.timeOrigin). The vDSO's anchors and the clock_gettime call both use it,
 * so a program never sees the two disagree, and a TIMER_ABSTIME deadline is on the clock the
 * program reads. (Date.now() has only milliseconds, and would follow wall-clock steps the vDSO
 * does not.)
 */
const REALTIME_OFFSET_NS = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) - process.hrtime.bigint();
export function realtimeNs(mono: bigint = process.hrtime.bigint()): bigint {
  return mono + REALTIME_OFFSET_NS;
}

/**
 * The lowest user address of a program on path: USER_BASE (1 MiB, as low as valgrind loads a
 * PIE, 0x108000), or above the stub's caches on the user-stub path, which maps them from USER_BASE up.
 */
function userFloor(path: SyscallPath): number {
  return path === 'user-stub' ? Math.max(USER_BASE, CACHE_BUF + CACHE_SIZE, DCACHE + DCACHE_SIZE) : USER_BASE;
}

function addressSpaceBytes(memoryBytes: number, path: SyscallPath | undefined, physBits: number): number {
  if (path !== 'cpl0-entry') return memoryBytes;
  return Math.max(memoryBytes, spanFor(physBits, sparse!));
}

/**
 * Whether a memslot costs this host's kernel nothing per page of guest addresses, by the kernel's
 * rule (sparseMemslots), then measured on vm (memslotBytesPerPage, with slot 1 at 8 GiB, which
 * the probe machine leaves free). Where it cannot be measured, or KVM keeps even 2 bytes a page
 * (write tracking: 128 MiB of kernel memory for each process of a 256 GiB span, made and zeroed
 * at every fork), the span stays ADDRESS_SPACE_BYTES.
 */
function measureSparse(vm: Vm, physBits: number): boolean {
  if (!sparseMemslots() || physBits < 35) return false;
  try {
    // A cost seen once is measured again: another process's vmalloc at the same moment would
    // count as this memslot's.
    for (let i = 0; i < 2; i++) {
      const perPage = memslotBytesPerPage(vm, 1, 8 * 1024 ** 3);
      if (perPage === null) return false;
      if (perPage < 1) return true;
    }
    return false;
  } catch {
    return false;
  }
}

/**
 * The span of an address space with hardware paging on a CPU of physBits (see
 * ADDRESS_SPACE_BYTES). More than ADDRESS_SPACE_BYTES only where a memslot's addresses cost the
 * host nothing until used (measureSparse): else 256 GiB would cost 128 MiB (write tracking) or
 * 512 MiB (reverse maps) of kernel memory for each process.
 */
export function spanFor(physBits: number, sparseSlots: boolean): number {
  const least = Math.min(ADDRESS_SPACE_BYTES, 2 ** physBits / 64);
  const span = sparseSlots ? Math.min(MAX_ADDRESS_SPACE_BYTES, Math.max(2 ** physBits / 1024, least)) : least;
  return span - (span % (1 << 21));
}

/**
 * The system-call path of this host's KVM ('cpl0-entry' on hardware KVM, 'user-stub' on
 * kvm_pvm), as probed once per process by the first Machine; builds and closes a small one if
 * none was made yet.
 */
export function detectSyscallPath(): SyscallPath {
  if (detectedPath === undefined) new Machine({ memoryBytes: PROBE_MEMORY_BYTES }, true).close();
  return detectedPath!;
}

/** The guest-physical address width of this host's KVM (CPUID 0x80000008, as it offers it). */
function physBitsOf(cpuid: readonly CpuidEntry[]): number {
  return (cpuid.find((e) => e.function === 0x80000008)?.eax ?? 36) & 0xff;
}

/**
 * How far each process's addresses span on this host for memoryBytes of memory, and the
 * guest-physical address width that decides it (see ADDRESS_SPACE_BYTES).
 */
export function addressSpan(memoryBytes: number): { bytes: number; physBits: number; sparseMemslots: boolean } {
  const path = detectSyscallPath();
  const physBits = physBitsOf(cpuidCache ?? []);
  return { bytes: addressSpaceBytes(memoryBytes, path, physBits), physBits, sparseMemslots: sparse! };
}

const GDT_ENTRIES: ReadonlyArray<readonly [number, bigint]> = [
  [GDT_KERNEL_CS, 0x00af9b000000ffffn],
  [GDT_KERNEL_DS, 0x00cf93000000ffffn],
  [GDT_USER_DS & ~3, 0x00cff3000000ffffn],
  [GDT_USER_CS & ~3, 0x00affb000000ffffn],
];
const APIC_DEFAULT_BASE = 0xfee00000n;
const APIC_BASE_BSP = 1n << 8n;
const APIC_BASE_X2APIC = 1n << 10n;
const APIC_BASE_ENABLE = 1n << 11n;
const TSS_SIZE = 104;
const TSS_IOMAP_OFFSET = TSS_SIZE;
/** Bytes of I/O permission bitmap: covers every hypercall port, then the required 0xff byte. */
const IOMAP_BYTES = Math.ceil((HC_PORT_BASE + HC_COUNT) / 8) + 1;
const IDT_GATE_INTERRUPT = 0x8e;
const IDT_GATE_DPL3 = 0x60;
const IST_DOUBLE_FAULT = 1;
const TRAMPOLINE_ALIGN = 64;

const CPUID1_ECX_XSAVE = 1 << 26;
/** XCR0 bits of the user states Linux enables: x87, SSE, AVX, and AVX-512's opmask, ZMM_Hi256 and
 * Hi16_ZMM (all three or none). Not MPX, nor AMX (KVM offers it only after a permission request). */
const XCR0_X87_SSE_AVX = 0x7n;
const XCR0_AVX512 = 0xe0n;

/** The XCR0 that enables every user state this KVM supports for the guest (0n: no XSAVE). */
function userXcr0(cpuid: readonly CpuidEntry[]): bigint {
  const leaf1 = cpuid.find((e) => e.function === 1);
  const xsave = cpuid.find((e) => e.function === 0xd && e.index === 0);
  if (!leaf1 || !xsave || !(leaf1.ecx & CPUID1_ECX_XSAVE)) return 0n;
  const supported = BigInt(xsave.eax >>> 0) | (BigInt(xsave.edx >>> 0) << 32n);
  let x = supported & XCR0_X87_SSE_AVX;
  if ((supported & XCR0_AVX512) === XCR0_AVX512 && x === XCR0_X87_SSE_AVX) x |= XCR0_AVX512;
  return x & 1n ? x : 0n;
}

/**
 * Bytes of the standard-format XSAVE image that holds the states of xcr0: the legacy area and
 * header (576), then each enabled component at its CPUID leaf 0xD offset.
 */
function xsaveImageSize(cpuid: readonly CpuidEntry[], xcr0: bigint): number {
  let size = 576;
  for (let i = 2; i < 64; i++) {
    if (!((xcr0 >> BigInt(i)) & 1n)) continue;
    const leaf = cpuid.find((e) => e.function === 0xd && e.index === i);
    if (leaf) size = Math.max(size, (leaf.ebx >>> 0) + (leaf.eax >>> 0));
  }
  return size;
}

function seg(selector: number, type: number, dpl: number, code: boolean): Segment {
  return {
    base: 0n, limit: 0xffffffff, selector, type, present: 1, dpl, db: code ? 0 : 1, s: 1,
    l: code ? 1 : 0, g: 1, avl: 0, unusable: 0,
  };
}

export class Machine {
  readonly vm: Vm;
  /** The first vCPU: every program starts on it (cpus[0]). */
  readonly vcpu: Vcpu;
  /** Every vCPU: the first, then those addCpu made for threads that run in parallel. */
  readonly cpus: Vcpu[] = [];
  /** The machine's first memory: the first address space's user pages, and the kernel's below them. */
  readonly memory: GuestMemory;
  /** --memory: the most user memory an address space may commit (PageTables' commit limit); memory.size may be more. */
  readonly memoryLimit: number;
  readonly paging: PageTables;
  readonly kernel: KernelImage;
  readonly syscallPath: SyscallPath;
  /** CPUID.1:EDX, what Linux reports as AT_HWCAP. */
  readonly hwcap: number;
  /** The CPUID answers every vCPU gives (KVM's supported set): /proc/cpuinfo is made from them. */
  get cpuid(): readonly CpuidEntry[] {
    return cpuidCache ?? [];
  }
  readonly hasTimer: boolean;
  /** Where code the host writes for one program (system-call trampolines) goes: the stub
   * region after the stub's own image, user read + execute. */
  readonly trampolineBase: number;
  readonly trampolineRoom: number;
  /** User mode may set and read its FS base itself (wrfsbase: kvm_pvm runs it with the host's CR4). */
  userFsBase = false;
  /** Bytes of trampolines the current program has (cleared by reset). */
  private trampolineLength = 0;
  private closed = false;

  /** probe: this is detectSyscallPath's machine (its memory is memoryBytes whatever the path). */
  constructor(opts: MachineOptions, probe = false) {
    const path = probe ? undefined : detectSyscallPath();
    this.kernel = loadKernelImage();
    this.trampolineBase = PHYS_USER_STUB + x86.alignUp(this.kernel.stub.length, TRAMPOLINE_ALIGN);
    this.trampolineRoom = PHYS_CPUID_TABLE - this.trampolineBase;
    const k = kvm();
    this.vm = k.createVm();
    this.hasTimer = opts.timer ?? false;
    try {
      if (this.hasTimer) this.vm.createIrqchip();
      cpuidCache ??= withBrand(k.supportedCpuid(), hostCpuName());
      this.physBits = physBitsOf(cpuidCache);
      this.memoryLimit = opts.memoryBytes;
      const region = this.vm.addMemory(0, 0, addressSpaceBytes(opts.memoryBytes, path, this.physBits));
      this.memory = new GuestMemory(region);
      this.vcpu = this.vm.createVcpu(0);
      this.cpus.push(this.vcpu);
      this.vcpu.setCpuid(cpuidCache);
      this.hwcap = cpuidCache.find((e) => e.function === 1)?.edx ?? 0;
      this.paging = new PageTables(this.memory, { nx: true, commitLimit: this.memoryLimit });
      this.active = this.paging;
      this.maxSlots = k.checkExtension(caps.KVM_CAP_NR_MEMSLOTS) || 32;
      this.buildSystemTables();
      this.syscallPath = detectedPath ??= this.probeSyscallPath();
      if (probe) sparse ??= measureSparse(this.vm, this.physBits);
      this.paging.userFloor = userFloor(this.syscallPath);
      this.mapUserSpecials(this.paging);
      // The stub's cpuid_emul answers from this table (patched sites only exist on this path).
      if (this.syscallPath === 'user-stub') this.memory.write(PHYS_CPUID_TABLE, measuredCpuid ??= this.measureCpuid(cpuidCache));
      this.userFsBase = this.syscallPath === 'user-stub' && measuredFsBase;
      // No program has mapped anything yet: each reset returns the page tables to this.
      this.paging.markBase();
    } catch (e) {
      this.vm.close();
      throw e;
    }
  }

  private buildSystemTables(): void {
    const m = this.memory;
    m.write(PHYS_KERNEL, this.kernel.kernel);
    m.write(PHYS_USER_STUB, this.kernel.stub);
    m.fill(PHYS_VDSO, VDSO_SIZE);
    m.write(PHYS_VDSO, this.kernel.vdso);
    m.fill(PHYS_VVAR, x86.PAGE_SIZE);
    this.paging.init();
    this.mapUserSpecials(this.paging);

    m.fill(PHYS_GDT, 4096);
    for (const [sel, desc] of GDT_ENTRIES) m.setU64(PHYS_GDT + sel, desc);
    // 16-byte 64-bit TSS descriptor, type 0x89 (available), present.
    const tssBase = KERNEL_VBASE + BigInt(PHYS_TSS);
    const tssLimit = BigInt(TSS_IOMAP_OFFSET + IOMAP_BYTES - 1);
    const lo = (tssLimit & 0xffffn) | ((tssBase & 0xffffffn) << 16n) | (0x89n << 40n) |
      (((tssLimit >> 16n) & 0xfn) << 48n) | (((tssBase >> 24n) & 0xffn) << 56n);
    m.setU64(PHYS_GDT + GDT_TSS, lo);
    m.setU64(PHYS_GDT + GDT_TSS + 8, tssBase >> 32n);

    m.fill(PHYS_TSS, 4096);
    m.setU64(PHYS_TSS + 4, KERNEL_VBASE + BigInt(PHYS_KSTACK_TOP)); // RSP0
    m.setU64(PHYS_TSS + 36, KERNEL_VBASE + BigInt(PHYS_ISTSTACK_TOP)); // IST1
    m.setU16(PHYS_TSS + 102, TSS_IOMAP_OFFSET);
    this.setIoBitmap(false);

    m.fill(PHYS_IDT, 4096);
    this.kernel.vectors.forEach((addr, i) => {
      const vector = i < 32 ? i : VEC_TIMER;
      const o = PHYS_IDT + vector * 16;
      // int3 may be raised from user mode (SIGTRAP), like Linux.
      const attr = IDT_GATE_INTERRUPT | (vector === x86.VEC_BP ? IDT_GATE_DPL3 : 0);
      const ist = vector === x86.VEC_DF || vector === x86.VEC_NMI || vector === x86.VEC_MC ? IST_DOUBLE_FAULT : 0;
      m.setU16(o, Number(addr & 0xffffn));
      m.setU16(o + 2, GDT_KERNEL_CS);
      m.setU8(o + 4, ist);
      m.setU8(o + 5, attr);
      m.setU16(o + 6, Number((addr >> 16n) & 0xffffn));
      m.setU32(o + 8, Number((addr >> 32n) & 0xffffffffn));
    });
  }

  /** The page tables the vCPUs run with: the machine's own, or a process's (activate). */
  private active: PageTables;
  /** Address spaces of their own (newSpace), by memslot, and released ones kept for reuse. */
  private readonly spaces = new Map<number, SpaceMemory>();
  private readonly spare: SpaceMemory[] = [];
  /** KVM's memslot count, and the guest's physical-address width (CPUID 0x80000008): how many spaces fit. */
  private readonly maxSlots: number;
  private readonly physBits: number;

  /**
   * On the user-stub path, user mode may `out` to the hypercalls the ABI marks userAllowed (the
   * ones the stub issues); on the CPL0 path to none. Every other port faults in user mode.
   */
  private setIoBitmap(allowUserHypercalls: boolean): void {
    this.memory.fill(PHYS_TSS + TSS_IOMAP_OFFSET, IOMAP_BYTES, 0xff);
    if (!allowUserHypercalls) return;
    for (const h of HYPERCALLS) {
      if (!h.userAllowed) continue;
      const a = PHYS_TSS + TSS_IOMAP_OFFSET + (h.port >> 3);
      this.memory.setU8(a, this.memory.u8(a) & ~(1 << (h.port & 7)));
    }
  }

  private sregs(userMode: boolean): SpecialRegisters {
    const kcs = seg(GDT_KERNEL_CS, x86.SEG_TYPE_CODE_XRA, 0, true);
    const kds = seg(GDT_KERNEL_DS, x86.SEG_TYPE_DATA_RWA, 0, false);
    const ucs = seg(GDT_USER_CS, x86.SEG_TYPE_CODE_XRA, 3, true);
    const uds = seg(GDT_USER_DS, x86.SEG_TYPE_DATA_RWA, 3, false);
    const cs = userMode ? ucs : kcs;
    const ds = userMode ? uds : kds;
    const nullSeg: Segment = { ...uds, selector: 0, unusable: 1, present: 0 };
    return {
      cs, ds: nullSeg, es: nullSeg, fs: { ...nullSeg }, gs: { ...nullSeg }, ss: ds,
      tr: {
        base: KERNEL_VBASE + BigInt(PHYS_TSS), limit: TSS_IOMAP_OFFSET + IOMAP_BYTES - 1, selector: GDT_TSS,
        type: x86.SEG_TYPE_TSS64_BUSY, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0,
      },
      ldt: { ...nullSeg, type: 2, s: 0 },
      gdt: { base: KERNEL_VBASE + BigInt(PHYS_GDT), limit: 4095 },
      idt: { base: KERNEL_VBASE + BigInt(PHYS_IDT), limit: 4095 },
      cr0: x86.CR0_PE | x86.CR0_MP | x86.CR0_ET | x86.CR0_NE | x86.CR0_WP | x86.CR0_AM | x86.CR0_PG,
      cr2: 0n,
      cr3: BigInt(this.active.rootPhys),
      cr4: x86.CR4_PAE | x86.CR4_OSFXSR | x86.CR4_OSXMMEXCPT,
      cr8: 0n,
      efer: x86.EFER_SCE | x86.EFER_LME | x86.EFER_LMA | x86.EFER_NXE,
      // x2APIC mode (the kernel programs the timer through MSRs) when there is an APIC at all.
      apic_base: this.hasTimer ? APIC_DEFAULT_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE | APIC_BASE_X2APIC : 0n,
    };
  }

  private setSyscallMsrs(path: SyscallPath | 'probe', traced = false, vcpu = this.vcpu): void {
    const lstar = path === 'cpl0-entry' ? this.kernel.syscallEntryHw
      : path === 'probe' ? this.kernel.probeEntry : BigInt(PHYS_USER_STUB + (traced ? STUB_TRACED_OFFSET : STUB_ENTRY_OFFSET));
    // SYSRET loads CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8: user CS 0x33, SS 0x2b.
    const star = (BigInt(GDT_USER_DS - 8) << 48n) | (BigInt(GDT_KERNEL_CS) << 32n);
    // On the CPL0 path mask IF/TF/DF/AC/NT/IOPL like Linux; on the user stub the flags must stay the
    // caller's (and IF set, or the timer could never fire again).
    const sfmask = path === 'user-stub' ? 0n
      : x86.RFLAGS_IF | x86.RFLAGS_TF | x86.RFLAGS_DF | x86.RFLAGS_AC | x86.RFLAGS_NT | x86.RFLAGS_IOPL;
    vcpu.setMsrs([
      [x86.MSR_STAR, star], [x86.MSR_LSTAR, lstar], [x86.MSR_CSTAR, 0n], [x86.MSR_SYSCALL_MASK, sfmask],
      [x86.MSR_FS_BASE, 0n], [x86.MSR_GS_BASE, 0n], [x86.MSR_KERNEL_GS_BASE, 0n],
    ]);
  }

  /** Run `syscall` from user mode once and see at which privilege level LSTAR is reached. */
  /**
   * The vCPU's next exit during start-up, past those a signal to the host thread caused (a
   * profiler's SIGPROF ends KVM_RUN early), within a bound: budget.left such exits, shared by
   * the caller's runs.
   */
  private runPastInterrupts(budget = { left: 10_000 }): VcpuExit {
    let exit = this.vcpu.runOnce();
    while (exit.kind === 'interrupted' && budget.left-- > 0) exit = this.vcpu.runOnce();
    return exit;
  }

  private probeSyscallPath(): SyscallPath {
    this.setSyscallMsrs('probe');
    this.vcpu.setSregs(this.sregs(true));
    this.vcpu.setRegs({
      ...zeroRegs(), rip: BigInt(PHYS_USER_STUB + STUB_PROBE_OFFSET), rflags: x86.RFLAGS_RESERVED1,
      rsp: 0n,
    });
    const interrupts = { left: 10_000 };
    for (let i = 0; i < 4; i++) {
      const exit = this.runPastInterrupts(interrupts);
      if (exit.kind !== 'io') continue;
      if (exit.port === HC_PORT_BASE + Hypercall.PROBE) return 'cpl0-entry';
      if (exit.port === HC_PORT_BASE + Hypercall.FAULT) {
        if (this.vcpu.reg('r10') === this.kernel.probeEntry) return 'user-stub';
        throw new MachineError(`start-up probe: unexpected fault, vector ${this.vcpu.reg('rdi')} at 0x${this.vcpu.reg('r10').toString(16)}`);
      }
      throw new MachineError(`start-up probe: unexpected exit on port ${exit.port}`);
    }
    throw new MachineError('start-up probe: `syscall` reached neither the kernel nor the fault handler');
  }

  /**
   * Run the stub's cpuid_fill in user mode over every (leaf, subleaf) KVM answers, in the
   * read-ahead cache's pages (user-writable, empty until a program runs), and make the table of
   * answers; it also finds whether user mode may use wrfsbase. Without a clean finish the table
   * is empty: every cpuid then runs the instruction.
   */
  private measureCpuid(entries: readonly CpuidEntry[]): Buffer {
    const requests = cpuidRequests(entries);
    this.memory.write(CACHE_BUF, requests);
    this.vcpu.setSregs(this.sregs(true));
    const fill = PHYS_USER_STUB + STUB_CPUID_FILL_OFFSET;
    this.vcpu.setRegs({ ...zeroRegs(), rip: BigInt(fill), rsi: BigInt(CACHE_BUF), rflags: x86.RFLAGS_RESERVED1 });
    try {
      const exit = this.runPastInterrupts();
      const rip = Number(this.vcpu.reg('r10'));
      const vector = this.vcpu.reg('rdi');
      // Done: #BP after the FS base probe worked, #UD at it when it did not.
      if (exit.kind === 'io' && exit.port === HC_PORT_BASE + Hypercall.FAULT && (vector === BigInt(x86.VEC_BP) || vector === BigInt(x86.VEC_UD)) &&
        rip >= fill && rip < fill + CPUID_FILL_SIZE) {
        measuredFsBase = vector === BigInt(x86.VEC_BP);
        return cpuidTable(entries, this.memory.slice(CACHE_BUF, requests.length));
      }
      return emptyCpuidTable();
    } finally {
      this.memory.fill(CACHE_BUF, requests.length);
    }
  }

  /**
   * Prepare the vCPU to enter the kernel's boot hop, which irets to user mode at entry with
   * the given stack. timerCount > 0 starts the periodic guest timer. mustFault: unmapped user
   * ranges [lo, hi) where a touch must fault (the stack's growth reserve).
   */
  start(entry: number, userStack: number, timerCount: number, traced = false, mustFault: ReadonlyArray<readonly [number, number]> = []): void {
    this.active.seal((page) => mustFault.some(([lo, hi]) => page * x86.PAGE_SIZE >= lo && page * x86.PAGE_SIZE < hi));
    this.memory.fill(PHYS_SHARED, SHARED_SIZE);
    this.memory.setU32(PHYS_SHARED + SH_CACHE_FD, 0xffffffff); // no cached file
    this.setSyscallMsrs(this.syscallPath, traced);
    this.setIoBitmap(this.syscallPath === 'user-stub');
    this.flushWanted.delete(this.vcpu); // the boot hop reloads CR3
    this.flushBeforeOthers.delete(this.vcpu);
    // Hardware KVM runs user code with the guest's own XCR0: set it, as Linux does, or AVX raises
    // #UD. kvm_pvm runs user code with the host's XCR0 (and cannot emulate xsetbv at CPL0).
    const xcr0 = this.syscallPath === 'cpl0-entry' ? userXcr0(cpuidCache ?? []) : 0n;
    const sregs = this.sregs(false);
    if (xcr0) sregs.cr4 |= x86.CR4_OSXSAVE;
    this.vcpu.setSregs(sregs);
    if (xcr0) this.vcpu.setXcr0(xcr0);
    // iretq frame for the user entry: RIP, CS, RFLAGS, RSP, SS (lowest address first).
    const frame = PHYS_KSTACK_TOP - 5 * 8;
    const m = this.memory;
    m.setU64(frame, BigInt(entry));
    m.setU64(frame + 8, BigInt(GDT_USER_CS));
    m.setU64(frame + 16, x86.RFLAGS_RESERVED1 | x86.RFLAGS_IF);
    m.setU64(frame + 24, BigInt(userStack));
    m.setU64(frame + 32, BigInt(GDT_USER_DS));
    this.vcpu.setRegs({
      ...zeroRegs(), rip: this.kernel.entry, rsp: KERNEL_VBASE + BigInt(frame), rdi: BigInt(timerCount),
      rflags: x86.RFLAGS_RESERVED1,
    });
  }

  /**
   * The user-visible pages outside the program's range: the system-call stub (read + execute),
   * and on the user-stub path the shared page and the read-ahead cache (read + write, the
   * guest's own scratch memory: the host trusts nothing in them).
   */
  private mapUserSpecials(paging: PageTables): void {
    paging.mapSpecial(PHYS_USER_STUB, PROT_READ | PROT_EXEC, STUB_SIZE);
    if (this.syscallPath === 'cpl0-entry') {
      paging.mapSpecial(PHYS_VVAR, PROT_READ, x86.PAGE_SIZE, { callsRead: true });
      paging.mapSpecial(PHYS_VDSO, PROT_READ | PROT_EXEC, VDSO_SIZE, { callsRead: true });
    }
    if (this.syscallPath !== 'user-stub') return;
    paging.mapSpecial(PHYS_SHARED, PROT_READ | PROT_WRITE, SHARED_SIZE);
    paging.mapSpecial(CACHE_BUF, PROT_READ | PROT_WRITE, CACHE_SIZE);
    paging.mapSpecial(DCACHE, PROT_READ, DCACHE_SIZE);
    paging.mapSpecial(OUTBUF, PROT_READ | PROT_WRITE, OUTBUF_SIZE);
  }

  /**
   * Memory and page tables for one more address space (fork, or execve from a vfork child),
   * empty: a released one if one is kept (its pages are zeroed as they are mapped again, see
   * PageTables.reset), else a new memslot at the next free guest-physical offset. Only with
   * hardware paging (the cpl0-entry path). Throws MachineError when the guest-physical address
   * space or KVM's memslots are used up.
   */
  newSpace(): SpaceMemory {
    if (this.syscallPath !== 'cpl0-entry') throw new MachineError('address spaces of their own need the cpl0-entry path');
    // Its root may be one a vCPU last ran (a released space's, or one at the same guest-physical
    // offset): loading it again would be no CR3 change, so each vCPU loads the twin instead.
    for (const v of this.cpus) this.flushWanted.add(v);
    // The spares with resident pages first (at the front), then those given back.
    const kept = this.spare.shift();
    if (kept) {
      this.spaces.set(kept.slot, kept);
      return kept;
    }
    const size = this.memory.size;
    const stride = x86.alignUp(size, 1 << 21);
    let slot = 1;
    while (this.spaces.has(slot)) slot++;
    if (slot >= this.maxSlots || (slot + 1) * stride > 2 ** this.physBits) {
      throw new MachineError(`no room for another address space (${this.spaces.size + 1} in use)`);
    }
    let region: MemoryRegion;
    try {
      region = this.vm.addMemoryFrom(slot, slot * stride, size, USER_BASE);
    } catch (e) {
      // The host's own addresses (a span each) or KVM's memory for the slot ran out.
      throw new MachineError(`no room for another address space (${this.spaces.size + 1} in use): ${(e as Error).message}`);
    }
    try {
      const memory = new GuestMemory(region, this.memory);
      const paging = new PageTables(memory, { nx: true, commitLimit: this.memoryLimit }, slot * stride);
      paging.init();
      this.mapUserSpecials(paging);
      paging.markBase();
      const sm = new SpaceMemory(memory, paging, slot, region);
      this.spaces.set(slot, sm);
      return sm;
    } catch (e) {
      this.vm.removeMemory(slot, region);
      throw e;
    }
  }

  /**
   * The address space of sm has ended (no process uses it, and no vCPU runs it): kept for the
   * next newSpace with its pages, to be zeroed as they are mapped (the first SPARE_SPACES), or
   * with its pages given back to the host (up to KEPT_SPACES), or given back with its memslot.
   */
  releaseSpace(sm: SpaceMemory): void {
    if (this.spaces.get(sm.slot) !== sm) return;
    this.spaces.delete(sm.slot);
    sm.memory.unshareAll();
    if (this.active === sm.paging) this.activate(this.paging);
    if (this.spare.length < SPARE_SPACES) {
      sm.paging.reset([], true);
      this.spare.unshift(sm);
    } else if (this.spare.length < KEPT_SPACES) {
      // Every page the guest or the host may have touched (or left unzeroed) lies in the used
      // ranges: given back, they read as zero, and KVM drops their translations.
      for (const [start, end] of sm.paging.usedRanges()) sm.memory.discard(start, end - start);
      sm.paging.reset([], false);
      this.spare.push(sm);
    } else {
      this.vm.removeMemory(sm.slot, sm.region);
    }
  }

  /**
   * execve in sm's address space (the process's own, or new memory for a vfork child): as reset
   * does for the machine's first, lazily, and the vCPUs run it from their next entry.
   */
  resetSpace(sm: SpaceMemory): void {
    sm.memory.unshareAll();
    sm.paging.reset([], true);
    this.activate(sm.paging);
    this.memory.fill(PHYS_SHARED, SHARED_SIZE);
    this.clearTrampolines();
    this.vcpu.resetFpu();
    for (const v of this.cpus) if (v !== this.vcpu) this.flushWanted.add(v);
  }

  /**
   * fork: give dst (empty, from newSpace) the mappings of the address space (mem, paging) and a
   * copy of every mapped page the host holds there (the others read as zero in both).
   */
  copySpace(mem: GuestMemory, paging: PageTables, dst: SpaceMemory): void {
    const PAGE = x86.PAGE_SIZE;
    const perms = paging.perms;
    const runs = mappedResidentRuns(mem, paging);
    // Pages written whole below need no zeroing when mapped.
    for (const [p, q] of runs) dst.paging.willOverwrite(p, q);
    const rights = PROT_READ | PROT_WRITE | PROT_EXEC;
    for (const [lo, hi] of paging.mappedRanges()) {
      const end = hi / PAGE;
      for (let i = lo / PAGE; i < end;) {
        const byte = perms[i]!;
        let j = i + 1;
        while (j < end && perms[j] === byte) j++;
        if (byte) dst.paging.map(i * PAGE, (j - i) * PAGE, byte & rights, (byte & PAGE_CHARGED) !== 0);
        i = j;
      }
    }
    for (const [p, q] of runs) mem.copyTo(dst.memory, p * PAGE, (q - p) * PAGE);
    // Shared memory stays shared, and image pages (never written: privatize) are the image's: the
    // child maps the same host memory.
    for (const r of mem.shared) dst.memory.share(r.start, r.end - r.start, r.backing, r.offset, r.copyOnWrite);
  }

  /** Drop every address space of its own (between sandboxes: nothing of one may reach the next). */
  private dropSpaces(): void {
    for (const sm of [...this.spaces.values(), ...this.spare]) {
      sm.memory.unshareAll();
      this.vm.removeMemory(sm.slot, sm.region);
    }
    this.spaces.clear();
    this.spare.length = 0;
    this.active = this.paging;
  }

  /**
   * Run the vCPUs with paging (the machine's own page tables or a SpaceMemory's) from their next
   * entry to user mode: each loads its root then (a CR3 change, which drops the vCPU's cached
   * translations of the last one).
   */
  activate(paging: PageTables): void {
    this.active = paging;
  }

  /** Resident bytes of mapped user pages in paging's address space (mem: its memory). */
  static mappedResidentBytes(mem: GuestMemory, paging: PageTables): number {
    let bytes = 0;
    for (const [p, q] of mappedResidentRuns(mem, paging)) bytes += (q - p) * x86.PAGE_SIZE;
    return bytes;
  }

  /** Where trampolines go and which stub entries patched sites use. */
  get patchLayout(): PatchLayout {
    return {
      trampolineBase: this.trampolineBase, trampolineRoom: this.trampolineRoom,
      syscallEntry: PHYS_USER_STUB + STUB_ENTRY_OFFSET, cpuidEntry: PHYS_USER_STUB + STUB_CPUID_OFFSET,
    };
  }

  /** Place the current program's trampolines at trampolineBase (src/linux/site-patch.ts). */
  installTrampolines(code: Buffer): void {
    if (code.length > this.trampolineRoom) throw new MachineError('trampolines larger than the room after the stub');
    this.clearTrampolines();
    this.memory.write(this.trampolineBase, code);
    this.trampolineLength = code.length;
  }

  private clearTrampolines(): void {
    if (this.trampolineLength) this.memory.fill(this.trampolineBase, this.trampolineLength, x86.OPCODE_INT3);
    this.trampolineLength = 0;
  }

  /**
   * Prepare the vCPU to run a kernel function at CPL0 with one argument, instead of a user
   * program: used by the test suite to start the hypercall fuzzer.
   */
  startKernelFunction(entry: bigint, arg: bigint): void {
    this.setSyscallMsrs(this.syscallPath);
    this.vcpu.setSregs(this.sregs(false));
    this.vcpu.setRegs({
      ...zeroRegs(), rip: entry, rsp: KERNEL_VBASE + BigInt(PHYS_KSTACK_TOP), rdi: arg, rflags: x86.RFLAGS_RESERVED1,
    });
  }

  /**
   * Make the machine ready for another program: every user page the host holds is zeroed, the
   * user page tables are rebuilt empty, and the FPU/SSE/AVX state is reset. The kernel region was
   * never writable from user mode and is left as it is.
   *
   * The previous program's translations must go too. The boot hop reloads CR3, but on kvm_pvm
   * (shadow paging) KVM keeps the shadow entries of page tables that the host rewrote behind its
   * back: the next program could then use, without a fault, pages of the last one that it never
   * mapped (its stack below what the host has grown, say), and the host would refuse pointers
   * into them (EFAULT). start() makes KVM drop those that would be wrong for the new program
   * (PageTables.seal).
   */
  reset(opts: { lazy?: boolean } = {}): void {
    if (!opts.lazy) this.dropSpaces();
    this.memory.unshareAll();
    this.active = this.paging;
    // Only where user pages were mapped can the guest or the host have touched memory.
    const kept: Array<[number, number]> = [];
    // Lazily (execve inside a sandbox, hardware paging only): the pages stay as they are, and
    // PageTables.map zeroes each when it is next mapped. The next program is of the same sandbox,
    // and an unmapped page is out of reach of the guest and of the host's pointer checks; a
    // fork + execve then clears only the pages the new program maps, not all of the parent's.
    const lazy = opts.lazy === true && this.syscallPath !== 'user-stub';
    if (!lazy) for (const [start, end] of this.paging.usedRanges()) kept.push(...this.memory.zeroResident(start, end - start));
    if (this.syscallPath === 'user-stub') {
      // The stub's caches: only that path maps them or has the host fill them (the cpuid probe
      // clears what it writes there), and a 2 MiB huge page makes all of CACHE_BUF resident.
      this.memory.zeroResident(CACHE_BUF, CACHE_SIZE);
      this.memory.zeroResident(DCACHE, DCACHE_SIZE);
      this.memory.zeroResident(OUTBUF, OUTBUF_SIZE);
    }
    this.memory.fill(PHYS_SHARED, SHARED_SIZE);
    this.clearTrampolines();
    this.paging.reset(kept, lazy); // back to the kernel half and the special pages (markBase)
    this.vcpu.resetFpu();
    // The other vCPUs load a new root before they next run anything of the next program.
    for (const v of this.cpus) if (v !== this.vcpu) this.flushWanted.add(v);
  }

  /**
   * A copy of everything that belongs to the program in guest memory: its page permissions, the
   * contents of its mapped pages that the host holds (the others read as zero), the shared page
   * and the trampolines of its patched sites. With restoreUser, this lets several processes take
   * turns in one VM (src/linux/kernel.ts): the kernel region is the same for all of them.
   */
  snapshotUser(): UserImage {
    const first = this.paging.userFloor / x86.PAGE_SIZE, end = this.paging.userTop / x86.PAGE_SIZE;
    const perms = this.paging.perms.slice(first, end);
    const used = this.paging.usedRanges();
    const runs: Array<{ page: number; data: Buffer }> = [];
    const hasData = new Uint8Array(perms.length);
    let bytes = 2 * perms.length;
    for (const [p, q] of mappedResidentRuns(this.memory, this.paging)) {
      runs.push({ page: p, data: this.memory.read(p * x86.PAGE_SIZE, (q - p) * x86.PAGE_SIZE) });
      hasData.fill(1, p - first, q - first);
      bytes += (q - p) * x86.PAGE_SIZE;
    }
    const shared = this.memory.read(PHYS_SHARED, SHARED_SIZE);
    const trampolines = this.memory.read(this.trampolineBase, this.trampolineLength);
    return { perms, used, runs, hasData, shared, trampolines, bytes: bytes + shared.length + trampolines.length };
  }

  /**
   * Make img the program in guest memory, in place of the current one, and leave the user-mode
   * registers to the caller (enterUser). mustFault as for start.
   *
   * With hardware paging (the cpl0-entry path) only what differs changes: pages of the current
   * program that img does not map are zeroed and unmapped, permissions that differ are
   * rewritten, img's pages are copied in, and the next entry loads the other, equivalent root,
   * a CR3 change that makes KVM drop the vCPU's cached translations. On kvm_pvm's shadow paging
   * (the user-stub path) KVM does not see the host rewrite page tables, so the machine is reset
   * and the stale translations dropped as for a new program (reset, PageTables.seal).
   */
  restoreUser(img: UserImage, mustFault: ReadonlyArray<readonly [number, number]>): void {
    const PAGE = x86.PAGE_SIZE;
    const first = this.paging.userFloor / PAGE;
    const rights = PROT_READ | PROT_WRITE | PROT_EXEC;
    if (this.syscallPath === 'user-stub') {
      const fpuKept = this.vcpu.getFxsave();
      this.reset();
      this.vcpu.setFxsave(fpuKept);
      for (let i = 0; i < img.perms.length;) {
        const byte = img.perms[i]!;
        let j = i + 1;
        while (j < img.perms.length && img.perms[j] === byte) j++;
        if (byte) this.paging.map((first + i) * PAGE, (j - i) * PAGE, byte & rights, (byte & PAGE_CHARGED) !== 0);
        i = j;
      }
    } else {
      const cur = this.paging.perms;
      // img's pages are written whole below: mapping them needs no zeroing first.
      for (const r of img.runs) this.paging.willOverwrite(r.page, r.page + r.data.length / PAGE);
      const leave: Array<[number, number]> = [];
      for (const [lo, hi] of mergeRanges(this.paging.usedRanges(), img.used)) {
        const end = hi / PAGE;
        // Pages whose present content img does not replace: zeroed now where img maps them (as a
        // page img never touched reads); where it does not, left for map to zero (see reset).
        for (let p = lo / PAGE; p < end; p++) {
          if (!cur[p] || (img.perms[p - first] && img.hasData[p - first])) continue;
          const mapped = img.perms[p - first] !== 0;
          let q = p + 1;
          while (q < end && cur[q] && !(img.perms[q - first] && img.hasData[q - first]) && (img.perms[q - first] !== 0) === mapped) q++;
          if (mapped) this.memory.zeroResident(p * PAGE, (q - p) * PAGE);
          else leave.push([p, q]);
          p = q - 1;
        }
        // Permissions that differ, in runs of one value.
        for (let p = lo / PAGE; p < end; p++) {
          const want = img.perms[p - first]!;
          if (cur[p] === want) continue;
          let q = p + 1;
          while (q < end && img.perms[q - first] === want && cur[q] !== want) q++;
          // A charge that img's pages do not have goes with an unmap first (map keeps charges).
          if (!(want & PAGE_CHARGED)) this.paging.unmap(p * PAGE, (q - p) * PAGE);
          if (want) this.paging.map(p * PAGE, (q - p) * PAGE, want & rights, (want & PAGE_CHARGED) !== 0);
          p = q - 1;
        }
      }
      for (const [p, q] of leave) this.paging.leaveUnzeroed(p, q);
      for (const v of this.cpus) this.flushWanted.add(v);
    }
    for (const r of img.runs) this.memory.write(r.page * PAGE, r.data);
    this.memory.write(PHYS_SHARED, img.shared);
    if (img.trampolines.length) this.installTrampolines(img.trampolines);
    else this.clearTrampolines();
    if (this.syscallPath === 'user-stub') {
      this.paging.seal((page) => mustFault.some(([lo, hi]) => page * PAGE >= lo && page * PAGE < hi));
    }
  }

  /**
   * What a signal frame holds of the FPU state: on the cpl0-entry path, where the guest runs with
   * its own XCR0, the XSAVE image of its states (size in bytes, the XCR0 features), as Linux's
   * frames do; null elsewhere (kvm_pvm: no OSXSAVE for the guest, so x87 and SSE only), where a
   * frame holds the 512-byte FXSAVE area.
   */
  get signalXstate(): { size: number; features: bigint } | null {
    if (this.xstateLayout === undefined) {
      const cpuid = cpuidCache ?? [];
      const xcr0 = this.syscallPath === 'cpl0-entry' ? userXcr0(cpuid) : 0n;
      this.xstateLayout = xcr0 ? { size: xsaveImageSize(cpuid, xcr0), features: xcr0 } : null;
    }
    return this.xstateLayout;
  }
  private xstateLayout: { size: number; features: bigint } | null | undefined;

  /** vCPUs whose next enterUser (or flushTlb) loads the other root, to drop their cached translations. */
  private readonly flushWanted = new Set<Vcpu>();

  /**
   * vCPUs whose own task took rights away from pages while it ran there: the task itself goes on
   * with its cached translations (a known limitation, SECURITY.md), but the next context loaded
   * there (another thread, enterUser) drops them first, so a thread never inherits them.
   */
  private readonly flushBeforeOthers = new Set<Vcpu>();

  /** vcpu served a munmap, mprotect or mremap of its own task (see flushBeforeOthers). */
  flushBeforeNextContext(vcpu: Vcpu): void {
    if (this.syscallPath === 'cpl0-entry') this.flushBeforeOthers.add(vcpu);
  }

  /** Whether vcpu must drop its cached translations before it runs user code again. */
  needsFlush(vcpu: Vcpu): boolean {
    return this.flushWanted.has(vcpu);
  }

  /**
   * After the host took rights away from mapped pages (munmap, mprotect) while other vCPUs may
   * hold translations of them: each of `vcpus` drops its cached translations before it runs user
   * code again (the TLB shootdown of threads on parallel vCPUs).
   */
  requestFlush(vcpus: Iterable<Vcpu>): void {
    for (const v of vcpus) this.flushWanted.add(v);
  }

  /**
   * Drop vcpu's cached translations now, wherever it stopped: it loads the other of the two
   * equivalent roots (a CR3 change KVM acts on). The kernel half is the same in both, so this
   * is safe at CPL0 too.
   */
  flushTlb(vcpu: Vcpu): void {
    this.flushWanted.add(vcpu);
    const s = vcpu.getSregs();
    vcpu.setSregs({ ...s, cr3: this.rootFor(vcpu, s.cr3) });
  }

  /**
   * The CR3 vcpu enters with, from cur, the one it has: the active address space's root, or its
   * twin when the vCPU must drop its cached translations and already runs with that space.
   */
  private rootFor(vcpu: Vcpu, cur: bigint): bigint {
    const root = BigInt(this.active.rootPhys), twin = BigInt(this.active.twinRootPhys);
    const wanted = this.flushWanted.delete(vcpu), beforeOthers = this.flushBeforeOthers.delete(vcpu);
    const flush = wanted || beforeOthers;
    if (cur !== root && cur !== twin) return root;
    return flush ? (cur === root ? twin : root) : cur;
  }

  /** Where vcpu's trap frames are (its TSS's RSP0 stack), as guest-physical [bottom, top). */
  trapStack(vcpu: Vcpu): { bottom: number; top: number } {
    const i = this.cpus.indexOf(vcpu);
    if (i <= 0) return { bottom: PHYS_KSTACK_BOTTOM, top: PHYS_KSTACK_TOP };
    const stacks = PHYS_CPU_STACKS + (i - 1) * CPU_STACKS_SIZE;
    return { bottom: stacks, top: stacks + CPU_STACKS_SIZE / 2 };
  }

  /**
   * Where the vDSO is (AT_SYSINFO_EHDR), or null: only on the cpl0-entry path, where a system call
   * is an exit (the user-stub path answers the clocks in its stub).
   */
  get vdsoAddress(): number | null {
    return this.syscallPath === 'cpl0-entry' ? PHYS_VDSO : null;
  }

  /** The last anchor the vvar page holds (host side), and when it was written (performance.now()). */
  private clockAnchor: { tsc: bigint; mult: bigint; mono: bigint; real: bigint; host: bigint } | null = null;
  clockPublishedAt = -Infinity;
  /** Set for the machine's life once a vCPU's TSC was found off (checkTsc). */
  private tscUnsynced = false;

  /**
   * Publish in the vvar page (kernel/vdso.c) an anchor for the vDSO's clocks: vcpu's TSC now (it
   * must be out of the guest), the host's monotonic and real-time clocks at that moment, and the
   * TSC period. Again later, it re-anchors the clocks to the host's (the TSC drifts from them by
   * parts per million); the monotonic clock never goes back: if the host's is behind what the
   * last anchor gives now, that value is kept. Under VV_SEQ, odd while the fields change: the
   * vCPUs of other threads may be reading.
   */
  publishClock(vcpu: Vcpu): void {
    if (this.syscallPath !== 'cpl0-entry') return;
    let khz: number, reading: TscReading;
    try {
      khz = vcpu.tscKhz();
      reading = readTsc(vcpu);
    } catch {
      this.invalidateClock();
      return;
    }
    if (khz <= 0 || this.tscUnsynced) return this.invalidateClock();
    const { tsc, host } = reading;
    let mono = host;
    // Real time is the monotonic clock plus the offset between the two (realtimeNs).
    const real = realtimeNs(host);
    const nominal = (1_000_000n << 32n) / BigInt(khz);
    let mult = nominal;
    const last = this.clockAnchor;
    if (last && tsc > last.tsc) {
      const extended = last.mono + (((tsc - last.tsc) * last.mult) >> 32n);
      if (extended > mono) mono = extended;
      // The TSC's period as measured against the host's clock since the last anchor (KVM's kHz
      // may be off), when the interval is long enough and the result plausible.
      const elapsed = host - last.host;
      if (elapsed >= 100_000_000n) {
        const measured = (elapsed << 32n) / (tsc - last.tsc);
        if (measured * 10n > nominal * 9n && measured * 10n < nominal * 11n) mult = measured;
      }
      // Ahead of the host (kept so as not to go back): run up to 1% slow until caught up, so the
      // guest's clocks never drift away from the host's, whose deadlines they are compared with.
      const ahead = mono - host;
      if (ahead > 0n) mult -= (mult * (ahead < 10_000_000n ? ahead : 10_000_000n)) / 1_000_000_000n;
    }
    this.writeVvar((m) => {
      m.setU64(PHYS_VVAR + VV_MULT, mult);
      m.setU64(PHYS_VVAR + VV_TSC0, tsc);
      m.setU64(PHYS_VVAR + VV_MONO0, mono);
      m.setU64(PHYS_VVAR + VV_REAL0, real);
      m.setU32(PHYS_VVAR + VV_VALID, 1);
    });
    this.clockAnchor = { tsc, mult, mono, real, host };
    this.clockPublishedAt = performance.now();
  }

  /**
   * The wall (realtime) or monotonic clock as the vDSO shows it to vcpu now (it must be out of
   * the guest): the last anchor extended by vcpu's TSC, as kernel/vdso.c computes it. Null where
   * the guest has no vDSO clock (its clock calls reach the host). Under the lane's emulation this
   * can differ from the host's clock by milliseconds between anchors.
   */
  guestClockNs(vcpu: Vcpu, realtime: boolean): bigint | null {
    const a = this.clockAnchor;
    if (!a || this.syscallPath !== 'cpl0-entry') return null;
    let tsc: bigint;
    try {
      tsc = vcpu.getMsr(x86.MSR_IA32_TSC);
    } catch {
      return null;
    }
    if (tsc < a.tsc) return null;
    return (realtime ? a.real : a.mono) + (((tsc - a.tsc) * a.mult) >> 32n);
  }

  /** From now on the vDSO asks the host (a vCPU whose TSC disagrees, or no TSC information). */
  private invalidateClock(): void {
    this.writeVvar((m) => m.setU32(PHYS_VVAR + VV_VALID, 0));
    this.clockAnchor = null;
  }

  /** Change the vvar page with VV_SEQ odd meanwhile (a vDSO reader that sees it odd or changed reads again). */
  private writeVvar(write: (m: GuestMemory) => void): void {
    const m = this.memory;
    const odd = (m.u32(PHYS_VVAR + VV_SEQ) | 1) >>> 0;
    m.setU32(PHYS_VVAR + VV_SEQ, odd);
    write(m);
    m.setU32(PHYS_VVAR + VV_SEQ, (odd + 1) >>> 0);
  }

  /**
   * A vCPU added while the clocks are published must count the same TSC as the one that anchored
   * them (KVM synchronizes a new vCPU's TSC with the others; an older kernel might start it at 0).
   * If it is off by more than CLOCK_SKEW_NS, the vDSO's clocks go back to the host for this run.
   */
  private checkTsc(v: Vcpu): void {
    const a = this.clockAnchor;
    if (!a) return;
    let reading: TscReading;
    try { reading = readTsc(v); } catch { return this.invalidateClock(); }
    const { tsc, host, spread } = reading;
    const expected = a.mono + (((tsc - a.tsc) * a.mult) >> 32n);
    const skew = expected > host ? expected - host : host - expected;
    if (tsc < a.tsc || skew > CLOCK_SKEW_NS + spread) {
      this.tscUnsynced = true;
      this.invalidateClock();
    }
  }

  /**
   * A further vCPU, for the threads of a process to run in parallel (src/linux/kernel.ts). Only
   * on the cpl0-entry path: there the guest kernel keeps no per-CPU state, and each vCPU only
   * needs its own TSS with its own trap stacks (PHYS_CPU_STACKS). It enters user mode through
   * enterUser; it has no guest timer (the host's run loop bounds its time).
   */
  addCpu(): Vcpu {
    if (this.syscallPath !== 'cpl0-entry') throw new MachineError('more than one vCPU needs the cpl0-entry system-call path');
    const i = this.cpus.length;
    if (i >= MAX_VCPUS) throw new MachineError(`at most ${MAX_VCPUS} vCPUs`);
    const m = this.memory;
    const tss = PHYS_TSS + i * CPU_TSS_SIZE;
    const stacks = PHYS_CPU_STACKS + (i - 1) * CPU_STACKS_SIZE;
    m.fill(tss, CPU_TSS_SIZE);
    m.setU64(tss + 4, KERNEL_VBASE + BigInt(stacks + CPU_STACKS_SIZE / 2)); // RSP0
    m.setU64(tss + 36, KERNEL_VBASE + BigInt(stacks + CPU_STACKS_SIZE)); // IST1
    m.setU16(tss + 102, TSS_IOMAP_OFFSET);
    m.fill(tss + TSS_IOMAP_OFFSET, IOMAP_BYTES, 0xff); // no port for user mode
    const v = this.vm.createVcpu(i);
    try {
      v.setCpuid(cpuidCache ?? []);
      this.setSyscallMsrs(this.syscallPath, false, v);
      const xcr0 = userXcr0(cpuidCache ?? []);
      const s = this.sregs(true);
      s.tr = { ...s.tr, base: KERNEL_VBASE + BigInt(tss) };
      if (xcr0) s.cr4 |= x86.CR4_OSXSAVE;
      if (this.hasTimer) s.apic_base &= ~APIC_BASE_BSP;
      v.setSregs(s);
      if (xcr0) v.setXcr0(xcr0);
      v.resetFpu();
      if (this.hasTimer) v.setRunnable();
    } catch (e) {
      v.close();
      throw e;
    }
    this.cpus.push(v);
    this.checkTsc(v);
    return v;
  }

  /**
   * From now on every system call of the user-stub path goes to the host (as with --trace): the
   * stub's caches are per process, and several processes take turns in the VM.
   */
  useTracedEntry(): void {
    this.setSyscallMsrs(this.syscallPath, true);
  }

  /**
   * Return to user mode with regs, as an iret would: cs and ss become the user selectors, the
   * other special registers (page tables, FS base...) stay. The caller validates regs (rflags
   * without IOPL/NT/VM, a lower-half rip). Used for signal delivery and rt_sigreturn, from any
   * hypercall exit: the guest kernel keeps no state across a trap, so its stack is dropped.
   */
  /**
   * The user registers the program that start() began last enters with (from its iretq frame,
   * valid until the first vCPU runs): a stop before its first instruction (ptrace's exec event)
   * saves them, and the program is entered from them (enterUser) instead of the boot hop.
   */
  startRegs(): Registers {
    const frame = PHYS_KSTACK_TOP - 5 * 8;
    const m = this.memory;
    return { ...zeroRegs(), rip: m.u64(frame), rflags: m.u64(frame + 16), rsp: m.u64(frame + 24) };
  }

  enterUser(regs: Registers, vcpu = this.vcpu): void {
    const s = vcpu.getSregs();
    const u = this.sregs(true);
    vcpu.setSregs({ ...s, cs: u.cs, ss: u.ss, cr3: this.rootFor(vcpu, s.cr3) });
    vcpu.setRegs(regs);
  }

  /** Run until the handler says stop. */
  run(handler: HypercallHandler): void {
    const vcpu = this.vcpu;
    for (;;) {
      const exit = vcpu.runOnce();
      const nr = hypercallOf(exit);
      if (nr !== null) {
        if (handler.hypercall(nr, vcpu).action !== 'resume') return;
        continue;
      }
      if (exit.kind === 'interrupted') continue;
      handler.unexpectedExit(exit, vcpu);
      return;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Give back the shared memory that mappings hold (its descriptors) before the mappings go.
    for (const sm of [...this.spaces.values(), ...this.spare]) sm.memory.unshareAll();
    this.memory.unshareAll();
    this.vm.close();
    this.spaces.clear();
    this.spare.length = 0;
  }
  [Symbol.dispose](): void { this.close(); }
}

/** A program's part of guest memory, kept on the host while another process runs (snapshotUser). */
export interface UserImage {
  /** Permission bytes of the user pages, from the user floor. */
  perms: Uint8Array;
  /** Ranges of guest memory [start, end) where it may have pages (PageTables.usedRanges). */
  used: Array<[number, number]>;
  /** Contents of mapped pages, in runs of consecutive pages (page numbers of guest memory). */
  runs: Array<{ page: number; data: Buffer }>;
  /** Per page from the user floor: 1 where runs hold its contents (a mapped page without reads as zero). */
  hasData: Uint8Array;
  shared: Buffer;
  trampolines: Buffer;
  /** Host bytes the image holds. */
  bytes: number;
}

/**
 * The runs [first, end) of page numbers that paging maps and mem holds on the host: what a
 * program has that is not zero (the rest of a used range is zero, or garbage it cannot see).
 */
function mappedResidentRuns(mem: GuestMemory, paging: PageTables): Array<[number, number]> {
  const perms = paging.perms;
  const runs: Array<[number, number]> = [];
  for (const [lo, hi] of paging.usedRanges()) {
    for (const [a, b] of mem.residentRuns(lo, hi - lo)) {
      // A page never charged holds zeros (PAGE_CHARGED): nothing to keep.
      for (let p = a; p < b; p++) {
        if (!(perms[p]! & PAGE_CHARGED)) continue;
        let q = p;
        while (q < b && perms[q]! & PAGE_CHARGED) q++;
        runs.push([p, q]);
        p = q;
      }
    }
  }
  return mem.shared.length ? withoutShared(runs, mem.shared) : runs;
}

/** Page runs without the pages of shared ranges (those are the backing's, not the space's). */
function withoutShared(runs: Array<[number, number]>, shared: readonly SharedRange[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [p, q] of runs) {
    let from = p;
    for (const r of shared) {
      const a = r.start / x86.PAGE_SIZE, b = r.end / x86.PAGE_SIZE;
      if (b <= from || a >= q) continue;
      if (a > from) out.push([from, a]);
      from = Math.max(from, b);
    }
    if (from < q) out.push([from, q]);
  }
  return out;
}

/** The union of two sorted lists of ranges [start, end). */
function mergeRanges(a: ReadonlyArray<readonly [number, number]>, b: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const all = [...a, ...b].sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [s, e] of all) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** The hypercall an exit is (an `out` to one of the hypercall ports), or null. */
export function hypercallOf(exit: VcpuExit): number | null {
  if (exit.kind !== 'io' || exit.direction !== 'out' || exit.port < HC_PORT_BASE || exit.port >= HC_PORT_BASE + HC_COUNT) return null;
  return exit.port - HC_PORT_BASE;
}

export function zeroRegs() {
  return {
    rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n, r8: 0n, r9: 0n, r10: 0n,
    r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: 0n, rflags: x86.RFLAGS_RESERVED1,
  };
}
