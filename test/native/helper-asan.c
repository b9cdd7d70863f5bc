/* The host helper library's entry points (native/) on real directories and on hostile input,
 * built with the library as one program under AddressSanitizer and UndefinedBehaviorSanitizer
 * (`make -C native asan`; test/native.test.ts runs it). Every buffer handed to the library is a
 * heap block of exactly the size the caller's contract gives (src/kvm/libc.ts), so any read or
 * write past it stops the program with a sanitizer report.
 *
 *   helper-asan DIR   DIR: an empty scratch directory, filled here
 *
 * Prints "ok N checks" and exits 0; prints each failed check and exits 1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../../kernel/include/abi.h"
#include "../../native/helper.h"

/* native/prefetch.c's limit of levels, and what kvmbox_pf_take returns for a miss. */
#define PF_MAX_DEPTH 64
#define PF_MISS (-100000L)
/* A chain of directories well past the prefetcher's limit. */
#define DEEP 150
#define CAP (4u << 20)

static int checks, failures;
#define CHECK(cond, ...)                              \
  do {                                                \
    checks++;                                         \
    if (!(cond)) {                                    \
      failures++;                                     \
      printf("FAIL line %d: ", __LINE__);             \
      printf(__VA_ARGS__);                            \
      printf("\n");                                   \
    }                                                 \
  } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A heap block of exactly n bytes (at least one, so that a zero-length one is still a block). */
static unsigned char *block(size_t n) {
  unsigned char *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

static unsigned char *copy(const void *src, size_t n) {
  unsigned char *p = block(n);
  memcpy(p, src, n);
  return p;
}

static void mkfile(int dir, const char *name) {
  int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, name, 1) != 1) abort();
  close(fd);
}

static int mkdir_open(int dir, const char *name) {
  if (mkdirat(dir, name, 0755) != 0 && errno != EEXIST) abort();
  int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) abort();
  return fd;
}

/* DIR/t: top-level directories a..c with a few files and subdirectories each, a chain DIR/t/deep/d/d/...
 * DEEP levels down with a file and a sibling at every level, a long name, and a big directory. */
static void build_tree(int base) {
  int t = mkdir_open(base, "t");
  for (const char *top = "abc"; *top; top++) {
    char name[2] = {*top, 0};
    int d = mkdir_open(t, name);
    for (int i = 0; i < 3; i++) {
      char sub[16];
      snprintf(sub, sizeof sub, "s%d", i);
      close(mkdir_open(d, sub));
      snprintf(sub, sizeof sub, "f%d", i);
      mkfile(d, sub);
    }
    close(d);
  }
  int d = mkdir_open(t, "deep");
  for (int level = 0; level < DEEP; level++) {
    mkfile(d, "file");
    close(mkdir_open(d, "e"));
    int next = mkdir_open(d, "d");
    close(d);
    d = next;
  }
  close(d);
  char long_name[256];
  memset(long_name, 'L', 255);
  long_name[255] = 0;
  mkfile(t, long_name);
  int big = mkdir_open(t, "big");
  for (int i = 0; i < 3000; i++) {
    char name[64];
    snprintf(name, sizeof name, "a-rather-long-file-name-number-%d", i);
    mkfile(big, name);
  }
  close(big);
  close(t);
}

/* ---- getdents64 records by hand ---- */

/* Append a record to buf at *off: reclen as given (0: the right one), name copied as is. */
static void put_record(unsigned char *buf, size_t *off, uint64_t ino, const char *name, size_t name_len, uint16_t reclen) {
  uint16_t right = (uint16_t)((DIRENT_NAME + name_len + 1 + 7) & ~7u);
  if (!reclen) reclen = right;
  memset(buf + *off, 0, right > reclen ? right : reclen);
  memcpy(buf + *off, &ino, 8);
  memcpy(buf + *off + DIRENT_RECLEN, &reclen, 2);
  buf[*off + DIRENT_TYPE] = DT_UNKNOWN;
  memcpy(buf + *off + DIRENT_NAME, name, name_len);
  *off += reclen;
}

