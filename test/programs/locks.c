/* Advisory file locks between processes: flock, POSIX record locks (F_SETLK, F_SETLKW, F_GETLK)
 * and open-file-description locks (F_OFD_*). Run as `locks DIR` with DIR writable; prints one
 * line per check, with no pids and no timings, so that the output is the same natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path[4096];

static const char *ename(int e) {
  switch (e) {
  case 0: return "ok";
  case EAGAIN: return "EAGAIN";
  case EACCES: return "EACCES";
  case EBADF: return "EBADF";
  case EINVAL: return "EINVAL";
  case EDEADLK: return "EDEADLK";
  case EINTR: return "EINTR";
  default: return strerror(e);
  }
}

static int open_file(int flags) {
  int fd = open(path, flags | O_CREAT, 0644);
  if (fd < 0) {
    perror("open");
    exit(1);
  }
  return fd;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* F_SETLK/F_SETLKW/F_OFD_*: 0 or the errno. */
static int lk(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  return fcntl(fd, cmd, &fl) < 0 ? errno : 0;
}

/* F_GETLK or F_OFD_GETLK over [start, start+len): "unlocked" or the conflicting lock. */
static void show_getlk(const char *what, int fd, int cmd, short type, off_t start, off_t len, pid_t holder) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  if (fcntl(fd, cmd, &fl) < 0) {
    printf("%s: getlk %s\n", what, ename(errno));
    return;
  }
  if (fl.l_type == F_UNLCK) printf("%s: unlocked\n", what);
  else
    printf("%s: %s lock at %ld len %ld, pid %s\n", what, fl.l_type == F_WRLCK ? "write" : "read", (long)fl.l_start, (long)fl.l_len,
           fl.l_pid == holder ? "of the holder" : fl.l_pid == -1 ? "-1" : "other");
}

static int fl_nb(int fd, int op) { return flock(fd, op | LOCK_NB) < 0 ? errno : 0; }

static void reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
}

static void put(int fd, const char *s) {
  if (write(fd, s, strlen(s)) < 0) perror("write");
}

static char get(int fd) {
  char c = 0;
  while (read(fd, &c, 1) < 0 && errno == EINTR) {}
  return c;
}

static void t_flock(void) {
  int a = open_file(O_RDWR), b = open_file(O_RDWR);
  printf("flock: EX on a: %s\n", ename(fl_nb(a, LOCK_EX)));
  printf("flock: EX on a second open of the file: %s\n", ename(fl_nb(b, LOCK_EX)));
  printf("flock: SH on a second open: %s\n", ename(fl_nb(b, LOCK_SH)));
  int d = dup(a);
  printf("flock: EX again through a dup (same open file): %s\n", ename(fl_nb(d, LOCK_EX)));
  printf("flock: a converts to SH: %s\n", ename(fl_nb(a, LOCK_SH)));
  printf("flock: SH on the second open beside it: %s\n", ename(fl_nb(b, LOCK_SH)));
  printf("flock: EX on the second open: %s\n", ename(fl_nb(b, LOCK_EX)));
  printf("flock: a unlocks: %s\n", ename(flock(a, LOCK_UN) < 0 ? errno : 0));
  printf("flock: EX on the second open now: %s\n", ename(fl_nb(b, LOCK_EX)));
  printf("flock: unknown operation: %s\n", ename(flock(b, 77) < 0 ? errno : 0));
  close(b);
  /* The lock belongs to the open file: a fork child shares it, and it goes with the last descriptor. */
  printf("flock: EX on a: %s\n", ename(fl_nb(a, LOCK_EX)));
  int go[2], back[2];
  if (pipe(go) || pipe(back)) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    close(d);
    get(go[0]); /* the parent has closed its descriptors */
    int c = open_file(O_RDWR);
    printf("flock child: while it holds the inherited descriptor: %s\n", ename(fl_nb(c, LOCK_EX)));
    close(a);
    printf("flock child: after closing the last descriptor: %s\n", ename(fl_nb(c, LOCK_EX)));
    fflush(stdout);
    _exit(0);
  }
  close(a);
  close(d);
  put(go[1], "g");
  reap(pid);
  close(go[0]); close(go[1]); close(back[0]); close(back[1]);
}

/* A blocked flock waits for the holder, who writes before it lets go. */
static void t_flock_wait(void) {
  int a = open_file(O_RDWR | O_TRUNC);
  flock(a, LOCK_EX);
  int go[2];
  if (pipe(go)) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    int c = open_file(O_RDWR);
    put(go[1], "r");
    int r = flock(c, LOCK_EX) < 0 ? errno : 0;
    char buf[16] = {0};
    ssize_t n = pread(c, buf, sizeof buf - 1, 0);
    printf("flock wait child: got the lock: %s, then read %zd bytes [%s]\n", ename(r), n, buf);
    fflush(stdout);
    _exit(0);
  }
  get(go[0]);
  sleep_ms(100);
  if (pwrite(a, "written", 7, 0) != 7) perror("pwrite");
  flock(a, LOCK_UN);
  reap(pid);
  close(a);
  close(go[0]); close(go[1]);
}

