// Architectural constants, named as in the Intel SDM / AMD APM.

export const CR0_PE = 1n << 0n;
export const CR0_MP = 1n << 1n;
export const CR0_ET = 1n << 4n;
export const CR0_NE = 1n << 5n;
export const CR0_WP = 1n << 16n;
export const CR0_AM = 1n << 18n;
export const CR0_PG = 1n << 31n;

export const CR4_PAE = 1n << 5n;
export const CR4_OSFXSR = 1n << 9n;
export const CR4_OSXMMEXCPT = 1n << 10n;
export const CR4_OSXSAVE = 1n << 18n;

export const EFER_SCE = 1n << 0n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;

export const RFLAGS_RESERVED1 = 1n << 1n;
export const RFLAGS_TF = 1n << 8n;
export const RFLAGS_IF = 1n << 9n;
export const RFLAGS_DF = 1n << 10n;
export const RFLAGS_IOPL = 3n << 12n;
export const RFLAGS_NT = 1n << 14n;
export const RFLAGS_RF = 1n << 16n;
export const RFLAGS_AC = 1n << 18n;

// Page-table entry bits (4-level paging)
export const PTE_PRESENT = 1n << 0n;
export const PTE_WRITABLE = 1n << 1n;
export const PTE_USER = 1n << 2n;
export const PTE_ACCESSED = 1n << 5n;
export const PTE_DIRTY = 1n << 6n;
export const PTE_PS = 1n << 7n;
export const PTE_GLOBAL = 1n << 8n;
export const PTE_NX = 1n << 63n;
export const PTE_ADDR_MASK = 0x000ffffffffff000n;

export const MSR_IA32_APICBASE = 0x1b;
export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_IA32_CR_PAT = 0x277;
export const MSR_EFER = 0xc0000080;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_SYSCALL_MASK = 0xc0000084;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_KERNEL_GS_BASE = 0xc0000102;

// Segment descriptor types (kvm_segment.type)
export const SEG_TYPE_CODE_XRA = 0xb; // execute/read, accessed
export const SEG_TYPE_DATA_RWA = 0x3; // read/write, accessed
export const SEG_TYPE_TSS64_BUSY = 0xb;

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

// Exception vectors
export const VEC_DE = 0;
export const VEC_DB = 1;
export const VEC_NMI = 2;
export const VEC_BP = 3;
export const VEC_OF = 4;
export const VEC_BR = 5;
export const VEC_UD = 6;
export const VEC_NM = 7;
export const VEC_DF = 8;
export const VEC_TS = 10;
export const VEC_NP = 11;
export const VEC_SS = 12;
export const VEC_GP = 13;
export const VEC_PF = 14;
export const VEC_MF = 16;
export const VEC_AC = 17;
export const VEC_MC = 18;
export const VEC_XM = 19;

export const EXCEPTION_NAMES: Record<number, string> = {
  0: 'divide error (#DE)', 1: 'debug (#DB)', 2: 'NMI', 3: 'breakpoint (#BP)', 4: 'overflow (#OF)',
  5: 'bound range (#BR)', 6: 'invalid opcode (#UD)', 7: 'device not available (#NM)', 8: 'double fault (#DF)',
  10: 'invalid TSS (#TS)', 11: 'segment not present (#NP)', 12: 'stack fault (#SS)',
  13: 'general protection (#GP)', 14: 'page fault (#PF)', 16: 'x87 FP error (#MF)', 17: 'alignment check (#AC)',
  18: 'machine check (#MC)', 19: 'SIMD FP error (#XM)',
};

export function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
export function alignDown(x: number, a: number): number {
  return Math.floor(x / a) * a;
}

/** The one-byte breakpoint instruction: filler for code the host clears. */
export const OPCODE_INT3 = 0xcc;
