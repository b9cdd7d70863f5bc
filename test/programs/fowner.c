/* fcntl's owner of an open file's I/O signals: F_SETOWN/F_GETOWN (a process, or a group as a
 * negative number), F_SETOWN_EX/F_GETOWN_EX (thread, process or group), F_SETSIG/F_GETSIG; kept
 * on the open file (a dup shares it, another open does not); ESRCH for no such owner, EINVAL for
 * a bad type or signal. Pids are printed as who they are. Prints the same natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *who(long v) {
  static char buf[32];
  if (v == 0) return "0";
  if (v == getpid()) return "self";
  if (v == -getpid()) return "-self";
  snprintf(buf, sizeof buf, "%ld", v);
  return buf;
}

static const char *ename(int e) { return e == ESRCH ? "ESRCH" : e == EINVAL ? "EINVAL" : e == 0 ? "no error" : "another error"; }

static void ex(int fd, const char *label) {
  struct f_owner_ex o = { -1, -1 };
  int r = fcntl(fd, F_GETOWN_EX, &o);
  printf("%s: F_GETOWN_EX %d type %d pid %s\n", label, r, o.type, who(o.pid));
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* Its own group, whoever started it (a group of 0 would read as no owner). */
  setpgid(0, 0);
  printf("its own group: %s\n", getpgrp() == getpid() ? "yes" : "no");
  int p[2];
  if (pipe(p) != 0) return 1;
  printf("fresh: F_GETOWN %s\n", who(fcntl(p[0], F_GETOWN)));
  printf("fresh: F_GETSIG %d\n", fcntl(p[0], F_GETSIG));
  ex(p[0], "fresh");
  printf("F_SETOWN self: %d\n", fcntl(p[0], F_SETOWN, getpid()));
  printf("F_GETOWN: %s\n", who(fcntl(p[0], F_GETOWN)));
  ex(p[0], "after F_SETOWN");
  int d = dup(p[0]);
  printf("dup shares it: %s\n", who(fcntl(d, F_GETOWN)));
  printf("the other end has none: %s\n", who(fcntl(p[1], F_GETOWN)));
  printf("F_SETOWN -group: %d\n", fcntl(p[0], F_SETOWN, -getpgrp()));
  printf("F_GETOWN: %s\n", who(fcntl(p[0], F_GETOWN)));
  ex(p[0], "after the group");
  errno = 0;
  int r = fcntl(p[0], F_SETOWN, 999999);
  printf("F_SETOWN of no process: %d %s\n", r, ename(errno));
  errno = 0;
  r = (int)syscall(SYS_fcntl, p[0], F_SETOWN, INT_MIN);
  printf("F_SETOWN INT_MIN: %d %s\n", r, ename(errno));
  struct f_owner_ex o = { F_OWNER_TID, (pid_t)syscall(SYS_gettid) };
  printf("F_SETOWN_EX tid: %d\n", fcntl(p[1], F_SETOWN_EX, &o));
  ex(p[1], "after F_SETOWN_EX");
  o.type = 7;
  errno = 0;
  r = fcntl(p[1], F_SETOWN_EX, &o);
  printf("F_SETOWN_EX type 7: %d %s\n", r, ename(errno));
  printf("F_SETSIG SIGUSR1: %d\n", fcntl(p[0], F_SETSIG, 10));
  printf("F_GETSIG: %d\n", fcntl(p[0], F_GETSIG));
  printf("on the dup: %d\n", fcntl(d, F_GETSIG));
  printf("on the other end: %d\n", fcntl(p[1], F_GETSIG));
  errno = 0;
  r = fcntl(p[0], F_SETSIG, 65);
  printf("F_SETSIG 65: %d %s\n", r, ename(errno));
  printf("F_SETOWN 0: %d\n", fcntl(p[0], F_SETOWN, 0));
  printf("then F_GETOWN: %s\n", who(fcntl(p[0], F_GETOWN)));
  ex(p[0], "after F_SETOWN 0");
  printf("F_GETSIG kept: %d\n", fcntl(p[0], F_GETSIG));
  return 0;
}
