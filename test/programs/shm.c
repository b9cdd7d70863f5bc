/* Memory shared between processes: MAP_SHARED|MAP_ANONYMOUS (and MAP_SHARED of /dev/zero) stays
 * shared across fork, and process-shared semaphores, mutexes and condition variables work between
 * processes (shared futexes). One subcommand per check, argv[1] names it; each prints lines that
 * are the same natively and in the sandbox. test/processes.test.ts compares them with a native run.
 *
 *   shm anon-fork | devzero | private | sem | mutex | atomics | unmap | exec | grandchild | mremap |
 *       posix-shm | sem-open | memfd | seals | devshm | all
 *   shm file-shared DIR   MAP_SHARED of a file in DIR, written through mappings in two processes
 *   shm file-coherent DIR reads, writes, truncation and fallocate of a file agree with its shared mappings
 *   shm file-random DIR   the same, as a fixed pseudo-random sequence of those calls
 * The /dev/shm checks name their files after the pid (a native run shares the host's /dev/shm)
 * and print the names without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self;

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "shm: %s:%d: %s failed (errno %d %s)\n", __func__, __LINE__, #cond, \
              errno, strerror(errno));                                                      \
      exit(99);                                                                             \
    }                                                                                       \
  } while (0)

#define PAGE 4096

static pid_t fork_clean(void) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  CHECK(pid >= 0);
  return pid;
}

static void reap(pid_t pid) {
  int st;
  pid_t r;
  do r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  CHECK(r == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void *shared(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  return p;
}

/* The child writes to every page of a 16-page shared mapping; the parent sees each write. */
static int t_anon_fork(void) {
  size_t len = 16 * PAGE;
  unsigned char *p = shared(len);
  strcpy((char *)p, "from the parent");
  pid_t pid = fork_clean();
  if (pid == 0) {
    printf("anon-fork: child sees '%s'\n", (char *)p);
    for (size_t i = 0; i < len; i += PAGE) p[i + 100] = (unsigned char)(i / PAGE + 1);
    strcpy((char *)p, "from the child");
    exit(0);
  }
  reap(pid);
  unsigned sum = 0;
  for (size_t i = 0; i < len; i += PAGE) sum += p[i + 100];
  printf("anon-fork: parent sees '%s', page marks sum %u\n", (char *)p, sum);
  CHECK(munmap(p, len) == 0);
  return 0;
}

/* MAP_SHARED of /dev/zero is shared anonymous memory too. */
static int t_devzero(void) {
  int fd = open("/dev/zero", O_RDWR);
  CHECK(fd >= 0);
  volatile int *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  close(fd);
  p[0] = 1;
  pid_t pid = fork_clean();
  if (pid == 0) {
    p[0] = 42;
    exit(0);
  }
  reap(pid);
  printf("devzero: parent sees %d\n", p[0]);
  return 0;
}

/* A private mapping stays private: the child's write is its own, and so is the parent's. */
static int t_private(void) {
  volatile int *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  volatile int *s = shared(PAGE);
  p[0] = 1;
  s[0] = 0;
  pid_t pid = fork_clean();
  if (pid == 0) {
    p[0] = 2;
    while (s[0] != 1) usleep(1000); /* the parent's write to its private page comes first */
    s[1] = p[0];
    exit(0);
  }
  p[0] = 3;
  s[0] = 1;
  reap(pid);
  printf("private: parent has %d, child had %d\n", p[0], s[1]);
  return 0;
}

/* Two process-shared semaphores: the parent and the child take turns 2000 times. */
static int t_sem(void) {
  struct { sem_t ping, pong; int turns; } *s = shared(sizeof *s);
  CHECK(sem_init(&s->ping, 1, 0) == 0);
  CHECK(sem_init(&s->pong, 1, 0) == 0);
  enum { ROUNDS = 2000 };
  pid_t pid = fork_clean();
  if (pid == 0) {
    for (int i = 0; i < ROUNDS; i++) {
      while (sem_wait(&s->ping) != 0) CHECK(errno == EINTR);
      s->turns++;
      CHECK(sem_post(&s->pong) == 0);
    }
    exit(0);
  }
  for (int i = 0; i < ROUNDS; i++) {
    s->turns++;
    CHECK(sem_post(&s->ping) == 0);
    while (sem_wait(&s->pong) != 0) CHECK(errno == EINTR);
  }
  reap(pid);
  printf("sem: %d turns\n", s->turns);
  return 0;
}