/* kvmbox_stat_dirents over exactly len bytes of records, with exactly the stats its contract
 * asks for (len / DIRENT_MIN of them). Returns the record count. */
static long stat_dirents(int fd, const unsigned char *recs, size_t len) {
  unsigned char *d = copy(recs, len);
  unsigned char *stats = block(len / DIRENT_MIN * STAT_BYTES);
  long n = kvmbox_stat_dirents(fd, d, len, stats);
  CHECK(n >= 0 && (size_t)n <= len / DIRENT_MIN, "stat_dirents: %ld records in %zu bytes", n, len);
  free(d);
  free(stats);
  return n;
}

static void hostile_records(int dir) {
  unsigned char buf[4096];
  size_t off;
  struct stat want;

  /* A good record, then variations of it. */
  off = 0;
  put_record(buf, &off, 1, "f0", 2, 0);
  CHECK(stat_dirents(dir, buf, off) == 1, "one good record");
  {
    unsigned char *d = copy(buf, off), *stats = block(STAT_BYTES);
    CHECK(kvmbox_stat_dirents(dir, d, off, stats) == 1 && fstatat(dir, "f0", &want, AT_SYMLINK_NOFOLLOW) == 0 &&
              memcmp(stats, &want, STAT_BYTES) == 0,
          "the stat of a good record is the name's lstat");
    free(d);
    free(stats);
  }
  /* Short records: reclen 20 (the old parser took them) and anything under 24. */
  for (uint16_t r = 0; r < DIRENT_MIN; r++) {
    off = 0;
    put_record(buf, &off, 1, "x", 1, 24);
    memcpy(buf + DIRENT_RECLEN, &r, 2);
    CHECK(stat_dirents(dir, buf, 48) == 0, "reclen %u refused", r);
  }
  /* Misaligned lengths, lengths past the buffer, the largest length. */
  for (uint16_t r = 25; r < 40; r++) {
    if (r % 8 == 0) continue;
    off = 0;
    put_record(buf, &off, 1, "x", 1, 24);
    memcpy(buf + DIRENT_RECLEN, &r, 2);
    CHECK(stat_dirents(dir, buf, 64) == 0, "misaligned reclen %u refused", r);
  }
  off = 0;
  put_record(buf, &off, 1, "f0", 2, 0);
  CHECK(stat_dirents(dir, buf, off - 8) == 0, "a record past the buffer's end refused");
  uint16_t huge = 0xfff8;
  memcpy(buf + DIRENT_RECLEN, &huge, 2);
  CHECK(stat_dirents(dir, buf, 4096) == 0, "reclen 0xfff8 past the buffer refused");
  /* Lengths shorter than any record. */
  for (size_t len = 0; len < DIRENT_MIN; len++) CHECK(stat_dirents(dir, buf, len) == 0, "%zu bytes: no record", len);
  /* A name with no NUL within its record, an empty name, names with '/'. */
  off = 0;
  put_record(buf, &off, 1, "abcdefgh", 8, 0);
  memset(buf + DIRENT_NAME, 'a', 24 - DIRENT_NAME + 8);
  memset(buf + off, 'z', 64);
  CHECK(stat_dirents(dir, buf, off + 64) == 0, "an unterminated name refused");
  off = 0;
  put_record(buf, &off, 1, "", 0, 0);
  CHECK(stat_dirents(dir, buf, off) == 0, "an empty name refused");
  static const char *const slashed[] = {"/", "a/b", "../t", "/etc/passwd", "s0/", "../../../../../../../../etc/shadow"};
  for (size_t i = 0; i < sizeof slashed / sizeof *slashed; i++) {
    off = 0;
    put_record(buf, &off, 1, "f0", 2, 0);
    put_record(buf, &off, 2, slashed[i], strlen(slashed[i]), 0);
    put_record(buf, &off, 3, "f1", 2, 0);
    CHECK(stat_dirents(dir, buf, off) == 1, "a name with '/' (%s) ends the records", slashed[i]);
  }
  /* ".." gets zeros, "." the directory's own stat. */
  off = 0;
  put_record(buf, &off, 1, ".", 1, 0);
  put_record(buf, &off, 2, "..", 2, 0);
  {
    unsigned char *d = copy(buf, off), *stats = block(2 * STAT_BYTES), zero[STAT_BYTES] = {0};
    CHECK(kvmbox_stat_dirents(dir, d, off, stats) == 2 && fstat(dir, &want) == 0 && memcmp(stats, &want, STAT_BYTES) == 0 &&
              memcmp(stats + STAT_BYTES, zero, STAT_BYTES) == 0,
          "'.' is fstat, '..' zeros");
    free(d);
    free(stats);
  }
  /* Random bytes and random mutations of good records: whatever they hold, nothing is touched
   * outside the buffers. */
  for (int round = 0; round < 4000; round++) {
    size_t len = rnd() % 512;
    off = 0;
    while (off + 64 < sizeof buf && off < len) put_record(buf, &off, rnd(), "s1", 2, 0);
    for (int k = rnd() % 8; k >= 0; k--) buf[rnd() % (len + 1)] = (unsigned char)rnd();
    if (round % 4 == 0)
      for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)rnd();
    stat_dirents(dir, buf, len);
  }
}

