// `kvmbox doctor` and doctor(): what this host offers kvmbox, and what to do when it offers too
// little. Reads only public host facts (/proc/cpuinfo, /sys/module, uname) and probes /dev/kvm
// with the same code a run uses.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, release, version as osVersion } from 'node:os';
import { Kvm, KvmUnavailableError } from '../kvm/kvm.js';
import { addressSpan, detectSyscallPath, type SyscallPath } from '../machine/machine.js';

/** What kind of KVM answers on /dev/kvm. */
export type KvmKind =
  /** Hardware virtualization: Intel VT-x (kvm_intel) or AMD-V (kvm_amd). */
  | 'hardware-vt-x' | 'hardware-amd-v'
  /** kvm_pvm: page-table-based nested KVM; guest kernel mode is emulated, user mode native. */
  | 'kvm_pvm'
  /** A KVM that answers but whose module kvmbox does not recognise. */
  | 'unknown'
  /** No usable /dev/kvm. */
  | 'none';

export interface DoctorReport {
  /** True when kvmbox can run programs on this host. */
  ok: boolean;
  device: {
    path: string;
    /** Whether the path exists at all. */
    present: boolean;
    /** KVM_GET_API_VERSION's answer when the device could be opened and answered. */
    apiVersion?: number;
    /** Why it cannot be used, with the fix. */
    problem?: string;
  };
  kind: KvmKind;
  /** The kvm* modules in the host kernel, loaded or built in (from /sys/module). */
  modules: string[];
  /** The system-call path runs would take, when KVM works. */
  syscallPath?: SyscallPath;
  /** Whether the in-guest stub's accelerations apply (user-stub path only). */
  stubAccelerations: boolean;
  /**
   * How far each process's addresses span, when KVM works: bytes on hardware paging (room for
   * reservations far beyond --memory: wasm memories, valgrind), 'memory' on kvm_pvm (--memory
   * itself); and KVM's guest-physical address width, which decides it.
   */
  addressSpan?: { bytes: number | 'memory'; physBits: number; sparseMemslots: boolean };
  host: { kernel: string; cpu: string; cores: number; virtualizationFlags: string[] };
  /** What to do, when runs are not possible. */
  advice: string[];
}

const KVM_API_VERSION = 12;

function cpuModel(): { cpu: string; vendor: string; flags: string[] } {
  let text = '';
  try { text = readFileSync('/proc/cpuinfo', 'utf8'); } catch { /* not Linux, or hidden */ }
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? 'unknown CPU';
  const flags = (/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/);
  const vendor = /^vendor_id\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? '';
  return { cpu: model, vendor, flags: flags.filter((f) => f === 'vmx' || f === 'svm' || f === 'hypervisor') };
}

function kvmModules(): string[] {
  try {
    return readdirSync('/sys/module').filter((m) => m === 'kvm' || m.startsWith('kvm_') || m.startsWith('kvm-')).sort();
  } catch {
    return [];
  }
}

/**
 * The probed system-call path decides: only kvm_pvm keeps `syscall` at CPL3 (user-stub). The
 * module list alone cannot, as kernels may have kvm_pvm built in beside kvm_intel or kvm_amd.
 */
function kindOf(modules: readonly string[], path: SyscallPath | undefined, vendor: string): KvmKind {
  if (path === 'user-stub') return 'kvm_pvm';
  if (path === undefined) return 'unknown';
  if (modules.includes('kvm_intel') || vendor === 'GenuineIntel') return 'hardware-vt-x';
  if (modules.includes('kvm_amd') || vendor === 'AuthenticAMD') return 'hardware-amd-v';
  return 'unknown';
}

