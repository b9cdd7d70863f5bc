/*
 * mmap-file: file-backed mmap as ld.so and programs use it. Usage: mmap-file DIR, where DIR is
 * writable and empty enough for a file "data" (written here: 3 pages + 100 bytes, byte i is
 * i % 251). Prints one line per check: what was asked and what came back (a value or an errno
 * name), so that a native run and a kvmbox run can be compared line by line. Exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096
#define FILE_SIZE (3 * PAGE + 100)

static const char *ename(int e)
{
    switch (e) {
    case 0: return "ok";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EOVERFLOW: return "EOVERFLOW";
    case EEXIST: return "EEXIST";
    default: return strerror(e);
    }
}

static void *map(const char *what, void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    errno = 0;
    void *p = mmap(addr, len, prot, flags, fd, off);
    printf("%s: %s\n", what, p == MAP_FAILED ? ename(errno) : "ok");
    return p == MAP_FAILED ? NULL : p;
}

static void result(const char *what, int r)
{
    printf("%s: %s\n", what, r < 0 ? ename(errno) : "ok");
}

/* Does [p, p+len) hold the file's bytes from off on? */
static int matches(const unsigned char *p, size_t len, size_t off)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)((off + i) % 251)) return 0;
    return 1;
}

static int zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i]) return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mmap-file DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/data", argv[1]);
    static unsigned char data[FILE_SIZE];
    for (size_t i = 0; i < FILE_SIZE; i++) data[i] = (unsigned char)(i % 251);
    int w = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w < 0 || write(w, data, FILE_SIZE) != FILE_SIZE) {
        perror(path);
        return 1;
    }
    int fd = open(path, O_RDONLY);

    /* Whole file, read-only: its bytes, then zeros to the end of the last page. */
    unsigned char *p = map("private read whole", NULL, FILE_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p) {
        printf("  bytes match: %d, tail zero: %d\n", matches(p, FILE_SIZE, 0), zero(p + FILE_SIZE, 4 * PAGE - FILE_SIZE));
        result("  munmap middle page", munmap(p + PAGE, PAGE));
        /* The hole is free again: FIXED_NOREPLACE there succeeds, next to it fails. */
        unsigned char *q = map("  noreplace in the hole", p + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 2 * PAGE);
        if (q) printf("  hole holds page 2: %d\n", q == p + PAGE && matches(q, PAGE, 2 * PAGE));
        map("  noreplace over page 0", p, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
        printf("  page 0 and 2 kept: %d\n", matches(p, PAGE, 0) && matches(p + 2 * PAGE, PAGE, 2 * PAGE));
        munmap(p, 4 * PAGE);
    }

    /* At an offset, writable and private: writes stay in memory, the file is unchanged. */
    p = map("private rw at offset", NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PAGE);
    if (p) {
        printf("  bytes match: %d\n", matches(p, 2 * PAGE, PAGE));
        memset(p, 0xee, 10);
        unsigned char b[10];
        printf("  written: %d, file unchanged: %d\n", p[9] == 0xee, pread(fd, b, 10, PAGE) == 10 && matches(b, 10, PAGE));
        /* mprotect part of it; the rest stays writable. */
        result("  mprotect second page read-only", mprotect(p + PAGE, PAGE, PROT_READ));
        p[0] = 1;
        printf("  first page still writable: %d, second page reads: %d\n", p[0] == 1, matches(p + PAGE, PAGE, 2 * PAGE));
        result("  mprotect whole rw again", mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE));
        p[PAGE] = 2;
        result("  madvise WILLNEED", madvise(p, 2 * PAGE, MADV_WILLNEED));
        result("  munmap first page", munmap(p, PAGE));
        printf("  second page kept: %d\n", p[PAGE] == 2);
        munmap(p + PAGE, PAGE);
    }

    /* As ld.so maps a library: reserve the whole span from the file, then segments MAP_FIXED over it, then bss. */
    p = map("ld.so reserve", NULL, 6 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p) {
        unsigned char *t = map("  fixed text r-x at offset 1 page", p + PAGE, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, PAGE);
        unsigned char *d = map("  fixed data rw- partial page", p + 2 * PAGE, PAGE + 100, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 2 * PAGE);
        unsigned char *b = map("  fixed bss anonymous", p + 4 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
        if (t && d && b) {
            printf("  text: %d, data: %d, data tail zero: %d, bss zero: %d\n", matches(t, PAGE, PAGE), matches(d, PAGE + 100, 2 * PAGE),
                zero(d + PAGE + 100, PAGE - 100), zero(b, 2 * PAGE));
            result("  RELRO mprotect read-only", mprotect(d, PAGE, PROT_READ));
        }
        munmap(p, 6 * PAGE);
    }

    /* Shared, read-only: the file's bytes; it may never become writable through this fd. */
    p = map("shared read", NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (p) {
        printf("  bytes match: %d\n", matches(p, FILE_SIZE, 0));
        result("  mprotect shared rw (fd read-only)", mprotect(p, PAGE, PROT_READ | PROT_WRITE));
        munmap(p, FILE_SIZE);
    }
    map("shared write, fd read-only", NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    /* Refusals. */
    map("offset not page-aligned", NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 100);
    map("offset past off_t", NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, (off_t)0x7fffffffffffe000LL + PAGE);
    map("bad fd", NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 0);
    map("fd write-only", NULL, PAGE, PROT_READ, MAP_PRIVATE, w, 0);
    int pipefd[2];
    if (pipe(pipefd) == 0) map("a pipe", NULL, PAGE, PROT_READ, MAP_PRIVATE, pipefd[0], 0);
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    map("a directory", NULL, PAGE, PROT_READ, MAP_PRIVATE, dir, 0);
    int zfd = open("/dev/zero", O_RDWR);
    if (zfd >= 0) {
        p = map("/dev/zero private", NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, zfd, 0);
        if (p) printf("  zero: %d\n", zero(p, PAGE));
    }
    return 0;
}