/* ---- listings ---- */

struct listing {
  long count;
  int64_t res[4];
  unsigned char *out;
};

static struct listing list_path(int base, const char *rel, unsigned long cap) {
  struct listing l = {0};
  uint32_t in[5] = {(uint32_t)strlen(rel), 0, 0, 0, 0};
  int fd = openat(base, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) abort();
  l.out = block(cap);
  l.count = kvmbox_list_dir(fd, l.out, cap, in, l.res);
  close(fd);
  return l;
}

static void listings(int base) {
  /* Small buffers: ENOSPC, never a write past them. */
  for (unsigned long cap = 0; cap < 9000; cap += 1000) {
    struct listing l = list_path(base, "t/big", cap);
    CHECK(l.count == -ENOSPC, "big directory in %lu bytes: %ld", cap, l.count);
    free(l.out);
  }
  struct listing l = list_path(base, "t/big", CAP);
  CHECK(l.count == 3002, "big directory: %ld records", l.count);
  /* The records fill the buffer exactly up to the stats: just too small for the stats. */
  unsigned long need = (unsigned long)l.res[1] + (unsigned long)l.count * STAT_BYTES;
  struct listing tight = list_path(base, "t/big", need - 1);
  CHECK(tight.count == -ENOSPC, "one byte short: %ld", tight.count);
  free(tight.out);
  struct listing exact = list_path(base, "t/big", need + 4096);
  CHECK(exact.count == 3002, "room to spare: %ld", exact.count);
  free(exact.out);

  /* Records read back in chunks, stat'ed from the listing (the big-directory path), and the
   * listing or the chunks mangled. */
  int fd = openat(base, "t/big", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) abort();
  unsigned long blob_len = (unsigned long)l.res[0];
  unsigned char *blob = copy(l.out, blob_len), *lstats = copy(l.out + l.res[1], (size_t)l.count * STAT_BYTES);
  for (int pass = 0; pass < 3; pass++) {
    uint64_t cursor[2] = {0, 0};
    if (pass == 2) {
      cursor[0] = ~0ull;
      cursor[1] = ~0ull >> 1;
    }
    long total = 0;
    lseek(fd, 0, SEEK_SET);
    unsigned char chunk[8192];
    for (long n; (n = syscall(SYS_getdents64, fd, chunk, sizeof chunk)) > 0;) {
      if (pass == 1) chunk[rnd() % (unsigned long)n] ^= (unsigned char)(1 + rnd() % 255);
      unsigned char *d = copy(chunk, (size_t)n), *stats = block((size_t)n / DIRENT_MIN * STAT_BYTES);
      long k = kvmbox_stat_dirents_from(fd, d, (unsigned long)n, stats, blob, blob_len, lstats, (unsigned long)l.count, cursor);
      CHECK(k >= 0 && k <= n / DIRENT_MIN, "stat_dirents_from: %ld", k);
      total += k;
      free(d);
      free(stats);
    }
    if (pass == 0) CHECK(total == l.count && cursor[1] == (uint64_t)l.count, "every record from the listing: %ld", total);
  }
  /* A mangled listing. */
  for (int round = 0; round < 200; round++) {
    uint64_t cursor[2] = {rnd() % blob_len, rnd() % (unsigned long)l.count};
    blob[rnd() % blob_len] = (unsigned char)rnd();
    lseek(fd, 0, SEEK_SET);
    unsigned char chunk[4096];
    long n = syscall(SYS_getdents64, fd, chunk, sizeof chunk);
    unsigned char *d = copy(chunk, (size_t)n), *stats = block((size_t)n / DIRENT_MIN * STAT_BYTES);
    kvmbox_stat_dirents_from(fd, d, (unsigned long)n, stats, blob, blob_len, lstats, (unsigned long)l.count, cursor);
    free(d);
    free(stats);
  }
  close(fd);
  free(blob);
  free(lstats);

  /* Every level of the deep chain lists, with its stats. */
  char path[8 * DEEP];
  strcpy(path, "t/deep");
  for (int level = 0; level < DEEP; level++) {
    struct listing d = list_path(base, path, 64 * 1024);
    CHECK(d.count == 5, "%s: %ld records", path, d.count);
    free(d.out);
    strcat(path, "/d");
  }
  free(l.out);
}

