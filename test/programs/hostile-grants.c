/* Hostile: writes into read-only grants nested in a read-write one, and set-id bits.
 * Run as `hostile-grants nested D` with --rw D --ro D/s --ro D/p/q --ro D/rofile.txt, where the
 * host holds D/own.txt, D/rofile.txt, D/s/file.txt, D/s/dir/ and D/p/q/file.txt; or as `hostile-grants inner D` with
 * --ro D --rw D/w and a host symlink D/lw -> w. Prints one line per attempt: "<name> ok" or
 * "<name> errno=<NAME>"; the test compares them with what Linux gives on a read-only mount and
 * checks the host tree. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static const char *errname(int e) {
  switch (e) {
  case ENOENT: return "ENOENT"; case EACCES: return "EACCES"; case EROFS: return "EROFS";
  case EPERM: return "EPERM"; case EXDEV: return "EXDEV"; case ENOTDIR: return "ENOTDIR";
  case EISDIR: return "EISDIR"; case EEXIST: return "EEXIST"; case ELOOP: return "ELOOP";
  case EINVAL: return "EINVAL"; case EBADF: return "EBADF"; case ENOTEMPTY: return "ENOTEMPTY";
  case EBUSY: return "EBUSY"; case ENOSYS: return "ENOSYS"; case EOPNOTSUPP: return "EOPNOTSUPP";
  default: return "other";
  }
}

static char *D;
static char paths[64][512];
static int npaths;

/* D + "/" + rel, kept for the whole run. */
static const char *at(const char *rel) {
  char *p = paths[npaths++ % 64];
  snprintf(p, 512, "%s/%s", D, rel);
  return p;
}

static void report(const char *name, long r) {
  if (r < 0) printf("%s errno=%s\n", name, errname(errno));
  else printf("%s ok\n", name);
}

/* open, and on success write a marker and close: a write that gets through shows on the host. */
static void try_open(const char *name, const char *path, int flags, mode_t mode) {
  int fd = open(path, flags, mode);
  if (fd >= 0) {
    if (write(fd, "pwned\n", 6) < 0) { /* the open itself is what counts */ }
    close(fd);
  }
  report(name, fd);
}

