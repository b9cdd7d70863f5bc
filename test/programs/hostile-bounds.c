/* Hostile: grow what the host keeps for the sandbox, each until the sandbox's limit refuses.
 * Prints one line per kind: how many it made, and the errno that stopped it.
 *   links    hard links of one /dev/shm file (tmpfs charges each an inode): ENOSPC
 *   inotify  the same made-up directory watched again keeps its watch
 *   epoll    entries in epoll interest lists, over many epolls (max_user_watches): ENOSPC */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

static const char *ename(int e) {
  return e == ENOSPC ? "ENOSPC" : e == EMFILE ? "EMFILE" : e == 0 ? "none" : strerror(e);
}

int main(void) {
  int fd = open("/dev/shm/bounds", O_CREAT | O_RDWR, 0600);
  if (fd < 0) { perror("open"); return 1; }
  long links = 0;
  int e = 0;
  char name[64];
  for (; links < 100000; links++) {
    snprintf(name, sizeof name, "/dev/shm/l%ld", links);
    if (link("/dev/shm/bounds", name) < 0) { e = errno; break; }
  }
  printf("links: %ld, then %s\n", links, ename(e));
  for (long i = 0; i < links; i++) {
    snprintf(name, sizeof name, "/dev/shm/l%ld", i);
    unlink(name);
  }
  unlink("/dev/shm/bounds");
  close(fd);

  int in = inotify_init1(0);
  int w1 = inotify_add_watch(in, "/", IN_CREATE), w2 = inotify_add_watch(in, "/", IN_CREATE);
  printf("inotify: the same watch again: %s\n", w1 >= 0 && w1 == w2 ? "yes" : "no");
  close(in);

  /* 200 descriptors to watch, then epolls each watching all of them. */
  int fds[200];
  for (int i = 0; i < 200; i++) fds[i] = eventfd(0, 0);
  long entries = 0;
  e = 0;
  for (int k = 0; k < 700 && !e; k++) {
    int ep = epoll_create1(0);
    if (ep < 0) { e = errno; break; }
    for (int i = 0; i < 200; i++) {
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) { e = errno; break; }
      entries++;
    }
  }
  printf("epoll: %ld entries, then %s\n", entries, ename(e));
  return 0;
}
