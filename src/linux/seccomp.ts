// seccomp: a program limits its own system calls (seccomp(2), prctl PR_SET_SECCOMP), as
// OpenSSH's privilege-separated child, libseccomp users and browsers do. A task's filters are
// classic BPF programs over struct seccomp_data, checked when installed as Linux checks them
// (kernel/seccomp.c seccomp_check_filter and the classic BPF checker) and run here, on the host,
// before kvmbox serves each system call of the task (src/linux/screen.ts acts on the verdict):
// every filter runs, and the most restrictive action wins (for equal ones, the newest filter's
// data). Filters are inherited by threads and forks and kept across execve; they can only be
// added to. Once a task has a filter or strict mode, every system call of the sandbox reaches
// the host (on kvm_pvm the user-mode stub stops answering any itself).
//
// What is not here: SECCOMP_RET_USER_NOTIF and SECCOMP_RET_TRACE act as with no listener and no
// tracer (ENOSYS); SECCOMP_FILTER_FLAG_NEW_LISTENER is EINVAL; a filter that reads scratch
// memory before writing it is taken (Linux refuses it; here the word reads as 0). rt_sigreturn
// is never filtered (kvmbox serves it before the system-call table), and the vDSO's clocks
// never enter the kernel, as on Linux.
import { E, Errno } from '../abi/linux.js';

/** struct sock_filter: 8 bytes each; a program holds at most BPF_MAXINSNS. */
const INSN_SIZE = 8;
export const BPF_MAXINSNS = 4096;
/** struct seccomp_data: nr, arch, instruction_pointer, args[6]. */
const DATA_SIZE = 64;
export const AUDIT_ARCH_X86_64 = 0xc000003e;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000, SECCOMP_RET_KILL_THREAD = 0, SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000, SECCOMP_RET_USER_NOTIF = 0x7fc00000, SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000, SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_RET_ACTION_FULL = 0xffff0000, SECCOMP_RET_DATA = 0xffff;
/** The actions kvmbox acts on fully (SECCOMP_GET_ACTION_AVAIL); USER_NOTIF needs a listener it does not make. */
export const AVAILABLE_ACTIONS = [SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP, SECCOMP_RET_ERRNO,
  SECCOMP_RET_TRACE, SECCOMP_RET_LOG, SECCOMP_RET_ALLOW];

/** The order of precedence: the first that any filter returns wins. */
const PRECEDENCE = [SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP, SECCOMP_RET_ERRNO,
  SECCOMP_RET_USER_NOTIF, SECCOMP_RET_TRACE, SECCOMP_RET_LOG, SECCOMP_RET_ALLOW];

/** A task's seccomp mode: strict (1) or its filters (2), newest last. Immutable: adding makes a new one. */
export type SeccompState = { readonly mode: 1 } | { readonly mode: 2; readonly filters: readonly Filter[] };

/** One checked classic BPF program: code, jt, jf, k per instruction. */
export interface Filter { readonly code: Uint16Array; readonly jt: Uint8Array; readonly jf: Uint8Array; readonly k: Uint32Array }

// Classic BPF: class, size, mode, operation, source (linux/bpf_common.h, linux/filter.h).
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06, MISC = 0x07;
const W = 0x00, ABS = 0x20, MEM = 0x60, LEN = 0x80, IMM = 0x00;
const ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60, RSH = 0x70, NEG = 0x80, XOR = 0xa0;
const JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
const K = 0x00, X = 0x08, RET_A = 0x10, TAX = 0x00, TXA = 0x80;
const MEMWORDS = 16;

/** The instructions seccomp takes (seccomp_check_filter): loads of seccomp_data, not of packets. */
const ALLOWED = new Set<number>([
  LD | W | ABS, LD | W | LEN, LDX | W | LEN, RET | K, RET | RET_A, LD | IMM, LDX | IMM, MISC | TAX, MISC | TXA,
  LD | MEM, LDX | MEM, ST, STX, JMP | JA, ALU | NEG,
  ...[ADD, SUB, MUL, DIV, AND, OR, XOR, LSH, RSH].flatMap((op) => [ALU | op | K, ALU | op | X]),
  ...[JEQ, JGT, JGE, JSET].flatMap((op) => [JMP | op | K, JMP | op | X]),
]);

/**
 * The program of struct sock_filter bytes (len instructions), checked: EINVAL for an empty or
 * too long one, an instruction seccomp does not take, a load outside seccomp_data or not
 * aligned, a division by a constant zero, scratch memory out of range, a jump out of the
 * program, or a last instruction that is not a return.
 */
