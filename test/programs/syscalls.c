/*
 * syscalls: the basic Linux system calls a foundation sandbox must implement.
 *
 * Usage: syscalls [file]. Prints one line per check, "ok <name>" or
 * "FAIL <name>: <detail>", then "failures=N"; the exit status is N, the number
 * of failed checks. Lines are written with write(2) directly (not stdio) so
 * their order is the order of the checks even if the program dies midway.
 * Checks that only make sense in some conditions (a file argument, a
 * non-tty stdout) print "ok <name> (skipped: <why>)" otherwise.
 *
 * Some system calls are exercised by libc before main: set_tid_address and
 * arch_prctl(ARCH_SET_FS) (TLS); the gettid, tls and thread-pointer checks
 * confirm they worked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024UL * 1024UL)
#define PAGE 4096UL
#define YEAR_2020 1577836800L /* 2020-01-01T00:00:00Z */

static int failures;

static void emit(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDOUT_FILENO, line, len);
        if (w <= 0)
            return;
        line += w;
        len -= (size_t)w;
    }
}

static void ok(const char *name)
{
    char line[256];
    int n = snprintf(line, sizeof line, "ok %s\n", name);
    emit(line, (size_t)n);
}

static void skip(const char *name, const char *why)
{
    char line[256];
    int n = snprintf(line, sizeof line, "ok %s (skipped: %s)\n", name, why);
    emit(line, (size_t)n);
}

static void fail(const char *name, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "FAIL %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    emit(line, (size_t)n);
    failures++;
}

/* ok when cond holds, else FAIL with the detail. */
#define CHECK(name, cond, ...) ((cond) ? ok(name) : fail(name, __VA_ARGS__))

static void check_write(void)
{
    static const char line[] = "ok write\n";
    ssize_t r = write(STDOUT_FILENO, line, sizeof line - 1);
    if (r != (ssize_t)(sizeof line - 1))
        fail("write", "returned %zd, errno %s", r, strerror(errno));
}

static void check_writev(void)
{
    char a[] = "ok ", b[] = "writev", c[] = "\n";
    struct iovec iov[3] = { { a, 3 }, { b, 6 }, { c, 1 } };
    ssize_t r = writev(STDOUT_FILENO, iov, 3);
    if (r != 10)
        fail("writev", "returned %zd, errno %s", r, strerror(errno));
}

static void check_ids(void)
{
    pid_t pid = getpid();
    CHECK("getpid", pid > 0, "returned %d", (int)pid);
    pid_t ppid = getppid();
    CHECK("getppid", ppid >= 0, "returned %d", (int)ppid);
    /* uid/gid calls cannot fail; calling them checks the sandbox implements them. */
    (void)getuid();
    ok("getuid");
    (void)geteuid();
    ok("geteuid");
    (void)getgid();
    ok("getgid");
    (void)getegid();
    ok("getegid");
    /* libc calls set_tid_address at start-up; the main thread's tid is its pid. */
    long tid = syscall(SYS_gettid);
    CHECK("gettid", tid == (long)pid, "gettid %ld != getpid %d", tid, (int)pid);
}

static void check_uname(void)
{
    struct utsname u;
    if (uname(&u) != 0)
        fail("uname", "%s", strerror(errno));
    else
        CHECK("uname", strcmp(u.sysname, "Linux") == 0, "sysname \"%s\", expected \"Linux\"", u.sysname);
}

/* Raw brk(2): musl's sbrk refuses to grow, so call the system call directly,
 * then put the break back so libc's own heap bookkeeping stays right. */
static void check_brk(void)
{
    uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
    uintptr_t want = cur + 10 * MiB;
    uintptr_t got = (uintptr_t)syscall(SYS_brk, want);
    if (cur == 0 || got != want) {
        fail("brk", "brk(0)=%#lx, brk(+10MiB) returned %#lx, wanted %#lx",
             (unsigned long)cur, (unsigned long)got, (unsigned long)want);
        return;
    }
    volatile unsigned char *p = (volatile unsigned char *)cur;
    for (uintptr_t off = 0; off < 10 * MiB; off += PAGE)
        p[off] = (unsigned char)(off >> 12);
    int bad = 0;
    for (uintptr_t off = 0; off < 10 * MiB; off += PAGE)
        bad += p[off] != (unsigned char)(off >> 12);
    uintptr_t back = (uintptr_t)syscall(SYS_brk, cur);
    if (bad)
        fail("brk", "%d pages did not keep their value", bad);
    else if (back != cur)
        fail("brk", "shrinking back to %#lx returned %#lx", (unsigned long)cur, (unsigned long)back);
    else
        ok("brk");
}

