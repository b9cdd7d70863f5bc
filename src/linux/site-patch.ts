// Direct jumps into the user-mode stub instead of the instructions that trap on kvm_pvm, at the
// program's own sites: `syscall` and `cpuid`.
//
// On kvm_pvm user mode runs natively, but two instructions every libc executes go through the
// hypervisor. `syscall` never reaches CPL0: it lands on the user-mode stub (LSTAR) at CPL3, and
// the instruction itself costs 1-7 µs (measured: ~1.1 µs on AMD hosts, ~6 µs on Intel hosts of
// this project), while a call the stub answers (getppid, a read from its cache, a stat from its
// directory cache) is a few nanoseconds of work behind it. `cpuid` at CPL3 costs ~12 µs on the
// Intel hosts, and glibc's start-up runs it about fifty times (cpu features, cache sizes): most of
// a static glibc program's start. So before a program starts, the host rewrites the sites it can
// prove safe to rewrite into a jump to a small per-site trampoline in the stub region:
// - `syscall`: the trampoline enters the stub exactly as `syscall` would (rax = number, rcx =
//   where to return), with no trap. gVisor's systrap platform patches call sites for the same
//   reason.
// - `cpuid`: the trampoline calls the stub's cpuid_emul, which answers from a table the host
//   filled with this CPU's own answers (src/machine/cpuid-table.ts), below the red zone, keeping
//   every register but eax/ebx/ecx/edx and the flags; a leaf not in the table runs the real
//   instruction.
//
// The trapping instruction (2 bytes) is too short for a `jmp rel32` (5), so the instructions
// after it move to the trampoline:
//
//   site:  jmp T ; int3 padding        T:  lea C(%rip), %rcx         | lea -128(%rsp), %rsp
//                                          jmp syscall_stub          | call cpuid_emul
//                                                                    | lea 128(%rsp), %rsp
//                                      C:  <the instructions that followed, rip-relative fixed>
//                                          jmp back to the first byte not moved
//
// Soundness rests on these checks:
// - A `syscall` site is followed by one instruction from a short list of exact byte signatures
//   (what glibc and musl emit after every inline system call: `cmp $-4095,%rax`, `mov
//   %rax,%rdi`...), so that with the `0f 05` it is 5-8 exact bytes: a match inside data or inside
//   another instruction is vanishingly unlikely (`0f 05` alone occurs outside code often).
// - A `cpuid` site (`0f a2`, which compilers emit nowhere else in practice: in busybox, glibc
//   `true` and SQLite every occurrence is the instruction) is followed by instructions that
//   src/linux/x86-insn.ts decodes fully: moves, ALU, lea, push/pop, nothing that transfers control.
// - No direct jump or call in the program's executable segments may land on a moved instruction
//   (every byte that could start a rel8/rel32 branch aiming there rules the site out, which errs
//   towards leaving a site alone). A jump into the middle of rewritten bytes would hit int3
//   (SIGTRAP), never a misread instruction.
// What a program may notice: after a patched `syscall` rcx holds C instead of the address after
// the instruction (both are "clobbered" in the Linux ABI); after a patched `cpuid` the flags are
// preserved (the instruction leaves them alone too); and its text in memory differs from the file
// (reading its own code is rare; /proc/self/exe is the unpatched file; patchSyscalls: false and
// --no-patch turn all of this off).
//
// Only on the user-stub path without tracing: on hardware KVM both instructions are cheap and
// `syscall` reaches CPL0, and a traced run must show every call to the host.
import { parseElf, PF_X, PT_LOAD } from './elf.js';
import { decodeSimple } from './x86-insn.js';
import * as libc from '../kvm/libc.js';
import type { PatchLayout } from '../machine/machine.js';

/** Instructions after `syscall` that move to a trampoline unchanged. */
const SYSCALL_SIGNATURES: readonly Buffer[] = [
  [0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff], // cmp $-4096, %rax  (glibc)
  [0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff], // cmp $-4095, %rax  (glibc)
  [0x3d, 0x00, 0xf0, 0xff, 0xff], //       cmp $-4096, %eax  (glibc)
  [0x3d, 0x01, 0xf0, 0xff, 0xff], //       cmp $-4095, %eax  (glibc)
  [0x48, 0x89, 0xc7], //                   mov %rax, %rdi    (musl: then __syscall_ret)
  [0x48, 0x89, 0xc3], //                   mov %rax, %rbx
  [0x48, 0x89, 0xc5], //                   mov %rax, %rbp
  [0x41, 0x89, 0xc2], //                   mov %eax, %r10d
  [0x48, 0x85, 0xc0], //                   test %rax, %rax
].map((b) => Buffer.from(b));