static void t_posix(void) {
  int a = open_file(O_RDWR);
  pid_t me = getpid();
  printf("posix: write lock [0,100): %s\n", ename(lk(a, F_SETLK, F_WRLCK, 0, 100)));
  printf("posix: unlock [40,60): %s\n", ename(lk(a, F_SETLK, F_UNLCK, 40, 20)));
  printf("posix: own locks never conflict: %s\n", ename(lk(a, F_SETLK, F_WRLCK, 90, 20)));
  printf("posix: read lock [200,300): %s\n", ename(lk(a, F_SETLK, F_RDLCK, 200, 100)));
  int go[2], back[2];
  if (pipe(go) || pipe(back)) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    int c = open_file(O_RDWR);
    show_getlk("posix child: [45,50) write", c, F_GETLK, F_WRLCK, 45, 5, me);
    show_getlk("posix child: [30,50) write", c, F_GETLK, F_WRLCK, 30, 20, me);
    show_getlk("posix child: [70,80) read", c, F_GETLK, F_RDLCK, 70, 10, me);
    show_getlk("posix child: [250,260) read", c, F_GETLK, F_RDLCK, 250, 10, me);
    show_getlk("posix child: [250,260) write", c, F_GETLK, F_WRLCK, 250, 10, me);
    printf("posix child: read lock [200,210) beside the parent's: %s\n", ename(lk(c, F_SETLK, F_RDLCK, 200, 10)));
    int r = lk(c, F_SETLK, F_WRLCK, 0, 1);
    printf("posix child: write lock [0,1): %s\n", r == EACCES ? "EAGAIN" : ename(r));
    printf("posix child: write lock [45,55): %s\n", ename(lk(c, F_SETLK, F_WRLCK, 45, 10)));
    fflush(stdout);
    put(back[1], "1");
    get(go[0]); /* the parent closed another descriptor of the file */
    show_getlk("posix child: after the parent closed another descriptor", c, F_GETLK, F_WRLCK, 0, 0, me);
    fflush(stdout);
    put(back[1], "2");
    get(go[0]); /* the parent locked [0,10) again: wait for it */
    r = lk(c, F_SETLKW, F_WRLCK, 5, 1);
    char buf[16] = {0};
    ssize_t n = pread(c, buf, sizeof buf - 1, 0);
    printf("posix child: F_SETLKW: %s, then read %zd bytes [%s]\n", ename(r), n, buf);
    fflush(stdout);
    _exit(0);
  }
  get(back[0]);
  /* Closing any descriptor of the file drops all of the process's POSIX locks on it. */
  int other = open_file(O_RDONLY);
  close(other);
  put(go[1], "c");
  get(back[0]);
  ftruncate(a, 0);
  lk(a, F_SETLK, F_WRLCK, 0, 10);
  put(go[1], "w");
  sleep_ms(100);
  if (pwrite(a, "posixdata", 9, 0) != 9) perror("pwrite");
  lk(a, F_SETLK, F_UNLCK, 0, 0);
  reap(pid);
  close(a);
  close(go[0]); close(go[1]); close(back[0]); close(back[1]);
}

/* A process's locks go when it ends. */
static void t_exit_releases(void) {
  int a = open_file(O_RDWR);
  int back[2];
  if (pipe(back)) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    lk(a, F_SETLK, F_WRLCK, 0, 0);
    flock(a, LOCK_EX);
    put(back[1], "l");
    sleep_ms(100);
    _exit(0);
  }
  get(back[0]);
  int b = open_file(O_RDWR);
  int r = lk(b, F_SETLK, F_WRLCK, 0, 0);
  printf("exit: while the child lives: %s\n", r == EACCES ? "EAGAIN" : ename(r));
  printf("exit: F_SETLKW waits for its end: %s\n", ename(lk(b, F_SETLKW, F_WRLCK, 0, 0)));
  reap(pid);
  printf("exit: flock after its end (the parent still has the file open: shared): %s\n", ename(fl_nb(b, LOCK_EX)));
  close(a);
  printf("exit: flock once the parent closed its copy too: %s\n", ename(fl_nb(b, LOCK_EX)));
  close(b);
  close(back[0]); close(back[1]);
}

