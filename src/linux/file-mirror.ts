// MAP_SHARED mappings of host files that may be written (open O_RDWR, so inside a --rw grant), on
// the cpl0-entry path. The host file itself is never mapped into guest memory: if it shrank under
// the mapping (the guest's ftruncate, or another host process), the host's own access to the
// range would fault (SIGBUS) and end the Node process. Instead each such file has a mirror: a
// memfd of the sandbox's shared memory (SharedBacking) that holds the file's bytes and that every
// mapping of the file in the sandbox maps, so the sandbox's processes see each other's writes.
// What the mappings wrote reaches the file when a mapping of it is unmapped, at msync, and when
// the sandbox ends, up to the file's size then. Meanwhile the mirror is the newer of the two for
// the bytes it holds: reads and writes of the file by any of the sandbox's fds go through it
// (HostFile, the MappedFiles interface), and ftruncate, truncate, fallocate and O_TRUNC write it
// back, change the file and make it again. So a program that writes a file with pwrite and reads
// it through a read-only shared mapping (LMDB), or stores through a mapping and reads with read(2),
// sees what it would on Linux. Host processes outside the sandbox see the file only as written back.
import * as libc from '../kvm/libc.js';
import { SharedBacking, type SharedBudget } from '../kvm/shared-memory.js';
import { E, Errno, STAT, STAT_SIZE } from '../abi/linux.js';
import type { HostFile, MappedFiles } from '../fs/open-file.js';
import { inodeKey } from '../fs/vfs.js';
import { alignUp, PAGE_SIZE } from '../machine/x86.js';

const FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;

interface Mirror { backing: SharedBacking; fd: number }

export class FileMirrors implements MappedFiles {
  /** By the file's device and inode. */
  private readonly mirrors = new Map<string, Mirror>();

  constructor(private readonly budget: SharedBudget) {}

  /**
   * The mirror of file, holding at least its first `end` bytes (rounded up to pages): made from
   * the file's bytes, or grown with them. ENOMEM when the sandbox's shared memory has no room.
   */
  mirror(file: HostFile, end: number): SharedBacking {
    const st = Buffer.alloc(STAT_SIZE);
    const r = libc.fstat(file.hostFd, st);
    if (r < 0) throw new Errno(-r);
    const key = inodeKey(st);
    const fileSize = Number(st.readBigInt64LE(STAT.size));
    const want = alignUp(Math.max(end, 1), PAGE_SIZE);
    let m = this.mirrors.get(key);
    if (!m) {
      const backing = SharedBacking.create(want, this.budget);
      if (!backing) throw new Errno(E.ENOMEM);
      const fd = libc.dupFd(file.hostFd);
      if (fd < 0) {
        backing.release();
        throw new Errno(-fd);
      }
      m = { backing, fd };
      this.mirrors.set(key, m);
      this.copyIn(m, 0, Math.min(fileSize, want));
      return backing;
    }
    const old = m.backing.size;
    if (want > old) {
      if (!m.backing.grow(want)) throw new Errno(E.ENOMEM);
      if (fileSize > old) this.copyIn(m, old, Math.min(fileSize, want));
    }
    return m.backing;
  }

  /** The file's bytes [from, to) into the mirror. */
  private copyIn(m: Mirror, from: number, to: number): void {
    if (to <= from) return;
    const buf = Buffer.allocUnsafeSlow(to - from);
    let got = 0;
    while (got < buf.length) {
      const n = libc.pread(m.fd, buf.subarray(got), BigInt(from + got));
      if (n <= 0) break;
      got += n;
    }
    buf.fill(0, got);
    const w = libc.pwrite(m.backing.fd, buf, BigInt(from));
    if (w < 0) throw new Errno(-w);
  }

  get count(): number { return this.mirrors.size; }

  /** The mirror of the file with this identity (inodeKey), if it has one. */
  existing(key: string): SharedBacking | undefined { return this.mirrors.get(key)?.backing; }

  overlay(key: string, buf: Buffer, offset: bigint, read: boolean): void {
    const m = this.mirrors.get(key);
    if (!m || offset >= BigInt(m.backing.size)) return;
    const part = buf.subarray(0, Math.min(buf.length, m.backing.size - Number(offset)));
    const r = read ? libc.pread(m.backing.fd, part, offset) : libc.pwrite(m.backing.fd, part, offset);
    if (r < 0) throw new Errno(-r);
  }

  reshape<T>(key: string, op: () => T): T {
    const m = this.mirrors.get(key);
    if (!m) return op();
    this.writeBack([m.backing]);
    try {
      return op();
    } finally {
      // The file's bytes, and zero past its end (Linux drops the pages a truncation cuts, so they
      // read as zero when the file grows back).
      const st = Buffer.alloc(STAT_SIZE);
      const size = libc.fstat(m.fd, st) < 0 ? 0 : Number(st.readBigInt64LE(STAT.size));
      this.copyIn(m, 0, Math.min(size, m.backing.size));
      if (size < m.backing.size) this.zero(m, size);
    }
  }

  /** Zero the mirror from `from` to its end (a hole punched in its memory). */
  private zero(m: Mirror, from: number): void {
    const r = libc.fallocate(m.backing.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BigInt(from), BigInt(m.backing.size - from));
    if (r < 0) throw new Errno(-r);
  }

  /**
   * mremap grows a mapping of the mirror backing (a mirror's: has) to `end` bytes: what the file
   * has there comes in, as mirror() does. False when the sandbox's shared memory has no room.
   */
  grow(backing: SharedBacking, end: number): boolean {
    const m = [...this.mirrors.values()].find((x) => x.backing === backing);
    if (!m) return backing.grow(end);
    const old = backing.size;
    const want = alignUp(end, PAGE_SIZE);
    if (want <= old) return true;
    if (!backing.grow(want)) return false;
    const st = Buffer.alloc(STAT_SIZE);
    const fileSize = libc.fstat(m.fd, st) < 0 ? 0 : Number(st.readBigInt64LE(STAT.size));
    if (fileSize > old) this.copyIn(m, old, Math.min(fileSize, want));
    return true;
  }

  /** Whether backing is a mirror's (its mappings' writes are for a file). */
  has(backing: SharedBacking): boolean {
    for (const m of this.mirrors.values()) if (m.backing === backing) return true;
    return false;
  }

  /** Write the mirrors of backings (all, when none are named) back to their files, up to each file's size now. */
  writeBack(backings?: Iterable<SharedBacking>): void {
    const only = backings ? new Set(backings) : null;
    for (const m of this.mirrors.values()) {
      if (only && !only.has(m.backing)) continue;
      const st = Buffer.alloc(STAT_SIZE);
      if (libc.fstat(m.fd, st) < 0) continue;
      const n = Math.min(Number(st.readBigInt64LE(STAT.size)), m.backing.size);
      if (n <= 0) continue;
      const buf = Buffer.allocUnsafeSlow(n);
      const r = libc.pread(m.backing.fd, buf, 0n);
      if (r > 0) libc.pwrite(m.fd, buf.subarray(0, r), 0n);
    }
  }

  /** The sandbox ends: write everything back, and let go (mappings still hold their memory). */
  close(): void {
    this.writeBack();
    for (const m of this.mirrors.values()) {
      m.backing.release();
      libc.closeFd(m.fd);
    }
    this.mirrors.clear();
  }
}
