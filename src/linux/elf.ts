// ELF64 parsing for x86-64 executables (static, or naming an interpreter in PT_INTERP). Knows ELF and nothing about KVM.

import { nameOf } from '../abi/file-names.js';

/** The file is not something kvmbox can run (exit status 126, like `env` and `docker run`). */
export class NotRunnableError extends Error {
  readonly exitStatus = 126;
  constructor(message: string) {
    super(message);
    this.name = 'NotRunnableError';
  }
}

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_STACK = 0x6474e551;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;
export const ET_EXEC = 2;
export const ET_DYN = 3;
const EM_X86_64 = 62;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;

export interface ProgramHeader {
  type: number; flags: number; offset: number; vaddr: number; filesz: number; memsz: number; align: number;
}

export interface ElfImage {
  type: number;
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  phdrs: ProgramHeader[];
  /** Lowest and highest virtual address covered by PT_LOAD segments (before relocation). */
  minVaddr: number;
  maxVaddr: number;
  /** PT_INTERP: the program interpreter (ld.so) a dynamically linked program names. */
  interp?: string;
}

function safe(n: bigint, what: string): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new NotRunnableError(`ELF ${what} is out of range`);
  return Number(n);
}

export function parseElf(file: Buffer, name: string): ElfImage {
  if (file.length < 4 || file.readUInt32BE(0) !== 0x7f454c46) {
    throw new NotRunnableError(`${name}: not an ELF executable`);
  }
  if (file.length < EHDR_SIZE) throw new NotRunnableError(`${name}: truncated ELF header`);
  if (file[4] !== ELFCLASS64 || file[5] !== ELFDATA2LSB || file.readUInt16LE(18) !== EM_X86_64) {
    throw new NotRunnableError(`${name}: not an x86-64 ELF (kvmbox runs 64-bit x86 Linux programs only)`);
  }
  const type = file.readUInt16LE(16);
  if (type !== ET_EXEC && type !== ET_DYN) throw new NotRunnableError(`${name}: ELF type ${type} is not an executable`);
  const entry = safe(file.readBigUInt64LE(24), 'entry');
  const phoff = safe(file.readBigUInt64LE(32), 'phoff');
  const phentsize = file.readUInt16LE(54);
  const phnum = file.readUInt16LE(56);
  if (phentsize !== PHDR_SIZE || phnum === 0 || phnum > 256 || phoff + phnum * PHDR_SIZE > file.length) {
    throw new NotRunnableError(`${name}: bad program header table`);
  }
  const phdrs: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * PHDR_SIZE;
    phdrs.push({
      type: file.readUInt32LE(o), flags: file.readUInt32LE(o + 4), offset: safe(file.readBigUInt64LE(o + 8), 'p_offset'),
      vaddr: safe(file.readBigUInt64LE(o + 16), 'p_vaddr'), filesz: safe(file.readBigUInt64LE(o + 32), 'p_filesz'),
      memsz: safe(file.readBigUInt64LE(o + 40), 'p_memsz'), align: safe(file.readBigUInt64LE(o + 48), 'p_align'),
    });
  }
  const interpHdr = phdrs.find((p) => p.type === PT_INTERP);
  let interp: string | undefined;
  if (interpHdr) {
    if (interpHdr.filesz < 2 || interpHdr.filesz > 4096 || interpHdr.offset + interpHdr.filesz > file.length) {
      throw new NotRunnableError(`${name}: bad PT_INTERP (interpreter name)`);
    }
    const raw = file.subarray(interpHdr.offset, interpHdr.offset + interpHdr.filesz);
    const nul = raw.indexOf(0);
    interp = nameOf(raw.subarray(0, nul < 0 ? raw.length : nul));
    if (!interp.startsWith('/')) throw new NotRunnableError(`${name}: interpreter '${interp}' is not an absolute path`);
  }
  const loads = phdrs.filter((p) => p.type === PT_LOAD);
  if (loads.length === 0) throw new NotRunnableError(`${name}: no loadable segments`);
  for (const p of loads) {
    if (p.filesz > p.memsz || p.offset + p.filesz > file.length) throw new NotRunnableError(`${name}: segment outside the file`);
  }
  const minVaddr = Math.min(...loads.map((p) => p.vaddr));
  const maxVaddr = Math.max(...loads.map((p) => p.vaddr + p.memsz));
  return { type, entry, phoff, phentsize, phnum, phdrs, minVaddr, maxVaddr, interp };
}
