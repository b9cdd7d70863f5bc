/* The user-mode stub's directory and stat cache (kvm_pvm only; see stub.S, which calls
 * stub_dir_call on its own stack with the arguments saved in the shared page).
 *
 * The host fills DCACHE (read-only to user mode) with a hash table of paths: each entry holds the
 * struct stat that newfstatat(AT_FDCWD, path, .., 0 or AT_SYMLINK_NOFOLLOW) returns and, for a
 * directory the host has listed, the getdents64 records of the whole listing. From it this code
 * answers, without an exit:
 *  - newfstatat of an absolute path with an entry;
 *  - openat(O_RDONLY|O_DIRECTORY ...) of an absolute path whose listing is cached: the descriptor
 *    is the lowest one free in the bitmap the host publishes, and is recorded in a slot of the
 *    shared page that the host reads back at its next exit (it then holds a placeholder there);
 *  - getdents64, fstat and close of such a descriptor.
 * Anything else, or any doubt, goes to the host. Runs in user mode: nothing here is trusted by the
 * host, and a program that scribbles on the shared page only confuses its own answers. It never
 * touches the program's memory: stub.S copied the path in, and copies the result out. */
#include "include/abi.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef long i64;

#define SH64(o) (*(volatile u64 *)(unsigned long)(PHYS_SHARED + (o)))
#define SH32(o) (*(volatile u32 *)(unsigned long)(PHYS_SHARED + (o)))
#define DC8(o) (*(const volatile u8 *)(unsigned long)(DCACHE + (o)))
#define DC16(o) (*(const volatile u16 *)(unsigned long)(DCACHE + (o)))
#define DC32(o) (*(const volatile u32 *)(unsigned long)(DCACHE + (o)))
#define SLOT(i, f) SH32(SH_SLOTS + (i) * DIR_SLOT_SIZE + (f))

enum { ACT_HOST = 0, ACT_VALUE = 1, ACT_COPY = 2, ACT_ZERO = 3 };
#define POOL64(i, f) SH64(SH_POOL + (i) * POOL_SLOT_SIZE + (f))
#define POOL32(i, f) SH32(SH_POOL + (i) * POOL_SLOT_SIZE + (f))
enum { POOL_NONE = 0, POOL_FREE = 1, POOL_USED = 2 };

#define EBADF 9
#define EINVAL 22
#define O_ACCMODE 3
#define O_NOCTTY 0x100
#define O_NONBLOCK 0x800
#define O_LARGEFILE 0x8000
#define O_DIRECTORY 0x10000
#define O_NOFOLLOW 0x20000
#define O_CLOEXEC 0x80000
#define OPEN_OK (O_NOCTTY | O_NONBLOCK | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define ST_MODE 24
#define S_IFMT 0170000
#define S_IFDIR 0040000
#define DIRENT_RECLEN 16

static int ret_value(i64 v) {
  SH64(SH_DS_VALUE) = (u64)v;
  return ACT_VALUE;
}

static int ret_copy(u64 dst, u64 src, u64 len, i64 v) {
  SH64(SH_DS_DST) = dst;
  SH64(SH_DS_SRC) = src;
  SH64(SH_DS_LEN) = len;
  ret_value(v);
  return ACT_COPY;
}

static int ret_zero(u64 dst, u64 len, i64 v) {
  SH64(SH_DS_DST) = dst;
  SH64(SH_DS_LEN) = len;
  ret_value(v);
  return ACT_ZERO;
}

/* mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, fd, 0): a region of that size
 * that the program unmapped before and the host kept mapped (src/linux/map-pool.ts), zeroed. */
static int do_mmap(u64 addr, u64 len, u64 prot, u64 flags, u64 off) {
  if (addr || prot != 3 || flags != 0x22 || off || len == 0 || len > POOL_MAX_LEN) return ACT_HOST;
  len = (len + 4095) & ~4095ul;
  for (int i = 0; i < POOL_SLOTS; i++) {
    if (POOL32(i, POOL_STATE) == POOL_FREE && POOL32(i, POOL_LEN) == len) {
      POOL32(i, POOL_STATE) = POOL_USED;
      return ret_zero(POOL64(i, POOL_ADDR), len, (i64)POOL64(i, POOL_ADDR));
    }
  }
  return ACT_HOST;
}

