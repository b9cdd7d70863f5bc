/* Part of kvmbox's host helper library (loaded through koffi by src/kvm/libc.ts): writing a
 * directory listing's entries into the stub's directory cache (DCACHE, see src/fs/dir-cache.ts
 * for the format and kernel/dstub.c for the reader). The format's constants come from the one ABI
 * definition (abi/hypercalls.json -> kernel/include/abi.h). Entry by entry in JavaScript this was
 * most of the host's time in `find` over a large tree (a string, a hash and a dozen buffer writes
 * per file); here it is a copy. Plain C on libc: no Node API, no state. */
#include <stdint.h>
#include <string.h>
#include "../kernel/include/abi.h"
#include "helper.h"

#define ENTRY_NOFOLLOW 0
#define FNV_OFFSET 0x811c9dc5u
#define FNV_PRIME 0x01000193u

_Static_assert(STAT_SIZE == 144, "x86-64 struct stat");

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static uint32_t fnv(uint32_t hash, const void *bytes, uint32_t len) {
  const uint8_t *b = bytes;
  for (uint32_t k = 0; k < len; k++) hash = (hash ^ b[k]) * FNV_PRIME;
  return hash;
}

/* An entry whose path (len bytes, of FNV-1a hash) is already at e + DC_E_PATH: its header, the
 * stat st and the padding, linked into its hash bucket. Returns its size. DCACHE is guest memory
 * (read-only to user mode, but not to the guest kernel): nothing is read back from it but the
 * bucket's head, which is only copied. */
static uint32_t link_entry(uint8_t *dcache, uint32_t heap, uint32_t len, uint32_t hash, uint8_t kind, const uint8_t *st) {
  uint8_t *e = dcache + heap;
  uint32_t size = (DC_E_PATH + len + 1 + 7) & ~7u;
  memset(e, 0, DC_E_STAT);
  memset(e + DC_E_PATH + len, 0, size - DC_E_PATH - len);
  uint8_t *bucket = dcache + DC_BUCKETS_OFF + 4 * (hash & (DC_BUCKETS - 1));
  put32(e + DC_E_NEXT, get32(bucket));
  put32(e + DC_E_HASH, hash);
  e[DC_E_FOLLOW] = kind;
  uint16_t len16 = (uint16_t)len;
  memcpy(e + DC_E_PATH_LEN, &len16, 2);
  memcpy(e + DC_E_STAT, st, STAT_SIZE);
  put32(bucket, heap);
  return size;
}

/* Whether an entry with a path of len bytes fits at heap (in DCACHE, and in SH_PATH_MAX). */
static int fits(uint32_t heap, uint32_t len) {
  return (uint64_t)heap + DC_E_PATH + SH_PATH_MAX <= DCACHE_SIZE && len < SH_PATH_MAX - 1;
}

/*
 * One entry for path (len bytes) of kind (DC_E_FOLLOW: lstat, stat, or a descriptor's fstat) with
 * the struct stat st, appended at heap. Returns the new end of the heap, or minus heap when it
 * does not fit.
 */
long kvmbox_dc_add_entry(uint8_t *dcache, uint32_t heap, const char *path, uint32_t len, uint32_t kind, const uint8_t *st) {
  if (!fits(heap, len)) return -(long)heap;
  memcpy(dcache + heap + DC_E_PATH, path, len);
  return heap + link_entry(dcache, heap, len, fnv(FNV_OFFSET, path, len), (uint8_t)kind, st);
}

/*
 * For each getdents64 record of blob[0, blob_len) (count records, stats[i] their struct stat), up
 * to the first malformed one (dirent_at):
 * an lstat entry "prefix/name" in dcache (DCACHE_SIZE bytes), appended at heap and linked into
 * its hash bucket, its offset in offsets[i]. ".." gets one with the struct stat dotdot when that
 * is given (the parent's "."), else none; so does a record with a zero stat (no lstat)
 * (offsets[i] = 0). Returns the new end of the heap; when an entry did not fit (in
 * DCACHE, or in SH_PATH_MAX), minus the end of the heap after the entries before it, which stay.
 */
long kvmbox_dc_add_entries(uint8_t *dcache, uint32_t heap, const char *prefix, uint32_t prefix_len,
                           const uint8_t *blob, uint32_t blob_len, const uint8_t *stats, uint32_t count,
                           const uint8_t *dotdot, uint32_t *offsets) {
  unsigned long off = 0;
  const char *name;
  unsigned name_len, reclen;
  const uint32_t dir_hash = fnv(fnv(FNV_OFFSET, prefix, prefix_len), "/", 1);
  for (uint32_t i = 0; i < count; i++) offsets[i] = 0;
  for (uint32_t i = 0; i < count && (reclen = dirent_at(blob, blob_len, off, &name, &name_len)) != 0; i++, off += reclen) {
    const uint8_t *st = stats + (uint64_t)i * STAT_SIZE;
    if (name_len == 2 && name[0] == '.' && name[1] == '.') st = dotdot;
    if (!st || get32(st + 24) == 0 /* st_mode */) continue;
    uint32_t len = prefix_len + 1 + name_len;
    if (!fits(heap, len)) return -(long)heap;
    uint8_t *path = dcache + heap + DC_E_PATH;
    memcpy(path, prefix, prefix_len);
    path[prefix_len] = '/';
    memcpy(path + prefix_len + 1, name, name_len);
    offsets[i] = heap;
    heap += link_entry(dcache, heap, len, fnv(dir_hash, name, name_len), ENTRY_NOFOLLOW, st);
  }
  return heap;
}