/* A process-shared mutex and condition variable: two children hand a token back and forth. */
static int t_mutex(void) {
  struct { pthread_mutex_t m; pthread_cond_t c; int token; int count; } *s = shared(sizeof *s);
  pthread_mutexattr_t ma;
  pthread_condattr_t ca;
  CHECK(pthread_mutexattr_init(&ma) == 0 && pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) == 0);
  CHECK(pthread_condattr_init(&ca) == 0 && pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED) == 0);
  CHECK(pthread_mutex_init(&s->m, &ma) == 0 && pthread_cond_init(&s->c, &ca) == 0);
  enum { ROUNDS = 500 };
  pid_t kids[2];
  for (int who = 0; who < 2; who++) {
    kids[who] = fork_clean();
    if (kids[who] == 0) {
      for (int i = 0; i < ROUNDS; i++) {
        CHECK(pthread_mutex_lock(&s->m) == 0);
        while (s->token != who) CHECK(pthread_cond_wait(&s->c, &s->m) == 0);
        s->count++;
        s->token = 1 - who;
        CHECK(pthread_cond_broadcast(&s->c) == 0);
        CHECK(pthread_mutex_unlock(&s->m) == 0);
      }
      exit(0);
    }
  }
  reap(kids[0]);
  reap(kids[1]);
  printf("mutex: count %d, token %d\n", s->count, s->token);
  return 0;
}

/* Three children add to one counter with atomic instructions. */
static int t_atomics(void) {
  long *counter = shared(PAGE);
  enum { KIDS = 3, ADDS = 20000 };
  pid_t kids[KIDS];
  for (int k = 0; k < KIDS; k++) {
    kids[k] = fork_clean();
    if (kids[k] == 0) {
      for (int i = 0; i < ADDS; i++) __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);
      exit(0);
    }
  }
  for (int k = 0; k < KIDS; k++) reap(kids[k]);
  printf("atomics: counter %ld\n", *counter);
  return 0;
}

