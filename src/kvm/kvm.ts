// Typed wrappers over the KVM ioctls: Kvm (the /dev/kvm fd) -> Vm -> Vcpu, each owning its fd and
// mappings, each with close() and Symbol.dispose. Exits come back as a tagged union.
import { readFileSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import * as libc from './libc.js';
import {
  caps, exitReasons, ioctls, KVM_API_VERSION, KVM_EXIT_IO_OUT, KVM_MAX_CPUID_ENTRIES,
  KVM_SYNC_X86_REGS, kvm_cpuid2, kvm_cpuid_entry2, kvm_dtable, kvm_msr_entry, kvm_msrs, kvm_regs,
  kvm_run, kvm_segment, kvm_sregs, kvm_userspace_memory_region, kvm_xcr, kvm_xcrs, kvm_xsave, kvm_mp_state, KVM_MP_STATE_RUNNABLE, REGISTER_NAMES,
  SEGMENT_NAMES,
  type RegName, type SegmentName,
} from './abi.js';

export { SysError } from './libc.js';

/**
 * Whether this host's KVM keeps no per-page metadata for a memslot that only hardware paging
 * maps: its TDP MMU is on (the kvm module's tdp_mmu parameter) and the kernel (5.15 and later)
 * allocates the reverse maps of a memslot only once shadow paging needs them. Otherwise each
 * memslot costs the host 8 bytes of kernel memory per 4 KiB of guest addresses (2 MiB per GiB),
 * touched or not.
 */
export function sparseMemslots(release = osRelease(), tdpMmu = readParameter('/sys/module/kvm/parameters/tdp_mmu')): boolean {
  const [major = 0, minor = 0] = release.split(/[.-]/).map(Number);
  return tdpMmu === 'Y' && (major > 5 || (major === 5 && minor >= 15));
}

/**
 * Kernel bytes this host's KVM allocates per 4 KiB of guest addresses when a memslot is made,
 * measured on vm: a memslot of 8 GiB over reserved (untouched) host addresses is added at
 * guestPhysAddr as slot `slot` and removed, and the growth of the kernel's vmalloc area
 * (/proc/meminfo's VmallocUsed) is divided by its pages. Reverse maps (shadow paging) cost 8
 * bytes a page; kernels before the write-tracking data became on-demand (2024) allocate 2 bytes
 * a page for every memslot where KVMGT (Intel GVT-g) is configured, as Debian's and Ubuntu's
 * are (128 MiB for 256 GiB); others 0. null when VmallocUsed cannot be read (a container's
 * made-up /proc/meminfo).
 */
export function memslotBytesPerPage(vm: Vm, slot: number, guestPhysAddr: number): number | null {
  const size = 8 * 1024 ** 3;
  const before = vmallocUsedKb();
  if (before === null) return null;
  const region = new MemoryRegion(guestPhysAddr, size, false);
  let after: number | null;
  try {
    vm.setSlot(slot, guestPhysAddr, size, region.mapping.address);
    after = vmallocUsedKb();
    vm.setSlot(slot, 0, 0, 0n);
  } finally {
    region.close();
  }
  if (after === null) return null;
  return Math.max(0, after - before) * 1024 / (size / 4096);
}

/** The host kernel's vmalloc area in use (/proc/meminfo's VmallocUsed), in KiB, or null where it is not shown. */
export function vmallocUsedKb(): number | null {
  try {
    const m = /^VmallocUsed:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function readParameter(path: string): string {
  try { return readFileSync(path, 'utf8').trim(); } catch { return ''; }
}

/** /dev/kvm is missing, not accessible, or too old. The message says how to fix it. */
export class KvmUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvmUnavailableError';
  }
}

export type Registers = Record<RegName, bigint>;

export interface Segment {
  base: bigint; limit: number; selector: number; type: number; present: number; dpl: number;
  db: number; s: number; l: number; g: number; avl: number; unusable: number;
}
export interface DescriptorTable { base: bigint; limit: number }
export interface SpecialRegisters {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment; tr: Segment; ldt: Segment;
  gdt: DescriptorTable; idt: DescriptorTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apic_base: bigint;
}

export interface CpuidEntry {
  function: number; index: number; flags: number; eax: number; ebx: number; ecx: number; edx: number;
}

/** Why KVM_RUN returned. */
export type VcpuExit =
  | { kind: 'hlt' }
  | { kind: 'io'; direction: 'in' | 'out'; port: number; size: number; count: number; dataOffset: number }
  | { kind: 'mmio'; address: bigint; isWrite: boolean; length: number }
  | { kind: 'shutdown' }
  | { kind: 'fail-entry'; reason: bigint }
  | { kind: 'internal-error'; suberror: number }
  | { kind: 'interrupted' }
  | { kind: 'other'; reason: number };

export class Kvm {
  readonly fd: number;
  private closed = false;

  constructor(path = '/dev/kvm') {
    try {
      this.fd = libc.open(path, libc.O_RDWR | libc.O_CLOEXEC);
    } catch (e) {
      const errno = e instanceof libc.SysError ? e.errno : 0;
      const hint =
        errno === 2 ? 'this machine has no KVM: load the kvm module (modprobe kvm_intel or kvm_amd) or run on a host with virtualization enabled'
        : errno === 13 || errno === 1 ? `add your user to the group that owns ${path} (usually: sudo usermod -aG kvm $USER, then log in again)`
        : 'check that KVM is enabled on this machine';
      throw new KvmUnavailableError(`${path} is not usable (${e instanceof Error ? e.message : String(e)}); ${hint}`);
    }
    let version: number;
    try {
      version = libc.ioctlInt(this.fd, ioctls.KVM_GET_API_VERSION, 0, 'KVM_GET_API_VERSION');
    } catch (e) {
      libc.close(this.fd);
      throw new KvmUnavailableError(`${path} is not a KVM device (${(e as Error).message}); point kvmbox at /dev/kvm on a host with KVM enabled`);
    }
    if (version !== KVM_API_VERSION) {
      libc.close(this.fd);
      throw new KvmUnavailableError(`${path} speaks KVM API ${version}, kvmbox needs ${KVM_API_VERSION}; update the host kernel`);
    }
  }

  checkExtension(cap: number): number {
    return libc.ioctlInt(this.fd, ioctls.KVM_CHECK_EXTENSION, cap, 'KVM_CHECK_EXTENSION');
  }

  vcpuMmapSize(): number {
    return libc.ioctlInt(this.fd, ioctls.KVM_GET_VCPU_MMAP_SIZE, 0, 'KVM_GET_VCPU_MMAP_SIZE');
  }

  supportedCpuid(): CpuidEntry[] {
    const buf = Buffer.alloc(kvm_cpuid2.size + KVM_MAX_CPUID_ENTRIES * kvm_cpuid_entry2.size);
    buf.writeUInt32LE(KVM_MAX_CPUID_ENTRIES, kvm_cpuid2.fields.nent);
    libc.ioctlBuf(this.fd, ioctls.KVM_GET_SUPPORTED_CPUID, buf, 'KVM_GET_SUPPORTED_CPUID');
    const n = buf.readUInt32LE(kvm_cpuid2.fields.nent);
    const out: CpuidEntry[] = [];
    for (let i = 0; i < n; i++) {
      const o = kvm_cpuid2.size + i * kvm_cpuid_entry2.size;
      const f = kvm_cpuid_entry2.fields;
      out.push({
        function: buf.readUInt32LE(o + f.function), index: buf.readUInt32LE(o + f.index),
        flags: buf.readUInt32LE(o + f.flags), eax: buf.readUInt32LE(o + f.eax),
        ebx: buf.readUInt32LE(o + f.ebx), ecx: buf.readUInt32LE(o + f.ecx), edx: buf.readUInt32LE(o + f.edx),
      });
    }
    return out;
  }

  createVm(): Vm {
    const fd = libc.ioctlInt(this.fd, ioctls.KVM_CREATE_VM, 0, 'KVM_CREATE_VM');
    return new Vm(this, fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }
  [Symbol.dispose](): void { this.close(); }
}

/** Guest physical memory backing one memslot: an anonymous host mapping. */
export class MemoryRegion {
  readonly mapping: libc.Mapping;
  constructor(readonly guestPhysAddr: number, readonly size: number, populate: boolean) {
    const flags = libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE | (populate ? libc.MAP_POPULATE : 0);
    this.mapping = libc.mmap(size, libc.PROT_READ | libc.PROT_WRITE, flags, -1, 'mmap(guest memory)');
    // A child process the host forks (child_process.spawn) must not share guest memory copy-on-
    // write: the host's next write to each page would copy it and make KVM drop its translation
    // (a run after a spawn measured 2.3 ms instead of 1.0), and the child has no use for it.
    libc.madvise(this.mapping, 0, size, libc.MADV_DONTFORK);
  }
  /** An ArrayBuffer over [offset, offset+length) of the memory, of at most 4 GiB (libc.viewOf). */
  view(offset: number, length: number): ArrayBuffer {
    return libc.viewOf(this.mapping, offset, length);
  }
  /** Give the pages of [offset, offset+length) back to the host; they read as zero afterwards. */
  discard(offset: number, length: number): void {
    libc.madvise(this.mapping, offset, length, libc.MADV_DONTNEED);
  }
  /**
   * Make KVM forget every translation it holds for [offset, offset+length), keeping the pages and
   * their contents. Changing the host mapping's protection notifies KVM (its MMU notifier), which
   * drops its shadow page-table entries for the range; the guest's next touch rebuilds them from
   * the guest page tables as they are now.
   */
  dropTranslations(offset: number, length: number): void {
    libc.mprotect(this.mapping, offset, length, libc.PROT_READ);
    libc.mprotect(this.mapping, offset, length, libc.PROT_READ | libc.PROT_WRITE);
  }
  /**
   * Make [offset, offset+length) the bytes of fd from fileOffset, shared (MAP_SHARED): what the
   * guest or the host writes there, every other mapping of fd sees; or, copyOnWrite
   * (MAP_PRIVATE), the same pages until written, a write copying the page for this mapping
   * alone. KVM follows the change of the host mapping (its MMU notifier drops the translations
   * of the old pages).
   */
  shareFrom(offset: number, length: number, fd: number, fileOffset: number, copyOnWrite = false): void {
    libc.mmapAt(this.mapping, offset, length, libc.PROT_READ | libc.PROT_WRITE, copyOnWrite ? libc.MAP_PRIVATE : libc.MAP_SHARED, fd, fileOffset);
    libc.madvise(this.mapping, offset, length, libc.MADV_DONTFORK);
  }
  /** Make [offset, offset+data.length) private pages holding data, in one step (libc.replacePages). */
  replace(offset: number, data: Uint8Array): void {
    libc.replacePages(this.mapping, offset, data);
    libc.madvise(this.mapping, offset, data.length, libc.MADV_DONTFORK);
  }
  /** Make [offset, offset+length) private zero pages again (undoing shareFrom). */
  unshare(offset: number, length: number): void {
    libc.mmapAt(this.mapping, offset, length, libc.PROT_READ | libc.PROT_WRITE,
      libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE, -1, 0);
    libc.madvise(this.mapping, offset, length, libc.MADV_DONTFORK);
  }
  /** Residency of each page of [offset, offset+length): vec[i] & 1 when page i is in host memory. */
  residency(offset: number, length: number, vec: Uint8Array): void {
    libc.mincore(this.mapping, offset, length, vec);
  }
  close(): void { libc.munmap(this.mapping); }
}

export class Vm {
  private readonly regions: MemoryRegion[] = [];
  private readonly vcpus: Vcpu[] = [];
  private closed = false;

  constructor(readonly kvm: Kvm, readonly fd: number) {}

  /** Allocate host memory and install it as a memslot at guestPhysAddr. */
  addMemory(slot: number, guestPhysAddr: number, size: number, populate = false): MemoryRegion {
    return this.addMemoryFrom(slot, guestPhysAddr, size, 0, populate);
  }

  /**
   * Allocate size bytes of host memory and install only [skip, size) of it as memslot `slot`, at
   * guestPhysAddr + skip: the memory of one process's address space, whose first skip bytes
   * (below USER_BASE) the guest sees in the machine's first memslot instead.
   */
  addMemoryFrom(slot: number, guestPhysAddr: number, size: number, skip: number, populate = false): MemoryRegion {
    const region = new MemoryRegion(guestPhysAddr, size, populate);
    try {
      this.setSlot(slot, guestPhysAddr + skip, size - skip, region.mapping.address + BigInt(skip));
    } catch (e) {
      region.close();
      throw e;
    }
    this.regions.push(region);
    return region;
  }

  /** Remove memslot `slot` and free region, its memory (the guest must not be running). */
  removeMemory(slot: number, region: MemoryRegion): void {
    const i = this.regions.indexOf(region);
    if (i < 0) return;
    this.setSlot(slot, 0, 0, 0n);
    this.regions.splice(i, 1);
    region.close();
  }

  /** KVM_SET_USER_MEMORY_REGION: install (size 0: remove) memslot `slot`. */
  setSlot(slot: number, guestPhysAddr: number, size: number, userspaceAddr: bigint): void {
    const b = Buffer.alloc(kvm_userspace_memory_region.size);
    const f = kvm_userspace_memory_region.fields;
    b.writeUInt32LE(slot, f.slot);
    b.writeUInt32LE(0, f.flags);
    b.writeBigUInt64LE(BigInt(guestPhysAddr), f.guest_phys_addr);
    b.writeBigUInt64LE(BigInt(size), f.memory_size);
    b.writeBigUInt64LE(userspaceAddr, f.userspace_addr);
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_USER_MEMORY_REGION, b, 'KVM_SET_USER_MEMORY_REGION');
  }

  createIrqchip(): void {
    libc.ioctlInt(this.fd, ioctls.KVM_CREATE_IRQCHIP, 0, 'KVM_CREATE_IRQCHIP');
  }

  createVcpu(id: number): Vcpu {
    const fd = libc.ioctlInt(this.fd, ioctls.KVM_CREATE_VCPU, id, 'KVM_CREATE_VCPU');
    let run: libc.Mapping;
    try {
      run = libc.mmap(this.kvm.vcpuMmapSize(), libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, 'mmap(kvm_run)');
    } catch (e) {
      libc.close(fd);
      throw e;
    }
    const vcpu = new Vcpu(fd, run, this.kvm.checkExtension(caps.KVM_CAP_SYNC_REGS));
    if (process.env.KVMBOX_VCPU_THREAD === '1') vcpu.useThread();
    this.vcpus.push(vcpu);
    return vcpu;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const v of this.vcpus) v.close();
    libc.close(this.fd);
    for (const r of this.regions) r.close();
  }
  [Symbol.dispose](): void { this.close(); }
}