/* Two processes each hold a lock and wait for the other's: one of them gets EDEADLK. */
static void t_deadlock(void) {
  int a = open_file(O_RDWR);
  lk(a, F_SETLK, F_WRLCK, 0, 1);
  int go[2], res[2];
  if (pipe(go) || pipe(res)) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    int c = open_file(O_RDWR);
    lk(c, F_SETLK, F_WRLCK, 10, 1);
    put(go[1], "h");
    sleep_ms(300);
    int r = lk(c, F_SETLKW, F_WRLCK, 0, 1);
    put(res[1], r == EDEADLK ? "D" : r == 0 ? "0" : "?");
    _exit(0); /* its locks go, and the parent's wait ends */
  }
  get(go[0]);
  int r = lk(a, F_SETLKW, F_WRLCK, 10, 1);
  if (r == EDEADLK) lk(a, F_SETLK, F_UNLCK, 0, 1); /* let the child through */
  char c = get(res[0]);
  reap(pid);
  int deadlocks = (r == EDEADLK) + (c == 'D');
  printf("deadlock: one of the two got EDEADLK: %s\n", deadlocks == 1 ? "yes" : "no");
  close(a);
  close(go[0]); close(go[1]); close(res[0]); close(res[1]);
}

static void t_ofd(void) {
  int a = open_file(O_RDWR), b = open_file(O_RDWR);
  printf("ofd: write lock through a: %s\n", ename(lk(a, F_OFD_SETLK, F_WRLCK, 0, 10)));
  printf("ofd: write lock through a second open, same process: %s\n", ename(lk(b, F_OFD_SETLK, F_WRLCK, 5, 10)));
  show_getlk("ofd: F_OFD_GETLK through the second open", b, F_OFD_GETLK, F_WRLCK, 0, 0, -2);
  printf("ofd: a POSIX lock of the same process conflicts with it: %s\n", ename(lk(b, F_SETLK, F_WRLCK, 0, 1)));
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1, .l_pid = 1};
  printf("ofd: l_pid not 0: %s\n", ename(fcntl(b, F_OFD_SETLK, &fl) < 0 ? errno : 0));
  int d = dup(a);
  close(d); /* not the last descriptor: the lock stays */
  printf("ofd: after closing a dup of a: %s\n", ename(lk(b, F_OFD_SETLK, F_WRLCK, 0, 1)));
  close(a);
  printf("ofd: after closing a: %s\n", ename(lk(b, F_OFD_SETLK, F_WRLCK, 0, 1)));
  close(b);
}

/* Two opens of one /dev/shm file are one file: their locks conflict. */
static void t_shm(void) {
  const char *name = "/dev/shm/kvmbox-locks-test";
  int a = open(name, O_RDWR | O_CREAT, 0600), b = open(name, O_RDWR);
  if (a < 0 || b < 0) {
    printf("shm: open %s\n", strerror(errno));
    return;
  }
  printf("shm: flock EX on a: %s\n", ename(fl_nb(a, LOCK_EX)));
  printf("shm: flock EX on a second open: %s\n", ename(fl_nb(b, LOCK_EX)));
  printf("shm: OFD write lock through a: %s\n", ename(lk(a, F_OFD_SETLK, F_WRLCK, 0, 10)));
  printf("shm: OFD write lock through a second open: %s\n", ename(lk(b, F_OFD_SETLK, F_WRLCK, 0, 10)));
  close(a);
  close(b);
  unlink(name);
}

static void t_errors(void) {
  int r = open_file(O_RDONLY), w = open_file(O_WRONLY);
  printf("errors: write lock on a read-only descriptor: %s\n", ename(lk(r, F_SETLK, F_WRLCK, 0, 1)));
  printf("errors: read lock on a write-only descriptor: %s\n", ename(lk(w, F_SETLK, F_RDLCK, 0, 1)));
  printf("errors: l_type 9: %s\n", ename(lk(r, F_SETLK, 9, 0, 1)));
  struct flock fl = {.l_type = F_RDLCK, .l_whence = 7, .l_start = 0, .l_len = 1};
  printf("errors: l_whence 7: %s\n", ename(fcntl(r, F_SETLK, &fl) < 0 ? errno : 0));
  printf("errors: a start before the file: %s\n", ename(lk(r, F_SETLK, F_RDLCK, -5, 1)));
  printf("errors: F_GETLK of F_UNLCK: %s\n", ename(lk(r, F_GETLK, F_UNLCK, 0, 1)));
  printf("errors: a bad pointer: %s\n", ename(fcntl(r, F_SETLK, (void *)8) < 0 ? errno : 0));
  /* A negative length from the end: [size-4, size). */
  if (ftruncate(w, 20)) perror("ftruncate");
  struct flock e = {.l_type = F_WRLCK, .l_whence = SEEK_END, .l_start = 0, .l_len = -4};
  printf("errors: none for a lock from the end backwards: %s\n", ename(fcntl(w, F_SETLK, &e) < 0 ? errno : 0));
  pid_t me = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    int c = open_file(O_RDWR);
    show_getlk("errors child: the lock from the end", c, F_GETLK, F_WRLCK, 0, 0, me);
    fflush(stdout);
    _exit(0);
  }
  reap(pid);
  close(r);
  close(w);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: locks DIR\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(path, sizeof path, "%s/lockfile", argv[1]);
  t_flock();
  t_flock_wait();
  t_posix();
  t_exit_releases();
  t_deadlock();
  t_ofd();
  t_shm();
  t_errors();
  unlink(path);
  printf("done\n");
  return 0;
}
