/* mapgrow DIR: mappings of a file that grows. A page wholly past the file's end is SIGBUS
 * (BUS_ADRERR, si_addr the page) and EFAULT to a system call that reads it; once the file has grown over it, it
 * holds the file's bytes, and mremap grows a mapping with more of the file. For private and
 * shared mappings, from read-only and read-write fds. Writes a file f-LABEL in DIR per case.
 * Prints the same natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
static sigjmp_buf jb;
static volatile int got, gotcode;
static void *volatile gotaddr;

static void onfault(int sig, siginfo_t *si, void *uc)
{
  (void)uc;
  got = sig;
  gotcode = si->si_code;
  gotaddr = si->si_addr;
  siglongjmp(jb, 1);
}

/* 0 when the byte at p can be read, else the signal. */
static int touch(volatile char *p)
{
  got = 0;
  if (sigsetjmp(jb, 1) == 0) {
    (void)*p;
    return 0;
  }
  return got;
}

static const char *said(int sig) { return sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : sig ? "other" : "read"; }

/* Pages from..from+pages-1 of the file, each filled with 'A' + its number. */
static void fill(int fd, int from, int pages)
{
  char b[PAGE];
  for (int i = from; i < from + pages; i++) {
    memset(b, 'A' + i, PAGE);
    if (pwrite(fd, b, PAGE, (off_t)i * PAGE) != PAGE) perror("pwrite");
  }
}

/* The rights of /proc/self/maps's line holding a, and whether that line is [lo, hi). */
static void maps(const char *label, const char *what, char *a, char *lo, char *hi)
{
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    unsigned long s, e;
    char rights[5];
    if (sscanf(line, "%lx-%lx %4s", &s, &e, rights) != 3) continue;
    if ((uintptr_t)a >= s && (uintptr_t)a < e) {
      printf("%s: maps %s: %s, whole mapping %d\n", label, what, rights, s == (uintptr_t)lo && e == (uintptr_t)hi);
      break;
    }
  }
  if (f) fclose(f);
}

