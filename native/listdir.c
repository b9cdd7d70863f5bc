/* kvmbox's host helper library, loaded through koffi by src/kvm/libc.ts: list a directory and
 * lstat each entry in a single call (and lstat the records of a listing the host served). Done
 * record by record through koffi, the same work cost twice the system calls' own time (measured:
 * docs/performance.md), and `find` over a large tree is mostly this work. Plain C on libc: no Node
 * API, no state. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdint.h>
#include "../kernel/include/abi.h"
#include "helper.h"

/* An entry's fixed part in the directory cache (src/fs/dir-cache.ts). */
#define DC_ENTRY_PATH DC_E_PATH

_Static_assert(sizeof(struct stat) == STAT_BYTES, "x86-64 struct stat is 144 bytes");

/* The struct stat of one record's name: fstat(fd) for ".", zeros for ".." and when the lstat fails. */
static void stat_name(int fd, const char *name, unsigned name_len, unsigned char *out) {
  struct stat *st = (struct stat *)out;
  int dots = name_len <= 2 && name[0] == '.' && (name_len == 1 || name[1] == '.') ? (int)name_len : 0;
  if (dots == 2 || (dots == 1 ? fstat(fd, st) : fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW)) < 0) memset(out, 0, STAT_BYTES);
}

/*
 * For each getdents64 record in dirents[0, len), up to the first malformed one (dirent_at): its
 * struct stat at stats + i*144 (lstat of the name relative to fd, fstat(fd) for "."), or zeros
 * for ".." and for a name whose lstat failed. stats holds len / DIRENT_MIN of them. Returns the
 * number of records.
 */
long kvmbox_stat_dirents(int fd, const unsigned char *dirents, unsigned long len, unsigned char *stats) {
  unsigned long i = 0, off = 0;
  const char *name;
  unsigned name_len, reclen;
  for (; (reclen = dirent_at(dirents, len, off, &name, &name_len)) != 0; off += reclen, i++)
    stat_name(fd, name, name_len, stats + i * STAT_BYTES);
  return (long)i;
}

/*
 * As kvmbox_stat_dirents, but taking each record's stat from an earlier listing of the same
 * directory (blob: its getdents64 records, lstats: their count stats, as kvmbox_list_dir made them)
 * where the record is the listing's next one (same inode and name): the host serves a directory
 * too big for the directory cache in chunks, in the order it was listed. cursor[0] and cursor[1]:
 * the offset and index of the listing's next record, moved along; a record that is not the next
 * one is stat'ed as kvmbox_stat_dirents would. Returns the number of records.
 */
long kvmbox_stat_dirents_from(int fd, const unsigned char *dirents, unsigned long len, unsigned char *stats,
                              const unsigned char *blob, unsigned long blob_len, const unsigned char *lstats,
                              unsigned long count, uint64_t *cursor) {
  unsigned long i = 0, off = 0;
  const char *name, *theirs;
  unsigned name_len, their_len, reclen, their_reclen;
  for (; (reclen = dirent_at(dirents, len, off, &name, &name_len)) != 0; off += reclen, i++) {
    unsigned long at = cursor[0];
    if (cursor[1] < count && (their_reclen = dirent_at(blob, blob_len, at, &theirs, &their_len)) != 0 &&
        memcmp(blob + at, dirents + off, 8) == 0 && their_len == name_len && memcmp(theirs, name, name_len) == 0) {
      memcpy(stats + i * STAT_BYTES, lstats + cursor[1] * STAT_BYTES, STAT_BYTES);
      cursor[0] = at + their_reclen;
      cursor[1]++;
    } else {
      stat_name(fd, name, name_len, stats + i * STAT_BYTES);
    }
  }
  return (long)i;
}

/*
 * Read directory fd from its position to its end. Into out (cap bytes): the getdents64 records
 * as the kernel returned them at [0, res[0]), then, at res[1] (8-aligned), one struct stat per
 * record in order: lstat of the name relative to fd, fstat(fd) for ".", zeros for "..". Owners
 * equal to in[1] (uid) / in[2] (gid) are shown as in[3] / in[4] (src/fs/identity.ts). res[2]:
 * the bytes the records' directory-cache entries take with a path prefix of in[0] bytes (as
 * src/fs/dir-cache.ts counts them); res[3]: the index of ".", or -1.
 * Returns the number of records, or -errno: -ENOSPC when out is too small, -EIO for a record
 * dirent_at refuses, or the error of a getdents64 or of an lstat (an entry that vanished meanwhile).
 */
long kvmbox_list_dir(int fd, unsigned char *out, unsigned long cap, const uint32_t *in, int64_t *res) {
  unsigned long used = 0;
  for (;;) {
    if (cap - used < 4096) return -ENOSPC;
    long n = syscall(SYS_getdents64, fd, out + used, cap - used);
    if (n < 0) return -errno;
    if (n == 0) break;
    used += (unsigned long)n;
  }
  unsigned long count = 0, off = 0;
  const char *name;
  unsigned name_len, reclen;
  for (; (reclen = dirent_at(out, used, off, &name, &name_len)) != 0; off += reclen, count++) {
    /* The kernel leaves a record's padding after the name as it was: zero it, as out is reused
     * and the records go to the guest (what it held before may be another program's listing). */
    unsigned end = DIRENT_NAME + name_len + 1;
    memset(out + off + end, 0, reclen - end);
  }
  if (off != used) return -EIO;
  unsigned long stats = (used + 7) & ~7ul;
  if (stats > cap || count > (cap - stats) / STAT_BYTES) return -ENOSPC;
  unsigned long i = 0;
  int64_t cost = 0, dot = -1;
  for (off = 0; (reclen = dirent_at(out, used, off, &name, &name_len)) != 0; off += reclen, i++) {
    struct stat *st = (struct stat *)(out + stats + i * STAT_BYTES);
    cost += (DC_ENTRY_PATH + in[0] + 1 + name_len + 1 + 7) & ~7l;
    if (name_len == 1 && name[0] == '.') dot = (int64_t)i;
    else if (name_len == 2 && name[0] == '.' && name[1] == '.') {
      memset(st, 0, STAT_BYTES);
      continue;
    }
    if ((dot == (int64_t)i ? fstat(fd, st) : fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW)) < 0) return -errno;
    if (st->st_uid == in[1]) st->st_uid = in[3];
    if (st->st_gid == in[2]) st->st_gid = in[4];
  }
  res[0] = (int64_t)used;
  res[1] = (int64_t)stats;
  res[2] = cost;
  res[3] = dot;
  return (long)count;
}
