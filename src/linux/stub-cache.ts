// What the user-mode stub (kernel/stub.S) may answer without an exit, kept up to date by the host
// in the shared page: the read-ahead cache of one file, which descriptors are /dev/null, the
// clocks, the heap's break and a pool of random bytes. The directory and stat cache is
// src/fs/dir-cache.ts.
//
// Coherence: the cache is valid only between two exits. Before the host serves any system call it
// drains the cache (rewinding the host file by what the program did not consume), so every
// host-side operation sees the file offset the program expects. The shared page and the cache
// are user memory: the host reads back only the consumed position, clamped to what it filled.
import { bytesOf } from '../abi/file-names.js';
import * as libc from '../kvm/libc.js';
import type { GuestMemory } from '../machine/memory.js';
import type { Vcpu } from '../kvm/kvm.js';
import { MSR_IA32_TSC } from '../machine/x86.js';
import {
  SH_TIME_MONO0, SH_TIME_MULT, SH_TIME_REAL0, SH_TIME_TSC0, SH_TIME_VALID,
  CACHE_BUF, CACHE_SIZE, PHYS_SHARED, SH_CACHE_FD, SH_CACHE_LEN, SH_CACHE_POS, SH_DEVNULL_MASK,
  SH_BRK_CUR, SH_BRK_START, SH_BRK_TOP, SH_FSBASE_OK, SH_RLIMITS, SH_RLIMITS_OK, RLIM_NLIMITS, SH_EXE, SH_EXE_LEN, SH_EXE_MAX, OUTBUF, OUTBUF_SIZE, OUT_RECORD_HEADER, SH_OUT_MASK, SH_OUT_POS, SH_RANDOM, SH_RANDOM_LEN, SH_RANDOM_POS, RANDOM_POOL_SIZE,
  SH_PID, SH_TID, SH_PPID, SH_CLEAR_TID,
} from '../abi/abi.generated.js';
import type { AddressSpace } from './address-space.js';
import { fillRandom } from './entropy.js';
import { DeviceFile, FdTable, HostFile, StdioFile } from '../fs/open-file.js';

const SEEK_CUR = 1;
const NO_FD = 0xffffffff;
const MASK_FDS = 64;

export class StubCache {
  private cached: { file: HostFile; len: number } | null = null;
  private fdVersion = -1;

  /** enabled: the program runs on the user-stub path without tracing. */
  constructor(private readonly mem: GuestMemory, readonly enabled: boolean) {}

  /** Before the host serves a call: take back what the program has not read from the cache. */
  drain(): void {
    if (!this.cached) return;
    const { file, len } = this.cached;
    this.cached = null;
    const pos = this.mem.u64(PHYS_SHARED + SH_CACHE_POS);
    const consumed = pos > BigInt(len) ? len : Number(pos);
    if (consumed < len) libc.lseek(file.hostFd, BigInt(consumed - len), SEEK_CUR);
    this.clear();
  }

  private clear(): void {
    this.mem.setU32(PHYS_SHARED + SH_CACHE_FD, NO_FD);
    this.mem.setU64(PHYS_SHARED + SH_CACHE_POS, 0n);
    this.mem.setU64(PHYS_SHARED + SH_CACHE_LEN, 0n);
  }

  /**
   * Before the host serves a call: where the stub moved the break. The shared page is user
   * memory: a value outside the heap the host mapped is ignored.
   */
  takeBrk(space: AddressSpace): void {
    if (!this.enabled) return;
    const v = this.mem.u64(PHYS_SHARED + SH_BRK_CUR);
    if (v >= BigInt(space.brkStart) && v <= BigInt(space.heapTop)) space.brkEnd = Number(v);
  }

  /** After the host served a call (or at start): the heap the stub may move the break in. */
  publishBrk(space: AddressSpace): void {
    if (!this.enabled) return;
    this.mem.setU64(PHYS_SHARED + SH_BRK_START, BigInt(space.brkStart));
    this.mem.setU64(PHYS_SHARED + SH_BRK_CUR, BigInt(space.brkEnd));
    this.mem.setU64(PHYS_SHARED + SH_BRK_TOP, BigInt(space.heapTop));
  }

  /**
   * At start: the resource limits (prlimit64 of this process without new ones is answered by the
   * stub) and the program's path, for readlink("/proc/self/exe"), when it fits.
   */
  publishIdentity(limits: ReadonlyArray<readonly [bigint, bigint]>, exePath: string): void {
    if (!this.enabled) return;
    this.publishLimits(limits);
    const exe = bytesOf(exePath);
    if (exe.length > 0 && exe.length <= SH_EXE_MAX) {
      this.mem.write(PHYS_SHARED + SH_EXE, exe);
      this.mem.setU32(PHYS_SHARED + SH_EXE_LEN, exe.length);
    }
  }

  /** The resource limits the stub answers prlimit64 with: at start, and after the program sets one. */
  publishLimits(limits: ReadonlyArray<readonly [bigint, bigint]>): void {
    if (!this.enabled) return;
    limits.forEach(([cur, max], r) => {
      this.mem.setU64(PHYS_SHARED + SH_RLIMITS + 16 * r, cur);
      this.mem.setU64(PHYS_SHARED + SH_RLIMITS + 16 * r + 8, max);
    });
    this.mem.setU32(PHYS_SHARED + SH_RLIMITS_OK, limits.length === RLIM_NLIMITS ? 1 : 0);
  }

  /**
   * At exec: the ids the stub answers getpid, gettid (and set_tid_address) and getppid with.
   * Written on every path (the shared page is the host's to write even where no stub reads it).
   */
  publishIds(pid: number, tid: number, ppid: number): void {
    this.mem.setU32(PHYS_SHARED + SH_PID, pid);
    this.mem.setU32(PHYS_SHARED + SH_TID, tid);
    this.mem.setU32(PHYS_SHARED + SH_PPID, ppid);
    this.mem.setU64(PHYS_SHARED + SH_CLEAR_TID, 0n);
  }

