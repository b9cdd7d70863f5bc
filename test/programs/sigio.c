/* Signal-driven I/O: O_ASYNC with F_SETOWN sends SIGIO when data arrives on a pipe or a socket
 * (written by a child, or by the process itself); F_SETSIG chooses a queued signal whose siginfo
 * names the fd, POLL_IN and the band; O_ASYNC off sends nothing; no owner, nothing. Prints the
 * same natively. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t sigios, rts, last_fd = -1, last_code, last_band_in;

static void on_sigio(int sig) { (void)sig; sigios++; }
static void on_rt(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  rts++;
  last_fd = si->si_fd;
  last_code = si->si_code;
  last_band_in = (si->si_band & POLLIN) != 0;
}

/* Wait (at most ~2 s) until *counter reaches want. */
static int await(volatile sig_atomic_t *counter, int want) {
  for (int i = 0; i < 200 && *counter < want; i++) usleep(10000);
  return *counter >= want;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGIO, on_sigio);
  struct sigaction sa = { 0 };
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN + 1, &sa, NULL);

  int p[2];
  if (pipe(p) != 0) return 1;
  fcntl(p[0], F_SETOWN, getpid());
  fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC | O_NONBLOCK);
  printf("F_GETFL has O_ASYNC: %s\n", fcntl(p[0], F_GETFL) & O_ASYNC ? "yes" : "no");
  printf("no signal before data: %s\n", sigios == 0 ? "yes" : "no");
  pid_t c = fork();
  if (c == 0) { usleep(50000); if (write(p[1], "x", 1) != 1) _exit(1); _exit(0); }
  printf("SIGIO when a child writes the pipe: %s\n", await(&sigios, 1) ? "yes" : "no");
  waitpid(c, NULL, 0);
  char buf[16];
  while (read(p[0], buf, sizeof buf) > 0) {}

  int s[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) return 1;
  fcntl(s[0], F_SETOWN, getpid());
  fcntl(s[0], F_SETSIG, SIGRTMIN + 1);
  fcntl(s[0], F_SETFL, O_ASYNC | O_NONBLOCK);
  int before = sigios;
  if (write(s[1], "ab", 2) != 2) return 1;
  printf("F_SETSIG's signal when the process writes the other end: %s\n", await(&rts, 1) ? "yes" : "no");
  printf("  si_fd is the socket: %s, si_code POLL_IN: %s, si_band has POLLIN: %s\n",
         last_fd == s[0] ? "yes" : "no", last_code == POLL_IN ? "yes" : "no", last_band_in ? "yes" : "no");
  if (write(s[1], "cd", 2) != 2) return 1;
  printf("queued again for a second write: %s\n", await(&rts, 2) ? "yes" : "no");
  printf("no SIGIO meanwhile: %s\n", sigios == before ? "yes" : "no");
  while (read(s[0], buf, sizeof buf) > 0) {}

  fcntl(s[0], F_SETFL, O_NONBLOCK);
  int had = rts;
  if (write(s[1], "e", 1) != 1) return 1;
  usleep(100000);
  printf("O_ASYNC off: no signal: %s\n", rts == had ? "yes" : "no");

  int q[2];
  if (pipe(q) != 0) return 1;
  fcntl(q[0], F_SETFL, O_ASYNC | O_NONBLOCK);
  before = sigios;
  if (write(q[1], "y", 1) != 1) return 1;
  usleep(100000);
  printf("no owner: no signal: %s\n", sigios == before ? "yes" : "no");
  return 0;
}
