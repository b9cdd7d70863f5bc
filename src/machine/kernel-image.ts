// The guest kernel image built by kernel/Makefile, and the header that tells the host where its
// entry points are.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HC_ABI_VERSION, KERNEL_MAGIC, KERNEL_VBASE, PHYS_CPU_STACKS, PHYS_KERNEL, STUB_ENTRY_OFFSET, STUB_SIZE, VDSO_SIZE } from '../abi/abi.generated.js';

export interface KernelImage {
  readonly kernel: Buffer;
  readonly stub: Buffer;
  /** The vDSO (kernel/vdso.c), an ELF shared object mapped at PHYS_VDSO on the cpl0-entry path. */
  readonly vdso: Buffer;
  readonly entry: bigint;
  readonly syscallEntryHw: bigint;
  readonly probeEntry: bigint;
  /** The hypercall fuzzer (test suite only). */
  readonly fuzzEntry: bigint;
  /** [start, end) ranges of the user-mode stub's copies from its caches: a fault there becomes EFAULT. */
  readonly stubCopy: ReadonlyArray<readonly [number, number]>;
  /** Virtual addresses of the vector entry points: 0..31, then VEC_TIMER. */
  readonly vectors: readonly bigint[];
}

export class KernelImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelImageError';
  }
}

const here = dirname(fileURLToPath(import.meta.url));
/** kernel/out relative to build/src/machine (compiled) */
export const KERNEL_OUT_DIR = join(here, '..', '..', '..', 'kernel', 'out');

let cached: KernelImage | undefined;

export function loadKernelImage(dir = KERNEL_OUT_DIR): KernelImage {
  if (cached && dir === KERNEL_OUT_DIR) return cached;
  let kernel: Buffer, stub: Buffer, vdso: Buffer;
  try {
    kernel = readFileSync(join(dir, 'kernel.bin'));
    stub = readFileSync(join(dir, 'stub.bin'));
    vdso = readFileSync(join(dir, 'vdso.so'));
  } catch (e) {
    throw new KernelImageError(`the guest kernel is not built (${(e as Error).message}); run: npm run build`);
  }
  // The kernel's slot ends where the stacks of the vCPUs after the first begin.
  if (kernel.length > PHYS_CPU_STACKS - PHYS_KERNEL) throw new KernelImageError('kernel.bin is larger than its slot');
  if (stub.length > STUB_SIZE) throw new KernelImageError('stub.bin is larger than its slot');
  if (vdso.length > VDSO_SIZE) throw new KernelImageError('vdso.so is larger than its slot');
  const q = (i: number) => kernel.readBigUInt64LE(i * 8);
  if (q(0) !== KERNEL_MAGIC) throw new KernelImageError('kernel.bin has no kvmbox header; rebuild with npm run build');
  if (q(1) !== BigInt(HC_ABI_VERSION)) {
    throw new KernelImageError(`kernel.bin speaks hypercall ABI ${q(1)}, the host ${HC_ABI_VERSION}; rebuild with npm run build`);
  }
  const vectorTable = Number(q(5) - KERNEL_VBASE) - PHYS_KERNEL;
  const count = Number(q(6));
  const vectors: bigint[] = [];
  for (let i = 0; i < count; i++) vectors.push(kernel.readBigUInt64LE(vectorTable + i * 8));
  const stubCopy: Array<readonly [number, number]> = [];
  for (let o = 0; o + 16 <= STUB_ENTRY_OFFSET; o += 16) {
    const start = Number(stub.readBigUInt64LE(o));
    if (start === 0) break;
    stubCopy.push([start, Number(stub.readBigUInt64LE(o + 8))]);
  }
  const image = { kernel, stub, vdso, entry: q(2), syscallEntryHw: q(3), probeEntry: q(4), fuzzEntry: q(7), stubCopy, vectors };
  if (dir === KERNEL_OUT_DIR) cached = image;
  return image;
}