function readSegment(b: Buffer, o: number): Segment {
  const f = kvm_segment.fields;
  return {
    base: b.readBigUInt64LE(o + f.base), limit: b.readUInt32LE(o + f.limit), selector: b.readUInt16LE(o + f.selector),
    type: b[o + f.type]!, present: b[o + f.present]!, dpl: b[o + f.dpl]!, db: b[o + f.db]!, s: b[o + f.s]!,
    l: b[o + f.l]!, g: b[o + f.g]!, avl: b[o + f.avl]!, unusable: b[o + f.unusable]!,
  };
}
function writeSegment(b: Buffer, o: number, s: Segment): void {
  const f = kvm_segment.fields;
  b.writeBigUInt64LE(s.base, o + f.base);
  b.writeUInt32LE(s.limit >>> 0, o + f.limit);
  b.writeUInt16LE(s.selector, o + f.selector);
  b[o + f.type] = s.type; b[o + f.present] = s.present; b[o + f.dpl] = s.dpl; b[o + f.db] = s.db;
  b[o + f.s] = s.s; b[o + f.l] = s.l; b[o + f.g] = s.g; b[o + f.avl] = s.avl; b[o + f.unusable] = s.unusable;
}

/**
 * vCPUs whose KVM_RUN loops run on native threads, in parallel; one JavaScript thread serves
 * their exits: it resumes vCPUs, waits for any exit (wait), and takes each exit (Vcpu.takeExit).
 */