/* ---- the directory cache writer ---- */

static void dcache_writer(int base) {
  struct listing l = list_path(base, "t/a", 64 * 1024);
  CHECK(l.count == 8, "t/a: %ld records", l.count);
  uint32_t blob_len = (uint32_t)l.res[0];
  unsigned char *blob = copy(l.out, blob_len);
  unsigned char *stats = copy(l.out + l.res[1], (size_t)l.count * STAT_BYTES);
  uint8_t *dcache = block(DCACHE_SIZE);
  memset(dcache, 0, DCACHE_SIZE);
  uint32_t *offsets = (uint32_t *)block((size_t)l.count * 4);
  long end = kvmbox_dc_add_entries(dcache, DC_HEAP, "/t/a", 4, blob, blob_len, stats, (uint32_t)l.count, NULL, offsets);
  CHECK(end > DC_HEAP, "entries added: %ld", end);
  /* Near the end of DCACHE, and paths too long for SH_PATH_MAX: refused, nothing written past. */
  for (uint32_t heap = DCACHE_SIZE - DC_E_PATH - SH_PATH_MAX - 64; heap < DCACHE_SIZE; heap += 8) {
    long r = kvmbox_dc_add_entries(dcache, heap, "/t/a", 4, blob, blob_len, stats, (uint32_t)l.count, NULL, offsets);
    CHECK(r <= 0 || (unsigned long)r <= DCACHE_SIZE, "heap %u: %ld", heap, r);
    char path[SH_PATH_MAX + 8];
    memset(path, 'p', sizeof path);
    r = kvmbox_dc_add_entry(dcache, heap, path, SH_PATH_MAX / 2, 0, stats);
    CHECK(r <= 0 || (unsigned long)r <= DCACHE_SIZE, "entry at heap %u: %ld", heap, r);
  }
  char long_prefix[SH_PATH_MAX + 64];
  memset(long_prefix, 'q', sizeof long_prefix);
  CHECK(kvmbox_dc_add_entries(dcache, DC_HEAP, long_prefix, sizeof long_prefix, blob, blob_len, stats, (uint32_t)l.count, NULL, offsets) == -DC_HEAP,
        "a prefix past SH_PATH_MAX adds nothing");
  for (uint32_t len = SH_PATH_MAX - 1; len < SH_PATH_MAX + 8; len++)
    CHECK(kvmbox_dc_add_entry(dcache, DC_HEAP, long_prefix, len, 0, stats) == -DC_HEAP, "a path of %u bytes refused", len);
  /* Mangled records, and a count far above the records there are (stats and offsets sized for it). */
  enum { MANY = 4096 };
  unsigned char *many_stats = block((size_t)MANY * STAT_BYTES);
  memset(many_stats, 0x41, (size_t)MANY * STAT_BYTES);
  uint32_t *many_offsets = (uint32_t *)block(MANY * 4);
  for (int round = 0; round < 2000; round++) {
    unsigned char *b = copy(blob, blob_len);
    for (int k = rnd() % 6; k >= 0; k--) b[rnd() % blob_len] = (unsigned char)rnd();
    uint32_t len = (uint32_t)(rnd() % (blob_len + 1));
    long r = kvmbox_dc_add_entries(dcache, DC_HEAP, "/t/a", 4, b, len, many_stats, MANY, many_stats, many_offsets);
    CHECK(r < 0 ? -r >= DC_HEAP : r >= DC_HEAP && r <= DCACHE_SIZE, "mangled records: %ld", r);
    free(b);
  }
  free(many_stats);
  free(many_offsets);
  free(offsets);
  free(dcache);
  free(blob);
  free(stats);
  free(l.out);
}

