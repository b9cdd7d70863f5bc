/* brk and getrandom as the user-mode stub serves them (kernel/stub.S brk_fast, random_fast):
 * the results must be Linux's. Prints one line per check, no addresses, so that the output can be
 * compared with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_brk(unsigned long to) { return syscall(SYS_brk, to); }

int main(int argc, char **argv) {
  const char *argv0 = argc > 1 ? argv[1] : argv[0];
  unsigned long start = sys_brk(0), page = 4096;
  int ok = 1;
  /* Up in small steps, past the heap the host maps at once: each step is where asked, writable. */
  for (unsigned long off = 16384; off <= (2ul << 20); off += 16384) {
    unsigned long got = sys_brk(start + off);
    if (got != start + off) { ok = 0; break; }
    ((volatile char *)(start + off))[-1] = 'x';
  }
  printf("grow in steps: %s\n", ok ? "ok" : "FAIL");
  printf("brk(0) after growing: %s\n", sys_brk(0) == start + (2ul << 20) ? "ok" : "FAIL");
  printf("brk below the heap reports the break: %s\n", sys_brk(page) == start + (2ul << 20) ? "ok" : "FAIL");
  /* Down to start + 8 KiB + 100, then up again: the part given back reads as zero, the page the
   * break stayed in keeps its bytes. */
  memset((void *)start, 0xab, 3 * page);
  unsigned long low = start + 2 * page + 100;
  printf("shrink: %s\n", sys_brk(low) == low ? "ok" : "FAIL");
  printf("grow again: %s\n", sys_brk(start + (1ul << 20)) == start + (1ul << 20) ? "ok" : "FAIL");
  const unsigned char *p = (const unsigned char *)start;
  int kept = p[2 * page + 50] == 0xab, zero = 1;
  for (unsigned long i = 3 * page; i < (1ul << 20); i++) zero &= p[i] == 0;
  printf("bytes below the break kept: %s\n", kept ? "ok" : "FAIL");
  printf("memory given back reads zero: %s\n", zero ? "ok" : "FAIL");
  /* Too far: refused, the break stays. */
  printf("huge brk refused: %s\n", sys_brk(start + (1ul << 40)) == start + (1ul << 20) ? "ok" : "FAIL");

  unsigned char buf[512];
  errno = 0;
  printf("getrandom 8: %zd\n", getrandom(buf, 8, 0));
  printf("getrandom 16 nonblock: %zd\n", getrandom(buf, 16, GRND_NONBLOCK));
  printf("getrandom 32 random: %zd\n", getrandom(buf, 32, GRND_RANDOM | GRND_NONBLOCK));
  errno = 0;
  ssize_t r = getrandom(buf, 8, 0x100);
  printf("getrandom bad flags: %zd %s\n", r, strerror(errno));
  errno = 0;
  r = getrandom(NULL, 8, 0);
  printf("getrandom NULL: %zd %s\n", r, strerror(errno));
  printf("getrandom 0: %zd\n", getrandom(buf, 0, 0));
  printf("getrandom 300: %zd\n", getrandom(buf, 300, 0));
  /* arch_prctl: the FS base read back is the one set; a non-canonical one is refused. */
  unsigned long fs = 0, fs2 = 0;
  syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
  printf("arch_prctl set back: %ld\n", syscall(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, fs));
  syscall(SYS_arch_prctl, 0x1003, &fs2);
  printf("arch_prctl get: %s\n", fs && fs == fs2 ? "ok" : "FAIL");
  errno = 0;
  r = syscall(SYS_arch_prctl, 0x1002, 0x8000000000000000ul); /* above the user range with 4- and 5-level paging */
  printf("arch_prctl bad address: %zd %s\n", r, strerror(errno));
  errno = 0;
  r = syscall(SYS_arch_prctl, 0x1003, (void *)8);
  printf("arch_prctl get to a bad pointer: %zd %s\n", r, strerror(errno));
  /* readlink("/proc/self/exe"): the program's own path (compared with argv[0], made absolute by
   * the caller), cut to the buffer; other paths and bad arguments as Linux. */
  char exe[4096];
  long n = readlink("/proc/self/exe", exe, sizeof exe);
  printf("readlink exe: %s\n", n > 0 && (size_t)n == strlen(argv0) && !memcmp(exe, argv0, n) ? "ok" : "FAIL");
  printf("readlink exe into 4 bytes: %ld\n", (long)readlink("/proc/self/exe", exe, 4));
  errno = 0;
  r = syscall(SYS_readlink, "/proc/self/exe", exe, 0);
  printf("readlink size 0: %zd %s\n", r, strerror(errno));
  errno = 0;
  r = readlink("/proc/self/exe", (char *)16, 100);
  printf("readlink to a bad buffer: %zd %s\n", r, strerror(errno));
  errno = 0;
  r = readlink((char *)16, exe, 100);
  printf("readlink of a bad path: %zd %s\n", r, strerror(errno));
  errno = 0;
  r = readlink("/proc/self/exe/x", exe, 100);
  printf("readlink of a path through exe: %zd %s\n", r, strerror(errno));
  /* prlimit64 reading this process's limits, as getrlimit (served by the host) gives them. */
  struct { unsigned long cur, max; } a1, a2;
  int same = 1;
  for (int res = 0; res < 16; res++) {
    if (syscall(SYS_prlimit64, 0, res, NULL, &a1) != 0 || syscall(SYS_getrlimit, res, &a2) != 0) same = 0;
    else same &= a1.cur == a2.cur && a1.max == a2.max;
  }
  printf("prlimit64 = getrlimit: %s\n", same ? "ok" : "FAIL");
  errno = 0;
  r = syscall(SYS_prlimit64, 0, 99, NULL, &a1);
  printf("prlimit64 bad resource: %zd %s\n", r, strerror(errno));
  errno = 0;
  r = syscall(SYS_prlimit64, 0, 3, NULL, (void *)16);
  printf("prlimit64 to a bad pointer: %zd %s\n", r, strerror(errno));
  printf("prlimit64 without old: %ld\n", syscall(SYS_prlimit64, 0, 3, NULL, NULL));
  unsigned char a[16], b[16];
  getrandom(a, 16, 0);
  getrandom(b, 16, 0);
  printf("two draws differ: %s\n", memcmp(a, b, 16) ? "ok" : "FAIL");
  return 0;
}
