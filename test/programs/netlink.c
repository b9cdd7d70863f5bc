/* The routing netlink socket (socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)), as glibc's getifaddrs
 * and if_nameindex use it: in a sandbox with no network the dumps are empty, so the program sees
 * no interfaces (and no error). Also the socket's own address (getsockname: nl_pid is the pid)
 * and an answer to a dump request sent by hand. Natively the host's interfaces show, so the
 * test compares with fixed text. */
#define _GNU_SOURCE
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* <linux/netlink.h> and <linux/rtnetlink.h>, which musl-gcc does not have. */
struct nlmsghdr { unsigned nlmsg_len; unsigned short nlmsg_type, nlmsg_flags; unsigned nlmsg_seq, nlmsg_pid; };
struct sockaddr_nl { unsigned short nl_family, nl_pad; unsigned nl_pid, nl_groups; };
struct rtgenmsg { unsigned char rtgen_family; };
enum { NETLINK_ROUTE = 0, NLM_F_REQUEST = 1, NLM_F_DUMP = 0x300, NLMSG_DONE = 3, RTM_GETADDR = 22 };

int main(void) {
  struct ifaddrs *ifa = NULL;
  int r = getifaddrs(&ifa);
  int n = 0;
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next) n++;
  printf("getifaddrs: %d, %d entries\n", r, n);
  if (ifa) freeifaddrs(ifa);
  struct if_nameindex *ni = if_nameindex();
  n = 0;
  for (struct if_nameindex *i = ni; i && i->if_index; i++) n++;
  printf("if_nameindex: %s, %d names\n", ni ? "a list" : strerror(errno), n);
  if (ni) if_freenameindex(ni);

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl me = { .nl_family = AF_NETLINK };
  printf("bind: %d\n", bind(fd, (struct sockaddr *)&me, sizeof me));
  socklen_t len = sizeof me;
  getsockname(fd, (struct sockaddr *)&me, &len);
  printf("getsockname: family %d, pid %s, len %u\n", me.nl_family, me.nl_pid == (unsigned)getpid() ? "ours" : "other", len);
  struct { struct nlmsghdr h; struct rtgenmsg g; } req = {
    .h = { .nlmsg_len = sizeof req, .nlmsg_type = RTM_GETADDR, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 42 },
    .g = { .rtgen_family = AF_UNSPEC },
  };
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  printf("sendto: %zd\n", sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel));
  char buf[8192];
  struct sockaddr_nl from;
  struct iovec iov = { buf, sizeof buf };
  struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1 };
  ssize_t got = recvmsg(fd, &m, 0);
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  printf("answer: %zd bytes, type %s, seq %u, from pid %u\n", got, h->nlmsg_type == NLMSG_DONE ? "NLMSG_DONE" : "other", h->nlmsg_seq, from.nl_pid);
  errno = 0;
  ssize_t more = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  printf("nothing more: %zd %s\n", more, strerror(errno));
  return 0;
}