static void nested(void) {
  report("symlink-rel", symlink("s", at("l")));
  report("symlink-abs", symlink(at("s"), at("la")));
  report("symlink-self", symlink(".", at("self")));
  report("symlink-file", symlink("s/file.txt", at("lf")));

  /* Issue 12 (a): truncate through the symlink. */
  report("truncate", truncate(at("l/file.txt"), 0));
  report("truncate-filelink", truncate(at("lf"), 0));
  report("truncate-abs", truncate(at("la/file.txt"), 0));
  /* (b): open for writing, truncating or creating. */
  try_open("open-trunc", at("l/file.txt"), O_WRONLY | O_TRUNC, 0);
  try_open("open-rdwr", at("l/file.txt"), O_RDWR, 0);
  try_open("open-append", at("la/file.txt"), O_WRONLY | O_APPEND, 0);
  try_open("open-rdonly-trunc", at("l/file.txt"), O_RDONLY | O_TRUNC, 0);
  try_open("open-filelink", at("lf"), O_WRONLY, 0);
  try_open("creat", at("l/new.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  try_open("creat-excl", at("la/new.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644);
  try_open("creat-existing", at("lf"), O_WRONLY | O_CREAT, 0644);
  try_open("creat-dir", at("l/dir/new.txt"), O_WRONLY | O_CREAT, 0644);
  try_open("tmpfile", at("l"), O_TMPFILE | O_RDWR, 0600);
  report("creat-on-rodir", open(at("l/dir"), O_RDONLY | O_CREAT, 0644));
  report("creat-on-rwdir", open(at("self"), O_RDONLY | O_CREAT, 0644));
  /* (c): hard links across the grants, then a write through the link. */
  report("link-out", link(at("l/file.txt"), at("hard")));
  report("link-follow", linkat(AT_FDCWD, at("lf"), AT_FDCWD, at("hard2"), AT_SYMLINK_FOLLOW));
  report("link-in", link(at("own.txt"), at("l/hard")));
  report("link-within", link(at("l/file.txt"), at("l/hard")));
  try_open("write-hard", at("hard"), O_RDWR, 0);
  try_open("write-hard2", at("hard2"), O_RDWR, 0);
  /* Every other call that changes a file. */
  report("rename-out", rename(at("l/file.txt"), at("moved")));
  report("rename-in", rename(at("own.txt"), at("l/own.txt")));
  report("rename-within", rename(at("l/file.txt"), at("l/f2")));
  report("rename-mountpoint", rename(at("self/s"), at("t")));
  report("rename-ancestor", rename(at("self/p"), at("p2")));
  report("unlink", unlink(at("l/file.txt")));
  report("rmdir-nested-mountpoint", rmdir(at("self/p/q")));
  report("rmdir", rmdir(at("l/dir")));
  report("rmdir-mountpoint", rmdir(at("self/s")));
  report("mkdir", mkdir(at("l/newdir"), 0755));
  report("symlink-into", symlink("x", at("l/sym")));
  report("mknod", mknod(at("l/node"), S_IFREG | 0644, 0));
  report("mkfifo", mkfifo(at("l/fifo"), 0644));
  report("chmod", chmod(at("l/file.txt"), 0777));
  report("chmod-filelink", chmod(at("lf"), 0777));
  report("chown", chown(at("l/file.txt"), 1000, 1000));
  report("utimes", utimes(at("l/file.txt"), NULL));
  report("utimensat-nofollow", utimensat(AT_FDCWD, at("l/file.txt"), NULL, AT_SYMLINK_NOFOLLOW));
  report("truncate-deep", truncate(at("self/p/q/file.txt"), 0));
  /* D/rofile.txt is a read-only grant of one file. */
  report("symlink-filegrant", symlink("rofile.txt", at("lr")));
  try_open("write-filegrant", at("lr"), O_WRONLY | O_TRUNC, 0);
  report("truncate-filegrant", truncate(at("self/rofile.txt"), 0));
  report("link-filegrant", linkat(AT_FDCWD, at("lr"), AT_FDCWD, at("hard3"), AT_SYMLINK_FOLLOW));
  report("rename-filegrant", rename(at("self/rofile.txt"), at("x")));
  report("unlink-filegrant", unlink(at("self/rofile.txt")));
  report("chmod-filegrant", chmod(at("lr"), 04777));

  /* Descriptors opened read-only through the symlink. */
  int fd = open(at("l/file.txt"), O_RDONLY);
  report("open-rdonly", fd);
  report("fchmod", fchmod(fd, 0777));
  report("fchown", fchown(fd, 1000, 1000));
  report("futimens", futimens(fd, NULL));
  report("ftruncate", ftruncate(fd, 0));
  report("fallocate", fallocate(fd, 0, 0, 4096));
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  report("chmod-procfd", chmod(proc, 0777));
  int own = open(at("own.txt"), O_RDONLY);
  loff_t off = 0;
  report("copy_file_range", syscall(SYS_copy_file_range, own, &off, fd, NULL, 4, 0));
  int dfd = open(at("l"), O_RDONLY | O_DIRECTORY);
  report("open-dir", dfd);
  report("openat-rdwr", openat(dfd, "file.txt", O_RDWR));
  report("unlinkat", unlinkat(dfd, "file.txt", 0));
  report("mkdirat", mkdirat(dfd, "x", 0755));
  report("fchdir", fchdir(dfd));
  report("truncate-cwd", truncate("file.txt", 0));
  report("chdir-back", chdir(D));

  /* Writes that the rules allow still work. */
  try_open("rw-append", at("own.txt"), O_WRONLY | O_APPEND, 0);
  try_open("rw-creat-self", at("self/own2.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644);
  report("rw-rename-self", rename(at("self/own2.txt"), at("own3.txt")));
  report("rw-link", link(at("own3.txt"), at("own4.txt")));
}

/* Set-id bits: none may reach the host, whatever the mode and the umask say. */
static void setid(void) {
  umask(0);
  try_open("creat-suid", at("c-suid"), O_WRONLY | O_CREAT | O_EXCL, 04777);
  try_open("creat-sgid", at("c-sgid"), O_WRONLY | O_CREAT, 02755);
  try_open("creat-umask0", at("c-0666"), O_WRONLY | O_CREAT, 0666);
  report("mkdir-setid", mkdir(at("d-setid"), 07777));
  report("mknod-setid", mknod(at("n-setid"), S_IFREG | 06755, 0));
  try_open("make-f1", at("f1"), O_WRONLY | O_CREAT, 0644);
  report("chmod-suid", chmod(at("f1"), 04755));
  try_open("make-f2", at("f2"), O_WRONLY | O_CREAT, 0644);
  report("chmod-sgid-self", chmod(at("self/f2"), 06755));
  try_open("make-f3", at("f3"), O_WRONLY | O_CREAT, 0644);
  int fd = open(at("f3"), O_RDONLY);
  report("fchmod-setid", fchmod(fd, 06711));
  try_open("make-f4", at("f4"), O_WRONLY | O_CREAT, 0644);
  report("chmod-sticky-file", chmod(at("f4"), 01644));
  try_open("make-f5", at("f5"), O_WRONLY | O_CREAT, 0644);
  int fd5 = open(at("f5"), O_PATH);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd5);
  report("chmod-procfd-suid", chmod(proc, 04700));
  report("mkdir-dir", mkdir(at("dd"), 0755));
  report("chmod-dir-sgid", chmod(at("dd"), 02755));
  report("mkdir-sticky", mkdir(at("ds"), 0755));
  report("chmod-dir-sticky", chmod(at("ds"), 01777));
}

/* --ro D --rw D/w: a host symlink D/lw -> w leads into the read-write grant, where writes work. */
static void inner(void) {
  try_open("inner-creat", at("lw/new.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644);
  try_open("inner-write", at("lw/file.txt"), O_WRONLY | O_APPEND, 0);
  report("inner-mkdir", mkdir(at("lw/newdir"), 0755));
  try_open("outer-creat", at("new.txt"), O_WRONLY | O_CREAT, 0644);
  report("outer-truncate", truncate(at("file.txt"), 0));
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  D = argv[2];
  if (!strcmp(argv[1], "nested")) { nested(); setid(); }
  else if (!strcmp(argv[1], "inner")) inner();
  else return 2;
  printf("done\n");
  return 0;
}
