/* Hostile: file-system attacks, one operation per run: argv[1] = op, then paths. Prints "ok" and
 * what it read, or "errno=<name>". Ops: read P, write P, append P, creat P, trunc P, unlink P,
 * rmdir P, mkdir P, rename A B, chmod P, utimes P, symlink TARGET LINK, link A B, list D,
 * readlink P, loop N P (open+read P N times, print any content that differs from the first). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static const char *errname(int e) {
  switch (e) {
  case ENOENT: return "ENOENT"; case EACCES: return "EACCES"; case EROFS: return "EROFS";
  case EPERM: return "EPERM"; case EXDEV: return "EXDEV"; case ENOTDIR: return "ENOTDIR";
  case EISDIR: return "EISDIR"; case EEXIST: return "EEXIST"; case ELOOP: return "ELOOP";
  case EINVAL: return "EINVAL"; case EBADF: return "EBADF"; case ENOTEMPTY: return "ENOTEMPTY";
  case EBUSY: return "EBUSY"; case ENOSYS: return "ENOSYS"; default: return "other";
  }
}

static int report(int r) {
  if (r < 0) { printf("errno=%s\n", errname(errno)); return 1; }
  printf("ok\n");
  return 0;
}

static int read_all(const char *p, char *out, size_t n) {
  int fd = open(p, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t r = read(fd, out, n - 1);
  close(fd);
  if (r < 0) return -1;
  out[r] = 0;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *op = argv[1], *a = argv[2], *b = argc > 3 ? argv[3] : "";
  char buf[4096];
  if (!strcmp(op, "read")) {
    if (read_all(a, buf, sizeof buf) < 0) return report(-1);
    printf("ok content=%s\n", buf);
    return 0;
  }
  if (!strcmp(op, "write")) { int fd = open(a, O_WRONLY); if (fd >= 0) write(fd, "pwned\n", 6); return report(fd); }
  if (!strcmp(op, "append")) { int fd = open(a, O_WRONLY | O_APPEND); if (fd >= 0) write(fd, "pwned\n", 6); return report(fd); }
  if (!strcmp(op, "creat")) { int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644); if (fd >= 0) write(fd, "pwned\n", 6); return report(fd); }
  if (!strcmp(op, "trunc")) return report(truncate(a, 0));
  if (!strcmp(op, "unlink")) return report(unlink(a));
  if (!strcmp(op, "rmdir")) return report(rmdir(a));
  if (!strcmp(op, "mkdir")) return report(mkdir(a, 0755));
  if (!strcmp(op, "rename")) return report(rename(a, b));
  if (!strcmp(op, "chmod")) return report(chmod(a, 0777));
  if (!strcmp(op, "utimes")) return report(utimes(a, NULL));
  if (!strcmp(op, "symlink")) return report(symlink(a, b));
  if (!strcmp(op, "link")) return report(link(a, b));
  if (!strcmp(op, "readlink")) { ssize_t n = readlink(a, buf, sizeof buf - 1); if (n >= 0) { buf[n] = 0; printf("ok target=%s\n", buf); return 0; } return report(-1); }
  if (!strcmp(op, "list")) {
    DIR *d = opendir(a);
    if (!d) return report(-1);
    struct dirent *e;
    while ((e = readdir(d))) printf("%s\n", e->d_name);
    closedir(d);
    return 0;
  }
  if (!strcmp(op, "loop")) {
    int n = atoi(a), odd = 0;
    char first[4096] = "", cur[4096];
    for (int i = 0; i < n; i++) {
      if (read_all(b, cur, sizeof cur) < 0) continue;
      if (!first[0]) strcpy(first, cur);
      else if (strcmp(first, cur) && odd++ < 3) printf("different: %s\n", cur);
    }
    printf("first=%s", first);
    return 0;
  }
  return 2;
}