static void run(const char *dir, const char *label, int oflags, int mflags, int prot)
{
  char path[512];
  snprintf(path, sizeof path, "%s/f-%s", dir, label);
  unlink(path);
  int w = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  int pipefd[2];
  pipe(pipefd);
  int null = pipefd[1]; /* /dev/null would not read the bytes */
  char sink[64];
  fill(w, 0, 1);
  int fd = open(path, oflags);
  char *m = mmap(NULL, 3 * PAGE, prot, mflags, fd, 0);
  if (m == MAP_FAILED) {
    printf("%s: mmap %s\n", label, strerror(errno));
    return;
  }
  int s = touch(m + PAGE);
  printf("%s: page 1 past the end: %s, code %d, address right %d\n", label, said(s), s ? gotcode : 0, s ? gotaddr == m + PAGE : 0);
  s = touch(m + 100);
  printf("%s: page 0: %s %c\n", label, said(s), s ? '-' : m[100]);
  /* MADV_DONTNEED: the page is the file's again (what a private mapping wrote is gone). */
  if ((prot & PROT_WRITE) && (mflags & MAP_PRIVATE)) m[100] = 'x';
  int ma = madvise(m, PAGE, MADV_DONTNEED);
  printf("%s: MADV_DONTNEED: %d, page 0 %c\n", label, ma, m[100]);
  maps(label, "past the end", m + 2 * PAGE, m, m + 3 * PAGE);
  errno = 0;
  ssize_t n = write(null, m + PAGE, 10);
  printf("%s: write from past the end: %zd %s\n", label, n, n < 0 ? strerror(errno) : "");
  if (n > 0) read(pipefd[0], sink, (size_t)n);
  fill(w, 1, 1);
  s = touch(m + PAGE);
  printf("%s: page 1 once the file grew: %s %c\n", label, said(s), s ? '-' : m[PAGE]);
  s = touch(m + 2 * PAGE + 10);
  printf("%s: page 2 still past the end: %s\n", label, said(s));
  fill(w, 2, 3);
  n = write(null, m + 2 * PAGE, 10);
  printf("%s: write from page 2 once the file grew: %zd\n", label, n);
  if (n > 0) read(pipefd[0], sink, (size_t)n);
  char *r = mremap(m, 3 * PAGE, 5 * PAGE, MREMAP_MAYMOVE);
  if (r == MAP_FAILED) {
    printf("%s: mremap %s\n", label, strerror(errno));
    return;
  }
  s = touch(r + 4 * PAGE);
  printf("%s: grown by mremap, page 4: %s %c\n", label, said(s), s ? '-' : r[4 * PAGE]);
  s = touch(r + 2 * PAGE);
  printf("%s: grown by mremap, page 2: %s %c\n", label, said(s), s ? '-' : r[2 * PAGE]);
  if (prot & PROT_WRITE) {
    r[4 * PAGE + 1] = 'z';
    msync(r, 5 * PAGE, MS_SYNC);
    char c = 0;
    pread(w, &c, 1, 4 * PAGE + 1);
    printf("%s: written through the mapping, the file has: %c\n", label, c);
  }
  /* Made readable by mprotect: still past the end, still SIGBUS. */
  char *q = mmap(NULL, 2 * PAGE, PROT_NONE, mflags, fd, 4 * PAGE);
  int pr = mprotect(q, 2 * PAGE, PROT_READ);
  s = touch(q + PAGE);
  printf("%s: past the end, mprotect'ed readable (%d): %s; page 0 %c\n", label, pr, said(s), q[0]);
  /* PROT_NONE past the end: the rights come first (SIGSEGV). */
  mprotect(q, 2 * PAGE, PROT_NONE);
  s = touch(q + PAGE);
  printf("%s: past the end, PROT_NONE: %s\n", label, said(s));
  munmap(q, 2 * PAGE);
  munmap(r, 5 * PAGE);
  /* Unmapped and closed: the file's mapping no longer holds it; a new one past the end. */
  char *z = mmap(NULL, 8 * PAGE, PROT_READ, mflags, fd, 0);
  close(fd);
  s = touch(z + 7 * PAGE);
  printf("%s: a new mapping past the end, fd closed: %s\n", label, said(s));
  fill(w, 5, 3);
  s = touch(z + 7 * PAGE);
  printf("%s: and once the file grew: %s %c\n", label, said(s), s ? '-' : z[7 * PAGE]);
  munmap(z, 8 * PAGE);
  close(w);
  close(pipefd[0]);
  close(pipefd[1]);
  unlink(path);
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : ".";
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = onfault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGBUS, &sa, 0);
  sigaction(SIGSEGV, &sa, 0);
  setvbuf(stdout, NULL, _IONBF, 0);
  run(dir, "private-ro", O_RDONLY, MAP_PRIVATE, PROT_READ);
  run(dir, "private-rw", O_RDONLY, MAP_PRIVATE, PROT_READ | PROT_WRITE);
  run(dir, "shared-ro-rdonly", O_RDONLY, MAP_SHARED, PROT_READ);
  run(dir, "shared-ro-rdwr", O_RDWR, MAP_SHARED, PROT_READ);
  run(dir, "shared-rw", O_RDWR, MAP_SHARED, PROT_READ | PROT_WRITE);
  /* memfd: the same rules (tmpfs). */
  int mf = memfd_create("grow", 0);
  char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
  ftruncate(mf, PAGE);
  int s = touch(m + PAGE);
  printf("memfd: page 1 past the end: %s\n", said(s));
  ftruncate(mf, 2 * PAGE);
  s = touch(m + PAGE);
  printf("memfd: once grown: %s %d\n", said(s), s ? -1 : m[PAGE]);
  return 0;
}
