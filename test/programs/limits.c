/* Host-side limits (issue 12, items 4 and 5): a program that waits on, or fills, what the host
 * holds for it. argv[1] says what:
 *   read-stdin          read fd 0 once; prints what read returned
 *   poll-stdin          poll fd 0 for input without a timeout
 *   open-fifo PATH r|w|rn   open PATH O_RDONLY, O_WRONLY or O_RDONLY|O_NONBLOCK; prints the
 *                       result or errno, then stat's file type
 *   pipes N CHUNK       make up to N pipes, ask 1 MiB of each (F_SETPIPE_SZ), fill each with
 *                       non-blocking writes of CHUNK bytes; prints the counts and bytes held
 *   flood FD CHUNK      write CHUNK-byte blocks to FD forever
 *   sleep               sleep for an hour
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char block[1 << 16];

static const char *ename(int e) {
  switch (e) {
  case ENXIO: return "ENXIO";
  case EPERM: return "EPERM";
  case ENFILE: return "ENFILE";
  case EMFILE: return "EMFILE";
  case EAGAIN: return "EAGAIN";
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case EROFS: return "EROFS";
  default: { static char b[16]; snprintf(b, sizeof b, "%d", e); return b; }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *what = argv[1];
  /* For the tests that time a wait: the moment the program runs (stderr is unbuffered). */
  if (!strcmp(what, "read-stdin") || !strcmp(what, "poll-stdin") || !strcmp(what, "flood"))
    if (write(2, "started\n", 8) < 0) return 1;
  if (!strcmp(what, "read-stdin")) {
    char buf[64];
    ssize_t n = read(0, buf, sizeof buf);
    printf("read=%zd errno=%d\n", n, n < 0 ? errno : 0);
    return 0;
  }
  if (!strcmp(what, "poll-stdin")) {
    struct pollfd p = {0, POLLIN, 0};
    int n = poll(&p, 1, -1);
    printf("poll=%d\n", n);
    return 0;
  }
  if (!strcmp(what, "open-fifo") && argc >= 4) {
    int flags = argv[3][0] == 'w' ? O_WRONLY : argv[3][1] == 'n' ? O_RDONLY | O_NONBLOCK : O_RDONLY;
    int fd = open(argv[2], flags);
    printf("open=%d errno=%s\n", fd, fd < 0 ? ename(errno) : "0");
    struct stat st;
    if (stat(argv[2], &st) == 0) printf("fifo=%d\n", S_ISFIFO(st.st_mode) ? 1 : 0);
    if (fd >= 0) {
      char c;
      ssize_t n = read(fd, &c, 1);
      printf("read=%zd\n", n);
    }
    return 0;
  }
  if (!strcmp(what, "pipes") && argc >= 4) {
    int n = atoi(argv[2]);
    size_t chunk = (size_t)atol(argv[3]);
    if (chunk == 0 || chunk > sizeof block) return 2;
    memset(block, 'p', sizeof block);
    long held = 0, made = 0, grown = 0, eperm = 0, nomore = 0;
    for (int i = 0; i < n; i++) {
      int p[2];
      if (pipe2(p, O_NONBLOCK) < 0) { nomore = errno; break; }
      made++;
      if (fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= 0) grown++;
      else if (errno == EPERM) eperm++;
      for (;;) {
        ssize_t w = write(p[1], block, chunk);
        if (w <= 0) break;
        held += w;
      }
    }
    printf("made=%ld grown=%ld eperm=%ld nomore=%s held=%ld\n", made, grown, eperm,
           nomore ? ename((int)nomore) : "0", held);
    return 0;
  }
  if (!strcmp(what, "flood") && argc >= 4) {
    int fd = atoi(argv[2]);
    size_t chunk = (size_t)atol(argv[3]);
    if (chunk == 0 || chunk > sizeof block) return 2;
    memset(block, 'f', sizeof block);
    for (;;) if (write(fd, block, chunk) < 0) return 1;
  }
  if (!strcmp(what, "sleep")) {
    struct timespec ts = {3600, 0};
    nanosleep(&ts, 0);
    return 0;
  }
  return 2;
}