const OPCODE_0F = 0x0f, SYSCALL_2ND = 0x05, CPUID_2ND = 0xa2;
const JMP_REL32 = 0xe9, CALL_REL32 = 0xe8, INT3 = 0xcc;
const JMP_LEN = 5;
const TRAP_LEN = 2;
/** lea C(%rip), %rcx with C = the end of the following jmp (rel32 = 5). */
const LEA_RCX_NEXT = [0x48, 0x8d, 0x0d, 0x05, 0x00, 0x00, 0x00];
/** lea -128(%rsp), %rsp and lea 128(%rsp), %rsp: step over the red zone without touching flags. */
const LEA_RSP_DOWN = [0x48, 0x8d, 0x64, 0x24, 0x80];
const LEA_RSP_UP = [0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00];
const MAX_REL32 = 0x7fffffff;
/** Instructions moved after a `cpuid` at most (enough for 3 bytes in practice). */
const MAX_MOVED = 3;

/** One rewritten site: bytes to write at addr (guest address = guest-physical address). */
export interface PatchSite {
  addr: number;
  kind: 'syscall' | 'cpuid';
  bytes: Buffer;
}

/** Everything to apply for one program at one load address. */
export interface PatchPlan {
  sites: PatchSite[];
  /** The trampolines, to be written at the layout's trampolineBase. */
  trampolines: Buffer;
  /** Sites found but left alone (a branch may land on a moved instruction, or no room). */
  skipped: number;
}

interface Moved {
  /** Guest address of the instruction before the move. */
  addr: number;
  bytes: Buffer;
  ripDisp: number;
}

interface Candidate {
  addr: number;
  kind: 'syscall' | 'cpuid';
  moved: Moved[];
}

/** Exec segments as (guest address, bytes) with the load bias applied. */
function execSegments(file: Buffer, bias: number): Array<{ addr: number; bytes: Buffer }> {
  const elf = parseElf(file, 'program');
  return elf.phdrs
    .filter((p) => p.type === PT_LOAD && (p.flags & PF_X) !== 0 && p.filesz > 0)
    .map((p) => ({ addr: p.vaddr + bias, bytes: file.subarray(p.offset, p.offset + p.filesz) }));
}

function syscallSignatureAt(bytes: Buffer, i: number): Buffer | undefined {
  return SYSCALL_SIGNATURES.find((s) => i + s.length <= bytes.length && bytes.compare(s, 0, s.length, i, i + s.length) === 0);
}

/** The instructions after a `cpuid` at i that together give the jmp room, or null. */
function movableAfter(bytes: Buffer, addr: number, i: number): Moved[] | null {
  const moved: Moved[] = [];
  let at = i;
  while (at - i < JMP_LEN - TRAP_LEN) {
    if (moved.length === MAX_MOVED) return null;
    const insn = decodeSimple(bytes, at);
    if (!insn) return null;
    moved.push({ addr: addr + at, bytes: bytes.subarray(at, at + insn.length), ripDisp: insn.ripDisp });
    at += insn.length;
  }
  return moved;
}

function findCandidates(segs: ReadonlyArray<{ addr: number; bytes: Buffer }>): Candidate[] {
  const out: Candidate[] = [];
  for (const { addr, bytes } of segs) {
    // Search the second opcode byte (rarer than 0x0f), then look one byte back.
    for (let j = bytes.indexOf(SYSCALL_2ND, 1); j > 0; j = bytes.indexOf(SYSCALL_2ND, j + 1)) {
      if (bytes[j - 1] !== OPCODE_0F) continue;
      const sig = syscallSignatureAt(bytes, j + 1);
      if (sig) out.push({ addr: addr + j - 1, kind: 'syscall', moved: [{ addr: addr + j + 1, bytes: sig, ripDisp: -1 }] });
    }
    for (let j = bytes.indexOf(CPUID_2ND, 1); j > 0; j = bytes.indexOf(CPUID_2ND, j + 1)) {
      if (bytes[j - 1] !== OPCODE_0F) continue;
      const moved = movableAfter(bytes, addr, j + 1);
      if (moved) out.push({ addr: addr + j - 1, kind: 'cpuid', moved });
    }
  }
  // Two sites may not overlap (a cpuid's moved bytes holding another site's opcode).
  out.sort((a, b) => a.addr - b.addr);
  return out.filter((c, k) => {
    const prev = out[k - 1];
    const end = (x: Candidate) => { const l = x.moved[x.moved.length - 1]!; return l.addr + l.bytes.length; };
    const next = out[k + 1];
    return (!prev || end(prev) <= c.addr) && (!next || end(c) <= next.addr);
  });
}

