/* What the host helper library's files share (src/kvm/libc.ts loads them as one library). */
#ifndef KVMBOX_HELPER_H
#define KVMBOX_HELPER_H
#include <stdint.h>

/* A getdents64 record: d_ino (8), d_off (8), d_reclen (2), d_type (1), then the name. */
#define DIRENT_RECLEN 16
#define DIRENT_TYPE 18
#define DIRENT_NAME 19
/* x86-64 struct stat, as the guest and the directory cache hold it. */
#define STAT_BYTES 144

long kvmbox_list_dir(int fd, unsigned char *out, unsigned long cap, const uint32_t *in, int64_t *res);

#endif
