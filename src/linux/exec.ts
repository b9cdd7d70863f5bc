// execve's work: give a process a fresh address space holding an ELF program (its segments
// placed in guest memory, and its interpreter's for a dynamically linked one, and the initial
// stack of argc, argv, envp and auxv, as the Linux kernel builds it), set up the user-mode stub's
// caches for it, and point the thread's vCPU at the program's entry (or its interpreter's).
import { bytesOf, cStringOf, nameLength } from '../abi/file-names.js';
import { AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE } from './address-space.js';
import { ET_DYN, NotRunnableError, parseElf, PF_R, PF_W, PF_X, PT_LOAD, PT_PHDR, type ElfImage } from './elf.js';
import { alignDown, alignUp, PAGE_SIZE } from '../machine/x86.js';
import type { PatchLayout, SpaceMemory } from '../machine/machine.js';
import { AT } from '../abi/linux.js';
import { GUEST_GID, GUEST_UID } from '../abi/abi.generated.js';
import { fillRandom } from './entropy.js';
import { imageOfBuffer } from './image-cache.js';
import type { SharedBacking } from '../kvm/shared-memory.js';
import { readInterpreter } from './interp.js';
import { DirCache } from '../fs/dir-cache.js';
import { normalize } from '../fs/vfs.js';
import { StubCache } from './stub-cache.js';
import { MapPool } from './map-pool.js';
import { planPatches, type PatchPlan } from './site-patch.js';
import type { Task } from './task.js';
import { openPath } from '../fs/ops.js';
import { signalFrameBytes } from './signals.js';
import { permitted } from '../fs/access.js';

/** Where static-PIE programs are placed (Linux would randomise; kvmbox is deterministic). */
export const PIE_BASE = 0x400000;
/**
 * The stack may grow to this size (RLIMIT_STACK's soft limit, as on Linux, unless the program's
 * parent set another before the exec); this much is mapped at start.
 */
export const STACK_SIZE = 8 << 20;
export const STACK_INITIAL = 128 << 10;

export interface LoadedProgram {
  entry: number;
  stackPointer: number;
  /** Address of the ELF program headers in guest memory. */
  phdr: number;
  /** What was added to the ELF's addresses (0 for ET_EXEC). */
  bias: number;
  /** The auxiliary vector given to it, as /proc/PID/auxv shows it (pairs of words, AT_NULL last). */
  auxv: Buffer;
}

export interface ProcessInfo {
  argv: readonly string[];
  envp: readonly string[];
  execfn: string;
  uid: number;
  gid: number;
  hwcap: number;
  /** The most stack a signal frame takes (AT_MINSIGSTKSZ: signalFrameBytes). */
  minSigStackSize: number;
  /** The vDSO's address (AT_SYSINFO_EHDR), or null where there is none. */
  vdso?: number | null;
  /**
   * Reads a dynamically linked program's interpreter (PT_INTERP) from the guest's file namespace
   * (src/linux/interp.ts); without it such programs are refused.
   */
  readInterpreter?: (path: string) => Buffer;
  /** Map read-only segments from the files' images (src/linux/image-cache.ts) instead of copying them. */
  images?: boolean;
  /** RLIMIT_STACK's soft limit in bytes where the process set one (Infinity: unlimited); else STACK_SIZE. */
  stackRlimit?: number;
}

function toProt(flags: number): number {
  return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) | (flags & PF_X ? PROT_EXEC : 0);
}

/** Parsed headers per program image (src/api/run.ts keeps one Buffer per file while it is unchanged). */
const parsed = new WeakMap<Buffer, ElfImage>();

