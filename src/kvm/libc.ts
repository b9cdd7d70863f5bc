// The only module that declares foreign functions. Everything that crosses into libc goes
// through here, so raw pointers and errno handling live in exactly one place.
import koffi from 'koffi';
import { fileURLToPath } from 'node:url';
import { hostName as h } from '../abi/file-names.js';
import { E } from '../abi/linux.js';

const libc = koffi.load('libc.so.6');

/** A pointer returned by libc (mmap). Opaque outside src/kvm. */
export type RawPointer = unknown;

const c = {
  open: libc.func('int open(const char *path, int flags, int mode)'),
  close: libc.func('int close(int fd)'),
  ioctlPtr: libc.func('int ioctl(int fd, unsigned long req, void *arg)'),
  ioctlInt: libc.func('int ioctl(int fd, unsigned long req, unsigned long arg)'),
  mmap: libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
  mmapAt: libc.func('intptr_t mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, int64_t off)'),
  mremap: libc.func('intptr_t mremap(uintptr_t old, size_t oldLen, size_t newLen, int flags, uintptr_t dest)'),
  memfdCreate: libc.func('int memfd_create(const char *name, unsigned int flags)'),
  fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
  munmap: libc.func('int munmap(void *addr, size_t len)'),
  madvise: libc.func('int madvise(uintptr_t addr, size_t len, int advice)'),
  mprotect: libc.func('int mprotect(uintptr_t addr, size_t len, int prot)'),
  mincore: libc.func('int mincore(uintptr_t addr, size_t len, _Out_ uint8_t *vec)'),
  strerror: libc.func('const char *strerror(int errnum)'),
  syscall5: libc.func('long syscall(long nr, long a, const char *b, void *c, long d)'),
  openat: libc.func('int openat(int dirfd, const char *path, int flags, int mode)'),
  fstatat: libc.func('int fstatat(int dirfd, const char *path, _Out_ uint8_t *buf, int flags)'),
  fstat: libc.func('int fstat(int fd, _Out_ uint8_t *buf)'),
  readlinkat: libc.func('long readlinkat(int dirfd, const char *path, _Out_ uint8_t *buf, size_t size)'),
  getdents64: libc.func('long getdents64(int fd, _Out_ uint8_t *buf, size_t size)'),
  lseek: libc.func('int64_t lseek(int fd, int64_t off, int whence)'),
  mkdirat: libc.func('int mkdirat(int dirfd, const char *path, uint32_t mode)'),
  unlinkat: libc.func('int unlinkat(int dirfd, const char *path, int flags)'),
  renameat2: libc.func('int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)'),
  symlinkat: libc.func('int symlinkat(const char *target, int dirfd, const char *path)'),
  linkat: libc.func('int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)'),
  mknodat: libc.func('int mknodat(int dirfd, const char *path, uint32_t mode, uint64_t dev)'),
  fallocate: libc.func('int fallocate(int fd, int mode, int64_t off, int64_t len)'),
  fchmod: libc.func('int fchmod(int fd, uint32_t mode)'),
  fchmodat: libc.func('int fchmodat(int dirfd, const char *path, uint32_t mode, int flags)'),
  utimensat: libc.func('int utimensat(int dirfd, const char *path, const uint8_t *times, int flags)'),
  ftruncate: libc.func('int ftruncate(int fd, int64_t len)'),
  fsync: libc.func('int fsync(int fd)'),
  read: libc.func('long read(int fd, _Out_ uint8_t *buf, size_t n)'),
  write: libc.func('long write(int fd, const uint8_t *buf, size_t n)'),
  pread: libc.func('long pread(int fd, _Out_ uint8_t *buf, size_t n, int64_t off)'),
  pwrite: libc.func('long pwrite(int fd, const uint8_t *buf, size_t n, int64_t off)'),
  isatty: libc.func('int isatty(int fd)'),
  ioctlWinsize: libc.func('int ioctl(int fd, unsigned long req, _Out_ uint8_t *buf)'),
};