/** The guest addresses among `wanted` that a direct branch in the segments could land on. */
function branchTargets(segs: ReadonlyArray<{ addr: number; bytes: Buffer }>, wanted: readonly number[]): Set<number> {
  const hit = new Set<number>();
  for (const { addr, bytes } of segs) {
    const marks = new Uint8Array(bytes.length + 1);
    const inside = wanted.filter((w) => w >= addr && w <= addr + bytes.length);
    for (const w of inside) marks[w - addr] = 1;
    libc.branchTargets(bytes, marks);
    for (const w of inside) if (marks[w - addr] === 2) hit.add(w);
  }
  return hit;
}

const fitsRel32 = (from: number, to: number) => Math.abs(to - from) <= MAX_REL32;

/** The trampoline for c at guest address t, or null when some displacement does not fit. */
function trampoline(c: Candidate, t: number, layout: PatchLayout): Buffer | null {
  const code: number[] = [];
  const rel32 = (target: number) => {
    const from = t + code.length + 4;
    if (!fitsRel32(from, target)) return false;
    const v = target - from;
    code.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
    return true;
  };
  if (c.kind === 'syscall') {
    code.push(...LEA_RCX_NEXT, JMP_REL32);
    if (!rel32(layout.syscallEntry)) return null;
  } else {
    code.push(...LEA_RSP_DOWN, CALL_REL32);
    if (!rel32(layout.cpuidEntry)) return null;
    code.push(...LEA_RSP_UP);
  }
  for (const m of c.moved) {
    const start = code.length;
    code.push(...m.bytes);
    if (m.ripDisp >= 0) {
      // Same target from the new place: disp' = disp + (old end - new end).
      const disp = m.bytes.readInt32LE(m.ripDisp) + (m.addr + m.bytes.length) - (t + start + m.bytes.length);
      if (disp < -0x80000000 || disp > MAX_REL32) return null;
      const o = start + m.ripDisp;
      code[o] = disp & 0xff; code[o + 1] = (disp >> 8) & 0xff; code[o + 2] = (disp >> 16) & 0xff; code[o + 3] = (disp >>> 24) & 0xff;
    }
  }
  const last = c.moved[c.moved.length - 1]!;
  code.push(JMP_REL32);
  if (!rel32(last.addr + last.bytes.length)) return null;
  return Buffer.from(code);
}

/** The rewrite of a program's patchable sites when loaded with `bias`, for the given layout. */
export function planPatches(file: Buffer, bias: number, layout: PatchLayout): PatchPlan {
  const segs = execSegments(file, bias);
  const candidates = findCandidates(segs);
  const landed = branchTargets(segs, candidates.flatMap((c) => c.moved.map((m) => m.addr)));
  const sites: PatchSite[] = [];
  const parts: Buffer[] = [];
  let used = 0;
  let skipped = 0;
  for (const c of candidates) {
    const t = layout.trampolineBase + used;
    const code = c.moved.some((m) => landed.has(m.addr)) || !fitsRel32(c.addr + JMP_LEN, t) ? null : trampoline(c, t, layout);
    if (!code || used + code.length > layout.trampolineRoom) {
      skipped++;
      continue;
    }
    const last = c.moved[c.moved.length - 1]!;
    const site = Buffer.alloc(last.addr + last.bytes.length - c.addr, INT3);
    site[0] = JMP_REL32;
    site.writeInt32LE(t - (c.addr + JMP_LEN), 1);
    sites.push({ addr: c.addr, kind: c.kind, bytes: site });
    parts.push(code);
    used += code.length;
  }
  return { sites, trampolines: Buffer.concat(parts), skipped };
}