  /**
   * Before the host serves a call: the address of the program's last set_tid_address, which the
   * stub answers whenever it is enabled (null when it is not: then the host served the call).
   * The shared page is user memory: this is a guest pointer like any other, checked when used.
   */
  clearTid(): bigint | null {
    return this.enabled ? this.mem.u64(PHYS_SHARED + SH_CLEAR_TID) : null;
  }

  /** At start: whether the stub may serve arch_prctl(ARCH_SET_FS/ARCH_GET_FS) itself. */
  publishFsBase(userFsBase: boolean): void {
    if (this.enabled) this.mem.setU32(PHYS_SHARED + SH_FSBASE_OK, userFsBase ? 1 : 0);
  }

  /** At start: random bytes for the stub's getrandom (a libc asks for a few at start-up). */
  publishRandom(): void {
    if (!this.enabled) return;
    fillRandom(this.mem.slice(PHYS_SHARED + SH_RANDOM, RANDOM_POOL_SIZE), 0, RANDOM_POOL_SIZE);
    this.mem.setU32(PHYS_SHARED + SH_RANDOM_POS, 0);
    this.mem.setU32(PHYS_SHARED + SH_RANDOM_LEN, RANDOM_POOL_SIZE);
  }

  /** After the program read a full buffer from fd: read ahead, so its next reads need no exit. */
  readAhead(fd: number, file: HostFile): void {
    if (!this.enabled || fd < 0 || !file.readable || !file.isRegular()) return;
    const n = libc.read(file.hostFd, this.mem.slice(CACHE_BUF, CACHE_SIZE));
    if (n <= 0) return;
    this.cached = { file, len: n };
    this.mem.setU64(PHYS_SHARED + SH_CACHE_POS, 0n);
    this.mem.setU64(PHYS_SHARED + SH_CACHE_LEN, BigInt(n));
    this.mem.setU32(PHYS_SHARED + SH_CACHE_FD, fd);
  }

  /**
   * Let the stub answer clock_gettime, gettimeofday and time like a vDSO: publish the guest's TSC
   * now (read from the vCPU), the host's monotonic and real-time clocks now, and the TSC period
   * (KVM_GET_TSC_KHZ) as 32.32 fixed-point nanoseconds. Call while the vCPU is stopped.
   */
  publishClock(vcpu: Vcpu): void {
    if (!this.enabled) return;
    let khz: number, tsc: bigint;
    try {
      khz = vcpu.tscKhz();
      tsc = vcpu.getMsr(MSR_IA32_TSC);
    } catch {
      return; // no usable TSC information: clocks stay host-served
    }
    if (khz <= 0) return;
    const mono = process.hrtime.bigint();
    const real = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    const m = this.mem;
    m.setU64(PHYS_SHARED + SH_TIME_MULT, (1_000_000n << 32n) / BigInt(khz));
    m.setU64(PHYS_SHARED + SH_TIME_TSC0, tsc);
    m.setU64(PHYS_SHARED + SH_TIME_MONO0, mono);
    m.setU64(PHYS_SHARED + SH_TIME_REAL0, real);
    m.setU32(PHYS_SHARED + SH_TIME_VALID, 1);
  }

  /** After a call that may have changed the descriptor table: republish which fds are /dev/null
   * (the stub drops writes to them) and which are captured output (the stub buffers them). */
  publishFdMasks(fds: FdTable): void {
    if (!this.enabled || fds.version === this.fdVersion) return;
    this.fdVersion = fds.version;
    let devNull = 0n, out = 0n;
    for (let fd = 0; fd < MASK_FDS; fd++) {
      const f = fds.peek(fd);
      if (f instanceof DeviceFile && f.isNull && (f.statusFlags & 3) !== 0) devNull |= 1n << BigInt(fd);
      else if (f instanceof StdioFile && f.deferrable) out |= 1n << BigInt(fd);
    }
    this.mem.setU64(PHYS_SHARED + SH_DEVNULL_MASK, devNull);
    // Before the mask changes, what was buffered under the old one goes out (drainOutput reads
    // the mask to accept records).
    this.drainOutput(fds);
    this.mem.setU64(PHYS_SHARED + SH_OUT_MASK, out);
    this.outMask = out;
  }

  /** Descriptors the stub may buffer writes to, as the host last published them. */
  private outMask = 0n;

  /**
   * Deliver the writes the stub buffered in OUTBUF, in order, to the descriptors' files, and
   * empty it. Only records of descriptors in the mask the host published are taken: OUTBUF and
   * SH_OUT_POS are user memory, and a forged record can only say what the program could have
   * written to its own stdout or stderr anyway.
   */
  drainOutput(fds: FdTable): void {
    if (!this.enabled) return;
    const end = Math.min(this.mem.u32(PHYS_SHARED + SH_OUT_POS), OUTBUF_SIZE);
    if (end === 0) return;
    this.mem.setU32(PHYS_SHARED + SH_OUT_POS, 0);
    for (let off = 0; off + OUT_RECORD_HEADER <= end;) {
      const fd = this.mem.u32(OUTBUF + off);
      const len = this.mem.u32(OUTBUF + off + 4);
      if (fd >= MASK_FDS || !((this.outMask >> BigInt(fd)) & 1n) || len > end - off - OUT_RECORD_HEADER) break;
      const f = fds.peek(fd);
      if (!(f instanceof StdioFile)) break;
      f.write(this.mem.slice(OUTBUF + off + OUT_RECORD_HEADER, len));
      off = (off + OUT_RECORD_HEADER + len + 7) & ~7;
    }
  }
}