static void check_malloc(void)
{
    size_t size = 10 * MiB;
    unsigned char *p = malloc(size);
    if (p == NULL) {
        fail("malloc", "malloc(10 MiB) returned NULL");
        return;
    }
    memset(p, 0x5a, size);
    int bad = 0;
    for (size_t off = 0; off < size; off += PAGE)
        bad += p[off] != 0x5a || p[off + PAGE - 1] != 0x5a;
    free(p);
    CHECK("malloc", bad == 0, "%d pages did not keep their value", bad);
}

static void check_mmap(void)
{
    size_t size = 1 * MiB;
    unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fail("mmap", "%s", strerror(errno));
        return;
    }
    int nonzero = 0, bad = 0;
    for (size_t off = 0; off < size; off += PAGE)
        nonzero += p[off] != 0 || p[off + PAGE - 1] != 0;
    for (size_t off = 0; off < size; off += PAGE)
        p[off] = (unsigned char)(off >> 12) | 1;
    for (size_t off = 0; off < size; off += PAGE)
        bad += p[off] != ((unsigned char)(off >> 12) | 1);
    if (((uintptr_t)p & (PAGE - 1)) != 0)
        fail("mmap", "address %p is not page-aligned", (void *)p);
    else if (nonzero)
        fail("mmap", "%d pages of an anonymous mapping were not zero", nonzero);
    else if (bad)
        fail("mmap", "%d pages did not keep their value", bad);
    else
        ok("mmap");

    if (mprotect(p, size, PROT_READ) != 0)
        fail("mprotect", "%s", strerror(errno));
    else
        CHECK("mprotect", p[PAGE] == ((unsigned char)(PAGE >> 12) | 1),
              "read after mprotect(PROT_READ) gave %d", p[PAGE]);

    CHECK("munmap", munmap(p, size) == 0, "%s", strerror(errno));
}

static void check_getrandom(void)
{
    unsigned char buf[16] = { 0 };
    long r = syscall(SYS_getrandom, buf, sizeof buf, 0);
    int nonzero = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        nonzero |= buf[i];
    if (r != (long)sizeof buf)
        fail("getrandom", "returned %ld, errno %s", r, strerror(errno));
    else
        CHECK("getrandom", nonzero, "16 zero bytes");
}

static void check_clocks(void)
{
    struct timespec a, b;
    if (clock_gettime(CLOCK_MONOTONIC, &a) != 0 || clock_gettime(CLOCK_MONOTONIC, &b) != 0)
        fail("clock-monotonic", "%s", strerror(errno));
    else
        CHECK("clock-monotonic",
              b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec),
              "went backwards: %ld.%09ld then %ld.%09ld",
              (long)a.tv_sec, a.tv_nsec, (long)b.tv_sec, b.tv_nsec);

    struct timespec rt;
    if (clock_gettime(CLOCK_REALTIME, &rt) != 0)
        fail("clock-realtime", "%s", strerror(errno));
    else
        CHECK("clock-realtime", rt.tv_sec > YEAR_2020 && rt.tv_nsec >= 0 && rt.tv_nsec < 1000000000L,
              "%ld.%09ld is not after 2020", (long)rt.tv_sec, rt.tv_nsec);
}

static void check_readlink(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        fail("readlink", "/proc/self/exe: returned %zd, %s", n, strerror(errno));
        return;
    }
    buf[n] = '\0';
    CHECK("readlink", buf[0] == '/', "/proc/self/exe is \"%s\", not an absolute path", buf);
}

static void check_tcgets(void)
{
    if (isatty(STDOUT_FILENO)) {
        skip("ioctl-tcgets", "stdout is a tty");
        return;
    }
    /* Larger than any libc's or the kernel's struct termios. */
    unsigned char tbuf[256];
    errno = 0;
    int r = ioctl(STDOUT_FILENO, TCGETS, tbuf);
    CHECK("ioctl-tcgets", r == -1 && errno == ENOTTY,
          "ioctl(1, TCGETS) on a non-tty returned %d, errno %d (%s), expected -1 ENOTTY",
          r, errno, strerror(errno));
}

