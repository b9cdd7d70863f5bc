/* The stub's caches must never show stale or foreign data. argv[1] = a directory in a --rw grant,
 * argv[2] = a regular file of more than 8 KiB. Each check prints "ok NAME" or "FAIL NAME: ...";
 * exit status = failures. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;
#define CHECK(name, cond, ...) do { if (cond) printf("ok %s\n", name); else { printf("FAIL %s: ", name); printf(__VA_ARGS__); printf("\n"); failures++; } } while (0)
#define KERNEL ((void *)0xffffffff80020000UL)

static void list(const char *dir) {
  DIR *d = opendir(dir);
  while (d && readdir(d)) {}
  if (d) closedir(d);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  char f[4096], g[4096];
  snprintf(f, sizeof f, "%s/f", argv[1]);
  snprintf(g, sizeof g, "%s/g", argv[1]);
  int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  write(fd, "12345", 5);
  close(fd);
  struct stat st;

  list(argv[1]);
  CHECK("listed-stat", lstat(f, &st) == 0 && st.st_size == 5 && (st.st_mode & 0777) == 0644, "size %ld mode %o", (long)st.st_size, st.st_mode);
  chmod(f, 0600);
  CHECK("stat-after-chmod", lstat(f, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o", st.st_mode);

  list(argv[1]);
  fd = open(f, O_WRONLY | O_APPEND);
  write(fd, "678", 3);
  CHECK("stat-after-write", lstat(f, &st) == 0 && st.st_size == 8, "size %ld", (long)st.st_size);
  close(fd);

  list(argv[1]);
  rename(f, g);
  CHECK("stat-after-rename-old", lstat(f, &st) == -1 && errno == ENOENT, "errno %d", errno);
  CHECK("stat-after-rename-new", lstat(g, &st) == 0 && st.st_size == 8, "size %ld", (long)st.st_size);

  /* Absolute paths the program stats are remembered too, separately for stat and lstat. */
  char l[4096];
  snprintf(l, sizeof l, "%s/link", argv[1]);
  symlink(g, l);
  struct stat st2;
  for (int i = 0; i < 2; i++) {
    CHECK(i ? "stat-follow-again" : "stat-follow", stat(l, &st) == 0 && S_ISREG(st.st_mode), "mode %o", st.st_mode);
    CHECK(i ? "lstat-nofollow-again" : "lstat-nofollow", lstat(l, &st2) == 0 && S_ISLNK(st2.st_mode), "mode %o", st2.st_mode);
  }
  chmod(g, 0640);
  CHECK("stat-follow-after-chmod", stat(l, &st) == 0 && (st.st_mode & 0777) == 0640, "mode %o", st.st_mode);

  list(argv[1]);
  CHECK("cached-stat-bad-buffer", syscall(SYS_newfstatat, AT_FDCWD, g, KERNEL, AT_SYMLINK_NOFOLLOW) == -1 && errno == EFAULT, "errno %d", errno);
  CHECK("cached-stat-bad-path", syscall(SYS_newfstatat, AT_FDCWD, KERNEL, &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == EFAULT, "errno %d", errno);
  CHECK("stat-after-faults", lstat(g, &st) == 0 && st.st_size == 8, "size %ld", (long)st.st_size);

  /* Read-ahead: reads interleaved with lseek and pread keep the offsets Linux gives. */
  int rf = open(argv[2], O_RDONLY);
  char a[4096], b[4096], c[4096];
  read(rf, a, sizeof a);                   /* fills the cache */
  read(rf, b, 100);                        /* from the cache */
  pread(rf, c, 100, 4096);                 /* host: must not disturb the offset */
  CHECK("readahead-pread", memcmp(b, c, 100) == 0, "pread differs");
  CHECK("readahead-offset", lseek(rf, 0, SEEK_CUR) == 4196, "offset %ld", (long)lseek(rf, 0, SEEK_CUR));
  lseek(rf, 10, SEEK_SET);
  read(rf, b, 10);
  CHECK("readahead-after-seek", memcmp(b, a + 10, 10) == 0, "data after lseek differs");
  int rf2 = dup(rf);
  read(rf, a, sizeof a);                   /* fills the cache again (offset 20) */
  read(rf2, b, 10);                        /* through the dup: shares the offset */
  pread(rf, c, 10, 20 + sizeof a);
  CHECK("readahead-dup-shares-offset", memcmp(b, c, 10) == 0, "dup read differs");
  printf("failures=%d\n", failures);
  return failures;
}
