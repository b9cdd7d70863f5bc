/* Directory descriptors and anonymous mappings that kvmbox's user-mode stub may serve itself
 * (src/fs/dir-cache.ts, src/linux/map-pool.ts): the program must not be able to tell.
 *   dircache walk DIR        print every path below DIR with its lstat (and each directory's ..)
 *   dircache checks DIR FILE descriptor semantics on directories below DIR, and mmap reuse;
 *                            prints "failures=N"
 *   dircache walkmk DIR AT NEW [DEPTH]  walk DIR; after AT, make directory NEW (with a file in
 *                            it), and DEPTH directories NEW/d/d/... below it
 *   dircache padding DIR     the getdents64 records of DIR, each subdirectory's too: count the
 *                            bytes after a name's NUL that are not zero ("padding=N")
 * Run natively, traced and untraced, the output must be the same (owners are not printed). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;
#define CHECK(name, cond)                                                          \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      printf("FAIL %s (line %d, errno %d)\n", name, __LINE__, errno);              \
      failures++;                                                                  \
    }                                                                              \
  } while (0)

/* walkmk: where in the walk to make a directory, its path, and how deep a chain below it */
static const char *make_at, *make_new;
static int make_depth;

static void make_dir(const char *path) {
  char file[4096];
  if (mkdir(path, 0755) != 0) printf("mkdir errno %d\n", errno);
  snprintf(file, sizeof file, "%s/made", path);
  int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0 || write(fd, "new\n", 4) != 4 || close(fd) != 0) printf("create errno %d\n", errno);
  snprintf(file, sizeof file, "%s", path);
  for (int i = 0; i < make_depth; i++) {
    size_t n = strlen(file);
    snprintf(file + n, sizeof file - n, "/d");
    if (mkdir(file, 0755) != 0) {
      printf("mkdir depth %d errno %d\n", i + 1, errno);
      break;
    }
  }
  printf("-- made %s\n", path);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void walk(const char *path) {
  struct stat st, up;
  char dotdot[4096];
  DIR *d = opendir(path);
  if (!d) {
    printf("%s: opendir errno %d\n", path, errno);
    return;
  }
  snprintf(dotdot, sizeof dotdot, "%s/..", path);
  if (lstat(dotdot, &up) == 0) printf("%s ino=%lu nlink=%lu\n", dotdot, (unsigned long)up.st_ino, (unsigned long)up.st_nlink);
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    names = realloc(names, (n + 1) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp);
  for (size_t i = 0; i < n; i++) {
    char child[4096];
    if (!strcmp(names[i], "..")) continue;
    snprintf(child, sizeof child, "%s/%s", path, names[i]);
    if (lstat(child, &st) != 0) {
      printf("%s: lstat errno %d\n", child, errno);
      continue;
    }
    printf("%s mode=%o size=%ld nlink=%lu ino=%lu\n", child, st.st_mode, (long)st.st_size, (unsigned long)st.st_nlink,
           (unsigned long)st.st_ino);
    if (S_ISDIR(st.st_mode) && strcmp(names[i], ".")) walk(child);
    if (make_at && !strcmp(child, make_at)) make_dir(make_new);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* Every name in a directory through getdents64 with a small buffer, from fd's position. */
static int names_from(int fd, char *out, size_t cap, int bufsize) {
  char buf[4096];
  int count = 0;
  size_t used = strlen(out);
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, bufsize);
    if (n <= 0) return n < 0 ? -1 : count;
    for (long off = 0; off < n;) {
      struct dirent64 *de = (struct dirent64 *)(buf + off);
      used += snprintf(out + used, cap - used, "%s/", de->d_name);
      count++;
      off += de->d_reclen;
    }
  }
}

