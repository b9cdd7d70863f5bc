/* Processes (issue 15): one subcommand per feature, argv[1] names it. Each prints lines whose text
 * is the same natively and in the sandbox: never a raw pid, only relations (ppid==parent:1).
 * Only one process prints at a time; the others are held back by a wait or a pipe, so the order
 * of the lines is fixed. Children re-execute this program through argv[0] with a helper
 * subcommand (exit, child-echo, show-args, check-fds). test/processes.test.ts compares every
 * subcommand's output and exit status with a native run.
 *
 *   procs fork-wait | wnohang | waitid | kill | vfork | spawn | exec | cloexec | pipe-4m | epipe |
 *         sigchld | pgid | dup2-exec | poll | orphan | orphan-hup | all
 *   procs forkbomb-limit [CAP]   forks pausing children until EAGAIN (or CAP), kills and reaps them
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *self; /* argv[0]: how children re-execute this program */

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "procs: %s:%d: %s failed (errno %d %s)\n", __func__, __LINE__, #cond, \
              errno, strerror(errno));                                                  \
      exit(99);                                                                         \
    }                                                                                   \
  } while (0)

/* Before every fork: a child must not inherit unwritten stdio output (it would print it twice). */
static pid_t fork_clean(void) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  CHECK(pid >= 0);
  return pid;
}

static const char *status_text(int st) {
  static char buf[64];
  if (WIFEXITED(st)) snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(st));
  else if (WIFSTOPPED(st)) snprintf(buf, sizeof buf, "stopped by signal %d", WSTOPSIG(st));
  else snprintf(buf, sizeof buf, "status 0x%x", st);
  return buf;
}

/* waitpid that retries EINTR; prints "<what>: <status>" and checks the pid returned. */
static int reap(const char *what, pid_t pid) {
  int st = 0;
  pid_t r;
  do r = waitpid(pid, &st, 0); while (r < 0 && errno == EINTR);
  CHECK(r == pid);
  printf("%s: %s\n", what, status_text(st));
  return st;
}

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    CHECK(w > 0);
    p += w;
    n -= (size_t)w;
  }
}

/* Byte i of the 4 MiB stream; FNV-1a over it. */
static unsigned char pattern(uint64_t i) { return (unsigned char)(i * 7 + (i >> 13)); }
static uint32_t fnv(uint32_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}
#define FNV_INIT 2166136261u
#define STREAM_BYTES (4u << 20)

/* Write the stream in chunks of varying sizes (partial writes and full pipes on the way). */
static void write_stream(int fd) {
  static unsigned char buf[100000];
  static const size_t sizes[] = {1, 4093, 65536, 100000, 777};
  uint64_t off = 0;
  for (unsigned k = 0; off < STREAM_BYTES; k++) {
    size_t n = sizes[k % 5];
    if (n > STREAM_BYTES - off) n = STREAM_BYTES - off;
    for (size_t i = 0; i < n; i++) buf[i] = pattern(off + i);
    write_all(fd, buf, n);
    off += n;
  }
}

/* Read to EOF; prints "<what>: bytes=N ok=1 fnv=H" where ok says every byte was the pattern. */
static void read_stream(const char *what, int fd) {
  static unsigned char buf[32768];
  uint64_t total = 0;
  uint32_t h = FNV_INIT;
  int ok = 1;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    CHECK(r >= 0);
    if (r == 0) break;
    for (ssize_t i = 0; i < r; i++) ok &= buf[i] == pattern(total + (uint64_t)i);
    h = fnv(h, buf, (size_t)r);
    total += (uint64_t)r;
  }
  printf("%s: bytes=%llu ok=%d fnv=%08x\n", what, (unsigned long long)total, ok, h);
}

/* --- helper subcommands, run by children after an exec --- */

static int cmd_exit(int argc, char **argv) { return argc > 2 ? atoi(argv[2]) : 0; }

static int cmd_child_echo(int argc, char **argv) {
  printf("child-echo:");
  for (int i = 2; i < argc; i++) printf(" %s", argv[i]);
  printf("\n");
  return 0;
}

