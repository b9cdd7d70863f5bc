/* Hostile: MAP_SHARED anonymous memory past the sandbox's limits. Each shared mapping is host
 * memory of its own (a host descriptor), so a sandbox may hold only so many (1024) and only
 * --memory bytes of them in all; past either, mmap fails with ENOMEM, and what is unmapped is
 * given back. Prints:
 *   maps=N errno=E      small shared mappings made before the first failure (of at most 5000)
 *   again=ok|failed     after unmapping them all, one more can be made
 *   big errno=E         a shared mapping of argv[1] MiB (more than --memory)
 *   halves=N errno=E    mappings of argv[2] MiB each, touched, until failure (at most 8)
 *   files=N errno=E     empty files made in /dev/shm until failure (at most 5000), then removed
 *   filemib=N errno=E   MiB written to one /dev/shm file until failure (at most 1024)
 * (/dev/shm, as tmpfs, says ENOSPC when full.) Natively this would fill the host's /dev/shm: it
 * is only run in kvmbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_MAPS 5000

static void *shared(size_t len) {
  return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

int main(int argc, char **argv) {
  size_t big = (size_t)atol(argc > 1 ? argv[1] : "512") << 20;
  size_t half = (size_t)atol(argc > 2 ? argv[2] : "100") << 20;
  static void *maps[MAX_MAPS];
  int n = 0, err = 0;
  for (; n < MAX_MAPS; n++) {
    void *p = shared(4096);
    if (p == MAP_FAILED) { err = errno; break; }
    *(volatile char *)p = 1;
    maps[n] = p;
  }
  printf("maps=%d errno=%d\n", n, err);
  for (int i = 0; i < n; i++) munmap(maps[i], 4096);
  void *p = shared(4096);
  printf("again=%s\n", p == MAP_FAILED ? "failed" : "ok");
  if (p != MAP_FAILED) munmap(p, 4096);
  p = shared(big);
  printf("big errno=%d\n", p == MAP_FAILED ? errno : 0);
  int halves = 0;
  err = 0;
  char *kept[8];
  for (; halves < 8; halves++) {
    char *h = shared(half);
    if (h == MAP_FAILED) { err = errno; break; }
    memset(h, 0x5a, half);
    kept[halves] = h;
  }
  printf("halves=%d errno=%d\n", halves, err);
  for (int i = 0; i < halves; i++) munmap(kept[i], half);
  int files = 0;
  err = 0;
  char name[64];
  for (; files < MAX_MAPS; files++) {
    snprintf(name, sizeof name, "/dev/shm/bomb-%d", files);
    int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { err = errno; break; }
    close(fd);
  }
  printf("files=%d errno=%d\n", files, err);
  for (int i = 0; i < files; i++) {
    snprintf(name, sizeof name, "/dev/shm/bomb-%d", i);
    unlink(name);
  }
  static char mib[1 << 20];
  memset(mib, 0x33, sizeof mib);
  int fd = open("/dev/shm/bomb-big", O_RDWR | O_CREAT | O_EXCL, 0600);
  int written = 0;
  err = fd < 0 ? errno : 0;
  for (; fd >= 0 && written < 1024; written++) {
    if (write(fd, mib, sizeof mib) != (ssize_t)sizeof mib) { err = errno; break; }
  }
  printf("filemib=%d errno=%d\n", written, err);
  return 0;
}
