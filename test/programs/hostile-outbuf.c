/* Hostile: forge records in the stub's output buffer (OUTBUF, user memory) so that the host
 * would write them to a file the program holds open, not to its captured stdout. argv[1]: a file
 * in a --rw grant, which must stay empty. The addresses are the ABI's (abi/hypercalls.json). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define OUTBUF 0xc0000ul
#define SH_OUT_POS (0xe000ul + 2608)

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int fd = open(argv[1], O_WRONLY);
  if (fd < 0) return 3;
  volatile unsigned int *rec = (volatile unsigned int *)OUTBUF;
  rec[0] = (unsigned)fd; /* not a captured descriptor */
  rec[1] = 5;
  memcpy((void *)(OUTBUF + 8), "HELLO", 5);
  rec[4] = 1; /* then one for stdout, which is the program's own anyway */
  rec[5] = 6;
  memcpy((void *)(OUTBUF + 24), "forged", 6);
  *(volatile unsigned int *)SH_OUT_POS = 32;
  struct utsname u;
  uname(&u); /* a call the host serves: it drains OUTBUF first */
  *(volatile unsigned int *)SH_OUT_POS = 0xfffffff0; /* and a position past the end */
  uname(&u);
  printf("done\n");
  return 0;
}