/* munmap of exactly a region handed out above: back to the pool, still mapped. */
static int do_munmap(u64 addr, u64 len) {
  if (len == 0 || len > POOL_MAX_LEN) return ACT_HOST;
  len = (len + 4095) & ~4095ul;
  for (int i = 0; i < POOL_SLOTS; i++) {
    if (POOL32(i, POOL_STATE) == POOL_USED && POOL64(i, POOL_ADDR) == addr && POOL32(i, POOL_LEN) == len) {
      POOL32(i, POOL_STATE) = POOL_FREE;
      return ret_value(0);
    }
  }
  return ACT_HOST;
}

/* Entry offset in DCACHE for (path, follow), or 0. FNV-1a, as the host writes them (native/dcache.c). */
static u32 lookup(const volatile char *path, u32 follow) {
  u32 h = 0x811c9dc5u, len = 0;
  while (path[len] && len < SH_PATH_MAX) {
    h = (h ^ (u8)path[len]) * 0x01000193u;
    len++;
  }
  u32 off = DC32(DC_BUCKETS_OFF + 4 * (h & (DC_BUCKETS - 1)));
  for (u32 guard = 0; off >= DC_HEAP && off <= DCACHE_SIZE - DC_E_PATH - SH_PATH_MAX && guard < 4096; guard++) {
    if (DC32(off + DC_E_HASH) == h && DC8(off + DC_E_FOLLOW) == follow && DC16(off + DC_E_PATH_LEN) == len) {
      u32 i = 0;
      while (i < len && DC8(off + DC_E_PATH + i) == (u8)path[i]) i++;
      if (i == len) return off;
    }
    off = DC32(off + DC_E_NEXT);
  }
  return 0;
}

static int slot_of(i64 fd) {
  if (fd < 0 || fd >= FD_BITMAP_FDS) return -1;
  for (int i = 0; i < DIR_SLOTS; i++)
    if (SLOT(i, SLOT_FDP1) == (u32)fd + 1) return i;
  return -1;
}

static int current(int s) {
  return SLOT(s, SLOT_GEN) == SH32(SH_DC_GEN);
}

static int stat_of_slot(int s, u64 buf) {
  u32 entry = SLOT(s, SLOT_ENTRY);
  if (!current(s) || entry < DC_HEAP || entry > DCACHE_SIZE - DC_E_PATH) return ACT_HOST;
  return ret_copy(buf, DCACHE + entry + DC_E_STAT, STAT_SIZE, 0);
}

static int do_openat(u64 flags) {
  const volatile char *path = (const volatile char *)(unsigned long)(PHYS_SHARED + SH_PATH);
  if (path[0] != '/' || (flags & O_ACCMODE) || !(flags & O_DIRECTORY) || (flags & ~(u64)OPEN_OK)) return ACT_HOST;
  u32 e = lookup(path, 0);
  if (!e || !DC32(e + DC_E_DIR) || (DC32(e + DC_E_STAT + ST_MODE) & S_IFMT) != S_IFDIR) return ACT_HOST;
  int s = -1;
  for (int i = 0; i < DIR_SLOTS; i++)
    if (SLOT(i, SLOT_FDP1) == 0) { s = i; break; }
  if (s < 0) return ACT_HOST;
  u32 limit = SH32(SH_FD_LIMIT);
  if (limit > FD_BITMAP_FDS) limit = FD_BITMAP_FDS;
  for (u32 w = 0; w * 64 < limit; w++) {
    u64 used = SH64(SH_FD_BITMAP + w * 8);
    if (used == ~0ul) continue;
    u32 fd = w * 64 + (u32)__builtin_ctzl(~used);
    if (fd >= limit) return ACT_HOST; /* the host says EMFILE */
    SH64(SH_FD_BITMAP + w * 8) = used | (1ul << (fd % 64));
    SLOT(s, SLOT_GEN) = SH32(SH_DC_GEN);
    SLOT(s, SLOT_DIR) = DC32(e + DC_E_DIR);
    SLOT(s, SLOT_ENTRY) = e;
    SLOT(s, SLOT_BLOB) = DC32(e + DC_E_BLOB);
    SLOT(s, SLOT_BLOB_LEN) = DC32(e + DC_E_BLOB_LEN);
    SLOT(s, SLOT_POS) = 0;
    SLOT(s, SLOT_FLAGS) = (u32)flags;
    SLOT(s, SLOT_FDP1) = fd + 1;
    SH32(SH_SLOTS_DIRTY) = 1;
    SH32(SH_DC_OPENS) += 1;
    return ret_value(fd);
  }
  return ACT_HOST;
}

