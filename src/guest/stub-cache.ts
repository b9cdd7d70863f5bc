// What the user-mode stub (kernel/stub.S) may answer without an exit, kept up to date by the host
// in the shared page: the read-ahead cache of one file, and which descriptors are /dev/null.
//
// Coherence: the cache is valid only between two exits. Before the host serves any system call it
// drains the cache (rewinding the host file by what the program did not consume), so every
// host-side operation sees the file offset the program expects. The shared page and the cache
// are user memory: the host reads back only the consumed position, clamped to what it filled.
import * as libc from '../kvm/libc.js';
import type { GuestMemory } from '../machine/memory.js';
import type { Vcpu } from '../kvm/kvm.js';
import { MSR_IA32_TSC } from '../machine/x86.js';
import {
  SH_TIME_MONO0, SH_TIME_MULT, SH_TIME_REAL0, SH_TIME_TSC0, SH_TIME_VALID,
  CACHE_BUF, CACHE_SIZE, PHYS_SHARED, SH_CACHE_FD, SH_CACHE_LEN, SH_CACHE_POS, SH_DEVNULL_MASK, SH_STAT_COUNT,
  SH_STAT_NEXT, STAT_CACHE, STAT_CACHE_ENTRIES, STAT_ENTRY_PATH_MAX, STAT_ENTRY_SIZE, STAT_SIZE,
} from './abi.generated.js';
import { DeviceFile, FdTable, HostFile } from './files/open-file.js';
import { mapOwner } from './identity.js';

const SEEK_CUR = 1;
const AT_SYMLINK_NOFOLLOW = 0x100;
const DIRENT_RECLEN = 16;
const DIRENT_NAME = 19;
/** A path, its NUL and the follow flag must fit the entry's path area. */
const MAX_PATH_BYTES = STAT_ENTRY_PATH_MAX - 2;
const NO_FD = 0xffffffff;
const MASK_FDS = 64;

export class StubCache {
  private cached: { file: HostFile; len: number } | null = null;
  private fdVersion = -1;
  /** Entries written to the stat cache so far (a ring of STAT_CACHE_ENTRIES). */
  private statWritten = 0;
  private readonly statBuf = Buffer.alloc(STAT_SIZE);

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
   * After the program listed part of a directory: put each entry's lstat (as newfstatat(AT_FDCWD,
   * "dir/name", AT_SYMLINK_NOFOLLOW) would return it) in the stat cache, keyed by the directory's
   * resolved guest path, so the stats that usually follow a listing need no exit. The host looks
   * each name up relative to the directory's own fd and does not follow symlinks, so nothing
   * outside the directory is touched; `..` is left out (it may lie above the grant).
   */
  listStats(dir: HostFile, dirents: Buffer): void {
    if (!this.enabled) return;
    const prefix = dir.path === '/' ? '' : dir.path;
    let first = -1;
    for (let off = 0; off + DIRENT_NAME < dirents.length;) {
      const reclen = dirents.readUInt16LE(off + DIRENT_RECLEN);
      if (reclen < DIRENT_NAME + 1 || off + reclen > dirents.length) break;
      const end = dirents.indexOf(0, off + DIRENT_NAME);
      const name = dirents.subarray(off + DIRENT_NAME, end < 0 || end > off + reclen ? off + reclen : end).toString();
      off += reclen;
      if (name === '..' || name.includes('/')) continue;
      const path = `${prefix}/${name}`;
      if (Buffer.byteLength(path) > MAX_PATH_BYTES) continue;
      const r = name === '.' ? libc.fstat(dir.hostFd, this.statBuf) : libc.fstatat(dir.hostFd, name, this.statBuf, AT_SYMLINK_NOFOLLOW);
      if (r < 0) continue;
      const index = this.addStat(path, false, mapOwner(this.statBuf));
      if (first < 0) first = index;
    }
    if (first < 0) return;
    this.mem.setU32(PHYS_SHARED + SH_STAT_NEXT, first);
  }

  /**
   * After the host answered newfstatat(AT_FDCWD, absolutePath, flags 0 or NOFOLLOW): remember
   * the answer (what the program received), so asking again needs no exit until a call that may
   * change a file drops the cache.
   */
  rememberStat(path: string, follow: boolean, st: Buffer): void {
    if (!this.enabled || !path.startsWith('/') || path.includes('\0') || Buffer.byteLength(path) > MAX_PATH_BYTES) return;
    const index = this.addStat(path, follow, st);
    this.mem.setU32(PHYS_SHARED + SH_STAT_NEXT, index);
  }

  /** Write one entry at the ring's next slot; returns its index. */
  private addStat(path: string, follow: boolean, st: Buffer): number {
    const mem = this.mem;
    const index = this.statWritten % STAT_CACHE_ENTRIES;
    const entry = STAT_CACHE + index * STAT_ENTRY_SIZE;
    mem.fill(entry, STAT_ENTRY_PATH_MAX);
    mem.write(entry, Buffer.from(path));
    mem.setU8(entry + STAT_ENTRY_PATH_MAX - 1, follow ? 1 : 0);
    mem.write(entry + STAT_ENTRY_PATH_MAX, st.subarray(0, STAT_SIZE));
    this.statWritten++;
    mem.setU32(PHYS_SHARED + SH_STAT_COUNT, Math.min(this.statWritten, STAT_CACHE_ENTRIES));
    return index;
  }

  /** Drop the stat cache: a call may have changed some file's metadata. */
  forgetStats(): void {
    if (this.statWritten === 0) return;
    this.statWritten = 0;
    this.mem.setU32(PHYS_SHARED + SH_STAT_COUNT, 0);
    this.mem.setU32(PHYS_SHARED + SH_STAT_NEXT, 0);
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

  /** After a call that may have changed the descriptor table: republish which fds are /dev/null. */
  publishDevNull(fds: FdTable): void {
    if (!this.enabled || fds.version === this.fdVersion) return;
    this.fdVersion = fds.version;
    let mask = 0n;
    for (let fd = 0; fd < MASK_FDS; fd++) {
      const f = fds.peek(fd);
      if (f instanceof DeviceFile && f.isNull && (f.statusFlags & 3) !== 0) mask |= 1n << BigInt(fd);
    }
    this.mem.setU64(PHYS_SHARED + SH_DEVNULL_MASK, mask);
  }
}