export function loadProgram(space: AddressSpace, file: Buffer, name: string, info: ProcessInfo): LoadedProgram {
  let elf = parsed.get(file);
  if (!elf) {
    elf = parseElf(file, name);
    parsed.set(file, elf);
  }
  const bias = elf.type === ET_DYN ? PIE_BASE - alignDown(elf.minVaddr, PAGE_SIZE) : 0;
  const lo = alignDown(elf.minVaddr + bias, PAGE_SIZE);
  const hi = alignUp(elf.maxVaddr + bias, PAGE_SIZE);
  // The stack's reserve: what RLIMIT_STACK asks, within an eighth of the memory (all a stack
  // could use with the rest of a program; on kvm_pvm the memory is also the address range), and
  // never under the pages mapped at start.
  // The pages mapped at start hold the arguments and environment with room to spare (xargs
  // passes 128 KiB of them, and execve takes up to a quarter of RLIMIT_STACK).
  const initial = Math.max(STACK_INITIAL, alignUp(stackArgumentBytes(info) + STACK_INITIAL / 2, PAGE_SIZE));
  const stackSize = Math.max(initial, alignDown(Math.min(info.stackRlimit ?? STACK_SIZE, space.memoryBytes / 8), PAGE_SIZE));
  if (!space.isFree(lo, hi - lo) || hi > space.userTop - stackSize - (1 << 20)) {
    throw new NotRunnableError(
      `${name}: its segments (0x${lo.toString(16)}-0x${hi.toString(16)}) do not fit in guest memory ` +
      `(user range ends at 0x${space.userTop.toString(16)}); give more with --memory`);
  }
  mapSegments(space, file, elf, bias, info.images ? imageOfBuffer(file) : null, name);

  space.brkStart = space.brkEnd = space.heapTop = hi;
  space.setupStack(initial, stackSize);

  const phdrSeg = elf.phdrs.find((p) => p.type === PT_PHDR);
  const loadWithPhdrs = elf.phdrs.find((p) => p.type === PT_LOAD && p.offset <= elf.phoff && elf.phoff < p.offset + p.filesz);
  const phdr = phdrSeg ? phdrSeg.vaddr + bias : loadWithPhdrs ? loadWithPhdrs.vaddr + bias + (elf.phoff - loadWithPhdrs.offset) : 0;
  const entry = elf.entry + bias;
  const interp = elf.interp === undefined ? null : loadInterpreter(space, elf.interp, name, info);
  const { sp, auxv } = buildStack(space, info, { phdr, phnum: elf.phnum, phent: elf.phentsize, entry, base: interp?.base ?? 0 });
  return { entry: interp?.entry ?? entry, stackPointer: sp, phdr, bias, auxv };
}

/**
 * Copy an ELF's PT_LOAD segments into guest memory at bias and give each its protection (the
 * caller checked that the range is free). A page shared by two segments gets the union of their
 * rights; what lies beyond p_filesz reads as zero (the pages were unmapped, hence zero).
 *
 * With image (the file's, src/linux/image-cache.ts), a read-only segment with no bss whose pages
 * no other segment shares is mapped from it instead, whole pages of the file as Linux maps them.
 */
export function mapSegments(space: AddressSpace, file: Buffer, elf: ElfImage, bias: number, image: SharedBacking | null = null, name?: string): void {
  const segs = elf.phdrs.filter((p) => p.type === PT_LOAD && p.memsz > 0).map((p) => ({
    p, start: alignDown(p.vaddr + bias, PAGE_SIZE), end: alignUp(p.vaddr + bias + p.memsz, PAGE_SIZE), prot: toProt(p.flags),
  }));
  const fromImage = (s: (typeof segs)[number]): boolean => image !== null && !(s.p.flags & PF_W) && s.p.memsz === s.p.filesz &&
    (s.p.vaddr - s.p.offset) % PAGE_SIZE === 0 && segs.every((o) => o === s || o.end <= s.start || o.start >= s.end);
  for (const s of segs) {
    if (fromImage(s)) {
      // Whole pages of the image: nothing to zero first.
      space.paging.willOverwrite(s.start / PAGE_SIZE, s.end / PAGE_SIZE);
      space.map(s.start, s.end - s.start, PROT_READ | PROT_WRITE);
      space.memory.share(s.start, s.end - s.start, image!, alignDown(s.p.offset, PAGE_SIZE), true);
      continue;
    }
    space.map(s.start, s.end - s.start, PROT_READ | PROT_WRITE);
    space.memory.write(s.p.vaddr + bias, file.subarray(s.p.offset, s.p.offset + s.p.filesz));
  }
  for (const s of segs) space.map(s.start, s.end - s.start, s.prot);
  if (name !== undefined) for (const s of segs) space.nameRange(s.start, s.end - s.start, name, alignDown(s.p.offset, PAGE_SIZE));
  for (let i = 0; i < segs.length; i++) {
    for (let j = i + 1; j < segs.length; j++) {
      const a = segs[i]!, b = segs[j]!;
      const lo = Math.max(a.start, b.start), hi = Math.min(a.end, b.end);
      if (lo < hi) space.map(lo, hi - lo, a.prot | b.prot);
    }
  }

}

