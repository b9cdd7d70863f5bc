// /proc/cpuinfo, made from the CPUID answers the guest's vCPUs give (KVM's supported set, which is
// what the machine loads into each vCPU): vendor, family, model, stepping, the brand string and
// the feature flags Linux names, so that a program that reads them (Node's os.cpus(), a build that
// checks for avx2) sees what it can really use, and nothing of the host that CPUID would not tell.
import type { CpuidEntry } from '../kvm/kvm.js';

/** Linux's names for CPUID feature bits (arch/x86/include/asm/cpufeatures.h), by leaf and register. */
const FLAGS: ReadonlyArray<readonly [leaf: number, reg: 'ecx' | 'edx' | 'ebx', names: ReadonlyArray<string | null>]> = [
  [1, 'edx', ['fpu', 'vme', 'de', 'pse', 'tsc', 'msr', 'pae', 'mce', 'cx8', 'apic', null, 'sep', 'mtrr', 'pge', 'mca', 'cmov',
    'pat', 'pse36', 'pn', 'clflush', null, 'dts', 'acpi', 'mmx', 'fxsr', 'sse', 'sse2', 'ss', 'ht', 'tm', 'ia64', 'pbe']],
  [0x80000001, 'edx', [null, null, null, null, null, null, null, null, null, null, null, 'syscall', null, null, null, null,
    null, null, null, 'mp', 'nx', null, 'mmxext', null, null, 'fxsr_opt', 'pdpe1gb', 'rdtscp', null, 'lm', '3dnowext', '3dnow']],
  [1, 'ecx', ['pni', 'pclmulqdq', 'dtes64', 'monitor', 'ds_cpl', 'vmx', 'smx', 'est', 'tm2', 'ssse3', 'cid', 'sdbg', 'fma', 'cx16',
    'xtpr', 'pdcm', null, 'pcid', 'dca', 'sse4_1', 'sse4_2', 'x2apic', 'movbe', 'popcnt', 'tsc_deadline_timer', 'aes', 'xsave',
    null, 'avx', 'f16c', 'rdrand', 'hypervisor']],
  [0x80000001, 'ecx', ['lahf_lm', 'cmp_legacy', 'svm', 'extapic', 'cr8_legacy', 'abm', 'sse4a', 'misalignsse', '3dnowprefetch',
    'osvw', 'ibs', 'xop', 'skinit', 'wdt', null, 'lwp', 'fma4', 'tce', null, 'nodeid_msr', null, 'tbm', 'topoext', 'perfctr_core',
    'perfctr_nb', null, 'bpext', 'ptsc', 'perfctr_llc', 'mwaitx', null, null]],
  [7, 'ebx', ['fsgsbase', 'tsc_adjust', 'sgx', 'bmi1', 'hle', 'avx2', null, 'smep', 'bmi2', 'erms', 'invpcid', 'rtm', 'cqm', null,
    'mpx', 'rdt_a', 'avx512f', 'avx512dq', 'rdseed', 'adx', 'smap', 'avx512ifma', null, 'clflushopt', 'clwb', 'intel_pt',
    'avx512pf', 'avx512er', 'avx512cd', 'sha_ni', 'avx512bw', 'avx512vl']],
  [7, 'ecx', [null, 'avx512vbmi', 'umip', 'pku', 'ospke', 'waitpkg', 'avx512_vbmi2', null, 'gfni', 'vaes', 'vpclmulqdq',
    'avx512_vnni', 'avx512_bitalg', 'tme', 'avx512_vpopcntdq', null, 'la57', null, null, null, null, null, 'rdpid', null,
    'bus_lock_detect', 'cldemote', null, 'movdiri', 'movdir64b', 'enqcmd', 'sgx_lc', null]],
  [7, 'edx', [null, null, 'avx512_4vnniw', 'avx512_4fmaps', 'fsrm', null, null, null, 'avx512_vp2intersect', null, 'md_clear',
    null, null, null, 'serialize', null, 'tsxldtrk', null, 'pconfig', 'arch_lbr', null, null, 'amx_bf16', 'avx512_fp16',
    'amx_tile', 'amx_int8', null, null, 'flush_l1d', 'arch_capabilities', null, null]],
];

function entry(cpuid: readonly CpuidEntry[], leaf: number, index = 0): CpuidEntry | undefined {
  return cpuid.find((e) => e.function === leaf && e.index === index) ?? cpuid.find((e) => e.function === leaf);
}

function regString(...regs: number[]): string {
  const b = Buffer.alloc(regs.length * 4);
  regs.forEach((r, i) => b.writeUInt32LE(r >>> 0, i * 4));
  return b.toString('latin1');
}

/** The text of /proc/cpuinfo for cpus processors that answer CPUID as cpuid says. */
export function cpuinfoText(cpuid: readonly CpuidEntry[], cpus: number): string {
  const l0 = entry(cpuid, 0);
  const l1 = entry(cpuid, 1);
  const vendor = l0 ? regString(l0.ebx, l0.edx, l0.ecx) : 'unknown';
  const eax = l1?.eax ?? 0;
  const baseFamily = (eax >> 8) & 0xf;
  const family = baseFamily === 0xf ? baseFamily + ((eax >> 20) & 0xff) : baseFamily;
  const model = baseFamily === 0x6 || baseFamily === 0xf ? (((eax >> 16) & 0xf) << 4) | ((eax >> 4) & 0xf) : (eax >> 4) & 0xf;
  const brandLeaves = [0x80000002, 0x80000003, 0x80000004].map((f) => entry(cpuid, f));
  const brand = brandLeaves.every((e) => e)
    ? brandLeaves.map((e) => regString(e!.eax, e!.ebx, e!.ecx, e!.edx)).join('').replace(/\0.*$/s, '').trim()
    : '';
  const flags: string[] = [];
  for (const [leaf, reg, names] of FLAGS) {
    const e = entry(cpuid, leaf);
    if (!e) continue;
    names.forEach((name, bit) => { if (name && (e[reg] >>> bit) & 1) flags.push(name); });
  }
  const clflush = ((l1?.ebx ?? 0) >> 8 & 0xff) * 8;
  const blocks: string[] = [];
  for (let i = 0; i < cpus; i++) {
    blocks.push([
      `processor\t: ${i}`, `vendor_id\t: ${vendor}`, `cpu family\t: ${family}`, `model\t\t: ${model}`,
      `model name\t: ${brand || 'unknown'}`, `stepping\t: ${eax & 0xf}`, `physical id\t: 0`, `siblings\t: ${cpus}`,
      `core id\t\t: ${i}`, `cpu cores\t: ${cpus}`, `apicid\t\t: ${i}`, `initial apicid\t: ${i}`, 'fpu\t\t: yes',
      'fpu_exception\t: yes', `cpuid level\t: ${l0?.eax ?? 0}`, 'wp\t\t: yes', `flags\t\t: ${flags.join(' ')}`,
      `clflush size\t: ${clflush || 64}`, `cache_alignment\t: ${clflush || 64}`,
    ].join('\n') + '\n');
  }
  return blocks.join('\n') + '\n';
}
