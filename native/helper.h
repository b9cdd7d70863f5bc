/* What the host helper library's files share (src/kvm/libc.ts loads them as one library). */
#ifndef KVMBOX_HELPER_H
#define KVMBOX_HELPER_H
#include <stdint.h>
#include <string.h>

/* A getdents64 record: d_ino (8), d_off (8), d_reclen (2), d_type (1), then the name. */
#define DIRENT_RECLEN 16
#define DIRENT_TYPE 18
#define DIRENT_NAME 19
/* The smallest record: the fixed part and a one-byte name with its NUL, 8-aligned. */
#define DIRENT_MIN 24
/* x86-64 struct stat, as the guest and the directory cache hold it. */
#define STAT_BYTES 144

/*
 * The one parser of getdents64 records in the library. The record at buf[off, len): its length,
 * with its name and the name's length in *name and *name_len; or 0 when there is none or it is
 * malformed: shorter than DIRENT_MIN, not a multiple of 8 (the kernel 8-aligns them), past len,
 * a name that is empty, unterminated within the record or holds a '/'. The record length is read
 * once. Callers stop at the first 0, so every record a caller uses lies whole in buf, and no
 * more than len / DIRENT_MIN of them fit (what the callers size their outputs by).
 * The records must be in host memory: a caller copies records out of guest memory first, since
 * the name is read again (by strcmp, fstatat) after it was checked.
 */
static inline unsigned dirent_at(const unsigned char *buf, unsigned long len, unsigned long off, const char **name,
                                 unsigned *name_len) {
  uint16_t reclen;
  if (off >= len || len - off < DIRENT_MIN) return 0;
  memcpy(&reclen, buf + off + DIRENT_RECLEN, sizeof reclen);
  if (reclen < DIRENT_MIN || reclen % 8 != 0 || reclen > len - off) return 0;
  const char *n = (const char *)buf + off + DIRENT_NAME;
  const char *nul = memchr(n, 0, reclen - DIRENT_NAME);
  if (!nul || nul == n || memchr(n, '/', (size_t)(nul - n))) return 0;
  *name = n;
  *name_len = (unsigned)(nul - n);
  return reclen;
}

/* The library's entry points (src/kvm/libc.ts binds them; each is described where it is defined). */
long kvmbox_list_dir(int fd, unsigned char *out, unsigned long cap, const uint32_t *in, int64_t *res);
long kvmbox_stat_dirents(int fd, const unsigned char *dirents, unsigned long len, unsigned char *stats);
long kvmbox_stat_dirents_from(int fd, const unsigned char *dirents, unsigned long len, unsigned char *stats,
                              const unsigned char *blob, unsigned long blob_len, const unsigned char *lstats,
                              unsigned long count, uint64_t *cursor);
void kvmbox_branch_targets(const unsigned char *code, long len, unsigned char *marks);
long kvmbox_dc_add_entry(uint8_t *dcache, uint32_t heap, const char *path, uint32_t len, uint32_t kind, const uint8_t *st);
long kvmbox_dc_add_entries(uint8_t *dcache, uint32_t heap, const char *prefix, uint32_t prefix_len,
                           const uint8_t *blob, uint32_t blob_len, const uint8_t *stats, uint32_t count,
                           const uint8_t *dotdot, uint32_t *offsets);
struct kvmbox_pf;
struct kvmbox_pf *kvmbox_pf_start(int fd, const char *root_path, const char *resume, int sorted, const uint32_t *params,
                                  unsigned long cap, int64_t window);
void kvmbox_pf_window(struct kvmbox_pf *pf, int64_t window);
long kvmbox_pf_take(struct kvmbox_pf *pf, const char *path, unsigned char *out, unsigned long cap, int64_t *res);
void kvmbox_pf_stats(struct kvmbox_pf *pf, int64_t *out);
void kvmbox_pf_stop(struct kvmbox_pf *pf);
int kvmbox_signals_catch(uint64_t mask);
void kvmbox_signals_restore(uint64_t mask);
uint64_t kvmbox_signals_take(void);

#endif
