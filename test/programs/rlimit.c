/* setrlimit/getrlimit/prlimit: limits the program lowers stay lowered, are inherited by a fork
 * child, and RLIMIT_NOFILE's soft limit is where EMFILE starts. A limit never goes above its hard
 * limit (EPERM for the unprivileged guest user), nor soft above hard (EINVAL). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  (void)argv;
  setvbuf(stdout, NULL, _IONBF, 0);
  struct rlimit r = { 64, 64 };
  printf("set NOFILE 64: %d\n", setrlimit(RLIMIT_NOFILE, &r));
  getrlimit(RLIMIT_NOFILE, &r);
  printf("NOFILE: %lu %lu\n", (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max);
  int last = -1, fd;
  while ((fd = open("/dev/null", O_RDONLY)) >= 0) last = fd;
  printf("opened up to fd %d, then %s\n", last, strerror(errno));
  for (int i = 3; i <= last; i++) close(i);
  int d = dup2(0, 64);
  printf("dup2 to 64: %d %s\n", d, strerror(errno));
  /* fds opened before the soft limit was lowered below them stay open, and close_range reaches
   * them (CPython's close_fds counts on it). */
  dup2(0, 40);
  dup2(0, 41);
  struct rlimit low = { 32, 64 };
  setrlimit(RLIMIT_NOFILE, &low);
  int open40 = fcntl(40, F_GETFD) >= 0;
  long cr1 = syscall(SYS_close_range, 41, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
  int flags41 = fcntl(41, F_GETFD);
  long cr2 = syscall(SYS_close_range, 3, ~0U, 0);
  int gone40 = fcntl(40, F_GETFD) < 0 && errno == EBADF;
  int gone41 = fcntl(41, F_GETFD) < 0 && errno == EBADF;
  printf("above a lowered limit: open %d; close_range CLOEXEC %ld, flags %d; close_range %ld, closed %d %d\n", open40, cr1, flags41, cr2, gone40, gone41);
  r.rlim_cur = 32;
  r.rlim_max = 64;
  setrlimit(RLIMIT_NOFILE, &r);
  struct rlimit core = { 0, 0 }, as = { 1UL << 26, 1UL << 26 };
  setrlimit(RLIMIT_CORE, &core);
  setrlimit(RLIMIT_AS, &as);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit a, b, c;
    getrlimit(RLIMIT_NOFILE, &a);
    getrlimit(RLIMIT_CORE, &b);
    getrlimit(RLIMIT_AS, &c);
    printf("child: NOFILE %lu %lu, CORE %lu, AS 2^%d\n", (unsigned long)a.rlim_cur, (unsigned long)a.rlim_max, (unsigned long)b.rlim_cur,
           __builtin_ctzl(c.rlim_cur));
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  struct rlimit bad = { 16, 8 };
  errno = 0;
  int e = setrlimit(RLIMIT_NOFILE, &bad);
  printf("soft above hard: %d %s\n", e, strerror(errno));
  if (argc > 1) {
    /* As an unprivileged user (the guest's), the hard limit cannot go up again. */
    struct rlimit up = { 128, 128 };
    errno = 0;
    int u = setrlimit(RLIMIT_NOFILE, &up);
    printf("hard above 64: %d %s\n", u, strerror(errno));
  }
  return 0;
}
