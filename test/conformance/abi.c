/* System calls with Linux semantics and errno values, checked by running this program natively and
 * in kvmbox and comparing the output line by line (test/conformance.test.ts builds it with
 * gcc -static). Usage: abi RO RW [native], with RO the read-only fixture (test/conformance/fixture.ts) and
 * RW an empty writable directory. Every line is deterministic: results, errno names, sizes,
 * never times, inode numbers or addresses. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
  switch (e) {
  case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN"; case EACCES: return "EACCES"; case EFAULT: return "EFAULT";
  case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST"; case EXDEV: return "EXDEV";
  case ENOTDIR: return "ENOTDIR"; case EISDIR: return "EISDIR"; case EINVAL: return "EINVAL";
  case EMFILE: return "EMFILE"; case ENOTTY: return "ENOTTY"; case ENOSPC: return "ENOSPC";
  case ESPIPE: return "ESPIPE"; case EROFS: return "EROFS"; case EPIPE: return "EPIPE";
  case ERANGE: return "ERANGE"; case ENAMETOOLONG: return "ENAMETOOLONG"; case ENOSYS: return "ENOSYS";
  case ENOTEMPTY: return "ENOTEMPTY"; case ELOOP: return "ELOOP"; case ENXIO: return "ENXIO";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  default: { static char b[32]; snprintf(b, sizeof b, "errno%d", e); return b; }
  }
}

/* Print "what = result" or "what = -1 ENAME". */
#define CHECK(what, expr) do { errno = 0; long r_ = (long)(expr); \
  if (r_ < 0) printf("%s = -1 %s\n", what, ename(errno)); else printf("%s = %ld\n", what, r_); } while (0)

/* Writes into the read-only grant or a virtual directory. A native run has no read-only mount
 * (the fixture is writable by its owner), so these run only in kvmbox, printed after "ro: ",
 * and the test checks them against what Linux gives on a read-only mount. */
static int native_mode;
#define RO_CHECK(what, expr) do { if (!native_mode) { printf("ro: "); CHECK(what, expr); } } while (0)

static char ro[4096], rw[4096];
static char *at(const char *base, const char *rel) {
  static char bufs[4][4096];
  static int i;
  char *b = bufs[i++ & 3];
  snprintf(b, 4096, "%s/%s", base, rel);
  return b;
}