export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MADV_DONTNEED = 4;
export const MADV_DONTFORK = 10;

/** A failed libc call, carrying errno. */
export class SysError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call} failed: ${errnoName(errno)} (${strerror(errno)})`);
    this.name = 'SysError';
  }
}

/** errno numbers to names (EPERM, ...), from the one table in src/abi/linux.ts. */
const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(E).map(([name, n]) => [n, name]));
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}
export function strerror(errno: number): string {
  return c.strerror(errno) as string;
}
function errno(): number {
  return koffi.errno();
}

export function open(path: string, flags: number): number {
  const fd = c.open(path, flags, 0) as number;
  if (fd < 0) throw new SysError(`open(${path})`, errno());
  return fd;
}

export function close(fd: number): void {
  c.close(fd);
}

const EINTR = 4;

/** The non-negative result of call, retried while a signal to the host process interrupts it (a
 * profiler's SIGPROF interrupts KVM_CREATE_VM and friends); any other failure throws. */
function retryingEintr(what: string, call: () => number): number {
  for (;;) {
    const r = call();
    if (r >= 0) return r;
    const e = errno();
    if (e !== EINTR) throw new SysError(what, e);
  }
}

/** ioctl with an integer (or no) argument; returns the non-negative result (EINTR retried). */
export function ioctlInt(fd: number, req: number, arg: number | bigint, what: string): number {
  return retryingEintr(what, () => c.ioctlInt(fd, req, arg) as number);
}

/** ioctl whose argument is a struct in a Buffer; returns the non-negative result (EINTR retried). */
export function ioctlBuf(fd: number, req: number, arg: Buffer, what: string): number {
  return retryingEintr(what, () => c.ioctlPtr(fd, req, arg) as number);
}

/** KVM_RUN style ioctl that may return EINTR/EAGAIN: returns -errno instead of throwing. */
export function ioctlIntRaw(fd: number, req: number, arg: number): number {
  const r = c.ioctlInt(fd, req, arg) as number;
  return r < 0 ? -errno() : r;
}

export interface Mapping {
  readonly pointer: RawPointer;
  readonly address: bigint;
  readonly length: number;
}

export function mmap(length: number, prot: number, flags: number, fd: number, what: string): Mapping {
  const p = c.mmap(null, length, prot, flags, fd, 0);
  const address = koffi.address(p);
  if (address === 0xffffffffffffffffn || p === null) throw new SysError(what, errno());
  return { pointer: p, address, length };
}

/** Node 20's N-API aborts the process for an external ArrayBuffer over 4 GiB: measured. */
export const MAX_VIEW_BYTES = 4 * 1024 ** 3;

/**
 * An ArrayBuffer aliasing [offset, offset+length) of mapping m (no copy), of at most
 * MAX_VIEW_BYTES. Invalid after unmap.
 */
export function viewOf(m: Mapping, offset: number, length: number): ArrayBuffer {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 ||
      offset + length > m.length || length > MAX_VIEW_BYTES) {
    throw new RangeError(`viewOf: ${offset}+${length} is outside the mapping or over 4 GiB`);
  }
  return koffi.view(m.address + BigInt(offset), length);
}

export function munmap(m: Mapping): void {
  c.munmap(m.pointer, m.length);
}

/**
 * Replace [offset, offset+length) of mapping m (page aligned) by a new mapping at the same
 * address: fd's bytes from fileOffset (MAP_SHARED), or fresh zero pages (fd -1,
 * MAP_PRIVATE|MAP_ANONYMOUS). The old pages of the range are dropped.
 */
export function mmapAt(m: Mapping, offset: number, length: number, prot: number, flags: number, fd: number, fileOffset: number): void {
  if (offset < 0 || length <= 0 || offset + length > m.length) throw new RangeError('mmapAt: range outside the mapping');
  const r = c.mmapAt(m.address + BigInt(offset), length, prot, flags | MAP_FIXED, fd, fileOffset) as bigint | number;
  if (BigInt(r) === -1n) throw new SysError('mmap(MAP_FIXED)', errno());
}

/**
 * Replace [offset, offset+data.length) of mapping m (page aligned) by private pages holding
 * data, in one step: the pages are filled elsewhere, then moved into place (mremap with
 * MREMAP_FIXED), so that no one reading the range meanwhile (a vCPU) sees anything but the old
 * pages or the new ones.
 */
export function replacePages(m: Mapping, offset: number, data: Uint8Array): void {
  const length = data.length;
  if (offset < 0 || length <= 0 || offset + length > m.length || length % 4096) throw new RangeError('replacePages: bad range');
  const tmp = mmap(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 'mmap(replacement pages)');
  new Uint8Array(viewOf(tmp, 0, length)).set(data);
  const MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;
  const r = c.mremap(tmp.address, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, m.address + BigInt(offset)) as bigint | number;
  if (BigInt(r) === -1n) {
    const e = errno();
    munmap(tmp);
    throw new SysError('mremap(MREMAP_FIXED)', e);
  }
}

const F_DUPFD_CLOEXEC = 1030;
/** A new descriptor for fd's open file (close-on-exec), or -errno. */
export const dupFd = (fd: number): number => ret(c.fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0) as number);

const MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
/** A new anonymous memory file (memfd_create), close-on-exec, sealable if asked; throws SysError. */
export function memfdCreate(name: string, sealable = false): number {
  const fd = c.memfdCreate(name, MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0)) as number;
  if (fd < 0) throw new SysError('memfd_create', errno());
  return fd;
}

const F_ADD_SEALS = 1033;
export const F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;
/** Seal a memfd (fcntl F_ADD_SEALS): its size and bytes can never change again. */
export function addSeals(fd: number, seals: number): void {
  if ((c.fcntl(fd, F_ADD_SEALS, 'int', seals) as number) < 0) throw new SysError('fcntl(F_ADD_SEALS)', errno());
}

/** Which pages of [offset, offset+length) of a mapping are resident (one byte per page, bit 0). */
export function mincore(m: Mapping, offset: number, length: number, vec: Uint8Array): void {
  if ((c.mincore(m.address + BigInt(offset), length, vec) as number) < 0) throw new SysError('mincore', errno());
}

/** madvise on a sub-range of a mapping (offset and length page aligned). */
export function madvise(m: Mapping, offset: number, length: number, advice: number): void {
  if ((c.madvise(m.address + BigInt(offset), length, advice) as number) < 0) throw new SysError('madvise', errno());
}

/** mprotect on a sub-range of a mapping (offset and length page aligned). */
export function mprotect(m: Mapping, offset: number, length: number, prot: number): void {
  if ((c.mprotect(m.address + BigInt(offset), length, prot) as number) < 0) throw new SysError('mprotect', errno());
}

// ---- host file-system calls, used by src/fs (fd-relative, never string paths from /) ----
// Each returns the result, or -errno: the guest ABI layer forwards errno values to the guest.

const SYS_openat2 = 437;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;
const howBuf = Buffer.alloc(24);
/** Linux's VALID_OPEN_FLAGS on x86-64: O_ACCMODE through __O_TMPFILE. */
const VALID_OPEN_FLAGS = 0o37777703;

function ret(r: number | bigint): number {
  const n = Number(r);
  return n < 0 ? -errno() : n;
}

/** openat2(2): the path may not leave dirfd's tree (RESOLVE_* flags). */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  // As open(2) does, bits that are no open flag are dropped (openat2 would refuse them, and a
  // negative int from the guest is no u64): found by the system-call fuzzer.
  howBuf.writeBigUInt64LE(BigInt((flags & VALID_OPEN_FLAGS) >>> 0), 0);
  howBuf.writeBigUInt64LE(BigInt(mode & 0o7777), 8);
  howBuf.writeBigUInt64LE(BigInt(resolve), 16);
  return ret(c.syscall5(SYS_openat2, dirfd, h(path), howBuf, 24) as number);
}
export const openat = (dirfd: number, path: string, flags: number, mode: number) => ret(c.openat(dirfd, h(path), flags, mode) as number);
export const fstatat = (dirfd: number, path: string, buf: Uint8Array, flags: number) => ret(c.fstatat(dirfd, h(path), buf, flags) as number);
export const fstat = (fd: number, buf: Uint8Array) => ret(c.fstat(fd, buf) as number);
export const readlinkat = (dirfd: number, path: string, buf: Uint8Array) => ret(c.readlinkat(dirfd, h(path), buf, buf.length) as number);
export const getdents64 = (fd: number, buf: Uint8Array) => ret(c.getdents64(fd, buf, buf.length) as number);
export const lseek = (fd: number, off: bigint, whence: number) => ret(c.lseek(fd, off, whence) as bigint);
export const mkdirat = (dirfd: number, path: string, mode: number) => ret(c.mkdirat(dirfd, h(path), mode) as number);
export const unlinkat = (dirfd: number, path: string, flags: number) => ret(c.unlinkat(dirfd, h(path), flags) as number);
export const renameat2 = (od: number, op: string, nd: number, np: string, flags: number) => ret(c.renameat2(od, h(op), nd, h(np), flags) as number);
export const symlinkat = (target: string, dirfd: number, path: string) => ret(c.symlinkat(h(target), dirfd, h(path)) as number);
export const linkat = (od: number, op: string, nd: number, np: string, flags: number) => ret(c.linkat(od, h(op), nd, h(np), flags) as number);
export const mknodat = (dirfd: number, path: string, mode: number, dev: number) => ret(c.mknodat(dirfd, h(path), mode, dev) as number);
export const fallocate = (fd: number, mode: number, off: bigint, len: bigint) => ret(c.fallocate(fd, mode, off, len) as number);
export const fchmod = (fd: number, mode: number) => ret(c.fchmod(fd, mode) as number);
export const fchmodat = (dirfd: number, path: string, mode: number, flags: number) => ret(c.fchmodat(dirfd, h(path), mode, flags) as number);
export const utimensat = (dirfd: number, path: string, times: Uint8Array | null, flags: number) => ret(c.utimensat(dirfd, h(path), times, flags) as number);
export const ftruncate = (fd: number, len: bigint) => ret(c.ftruncate(fd, len) as number);
export const fsync = (fd: number) => ret(c.fsync(fd) as number);
export const read = (fd: number, buf: Uint8Array) => ret(c.read(fd, buf, buf.length) as number);
export const write = (fd: number, buf: Uint8Array) => ret(c.write(fd, buf, buf.length) as number);
export const pread = (fd: number, buf: Uint8Array, off: bigint) => ret(c.pread(fd, buf, buf.length, off) as number);
export const pwrite = (fd: number, buf: Uint8Array, off: bigint) => ret(c.pwrite(fd, buf, buf.length, off) as number);
export const closeFd = (fd: number) => ret(c.close(fd) as number);
export const isatty = (fd: number) => (c.isatty(fd) as number) === 1;
/** ioctl with a small input struct (TCSETS) on a host fd: 0, or -errno. */
export const ioctlIn = (fd: number, req: number, buf: Uint8Array) => ret(c.ioctlPtr(fd, req, buf) as number);
/** ioctl with an integer argument (TCFLSH) on a host fd: the result, or -errno. */
export const ioctlArg = (fd: number, req: number, arg: number) => ret(c.ioctlInt(fd, req, arg) as number);
/** ioctl with a small output struct (TCGETS, TIOCGWINSZ) on a host fd. */
export const ioctlOut = (fd: number, req: number, buf: Uint8Array) => ret(c.ioctlWinsize(fd, req, buf) as number);

// ---- added for the Linux ABI breadth (poll, statfs) ----
const c2 = {
  poll: libc.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)'),
  fstatfs: libc.func('int fstatfs(int fd, _Out_ uint8_t *buf)'),
};
/** poll(2) on host fds; fds holds struct pollfd entries (8 bytes each). Returns the ready count or -errno. */
export const poll = (fds: Uint8Array, n: number, timeoutMs: number) => ret(c2.poll(fds, n, timeoutMs) as number);
const c3 = {
  inotifyInit1: libc.func('int inotify_init1(int flags)'),
  inotifyAddWatch: libc.func('int inotify_add_watch(int fd, const char *path, uint32_t mask)'),
  inotifyRmWatch: libc.func('int inotify_rm_watch(int fd, int wd)'),
};
/** A host inotify instance, non-blocking and close-on-exec: its fd, or -errno. */
export const inotifyInit = () => ret(c3.inotifyInit1(0o4000 | O_CLOEXEC) as number);
/** inotify_add_watch(2): the watch descriptor, or -errno. */
export const inotifyAddWatch = (fd: number, path: string, mask: number) => ret(c3.inotifyAddWatch(fd, h(path), mask) as number);
/** inotify_rm_watch(2): 0, or -errno. */
export const inotifyRmWatch = (fd: number, wd: number) => ret(c3.inotifyRmWatch(fd, wd) as number);
/** fstatfs(2) into a 120-byte struct statfs (an O_PATH fd works). */
export const fstatfs = (fd: number, buf: Uint8Array) => ret(c2.fstatfs(fd, buf) as number);

// ---- kvmbox's own helper library (native/*.c, built by `npm run build`) ----

const HELPER_PATH = fileURLToPath(new URL('../../../native/out/libkvmbox-host.so', import.meta.url));
type Fn = (...args: unknown[]) => unknown;
let helper: { vtGroup: Fn; vtStart: Fn; vtRun: Fn; vtResume: Fn; vtWait: Fn; vtKick: Fn; vtStop: Fn; vtGroupFree: Fn; vtResult: Fn; listDir: Fn; statDirents: Fn; branchTargets: Fn; dcAddEntries: Fn; dcAddEntry: Fn; pfStart: Fn; pfWindow: Fn; pfTake: Fn; pfStats: Fn; pfStop: Fn; statDirentsFrom: Fn; sigCatch: Fn; sigRestore: Fn; sigTake: Fn } | null = null;

function loadHelper(): NonNullable<typeof helper> {
  if (helper) return helper;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(HELPER_PATH);
  } catch (e) {
    throw new Error(`kvmbox's host helper library is not built (${(e as Error).message}); run: npm run build`);
  }
  helper = {
    vtGroup: lib.func('void *kvmbox_vt_group(void)'),
    vtStart: lib.func('void *kvmbox_vt_start(void *group, int fd, int index, void *run)'),
    vtRun: lib.func('long kvmbox_vt_run(void *vt)'),
    vtResume: lib.func('void kvmbox_vt_resume(void *vt)'),
    vtWait: lib.func('int64_t kvmbox_vt_wait(void *group, int timeout_ms)'),
    vtKick: lib.func('void kvmbox_vt_kick(void *vt)'),
    vtStop: lib.func('void kvmbox_vt_stop(void *vt)'),
    vtGroupFree: lib.func('void kvmbox_vt_group_free(void *group)'),
    vtResult: lib.func('long kvmbox_vt_result(void *vt)'),
    listDir: lib.func('long kvmbox_list_dir(int fd, _Out_ uint8_t *out, unsigned long cap, const uint32_t *params, _Out_ int64_t *res)'),
    statDirents: lib.func('long kvmbox_stat_dirents(int fd, const uint8_t *dirents, unsigned long len, _Out_ uint8_t *stats)'),
    statDirentsFrom: lib.func('long kvmbox_stat_dirents_from(int fd, const uint8_t *dirents, unsigned long len, _Out_ uint8_t *stats, ' +
      'const uint8_t *blob, unsigned long blobLen, const uint8_t *lstats, unsigned long count, _Inout_ uint64_t *cursor)'),
    branchTargets: lib.func('void kvmbox_branch_targets(const uint8_t *code, long len, _Inout_ uint8_t *marks)'),
    dcAddEntries: lib.func('long kvmbox_dc_add_entries(_Inout_ uint8_t *dcache, uint32_t heap, const uint8_t *prefix, ' +
      'uint32_t prefixLen, const uint8_t *blob, uint32_t blobLen, const uint8_t *stats, uint32_t count, const uint8_t *dotdot, ' +
      '_Out_ uint32_t *offsets)'),
    dcAddEntry: lib.func('long kvmbox_dc_add_entry(_Inout_ uint8_t *dcache, uint32_t heap, const uint8_t *path, uint32_t len, ' +
      'uint32_t kind, const uint8_t *stat)'),
    pfStart: lib.func('void *kvmbox_pf_start(int fd, const char *root, const char *resume, int sorted, const uint32_t *params, unsigned long cap, int64_t window)'),
    pfWindow: lib.func('void kvmbox_pf_window(void *pf, int64_t window)'),
    pfTake: lib.func('long kvmbox_pf_take(void *pf, const char *path, _Out_ uint8_t *out, unsigned long cap, _Out_ int64_t *res)'),
    pfStats: lib.func('void kvmbox_pf_stats(void *pf, _Out_ int64_t *out)'),
    pfStop: lib.func('void kvmbox_pf_stop(void *pf)'),
    sigCatch: lib.func('int kvmbox_signals_catch(uint64_t mask)'),
    sigRestore: lib.func('void kvmbox_signals_restore(uint64_t mask)'),
    sigTake: lib.func('uint64_t kvmbox_signals_take(void)'),
  };
  return helper;
}

