/* Named AF_UNIX stream sockets between processes of one sandbox: socket, bind (a path and an
 * abstract name), listen, accept4, connect, send/recv, sendmsg/recvmsg with several iovecs,
 * getsockname/getpeername, getsockopt, poll on a listener, and the errors around them. Prints
 * the same natively; argv[2] is a writable directory for the socket files.
 *   unixsock DIR
 *   unixsock connect PATH     connect to PATH and print the errno (0: connected)
 *   unixsock rights-bomb      send messages of 253 descriptors that no one receives until one
 *                             fails (at most 100): prints how many went and the errno
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond)                                                                              \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      fprintf(stderr, "unixsock: %s:%d: %s failed (errno %d %s)\n", __func__, __LINE__, #cond, \
              errno, strerror(errno));                                                           \
      exit(99);                                                                                  \
    }                                                                                            \
  } while (0)

static socklen_t addr_of(struct sockaddr_un *a, const char *path, int abstract) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (abstract) {
    memcpy(a->sun_path + 1, path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
  }
  memcpy(a->sun_path, path, n);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

static void serve_and_talk(const char *path, int abstract) {
  const char *kind = abstract ? "abstract" : "path";
  struct sockaddr_un a;
  socklen_t len = addr_of(&a, path, abstract);
  int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(srv >= 0);
  CHECK(bind(srv, (struct sockaddr *)&a, len) == 0);
  int again = socket(AF_UNIX, SOCK_STREAM, 0);
  printf("%s: bind again: errno %d\n", kind, bind(again, (struct sockaddr *)&a, len) < 0 ? errno : 0);
  close(again);
  CHECK(listen(srv, 4) == 0);
  int type = 0, acc = 0;
  socklen_t ol = sizeof type;
  CHECK(getsockopt(srv, SOL_SOCKET, SO_TYPE, &type, &ol) == 0);
  ol = sizeof acc;
  CHECK(getsockopt(srv, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol) == 0);
  printf("%s: SO_TYPE stream %d, listening %d\n", kind, type == SOCK_STREAM, acc);
  if (!abstract) {
    struct stat st;
    CHECK(stat(path, &st) == 0);
    printf("%s: the socket file is a socket: %d\n", kind, S_ISSOCK(st.st_mode));
  }
  fcntl(srv, F_SETFL, O_NONBLOCK);
  printf("%s: accept with none waiting: errno %d\n", kind, accept(srv, NULL, NULL) < 0 ? errno : 0);
  fcntl(srv, F_SETFL, 0);
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(c >= 0);
    CHECK(connect(c, (struct sockaddr *)&a, len) == 0);
    struct iovec iov[2] = {{"pi", 2}, {"ng", 2}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    CHECK(sendmsg(c, &m, 0) == 4);
    char buf[16] = {0};
    CHECK(recv(c, buf, sizeof buf - 1, 0) == 4);
    struct sockaddr_un peer;
    socklen_t pl = sizeof peer;
    CHECK(getpeername(c, (struct sockaddr *)&peer, &pl) == 0);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0);
    printf("%s: client got '%s' from a peer whose name matches: %d, SO_PEERCRED the parent's: %d\n", kind, buf,
           pl == len && memcmp(peer.sun_path, a.sun_path, len - offsetof(struct sockaddr_un, sun_path)) == 0,
           cl == sizeof cr && cr.pid == getppid() && cr.uid == getuid() && cr.gid == getgid());
    fflush(stdout);
    close(c);
    _exit(0);
  }
  struct pollfd pf = {.fd = srv, .events = POLLIN};
  CHECK(poll(&pf, 1, 10000) == 1);
  printf("%s: the listener polls readable: %d\n", kind, (pf.revents & POLLIN) != 0);
  int s = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
  CHECK(s >= 0);
  printf("%s: accepted fd close-on-exec: %d\n", kind, (fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
  char a1[3] = {0}, a2[3] = {0};
  struct iovec iov[2] = {{a1, 2}, {a2, 2}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
  ssize_t got = 0;
  while (got < 4) {
    struct iovec rest[2];
    int k = 0;
    if (got < 2) rest[k++] = (struct iovec){a1 + got, (size_t)(2 - got)};
    rest[k++] = (struct iovec){a2 + (got > 2 ? got - 2 : 0), (size_t)(got > 2 ? 4 - got : 2)};
    m.msg_iov = rest;
    m.msg_iovlen = k;
    ssize_t r = recvmsg(s, &m, 0);
    CHECK(r > 0);
    got += r;
  }
  printf("%s: server got '%s' + '%s'\n", kind, a1, a2);
  CHECK(send(s, "pong", 4, 0) == 4);
  struct sockaddr_un me;
  socklen_t ml = sizeof me;
  CHECK(getsockname(s, (struct sockaddr *)&me, &ml) == 0);
  struct ucred cr;
  socklen_t cl = sizeof cr;
  CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0);
  int peer_is_child = cl == sizeof cr && cr.pid == pid && cr.uid == getuid() && cr.gid == getgid();
  char eof[4];
  ssize_t end = recv(s, eof, sizeof eof, 0);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* The client has printed its line by now. */
  printf("%s: the accepted socket's name is the listener's: %d\n", kind, ml == len);
  printf("%s: after the client closed, recv gives %zd; SO_PEERCRED was the client's: %d\n", kind, end, peer_is_child);
  close(s);
  close(srv);
  if (!abstract) CHECK(unlink(path) == 0);
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  printf("%s: connect after close: errno %d\n", kind, connect(c, (struct sockaddr *)&a, len) < 0 ? errno : 0);
  close(c);
}

