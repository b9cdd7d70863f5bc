/* Read-only parts of programs and libraries are mapped from images that every process and run
 * shares (src/linux/image-cache.ts). A process that makes such pages writable and changes them
 * changes its own copy only: its fork child inherits the change, but a program exec'd afterwards,
 * another mapping of the same file, and read(2) of the file see the original bytes. Prints the
 * same natively.
 *   images rodata | file FILE | show | all FILE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "images: %s:%d: %s failed (errno %d %s)\n", __func__, __LINE__, #cond, \
              errno, strerror(errno));                                                         \
      exit(99);                                                                                \
    }                                                                                          \
  } while (0)

/* In .rodata: a read-only segment, mapped from the program's image. Page-aligned and a page
 * long, so that the mprotect below covers it alone. */
static const char message[4096] __attribute__((aligned(4096))) = "the original rodata";
static const char *self;

static void reap(pid_t pid) {
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int t_rodata(void) {
  char *m = (char *)message;
  CHECK(mprotect(m, 4096, PROT_READ | PROT_WRITE) == 0);
  strcpy(m, "changed by the process");
  CHECK(mprotect(m, 4096, PROT_READ) == 0);
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    printf("rodata: fork child sees '%s'\n", message);
    fflush(stdout);
    execl(self, self, "show", (char *)NULL);
    _exit(127);
  }
  reap(pid);
  printf("rodata: the process sees '%s'\n", message);
  return 0;
}

static void hex4(const char *what, const unsigned char *p) {
  printf("file: %s %02x%02x%02x%02x\n", what, p[0], p[1], p[2], p[3]);
}

static int t_file(const char *path) {
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  unsigned char *a = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
  CHECK(a != MAP_FAILED);
  unsigned char *b = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
  CHECK(b != MAP_FAILED);
  CHECK(mprotect(a, 8192, PROT_READ | PROT_WRITE) == 0);
  memcpy(a, "XXXX", 4);
  memcpy(a + 4096, "YYYY", 4);
  hex4("written mapping", a);
  hex4("other mapping", b);
  unsigned char buf[4];
  CHECK(pread(fd, buf, 4, 0) == 4);
  hex4("read", buf);
  CHECK(munmap(a, 8192) == 0);
  unsigned char *c = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  CHECK(c != MAP_FAILED);
  hex4("new mapping", c);
  hex4("new mapping, 2nd page", c + 4096);
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    hex4("fork child's mapping", c);
    exit(0);
  }
  reap(pid);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  self = argv[0];
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "show")) {
    printf("show: a new program sees '%s'\n", message);
    return 0;
  }
  if (!strcmp(what, "rodata")) return t_rodata();
  if (!strcmp(what, "file") && argc > 2) return t_file(argv[2]);
  if (!strcmp(what, "all") && argc > 2) {
    int r = t_rodata();
    return r ? r : t_file(argv[2]);
  }
  fprintf(stderr, "usage: images rodata | file FILE | show | all FILE\n");
  return 2;
}
