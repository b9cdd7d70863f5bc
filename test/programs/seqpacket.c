/* socketpair(AF_UNIX, SOCK_SEQPACKET) and SOCK_DGRAM: messages keep their boundaries. A receive
 * takes one message (an empty one too), drops what does not fit (MSG_TRUNC), fills several
 * iovecs from one message; descriptors travel with a message; the peer's exit reads as 0 on a
 * seqpacket pair (a datagram pair has no end: a receive waits, a send is refused); a message larger than the send buffer is EMSGSIZE. Rust's std spawns its
 * children with such a pair. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void got(const char *what, long n, const char *buf) {
  if (n < 0) printf("%s: -1 %s\n", what, strerror(errno));
  else printf("%s: %ld \"%.*s\"\n", what, n, (int)n, buf);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  int sv[2];
  char buf[64];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) { perror("socketpair"); return 1; }
  int type = 0;
  socklen_t tl = sizeof type;
  getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &tl);
  printf("SO_TYPE %d\n", type);
  send(sv[0], "a", 1, 0);
  send(sv[0], "bbbb", 4, 0);
  send(sv[0], "", 0, 0);
  char big[100];
  memset(big, 'c', sizeof big);
  send(sv[0], big, sizeof big, 0);
  got("one", recv(sv[1], buf, sizeof buf, 0), buf);
  got("two", recv(sv[1], buf, sizeof buf, 0), buf);
  got("empty", recv(sv[1], buf, sizeof buf, 0), buf);
  struct iovec one = { buf, 10 };
  struct msghdr m = { .msg_iov = &one, .msg_iovlen = 1 };
  long n = recvmsg(sv[1], &m, 0);
  printf("truncated: %ld, MSG_TRUNC %s\n", n, m.msg_flags & MSG_TRUNC ? "set" : "clear");
  got("nothing left", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), buf);

  /* One message into two iovecs. */
  write(sv[1], "hello", 5);
  char x[3], y[3];
  struct iovec two[2] = { { x, 3 }, { y, 3 } };
  struct msghdr m2 = { .msg_iov = two, .msg_iovlen = 2 };
  n = recvmsg(sv[0], &m2, 0);
  printf("two iovecs: %ld \"%.3s\" \"%.2s\"\n", n, x, y);

  /* A descriptor with a message. */
  int p[2];
  if (pipe(p)) return 1;
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec v = { "fd", 2 };
  struct msghdr sm = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *c = CMSG_FIRSTHDR(&sm);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &p[1], sizeof(int));
  sendmsg(sv[0], &sm, 0);
  close(p[1]);
  char rc[CMSG_SPACE(sizeof(int))];
  struct iovec rv = { buf, sizeof buf };
  struct msghdr rm = { .msg_iov = &rv, .msg_iovlen = 1, .msg_control = rc, .msg_controllen = sizeof rc };
  n = recvmsg(sv[1], &rm, 0);
  struct cmsghdr *rcm = CMSG_FIRSTHDR(&rm);
  int fd = -1;
  if (rcm && rcm->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(rcm), sizeof fd);
  write(fd, "through", 7);
  close(fd);
  char tb[16];
  long tn = read(p[0], tb, sizeof tb);
  printf("with a descriptor: %ld \"%.*s\", through it: \"%.*s\"\n", n, (int)n, buf, (int)tn, tb);

  /* Too large for the send buffer. */
  char *huge = calloc(1, 1 << 20);
  n = send(sv[0], huge, 1 << 20, MSG_DONTWAIT);
  printf("1 MiB message: %ld %s\n", n, n < 0 ? strerror(errno) : "");

  /* The peer in a child process: its messages, then 0 when it has exited. */
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[1]);
    send(sv[0], "from", 4, 0);
    send(sv[0], "child", 5, 0);
    _exit(0);
  }
  close(sv[0]);
  got("child 1", recv(sv[1], buf, sizeof buf, 0), buf);
  got("child 2", recv(sv[1], buf, sizeof buf, 0), buf);
  waitpid(pid, NULL, 0);
  got("after its exit", recv(sv[1], buf, sizeof buf, 0), buf);

  /* Empty messages take no bytes, but the queue has a length limit: a send gives EAGAIN after a
     few hundred (Linux: the send buffer counts each message's overhead). */
  int ev[2];
  socketpair(AF_UNIX, SOCK_SEQPACKET, 0, ev);
  long queued = 0;
  while (queued < 1000000 && send(ev[0], "", 0, MSG_DONTWAIT) == 0) queued++;
  int full = errno;
  printf("empty messages: the queue filled at some hundreds: %s, then %s\n", queued >= 100 && queued <= 1000 ? "yes" : "no",
         full == EAGAIN ? "EAGAIN" : strerror(full));
  got("empty message from the full queue", recv(ev[1], buf, sizeof buf, 0), buf);
  printf("a send after one receive: %s\n", send(ev[0], "", 0, MSG_DONTWAIT) == 0 ? "ok" : strerror(errno));
  close(ev[0]);
  close(ev[1]);

  /* Datagrams. */
  int dv[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, dv);
  send(dv[0], "dgram1", 6, 0);
  send(dv[0], "dg2", 3, 0);
  got("datagram", recv(dv[1], buf, sizeof buf, 0), buf);
  got("datagram", recv(dv[1], buf, 2, 0), buf);
  got("datagram none", recv(dv[1], buf, sizeof buf, MSG_DONTWAIT), buf);
  /* A datagram pair has no end of stream: with its peer gone a receive still waits, and a send
     is refused. */
  close(dv[0]);
  got("datagram, peer gone", recv(dv[1], buf, sizeof buf, MSG_DONTWAIT), buf);
  got("datagram send, peer gone", send(dv[1], "x", 1, MSG_NOSIGNAL), "");
  return 0;
}
