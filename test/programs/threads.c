/* Threads: a mutex-protected counter from 4 threads, a condition variable between a producer
 * and a consumer, a barrier, a semaphore, thread-local storage, pthread_join results, a
 * detached thread, pthread_exit, distinct gettid per thread and the same getpid. Output is the
 * same natively and in the sandbox (threads take turns on one vCPU there). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static __thread long mine = 100;
static pid_t tids[THREADS];

static void *count(void *arg) {
  long id = (long)arg;
  mine += id;
  tids[id] = (pid_t)syscall(SYS_gettid);
  for (int i = 0; i < ROUNDS; i++) {
    pthread_mutex_lock(&lock);
    counter++;
    pthread_mutex_unlock(&lock);
    if (i % 5000 == 0) sched_yield();
  }
  return (void *)(mine * 10);
}

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static int queue[8], qlen, done;
static long consumed;

static void *producer(void *arg) {
  (void)arg;
  for (int i = 1; i <= 1000; i++) {
    pthread_mutex_lock(&qlock);
    while (qlen == 8) pthread_cond_wait(&qcond, &qlock);
    queue[qlen++] = i;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
  }
  pthread_mutex_lock(&qlock);
  done = 1;
  pthread_cond_broadcast(&qcond);
  pthread_mutex_unlock(&qlock);
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&qlock);
    while (qlen == 0 && !done) pthread_cond_wait(&qcond, &qlock);
    if (qlen == 0 && done) { pthread_mutex_unlock(&qlock); return NULL; }
    consumed += queue[--qlen];
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
  }
}

static pthread_barrier_t barrier;
static int serial;
static void *at_barrier(void *arg) {
  (void)arg;
  if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) __atomic_add_fetch(&serial, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static sem_t sem;
static void *poster(void *arg) {
  (void)arg;
  for (int i = 0; i < 5; i++) sem_post(&sem);
  pthread_exit((void *)7);
}

static sem_t ready, gate;
static volatile pid_t hit_tid;
static pid_t target_tid;
static void on_usr1(int sig) { (void)sig; hit_tid = (pid_t)syscall(SYS_gettid); }
static void *target(void *arg) {
  (void)arg;
  target_tid = (pid_t)syscall(SYS_gettid);
  sem_post(&ready);
  while (sem_wait(&gate) != 0) {}  /* EINTR while the handler runs, then the main thread's post */
  return NULL;
}

static volatile int detached_ran;
static void *detached(void *arg) { (void)arg; detached_ran = 1; return NULL; }

static sem_t release;
static void *waiter(void *arg) { (void)arg; sem_wait(&release); return NULL; }

/* Threads that wait until pthread_create fails: how many could exist besides main. */
static int limit(void) {
  static pthread_t w[4096];
  int n = 0, e = 0;
  sem_init(&release, 0, 0);
  while (n < 4096 && (e = pthread_create(&w[n], NULL, waiter, NULL)) == 0) n++;
  printf("created %d threads, then %s\n", n, e == 11 ? "EAGAIN" : "another error");
  for (int i = 0; i < n; i++) sem_post(&release);
  for (int i = 0; i < n; i++) pthread_join(w[i], NULL);
  printf("joined %d\n", n);
  return 0;
}

/* The CPUs the process may run on (sched_getaffinity), and what glibc counts as online and
 * configured (/sys/devices/system/cpu/online and possible, then other sources). */
static int nproc(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  printf("%d %d %d\n", CPU_COUNT(&set), get_nprocs(), get_nprocs_conf());
  return 0;
}

/* fork + exec, then execve, from a process whose other threads keep running: one makes system
 * calls, one spins in user mode. */
static atomic_int stop_workers;
static void *caller(void *arg) { (void)arg; while (!atomic_load(&stop_workers)) getppid(); return NULL; }
static void *spinner(void *arg) { (void)arg; while (!atomic_load(&stop_workers)) { } return NULL; }