static void check_enosys(void)
{
    errno = 0;
    long r = syscall(1000);
    CHECK("enosys", r == -1 && errno == ENOSYS,
          "syscall(1000) returned %ld, errno %d (%s), expected -1 ENOSYS", r, errno, strerror(errno));
}

static void check_enoent(void)
{
    errno = 0;
    int fd = open("/nonexistent-kvmbox/no-such-file", O_RDONLY);
    CHECK("enoent", fd == -1 && errno == ENOENT,
          "open of a missing file returned %d, errno %d (%s), expected -1 ENOENT", fd, errno, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void check_file(const char *path)
{
    if (path == NULL) {
        skip("fstat", "no file argument");
        skip("lseek", "no file argument");
        return;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fail("fstat", "open %s: %s", path, strerror(errno));
        fail("lseek", "open %s: %s", path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fail("fstat", "%s: %s", path, strerror(errno));
        st.st_size = -1;
    } else {
        CHECK("fstat", S_ISREG(st.st_mode) && st.st_size > 0,
              "%s: mode %#o size %lld, expected a non-empty regular file",
              path, (unsigned)st.st_mode, (long long)st.st_size);
    }
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = lseek(fd, 0, SEEK_SET);
    if (end < 0 || start != 0)
        fail("lseek", "SEEK_END returned %lld, SEEK_SET returned %lld: %s",
             (long long)end, (long long)start, strerror(errno));
    else
        CHECK("lseek", end == st.st_size, "SEEK_END returned %lld, fstat size %lld",
              (long long)end, (long long)st.st_size);
    close(fd);
}

static void check_rlimit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0)
        fail("getrlimit", "RLIMIT_STACK: %s", strerror(errno));
    else
        CHECK("getrlimit", rl.rlim_cur > 0 && (rl.rlim_max == RLIM_INFINITY || rl.rlim_cur <= rl.rlim_max),
              "RLIMIT_STACK cur %llu max %llu", (unsigned long long)rl.rlim_cur,
              (unsigned long long)rl.rlim_max);

    /* The raw call (struct rlimit64 is two u64s, the same as x86-64's struct rlimit). */
    struct { uint64_t cur, max; } rl64 = { 0, 0 };
    long r = syscall(SYS_prlimit64, 0, RLIMIT_STACK, NULL, &rl64);
    if (r != 0)
        fail("prlimit64", "returned %ld: %s", r, strerror(errno));
    else
        CHECK("prlimit64", rl64.cur > 0 && rl64.cur <= rl64.max, "RLIMIT_STACK cur %llu max %llu",
              (unsigned long long)rl64.cur, (unsigned long long)rl64.max);
}

static __thread int tls_data = 42; /* .tdata: initialised from the PT_TLS image */
static __thread int tls_bss;       /* .tbss: must start zero */

static void check_tls(void)
{
    /* Both glibc and musl keep a self-pointer at %fs:0 equal to pthread_self();
     * a zero or different value means arch_prctl(ARCH_SET_FS) did not take. */
    uintptr_t fs0;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(fs0));
    CHECK("thread-pointer", fs0 != 0 && fs0 == (uintptr_t)pthread_self(),
          "%%fs:0 is %#lx, pthread_self() is %#lx", (unsigned long)fs0, (unsigned long)pthread_self());

    volatile int *d = &tls_data, *b = &tls_bss;
    int d0 = *d, b0 = *b;
    *d = 0x1234567;
    *b = 0x7654321;
    CHECK("tls", d0 == 42 && b0 == 0 && *d == 0x1234567 && *b == 0x7654321,
          "initial values %d/%d (want 42/0), read back %#x/%#x", d0, b0, *d, *b);
}

static void check_errno(void)
{
    errno = 0;
    int r = close(-1);
    CHECK("errno", r == -1 && errno == EBADF, "close(-1) returned %d, errno %d, expected -1 EBADF", r, errno);
}

int main(int argc, char **argv)
{
    check_write();
    check_writev();
    check_ids();
    check_uname();
    check_brk();
    check_malloc();
    check_mmap();
    check_getrandom();
    check_clocks();
    check_readlink();
    check_tcgets();
    check_enosys();
    check_enoent();
    check_file(argc > 1 ? argv[1] : NULL);
    check_rlimit();
    check_tls();
    check_errno();

    char line[64];
    int n = snprintf(line, sizeof line, "failures=%d\n", failures);
    emit(line, (size_t)n);
    return failures;
}