/* ---- branch targets ---- */

static void branches(void) {
  for (int round = 0; round < 3000; round++) {
    long len = round < 16 ? round : (long)(rnd() % 4096);
    unsigned char *code = block((size_t)len), *marks = block((size_t)len + 1);
    for (long i = 0; i < len; i++) code[i] = (unsigned char)(rnd() % 4 == 0 ? 0xe8 + rnd() % 2 : rnd());
    for (long i = 0; i <= len; i++) marks[i] = rnd() % 3 == 0;
    kvmbox_branch_targets(code, len, marks);
    free(code);
    free(marks);
  }
  unsigned char code[2] = {0xeb, 0xfe}, marks[3] = {1, 0, 1};
  unsigned char *c = copy(code, 2), *m = copy(marks, 3);
  kvmbox_branch_targets(c, 2, m);
  CHECK(m[0] == 2 && m[2] == 1, "jmp $ marks offset 0");
  free(c);
  free(m);
}

/* ---- the prefetcher ---- */

struct paths {
  char **at;
  size_t n, cap;
};

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The directories below rel (relative to base), rel first, depth first, siblings sorted by name. */
static void walk_order(int base, const char *rel, struct paths *out) {
  if (out->n == out->cap) {
    out->at = realloc(out->at, (out->cap = out->cap * 2 + 64) * sizeof *out->at);
    if (!out->at) abort();
  }
  out->at[out->n++] = strdup(rel);
  int fd = openat(base, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) abort();
  DIR *d = fdopendir(fd);
  char **names = NULL;
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    names = realloc(names, (n + 1) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (n > 1) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    char *child;
    if (asprintf(&child, "%s/%s", rel, names[i]) < 0) abort();
    walk_order(base, child, out);
    free(child);
    free(names[i]);
  }
  free(names);
}

static int depth_of(const char *rel) {
  int n = 0;
  for (; *rel; rel++) n += *rel == '/';
  return n;
}

