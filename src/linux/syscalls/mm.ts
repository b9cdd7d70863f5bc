// Memory: brk, anonymous and private file mappings. Guest memory is fixed at start-up (--memory),
// so a request beyond it fails with ENOMEM and the host never allocates more.
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../address-space.js';
import { E, Errno, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED } from '../../abi/linux.js';
import { alignUp, PAGE_SIZE } from '../../machine/x86.js';
import type { Process } from '../process.js';
import { USER_BASE } from '../../abi/abi.generated.js';
import { int, size, type SyscallGroup } from './args.js';

const PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC;
const MREMAP_MAYMOVE = 1;
const MADV_DONTNEED = 4;

function pageArgs(addr: bigint, len: bigint): [number, number] {
  if (addr % BigInt(PAGE_SIZE) !== 0n) throw new Errno(E.EINVAL);
  const n = size(len);
  if (n <= 0) throw new Errno(E.EINVAL);
  return [Number(addr > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : addr), alignUp(n, PAGE_SIZE)];
}

function inUserRange(p: Process, start: number, len: number): boolean {
  return start >= USER_BASE && start + len <= p.space.userTop;
}

function mmap(p: Process, a: bigint[]): number {
  const [addrArg, lenArg, protArg, flagsArg, fdArg, offArg] = a as [bigint, bigint, bigint, bigint, bigint, bigint];
  const prot = int(protArg);
  const flags = int(flagsArg);
  if (prot & ~PROT_ALL) throw new Errno(E.EINVAL);
  const type = flags & (MAP_SHARED | MAP_PRIVATE);
  if (type === 0) throw new Errno(E.EINVAL);
  const n = size(lenArg);
  if (n <= 0) throw new Errno(E.EINVAL);
  const len = alignUp(n, PAGE_SIZE);
  if (offArg % BigInt(PAGE_SIZE) !== 0n) throw new Errno(E.EINVAL);
  const anonymous = (flags & MAP_ANONYMOUS) !== 0;
  const file = anonymous ? null : p.fds.get(int(fdArg));
  if (file && type === MAP_SHARED && prot & PROT_WRITE) {
    // A shared writable file mapping would need write-back to the host: not supported.
    throw new Errno(E.ENODEV);
  }
  let start: number;
  const hint = addrArg > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(addrArg);
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (hint % PAGE_SIZE !== 0) throw new Errno(E.EINVAL);
    if (!inUserRange(p, hint, len)) throw new Errno(E.ENOMEM);
    p.mapPool.reclaim(p.space, hint, len);
    p.space.clipHeap(hint, len);
    if (!p.space.isFree(hint, len)) {
      if (flags & MAP_FIXED_NOREPLACE) throw new Errno(E.EEXIST);
      p.space.unmap(hint, len);
    }
    start = hint;
  } else if (hint > 0 && hint % PAGE_SIZE === 0 && inUserRange(p, hint, len) && p.space.isFree(hint, len)) {
    start = hint;
  } else {
    start = p.space.findFree(len);
    if (!start) throw new Errno(E.ENOMEM);
  }
  p.space.map(start, len, PROT_READ | PROT_WRITE);
  if (file) {
    // Private file mapping: a copy of the file's bytes (MAP_SHARED read-only is the same thing
    // for a single process).
    const buf = p.space.memory.slice(start, n);
    let done = 0;
    const off = offArg;
    while (done < n) {
      const r = file.pread(buf.subarray(done), off + BigInt(done));
      if (r <= 0) break;
      done += r;
    }
  }
  if (prot !== (PROT_READ | PROT_WRITE)) p.space.map(start, len, prot);
  else if (anonymous && type === MAP_PRIVATE && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) p.mapPool.noteAnonymous(start, len);
  return start;
}

export const mmSyscalls: SyscallGroup = {
  brk: ({ process: p }, a) => p.space.brk(size(a[0])),
  mmap: ({ process: p }, a) => mmap(p, a),
  munmap: ({ process: p }, a) => {
    const [start, len] = pageArgs(a[0], a[1]);
    if (!inUserRange(p, start, len)) throw new Errno(E.EINVAL);
    if (p.mapPool.keep(p.space, start, len)) return 0;
    p.mapPool.reclaim(p.space, start, len);
    p.space.clipHeap(start, len);
    p.space.unmap(start, len);
    return 0;
  },
  mprotect: ({ process: p }, a) => {
    const [start, len] = pageArgs(a[0], a[1]);
    const prot = int(a[2]);
    if (prot & ~PROT_ALL & ~0x03000000) throw new Errno(E.EINVAL);
    if (inUserRange(p, start, len)) {
      p.mapPool.reclaim(p.space, start, len);
      p.space.clipHeap(start, len);
    }
    if (!inUserRange(p, start, len) || !p.space.protect(start, len, prot & PROT_ALL)) throw new Errno(E.ENOMEM);
    return 0;
  },
  madvise: ({ process: p }, a) => {
    const [start, len] = pageArgs(a[0], a[1]);
    if (!inUserRange(p, start, len)) throw new Errno(E.ENOMEM);
    if (int(a[2]) === MADV_DONTNEED && p.space.paging.accessible(start, len, 0)) p.space.memory.discard(start, len);
    return 0;
  },
  mremap: ({ process: p }, a) => {
    const [old, oldLen] = pageArgs(a[0], a[1]);
    const n = size(a[2]);
    if (n <= 0) throw new Errno(E.EINVAL);
    const newLen = alignUp(n, PAGE_SIZE);
    const flags = int(a[3]);
    if (!inUserRange(p, old, oldLen) || !p.space.paging.accessible(old, oldLen, 0)) throw new Errno(E.EFAULT);
    p.mapPool.reclaim(p.space, old, oldLen);
    p.space.clipHeap(old, oldLen);
    const prot = p.space.paging.pageProt(old) & PROT_ALL;
    if (newLen <= oldLen) {
      if (newLen < oldLen) p.space.unmap(old + newLen, oldLen - newLen);
      return old;
    }
    if (inUserRange(p, old + oldLen, newLen - oldLen) && p.space.isFree(old + oldLen, newLen - oldLen)) {
      p.space.map(old + oldLen, newLen - oldLen, prot);
      return old;
    }
    if (!(flags & MREMAP_MAYMOVE)) throw new Errno(E.ENOMEM);
    const dest = p.space.findFree(newLen);
    if (!dest) throw new Errno(E.ENOMEM);
    p.space.map(dest, newLen, PROT_READ | PROT_WRITE);
    p.space.memory.bytes.copy(p.space.memory.bytes, dest, old, old + oldLen);
    p.space.map(dest, newLen, prot);
    p.space.unmap(old, oldLen);
    return dest;
  },
};