static void checks(const char *dir, const char *file) {
  char sub[4096], all[65536] = "", split[65536] = "";
  struct stat st, lst;
  snprintf(sub, sizeof sub, "%s/a", dir);

  /* Descriptor numbers: lowest free, shared with the host's own. */
  int a = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int f = open(file, O_RDONLY);
  CHECK("dir fd is lowest", a == 3);
  CHECK("file fd after dir", f == 4);
  close(a);
  int b = open(dir, O_RDONLY | O_DIRECTORY);
  CHECK("reused lowest fd", b == 3);
  close(b);

  /* fstat, flags, getdents64 argument checks. */
  a = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK("fstat", fstat(a, &st) == 0 && lstat(sub, &lst) == 0 && st.st_ino == lst.st_ino && S_ISDIR(st.st_mode));
  CHECK("cloexec", fcntl(a, F_GETFD) == FD_CLOEXEC);
  char tiny[8];
  errno = 0;
  CHECK("getdents64 tiny buffer", syscall(SYS_getdents64, a, tiny, sizeof tiny) == -1 && errno == EINVAL);
  CHECK("list all", names_from(a, all, sizeof all, 4096) > 2);
  CHECK("at end", syscall(SYS_getdents64, a, tiny, sizeof tiny) == 0);
  CHECK("rewind", lseek(a, 0, SEEK_SET) == 0);
  /* Half through a small buffer, then the rest through a dup (same offset). */
  char buf[4096]; /* read through 64 bytes of it */
  long n = syscall(SYS_getdents64, a, buf, 64);
  CHECK("first records", n > 0);
  for (long off = 0; off < n;) {
    struct dirent64 *de = (struct dirent64 *)(buf + off);
    size_t used = strlen(split);
    snprintf(split + used, sizeof split - used, "%s/", de->d_name);
    off += de->d_reclen;
  }
  int d = dup(a);
  CHECK("dup", d > a);
  CHECK("rest through dup", names_from(d, split, sizeof split, 200) >= 0);
  CHECK("split listing equals whole", strcmp(all, split) == 0);
  close(d);

  /* fchdir and relative lookups through a directory descriptor. */
  CHECK("fchdir", fchdir(a) == 0);
  CHECK("relative stat after fchdir", stat("inner", &st) == 0 && S_ISDIR(st.st_mode));
  int in = openat(a, "inner", O_RDONLY | O_DIRECTORY);
  CHECK("openat relative", in >= 0);
  close(in);
  CHECK("close", close(a) == 0);
  errno = 0;
  CHECK("close twice", close(a) == -1 && errno == EBADF);
  CHECK("chdir back", chdir("/") == 0);

  /* dup2 over a directory descriptor replaces it. */
  a = open(sub, O_RDONLY | O_DIRECTORY);
  CHECK("dup2 over dir", dup2(f, a) == a && fstat(a, &st) == 0 && S_ISREG(st.st_mode));
  close(a);

  /* Errors. */
  errno = 0;
  CHECK("O_DIRECTORY on a file", open(file, O_RDONLY | O_DIRECTORY) == -1 && errno == ENOTDIR);
  snprintf(sub, sizeof sub, "%s/missing", dir);
  errno = 0;
  CHECK("missing", open(sub, O_RDONLY | O_DIRECTORY) == -1 && errno == ENOENT);

  /* More directories open at once than the stub has slots. */
  int fds[48], busy[128] = {0}, want = 0;
  for (int fd = 0; fd < 128; fd++) busy[fd] = fcntl(fd, F_GETFD) != -1; /* open before: skipped */
  snprintf(sub, sizeof sub, "%s/a", dir);
  for (int i = 0; i < 48; i++) fds[i] = open(i % 2 ? dir : sub, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 48; i++) {
    while (busy[want]) want++;
    CHECK("many open: lowest free fd each time", fds[i] == want);
    want++;
  }
  for (int i = 0; i < 48; i++) {
    char names[65536] = "";
    CHECK("many list", names_from(fds[i], names, sizeof names, 4096) > 2);
    CHECK("many close", close(fds[i]) == 0);
  }
  close(f);

  /* Anonymous mappings: memory handed out again is zeroed; partial unmaps and mprotect work. */
  for (int round = 0; round < 4; round++) {
    unsigned char *p = mmap(NULL, 36864, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap", p != MAP_FAILED);
    int zero = 1;
    for (int i = 0; i < 36864; i++) zero &= p[i] == 0;
    CHECK("mmap zeroed", zero);
    memset(p, 0xa5, 36864);
    if (round == 2) {
      CHECK("mprotect", mprotect(p, 4096, PROT_READ) == 0);
      CHECK("munmap part", munmap(p + 4096, 8192) == 0);
      CHECK("munmap rest", munmap(p, 4096) == 0 && munmap(p + 12288, 36864 - 12288) == 0);
    } else {
      CHECK("munmap", munmap(p, 36864) == 0);
    }
  }
  printf("failures=%d\n", failures);
}

static long dirty_padding(const char *path) {
  char buf[1 << 15]; /* one per level: the walk goes down while reading */
  long dirty = 0;
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return 0;
  memset(buf, 0, sizeof buf);
  for (long n; (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;) {
    for (long off = 0; off < n;) {
      unsigned short reclen = *(unsigned short *)(buf + off + 16);
      char *name = buf + off + 19;
      size_t end = 19 + strlen(name) + 1;
      for (size_t i = end; i < reclen; i++) dirty += buf[off + i] != 0;
      if (strcmp(name, ".") && strcmp(name, "..")) {
        char child[4096];
        struct stat st;
        snprintf(child, sizeof child, "%s/%s", path, name);
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) dirty += dirty_padding(child);
      }
      off += reclen;
    }
    memset(buf, 0, sizeof buf);
  }
  close(fd);
  return dirty;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "padding")) {
    printf("padding=%ld\n", dirty_padding(argv[2]));
    return 0;
  }
  if (argc == 3 && !strcmp(argv[1], "walk")) {
    walk(argv[2]);
    return 0;
  }
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "walkmk")) {
    make_at = argv[3];
    make_new = argv[4];
    make_depth = argc == 6 ? atoi(argv[5]) : 0;
    walk(argv[2]);
    return 0;
  }
  if (argc == 4 && !strcmp(argv[1], "checks")) {
    checks(argv[2], argv[3]);
    return failures != 0;
  }
  fprintf(stderr, "usage: dircache walk DIR | dircache checks DIR FILE | dircache walkmk DIR AT NEW [DEPTH] | dircache padding DIR\n");
  return 2;
}