static int do_getdents(int s, u64 buf, u64 count) {
  u32 pos = SLOT(s, SLOT_POS), len = SLOT(s, SLOT_BLOB_LEN);
  if (pos >= len) return ret_value(0);
  u32 blob = SLOT(s, SLOT_BLOB);
  if (!current(s) || blob < DC_HEAP || blob > DCACHE_SIZE || len > DCACHE_SIZE - blob) return ACT_HOST;
  u64 n = 0;
  while (pos + n < len) {
    u32 reclen = DC16(blob + pos + n + DIRENT_RECLEN);
    if (reclen == 0 || pos + n + reclen > len) return ACT_HOST;
    if (n + reclen > count) break;
    n += reclen;
  }
  if (n == 0) return ret_value(-EINVAL);
  SLOT(s, SLOT_POS) = pos + (u32)n;
  return ret_copy(buf, DCACHE + blob + pos, n, (i64)n);
}

int stub_dir_call(void) {
  u64 nr = SH64(SH_SAVE_RAX), a0 = SH64(SH_SAVE_RDI), a1 = SH64(SH_SAVE_RSI), a2 = SH64(SH_SAVE_RDX),
      a3 = SH64(SH_SAVE_R10);
  i64 fd = (i64)(int)a0;
  int s;
  switch (nr) {
  case SYS_MMAP:
    return do_mmap(a0, a1, a2, a3, SH64(SH_SAVE_R9));
  case SYS_MUNMAP:
    return do_munmap(a0, a1);
  case SYS_OPENAT:
    return do_openat(a2);
  case SYS_GETDENTS64:
    s = slot_of(fd);
    return s < 0 ? ACT_HOST : do_getdents(s, a1, a2);
  case SYS_CLOSE:
    s = slot_of(fd);
    if (s < 0) return ACT_HOST;
    SLOT(s, SLOT_FDP1) = 0;
    SH64(SH_FD_BITMAP + (fd / 64) * 8) &= ~(1ul << (fd % 64));
    SH32(SH_SLOTS_DIRTY) = 1;
    return ret_value(0);
  case SYS_FSTAT:
    s = slot_of(fd);
    return s < 0 ? ACT_HOST : stat_of_slot(s, a1);
  case SYS_NEWFSTATAT: {
    const volatile char *path = (const volatile char *)(unsigned long)(PHYS_SHARED + SH_PATH);
    if (a3 == AT_EMPTY_PATH_VALUE && SH64(SH_SAVE_RSI) && path[0] == 0) {
      /* fstat through newfstatat(fd, "", buf, AT_EMPTY_PATH): stub.S copied the empty path */
      s = slot_of(fd);
      return s < 0 ? ACT_HOST : stat_of_slot(s, a2);
    }
    if (path[0] != '/' || (a3 != 0 && a3 != AT_SYMLINK_NOFOLLOW_VALUE)) return ACT_HOST;
    u32 e = lookup(path, a3 == 0);
    return e ? ret_copy(a2, DCACHE + e + DC_E_STAT, STAT_SIZE, 0) : ACT_HOST;
  }
  }
  return ACT_HOST;
}