/** Interpreters' parsed headers, per image (src/linux/interp.ts keeps one Buffer per file). */
const parsedInterp = new WeakMap<Buffer, ElfImage>();

/**
 * Map a dynamically linked program's interpreter (ld.so) below the stack, where Linux's mmap
 * area starts, as Linux's execve does; the program itself is already mapped. Returns its load
 * base (AT_BASE) and entry point, where the program starts.
 */
function loadInterpreter(space: AddressSpace, path: string, name: string, info: ProcessInfo): { base: number; entry: number } {
  if (!info.readInterpreter) {
    throw new NotRunnableError(`${name}: dynamically linked (needs ${path}), and this run cannot load interpreters`);
  }
  const file = info.readInterpreter(path);
  let elf = parsedInterp.get(file);
  if (!elf) {
    elf = parseElf(file, path);
    if (elf.type !== ET_DYN) throw new NotRunnableError(`${name}: its interpreter ${path} is not a shared object (ELF type ${elf.type})`);
    if (elf.interp !== undefined) throw new NotRunnableError(`${name}: its interpreter ${path} names an interpreter itself`);
    parsedInterp.set(file, elf);
  }
  const lo = alignDown(elf.minVaddr, PAGE_SIZE);
  const span = alignUp(elf.maxVaddr, PAGE_SIZE) - lo;
  const base = span > 0 && span <= space.memory.size / 2 ? space.findFree(span) : 0;
  if (!base) throw new NotRunnableError(`${name}: its interpreter ${path} does not fit in guest memory; give more with --memory`);
  const bias = base - lo;
  mapSegments(space, file, elf, bias, info.images ? imageOfBuffer(file) : null, path);
  return { base, entry: elf.entry + bias };
}

function randomBytes16(): Buffer {
  const b = Buffer.alloc(16);
  fillRandom(b, 0, 16);
  return b;
}

/**
 * The most bytes of arguments and environment strings (each with its pointer) execve takes, as
 * Linux: a quarter of RLIMIT_STACK's soft limit, at most 6 MiB and at least 128 KiB (E2BIG past it).
 */
export function execArgumentLimit(stackRlimit: number | undefined): number {
  return Math.max(128 << 10, Math.min(6 << 20, Math.floor((stackRlimit ?? STACK_SIZE) / 4)));
}

/** Bytes that buildStack puts on the stack: the strings, their pointers and the auxv, aligned. */
function stackArgumentBytes(info: ProcessInfo): number {
  let bytes = 8 + 7 + 16 + 16 + AUXV_MAX_ENTRIES * 16 + 8 * (info.argv.length + info.envp.length + 3);
  for (const s of [...info.argv, ...info.envp, info.execfn]) bytes += nameLength(s) + 1;
  return bytes;
}
/** At least as many entries as buildStack's auxv has. */
const AUXV_MAX_ENTRIES = 24;

