/* Hostile: descriptors in flight (SCM_RIGHTS) that nothing will receive.
 *   cycle N FILE   N times: a socket pair; FILE opened and sent, with the pair's receiving end
 *                  itself, into that end's own queue; every descriptor closed. Nothing can reach
 *                  those files again: the host must still close them when the sandbox ends.
 *   flood FILE     FILE sent 200 times over each of 8 socket pairs, one per message, until a
 *                  send fails: the descriptors in flight of a sandbox are bounded (ETOOMANYREFS
 *                  past its descriptor limit, as Linux bounds a user's unless privileged). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int send_fds(int sock, const int *fds, int n) {
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int) * 4)];
  memset(control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * n);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  return sendmsg(sock, &msg, MSG_DONTWAIT) < 0 ? errno : 0;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  if (!strcmp(argv[1], "cycle") && argc > 3) {
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) { perror("socketpair"); return 1; }
      int f = open(argv[3], O_RDONLY);
      if (f < 0) { perror("open"); return 1; }
      int fds[2] = {f, sv[1]};
      int e = send_fds(sv[0], fds, 2);
      if (e) { printf("cycle: send: %s\n", strerror(e)); return 1; }
      close(f);
      close(sv[0]);
      close(sv[1]);
    }
    printf("cycle: %ld files left in flight\n", n);
    return 0;
  }
  if (!strcmp(argv[1], "flood")) {
    int f = open(argv[2], O_RDONLY);
    if (f < 0) { perror("open"); return 1; }
    long sent = 0;
    int e = 0;
    for (int p = 0; p < 8 && !e; p++) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) { e = errno; break; }
      for (int i = 0; i < 200 && !(e = send_fds(sv[0], &f, 1)); i++) sent++;
    }
    printf("flood: %ld descriptors in flight, then %s\n", sent, e == ETOOMANYREFS ? "ETOOMANYREFS" : e ? strerror(e) : "no error");
    return 0;
  }
  return 2;
}