export class VcpuGroup {
  readonly raw: libc.VcpuThreadGroup = libc.vcpuThreadGroup();
  private readonly members: Vcpu[] = [];
  private freed = false;

  /** Put vcpu on a parked thread of this group (index: its place, 0..63). */
  attach(vcpu: Vcpu, index: number): void {
    if (index < 0 || index >= 64 || this.members[index]) throw new RangeError(`vCPU index ${index} taken or out of range`);
    vcpu.useThread(this, index);
    this.members[index] = vcpu;
  }

  /** Wait up to timeoutMs (< 0: no limit) for exits: the vCPUs that exited, each to be served. */
  wait(timeoutMs: number): Vcpu[] {
    const mask = libc.vcpuThreadWait(this.raw, Math.max(-1, Math.floor(timeoutMs)));
    const out: Vcpu[] = [];
    for (let i = 0; i < this.members.length; i++) if (mask & (1n << BigInt(i))) out.push(this.members[i]!);
    return out;
  }

  /** Stop every member's thread (kicking it out of the guest) and free the group. */
  close(): void {
    if (this.freed) return;
    this.freed = true;
    for (const v of this.members) v?.stopThread();
    libc.vcpuThreadGroupFree(this.raw);
  }
}

const SREG_CONTROL = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apic_base'] as const;