/**
 * Catch the host signals of mask (bit N: signal N) in this process: from now on they only set a
 * bit that takeCaughtSignals() reads and clears (native/signals.c). False when one cannot be caught.
 */
export function catchSignals(mask: bigint): boolean {
  return (loadHelper().sigCatch(mask) as number) === 0;
}
/** The signals of mask do again what they did before catchSignals (Node's handler, or the default). */
export function uncatchSignals(mask: bigint): void {
  loadHelper().sigRestore(mask);
}
/** The signals caught since the last call, as a mask (bit N: signal N). */
export function takeCaughtSignals(): bigint {
  return BigInt(loadHelper().sigTake() as number | bigint);
}

/** What listDir returns: where the records and stats are in out, and facts about them. */
export interface DirListing {
  count: number;
  blobLen: number;
  statsOff: number;
  /** Bytes the records' directory-cache entries take with the prefix length given. */
  cost: number;
  /** Index of the "." record, or -1. */
  dot: number;
}

/**
 * Read directory fd to its end and lstat each entry, in one call: out receives the getdents64
 * records at [0, blobLen), then one 144-byte struct stat per record at statsOff ('.' is fstat of
 * fd, '..' zeros), owners mapped as owners.from -> owners.to. Returns the listing or -errno
 * (-ENOSPC: out is too small).
 */