function buildStack(space: AddressSpace, info: ProcessInfo, elf: { phdr: number; phnum: number; phent: number; entry: number; base: number }): { sp: number; auxv: Buffer } {
  const mem = space.memory;
  let top = space.stackTop;
  const pushBytes = (b: Uint8Array): number => {
    top -= b.length;
    mem.write(top, b);
    return top;
  };
  const pushString = (s: string): number => pushBytes(cStringOf(s));
  // As Linux lays them out: below a zero word at the top, the argv strings, then the environment
  // strings, then AT_EXECFN, one after another at rising addresses. Programs count on it: libuv
  // (node's process.title) writes its title over argv[0] up to the end of the last argument.
  top -= 8;
  mem.fill(top, 8);
  const strings = [...info.argv, ...info.envp, info.execfn].map(cStringOf);
  let at = pushBytes(Buffer.concat(strings));
  const addrs = strings.map((b) => { const a = at; at += b.length; return a; });
  const argAddrs = addrs.slice(0, info.argv.length);
  const envAddrs = addrs.slice(info.argv.length, info.argv.length + info.envp.length);
  const execfn = addrs[addrs.length - 1]!;
  const platform = pushString('x86_64');
  const random = pushBytes(randomBytes16());
  top = alignDown(top, 16);

  const auxv: Array<[number, number]> = [
    [AT.PHDR, elf.phdr], [AT.PHENT, elf.phent], [AT.PHNUM, elf.phnum], [AT.PAGESZ, PAGE_SIZE],
    [AT.BASE, elf.base], [AT.FLAGS, 0], [AT.ENTRY, elf.entry], [AT.UID, info.uid], [AT.EUID, info.uid],
    [AT.GID, info.gid], [AT.EGID, info.gid], [AT.SECURE, 0], [AT.RANDOM, random], [AT.HWCAP, info.hwcap],
    [AT.HWCAP2, 0], [AT.CLKTCK, 100], [AT.PLATFORM, platform], [AT.EXECFN, execfn],
    [AT.MINSIGSTKSZ, info.minSigStackSize],
    ...(info.vdso ? [[AT.SYSINFO_EHDR, info.vdso] as [number, number]] : []),
    [AT.NULL, 0],
  ];
  const words: number[] = [info.argv.length, ...argAddrs, 0, ...envAddrs, 0];
  for (const [k, v] of auxv) words.push(k, v);
  // argc must sit at a 16-byte aligned address.
  top -= words.length * 8;
  top = alignDown(top, 16);
  words.forEach((w, i) => mem.setU64(top + i * 8, BigInt(w)));
  if (auxv.length > AUXV_MAX_ENTRIES || top < space.stackBottom + PAGE_SIZE) throw new Error('exec: the arguments overran the stack mapped for them');
  const vector = Buffer.alloc(auxv.length * 16);
  auxv.forEach(([k, v], i) => { vector.writeBigUInt64LE(BigInt(k), i * 16); vector.writeBigUInt64LE(BigInt(v), i * 16 + 8); });
  return { sp: top, auxv: vector };
}

/** Heap mapped beyond a break the host moves, for the stub to move it in (glibc's malloc grows
 * the heap by 132 KiB and more at a time). */
const BRK_SLACK = 512 * 1024;
/** Patch plans per program image (the image cache in src/api/run.ts keeps one Buffer per file). */
const patchPlans = new WeakMap<Buffer, { bias: number; layout: PatchLayout; plan: PatchPlan }>();

export interface ExecArgs {
  argv: readonly string[];
  envp: readonly string[];
  /** Guest path of the program as given (AT_EXECFN; /proc/self/exe after resolving its symlinks). */
  exePath: string;
}

/**
 * What /proc/self/exe names: the program's path with every symlink resolved in the guest's
 * namespace, as Linux gives the file's own path (/usr/bin/python3 -> /usr/bin/python3.11). ld.so
 * reads it for $ORIGIN (java finds libjli.so through it). A path outside the grants (the first
 * program itself) or one that cannot be resolved stays as given.
 */
function exeLink(p: Task['process'], path: string): string {
  try {
    return '/' + p.vfs.resolve(normalize(path), true).join('/');
  } catch {
    return path;
  }
}

