// Length of the simple x86-64 instructions that may be moved to another address unchanged but for
// a rip-relative displacement: register and memory moves, ALU operations, shifts, tests, lea,
// push/pop. Anything that transfers control (jumps, calls, returns), reads rip otherwise, or is
// not on the list returns null, so a caller moves only what it fully understands. Knows
// encodings and nothing else (used by src/linux/site-patch.ts).

export interface SimpleInsn {
  /** Bytes in the instruction. */
  length: number;
  /** Offset of a rip-relative disp32 within the instruction, or -1. */
  ripDisp: number;
}

const PREFIX_OPSIZE = 0x66;
const REX_FIRST = 0x40, REX_LAST = 0x4f, REX_W = 0x08;
const TWO_BYTE = 0x0f;

/** One-byte opcodes followed by a ModRM byte and no immediate. */
const MODRM: ReadonlySet<number> = new Set([
  0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x11, 0x12, 0x13, 0x18, 0x19, 0x1a, 0x1b,
  0x20, 0x21, 0x22, 0x23, 0x28, 0x29, 0x2a, 0x2b, 0x30, 0x31, 0x32, 0x33, 0x38, 0x39, 0x3a, 0x3b,
  0x63, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8d, 0xd1, 0xd3,
]);
/** ModRM, then imm8. */
const MODRM_IMM8: ReadonlySet<number> = new Set([0x6b, 0x80, 0x83, 0xc0, 0xc1, 0xc6]);
/** ModRM, then imm32 (imm16 under 0x66). */
const MODRM_IMM32: ReadonlySet<number> = new Set([0x69, 0x81, 0xc7]);
/** No ModRM, imm8: ALU with al, test al, mov r8. */
const IMM8: ReadonlySet<number> = new Set([0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0xa8, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7]);
/** No ModRM, imm32 (imm16 under 0x66): ALU with eax/rax, test eax. */
const IMM32: ReadonlySet<number> = new Set([0x05, 0x0d, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0xa9]);
/** Two-byte opcodes (after 0x0f) with ModRM and no immediate: cmovcc, setcc, bt*, imul, movzx/movsx, nopl. */
function twoByteModrm(op: number): boolean {
  return (op >= 0x40 && op <= 0x4f) || (op >= 0x90 && op <= 0x9f) || op === 0x1f || op === 0xa3 || op === 0xab ||
    op === 0xaf || op === 0xb3 || op === 0xb6 || op === 0xb7 || op === 0xbb || op === 0xbe || op === 0xbf;
}

/** Bytes of ModRM (+ SIB + displacement) at i, and where a rip-relative disp32 sits (or -1). */
function modrm(b: Uint8Array, i: number): { length: number; ripDisp: number } | null {
  if (i >= b.length) return null;
  const m = b[i]!;
  const mod = m >> 6, rm = m & 7;
  if (mod === 3) return { length: 1, ripDisp: -1 };
  let n = 1;
  let base = rm;
  if (rm === 4) {
    if (i + 1 >= b.length) return null;
    base = b[i + 1]! & 7;
    n++;
  }
  if (mod === 0 && rm === 5) return { length: 5, ripDisp: 1 };
  if (mod === 1) n += 1;
  else if (mod === 2 || (mod === 0 && base === 5)) n += 4;
  return { length: n, ripDisp: -1 };
}

/** The simple instruction starting at b[i], or null if it is not one this module moves. */
export function decodeSimple(b: Uint8Array, i: number): SimpleInsn | null {
  let p = i;
  let opsize16 = false;
  let rexW = false;
  if (b[p] === PREFIX_OPSIZE) {
    opsize16 = true;
    p++;
  }
  if (p < b.length && b[p]! >= REX_FIRST && b[p]! <= REX_LAST) {
    rexW = (b[p]! & REX_W) !== 0;
    p++;
  }
  if (p >= b.length) return null;
  const op = b[p++]!;
  const imm32 = opsize16 ? 2 : 4;
  let imm = 0;
  let mr: { length: number; ripDisp: number } | null = null;
  if (MODRM.has(op)) {
    mr = modrm(b, p);
  } else if (MODRM_IMM8.has(op)) {
    mr = modrm(b, p);
    imm = 1;
  } else if (MODRM_IMM32.has(op)) {
    mr = modrm(b, p);
    imm = imm32;
  } else if (op === 0xf6 || op === 0xf7) {
    // test r/m, imm (reg field 0) or not/neg/mul/imul/div/idiv (2-7); 1 is undefined.
    if (p >= b.length) return null;
    const reg = (b[p]! >> 3) & 7;
    if (reg === 1) return null;
    mr = modrm(b, p);
    if (reg === 0) imm = op === 0xf6 ? 1 : imm32;
  } else if (IMM8.has(op)) {
    imm = 1;
  } else if (IMM32.has(op)) {
    imm = imm32;
  } else if (op >= 0xb8 && op <= 0xbf) {
    imm = rexW ? 8 : imm32;
  } else if ((op >= 0x50 && op <= 0x5f) || op === 0x90) {
    imm = 0;
  } else if (op === TWO_BYTE) {
    if (p >= b.length) return null;
    const op2 = b[p++]!;
    if (twoByteModrm(op2)) mr = modrm(b, p);
    else if (op2 === 0xba) {
      mr = modrm(b, p);
      imm = 1;
    } else return null;
  } else {
    return null;
  }
  if (mr === null && (MODRM.has(op) || MODRM_IMM8.has(op) || MODRM_IMM32.has(op) || op === 0xf6 || op === 0xf7 || op === TWO_BYTE)) return null;
  const length = p - i + (mr ? mr.length : 0) + imm;
  if (i + length > b.length) return null;
  return { length, ripDisp: mr && mr.ripDisp >= 0 ? p - i + mr.ripDisp : -1 };
}