export function listDir(fd: number, out: Uint8Array, prefixLen: number,
  owners: { uid: number; gid: number; toUid: number; toGid: number }): DirListing | number {
  listParams[0] = prefixLen;
  setOwners(owners);
  const n = Number(loadHelper().listDir(fd, out, out.length, listParams, listRes)); // -errno itself
  return n < 0 ? n : toListing(n);
}
const listParams = new Uint32Array(5);
const listRes = new BigInt64Array(4);

function setOwners(owners: { uid: number; gid: number; toUid: number; toGid: number }): void {
  listParams[1] = owners.uid >>> 0; listParams[2] = owners.gid >>> 0;
  listParams[3] = owners.toUid; listParams[4] = owners.toGid;
}

function toListing(n: number): DirListing {
  return { count: n, blobLen: Number(listRes[0]), statsOff: Number(listRes[1]), cost: Number(listRes[2]), dot: Number(listRes[3]) };
}

/** A directory lister working ahead on a thread of its own (native/prefetch.c). */
export interface Prefetcher { readonly handle: unknown }
/** What prefetchTake returns for a path the prefetcher has not listed. */
const PF_MISS = -100000;

/**
 * Start listing the tree at directory fd (guest path root) depth first, siblings sorted by name
 * or as listed, on a thread of the helper library, from resume (relative to root, '' for root
 * itself) on: that directory, what is below it, then the later siblings of it and of each
 * directory above it. Listings as listDir makes them (owners
 * mapped), each at most cap bytes, at most window directory-cache bytes of them untaken. fd is
 * not taken. Returns -errno on failure.
 */