static int cmd_show_args(int argc, char **argv) {
  printf("show-args: argc=%d", argc);
  for (int i = 2; i < argc; i++) printf(" [%s]", argv[i]);
  const char *v = getenv("PROCS_VAR");
  printf(" PROCS_VAR=%s HOME-set=%d\n", v ? v : "(unset)", getenv("HOME") != NULL);
  return 5;
}

/* exec-errno PATH...: execve each PATH (which must fail) and print the errno it gives. */
static int cmd_exec_errno(int argc, char **argv) {
  for (int i = 2; i < argc; i++) {
    char *args[] = {argv[i], NULL};
    execve(argv[i], args, environ);
    int e = errno;
    printf("exec-errno: %s %s\n", argv[i], e == ENOENT ? "ENOENT" : e == EACCES ? "EACCES" : e == ENOEXEC ? "ENOEXEC" : strerror(e));
  }
  return 0;
}

/* check-fds FD...: which descriptors are open after the exec, and their FD_CLOEXEC bit. */
static int cmd_check_fds(int argc, char **argv) {
  for (int i = 2; i < argc; i++) {
    int fd = atoi(argv[i]);
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) printf("check-fds: arg%d closed (%s)\n", i - 1, errno == EBADF ? "EBADF" : strerror(errno));
    else printf("check-fds: arg%d open cloexec=%d\n", i - 1, (flags & FD_CLOEXEC) != 0);
  }
  return 0;
}

/* --- the checks --- */

static int t_fork_wait(void) {
  pid_t parent = getpid();
  int tube[2];
  CHECK(pipe(tube) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    close(tube[0]);
    pid_t me = getpid();
    printf("fork-wait: child ppid==parent:%d pid!=parent:%d pid>0:%d\n", getppid() == parent, me != parent, me > 0);
    fflush(stdout);
    write_all(tube[1], &me, sizeof me);
    _exit(42);
  }
  close(tube[1]);
  pid_t told = 0;
  CHECK(read(tube[0], &told, sizeof told) == sizeof told);
  close(tube[0]);
  struct rusage ru;
  int st = 0;
  pid_t r = wait4(pid, &st, 0, &ru);
  printf("fork-wait: wait4 returned child:%d told==fork:%d %s\n", r == pid, told == pid, status_text(st));
  /* No children left: ECHILD. */
  errno = 0;
  r = wait4(-1, &st, WNOHANG, NULL);
  printf("fork-wait: no children left: %d ECHILD:%d\n", (int)r, errno == ECHILD);
  /* A child of the child is not ours: the grandchild's parent is the child. */
  pid = fork_clean();
  if (pid == 0) {
    pid_t mid = getpid();
    pid_t g = fork_clean();
    if (g == 0) {
      printf("fork-wait: grandchild ppid==child:%d\n", getppid() == mid);
      fflush(stdout);
      _exit(1);
    }
    int gst = 0;
    CHECK(waitpid(g, &gst, 0) == g);
    _exit(WEXITSTATUS(gst) + 10);
  }
  reap("fork-wait: child of two", pid);
  return 0;
}

static int t_wnohang(void) {
  int go[2];
  CHECK(pipe(go) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    close(go[1]);
    char c;
    while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
    _exit(6);
  }
  close(go[0]);
  int st = 0;
  /* The child cannot end before it reads: WNOHANG must say "nothing yet". */
  pid_t r = waitpid(pid, &st, WNOHANG);
  printf("wnohang: before the child ends: %d\n", (int)r);
  close(go[1]); /* EOF: the child's read returns, it exits */
  long polls = 0;
  const long max = 50L * 1000 * 1000;
  while ((r = waitpid(pid, &st, WNOHANG)) == 0 && polls < max) {
    sched_yield();
    polls++;
  }
  if (r == 0) {
    printf("wnohang: the child had not ended after %ld polls with sched_yield\n", polls);
    r = waitpid(pid, &st, 0);
  }
  printf("wnohang: reaped:%d %s\n", r == pid, status_text(st));
  return 0;
}