export interface ExecEnv {
  /** Every system call goes to the host (--trace): no stub caches, no patched sites. */
  traced: boolean;
  /** Rewrite provably safe `syscall` and `cpuid` sites (src/linux/site-patch.ts). */
  patchSyscalls: boolean;
  /** APIC timer period in ticks, 0 for no timer. */
  timerCount: number;
}

/**
 * Give p the user-mode stub's caches (src/linux/stub-cache.ts, src/linux/map-pool.ts,
 * src/fs/dir-cache.ts): working ones when fast, else ones that leave every call to the host.
 */
export function attachCaches(p: Task['process'], fast: boolean): void {
  const machine = p.machine;
  p.stubCache = new StubCache(machine.memory, fast);
  p.mapPool = new MapPool(machine.memory, fast);
  p.dirCache = new DirCache(machine.memory, fast, {
    reopen: (path, flags) => openPath(p, normalize(path), flags, 0),
    listable: (st) => permitted(st, 4 | 1),
    readOnly: (path) => {
      try {
        const loc = p.vfs.locate(normalize(path));
        return loc.kind === 'host' && !loc.grant.writable;
      } catch {
        return false;
      }
    },
  });
}

/**
 * Load program into t's process, in a fresh address space, and make t start at its entry.
 * The machine must be fresh or reset (src/machine/pool.ts): the first program of a sandbox.
 * Throws NotRunnableError when the program cannot run; the process is then left without one.
 */
export function exec(t: Task, program: Buffer, args: ExecArgs, env: ExecEnv, home: SpaceMemory | null = null): void {
  const p = t.process;
  const machine = p.machine;
  const space = home ? new AddressSpace(home.memory, home.paging, home) : new AddressSpace(machine.memory, machine.paging);
  const loaded = loadProgram(space, program, args.exePath, {
    argv: args.argv, envp: args.envp, execfn: args.exePath, uid: GUEST_UID, gid: GUEST_GID, hwcap: machine.hwcap, minSigStackSize: signalFrameBytes(machine.signalXstate), vdso: machine.vdsoAddress,
    readInterpreter: (path) => readInterpreter(p.vfs, path, args.exePath),
    images: p.kernel.sharedMemory !== null,
    stackRlimit: p.stackRlimit(),
  });
  p.space = space;
  p.auxv = loaded.auxv;
  p.argv = args.argv;
  p.envp = args.envp;
  p.exePath = exeLink(p, args.exePath);
  p.membarriers = 0;
  p.setComm(bytesOf(args.exePath.split('/').pop() ?? ''));
  t.fsBase = 0n;
  const fast = machine.syscallPath === 'user-stub' && !env.traced;
  attachCaches(p, fast);
  // The stub moves the break within what the host mapped beyond it (kernel/stub.S brk_fast).
  if (fast) {
    space.brkSlack = BRK_SLACK;
    space.growHeap();
  }

  if (fast && env.patchSyscalls) {
    const layout = machine.patchLayout;
    let entry = patchPlans.get(program);
    if (!entry || entry.bias !== loaded.bias || JSON.stringify(entry.layout) !== JSON.stringify(layout)) {
      entry = { bias: loaded.bias, layout, plan: planPatches(program, loaded.bias, layout) };
      patchPlans.set(program, entry);
    }
    machine.installTrampolines(entry.plan.trampolines);
    for (const s of entry.plan.sites) machine.memory.write(s.addr, s.bytes);
  }
  machine.start(loaded.entry, loaded.stackPointer, env.timerCount, env.traced, [[space.stackLimit, space.stackBottom]]);
  p.applyAddressLimit();
  p.stubCache.publishFdMasks(p.fds);
  p.dirCache.start(p.fds);
  p.stubCache.publishClock(t.vcpu);
  machine.publishClock(t.vcpu);
  p.stubCache.publishRandom();
  p.stubCache.publishFsBase(machine.userFsBase);
  p.stubCache.publishIdentity(p.rlimitTable(), p.exePath);
  p.stubCache.publishIds(p.pid, t.tid, p.ppid);
  p.stubCache.publishBrk(space);
}