export function prefetchStart(fd: number, root: string, resume: string, sorted: boolean, cap: number, window: number,
  owners: { uid: number; gid: number; toUid: number; toGid: number }): Prefetcher | number {
  setOwners(owners);
  const handle = loadHelper().pfStart(fd, h(root), h(resume), sorted ? 1 : 0, listParams, cap, window);
  return handle === null ? -(errno() || E_NOMEM) : { handle };
}
const E_NOMEM = 12;

/** How many directory-cache bytes of listings the prefetcher may hold untaken. */
export function prefetchWindow(pf: Prefetcher, window: number): void {
  loadHelper().pfWindow(pf.handle, window);
}

/**
 * The listing of path from the prefetcher, into out as listDir gives it (waiting if it is
 * listing path now); listings it made before that one are dropped. null: it has not listed path.
 */
export function prefetchTake(pf: Prefetcher, path: string, out: Uint8Array): DirListing | number | null {
  const n = Number(loadHelper().pfTake(pf.handle, h(path), out, out.length, listRes));
  if (n === PF_MISS) return null;
  return n < 0 ? n : toListing(n);
}

/** The prefetcher's counts: directories listed, listings taken, listings dropped untaken. */
export function prefetchStats(pf: Prefetcher): { listed: number; taken: number; dropped: number } {
  const out = new BigInt64Array(3);
  loadHelper().pfStats(pf.handle, out);
  return { listed: Number(out[0]), taken: Number(out[1]), dropped: Number(out[2]) };
}

