/* Hostile: pass bad pointers to system calls. Every one must fail with EFAULT (never crash the
 * sandbox or read/write the guest kernel). Prints one line per check; exit status = failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void expect_efault(const char *name, long r) {
  if (r == -1 && errno == EFAULT) { printf("ok %s\n", name); return; }
  printf("FAIL %s: r=%ld errno=%d\n", name, r, errno);
  failures++;
}
#define KERNEL ((void *)0xffffffff80020000UL)
#define NONCANON ((void *)0x0000800000000000UL)
#define UNMAPPED ((void *)0x1000UL)
static const char rodata[4096] = "read-only";

int main(int argc, char **argv) {
  char buf[64];
  struct iovec iov = { KERNEL, 16 };
  expect_efault("write-kernel", syscall(SYS_write, 1, KERNEL, 16));
  expect_efault("write-null", syscall(SYS_write, 1, NULL, 16));
  expect_efault("write-noncanonical", syscall(SYS_write, 1, NONCANON, 16));
  expect_efault("write-unmapped", syscall(SYS_write, 1, UNMAPPED, 16));
  expect_efault("write-overflow-len", syscall(SYS_write, 1, buf, 0xfffffffffffff000UL));
  expect_efault("write-wraparound", syscall(SYS_write, 1, (void *)0xfffffffffffffff0UL, 0x20));
  expect_efault("read-into-kernel", syscall(SYS_read, open("/dev/zero", O_RDONLY), KERNEL, 16));
  expect_efault("read-into-rodata", syscall(SYS_read, open("/dev/zero", O_RDONLY), (void *)rodata, 16));
  expect_efault("open-kernel-path", syscall(SYS_open, KERNEL, O_RDONLY));
  expect_efault("open-unmapped-path", syscall(SYS_open, UNMAPPED, O_RDONLY));
  expect_efault("stat-kernel-buf", syscall(SYS_stat, "/", KERNEL));
  expect_efault("uname-kernel", syscall(SYS_uname, KERNEL));
  expect_efault("getrandom-kernel", syscall(SYS_getrandom, KERNEL, 16, 0));
  expect_efault("clock_gettime-kernel", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, KERNEL));
  expect_efault("writev-kernel-iov", syscall(SYS_writev, 1, &iov, 1));
  expect_efault("writev-iov-array-kernel", syscall(SYS_writev, 1, KERNEL, 1));
  expect_efault("readlink-kernel-buf", syscall(SYS_readlink, "/proc/self/exe", KERNEL, 64));
  expect_efault("getcwd-kernel", syscall(SYS_getcwd, KERNEL, 64));
  expect_efault("pipe-kernel", syscall(SYS_pipe2, KERNEL, 0));
  if (argc > 1) {
    /* A regular file read in full buffers is read ahead by the host; the next reads are answered
     * in user mode from the cache, and a bad buffer must still give EFAULT, with nothing lost. */
    int fd = open(argv[1], O_RDONLY);
    char first[4096], again[16];
    if (fd < 0 || read(fd, first, sizeof first) != (ssize_t)sizeof first) { printf("FAIL cached-read setup\n"); failures++; }
    expect_efault("cached-read-into-kernel", syscall(SYS_read, fd, KERNEL, 16));
    expect_efault("cached-read-into-rodata", syscall(SYS_read, fd, (void *)rodata, 16));
    expect_efault("cached-read-into-unmapped", syscall(SYS_read, fd, UNMAPPED, 16));
    /* The failed reads consumed nothing: the next read continues at offset 4096. */
    char expect[16];
    int fd2 = open(argv[1], O_RDONLY);
    pread(fd2, expect, sizeof expect, 4096);
    if (read(fd, again, sizeof again) != (ssize_t)sizeof again || memcmp(again, expect, sizeof again)) {
      printf("FAIL cached-read-continues\n");
      failures++;
    } else printf("ok cached-read-continues\n");
    if (lseek(fd, 0, SEEK_CUR) != 4096 + 16) { printf("FAIL cached-read-offset\n"); failures++; } else printf("ok cached-read-offset\n");
  }
  printf("failures=%d\n", failures);
  return failures;
}