export class Vcpu {
  /** The shared kvm_run page, as bytes. */
  private readonly run: Buffer;
  private readonly runView: DataView;
  private readonly regsBuf = Buffer.alloc(kvm_regs.size);
  private readonly sregsBuf = Buffer.alloc(kvm_sregs.size);
  private closed = false;
  /** True when registers travel in kvm_run (KVM_CAP_SYNC_REGS) instead of separate ioctls. */
  readonly syncRegs: boolean;

  constructor(readonly fd: number, private readonly runMapping: libc.Mapping, syncRegsCap: number) {
    const runBuffer = libc.viewOf(runMapping, 0, runMapping.length);
    this.run = Buffer.from(runBuffer);
    this.runView = new DataView(runBuffer);
    this.syncRegs = (syncRegsCap & KVM_SYNC_X86_REGS) !== 0;
    if (this.syncRegs) this.runView.setBigUint64(kvm_run.fields.kvm_valid_regs!, BigInt(KVM_SYNC_X86_REGS), true);
  }

  /** When set, KVM_RUN runs on a native thread of the helper library (native/vcpu.c). */
  private thread: { t: libc.VcpuThread; own: libc.VcpuThreadGroup | null } | null = null;

  /** Enter the guest until the next exit (on this thread, or handed over from the vCPU's own). */
  runOnce(): VcpuExit {
    if (this.thread) return this.decodeExit(libc.vcpuThreadRun(this.thread.t));
    return this.decodeExit(libc.ioctlIntRaw(this.fd, ioctls.KVM_RUN, 0));
  }

