/*
 * maps: what /proc/self/maps says of this process's own mappings, and what glibc's and musl's
 * pthread_getattr_np find from it for the main thread. Prints only what is the same on Linux and
 * in kvmbox (no addresses), protection keys included: one check per line, "name: 1" when it holds. argv[1]: a readable
 * file of at least 8 KiB, given by its absolute path, that the program maps. Exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* The line of /proc/self/maps whose range starts at start, or NULL. */
static char *line_at(unsigned long start)
{
    static char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return NULL;
    while (fgets(line, sizeof line, f)) {
        if (strtoul(line, NULL, 16) == start) {
            fclose(f);
            line[strcspn(line, "\n")] = 0;
            return line;
        }
    }
    fclose(f);
    return NULL;
}

/* Fields of a line: end address, rights, offset and name. */
static int fields(const char *line, unsigned long *end, char rights[5], unsigned long *offset, const char **name)
{
    int at = 0;
    if (!line || sscanf(line, "%*lx-%lx %4s %lx %*s %*s%n", end, rights, offset, &at) != 3) return 0;
    const char *n = line + at;
    while (*n == ' ') n++;
    *name = n;
    return 1;
}

/* The line whose range holds addr, or NULL. */
static char *line_holding(unsigned long addr)
{
    static char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return NULL;
    while (fgets(line, sizeof line, f)) {
        char *dash;
        unsigned long a = strtoul(line, &dash, 16), b = strtoul(dash + 1, NULL, 16);
        if (a <= addr && addr < b) {
            fclose(f);
            line[strcspn(line, "\n")] = 0;
            return line;
        }
    }
    fclose(f);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    long page = sysconf(_SC_PAGESIZE);
    unsigned long end, offset;
    char rights[5];
    const char *name;

    /* The main thread's stack, as pthread_getattr_np finds it. */
    int local = 0;
    pthread_attr_t attr;
    void *stack = NULL;
    size_t size = 0;
    int got = pthread_getattr_np(pthread_self(), &attr) == 0 && pthread_attr_getstack(&attr, &stack, &size) == 0;
    printf("main stack found: %d\n", got && (char *)&local >= (char *)stack && (char *)&local < (char *)stack + size);
    char *l = line_holding((unsigned long)&local);
    printf("stack line: %d\n", fields(l, &end, rights, &offset, &name) && !strcmp(rights, "rw-p") && !strcmp(name, "[stack]"));

    /* A file mapped from its second page. */
    int fd = open(argv[1], O_RDONLY);
    char *file = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, page);
    l = line_at((unsigned long)file);
    printf("file line: %d\n", fields(l, &end, rights, &offset, &name) && end == (unsigned long)file + page &&
           !strcmp(rights, "r--p") && offset == (unsigned long)page && !strcmp(name, argv[1]));
    /* Its device and inode, as fstat gives them (lsof lists mapped files by them). */
    struct stat st;
    unsigned int major = 0, minor = 0;
    unsigned long ino = 0;
    printf("file device and inode: %d\n", l && fstat(fd, &st) == 0 && sscanf(l, "%*lx-%*lx %*s %*lx %x:%x %lu", &major, &minor, &ino) == 3 &&
           major == major(st.st_dev) && minor == minor(st.st_dev) && ino == st.st_ino);

    /* Three anonymous pages, the middle one made PROT_NONE: three lines. */
    char *anon = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(anon + page, page, PROT_NONE);
    int split = 1;
    const char *want[3] = { "rw-p", "---p", "rw-p" };
    for (int i = 0; i < 3; i++) {
        /* (The outer two may run on into neighbouring anonymous memory with the same rights.) */
        l = line_holding((unsigned long)anon + i * page);
        split &= fields(l, &end, rights, &offset, &name) && !strcmp(rights, want[i]) && name[0] == 0 &&
                 (i != 1 || (strtoul(l, NULL, 16) == (unsigned long)anon + page && end == (unsigned long)anon + 2 * page));
    }
    printf("mprotect splits: %d\n", split);

    /* Shared memory is 's'. */
    char *shared = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    l = line_at((unsigned long)shared);
    printf("shared line: %d\n", fields(l, &end, rights, &offset, &name) && !strcmp(rights, "rw-s"));

    /* munmap takes a file's line away. */
    munmap(file, page);
    printf("unmapped: %d\n", line_at((unsigned long)file) == NULL);

    /* Protection keys: a key is given or, without PKU, none (EINVAL, or ENOSPC when all are
     * taken); pkey_mprotect without a key (-1) is mprotect, with a key never allocated EINVAL. */
    errno = 0;
    printf("pkey bad flags: %d\n", syscall(SYS_pkey_alloc, 1, 0) == -1 && errno == EINVAL);
    long key = syscall(SYS_pkey_alloc, 0, 0);
    int keyed = key >= 1 || (key == -1 && (errno == EINVAL || errno == ENOSPC));
    if (key >= 1) syscall(SYS_pkey_free, key);
    printf("pkey alloc: %d\n", keyed);
    printf("pkey_mprotect -1: %d\n", syscall(SYS_pkey_mprotect, anon, page, PROT_READ, -1) == 0 &&
           syscall(SYS_pkey_mprotect, anon, page, PROT_READ | PROT_WRITE, -1) == 0);
    errno = 0;
    printf("pkey_mprotect unallocated: %d\n", syscall(SYS_pkey_mprotect, anon, page, PROT_READ, 15) == -1 && errno == EINVAL);
    errno = 0;
    printf("pkey_free unallocated: %d\n", syscall(SYS_pkey_free, 15) == -1 && errno == EINVAL);

    /* The program's code is named after the program. */
    l = line_holding((unsigned long)main);
    const char *base = strrchr(argv[0], '/');
    printf("code named: %d\n", fields(l, &end, rights, &offset, &name) && rights[2] == 'x' &&
           strlen(name) >= strlen(base) && !strcmp(name + strlen(name) - strlen(base), base));
    return 0;
}