export function checkFilter(bytes: Buffer): Filter {
  const n = bytes.length / INSN_SIZE;
  if (n === 0 || n > BPF_MAXINSNS || !Number.isInteger(n)) throw new Errno(E.EINVAL);
  const f: Filter = { code: new Uint16Array(n), jt: new Uint8Array(n), jf: new Uint8Array(n), k: new Uint32Array(n) };
  for (let pc = 0; pc < n; pc++) {
    const code = bytes.readUInt16LE(pc * INSN_SIZE), jt = bytes[pc * INSN_SIZE + 2]!, jf = bytes[pc * INSN_SIZE + 3]!;
    const k = bytes.readUInt32LE(pc * INSN_SIZE + 4);
    if (!ALLOWED.has(code)) throw new Errno(E.EINVAL);
    const cls = code & 7;
    if (code === (LD | W | ABS) && (k >= DATA_SIZE || k % 4)) throw new Errno(E.EINVAL);
    if (code === (ALU | DIV | K) && k === 0) throw new Errno(E.EINVAL);
    if ((code === (ALU | LSH | K) || code === (ALU | RSH | K)) && k >= 32) throw new Errno(E.EINVAL);
    if ((code === (LD | MEM) || code === (LDX | MEM) || cls === ST || cls === STX) && k >= MEMWORDS) throw new Errno(E.EINVAL);
    if (code === (JMP | JA)) {
      if (k >= n - pc - 1) throw new Errno(E.EINVAL);
    } else if (cls === JMP && (pc + jt + 1 >= n || pc + jf + 1 >= n)) {
      throw new Errno(E.EINVAL);
    }
    f.code[pc] = code;
    f.jt[pc] = jt;
    f.jf[pc] = jf;
    f.k[pc] = k;
  }
  if ((f.code[n - 1]! & 7) !== RET) throw new Errno(E.EINVAL);
  return f;
}

/** Run one checked filter over data (the 64 bytes of seccomp_data as 16 words): its return value. */
function run(f: Filter, data: Uint32Array): number {
  let a = 0, x = 0;
  const mem = new Uint32Array(MEMWORDS);
  for (let pc = 0; ; pc++) {
    const code = f.code[pc]!, k = f.k[pc]!;
    switch (code) {
      case LD | W | ABS: a = data[k / 4]!; break;
      case LD | W | LEN: a = DATA_SIZE; break;
      case LDX | W | LEN: x = DATA_SIZE; break;
      case LD | IMM: a = k; break;
      case LDX | IMM: x = k; break;
      case LD | MEM: a = mem[k]!; break;
      case LDX | MEM: x = mem[k]!; break;
      case ST: mem[k] = a; break;
      case STX: mem[k] = x; break;
      case MISC | TAX: x = a; break;
      case MISC | TXA: a = x; break;
      case RET | K: return k;
      case RET | RET_A: return a;
      case JMP | JA: pc += k; break;
      case ALU | NEG: a = -a >>> 0; break;
      default: {
        const v = code & X ? x : k;
        if ((code & 7) === JMP) {
          const op = code & 0xf0;
          const taken = op === JEQ ? a === v : op === JGT ? a > v : op === JGE ? a >= v : (a & v) !== 0;
          pc += taken ? f.jt[pc]! : f.jf[pc]!;
          break;
        }
        switch (code & 0xf0) {
          case ADD: a = (a + v) >>> 0; break;
          case SUB: a = (a - v) >>> 0; break;
          case MUL: a = Math.imul(a, v) >>> 0; break;
          // Division by a zero X ends the program with 0, as Linux's classic BPF does.
          case DIV: if (v === 0) return 0; a = Math.floor(a / v) >>> 0; break;
          case AND: a = (a & v) >>> 0; break;
          case OR: a = (a | v) >>> 0; break;
          case XOR: a = (a ^ v) >>> 0; break;
          // A shift by X counts modulo 32, as Linux's interpreter and JITs do.
          case LSH: a = (a << v) >>> 0; break;
          case RSH: a = a >>> v; break;
        }
      }
    }
  }
}

/**
 * What a task's filters say of one system call: the winning action and its data (SECCOMP_RET_DATA),
 * as Linux picks it (an unknown action counts as SECCOMP_RET_KILL_PROCESS).
 */
export function verdict(filters: readonly Filter[], nr: number, ip: bigint, args: readonly bigint[]): { action: number; data: number } {
  const data = new Uint32Array(DATA_SIZE / 4);
  data[0] = nr;
  data[1] = AUDIT_ARCH_X86_64;
  data[2] = Number(ip & 0xffffffffn);
  data[3] = Number((ip >> 32n) & 0xffffffffn);
  for (let i = 0; i < 6; i++) {
    const v = BigInt.asUintN(64, args[i] ?? 0n);
    data[4 + 2 * i] = Number(v & 0xffffffffn);
    data[5 + 2 * i] = Number(v >> 32n);
  }
  let best = { action: SECCOMP_RET_ALLOW, data: 0, rank: PRECEDENCE.length - 1 };
  for (let i = filters.length - 1; i >= 0; i--) {
    const ret = run(filters[i]!, data) >>> 0;
    let action = (ret & SECCOMP_RET_ACTION_FULL) >>> 0;
    let rank = PRECEDENCE.indexOf(action);
    if (rank < 0) { action = SECCOMP_RET_KILL_PROCESS; rank = 0; }
    // Newest first: an older filter's equal action does not replace the newer one's data.
    if (rank < best.rank) best = { action, data: ret & SECCOMP_RET_DATA, rank };
  }
  return { action: best.action, data: best.data };
}

