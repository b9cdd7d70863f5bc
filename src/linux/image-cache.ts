// Read-only images of program and library files in host memory, made once and mapped by every
// process and every run that maps the file's read-only parts (ELF text and rodata, the library
// spans ld.so maps before its segments): a sealed memfd each (SharedBacking.sealedCopy), mapped
// copy-on-write (GuestMemory.share). A process maps such pages instead of copying the file's
// bytes, a fork's child maps them again instead of copying them, and the host holds one copy of
// libc.so for all. Pages a process makes writable are first made its own (GuestMemory.privatize),
// so an image's pages are always exactly its file's bytes. Only where address spaces have memory
// of their own (the cpl0-entry path): on kvm_pvm processes take turns in one memory.
import { SharedBacking, type SharedBudget } from '../kvm/shared-memory.js';

/** Largest file kept as an image; larger ones are copied as before. */
const MAX_IMAGE = 64 << 20;
/** All images together (the host memory they hold while cached), and how many there are. */
const budget: SharedBudget = { used: 0, limit: 512 << 20, count: 0, maxCount: 256 };

/** Images by key (a file's host identity, or a token for a program read into a Buffer); oldest first. */
const images = new Map<object | string, SharedBacking>();
/** Tokens of the program buffers that have images (a buffer's image goes when the LRU drops it). */
const tokens = new WeakMap<Uint8Array, object>();

function lookup(key: object | string): SharedBacking | null {
  const hit = images.get(key);
  if (!hit) return null;
  images.delete(key);
  images.set(key, hit);
  return hit;
}

function insert(key: object | string, size: number, make: () => Uint8Array | null): SharedBacking | null {
  if (size <= 0 || size > MAX_IMAGE) return null;
  // Make room: the cache lets go of its oldest images (mappings still hold theirs).
  for (const [k, old] of images) {
    if (budget.used + size <= budget.limit && budget.count < budget.maxCount) break;
    images.delete(k);
    old.release();
  }
  // Still no room (mapped images hold it): copy instead, without reading the file for nothing.
  if (budget.used + size > budget.limit || budget.count >= budget.maxCount) return null;
  const data = make();
  if (!data) return null;
  const b = SharedBacking.sealedCopy(data, budget);
  if (b) images.set(key, b);
  return b;
}

/** The image of a program already read into memory (exec), or null. */
export function imageOfBuffer(file: Uint8Array): SharedBacking | null {
  let token = tokens.get(file);
  if (token) {
    const hit = lookup(token);
    if (hit) return hit;
  } else {
    token = {};
    tokens.set(file, token);
  }
  return insert(token, file.length, () => file);
}

/**
 * The image of a host file by its identity (device, inode, size, mtime: fs/vfs.ts hostIdentity),
 * read with read() on a miss, or null (too large, unreadable, the cache full of mapped images).
 */
export function imageOfFile(identity: string, size: number, read: () => Uint8Array | null): SharedBacking | null {
  return lookup(identity) ?? insert(identity, size, read);
}

/** How much the cache holds (tests, bench). */
export function imageCacheStats(): { images: number; bytes: number } {
  return { images: images.size, bytes: budget.used };
}