/** Stop the prefetcher (after the listing in hand) and free it; pf must not be used again. */
export function prefetchStop(pf: Prefetcher): void {
  loadHelper().pfStop(pf.handle);
}

/**
 * lstat each name of the getdents64 records in dirents (relative to directory fd) into stats,
 * 144 bytes per record ('.' is fstat of fd; '..' and failures are zeros). Returns the record
 * count; stats must hold one struct per record that fits in dirents (at most len / 24).
 */
export function statDirents(fd: number, dirents: Uint8Array, stats: Uint8Array): number {
  if (stats.length < Math.floor(dirents.length / 24) * 144) throw new RangeError('statDirents: stats buffer too small');
  return Number(loadHelper().statDirents(fd, dirents, dirents.length, stats));
}

/**
 * statDirents, taking each stat from an earlier listing of the directory (blob and lstats, as
 * listDir made them) where the record is that listing's next one; cursor (offset and index of that
 * record) moves along. Returns the record count.
 */
export function statDirentsFrom(fd: number, dirents: Uint8Array, stats: Uint8Array, blob: Uint8Array, lstats: Uint8Array,
  cursor: BigUint64Array): number {
  if (stats.length < Math.floor(dirents.length / 24) * 144) throw new RangeError('statDirentsFrom: stats buffer too small');
  if (cursor.length < 2) throw new RangeError('statDirentsFrom: cursor too short');
  return Number(loadHelper().statDirentsFrom(fd, dirents, dirents.length, stats, blob, blob.length, lstats, Math.floor(lstats.length / 144), cursor));
}