/* SCM_RIGHTS: a child sends the write end of its pipe to its parent, which writes through it;
 * then a message with three descriptors into room for two (MSG_CTRUNC). */
static int send_fds(int sock, const int *fds, int n) {
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int) * 4)];
  memset(control, 0, sizeof control);
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * n);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  return (int)sendmsg(sock, &m, 0);
}

static int recv_fds(int sock, int *fds, int room, int flags, int *mflags) {
  char byte;
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int) * 4)];
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(sizeof(int) * room)};
  CHECK(recvmsg(sock, &m, flags) == 1);
  *mflags = m.msg_flags;
  int n = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    memcpy(fds + n, CMSG_DATA(c), sizeof(int) * k);
    n += k;
  }
  return n;
}

static void rights(void) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  struct ucred cr;
  socklen_t cl = sizeof cr;
  CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0);
  printf("rights: a socketpair's SO_PEERCRED is its creator's: %d\n", cr.pid == getpid() && cr.uid == getuid());
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    close(sv[0]);
    int pp[2];
    CHECK(pipe(pp) == 0);
    CHECK(send_fds(sv[1], &pp[1], 1) == 1);
    close(pp[1]);
    char buf[64] = {0};
    ssize_t n, got = 0;
    while ((n = read(pp[0], buf + got, sizeof buf - 1 - got)) > 0) got += n;
    printf("rights: the child read '%s' through the end it sent, then EOF %d\n", buf, n == 0);
    fflush(stdout);
    _exit(0);
  }
  close(sv[1]);
  int fd = -1, mflags = 0;
  CHECK(recv_fds(sv[0], &fd, 1, MSG_CMSG_CLOEXEC, &mflags) == 1);
  int cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
  CHECK(write(fd, "from the parent", 15) == 15);
  close(fd);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("rights: the parent's new descriptor was close-on-exec: %d, truncated: %d\n", cloexec, (mflags & MSG_CTRUNC) != 0);
  int three[3] = {dup(1), dup(1), dup(1)}, got[4] = {-1, -1, -1, -1};
  close(sv[0]);
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  CHECK(send_fds(sv[0], three, 3) == 1);
  /* CMSG_SPACE of one int has room for two on x86-64: the third is closed. */
  int n = recv_fds(sv[1], got, 1, 0, &mflags);
  printf("rights: three sent into CMSG_SPACE(one int): received %d, truncated: %d\n", n, (mflags & MSG_CTRUNC) != 0);
  for (int i = 0; i < 3; i++) close(three[i]);
  close(sv[0]);
  close(sv[1]);
}

/* Descriptors travel with the bytes they were sent with: a plain read of those bytes closes
 * them, and a read stops at the end of those bytes. */
static void rights_with_bytes(void) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  int one = dup(1);
  CHECK(send_fds(sv[0], &one, 1) == 1); /* "x" with a descriptor */
  CHECK(send(sv[0], "ab", 2, 0) == 2);
  char buf[16];
  CHECK(read(sv[1], buf, 1) == 1);
  struct iovec iov = {buf, sizeof buf - 1};
  char control[CMSG_SPACE(sizeof(int) * 4)];
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t n = recvmsg(sv[1], &m, 0);
  printf("rights read by read(2): then %zd bytes with %zu bytes of control\n", n, (size_t)m.msg_controllen);
  CHECK(send(sv[0], "cd", 2, 0) == 2);
  CHECK(send_fds(sv[0], &one, 1) == 1);
  CHECK(send(sv[0], "ef", 2, 0) == 2);
  m.msg_controllen = sizeof control;
  m.msg_flags = 0;
  n = recvmsg(sv[1], &m, 0);
  buf[n > 0 ? n : 0] = 0;
  int fds = 0;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (c && c->cmsg_type == SCM_RIGHTS) {
    fds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < fds; i++) close(((int *)CMSG_DATA(c))[i]);
  }
  printf("a read stops after the bytes sent with descriptors: '%s' with %d\n", buf, fds);
  n = recv(sv[1], buf, sizeof buf - 1, 0);
  buf[n > 0 ? n : 0] = 0;
  printf("then '%s'\n", buf);
  close(one);
  close(sv[0]);
  close(sv[1]);
}