static int t_waitid(void) {
  int go[2];
  CHECK(pipe(go) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    close(go[1]);
    char c;
    while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
    _exit(7);
  }
  close(go[0]);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG);
  printf("waitid: WNOHANG while running: r=%d si_pid==0:%d\n", r, si.si_pid == 0);
  close(go[1]);
  memset(&si, 0, sizeof si);
  /* WNOWAIT leaves the child waitable. */
  r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
  printf("waitid: WNOWAIT r=%d pid:%d signo=%d code_exited:%d status=%d\n", r, si.si_pid == pid, si.si_signo,
         si.si_code == CLD_EXITED, si.si_status);
  memset(&si, 0, sizeof si);
  r = waitid(P_ALL, 0, &si, WEXITED);
  printf("waitid: P_ALL r=%d pid:%d code_exited:%d status=%d\n", r, si.si_pid == pid, si.si_code == CLD_EXITED, si.si_status);
  errno = 0;
  r = waitid(P_ALL, 0, &si, WEXITED);
  printf("waitid: again r=%d ECHILD:%d\n", r, errno == ECHILD);
  /* A child killed by a signal: CLD_KILLED and the signal number. */
  pid = fork_clean();
  if (pid == 0) {
    for (;;) pause();
  }
  CHECK(kill(pid, SIGUSR1) == 0);
  memset(&si, 0, sizeof si);
  r = waitid(P_PID, (id_t)pid, &si, WEXITED);
  printf("waitid: killed r=%d code_killed:%d status=%d\n", r, si.si_code == CLD_KILLED, si.si_status);
  return 0;
}

static int t_kill(void) {
  static const int sigs[] = {SIGTERM, SIGKILL, SIGINT};
  for (unsigned i = 0; i < 3; i++) {
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork_clean();
    if (pid == 0) {
      close(ready[0]);
      write_all(ready[1], "r", 1);
      for (;;) pause();
    }
    close(ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1); /* the child runs and waits in pause() */
    close(ready[0]);
    CHECK(kill(pid, sigs[i]) == 0);
    int st = reap("kill: child", pid);
    printf("kill: WIFSIGNALED=%d WTERMSIG==sent:%d\n", WIFSIGNALED(st), WIFSIGNALED(st) && WTERMSIG(st) == sigs[i]);
  }
  /* Signal 0 probes; a reaped pid is gone. */
  pid_t pid = fork_clean();
  if (pid == 0) _exit(0);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  errno = 0;
  int r = kill(pid, 0);
  printf("kill: signal 0 to a reaped child: %d ESRCH:%d\n", r, errno == ESRCH);
  printf("kill: signal 0 to self: %d\n", kill(getpid(), 0));
  return 0;
}

static int t_vfork(void) {
  pid_t parent = getpid();
  fflush(stdout);
  pid_t pid = vfork();
  if (pid == 0) _exit(3);
  CHECK(pid > 0);
  reap("vfork: _exit child", pid);
  /* vfork + execve: the parent resumes once the child has exec'd. */
  char *args[] = {(char *)self, "child-echo", "after", "vfork", NULL};
  fflush(stdout);
  pid = vfork();
  if (pid == 0) {
    execve(self, args, environ);
    _exit(127);
  }
  CHECK(pid > 0);
  reap("vfork: exec child", pid);
  printf("vfork: parent pid unchanged:%d\n", getpid() == parent);
  return 0;
}