/**
 * Direct branches into code: marks has one byte per offset of code and one more; where it is 1 on
 * entry (an offset of interest) it becomes 2 when a jcc/jmp rel8, call/jmp rel32 or jcc rel32
 * starting at any byte of code would land there.
 */
export function branchTargets(code: Uint8Array, marks: Uint8Array): void {
  if (marks.length !== code.length + 1) throw new RangeError('branchTargets: marks must be one byte longer than code');
  loadHelper().branchTargets(code, code.length, marks);
}

/**
 * Append an entry for path (UTF-8 bytes) of kind (lstat, stat or a descriptor's fstat) with the
 * 144-byte struct stat to the directory cache in dcache (DCACHE, format in src/fs/dir-cache.ts)
 * at heap. Returns the new heap end, or minus heap when it does not fit.
 */
export function dcAddEntry(dcache: Uint8Array, heap: number, path: Uint8Array, kind: number, stat: Uint8Array): number {
  if (stat.length < 144) throw new RangeError('dcAddEntry: stat too short');
  return Number(loadHelper().dcAddEntry(dcache, heap, path, path.length, kind, stat));
}

/**
 * Append an lstat entry per getdents64 record of blob (count records; stats: a struct stat each),
 * from heap on, ".." with the struct stat dotdot when given; offsets[i] receives record i's
 * entry offset (0: none, for ".." without dotdot or a zero stat).
 * Returns the new heap end, or minus it when an entry did not fit (the ones before it stay).
 */
