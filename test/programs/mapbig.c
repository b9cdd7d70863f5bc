/* mapbig DIR: a read-only mapping of a file larger than the sandbox's memory, of which a part is
 * read (kvmbox fills such a mapping where it is read). Writes a 512 MiB sparse file DIR/big with
 * a pattern at a few places, maps it whole (private and shared), reads the pattern back through
 * the mapping and through write(2) from it, and touches the page past the end. Prints the same
 * natively. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1024L * 1024)
#define SIZE (512 * MIB + 100)
#define PAGE 4096
static sigjmp_buf jb;

static void onbus(int sig) { siglongjmp(jb, sig); }

static unsigned char pattern(long i) { return (unsigned char)((i * 2654435761u) >> 13); }

/* A checksum of n bytes at p. */
static uint32_t sum(const unsigned char *p, long n)
{
  uint32_t h = 2166136261u;
  for (long i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : ".";
  char path[512], out[512];
  snprintf(path, sizeof path, "%s/big", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGBUS, onbus);
  int w = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (w < 0 || ftruncate(w, SIZE) != 0) { perror("big"); return 1; }
  /* 8 MiB of pattern starting off a chunk boundary, and a few bytes at the very end. */
  static unsigned char buf[8 * MIB];
  for (long i = 0; i < (long)sizeof buf; i++) buf[i] = pattern(i);
  const long at = 100 * MIB + 12345;
  pwrite(w, buf, sizeof buf, at);
  pwrite(w, "tail", 4, SIZE - 4);
  uint32_t want = sum(buf, sizeof buf);
  close(w);
  int fd = open(path, O_RDONLY);
  const int types[2] = { MAP_PRIVATE, MAP_SHARED };
  for (int k = 0; k < 2; k++) {
    const char *label = k ? "shared" : "private";
    unsigned char *m = mmap(NULL, SIZE + PAGE, PROT_READ, types[k], fd, 0);
    if (m == MAP_FAILED) { printf("%s: mmap failed\n", label); continue; }
    printf("%s: first byte %d, pattern %s, tail %.4s\n", label, m[0], sum(m + at, sizeof buf) == want ? "same" : "differs", (const char *)m + SIZE - 4);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t n = write(o, m + at + 3 * MIB, 4 * MIB);
    close(o);
    o = open(out, O_RDONLY);
    static unsigned char back[4 * MIB];
    ssize_t r = read(o, back, sizeof back);
    close(o);
    printf("%s: write from the mapping %zd, read back %zd, %s\n", label, n, r, r == 4 * MIB && !memcmp(back, buf + 3 * MIB, 4 * MIB) ? "same" : "differs");
    int sig = sigsetjmp(jb, 1);
    if (sig == 0) {
      volatile unsigned char c = m[SIZE + PAGE - 1];
      (void)c;
      printf("%s: the page past the end reads\n", label);
    } else {
      printf("%s: the page past the end: %s\n", label, sig == SIGBUS ? "SIGBUS" : "other");
    }
    /* A mapping at an offset, and one of a middle part. */
    unsigned char *q = mmap(NULL, 16 * MIB, PROT_READ, types[k], fd, 96 * MIB);
    printf("%s: at an offset: %s\n", label, q != MAP_FAILED && sum(q + at - 96 * MIB, sizeof buf) == want ? "same" : "differs");
    munmap(q, 16 * MIB);
    munmap(m, SIZE + PAGE);
  }
  close(fd);
  unlink(path);
  unlink(out);
  return 0;
}