/* The child unmaps the shared pages and maps private ones in their place: the parent's stay. */
static int t_unmap(void) {
  char *p = shared(4 * PAGE);
  strcpy(p, "kept");
  strcpy(p + 2 * PAGE, "kept too");
  pid_t pid = fork_clean();
  if (pid == 0) {
    CHECK(munmap(p + PAGE, 2 * PAGE) == 0);
    char *q = mmap(p + PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(q == p + PAGE);
    printf("unmap: child's new page reads '%s'\n", q + PAGE);
    strcpy(q + PAGE, "child's private");
    strcpy(p + 3 * PAGE, "still shared");
    exit(0);
  }
  reap(pid);
  printf("unmap: parent has '%s', '%s', '%s'\n", p, p + 2 * PAGE, p + 3 * PAGE);
  return 0;
}

/* The child execs another program: the parent's shared pages are untouched by it. */
static int t_exec(void) {
  char *p = shared(PAGE);
  strcpy(p, "before the exec");
  pid_t pid = fork_clean();
  if (pid == 0) {
    strcpy(p, "the child's last write before its exec");
    execl(self, self, "helper", (char *)NULL);
    _exit(127);
  }
  reap(pid);
  printf("exec: parent has '%s'\n", p);
  /* The same memory is still shared with a new child. */
  pid = fork_clean();
  if (pid == 0) {
    strcpy(p, "a second child");
    exit(0);
  }
  reap(pid);
  printf("exec: then '%s'\n", p);
  return 0;
}

/* A grandchild's write reaches the grandparent. */
static int t_grandchild(void) {
  volatile int *p = shared(PAGE);
  pid_t pid = fork_clean();
  if (pid == 0) {
    pid_t g = fork_clean();
    if (g == 0) {
      p[0] = 7;
      exit(0);
    }
    reap(g);
    p[1] = p[0] + 1;
    exit(0);
  }
  reap(pid);
  printf("grandchild: %d %d\n", p[0], p[1]);
  return 0;
}

/* mremap: a shared mapping shrunk, then moved (same size, MREMAP_FIXED), stays shared. */
static int t_mremap(void) {
  char *p = shared(8 * PAGE);
  char *dest = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(dest != MAP_FAILED);
  CHECK(mremap(p, 8 * PAGE, 4 * PAGE, 0) == p);
  char *m = mremap(p, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
  CHECK(m == dest);
  pid_t pid = fork_clean();
  if (pid == 0) {
    strcpy(m + 3 * PAGE, "moved and shared");
    exit(0);
  }
  reap(pid);
  printf("mremap: '%s'\n", m + 3 * PAGE);
  return 0;
}

static char shm_prefix[64];

static const char *shm_name(const char *what) {
  static char buf[128];
  snprintf(buf, sizeof buf, "/%s%s", shm_prefix, what);
  return buf;
}

/* shm_open, ftruncate, mmap MAP_SHARED: a child's writes through its mapping reach the parent's
 * mapping and read(2); the parent's write(2) reaches the child's mapping. */
static int t_posix_shm(void) {
  const char *name = shm_name("region");
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  CHECK(fd >= 0);
  CHECK(ftruncate(fd, 3 * PAGE) == 0);
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  printf("posix-shm: size %ld, mode %o, regular %d\n", (long)st.st_size, st.st_mode & 0777, S_ISREG(st.st_mode));
  char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  CHECK(pwrite(fd, "written with pwrite", 20, PAGE) == 20);
  pid_t pid = fork_clean();
  if (pid == 0) {
    printf("posix-shm: child maps '%s'\n", p + PAGE);
    int again = shm_open(name, O_RDWR, 0);
    CHECK(again >= 0);
    char *q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, again, 2 * PAGE);
    CHECK(q != MAP_FAILED);
    strcpy(q, "from the child's own mapping");
    exit(0);
  }
  reap(pid);
  char buf[64] = {0};
  CHECK(pread(fd, buf, sizeof buf - 1, 2 * PAGE) > 0);
  printf("posix-shm: parent maps '%s', reads '%s'\n", p + 2 * PAGE, buf);
  CHECK(ftruncate(fd, PAGE) == 0);
  CHECK(fstat(fd, &st) == 0);
  printf("posix-shm: truncated to %ld\n", (long)st.st_size);
  CHECK(shm_unlink(name) == 0);
  printf("posix-shm: after unlink open gives errno %d\n", shm_open(name, O_RDWR, 0) < 0 ? errno : 0);
  strcpy(p, "still mapped");
  printf("posix-shm: '%s'\n", p);
  close(fd);
  return 0;
}

/* A named semaphore (sem_open: glibc makes it a file in /dev/shm), unlinked at once, then
 * shared with a child through fork, as Python's multiprocessing does. */
static int t_sem_open(void) {
  const char *name = shm_name("sem");
  sem_t *a = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
  CHECK(a != SEM_FAILED);
  CHECK(sem_unlink(name) == 0);
  sem_t *b = sem_open(shm_name("sem2"), O_CREAT | O_EXCL, 0600, 0);
  CHECK(b != SEM_FAILED);
  CHECK(sem_unlink(shm_name("sem2")) == 0);
  sem_t *gone = sem_open(name, 0);
  printf("sem-open: open after unlink: %s errno %d\n", gone == SEM_FAILED ? "failed" : "worked", gone == SEM_FAILED ? errno : 0);
  enum { ROUNDS = 500 };
  pid_t pid = fork_clean();
  if (pid == 0) {
    for (int i = 0; i < ROUNDS; i++) {
      while (sem_wait(a) != 0) CHECK(errno == EINTR);
      CHECK(sem_post(b) == 0);
    }
    exit(0);
  }
  for (int i = 0; i < ROUNDS; i++) {
    CHECK(sem_post(a) == 0);
    while (sem_wait(b) != 0) CHECK(errno == EINTR);
  }
  reap(pid);
  int v = -1;
  CHECK(sem_getvalue(a, &v) == 0);
  printf("sem-open: %d rounds, value %d\n", ROUNDS, v);
  return 0;
}

/* memfd_create: write(2), then mmap MAP_SHARED in parent and child. */
static int t_memfd(void) {
  int fd = memfd_create("kvmbox-test", MFD_CLOEXEC);
  CHECK(fd >= 0);
  CHECK(write(fd, "hello memfd", 11) == 11);
  CHECK(ftruncate(fd, PAGE) == 0);
  char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  char *priv = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(priv != MAP_FAILED);
  memcpy(priv, "PRIV", 4); /* a private copy: the file does not change */
  pid_t pid = fork_clean();
  if (pid == 0) {
    memcpy(p, "HELLO", 5);
    exit(0);
  }
  reap(pid);
  CHECK(posix_fallocate(fd, 0, 2 * PAGE) == 0); /* grows it: glibc tries fallocate first */
  char buf[16] = {0};
  CHECK(pread(fd, buf, 11, 0) == 11);
  printf("memfd: maps '%s', reads '%s', private copy starts '%.4s'\n", p, buf, priv);
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  printf("memfd: size %ld, links %ld\n", (long)st.st_size, (long)st.st_nlink);
  return 0;
}

/* File seals: memfd_create(MFD_ALLOW_SEALING) starts with none; each seal refuses its calls;
 * F_SEAL_SEAL ends the adding. A file made without the flag, and a /dev/shm file, has
 * F_SEAL_SEAL alone. */
static void seal_result(const char *what, long r) { printf("seals: %s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "ok"); }

static int t_seals(void) {
  int fd = memfd_create("sealed", MFD_ALLOW_SEALING);
  CHECK(fd >= 0);
  CHECK(write(fd, "hello", 5) == 5);
  seal_result("get at first", fcntl(fd, F_GET_SEALS));
  seal_result("add shrink and grow", fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
  seal_result("get", fcntl(fd, F_GET_SEALS));
  seal_result("ftruncate larger", ftruncate(fd, 8192));
  seal_result("ftruncate smaller", ftruncate(fd, 2));
  seal_result("ftruncate same", ftruncate(fd, 5));
  seal_result("write past the end", pwrite(fd, "x", 1, 10));
  seal_result("write across the end", pwrite(fd, "abcdefgh", 8, 2));
  seal_result("write inside", pwrite(fd, "J", 1, 0));
  seal_result("unknown seal", fcntl(fd, F_ADD_SEALS, 0x100));
  int ro = open("/proc/self/fd/3", O_RDONLY);
  if (ro >= 0 && ro != fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    close(ro);
    ro = open(path, O_RDONLY);
    seal_result("add from a read-only open", fcntl(ro, F_ADD_SEALS, F_SEAL_WRITE));
    close(ro);
  }
  char *rw = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(rw != MAP_FAILED);
  seal_result("add write while a shared mapping writes", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(mprotect(rw, PAGE, PROT_READ) == 0);
  seal_result("add write while it is read-only (it may write again)", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(munmap(rw, PAGE) == 0);
  seal_result("add write", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
  seal_result("write", pwrite(fd, "y", 1, 0));
  errno = 0;
  char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  seal_result("writable shared mmap", m == MAP_FAILED ? -1 : 0);
  m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
  CHECK(m != MAP_FAILED);
  printf("seals: a read-only mapping reads '%.5s'\n", m);
  seal_result("mprotect it writable", mprotect(m, PAGE, PROT_READ | PROT_WRITE));
  char *priv = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(priv != MAP_FAILED);
  priv[0] = 'P';
  printf("seals: a private mapping may be written: '%.5s'\n", priv);
  seal_result("add seal", fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL));
  seal_result("then add any", fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK));
  seal_result("get at last", fcntl(fd, F_GET_SEALS));
  char buf[8] = {0};
  CHECK(pread(fd, buf, 5, 0) == 5);
  printf("seals: contents '%s'\n", buf);
  int plain = memfd_create("plain", 0);
  seal_result("plain memfd get", fcntl(plain, F_GET_SEALS));
  seal_result("plain memfd add", fcntl(plain, F_ADD_SEALS, F_SEAL_GROW));
  int pfd[2];
  CHECK(pipe(pfd) == 0);
  seal_result("a pipe's get", fcntl(pfd[0], F_GET_SEALS));
  close(pfd[0]);
  close(pfd[1]);
  close(plain);
  close(fd);
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* /dev/shm as a directory: open O_CREAT|O_EXCL, link, rename, unlink, listing, stat. */
static int t_devshm(void) {
  struct stat st;
  CHECK(stat("/dev/shm", &st) == 0);
  printf("devshm: directory %d, sticky %d, mode %o\n", S_ISDIR(st.st_mode), (st.st_mode & S_ISVTX) != 0, st.st_mode & 0777);
  char path[160], other[160];
  snprintf(path, sizeof path, "/dev/shm%s", shm_name("a"));
  snprintf(other, sizeof other, "/dev/shm%s", shm_name("b"));
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
  CHECK(fd >= 0);
  printf("devshm: create again: errno %d\n", open(path, O_RDWR | O_CREAT | O_EXCL, 0644) < 0 ? errno : 0);
  CHECK(write(fd, "abc", 3) == 3);
  CHECK(link(path, other) == 0);
  CHECK(stat(other, &st) == 0);
  printf("devshm: links %ld, size %ld\n", (long)st.st_nlink, (long)st.st_size);
  char renamed[160];
  snprintf(renamed, sizeof renamed, "/dev/shm%s", shm_name("c"));
  CHECK(rename(other, renamed) == 0);
  DIR *d = opendir("/dev/shm");
  CHECK(d != NULL);
  char *names[16];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 16) {
    if (!strncmp(e->d_name, shm_prefix, strlen(shm_prefix))) names[n++] = strdup(e->d_name + strlen(shm_prefix));
  }
  closedir(d);
  qsort(names, n, sizeof names[0], cmp_str);
  printf("devshm: listed");
  for (int i = 0; i < n; i++) printf(" %s", names[i]);
  printf("\n");
  CHECK(unlink(path) == 0);
  CHECK(unlink(renamed) == 0);
  printf("devshm: stat after unlink: errno %d\n", stat(path, &st) < 0 ? errno : 0);
  CHECK(fstat(fd, &st) == 0);
  printf("devshm: open file: links %ld, size %ld\n", (long)st.st_nlink, (long)st.st_size);
  close(fd);
  return 0;
}

/* A file mapped MAP_SHARED for writing by a parent and its child (each its own mmap): each sees
 * the other's writes, and after munmap (and msync) the file holds them. */
static int t_file_shared(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/shared.bin", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK(write(fd, "on disk", 7) == 7);
  CHECK(ftruncate(fd, 2 * PAGE) == 0);
  char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  printf("file-shared: the mapping starts with '%s'\n", p);
  memcpy(p, "ON DISK", 7);
  pid_t pid = fork_clean();
  if (pid == 0) {
    int cfd = open(path, O_RDWR);
    CHECK(cfd >= 0);
    char *q = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
    CHECK(q != MAP_FAILED);
    printf("file-shared: the child's own mapping has '%.7s'\n", q);
    strcpy(q + PAGE, "written by the child");
    CHECK(msync(q, 2 * PAGE, MS_SYNC) == 0);
    CHECK(munmap(q, 2 * PAGE) == 0);
    exit(0);
  }
  reap(pid);
  printf("file-shared: the parent's mapping has '%s'\n", p + PAGE);
  CHECK(munmap(p, 2 * PAGE) == 0);
  char buf[32] = {0};
  CHECK(pread(fd, buf, 7, 0) == 7);
  char buf2[32] = {0};
  CHECK(pread(fd, buf2, 20, PAGE) == 20);
  printf("file-shared: after munmap the file has '%s' and '%s'\n", buf, buf2);
  close(fd);
  return 0;
}

/* read(2), write(2) and their kin agree with MAP_SHARED mappings of the same file, whichever fd
 * or process makes them: LMDB writes with pwrite and reads through a read-only shared mapping;
 * Python's mmap users store through the mapping and read the file. Truncation cuts the mapped
 * bytes too. */
static int t_file_coherent(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/coherent.bin", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK(ftruncate(fd, 2 * PAGE) == 0);
  char *ro = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
  char *rw = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(ro != MAP_FAILED && rw != MAP_FAILED);
  CHECK(pwrite(fd, "pwritten", 8, 100) == 8);
  printf("file-coherent: pwrite seen by the mappings: '%.8s' '%.8s'\n", ro + 100, rw + 100);
  CHECK(lseek(fd, PAGE + 10, SEEK_SET) == PAGE + 10);
  CHECK(write(fd, "written", 7) == 7);
  printf("file-coherent: write seen: '%.7s'\n", ro + PAGE + 10);
  strcpy(rw + 200, "stored");
  char buf[64] = {0};
  CHECK(pread(fd, buf, 6, 200) == 6);
  printf("file-coherent: a store seen by pread: '%s'\n", buf);
  int other = open(path, O_RDONLY);
  CHECK(other >= 0);
  CHECK(lseek(other, 196, SEEK_SET) == 196);
  memset(buf, 0, sizeof buf);
  CHECK(read(other, buf, 12) == 12);
  printf("file-coherent: read by another fd: %d '%s', position %ld\n", buf[0], buf + 4, (long)lseek(other, 0, SEEK_CUR));
  char *ro2 = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, other, 0);
  CHECK(ro2 != MAP_FAILED);
  printf("file-coherent: a read-only fd's shared mapping: '%s'; made writable: errno %d\n", ro2 + 200,
         mprotect(ro2, PAGE, PROT_READ | PROT_WRITE) ? errno : 0);
  pid_t pid = fork_clean();
  if (pid == 0) {
    strcpy(rw + PAGE + 100, "child's store");
    CHECK(pwrite(fd, "child's pwrite", 14, 300) == 14);
    _exit(0);
  }
  reap(pid);
  memset(buf, 0, sizeof buf);
  CHECK(pread(other, buf, 13, PAGE + 100) == 13);
  printf("file-coherent: after the child: '%s' '%.14s' '%.14s'\n", buf, ro + 300, ro2 + 300);
  char *priv = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, other, 0);
  CHECK(priv != MAP_FAILED);
  printf("file-coherent: a private mapping made now: '%s'\n", priv + 200);
  CHECK(ftruncate(fd, 150) == 0);
  CHECK(ftruncate(fd, 2 * PAGE) == 0);
  printf("file-coherent: cut to 150 and grown back: '%.8s' %d %d\n", ro + 100, ro[200], ro[PAGE + 100]);
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE) == 0);
  printf("file-coherent: after a hole is punched: %d\n", ro[100]);
  strcpy(rw + PAGE + 1, "last");
  int t = open(path, O_RDWR | O_TRUNC);
  CHECK(t >= 0);
  CHECK(ftruncate(t, 2 * PAGE) == 0);
  printf("file-coherent: after O_TRUNC: %d\n", ro[PAGE + 1]);
  strcpy(rw + 50, "kept");
  CHECK(munmap(ro, 2 * PAGE) == 0 && munmap(rw, 2 * PAGE) == 0 && munmap(ro2, PAGE) == 0 && munmap(priv, PAGE) == 0);
  close(t);
  close(other);
  close(fd);
  struct stat st;
  CHECK(stat(path, &st) == 0);
  fd = open(path, O_RDONLY);
  memset(buf, 0, sizeof buf);
  CHECK(pread(fd, buf, 4, 50) == 4);
  printf("file-coherent: the file at the end: size %ld, '%s'\n", (long)st.st_size, buf);
  close(fd);
  return 0;
}

/* A fixed pseudo-random sequence of pwrite, write, stores through a shared mapping, pread, read,
 * loads through a read-only mapping of another fd, and ftruncate, printing a hash of everything
 * read: the same natively and in the sandbox when the file and its mappings agree at each step.
 * Accesses stay within the file's size and the mappings' two pages (past the end Linux raises
 * SIGBUS, and what a store past the end leaves depends on write-back). */
static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(uint64_t n) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state % n;
}
static int t_file_random(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/random.bin", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  int other = open(path, O_RDONLY);
  CHECK(fd >= 0 && other >= 0);
  long size = 2 * PAGE;
  CHECK(ftruncate(fd, size) == 0);
  unsigned char *rw = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  unsigned char *ro = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, other, 0);
  CHECK(rw != MAP_FAILED && ro != MAP_FAILED);
  uint64_t hash = 1469598103934665603ull;
  unsigned char buf[3 * PAGE];
  for (int op = 1; op <= 3000; op++) {
    long mapped = size < 2 * PAGE ? size : 2 * PAGE;
    long off = rnd(size), len = 1 + rnd(300);
    if (off + len > 3 * PAGE) len = 3 * PAGE - off;
    for (long i = 0; i < len; i++) buf[i] = (unsigned char)rnd(256);
    long got = -1;
    switch (rnd(8)) {
    case 0: CHECK(pwrite(fd, buf, len, off) == len); break;
    case 1: CHECK(lseek(fd, off, SEEK_SET) == off && write(fd, buf, len) == len); break;
    case 2: case 3:
      off %= mapped;
      if (off + len > mapped) len = mapped - off;
      memcpy(rw + off, buf, len);
      break;
    case 4: got = pread(other, buf, len, off); break;
    case 5: CHECK(lseek(other, off, SEEK_SET) == off); got = read(other, buf, len); break;
    case 6:
      off %= mapped;
      if (off + len > mapped) len = mapped - off;
      memcpy(buf, ro + off, len);
      got = len;
      break;
    case 7: {
      long to = PAGE + 1 + rnd(2 * PAGE - 1);
      CHECK(ftruncate(fd, to) == 0);
      break;
    }
    }
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    size = st.st_size;
    for (long i = 0; i < got; i++) hash = (hash ^ buf[i]) * 1099511628211ull;
    hash = (hash ^ (uint64_t)size) * 1099511628211ull;
    if (op % 500 == 0) printf("file-random: after %d steps: size %ld, hash %016llx\n", op, size, (unsigned long long)hash);
  }
  CHECK(munmap(rw, 2 * PAGE) == 0 && munmap(ro, 2 * PAGE) == 0);
  close(other);
  close(fd);
  return 0;
}