  /**
   * From now on, run KVM_RUN on a native thread that hands each exit to the serving thread by
   * futex. In a group (VcpuGroup.attach), several vCPUs run in parallel and the serving thread
   * waits for any exit (resume, VcpuGroup.wait, takeExit). Alone (no group), the vCPU is in a group
   * of its own and runOnce hands over each exit: with one vCPU that only adds the hand-over cost,
   * which KVMBOX_VCPU_THREAD=1 lets bench/handover measure.
   */
  useThread(group?: VcpuGroup, index = 0): void {
    if (this.closed) return;
    if (this.thread && (group === undefined || this.thread.own === null)) return;
    this.stopThread();
    const own = group ? null : libc.vcpuThreadGroup();
    try {
      this.thread = { t: libc.vcpuThreadStart(group ? group.raw : own!, this.fd, index, this.runMapping), own };
    } catch (e) {
      if (own) libc.vcpuThreadGroupFree(own);
      throw e;
    }
  }

  /** Back to KVM_RUN on the caller's thread (the vCPU must be out of the guest). */
  stopThread(): void {
    if (!this.thread) return;
    libc.vcpuThreadStop(this.thread.t);
    if (this.thread.own) libc.vcpuThreadGroupFree(this.thread.own);
    this.thread = null;
  }

  /** Let the vCPU's thread enter the guest again (useThread with a group first). */
  resume(): void {
    if (!this.thread) throw new Error('kvmbox: resume of a vCPU that has no thread');
    libc.vcpuThreadResume(this.thread.t);
  }

  /** Make the vCPU leave the guest soon: its next exit is 'interrupted' if nothing else comes first. */
  kick(): void {
    if (this.thread) libc.vcpuThreadKick(this.thread.t);
  }

  /** The exit a VcpuGroup.wait reported for this vCPU. */
  takeExit(): VcpuExit {
    if (!this.thread) throw new Error('kvmbox: an exit taken from a vCPU that has no thread');
    return this.decodeExit(libc.vcpuThreadResult(this.thread.t));
  }

  /** Decode the exit after KVM_RUN returned r (the ioctl's result or -errno). */
  decodeExit(r: number): VcpuExit {
    if (r < 0) {
      if (r === -4 || r === -11) return { kind: 'interrupted' };
      throw new libc.SysError('KVM_RUN', -r);
    }
    if (this.syncRegs) this.runView.setBigUint64(kvm_run.fields.kvm_dirty_regs!, 0n, true);
    const f = kvm_run.fields;
    const reason = this.runView.getUint32(f.exit_reason!, true);
    switch (reason) {
      case exitReasons.KVM_EXIT_HLT: return { kind: 'hlt' };
      case exitReasons.KVM_EXIT_IO:
        return {
          kind: 'io',
          direction: this.run[f.io_direction!] === KVM_EXIT_IO_OUT ? 'out' : 'in',
          size: this.run[f.io_size!]!,
          port: this.runView.getUint16(f.io_port!, true),
          count: this.runView.getUint32(f.io_count!, true),
          dataOffset: Number(this.runView.getBigUint64(f.io_data_offset!, true)),
        };
      case exitReasons.KVM_EXIT_MMIO:
        return {
          kind: 'mmio', address: this.runView.getBigUint64(f.mmio_phys_addr!, true),
          isWrite: this.run[f.mmio_is_write!] !== 0, length: this.runView.getUint32(f.mmio_len!, true),
        };
      case exitReasons.KVM_EXIT_SHUTDOWN: return { kind: 'shutdown' };
      case exitReasons.KVM_EXIT_FAIL_ENTRY:
        return { kind: 'fail-entry', reason: this.runView.getBigUint64(f.fail_entry_hardware_entry_failure_reason!, true) };
      case exitReasons.KVM_EXIT_INTERNAL_ERROR:
        return { kind: 'internal-error', suberror: this.runView.getUint32(f.internal_suberror!, true) };
      case exitReasons.KVM_EXIT_INTR: return { kind: 'interrupted' };
      default: return { kind: 'other', reason };
    }
  }