static int t_spawn(void) {
  pid_t pid;
  /* The parent prints only after it has reaped: the child's output comes first. */
  char *echo[] = {(char *)self, "child-echo", "spawned", NULL};
  fflush(stdout);
  int r = posix_spawn(&pid, self, NULL, NULL, echo, environ);
  CHECK(r == 0);
  reap("spawn: echo child", pid);
  char *ex[] = {(char *)self, "exit", "9", NULL};
  r = posix_spawn(&pid, self, NULL, NULL, ex, environ);
  CHECK(r == 0);
  reap("spawn: exit-9 child", pid);
  char *tru[] = {(char *)self, "exit", "0", NULL};
  r = posix_spawn(&pid, self, NULL, NULL, tru, environ);
  CHECK(r == 0);
  reap("spawn: true-like child", pid);
  /* A missing program: posix_spawn reports the exec's error (glibc and musl both do). */
  char *none[] = {"/nonexistent/program", NULL};
  r = posix_spawn(&pid, "/nonexistent/program", NULL, NULL, none, environ);
  printf("spawn: missing program: ENOENT:%d\n", r == ENOENT);
  if (r == 0) waitpid(pid, NULL, 0);
  /* File actions: the child's stdout is a pipe the parent reads. */
  int tube[2];
  CHECK(pipe(tube) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, tube[1], 1);
  posix_spawn_file_actions_addclose(&fa, tube[0]);
  posix_spawn_file_actions_addclose(&fa, tube[1]);
  char *piped[] = {(char *)self, "child-echo", "into", "a", "pipe", NULL};
  r = posix_spawn(&pid, self, &fa, NULL, piped, environ);
  posix_spawn_file_actions_destroy(&fa);
  CHECK(r == 0);
  close(tube[1]);
  char buf[256];
  size_t got = 0;
  ssize_t n;
  while ((n = read(tube[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
  buf[got] = 0;
  close(tube[0]);
  printf("spawn: read from the pipe: [%.*s]\n", got > 0 ? (int)got - 1 : 0, buf);
  reap("spawn: piped child", pid);
  return 0;
}

static int t_exec(void) {
  pid_t pid = fork_clean();
  if (pid == 0) {
    char *args[] = {(char *)self, "show-args", "two words", "", "last", NULL};
    char *env[] = {"PROCS_VAR=from the parent", NULL};
    execve(self, args, env);
    _exit(127);
  }
  reap("exec: child", pid);
  /* execve of a missing file fails in the caller with ENOENT, which goes on. */
  pid = fork_clean();
  if (pid == 0) {
    char *args[] = {"missing", NULL};
    execve("/nonexistent/program", args, environ);
    printf("exec: missing program: ENOENT:%d\n", errno == ENOENT);
    fflush(stdout);
    _exit(126);
  }
  reap("exec: missing-program child", pid);
  /* execveat(AT_FDCWD, path) as fexecve-like callers use it. */
  pid = fork_clean();
  if (pid == 0) {
    char *args[] = {(char *)self, "child-echo", "by", "execveat", NULL};
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    syscall(322 /* SYS_execveat */, fd, "", args, environ, 0x1000 /* AT_EMPTY_PATH */);
    printf("exec: execveat failed: errno %d\n", errno);
    fflush(stdout);
    _exit(126);
  }
  reap("exec: execveat child", pid);
  return 0;
}

static int t_cloexec(void) {
  int plain[2], cloexec[2];
  CHECK(pipe(plain) == 0);
  CHECK(pipe2(cloexec, O_CLOEXEC) == 0);
  int dupped = fcntl(plain[0], F_DUPFD_CLOEXEC, 20);
  CHECK(dupped >= 20);
  int cleared = fcntl(cloexec[1], F_DUPFD_CLOEXEC, 30);
  CHECK(cleared >= 30);
  CHECK(fcntl(cleared, F_SETFD, 0) == 0);
  char a[16], b[16], c[16], d[16];
  snprintf(a, sizeof a, "%d", plain[1]);
  snprintf(b, sizeof b, "%d", cloexec[0]);
  snprintf(c, sizeof c, "%d", dupped);
  snprintf(d, sizeof d, "%d", cleared);
  printf("cloexec: plain, O_CLOEXEC, F_DUPFD_CLOEXEC, FD_CLOEXEC cleared:\n");
  pid_t pid = fork_clean();
  if (pid == 0) {
    /* Across fork every fd stays open, the flag with it. */
    printf("cloexec: after fork: %d %d %d %d\n", fcntl(plain[1], F_GETFD), fcntl(cloexec[0], F_GETFD),
           fcntl(dupped, F_GETFD), fcntl(cleared, F_GETFD));
    fflush(stdout);
    char *args[] = {(char *)self, "check-fds", a, b, c, d, NULL};
    execve(self, args, environ);
    _exit(127);
  }
  reap("cloexec: child", pid);
  return 0;
}

static int t_pipe_4m(void) {
  int up[2], down[2];
  CHECK(pipe(up) == 0 && pipe(down) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    close(up[0]);
    close(down[1]);
    write_stream(up[1]); /* child -> parent */
    close(up[1]);        /* the parent sees EOF */
    read_stream("pipe-4m: child read", down[0]);
    fflush(stdout);
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
  read_stream("pipe-4m: parent read", up[0]);
  fflush(stdout);
  close(up[0]);
  write_stream(down[1]); /* parent -> child */
  close(down[1]);
  reap("pipe-4m: child", pid);
  return 0;
}

static volatile sig_atomic_t pipe_signals;
static void on_sigpipe(int sig) { (void)sig; pipe_signals++; }

static int t_epipe(void) {
  int tube[2];
  CHECK(pipe(tube) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    /* The reader: closes its end and exits. */
    close(tube[0]);
    close(tube[1]);
    _exit(0);
  }
  close(tube[0]);
  reap("epipe: reader", pid);
  /* With a handler: the handler runs once per write and the write fails with EPIPE. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigpipe;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGPIPE, &sa, NULL) == 0);
  errno = 0;
  ssize_t w = write(tube[1], "x", 1);
  printf("epipe: handled: write=%d EPIPE:%d handler runs=%d\n", (int)w, errno == EPIPE, (int)pipe_signals);
  /* Ignored: only EPIPE. */
  signal(SIGPIPE, SIG_IGN);
  errno = 0;
  w = write(tube[1], "x", 1);
  printf("epipe: ignored: write=%d EPIPE:%d handler runs=%d\n", (int)w, errno == EPIPE, (int)pipe_signals);
  /* Default: a writer child dies of SIGPIPE. */
  signal(SIGPIPE, SIG_DFL);
  pid = fork_clean();
  if (pid == 0) {
    write(tube[1], "x", 1);
    _exit(0); /* not reached */
  }
  reap("epipe: default-action writer", pid);
  close(tube[1]);
  return 0;
}

static volatile sig_atomic_t chld_runs, chld_code, chld_status, chld_pid_ok;
static pid_t chld_expected;
static void on_sigchld(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  chld_runs++;
  chld_code = si->si_code;
  chld_status = si->si_status;
  chld_pid_ok = si->si_pid == chld_expected;
}

static int t_sigchld(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigchld;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  CHECK(sigprocmask(SIG_BLOCK, &block, &old) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) _exit(4);
  chld_expected = pid;
  sigset_t wait_mask = old;
  sigdelset(&wait_mask, SIGCHLD);
  while (!chld_runs) sigsuspend(&wait_mask);
  CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
  printf("sigchld: handler runs=%d pid:%d code_exited:%d status=%d\n", (int)chld_runs, (int)chld_pid_ok,
         chld_code == CLD_EXITED, (int)chld_status);
  reap("sigchld: child", pid);
  /* A killed child: CLD_KILLED. */
  chld_runs = 0;
  CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0);
  pid = fork_clean();
  if (pid == 0) {
    for (;;) pause();
  }
  chld_expected = pid;
  CHECK(kill(pid, SIGTERM) == 0);
  while (!chld_runs) sigsuspend(&wait_mask);
  CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
  printf("sigchld: killed child: handler runs=%d code_killed:%d status=%d\n", (int)chld_runs, chld_code == CLD_KILLED,
         (int)chld_status);
  reap("sigchld: killed child", pid);
  /* SIGCHLD ignored: children are reaped at once and wait reports ECHILD. */
  signal(SIGCHLD, SIG_IGN);
  pid = fork_clean();
  if (pid == 0) _exit(0);
  int st;
  errno = 0;
  pid_t r;
  do r = waitpid(pid, &st, 0); while (r < 0 && errno == EINTR);
  printf("sigchld: ignored: waitpid=%d ECHILD:%d\n", (int)r, errno == ECHILD);
  signal(SIGCHLD, SIG_DFL);
  return 0;
}

static int t_pgid(void) {
  pid_t parent_pgid = getpgid(0);
  pid_t parent_sid = getsid(0);
  printf("pgid: getpgid(0)==getpgrp():%d getpgid(self)==getpgid(0):%d\n", parent_pgid == getpgrp(), getpgid(getpid()) == parent_pgid);
  int ready[2], go[2];
  CHECK(pipe(ready) == 0 && pipe(go) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    close(ready[0]);
    close(go[1]);
    printf("pgid: child inherits pgid:%d sid:%d\n", getpgid(0) == parent_pgid, getsid(0) == parent_sid);
    int r = setpgid(0, 0);
    printf("pgid: child setpgid(0,0)=%d now leader:%d\n", r, getpgid(0) == getpid());
    /* A group leader cannot make a session. */
    errno = 0;
    r = setsid();
    printf("pgid: leader setsid=%d EPERM:%d\n", r, errno == EPERM);
    fflush(stdout);
    write_all(ready[1], "r", 1);
    char c;
    while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  char c;
  CHECK(read(ready[0], &c, 1) == 1);
  printf("pgid: parent sees child's pgid==child:%d own unchanged:%d\n", getpgid(pid) == pid, getpgid(0) == parent_pgid);
  /* The parent may move its child back into its own group. */
  int r = setpgid(pid, parent_pgid);
  printf("pgid: parent setpgid(child, own)=%d\n", r);
  errno = 0;
  r = setpgid(pid, 123456);
  printf("pgid: setpgid to a missing group=%d EPERM:%d\n", r, errno == EPERM);
  close(go[1]);
  reap("pgid: child", pid);
  /* A child that is not a group leader makes a session of its own. */
  pid = fork_clean();
  if (pid == 0) {
    pid_t s = setsid();
    printf("pgid: setsid==pid:%d getsid==pid:%d getpgid==pid:%d\n", s == getpid(), getsid(0) == getpid(), getpgid(0) == getpid());
    fflush(stdout);
    _exit(0);
  }
  reap("pgid: session child", pid);
  errno = 0;
  r = getpgid(pid);
  printf("pgid: getpgid of a reaped child=%d ESRCH:%d\n", r, errno == ESRCH);
  return 0;
}

/* Job-control stops of an orphaned process group are discarded (POSIX): a child that makes a
 * session of its own (its group then has no member whose parent is in another group of its
 * session) is not stopped by SIGTSTP, SIGTTIN or SIGTTOU. SIGSTOP still stops it. */
static int t_orphan(void) {
  pid_t pid = fork_clean();
  if (pid == 0) {
    CHECK(setsid() == getpid());
    raise(SIGTSTP);
    raise(SIGTTIN);
    raise(SIGTTOU);
    printf("orphan: SIGTSTP, SIGTTIN and SIGTTOU did not stop the child\n");
    fflush(stdout);
    raise(SIGSTOP);
    printf("orphan: the child goes on after SIGCONT\n");
    fflush(stdout);
    _exit(0);
  }
  int st;
  CHECK(waitpid(pid, &st, WUNTRACED) == pid);
  printf("orphan: child stopped:%d by SIGSTOP:%d\n", WIFSTOPPED(st), WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
  kill(pid, SIGCONT);
  reap("orphan: child", pid);
  return 0;
}

/* The other half of the rule: a process group that the end of its last link to the session
 * leaves orphaned while a member is stopped gets SIGHUP, then SIGCONT. A session leader with a
 * stopped child in a group of its own ends; the child (adopted by a child subreaper) is
 * hung up and continued. PR_SET_PDEATHSIG: a child asks for SIGUSR1 when its parent ends. */
static volatile sig_atomic_t hups, usr1s;
static void on_hup(int sig) { (void)sig; hups++; }
static void on_usr1(int sig) { (void)sig; usr1s++; }

static int t_orphan_hup(void) {
  pid_t m = fork_clean();
  if (m == 0) {
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int flag = 0;
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &flag) == 0 && flag == 1);
    pid_t p = fork_clean();
    if (p == 0) {
      CHECK(setsid() == getpid());
      pid_t c = fork_clean();
      if (c == 0) {
        CHECK(setpgid(0, 0) == 0);
        signal(SIGHUP, on_hup);
        signal(SIGUSR1, on_usr1);
        CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR1) == 0);
        raise(SIGSTOP);
        while (!hups || !usr1s) pause();
        printf("orphan-hup: the stopped child got SIGHUP %d time(s) and its parent-death SIGUSR1 %d time(s), then went on\n",
               (int)hups, (int)usr1s);
        fflush(stdout);
        _exit(0);
      }
      int st;
      CHECK(waitpid(c, &st, WUNTRACED) == c);
      printf("orphan-hup: child stopped:%d\n", WIFSTOPPED(st));
      fflush(stdout);
      _exit(0); /* leaves the child's group orphaned */
    }
    int st;
    CHECK(waitpid(p, &st, 0) == p);
    int ost;
    pid_t o = waitpid(-1, &ost, 0);
    CHECK(o > 0 && o != p);
    printf("orphan-hup: session leader %s; ", status_text(st));
    printf("the orphan, now the subreaper's child, %s\n", status_text(ost));
    fflush(stdout);
    _exit(0);
  }
  reap("orphan-hup: subreaper", m);
  return 0;
}

static int t_dup2_exec(void) {
  int tube[2];
  CHECK(pipe(tube) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    /* What a shell does for `procs child-echo ... | reader`. */
    CHECK(dup2(tube[1], 1) == 1);
    close(tube[0]);
    close(tube[1]);
    char *args[] = {(char *)self, "child-echo", "through", "stdout", NULL};
    execve(self, args, environ);
    _exit(127);
  }
  close(tube[1]);
  char buf[256];
  size_t got = 0;
  ssize_t n;
  while ((n = read(tube[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
  close(tube[0]);
  printf("dup2-exec: read %zu bytes: [%.*s]\n", got, got > 0 ? (int)got - 1 : 0, buf);
  reap("dup2-exec: child", pid);
  /* dup3 with O_CLOEXEC, and dup2 of an fd onto itself. */
  int fd = dup3(0, 40, O_CLOEXEC);
  printf("dup2-exec: dup3=%d cloexec=%d dup2(self)=%d\n", fd == 40, fcntl(40, F_GETFD) & FD_CLOEXEC, dup2(40, 40) == 40);
  close(40);
  return 0;
}

static int t_poll(void) {
  int tube[2], go[2];
  CHECK(pipe(tube) == 0 && pipe(go) == 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    close(tube[0]);
    close(go[1]);
    char c;
    while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
    write_all(tube[1], "ping", 4);
    /* Hold the write end until told, so that the parent sees POLLIN alone first. */
    while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
    _exit(0);
  }
  close(tube[1]);
  close(go[0]);
  struct pollfd pf = {.fd = tube[0], .events = POLLIN};
  int r = poll(&pf, 1, 0);
  printf("poll: empty pipe, timeout 0: %d revents=%d\n", r, pf.revents);
  write_all(go[1], "g", 1);
  pf.revents = 0;
  r = poll(&pf, 1, -1); /* blocks until the child writes */
  printf("poll: after the child writes: %d POLLIN:%d no POLLHUP yet:%d\n", r, (pf.revents & POLLIN) != 0, (pf.revents & POLLHUP) == 0);
  char buf[8];
  ssize_t n = read(tube[0], buf, sizeof buf);
  printf("poll: read %d [%.*s]\n", (int)n, n > 0 ? (int)n : 0, buf);
  close(go[1]); /* the child exits, closing the write end */
  pf.revents = 0;
  r = poll(&pf, 1, 10000);
  printf("poll: writer gone: %d POLLHUP:%d\n", r, (pf.revents & POLLHUP) != 0);
  reap("poll: child", pid);
  /* The write end of a pipe with room is writable. */
  int t2[2];
  CHECK(pipe(t2) == 0);
  struct pollfd pw = {.fd = t2[1], .events = POLLOUT};
  r = poll(&pw, 1, 0);
  printf("poll: write end: %d POLLOUT:%d\n", r, (pw.revents & POLLOUT) != 0);
  close(t2[0]);
  close(t2[1]);
  close(tube[0]);
  return 0;
}

/* forkbomb-limit [CAP]: fork children that wait in pause() until fork fails (EAGAIN) or CAP
 * children exist; then kill and reap them all. */
static int t_forkbomb(long cap) {
  static pid_t kids[4096];
  if (cap > 4096) cap = 4096;
  long made = 0;
  int err = 0;
  while (made < cap) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      err = errno;
      break;
    }
    if (pid == 0) {
      for (;;) pause();
    }
    kids[made++] = pid;
  }
  if (err) printf("forkbomb-limit: made %ld children, then fork failed: %s\n", made, err == EAGAIN ? "EAGAIN" : strerror(err));
  else printf("forkbomb-limit: made %ld children (the cap)\n", made);
  for (long i = 0; i < made; i++) CHECK(kill(kids[i], SIGKILL) == 0);
  long reaped = 0, killed = 0;
  for (long i = 0; i < made; i++) {
    int st;
    pid_t r;
    do r = waitpid(-1, &st, 0); while (r < 0 && errno == EINTR);
    CHECK(r > 0);
    reaped++;
    killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
  }
  printf("forkbomb-limit: reaped %ld, all killed by SIGKILL:%d\n", reaped, killed == made);
  /* With the children gone, fork works again. */
  pid_t pid = fork_clean();
  if (pid == 0) _exit(0);
  reap("forkbomb-limit: fork after the reaping", pid);
  return 0;
}

struct check {
  const char *name;
  int (*fn)(void);
};
static const struct check checks[] = {
    {"fork-wait", t_fork_wait}, {"wnohang", t_wnohang}, {"waitid", t_waitid},   {"kill", t_kill},
    {"vfork", t_vfork},         {"spawn", t_spawn},     {"exec", t_exec},       {"cloexec", t_cloexec},
    {"pipe-4m", t_pipe_4m},     {"epipe", t_epipe},     {"sigchld", t_sigchld}, {"pgid", t_pgid},
    {"dup2-exec", t_dup2_exec}, {"poll", t_poll},       {"orphan", t_orphan}, {"orphan-hup", t_orphan_hup},
};
#define NCHECKS (sizeof checks / sizeof checks[0])

int main(int argc, char **argv) {
  self = argv[0];
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: procs CHECK|all|forkbomb-limit [CAP]\n");
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "exit")) return cmd_exit(argc, argv);
  if (!strcmp(cmd, "child-echo")) return cmd_child_echo(argc, argv);
  if (!strcmp(cmd, "show-args")) return cmd_show_args(argc, argv);
  if (!strcmp(cmd, "check-fds")) return cmd_check_fds(argc, argv);
  if (!strcmp(cmd, "exec-errno")) return cmd_exec_errno(argc, argv);
  if (!strcmp(cmd, "forkbomb-limit")) return t_forkbomb(argc > 2 ? atol(argv[2]) : 4096);
  if (!strcmp(cmd, "list")) {
    for (unsigned i = 0; i < NCHECKS; i++) printf("%s\n", checks[i].name);
    return 0;
  }
  int all = !strcmp(cmd, "all");
  for (unsigned i = 0; i < NCHECKS; i++) {
    if (all || !strcmp(cmd, checks[i].name)) {
      int r = checks[i].fn();
      if (!all) return r;
      if (r != 0) return r;
    }
  }
  if (all) {
    printf("all: done\n");
    return 0;
  }
  fprintf(stderr, "procs: unknown check '%s'\n", cmd);
  return 2;
}