static int forkexec(void) {
  pthread_t a, b;
  pthread_create(&a, NULL, caller, NULL);
  pthread_create(&b, NULL, spinner, NULL);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/proc/self/exe", "threads", "child", (char *)NULL);
    _exit(127);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  printf("parent: child exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  execl("/proc/self/exe", "threads", "execd", (char *)NULL);
  printf("execl failed\n");
  return 1;
}

// A thread posix_spawns (clone with CLONE_VM|CLONE_VFORK, then execve in the child) while the
// main thread waits in pthread_join and another in a condition variable: the child's execve
// must leave the parent's futex waiters where they are (the JVM's launcher does this).
static pthread_mutex_t sj_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sj_cond = PTHREAD_COND_INITIALIZER;
static int sj_go;
static void *sj_waiter(void *arg) {
  (void)arg;
  pthread_mutex_lock(&sj_lock);
  while (!sj_go) pthread_cond_wait(&sj_cond, &sj_lock);
  pthread_mutex_unlock(&sj_lock);
  return (void *)"waiter woken";
}
static void *sj_spawner(void *arg) {
  (void)arg;
  usleep(100000);  // the main thread is in pthread_join, the waiter in pthread_cond_wait
  extern char **environ;
  char *args[] = {"threads", "child", NULL};
  pid_t pid;
  int status = -1;
  if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) != 0) return (void *)"spawn failed";
  waitpid(pid, &status, 0);
  printf("spawned child exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  pthread_mutex_lock(&sj_lock);
  sj_go = 1;
  pthread_cond_signal(&sj_cond);
  pthread_mutex_unlock(&sj_lock);
  return (void *)"spawner done";
}
static int spawnjoin(void) {
  pthread_t w, s;
  void *rw, *rs;
  pthread_create(&w, NULL, sj_waiter, NULL);
  pthread_create(&s, NULL, sj_spawner, NULL);
  pthread_join(s, &rs);
  pthread_join(w, &rw);
  printf("%s, %s\n", (char *)rs, (char *)rw);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && !strcmp(argv[1], "nproc")) return nproc();
  if (argc > 1 && !strcmp(argv[1], "forkexec")) return forkexec();
  if (argc > 1 && !strcmp(argv[1], "spawnjoin")) return spawnjoin();
  if (argc > 1 && !strcmp(argv[1], "child")) { printf("child ran\n"); return 3; }
  if (argc > 1 && !strcmp(argv[1], "execd")) { printf("execve from a threaded process: the new program runs\n"); return 0; }
  if (argc > 1) return limit();
  pthread_t th[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, count, (void *)i);
  long sum = 0;
  for (int i = 0; i < THREADS; i++) { void *r; pthread_join(th[i], &r); sum += (long)r; }
  printf("counter=%ld (want %d) join results=%ld main tls=%ld\n", counter, THREADS * ROUNDS, sum, mine);
  int distinct = 1;
  for (int i = 0; i < THREADS; i++) for (int j = 0; j < i; j++) if (tids[i] == tids[j]) distinct = 0;
  for (int i = 0; i < THREADS; i++) if (tids[i] == getpid()) distinct = 0;
  printf("thread ids distinct from each other and from the pid: %d\n", distinct);

  pthread_t p, c1, c2;
  pthread_create(&c1, NULL, consumer, NULL);
  pthread_create(&c2, NULL, consumer, NULL);
  pthread_create(&p, NULL, producer, NULL);
  pthread_join(p, NULL); pthread_join(c1, NULL); pthread_join(c2, NULL);
  printf("consumed=%ld (want %d)\n", consumed, 1000 * 1001 / 2);

  pthread_barrier_init(&barrier, NULL, 3);
  pthread_t b[3];
  for (int i = 0; i < 3; i++) pthread_create(&b[i], NULL, at_barrier, NULL);
  for (int i = 0; i < 3; i++) pthread_join(b[i], NULL);
  printf("barrier serial threads=%d\n", serial);

  sem_init(&sem, 0, 0);
  pthread_t s;
  pthread_create(&s, NULL, poster, NULL);
  for (int i = 0; i < 5; i++) sem_wait(&sem);
  void *r;
  pthread_join(s, &r);
  printf("semaphore taken 5 times, pthread_exit value=%ld\n", (long)r);

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t d;
  pthread_create(&d, &attr, detached, NULL);
  while (!detached_ran) sched_yield();
  printf("detached thread ran\n");

  /* pthread_kill (tgkill) to another thread: its handler runs there. */
  signal(SIGUSR1, on_usr1);
  sem_init(&ready, 0, 0);
  sem_init(&gate, 0, 0);
  pthread_t k;
  pthread_create(&k, NULL, target, NULL);
  sem_wait(&ready);
  pthread_kill(k, SIGUSR1);
  while (!hit_tid) sched_yield();
  sem_post(&gate);
  pthread_join(k, NULL);
  printf("pthread_kill reached that thread: %d\n", hit_tid == target_tid);
  return 0;
}