static void files(void) {
  char buf[256];
  int fd;
  CHECK("open missing", open(at(ro, "text/nope"), O_RDONLY));
  RO_CHECK("open ro O_WRONLY", open(at(ro, "text/a.txt"), O_WRONLY));
  RO_CHECK("open ro O_CREAT new", open(at(ro, "text/new"), O_WRONLY | O_CREAT, 0644));
  CHECK("open ro O_CREAT|O_RDONLY existing", (fd = open(at(ro, "text/a.txt"), O_RDONLY | O_CREAT, 0644)) >= 0 ? 0 : -1);
  if (fd >= 0) close(fd);
  CHECK("open O_DIRECTORY on file", open(at(ro, "text/a.txt"), O_RDONLY | O_DIRECTORY));
  CHECK("open file/ (trailing slash)", open(at(ro, "text/a.txt/"), O_RDONLY));
  CHECK("open dir O_WRONLY", open(at(ro, "tree"), O_WRONLY));
  CHECK("open O_NOFOLLOW symlink", open(at(ro, "links/rel-file"), O_RDONLY | O_NOFOLLOW));
  CHECK("open mode 000", open(at(ro, "perms/none.txt"), O_RDONLY));
  CHECK("open 0444 for write in rw", (fd = open(at(rw, "ro444"), O_WRONLY | O_CREAT, 0444)) >= 0 ? 0 : -1);
  if (fd >= 0) close(fd);
  CHECK("reopen 0444 for write", open(at(rw, "ro444"), O_WRONLY));
  CHECK("O_EXCL existing", open(at(rw, "ro444"), O_WRONLY | O_CREAT | O_EXCL, 0644));
  RO_CHECK("O_CREAT in virtual dir", open("/kvmbox-abi-new-file", O_WRONLY | O_CREAT, 0644));

  fd = open(at(rw, "f"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  CHECK("F_GETFD cloexec", fcntl(fd, F_GETFD));
  CHECK("F_GETFL", fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK));
  CHECK("write", write(fd, "hello world\n", 12));
  CHECK("pwrite", pwrite(fd, "HELLO", 5, 0));
  CHECK("lseek end", lseek(fd, 0, SEEK_END));
  CHECK("lseek bad whence", lseek(fd, 0, 99));
  CHECK("lseek negative", lseek(fd, -100, SEEK_SET));
  memset(buf, 0, sizeof buf);
  CHECK("pread", pread(fd, buf, 100, 6));
  printf("pread data = %s", buf);
  CHECK("pread negative offset", pread(fd, buf, 1, -1));
  struct iovec iov[3] = { { "ab", 2 }, { "", 0 }, { "cd\n", 3 } };
  CHECK("pwritev", pwritev(fd, iov, 3, 12));
  char x[4], y[20];
  struct iovec in[2] = { { x, 4 }, { y, 20 } };
  CHECK("preadv", preadv(fd, in, 2, 0));
  CHECK("ftruncate", ftruncate(fd, 3));
  struct stat st;
  fstat(fd, &st);
  printf("size after ftruncate = %ld mode = %o\n", (long)st.st_size, st.st_mode & 07777);
  CHECK("fsync", fsync(fd));
  CHECK("fdatasync", fdatasync(fd));
  CHECK("flock", flock(fd, LOCK_EX));
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  CHECK("F_SETLK", fcntl(fd, F_SETLK, &fl));
  fl.l_type = F_WRLCK;
  CHECK("F_GETLK", fcntl(fd, F_GETLK, &fl));
  printf("F_GETLK type unlocked = %d\n", fl.l_type == F_UNLCK);
  CHECK("dup3 same fd", dup3(fd, fd, 0));
  CHECK("dup3 bad flags", dup3(fd, 100, 12345));
  CHECK("dup2 same fd", dup2(fd, fd));
  CHECK("dup2 to 100", dup2(fd, 100));
  CHECK("F_GETFD of dup2", fcntl(100, F_GETFD));
  CHECK("F_DUPFD_CLOEXEC >= 50", fcntl(fd, F_DUPFD_CLOEXEC, 50));
  CHECK("F_GETFD of it", fcntl(50, F_GETFD));
  CHECK("close 100", close(100));
  CHECK("close 100 again", close(100));
  CHECK("read closed", read(100, buf, 1));
  close(50);
  close(fd);

  fd = open(at(rw, "app"), O_WRONLY | O_CREAT | O_APPEND, 0600);
  write(fd, "one\n", 4);
  lseek(fd, 0, SEEK_SET);
  write(fd, "two\n", 4);
  close(fd);
  fd = open(at(rw, "app"), O_RDONLY);
  memset(buf, 0, sizeof buf);
  CHECK("O_APPEND result size", read(fd, buf, sizeof buf));
  printf("O_APPEND data = %s", buf);
  CHECK("write on O_RDONLY", write(fd, "x", 1));
  CHECK("ioctl FIONREAD file", ioctl(fd, FIONREAD, &(int){0}));
  CHECK("ioctl TCGETS file", ioctl(fd, TCGETS, buf));
  close(fd);
}

static void tree(void) {
  char buf[256];
  struct stat st;
  CHECK("mkdir", mkdir(at(rw, "d"), 0750));
  CHECK("mkdir again", mkdir(at(rw, "d"), 0750));
  RO_CHECK("mkdir in ro", mkdir(at(ro, "newdir"), 0755));
  CHECK("mkdir existing in ro", mkdir(at(ro, "tree"), 0755));
  CHECK("mkdir missing parent", mkdir(at(rw, "no/such"), 0755));
  stat(at(rw, "d"), &st);
  printf("mkdir mode (umask 022) = %o\n", st.st_mode & 07777);
  CHECK("umask", umask(077));
  CHECK("mkdir under umask 077", mkdir(at(rw, "d/u"), 0777));
  stat(at(rw, "d/u"), &st);
  printf("mode = %o\n", st.st_mode & 07777);
  umask(022);
  CHECK("rmdir non-empty", rmdir(at(rw, "d")));
  CHECK("rmdir file", rmdir(at(rw, "app")));
  CHECK("unlink dir", unlink(at(rw, "d")));
  CHECK("unlinkat AT_REMOVEDIR", unlinkat(AT_FDCWD, at(rw, "d/u"), AT_REMOVEDIR));
  CHECK("symlink", symlink("app", at(rw, "l")));
  CHECK("symlink exists", symlink("x", at(rw, "l")));
  RO_CHECK("symlink in ro", symlink("x", at(ro, "l")));
  memset(buf, 0, sizeof buf);
  CHECK("readlink", readlink(at(rw, "l"), buf, sizeof buf));
  printf("readlink = %s\n", buf);
  CHECK("readlink short buffer", readlink(at(rw, "l"), buf, 2));
  CHECK("readlink on file", readlink(at(rw, "app"), buf, sizeof buf));
  CHECK("readlink missing", readlink(at(rw, "nope"), buf, sizeof buf));
  CHECK("lstat symlink is link", lstat(at(rw, "l"), &st) == 0 && S_ISLNK(st.st_mode));
  CHECK("stat symlink is file", stat(at(rw, "l"), &st) == 0 && S_ISREG(st.st_mode));
  CHECK("link", link(at(rw, "app"), at(rw, "hard")));
  stat(at(rw, "app"), &st);
  printf("nlink = %ld\n", (long)st.st_nlink);
  CHECK("link exists", link(at(rw, "app"), at(rw, "hard")));
  RO_CHECK("link across grants", link(at(ro, "text/a.txt"), at(rw, "x")));
  CHECK("linkat AT_SYMLINK_FOLLOW", linkat(AT_FDCWD, at(rw, "l"), AT_FDCWD, at(rw, "hard2"), AT_SYMLINK_FOLLOW));
  CHECK("hard2 is a file", lstat(at(rw, "hard2"), &st) == 0 && S_ISREG(st.st_mode));
  CHECK("rename", rename(at(rw, "hard"), at(rw, "hard3")));
  CHECK("rename missing", rename(at(rw, "hard"), at(rw, "hard4")));
  CHECK("renameat2 NOREPLACE", syscall(SYS_renameat2, AT_FDCWD, at(rw, "hard3"), AT_FDCWD, at(rw, "app"), 1));
  CHECK("renameat2 EXCHANGE", syscall(SYS_renameat2, AT_FDCWD, at(rw, "hard3"), AT_FDCWD, at(rw, "l"), 2));
  CHECK("l is now a file", lstat(at(rw, "l"), &st) == 0 && S_ISREG(st.st_mode));
  CHECK("rename dir onto file", rename(at(rw, "d"), at(rw, "app")));
  RO_CHECK("rename into ro", rename(at(rw, "app"), at(ro, "app")));
  CHECK("chmod", chmod(at(rw, "app"), 0640));
  stat(at(rw, "app"), &st);
  printf("chmod mode = %o\n", st.st_mode & 07777);
  RO_CHECK("chmod in ro", chmod(at(ro, "text/a.txt"), 0600));
  CHECK("fchmodat AT_SYMLINK_NOFOLLOW", fchmodat(AT_FDCWD, at(rw, "app"), 0600, AT_SYMLINK_NOFOLLOW));
  CHECK("chown to self", chown(at(rw, "app"), getuid(), getgid()));
  CHECK("chown to -1 -1", chown(at(rw, "app"), -1, -1));
  CHECK("chown to root", chown(at(rw, "app"), 0, 0));
  CHECK("lchown symlink", lchown(at(rw, "hard3"), getuid(), -1));
  CHECK("chmod 4755", chmod(at(rw, "app"), 04755));
  CHECK("chown clears setuid", chown(at(rw, "app"), getuid(), -1));
  stat(at(rw, "app"), &st);
  printf("mode after chown = %o\n", st.st_mode & 07777);
  struct timespec ts[2] = { { 1000000000, 5 }, { 1234567890, 123456789 } };
  CHECK("utimensat", utimensat(AT_FDCWD, at(rw, "app"), ts, 0));
  stat(at(rw, "app"), &st);
  printf("atime = %ld.%09ld mtime = %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  ts[0].tv_nsec = UTIME_OMIT;
  ts[1].tv_nsec = 1000000000;
  CHECK("utimensat bad nsec", utimensat(AT_FDCWD, at(rw, "app"), ts, 0));
  RO_CHECK("utimensat in ro", utimensat(AT_FDCWD, at(ro, "text/a.txt"), NULL, 0));
  CHECK("utimensat bad flags", utimensat(AT_FDCWD, at(rw, "app"), NULL, 0x4));
  CHECK("truncate", truncate(at(rw, "app"), 2));
  CHECK("truncate negative", truncate(at(rw, "app"), -1));
  RO_CHECK("truncate in ro", truncate(at(ro, "text/a.txt"), 0));
  CHECK("truncate dir", truncate(at(rw, "d"), 0));
  CHECK("access F_OK", access(at(ro, "text/a.txt"), F_OK));
  RO_CHECK("access W_OK ro grant", access(at(ro, "text/a.txt"), W_OK));
  CHECK("access R_OK mode 000", access(at(ro, "perms/none.txt"), R_OK));
  CHECK("access X_OK 0644", access(at(ro, "text/a.txt"), X_OK));
  CHECK("access X_OK 0750", access(at(ro, "perms/exec.sh"), X_OK));
  CHECK("access bad mode", access(at(ro, "text/a.txt"), 8));
  CHECK("faccessat2 AT_SYMLINK_NOFOLLOW dangling", syscall(SYS_faccessat2, AT_FDCWD, at(ro, "links/dangling"), F_OK, AT_SYMLINK_NOFOLLOW));
  CHECK("access dangling", access(at(ro, "links/dangling"), F_OK));
  CHECK("stat through abs symlink", stat(at(ro, "links/abs-dir/a/one.txt"), &st) == 0 ? (long)st.st_size : -1);
  CHECK("stat file/", stat(at(ro, "text/a.txt/"), &st));
  CHECK("lstat dirlink/", lstat(at(ro, "links/abs-dir/"), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK("stat empty path", stat("", &st));
  struct statx sx;
  CHECK("statx", statx(AT_FDCWD, at(ro, "text/a.txt"), 0, STATX_BASIC_STATS, &sx));
  printf("statx size = %llu mode = %o nlink = %u uid = %u\n", (unsigned long long)sx.stx_size, sx.stx_mode & 07777, sx.stx_nlink, sx.stx_uid);
  CHECK("statx nofollow link", statx(AT_FDCWD, at(ro, "links/rel-file"), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) == 0 && S_ISLNK(sx.stx_mode));
  int dfd = open(at(ro, "tree"), O_RDONLY | O_DIRECTORY);
  CHECK("statx AT_EMPTY_PATH", statx(dfd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) == 0 && S_ISDIR(sx.stx_mode));
  CHECK("fstatat relative to dirfd", fstatat(dfd, "a/one.txt", &st, 0) == 0 ? (long)st.st_size : -1);
  CHECK("openat relative to dirfd", openat(dfd, "../text/a.txt", O_RDONLY) >= 0);
  /* getdents64: count entries */
  char dbuf[4096];
  long n, total = 0;
  int entries = 0;
  while ((n = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf)) > 0) {
    for (long off = 0; off < n;) {
      unsigned short reclen = *(unsigned short *)(dbuf + off + 16);
      entries++;
      off += reclen;
    }
    total += n;
  }
  printf("getdents64 entries = %d\n", entries);
  CHECK("getdents64 on file", syscall(SYS_getdents64, open(at(ro, "text/a.txt"), O_RDONLY), dbuf, sizeof dbuf));
  CHECK("getdents64 tiny buffer", syscall(SYS_getdents64, open(at(ro, "tree"), O_RDONLY), dbuf, 8));
  CHECK("fchdir", fchdir(dfd));
  memset(buf, 0, sizeof buf);
  CHECK("getcwd ok", getcwd(buf, sizeof buf) != NULL);
  printf("getcwd is ro/tree = %d\n", strcmp(buf, at(ro, "tree")) == 0);
  CHECK("getcwd tiny", syscall(SYS_getcwd, buf, 2));
  CHECK("chdir through abs link", chdir(at(ro, "links/abs-dir/a")));
  memset(buf, 0, sizeof buf);
  getcwd(buf, sizeof buf);
  printf("getcwd resolved = %d\n", strcmp(buf, at(ro, "tree/a")) == 0);
  CHECK("chdir file", chdir(at(ro, "text/a.txt")));
  CHECK("chdir missing", chdir(at(ro, "nope")));
  CHECK("chdir ..", chdir(".."));
  CHECK("stat relative after chdir ..", stat("top.txt", &st) == 0 ? (long)st.st_size : -1);
  close(dfd);
}

static void pipes_and_polls(void) {
  int p[2];
  char buf[64];
  CHECK("pipe2 bad flags", pipe2(p, 0x1));
  CHECK("pipe2", pipe2(p, O_CLOEXEC | O_NONBLOCK));
  CHECK("F_GETFD pipe", fcntl(p[0], F_GETFD));
  CHECK("F_GETFL pipe", fcntl(p[1], F_GETFL) & (O_ACCMODE | O_NONBLOCK));
  CHECK("read empty nonblocking", read(p[0], buf, sizeof buf));
  struct pollfd pf[3] = { { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 }, { 999, POLLIN, 0 } };
  CHECK("poll", poll(pf, 3, 0));
  printf("revents = %x %x %x\n", pf[0].revents, pf[1].revents, pf[2].revents);
  CHECK("write pipe", write(p[1], "abc", 3));
  CHECK("ioctl FIONREAD pipe", ioctl(p[0], FIONREAD, &(int){0}) == 0);
  int avail = 0;
  ioctl(p[0], FIONREAD, &avail);
  printf("FIONREAD = %d\n", avail);
  CHECK("poll readable", poll(pf, 2, 0));
  printf("revents = %x %x\n", pf[0].revents, pf[1].revents);
  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_SET(p[0], &r);
  FD_SET(p[1], &w);
  struct timeval tv = { 0, 0 };
  CHECK("select", select(p[1] + 1, &r, &w, NULL, &tv));
  printf("select r=%d w=%d\n", FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
  FD_ZERO(&r);
  FD_SET(77, &r);
  CHECK("select closed fd", select(78, &r, NULL, NULL, &tv));
  CHECK("read pipe", read(p[0], buf, sizeof buf));
  CHECK("lseek pipe", lseek(p[0], 0, SEEK_SET));
  CHECK("pread pipe", pread(p[0], buf, 1, 0));
  CHECK("F_GETPIPE_SZ", fcntl(p[0], F_GETPIPE_SZ));
  struct timespec zero = { 0, 0 };
  CHECK("ppoll timeout", ppoll(pf, 1, &zero, NULL));
  CHECK("poll 20ms timeout", poll(pf, 1, 20));
  /* select writes the time left back in its timeval (glibc's; musl's keeps it). */
  struct timeval left = { 0, 30000 };
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  CHECK("select 30ms timeout", select(p[0] + 1, &r, NULL, NULL, &left));
  printf("select timeout left %ld.%06ld\n", (long)left.tv_sec, (long)left.tv_usec);
  struct timeval ample = { 100, 0 };
  FD_ZERO(&w);
  FD_SET(p[1], &w);
  CHECK("select writable", select(p[1] + 1, NULL, &w, NULL, &ample));
  printf("select ready: left below 100 s %d, above 99 s %d\n", ample.tv_sec < 100, ample.tv_sec >= 99);
  close(p[1]);
  CHECK("poll after writer closed", poll(pf, 1, 0));
  printf("revents = %x\n", pf[0].revents);
  CHECK("read eof", read(p[0], buf, sizeof buf));
  close(p[0]);
  CHECK("pipe", pipe(p));
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  CHECK("write no reader", write(p[1], "x", 1));
  close(p[1]);

  int in = open(at(ro, "text/poem.txt"), O_RDONLY);
  int out = open(at(rw, "sent"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  off_t off = 4;
  CHECK("sendfile with offset", sendfile(out, in, &off, 10));
  printf("offset after = %ld, file position = %ld\n", (long)off, (long)lseek(in, 0, SEEK_CUR));
  CHECK("sendfile", sendfile(out, in, NULL, 1 << 20));
  CHECK("sendfile at eof", sendfile(out, in, NULL, 100));
  CHECK("sendfile bad fd", sendfile(out, 999, NULL, 100));
  struct stat st;
  fstat(out, &st);
  printf("sent size = %ld\n", (long)st.st_size);
  close(in);
  close(out);
}

static void devices(void) {
  char buf[64];
  int fd = open("/dev/null", O_RDWR);
  CHECK("read /dev/null", read(fd, buf, sizeof buf));
  CHECK("write /dev/null", write(fd, "abc", 3));
  close(fd);
  fd = open("/dev/zero", O_RDONLY);
  memset(buf, 1, sizeof buf);
  CHECK("read /dev/zero", read(fd, buf, 16));
  printf("zeros = %d\n", buf[0] == 0 && buf[15] == 0);
  close(fd);
  fd = open("/dev/full", O_WRONLY);
  CHECK("write /dev/full", write(fd, "x", 1));
  close(fd);
  fd = open("/dev/urandom", O_RDONLY);
  CHECK("read /dev/urandom", read(fd, buf, 32));
  close(fd);
  struct stat st;
  CHECK("stat /dev/null is chr 1:3", stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
  CHECK("lstat /dev/stdin is link", lstat("/dev/stdin", &st) == 0 && S_ISLNK(st.st_mode));
  memset(buf, 0, sizeof buf);
  CHECK("readlink /dev/stdin", readlink("/dev/stdin", buf, sizeof buf));
  printf("/dev/stdin -> %s\n", buf);
  CHECK("open /proc/self/fd/99", open("/proc/self/fd/99", O_RDONLY));
  /* /proc/self/fd/N's permission bits give its file's access mode (lsof's r, w and u). */
  static const int modes[] = { O_RDONLY, O_WRONLY, O_RDWR, O_PATH };
  for (int i = 0; i < 4; i++) {
    int m = open("/dev/null", modes[i]);
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", m);
    st.st_mode = 0;
    lstat(link, &st);
    printf("fd link mode for %s = %o\n", (const char *[]){ "O_RDONLY", "O_WRONLY", "O_RDWR", "O_PATH" }[i], st.st_mode);
    close(m);
  }
  CHECK("getrandom", syscall(SYS_getrandom, buf, 16, 0));
  CHECK("getrandom bad flags", syscall(SYS_getrandom, buf, 16, 0x100));
  fd = open("/proc/self/cmdline", O_RDONLY);
  memset(buf, 0, sizeof buf);
  CHECK("read cmdline ok", read(fd, buf, sizeof buf) > 0);
  close(fd);
}

static void facts(void) {
  struct sysinfo si;
  CHECK("sysinfo", sysinfo(&si));
  printf("sysinfo procs>0 = %d mem_unit>0 = %d totalram>0 = %d\n", si.procs > 0, si.mem_unit > 0, si.totalram > 0);
  struct rusage ru;
  CHECK("getrusage self", getrusage(RUSAGE_SELF, &ru));
  CHECK("getrusage children", getrusage(RUSAGE_CHILDREN, &ru));
  printf("children utime = %ld\n", (long)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec);
  CHECK("getrusage bad who", getrusage(5, &ru));
  struct tms t;
  CHECK("times ok", times(&t) != (clock_t)-1);
  printf("cutime = %ld\n", (long)t.tms_cutime);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  struct timespec sl = { 0, 20 * 1000 * 1000 };
  CHECK("nanosleep", nanosleep(&sl, NULL));
  clock_gettime(CLOCK_MONOTONIC, &b);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  printf("slept >= 20ms = %d\n", ms >= 20);
  CHECK("nanosleep bad", nanosleep(&(struct timespec){ 0, 2000000000 }, NULL));
  CHECK("clock_gettime bad clock", clock_gettime(1234, &a));
  struct timeval tv;
  CHECK("gettimeofday", gettimeofday(&tv, NULL));
  printf("time agrees = %d\n", labs(time(NULL) - tv.tv_sec) <= 1);
  cpu_set_t set;
  CHECK("sched_getaffinity ok", sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1);
  CHECK("getuid", getuid());
  CHECK("geteuid", geteuid());
  CHECK("getgid", getgid());
  CHECK("setuid self", setuid(getuid()));
  CHECK("setuid 0", setuid(0));
  CHECK("setgid 0", setgid(0));
  char name[17] = { 0 };
  CHECK("PR_GET_NAME", prctl(PR_GET_NAME, name));
  printf("name = %s\n", name);
  CHECK("PR_SET_NAME", prctl(PR_SET_NAME, "a-very-long-thread-name"));
  CHECK("PR_GET_NAME", prctl(PR_GET_NAME, name));
  printf("name = %s\n", name);
  CHECK("PR_GET_DUMPABLE", prctl(PR_GET_DUMPABLE));
  CHECK("PR_SET_NO_NEW_PRIVS", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK("PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  CHECK("prctl bad option", prctl(12345, 0, 0, 0, 0));
  uid_t r, e, s;
  CHECK("getresuid", getresuid(&r, &e, &s));
  printf("resuid = %u %u %u\n", r, e, s);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  snprintf(ro, sizeof ro, "%s", argv[1]);
  snprintf(rw, sizeof rw, "%s", argv[2]);
  native_mode = argc > 3 && strcmp(argv[3], "native") == 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  umask(022);
  files();
  tree();
  pipes_and_polls();
  devices();
  facts();
  return 0;
}