  /** Bytes of the kvm_run page at [offset, offset+length): the data of an IO exit. */
  ioData(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.run.length) throw new RangeError('io data outside kvm_run');
    return this.run.subarray(offset, offset + length);
  }

  /** Read one general register (cheap with sync regs). */
  reg(name: RegName): bigint {
    if (this.syncRegs) return this.runView.getBigUint64(kvm_run.fields.s_regs! + kvm_regs.fields[name]!, true);
    return this.getRegs()[name];
  }

  /** Write one general register; takes effect at the next run. */
  setReg(name: RegName, value: bigint): void {
    if (this.syncRegs) {
      this.runView.setBigUint64(kvm_run.fields.s_regs! + kvm_regs.fields[name]!, BigInt.asUintN(64, value), true);
      this.runView.setBigUint64(kvm_run.fields.kvm_dirty_regs!, BigInt(KVM_SYNC_X86_REGS), true);
      return;
    }
    const r = this.getRegs();
    r[name] = value;
    this.setRegs(r);
  }

  getRegs(): Registers {
    let src: Buffer;
    if (this.syncRegs) {
      src = this.run.subarray(kvm_run.fields.s_regs!, kvm_run.fields.s_regs! + kvm_regs.size);
    } else {
      libc.ioctlBuf(this.fd, ioctls.KVM_GET_REGS, this.regsBuf, 'KVM_GET_REGS');
      src = this.regsBuf;
    }
    const out = {} as Registers;
    for (const n of REGISTER_NAMES) out[n] = src.readBigUInt64LE(kvm_regs.fields[n]!);
    return out;
  }

  setRegs(regs: Registers): void {
    for (const n of REGISTER_NAMES) this.regsBuf.writeBigUInt64LE(BigInt.asUintN(64, regs[n]), kvm_regs.fields[n]!);
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_REGS, this.regsBuf, 'KVM_SET_REGS');
    if (this.syncRegs) {
      // Keep the synced copy coherent, and make sure KVM does not overwrite what we just set.
      this.regsBuf.copy(this.run, kvm_run.fields.s_regs!);
      this.runView.setBigUint64(kvm_run.fields.kvm_dirty_regs!, 0n, true);
    }
  }

  getSregs(): SpecialRegisters {
    libc.ioctlBuf(this.fd, ioctls.KVM_GET_SREGS, this.sregsBuf, 'KVM_GET_SREGS');
    const b = this.sregsBuf;
    const f = kvm_sregs.fields;
    const out = {} as SpecialRegisters;
    for (const s of SEGMENT_NAMES) out[s] = readSegment(b, f[s]!);
    out.gdt = { base: b.readBigUInt64LE(f.gdt! + kvm_dtable.fields.base!), limit: b.readUInt16LE(f.gdt! + kvm_dtable.fields.limit!) };
    out.idt = { base: b.readBigUInt64LE(f.idt! + kvm_dtable.fields.base!), limit: b.readUInt16LE(f.idt! + kvm_dtable.fields.limit!) };
    for (const c of SREG_CONTROL) out[c] = b.readBigUInt64LE(f[c]!);
    return out;
  }

  setSregs(s: SpecialRegisters): void {
    const b = this.sregsBuf;
    const f = kvm_sregs.fields;
    b.fill(0);
    for (const n of SEGMENT_NAMES) writeSegment(b, f[n]!, s[n as SegmentName]);
    b.writeBigUInt64LE(s.gdt.base, f.gdt! + kvm_dtable.fields.base!);
    b.writeUInt16LE(s.gdt.limit, f.gdt! + kvm_dtable.fields.limit!);
    b.writeBigUInt64LE(s.idt.base, f.idt! + kvm_dtable.fields.base!);
    b.writeUInt16LE(s.idt.limit, f.idt! + kvm_dtable.fields.limit!);
    for (const c of SREG_CONTROL) b.writeBigUInt64LE(s[c], f[c]!);
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_SREGS, b, 'KVM_SET_SREGS');
  }

  setMsrs(msrs: ReadonlyArray<readonly [number, bigint]>): void {
    const b = Buffer.alloc(kvm_msrs.size + msrs.length * kvm_msr_entry.size);
    b.writeUInt32LE(msrs.length, kvm_msrs.fields.nmsrs!);
    msrs.forEach(([index, data], i) => {
      const o = kvm_msrs.size + i * kvm_msr_entry.size;
      b.writeUInt32LE(index, o + kvm_msr_entry.fields.index!);
      b.writeBigUInt64LE(data, o + kvm_msr_entry.fields.data!);
    });
    const n = libc.ioctlBuf(this.fd, ioctls.KVM_SET_MSRS, b, 'KVM_SET_MSRS');
    if (n !== msrs.length) throw new Error(`KVM_SET_MSRS set ${n} of ${msrs.length} MSRs (MSR 0x${msrs[n]![0].toString(16)} rejected)`);
  }

  /** Read one MSR of the vCPU. */
  getMsr(index: number): bigint {
    const b = Buffer.alloc(kvm_msrs.size + kvm_msr_entry.size);
    b.writeUInt32LE(1, kvm_msrs.fields.nmsrs!);
    b.writeUInt32LE(index, kvm_msrs.size + kvm_msr_entry.fields.index!);
    const n = libc.ioctlBuf(this.fd, ioctls.KVM_GET_MSRS, b, 'KVM_GET_MSRS');
    if (n !== 1) throw new Error(`KVM_GET_MSRS: MSR 0x${index.toString(16)} not readable`);
    return b.readBigUInt64LE(kvm_msrs.size + kvm_msr_entry.fields.data!);
  }

  /** Set XCR0, the user states XSAVE-enabled instructions may use (needs CR4.OSXSAVE). */
  setXcr0(value: bigint): void {
    const b = Buffer.alloc(kvm_xcrs.size);
    b.writeUInt32LE(1, kvm_xcrs.fields.nr_xcrs!);
    b.writeUInt32LE(0, kvm_xcrs.fields.xcrs! + kvm_xcr.fields.xcr!);
    b.writeBigUInt64LE(value, kvm_xcrs.fields.xcrs! + kvm_xcr.fields.value!);
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_XCRS, b, 'KVM_SET_XCRS');
  }

  /**
   * Make the vCPU runnable. With an in-kernel local APIC, vCPUs after the first start as
   * application processors waiting for INIT/SIPI; KVM_RUN would block until then.
   */
  setRunnable(): void {
    const b = Buffer.alloc(kvm_mp_state.size);
    b.writeUInt32LE(KVM_MP_STATE_RUNNABLE, kvm_mp_state.fields.mp_state!);
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_MP_STATE, b, 'KVM_SET_MP_STATE');
  }

  /** The guest's TSC frequency in kHz (KVM_GET_TSC_KHZ). */
  /** The guest TSC's frequency (fixed for the vCPU's life: kvmbox never sets it), asked once. */
  tscKhz(): number {
    this.khz ??= libc.ioctlInt(this.fd, ioctls.KVM_GET_TSC_KHZ, 0, 'KVM_GET_TSC_KHZ');
    return this.khz;
  }
  private khz: number | undefined;

  setCpuid(entries: readonly CpuidEntry[]): void {
    const b = Buffer.alloc(kvm_cpuid2.size + entries.length * kvm_cpuid_entry2.size);
    b.writeUInt32LE(entries.length, kvm_cpuid2.fields.nent!);
    const f = kvm_cpuid_entry2.fields;
    entries.forEach((e, i) => {
      const o = kvm_cpuid2.size + i * kvm_cpuid_entry2.size;
      b.writeUInt32LE(e.function, o + f.function!); b.writeUInt32LE(e.index, o + f.index!);
      b.writeUInt32LE(e.flags, o + f.flags!); b.writeUInt32LE(e.eax, o + f.eax!);
      b.writeUInt32LE(e.ebx, o + f.ebx!); b.writeUInt32LE(e.ecx, o + f.ecx!); b.writeUInt32LE(e.edx, o + f.edx!);
    });
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_CPUID2, b, 'KVM_SET_CPUID2');
  }

  /**
   * Put the x87/SSE/AVX state in its initial configuration (FCW 0x37f, MXCSR 0x1f80, every vector
   * register zero), so nothing of a previous program's registers survives into the next one.
   */
  resetFpu(): void {
    const b = Buffer.alloc(kvm_xsave.size);
    const FXSAVE_FCW = 0, FXSAVE_MXCSR = 24, XSAVE_HEADER_XSTATE_BV = 512;
    const XFEATURE_MASK_FPSSE = 3n;
    b.writeUInt16LE(0x37f, FXSAVE_FCW);
    b.writeUInt32LE(0x1f80, FXSAVE_MXCSR);
    b.writeBigUInt64LE(XFEATURE_MASK_FPSSE, XSAVE_HEADER_XSTATE_BV);
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_XSAVE, b, 'KVM_SET_XSAVE');
  }
  /** The vCPU's whole XSAVE area (kvm_xsave: x87, SSE, AVX and every other enabled state), a copy. */
  getXsave(): Buffer {
    const b = Buffer.alloc(kvm_xsave.size);
    libc.ioctlBuf(this.fd, ioctls.KVM_GET_XSAVE, b, 'KVM_GET_XSAVE');
    return b;
  }

  /**
   * Load a whole XSAVE area that getXsave returned (of this sandbox's vCPUs: the host made it, the
   * guest never wrote it as such; KVM checks it against what the vCPU supports).
   */
  setXsave(area: Buffer): void {
    if (area.length !== kvm_xsave.size) throw new RangeError('an XSAVE area of the wrong size');
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_XSAVE, area, 'KVM_SET_XSAVE');
  }

  /** The legacy FXSAVE area (x87 and SSE state, 512 bytes) of the vCPU, a copy. */
  getFxsave(): Buffer {
    const b = Buffer.alloc(kvm_xsave.size);
    libc.ioctlBuf(this.fd, ioctls.KVM_GET_XSAVE, b, 'KVM_GET_XSAVE');
    return Buffer.from(b.subarray(0, 512));
  }

  /**
   * Load x87/SSE state from a 512-byte FXSAVE image (MXCSR's reserved bits cleared); the other
   * XSAVE components are put in their initial state.
   */
  setFxsave(fx: Buffer): void {
    // An XSAVE image of x87 and SSE only: its header says so; setXsaveImage sanitizes the rest.
    const XSAVE_HEADER_XSTATE_BV = 512, XFEATURE_MASK_FPSSE = 3n;
    const image = Buffer.alloc(XSAVE_HEADER_XSTATE_BV + 8);
    fx.copy(image, 0, 0, Math.min(fx.length, XSAVE_HEADER_XSTATE_BV));
    image.writeBigUInt64LE(XFEATURE_MASK_FPSSE, XSAVE_HEADER_XSTATE_BV);
    this.setXsaveImage(image, XFEATURE_MASK_FPSSE);
  }

  /**
   * Load an XSAVE image in the standard format (a signal frame's, written by the guest: hostile)
   * with only the state components of `features`: the header is rebuilt (XSTATE_BV masked by
   * features, no compaction, reserved bytes zero), MXCSR's reserved bits cleared, the software
   * bytes dropped, so KVM never refuses it; components absent from XSTATE_BV take their initial
   * state, as XRSTOR gives them.
   */
  setXsaveImage(image: Buffer, features: bigint): void {
    const b = Buffer.alloc(kvm_xsave.size);
    image.copy(b, 0, 0, Math.min(image.length, kvm_xsave.size));
    const FXSAVE_MXCSR = 24, FXSAVE_MXCSR_MASK = 28, FXSAVE_SW_BYTES = 464, LEGACY_SIZE = 512;
    const XSAVE_HEADER_XSTATE_BV = 512, XSAVE_HEADER_END = 576;
    b.writeUInt32LE(b.readUInt32LE(FXSAVE_MXCSR) & 0xffff, FXSAVE_MXCSR);
    b.writeUInt32LE(0, FXSAVE_MXCSR_MASK);
    b.fill(0, FXSAVE_SW_BYTES, LEGACY_SIZE);
    const bv = b.readBigUInt64LE(XSAVE_HEADER_XSTATE_BV) & features;
    b.fill(0, XSAVE_HEADER_XSTATE_BV, XSAVE_HEADER_END);
    b.writeBigUInt64LE(bv, XSAVE_HEADER_XSTATE_BV);
    libc.ioctlBuf(this.fd, ioctls.KVM_SET_XSAVE, b, 'KVM_SET_XSAVE');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopThread();
    libc.munmap(this.runMapping);
    libc.close(this.fd);
  }
}
