/* The routing netlink socket (socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)), as glibc's getifaddrs
 * and if_nameindex use it: a sandbox has only its own loopback, so the program sees lo with
 * 127.0.0.1/8 and ::1/128. Also the socket's own address (getsockname: nl_pid is the pid) and the
 * answers to a dump request sent by hand. Natively the host's other interfaces show too, so the
 * test compares with fixed text. */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
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
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
    int fam = i->ifa_addr ? i->ifa_addr->sa_family : -1;
    char addr[64] = "", mask[64] = "";
    if (fam == AF_INET) {
      inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, addr, sizeof addr);
      inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, mask, sizeof mask);
    } else if (fam == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, addr, sizeof addr);
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr, mask, sizeof mask);
    }
    printf("  %s family %d %s %s flags %#x\n", i->ifa_name, fam, addr, mask, i->ifa_flags);
  }
  if (ifa) freeifaddrs(ifa);
  struct if_nameindex *ni = if_nameindex();
  n = 0;
  for (struct if_nameindex *i = ni; i && i->if_index; i++) n++;
  printf("if_nameindex: %s, %d names", ni ? "a list" : strerror(errno), n);
  for (struct if_nameindex *i = ni; i && i->if_index; i++) printf(" %u %s", i->if_index, i->if_name);
  printf("\n");
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
  /* The answers (one or more messages a read) until NLMSG_DONE: their types and sequence numbers. */
  printf("answers:");
  for (int done = 0, reads = 0; !done && reads < 16; reads++) {
    ssize_t got = recvmsg(fd, &m, 0);
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; got >= (ssize_t)sizeof *h && h->nlmsg_len >= sizeof *h && h->nlmsg_len <= (size_t)got;
         got -= (h->nlmsg_len + 3) & ~3u, h = (struct nlmsghdr *)((char *)h + ((h->nlmsg_len + 3) & ~3u))) {
      printf(" %s/%u", h->nlmsg_type == NLMSG_DONE ? "DONE" : h->nlmsg_type == 20 ? "NEWADDR" : "other", h->nlmsg_seq);
      if (h->nlmsg_type == NLMSG_DONE) done = 1;
    }
  }
  printf(", from pid %u\n", from.nl_pid);
  errno = 0;
  ssize_t more = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  printf("nothing more: %zd %s\n", more, strerror(errno));
  return 0;
}
