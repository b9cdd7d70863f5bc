/* epoll and eventfd between two processes: what epoll_wait reports, in order, for a pipe and
 * an eventfd that a child makes ready, the error cases, EPOLLONESHOT, and an eventfd read that
 * waits for the child. Output is the same natively and in the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int r) { return r == 0 ? "ok" : errno == EEXIST ? "EEXIST" : errno == ENOENT ? "ENOENT" : errno == EPERM ? "EPERM" : errno == EINVAL ? "EINVAL" : "other"; }

/* EPOLLET: an entry is reported once per event. Data left unread is not reported again until
 * more comes; a reader's read makes room, an event for the writer's EPOLLOUT; a hang-up is one;
 * EPOLL_CTL_MOD re-arms. On a pipe, a socketpair and an eventfd. */
static void edge_case(const char *what, int rd, int wr, int is_eventfd) {
  int ep = epoll_create1(0);
  struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.u64 = 1}, out[2];
  epoll_ctl(ep, EPOLL_CTL_ADD, rd, &e);
  uint64_t one = 1;
  char buf[8];
  printf("ET %s: nothing yet %d\n", what, epoll_wait(ep, out, 2, 0));
  if (write(wr, is_eventfd ? (void *)&one : "ab", is_eventfd ? 8 : 2) < 0) return;
  printf("ET %s: after a write %d", what, epoll_wait(ep, out, 2, 0));
  printf(", again %d\n", epoll_wait(ep, out, 2, 0));
  if (write(wr, is_eventfd ? (void *)&one : "c", is_eventfd ? 8 : 1) < 0) return;
  printf("ET %s: more data %d", what, epoll_wait(ep, out, 2, 0));
  printf(", again %d\n", epoll_wait(ep, out, 2, 0));
  if (!is_eventfd) {
    if (read(rd, buf, 1) != 1) return;
    printf("ET %s: our own partial read %d\n", what, epoll_wait(ep, out, 2, 0));
  }
  printf("ET %s: mod re-arms %d", what, epoll_ctl(ep, EPOLL_CTL_MOD, rd, &e));
  printf(" %d\n", epoll_wait(ep, out, 2, 0));
  if (!is_eventfd) {
    int ep2 = epoll_create1(0);
    struct epoll_event w = {.events = EPOLLOUT | EPOLLET, .data.u64 = 2};
    int fl = fcntl(wr, F_GETFL);
    fcntl(wr, F_SETFL, fl | O_NONBLOCK);
    char big[4096] = {0};
    while (write(wr, big, sizeof big) > 0) {}
    epoll_ctl(ep2, EPOLL_CTL_ADD, wr, &w);
    printf("ET %s: full, writer %d", what, epoll_wait(ep2, out, 2, 0));
    while (read(rd, big, sizeof big) == (ssize_t)sizeof big) {}
    printf(", after the reader drained %d", epoll_wait(ep2, out, 2, 0));
    printf(", again %d\n", epoll_wait(ep2, out, 2, 0));
    close(ep2);
    close(wr);
    printf("ET %s: hang-up %d", what, epoll_wait(ep, out, 2, 0));
    printf(", again %d\n", epoll_wait(ep, out, 2, 0));
  }
  close(ep);
}

static void edge_triggered(void) {
  int p[2], s[2];
  if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) return;
  edge_case("pipe", p[0], p[1], 0);
  edge_case("socketpair", s[0], s[1], 0);
  int ev = eventfd(0, 0);
  edge_case("eventfd", ev, ev, 1);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  int p[2];
  if (pipe(p)) return 1;
  int ev = eventfd(0, EFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = { .events = EPOLLIN, .data.u64 = 111 };
  printf("add pipe: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e)));
  printf("add again: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e)));
  e.data.u64 = 222;
  printf("add eventfd: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e)));
  printf("mod absent: %s\n", err(epoll_ctl(ep, EPOLL_CTL_MOD, 1000 > 0 ? p[1] : 0, &e)));
  printf("add itself: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e)));
  int reg = open("/dev/null", O_RDONLY);
  if (reg >= 0) printf("add /dev/null: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, reg, &e)));
  struct epoll_event out[4];
  printf("nothing ready: %d\n", epoll_wait(ep, out, 4, 0));
  int go[2];
  if (pipe(go)) return 1;
  pid_t c = fork();
  if (c == 0) {
    /* Each step waits for the parent's go, so that what epoll_wait sees does not depend on timing. */
    char g;
    close(go[1]);
    if (read(go[0], &g, 1) != 1 || write(p[1], "x", 1) != 1) _exit(2);
    if (read(go[0], &g, 1) != 1) _exit(3);
    usleep(10000);
    uint64_t one = 5;
    if (write(ev, &one, 8) != 8) _exit(4);
    _exit(0);
  }
  close(p[1]);
  close(go[0]);
  if (write(go[1], "1", 1) != 1) return 6;
  int n = epoll_wait(ep, out, 4, -1);
  printf("first wait: n=%d data=%llu events=%#x\n", n, (unsigned long long)out[0].data.u64, out[0].events);
  char ch;
  if (read(p[0], &ch, 1) != 1) return 4;
  if (write(go[1], "2", 1) != 1) return 7;
  uint64_t v = 0;
  if (read(ev, &v, 8) != 8) return 5;   /* waits for the child's write */
  printf("eventfd read: %llu\n", (unsigned long long)v);
  int st;
  waitpid(c, &st, 0);
  n = epoll_wait(ep, out, 4, 1000);
  printf("after the writer closed: n=%d data=%llu hup=%d\n", n, (unsigned long long)out[0].data.u64, (out[0].events & EPOLLHUP) != 0);
  e.events = EPOLLIN | EPOLLONESHOT;
  e.data.u64 = 333;
  printf("mod oneshot: %s\n", err(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e)));
  n = epoll_wait(ep, out, 4, 0);
  printf("oneshot first: n=%d data=%llu\n", n, (unsigned long long)out[0].data.u64);
  printf("oneshot again: n=%d\n", epoll_wait(ep, out, 4, 0));
  printf("del: %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL)));
  printf("del again: %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL)));
  printf("child status: %d\n", WEXITSTATUS(st));
  edge_triggered();
  return 0;
}