/** Probe this host: never throws; `ok` says whether kvmbox can run programs here. */
export function doctor(devicePath = '/dev/kvm'): DoctorReport {
  const { cpu, vendor, flags } = cpuModel();
  const modules = kvmModules();
  const host = { kernel: `${release()} (${osVersion()})`, cpu, cores: availableParallelism(), virtualizationFlags: flags };
  const device: DoctorReport['device'] = { path: devicePath, present: existsSync(devicePath) };
  let syscallPath: SyscallPath | undefined;
  let addressSpanReport: DoctorReport['addressSpan'];
  try {
    const kvm = new Kvm(devicePath);
    kvm.close();
    device.apiVersion = KVM_API_VERSION;
    if (devicePath === '/dev/kvm') {
      syscallPath = detectSyscallPath();
      const span = addressSpan(0);
      addressSpanReport = { ...span, bytes: syscallPath === 'user-stub' ? 'memory' : span.bytes };
    }
  } catch (e) {
    device.problem = e instanceof KvmUnavailableError ? e.message : `${devicePath}: ${(e as Error).message}`;
  }
  if (device.present && !device.problem) {
    try {
      if (!statSync(devicePath).isCharacterDevice()) device.problem = `${devicePath} is not a character device`;
    } catch { /* raced away; the open above decided */ }
  }
  const ok = device.problem === undefined;
  const advice: string[] = [];
  if (!ok) {
    if (!device.present) {
      advice.push(flags.includes('vmx') || flags.includes('svm')
        ? 'the CPU offers virtualization: load the module (modprobe kvm_intel or kvm_amd) and check that /dev/kvm appears'
        : 'this machine offers no virtualization to its programs (a cloud VM without nested virtualization, or a container): run kvmbox on bare metal, on a VM type with nested virtualization enabled, or in a container started with --device /dev/kvm');
    }
    advice.push("the test suite still runs here: 'npm test' runs it inside a software-emulated KVM (QEMU TCG), slowly");
  }
  return {
    ok, device, kind: ok ? kindOf(modules, syscallPath, vendor) : 'none', modules, syscallPath,
    stubAccelerations: syscallPath === 'user-stub', addressSpan: addressSpanReport, host, advice,
  };
}

const KIND_TEXT: Record<KvmKind, string> = {
  'hardware-vt-x': 'hardware KVM (Intel VT-x)',
  'hardware-amd-v': 'hardware KVM (AMD-V)',
  kvm_pvm: 'kvm_pvm (nested KVM without VT-x/AMD-V: guest kernel mode emulated, user mode native)',
  unknown: 'a KVM of unknown kind',
  none: 'none',
};

/** The report as the CLI prints it. */
export function formatDoctorReport(r: DoctorReport): string {
  const lines = [
    `kvm device:    ${r.device.path}: ${r.device.problem ?? `KVM API ${r.device.apiVersion ?? '?'}`}`,
    `kvm kind:      ${KIND_TEXT[r.kind]}${r.modules.length ? ` [kvm modules in the kernel: ${r.modules.join(', ')}]` : ''}`,
  ];
  if (r.syscallPath) {
    lines.push(r.syscallPath === 'user-stub'
      ? 'syscall path:  user-stub (syscall stays in user mode here: a user-mode stub forwards calls;'
        + '\n               stub accelerations on: in-guest answers, read-ahead and directory caches, patched sites)'
      : 'syscall path:  cpl0-entry (syscall reaches the guest kernel; the stub\'s accelerations are not needed)');
  }
  if (r.addressSpan) {
    const { bytes, physBits, sparseMemslots } = r.addressSpan;
    lines.push(bytes === 'memory'
      ? `address space: --memory per process (kvm_pvm; ${physBits}-bit guest-physical addresses)`
      : `address space: ${bytes / 1024 ** 3} GiB per process (${physBits}-bit guest-physical addresses; reservations beyond --memory fit)` +
        (sparseMemslots ? '' : '\n               (at most 16 GiB: KVM here keeps kernel memory for every page of a memslot, measured at start;'
          + '\n               a 5.15 or later kernel with kvm.tdp_mmu=Y does not, unless it has KVMGT\'s write tracking, on-demand since 2024)'));
  }
  lines.push(
    `host kernel:   ${r.host.kernel}`,
    `host cpu:      ${r.host.cpu}, ${r.host.cores} cores${r.host.virtualizationFlags.length ? ` (flags: ${r.host.virtualizationFlags.join(' ')})` : ''}`,
    `verdict:       ${r.ok ? 'kvmbox can run programs here' : 'kvmbox cannot run programs here'}`,
  );
  for (const a of r.advice) lines.push(`what to do:    ${a}`);
  return lines.join('\n') + '\n';
}