static void prefetcher(int base, const char *dir) {
  struct paths order = {0};
  walk_order(base, "t", &order);
  CHECK(order.n > DEEP + 12, "%zu directories", order.n);
  uint32_t params[5] = {0, 0, 0, 0, 0};
  int root = openat(base, "t", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) abort();
  char *root_path;
  if (asprintf(&root_path, "%s/t", dir) < 0) abort();

  /* The whole walk, taken in order: every directory down to the limit from the prefetcher, as
   * kvmbox_list_dir lists it; below the limit, a listing or a miss; the walk goes on after the
   * deep chain. */
  struct kvmbox_pf *pf = kvmbox_pf_start(root, root_path, "", 1, params, CAP, 1 << 30);
  CHECK(pf != NULL, "pf_start");
  unsigned char *out = block(CAP);
  int64_t res[4];
  size_t hits = 0, deep_misses = 0;
  for (size_t i = 0; pf && i < order.n; i++) {
    char *path;
    if (asprintf(&path, "%s/%s", dir, order.at[i]) < 0) abort();
    long rc = kvmbox_pf_take(pf, path, out, CAP, res);
    int depth = depth_of(order.at[i]); /* levels below t */
    if (rc == PF_MISS) {
      CHECK(depth > PF_MAX_DEPTH, "%s (depth %d) missed", order.at[i], depth);
      deep_misses++;
    } else {
      struct listing want = list_path(base, order.at[i], CAP);
      CHECK(rc == want.count && res[0] == want.res[0] && memcmp(out, want.out, (size_t)want.res[0]) == 0,
            "%s: the prefetcher's listing (%ld records) is kvmbox_list_dir's (%ld)", order.at[i], rc, want.count);
      free(want.out);
      hits++;
    }
    free(path);
  }
  CHECK(hits > PF_MAX_DEPTH && deep_misses > 0, "%zu listings, %zu misses below the limit", hits, deep_misses);
  if (pf) {
    char *after;
    if (asprintf(&after, "%s/t/c/s2", dir) < 0) abort();
    CHECK(kvmbox_pf_take(pf, after, out, CAP, res) == PF_MISS, "nothing after the walk");
    free(after);
    kvmbox_pf_stop(pf);
  }

  /* Resuming deep in the chain, at and past the limit; at hostile resume paths. */
  char resume[8 * DEEP] = "deep";
  for (int level = 1; level < DEEP; level++) {
    strcat(resume, "/d");
    if (level % 7 && level != PF_MAX_DEPTH - 1 && level != PF_MAX_DEPTH && level != PF_MAX_DEPTH + 1) continue;
    pf = kvmbox_pf_start(root, root_path, resume, level % 2, params, CAP, 1 << 30);
    CHECK(pf != NULL, "pf_start at %s", resume);
    if (!pf) continue;
    char *path;
    if (asprintf(&path, "%s/t/%s", dir, resume) < 0) abort();
    long rc = kvmbox_pf_take(pf, path, out, CAP, res);
    /* The walk holds a frame per level down to where it resumes: from the limit on, a miss. */
    CHECK(rc == 5 || (rc == PF_MISS && level + 1 >= PF_MAX_DEPTH), "resume at depth %d: %ld", level + 1, rc);
    free(path);
    kvmbox_pf_stop(pf);
  }
  char long_name[400];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = 0;
  const char *hostile[] = {"..", "../..", "/", "//", "a//s0", "a/../..", "deep/d/../../..", "nothere", "a/f0", long_name, "big"};
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    pf = kvmbox_pf_start(root, root_path, hostile[i], 0, params, CAP, 0);
    if (!pf) continue;
    char *path;
    if (asprintf(&path, "%s/t/..", dir) < 0) abort();
    CHECK(kvmbox_pf_take(pf, path, out, CAP, res) == PF_MISS, "resume %s: nothing above the root", hostile[i]);
    free(path);
    kvmbox_pf_stop(pf);
  }
  /* Stopped at once, and with a tiny cap (listings that do not fit are misses). */
  for (int round = 0; round < 20; round++) {
    pf = kvmbox_pf_start(root, root_path, "", round % 2, params, round % 3 ? CAP : 8192, round % 4 ? 1 << 30 : 0);
    if (!pf) continue;
    if (round % 5 == 0) {
      char *path;
      if (asprintf(&path, "%s/t/big", dir) < 0) abort();
      kvmbox_pf_take(pf, path, out, 4096, res);
      free(path);
    }
    kvmbox_pf_stop(pf);
  }
  close(root);
  free(root_path);
  free(out);
  for (size_t i = 0; i < order.n; i++) free(order.at[i]);
  free(order.at);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: helper-asan DIR (an empty scratch directory)\n");
    return 2;
  }
  int base = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (base < 0) {
    perror(argv[1]);
    return 2;
  }
  build_tree(base);
  int a = openat(base, "t/a", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (a < 0) abort();
  hostile_records(a);
  close(a);
  listings(base);
  dcache_writer(base);
  branches();
  prefetcher(base, argv[1]);
  close(base);
  printf("%s %d checks\n", failures ? "FAILED" : "ok", checks);
  return failures != 0;
}
