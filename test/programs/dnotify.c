/* Directory notification (fcntl F_NOTIFY): a change in the directory signals the process that
 * asked, with SIGIO or F_SETSIG's signal (si_fd the directory's fd); DN_MULTISHOT keeps asking,
 * without it one signal ends the request; requests on one open file add up; ENOTDIR on a file,
 * and a bit that names no event is taken. Run in
 * an empty writable directory; prints the same natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t rts, sigios, last_fd = -1;
static void on_rt(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; rts++; last_fd = si->si_fd; }
static void on_sigio(int sig) { (void)sig; sigios++; }

static void touch(const char *path) { int fd = open(path, O_WRONLY | O_CREAT, 0644); if (fd >= 0) close(fd); }
static const char *ename(int e) { return e == ENOTDIR ? "ENOTDIR" : e == 0 ? "no error" : "another error"; }
static int settle(volatile sig_atomic_t *c, int want) { for (int i = 0; i < 50 && *c < want; i++) usleep(10000); return *c; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct sigaction sa = { 0 };
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN + 2, &sa, NULL);
  signal(SIGIO, on_sigio);
  if (mkdir("d", 0755) != 0) return 1;
  int dfd = open("d", O_RDONLY | O_DIRECTORY);
  printf("DN_MULTISHOT alone: %d\n", fcntl(dfd, F_NOTIFY, DN_MULTISHOT));
  fcntl(dfd, F_SETSIG, SIGRTMIN + 2);
  printf("F_NOTIFY DN_CREATE|DN_MULTISHOT: %d\n", fcntl(dfd, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
  touch("d/a");
  printf("a create signals: %d\n", settle(&rts, 1));
  printf("  si_fd is the directory: %s\n", last_fd == dfd ? "yes" : "no");
  touch("d/b");
  printf("another (multishot): %d\n", settle(&rts, 2));
  touch("elsewhere");
  usleep(50000);
  printf("a create elsewhere does not: %d\n", rts);
  /* Without DN_MULTISHOT, one signal ends the request (another open file of the directory: a
   * request adds to the ones made before on the same open file). */
  int d2 = open("d", O_RDONLY | O_DIRECTORY);
  fcntl(d2, F_SETSIG, SIGRTMIN + 2);
  printf("F_NOTIFY DN_DELETE, one shot: %d\n", fcntl(d2, F_NOTIFY, DN_DELETE));
  unlink("d/a");
  printf("a delete signals: %d\n", settle(&rts, 3));
  printf("  si_fd is the second fd: %s\n", last_fd == d2 ? "yes" : "no");
  unlink("d/b");
  usleep(50000);
  printf("the next does not: %d\n", rts);
  printf("DN_DELETE added on the first: %d\n", fcntl(dfd, F_NOTIFY, DN_DELETE));
  touch("d/e");
  printf("a create still signals: %d\n", settle(&rts, 4));
  unlink("d/e");
  printf("and a delete now: %d\n", settle(&rts, 5));
  close(d2);
  fcntl(dfd, F_SETSIG, 0);
  printf("F_NOTIFY DN_MODIFY with SIGIO: %d\n", fcntl(dfd, F_NOTIFY, DN_MODIFY | DN_MULTISHOT));
  int f = open("d/c", O_WRONLY | O_CREAT, 0644);
  if (write(f, "x", 1) != 1) return 1;
  printf("a write in it sends SIGIO: %d\n", settle(&sigios, 1) > 0);
  close(f);
  printf("F_NOTIFY 0 ends it: %d\n", fcntl(dfd, F_NOTIFY, 0));
  int before = sigios;
  f = open("d/c", O_WRONLY);
  if (write(f, "y", 1) != 1) return 1;
  close(f);
  usleep(50000);
  printf("then nothing: %s\n", sigios == before ? "yes" : "no");
  errno = 0;
  int r = fcntl(f = open("elsewhere", O_RDONLY), F_NOTIFY, DN_CREATE);
  printf("on a file: %d %s\n", r, ename(errno));
  close(f);
  errno = 0;
  r = fcntl(dfd, F_NOTIFY, 0x40);
  printf("a bit that names no event: %d %s\n", r, ename(errno));
  return 0;
}