export function dcAddEntries(dcache: Uint8Array, heap: number, prefix: Uint8Array, blob: Uint8Array, stats: Uint8Array,
  count: number, dotdot: Uint8Array | null, offsets: Uint32Array): number {
  if (stats.length < count * 144 || offsets.length < count || (dotdot && dotdot.length < 144)) {
    throw new RangeError('dcAddEntries: stats, dotdot or offsets too short');
  }
  return Number(loadHelper().dcAddEntries(dcache, heap, prefix, prefix.length, blob, blob.length, stats, count, dotdot, offsets));
}

// ---- vCPU threads (native/vcpu.c): KVM_RUN on a native thread, exits handed over by futex ----

/** A group of vCPU threads whose exits one thread serves. */
export interface VcpuThreadGroup { readonly pointer: RawPointer }
/** One vCPU's thread. */
export interface VcpuThread { readonly pointer: RawPointer; readonly index: number }

export function vcpuThreadGroup(): VcpuThreadGroup {
  const pointer = loadHelper().vtGroup() as RawPointer;
  if (!pointer) throw new Error('kvmbox_vt_group: out of memory');
  return { pointer };
}

/** Starts a parked thread that will run KVM_RUN on vcpuFd; index: its bit in the group (0..63). */
export function vcpuThreadStart(group: VcpuThreadGroup, vcpuFd: number, index: number, run: Mapping): VcpuThread {
  const pointer = loadHelper().vtStart(group.pointer, vcpuFd, index, run.pointer) as RawPointer;
  if (!pointer) throw new Error(`kvmbox_vt_start: cannot start the thread of vCPU ${index.toString()}`);
  return { pointer, index };
}

/** Resumes the thread's vCPU and waits for its next exit; returns KVM_RUN's result (or -errno). */
export function vcpuThreadRun(t: VcpuThread): number { return Number(loadHelper().vtRun(t.pointer)); }
export function vcpuThreadResume(t: VcpuThread): void { loadHelper().vtResume(t.pointer); }
/** Waits for exits of the group: the mask of vCPUs that exited (0 after timeoutMs; < 0: no limit). */
export function vcpuThreadWait(group: VcpuThreadGroup, timeoutMs: number): bigint {
  return BigInt(loadHelper().vtWait(group.pointer, timeoutMs) as number | bigint);
}
export function vcpuThreadKick(t: VcpuThread): void { loadHelper().vtKick(t.pointer); }
export function vcpuThreadStop(t: VcpuThread): void { loadHelper().vtStop(t.pointer); }
export function vcpuThreadGroupFree(group: VcpuThreadGroup): void { loadHelper().vtGroupFree(group.pointer); }
/** KVM_RUN's result for the exit a wait reported for this thread (>= 0, or -errno). */
export function vcpuThreadResult(t: VcpuThread): number { return Number(loadHelper().vtResult(t.pointer)); }
