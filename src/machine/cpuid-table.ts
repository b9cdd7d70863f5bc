// The table behind the user-mode stub's cpuid_emul (kernel/stub.S), so that patched `cpuid` sites
// (src/linux/site-patch.ts) need not trap: on kvm_pvm the instruction at CPL3 costs ~12 µs on Intel
// hosts (KVM emulates it), and glibc's start-up runs it about fifty times.
//
// The answers must be exactly what the instruction gives this guest: KVM's from the KVM_SET_CPUID2
// entries, adjusted at run time (OSXSAVE from CR4, the XSAVE sizes from XCR0, the APIC ID...). So
// the table is not computed but measured: once per process, before any program runs, the stub's
// cpuid_fill executes the real instruction for every (leaf, subleaf) KVM has an entry for, and
// the answers go into the table, which user mode can only read. A leaf or subleaf that is not in
// the table falls through to the real instruction, so a missing entry costs time, never
// correctness.
import type { CpuidEntry } from '../kvm/kvm.js';
import { KVM_CPUID_FLAG_SIGNIFCANT_INDEX } from '../kvm/abi.js';
import { CPUID_ANY_SUBLEAF, CPUID_ENTRY_SIZE, CPUID_TABLE_END, CPUID_TABLE_SIZE } from '../abi/abi.generated.js';

/** Entries that fit with the end marker. */
export const CPUID_TABLE_ENTRIES = Math.floor(CPUID_TABLE_SIZE / CPUID_ENTRY_SIZE) - 1;

/**
 * The requests for cpuid_fill: one entry per (leaf, subleaf) KVM answers, answers zeroed, then the
 * end marker. CPUID_TABLE_SIZE bytes.
 */
export function cpuidRequests(entries: readonly CpuidEntry[]): Buffer {
  const table = Buffer.alloc(CPUID_TABLE_SIZE);
  const n = Math.min(entries.length, CPUID_TABLE_ENTRIES);
  for (let i = 0; i < n; i++) {
    table.writeUInt32LE(entries[i]!.function >>> 0, i * CPUID_ENTRY_SIZE);
    table.writeUInt32LE(entries[i]!.index >>> 0, i * CPUID_ENTRY_SIZE + 4);
  }
  table.writeUInt32LE(CPUID_TABLE_END, n * CPUID_ENTRY_SIZE);
  return table;
}

/**
 * The table cpuid_emul reads, from the requests as cpuid_fill answered them: entries whose leaf
 * does not depend on the subleaf match any subleaf.
 */
export function cpuidTable(entries: readonly CpuidEntry[], answered: Buffer): Buffer {
  const table = Buffer.from(answered.subarray(0, CPUID_TABLE_SIZE));
  const n = Math.min(entries.length, CPUID_TABLE_ENTRIES);
  for (let i = 0; i < n; i++) {
    const o = i * CPUID_ENTRY_SIZE;
    if (table.readUInt32LE(o) !== entries[i]!.function >>> 0) throw new Error('cpuid table: the answers do not match the requests');
    if (!(entries[i]!.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)) table.writeUInt32LE(CPUID_ANY_SUBLEAF, o + 4);
  }
  return table;
}

/** A table with no entries: every cpuid runs the real instruction. */
export function emptyCpuidTable(): Buffer {
  const table = Buffer.alloc(CPUID_TABLE_SIZE);
  table.writeUInt32LE(CPUID_TABLE_END, 0);
  return table;
}

/** The CPUID leaves of the processor brand string: 48 bytes, NUL-padded, in EAX EBX ECX EDX of each. */
const BRAND_LEAVES = [0x80000002, 0x80000003, 0x80000004];

/**
 * entries with the brand-string leaves answering name, where KVM's answer them with zeros (it
 * leaves the name to the VMM): a program then reads the name it reads natively (CPUID, and
 * /proc/cpuinfo's model name). Entries with a name of their own, or a CPU without the leaves, are
 * left as they are.
 */
export function withBrand(entries: readonly CpuidEntry[], name: string): CpuidEntry[] {
  const leaves = BRAND_LEAVES.map((f) => entries.find((e) => e.function === f));
  if (!name || leaves.some((e) => !e || e.eax || e.ebx || e.ecx || e.edx)) return [...entries];
  const bytes = Buffer.alloc(48);
  bytes.write(name.slice(0, 47), 'latin1');
  return entries.map((e) => {
    const i = BRAND_LEAVES.indexOf(e.function);
    if (i < 0) return e;
    const at = i * 16;
    return { ...e, eax: bytes.readUInt32LE(at), ebx: bytes.readUInt32LE(at + 4), ecx: bytes.readUInt32LE(at + 8), edx: bytes.readUInt32LE(at + 12) };
  });
}