/* SCM_CREDENTIALS: with SO_PASSCRED the receiver learns the sender's pid (a child's, after
 * fork), sent explicitly or not; credentials naming another pid are EPERM; without SO_PASSCRED
 * nothing comes. Pids differ between runs: the lines say whose pid came. */
static int recv_creds(int sock, struct ucred *uc) {
  char byte, control[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {&byte, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  if (recvmsg(sock, &m, 0) != 1) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS || c->cmsg_len != CMSG_LEN(sizeof *uc)) return 0;
  memcpy(uc, CMSG_DATA(c), sizeof *uc);
  return 1;
}

static int send_creds(int sock, pid_t pid) {
  char byte = 'c', control[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {&byte, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_CREDENTIALS;
  c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
  struct ucred uc = {pid, getuid(), getgid()};
  memcpy(CMSG_DATA(c), &uc, sizeof uc);
  return sendmsg(sock, &m, 0) == 1 ? 0 : errno;
}

static void credentials(void) {
  int types[] = {SOCK_STREAM, SOCK_DGRAM};
  for (int k = 0; k < 2; k++) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, types[k], 0, sv) == 0);
    const char *what = k ? "dgram" : "stream";
    int on = 1, got = -1;
    socklen_t len = sizeof got;
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &got, &len) == 0);
    printf("creds %s: SO_PASSCRED reads %d\n", what, got);
    /* Refused for an unprivileged sender (the guest's user). Root natively may send it (then
     * it is taken off again), or gets ESRCH for a pid that does not exist: either is reported
     * as the refusal the unprivileged get. */
    int e = send_creds(sv[1], getpid() + 1);
    if (e == 0 && geteuid() == 0) {
      struct ucred skip;
      recv_creds(sv[0], &skip);
    }
    if ((e == 0 || e == ESRCH) && geteuid() == 0) e = EPERM;
    printf("creds %s: another pid: %s\n", what, e == EPERM ? "EPERM" : strerror(e));
    pid_t child = fork();
    if (child == 0) {
      send_creds(sv[1], getpid());
      send(sv[1], "p", 1, 0);
      _exit(0);
    }
    CHECK(waitpid(child, NULL, 0) == child);
    struct ucred uc;
    int r = recv_creds(sv[0], &uc);
    printf("creds %s: explicit from the child: %d, pid is the child's %d, ids ours %d\n", what, r, r == 1 && uc.pid == child, r == 1 && uc.uid == getuid() && uc.gid == getgid());
    r = recv_creds(sv[0], &uc);
    printf("creds %s: implicit from the child: %d, pid is the child's %d\n", what, r, r == 1 && uc.pid == child);
    CHECK(send(sv[0], "q", 1, 0) == 1);
    r = recv_creds(sv[1], &uc);
    printf("creds %s: without SO_PASSCRED: %d\n", what, r);
    close(sv[0]);
    close(sv[1]);
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: unixsock DIR\n");
    return 2;
  }
  if (argc > 1 && !strcmp(argv[1], "rights-bomb")) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int fds[253];
    for (int i = 0; i < 253; i++) fds[i] = 1;
    char byte = 'x';
    char control[CMSG_SPACE(sizeof fds)];
    int sent = 0, err = 0;
    for (; sent < 100; sent++) {
      struct iovec iov = {&byte, 1};
      struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
      struct cmsghdr *c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof fds);
      memcpy(CMSG_DATA(c), fds, sizeof fds);
      if (sendmsg(sv[0], &m, MSG_DONTWAIT) < 0) { err = errno; break; }
    }
    printf("messages=%d errno=%d\n", sent, err);
    return 0;
  }
  if (argc > 2 && !strcmp(argv[1], "connect")) {
    struct sockaddr_un a;
    socklen_t len = addr_of(&a, argv[2], 0);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(c >= 0);
    printf("connect: errno %d\n", connect(c, (struct sockaddr *)&a, len) < 0 ? errno : 0);
    return 0;
  }
  char path[256], file[256], name[64];
  snprintf(path, sizeof path, "%s/sock", argv[1]);
  snprintf(file, sizeof file, "%s/plain", argv[1]);
  snprintf(name, sizeof name, "kvmbox-test-%d", (int)getpid());
  serve_and_talk(path, 0);
  serve_and_talk(name, 1);
  struct sockaddr_un a;
  socklen_t len = addr_of(&a, file, 0);
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  close(fd);
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  printf("connect to a regular file: errno %d\n", connect(c, (struct sockaddr *)&a, len) < 0 ? errno : 0);
  len = addr_of(&a, "/nonexistent/sock", 0);
  printf("connect to a missing path: errno %d\n", connect(c, (struct sockaddr *)&a, len) < 0 ? errno : 0);
  printf("send before connect: errno %d\n", send(c, "x", 1, MSG_NOSIGNAL) < 0 ? errno : 0);
  close(c);
  unlink(file);
  rights();
  rights_with_bytes();
  credentials();
  return 0;
}
