// Direct jumps into the user-mode stub instead of `syscall`, at the program's own call sites.
//
// On kvm_pvm `syscall` never reaches CPL0: it lands on the user-mode stub (LSTAR) at CPL3, and the
// instruction itself costs 1-7 µs there (the hypervisor's switcher handles it; measured: ~1.1 µs
// on AMD hosts, ~6 µs on Intel hosts of this project). A system call the stub answers (getppid,
// a read from its cache, a stat from its directory cache) is a few nanoseconds of work behind
// that trap. So before a program starts, the host rewrites the `syscall` instructions it can
// prove safe to rewrite into a jump to a small per-site trampoline in the stub region, which
// enters the stub exactly as `syscall` would (rax = number, rcx = where to return) with no trap.
// gVisor's systrap platform patches call sites for the same reason.
//
// A site is `syscall` followed by one instruction from a short list of exact byte signatures
// (what glibc and musl emit after every inline system call: `cmp $-4095,%rax`, `cmp
// $-4096,%eax`, `mov %rax,%rdi`, ...). The two together are at least 5 bytes, room for a `jmp
// rel32`; the following instruction is position-independent and moves to the trampoline:
//
//   site:  jmp T ; int3 padding              T:  lea C(%rip), %rcx
//                                                jmp syscall_stub
//                                            C:  <the instruction that followed syscall>
//                                                jmp site + 2 + its length
//
// Soundness rests on three checks. The signatures are 5-8 exact bytes, so that a match inside data
// or inside another instruction is vanishingly unlikely. The instruction after `syscall` must not
// be the target of any direct jump or call in the program's executable segments (every byte that
// could start a rel8/rel32 branch aiming there rules the site out, which errs towards leaving a
// site alone). A jump into the middle of the rewritten bytes would land on int3 (SIGTRAP), never
// on a misread instruction. What a program may notice: after a patched call rcx holds C instead
// of the address after `syscall` (both are "clobbered" in the Linux ABI), and its text in memory
// differs from the file (reading its own code is rare; /proc/self/exe is the unpatched file).
//
// Only on the user-stub path without tracing: on hardware KVM `syscall` reaches CPL0 cheaply, and
// a traced run must show every call to the host.
import { parseElf, PF_X, PT_LOAD } from './elf.js';
import * as libc from '../kvm/libc.js';

/** Instructions after `syscall` that move to a trampoline unchanged. */
const SIGNATURES: readonly Buffer[] = [
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

const SYSCALL0 = 0x0f, SYSCALL1 = 0x05;
const JMP_REL32 = 0xe9, INT3 = 0xcc;
const JMP_LEN = 5;
/** lea C(%rip), %rcx with C = the end of the following jmp (rel32 = 5). */
const LEA_RCX_NEXT = [0x48, 0x8d, 0x0d, 0x05, 0x00, 0x00, 0x00];
const TRAMP_HEAD = LEA_RCX_NEXT.length + JMP_LEN;
const MAX_REL32 = 0x7fffffff;

/** One rewritten call site: bytes to write at addr (guest address = guest-physical address). */
export interface PatchSite {
  addr: number;
  bytes: Buffer;
}

/** Everything to apply for one program at one load address. */
export interface PatchPlan {
  sites: PatchSite[];
  /** The trampolines, to be written at the trampoline base the plan was made for. */
  trampolines: Buffer;
  /** Call sites found but left alone (a branch may land after `syscall`, or no room). */
  skipped: number;
}

interface Candidate {
  addr: number;
  sig: Buffer;
}

/** Exec segments as (guest address, bytes) with the load bias applied. */
function execSegments(file: Buffer, bias: number): Array<{ addr: number; bytes: Buffer }> {
  const elf = parseElf(file, 'program');
  return elf.phdrs
    .filter((p) => p.type === PT_LOAD && (p.flags & PF_X) !== 0 && p.filesz > 0)
    .map((p) => ({ addr: p.vaddr + bias, bytes: file.subarray(p.offset, p.offset + p.filesz) }));
}

function signatureAt(bytes: Buffer, i: number): Buffer | undefined {
  return SIGNATURES.find((s) => i + s.length <= bytes.length && bytes.compare(s, 0, s.length, i, i + s.length) === 0);
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

/**
 * The rewrite of a program's patchable `syscall` sites when loaded with `bias`, with trampolines
 * at trampBase (at most trampRoom bytes) that enter the stub at stubEntry.
 */
export function planPatches(file: Buffer, bias: number, trampBase: number, trampRoom: number, stubEntry: number): PatchPlan {
  const segs = execSegments(file, bias);
  const candidates: Candidate[] = [];
  for (const { addr, bytes } of segs) {
    for (let i = bytes.indexOf(SYSCALL1, 1); i > 0; i = bytes.indexOf(SYSCALL1, i + 1)) {
      if (bytes[i - 1] !== SYSCALL0) continue;
      const sig = signatureAt(bytes, i + 1);
      if (sig) candidates.push({ addr: addr + i - 1, sig });
    }
  }
  const landed = branchTargets(segs, candidates.map((c) => c.addr + 2));
  const sites: PatchSite[] = [];
  const tramp: number[] = [];
  let skipped = 0;
  for (const c of candidates) {
    const t = trampBase + tramp.length;
    const size = TRAMP_HEAD + c.sig.length + JMP_LEN;
    const back = c.addr + 2 + c.sig.length;
    const far = Math.abs(t - (c.addr + JMP_LEN)) > MAX_REL32 || Math.abs(back - (t + size)) > MAX_REL32;
    if (landed.has(c.addr + 2) || far || tramp.length + size > trampRoom) {
      skipped++;
      continue;
    }
    const site = Buffer.alloc(2 + c.sig.length, INT3);
    site[0] = JMP_REL32;
    site.writeInt32LE(t - (c.addr + JMP_LEN), 1);
    sites.push({ addr: c.addr, bytes: site });
    const code = Buffer.alloc(size);
    Buffer.from(LEA_RCX_NEXT).copy(code, 0);
    code[LEA_RCX_NEXT.length] = JMP_REL32;
    code.writeInt32LE(stubEntry - (t + TRAMP_HEAD), LEA_RCX_NEXT.length + 1);
    c.sig.copy(code, TRAMP_HEAD);
    code[TRAMP_HEAD + c.sig.length] = JMP_REL32;
    code.writeInt32LE(back - (t + size), TRAMP_HEAD + c.sig.length + 1);
    for (const b of code) tramp.push(b);
  }
  return { sites, trampolines: Buffer.from(tramp), skipped };
}