static int t_helper(void) {
  return 0;
}

struct check { const char *name; int (*fn)(void); };
static const struct check checks[] = {
    {"anon-fork", t_anon_fork}, {"devzero", t_devzero}, {"private", t_private}, {"sem", t_sem},
    {"mutex", t_mutex},         {"atomics", t_atomics}, {"unmap", t_unmap},     {"exec", t_exec},
    {"grandchild", t_grandchild}, {"mremap", t_mremap},   {"posix-shm", t_posix_shm}, {"sem-open", t_sem_open},
    {"memfd", t_memfd},           {"seals", t_seals},       {"devshm", t_devshm},
};

int main(int argc, char **argv) {
  self = argv[0];
  snprintf(shm_prefix, sizeof shm_prefix, "kvmbox-shm-test-%d-", (int)getpid());
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "all";
  size_t n = sizeof checks / sizeof checks[0];
  if (!strcmp(what, "helper")) return t_helper();
  if (!strcmp(what, "file-shared") && argc > 2) return t_file_shared(argv[2]);
  if (!strcmp(what, "file-coherent") && argc > 2) return t_file_coherent(argv[2]);
  if (!strcmp(what, "file-random") && argc > 2) return t_file_random(argv[2]);
  if (!strcmp(what, "list")) {
    for (size_t i = 0; i < n; i++) printf("%s\n", checks[i].name);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (strcmp(what, "all") && strcmp(what, checks[i].name)) continue;
    int r = checks[i].fn();
    if (r) return r;
    if (strcmp(what, "all")) return 0;
  }
  if (!strcmp(what, "all")) {
    printf("all: done\n");
    return 0;
  }
  fprintf(stderr, "shm: unknown check '%s'\n", what);
  return 2;
}
