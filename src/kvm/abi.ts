// The KVM userspace ABI as kvmbox uses it: ioctl numbers and struct layouts from <linux/kvm.h>
// (x86-64). test/kvm-abi.test.ts compiles a C program against the real header and checks every
// size, offset and number below, so this file cannot drift from the kernel's definition.

// _IOC encoding from <asm-generic/ioctl.h>
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
const KVMIO = 0xae;
function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
}
const io = (nr: number) => ioc(IOC_NONE, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

/** A C struct: its size and the byte offset of each field kvmbox touches. */
export interface StructLayout {
  readonly size: number;
  readonly fields: Readonly<Record<string, number>>;
}

const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type RegName = (typeof REG_NAMES)[number];
export const REGISTER_NAMES: readonly RegName[] = REG_NAMES;

export const kvm_regs: StructLayout = {
  size: 144,
  fields: Object.fromEntries(REG_NAMES.map((n, i) => [n, i * 8])),
};

export const kvm_segment: StructLayout = {
  size: 24,
  fields: { base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16, db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22 },
};

export const kvm_dtable: StructLayout = { size: 16, fields: { base: 0, limit: 8 } };

export const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];

export const kvm_sregs: StructLayout = {
  size: 312,
  fields: {
    cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168,
    gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apic_base: 272,
    interrupt_bitmap: 280,
  },
};

export const kvm_userspace_memory_region: StructLayout = {
  size: 32,
  fields: { slot: 0, flags: 4, guest_phys_addr: 8, memory_size: 16, userspace_addr: 24 },
};

export const kvm_msrs: StructLayout = { size: 8, fields: { nmsrs: 0 } };
export const kvm_msr_entry: StructLayout = { size: 16, fields: { index: 0, data: 8 } };

export const kvm_cpuid2: StructLayout = { size: 8, fields: { nent: 0 } };
export const kvm_cpuid_entry2: StructLayout = {
  size: 40,
  fields: { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 },
};

/** struct kvm_run, with the exit-union members kvmbox decodes (offsets from the struct start). */
export const kvm_run: StructLayout = {
  size: 2352,
  fields: {
    request_interrupt_window: 0,
    immediate_exit: 1,
    exit_reason: 8,
    ready_for_interrupt_injection: 12,
    if_flag: 13,
    io_direction: 32,
    io_size: 33,
    io_port: 34,
    io_count: 36,
    io_data_offset: 40,
    mmio_phys_addr: 32,
    mmio_data: 40,
    mmio_len: 48,
    mmio_is_write: 52,
    fail_entry_hardware_entry_failure_reason: 32,
    internal_suberror: 32,
    internal_ndata: 36,
    internal_data: 40,
    kvm_valid_regs: 288,
    kvm_dirty_regs: 296,
    s_regs: 304,
    s_sregs: 448,
  },
};

/** struct kvm_xcrs: extended control registers (XCR0). */
export const kvm_xcrs: StructLayout = { size: 392, fields: { nr_xcrs: 0, flags: 4, xcrs: 8 } };
export const kvm_xcr: StructLayout = { size: 16, fields: { xcr: 0, value: 8 } };

/** struct kvm_xsave: the legacy FXSAVE area, then the XSAVE header at 512. */
export const kvm_xsave: StructLayout = { size: 4096, fields: { region: 0 } };

/** struct kvm_mp_state: a vCPU's multiprocessing state (KVM_MP_STATE_RUNNABLE = 0). */
export const kvm_mp_state: StructLayout = { size: 4, fields: { mp_state: 0 } };
export const KVM_MP_STATE_RUNNABLE = 0;

export const KVM_API_VERSION = 12;

export const ioctls = {
  KVM_GET_API_VERSION: io(0x00),
  KVM_CREATE_VM: io(0x01),
  KVM_CHECK_EXTENSION: io(0x03),
  KVM_GET_VCPU_MMAP_SIZE: io(0x04),
  KVM_GET_SUPPORTED_CPUID: iowr(0x05, kvm_cpuid2.size),
  KVM_CREATE_VCPU: io(0x41),
  KVM_SET_USER_MEMORY_REGION: iow(0x46, kvm_userspace_memory_region.size),
  KVM_CREATE_IRQCHIP: io(0x60),
  KVM_RUN: io(0x80),
  KVM_GET_REGS: ior(0x81, kvm_regs.size),
  KVM_SET_REGS: iow(0x82, kvm_regs.size),
  KVM_GET_SREGS: ior(0x83, kvm_sregs.size),
  KVM_SET_SREGS: iow(0x84, kvm_sregs.size),
  KVM_GET_MSRS: iowr(0x88, kvm_msrs.size),
  KVM_SET_MSRS: iow(0x89, kvm_msrs.size),
  KVM_SET_CPUID2: iow(0x90, kvm_cpuid2.size),
  KVM_GET_TSC_KHZ: io(0xa3),
  KVM_GET_XSAVE: ior(0xa4, kvm_xsave.size),
  KVM_SET_XSAVE: iow(0xa5, kvm_xsave.size),
  KVM_SET_XCRS: iow(0xa7, kvm_xcrs.size),
  KVM_SET_MP_STATE: iow(0x99, kvm_mp_state.size),
} as const;

export const caps = {
  KVM_CAP_IRQCHIP: 0,
  KVM_CAP_USER_MEMORY: 3,
  KVM_CAP_SET_TSS_ADDR: 4,
  KVM_CAP_EXT_CPUID: 7,
  KVM_CAP_NR_MEMSLOTS: 10,
  KVM_CAP_IMMEDIATE_EXIT: 136,
  KVM_CAP_SYNC_REGS: 74,
} as const;

export const exitReasons = {
  KVM_EXIT_UNKNOWN: 0,
  KVM_EXIT_EXCEPTION: 1,
  KVM_EXIT_IO: 2,
  KVM_EXIT_DEBUG: 4,
  KVM_EXIT_HLT: 5,
  KVM_EXIT_MMIO: 6,
  KVM_EXIT_SHUTDOWN: 8,
  KVM_EXIT_FAIL_ENTRY: 9,
  KVM_EXIT_INTR: 10,
  KVM_EXIT_INTERNAL_ERROR: 17,
  KVM_EXIT_SYSTEM_EVENT: 24,
} as const;

export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;
export const KVM_SYNC_X86_REGS = 1;
export const KVM_SYNC_X86_SREGS = 2;
/** kvm_cpuid_entry2.flags: the entry answers one subleaf (index) only. (The header spells it so.) */
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;
/** KVM_GET_SUPPORTED_CPUID wants room for this many entries. */
export const KVM_MAX_CPUID_ENTRIES = 256;
