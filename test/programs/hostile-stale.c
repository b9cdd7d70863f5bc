/* Hostile: use rights a previous program had on a page, in a reused VM. "a": map a fixed page
 * read-write and write to it. "b": map the same page read-only and write to it: that must fault
 * (SIGSEGV), as on a fresh machine, even though the last program's translation allowed writes. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define WHERE ((void *)0x8000000) /* 128 MiB: inside the default 256 MiB, clear of image, heap and stack */

int main(int argc, char **argv) {
  int writable = argc > 1 && strcmp(argv[1], "a") == 0;
  volatile unsigned char *p = mmap(WHERE, 4096, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if ((void *)p != WHERE) return 2;
  if (p[0] != 0) return 3; /* a page handed out is zeroed either way */
  printf("mapped %s\n", writable ? "rw" : "r");
  fflush(stdout);
  p[0] = 1; /* "b": SIGSEGV here */
  return writable ? 0 : 4;
}
