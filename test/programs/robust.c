/* Robust futex lists: a robust mutex held by a thread that ends is handed to the next locker
 * with EOWNERDEAD (glibc relies on the kernel's walk of the thread's robust list; musl walks it
 * itself), with the locker already waiting or coming later; pthread_mutex_consistent then makes
 * it usable again. set_robust_list/get_robust_list, and hand-made lists: a loop (the walk is
 * bounded) with a pending entry, and a bad pointer (the walk stops there); children that exit or
 * execve while a thread holds a robust mutex. The output is the same natively and in the sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t m;
static sem_t locked;

static const char *name(int r) {
  switch (r) {
    case 0: return "0";
    case EOWNERDEAD: return "EOWNERDEAD";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    default: return "other";
  }
}

/* A thread that takes mutex, says so, waits wait_ms and ends holding it. */
struct hold { pthread_mutex_t *mutex; int wait_ms; };
static void *holder(void *arg) {
  struct hold *h = arg;
  pthread_mutex_lock(h->mutex);
  sem_post(&locked);
  if (h->wait_ms) usleep(h->wait_ms * 1000);
  return NULL; /* ends holding the mutex */
}

/* <linux/futex.h>'s robust list (musl-gcc has no kernel headers). */
#define FUTEX_OWNER_DIED 0x40000000
struct rlist { struct rlist *next; };
struct rlist_head { struct rlist list; long futex_offset; struct rlist *list_op_pending; };

/* A hand-made robust list: the head, two entries, and the futex words they lead to. */
struct entry { struct rlist list; int word; };
static struct { struct rlist_head head; struct entry a, pending; } R;

static void *own_list(void *arg) {
  int loop = *(int *)arg;
  int tid = (int)syscall(SYS_gettid);
  R.a.word = tid;
  R.pending.word = tid;
  R.head.list.next = &R.a.list;
  R.head.futex_offset = offsetof(struct entry, word) - offsetof(struct entry, list);
  R.head.list_op_pending = &R.pending.list;
  /* A loop to itself (bounded walk), or a pointer into page 0 (the walk stops, pending untouched). */
  R.a.list.next = loop ? &R.a.list : (struct rlist *)8;
  long r = syscall(SYS_set_robust_list, &R.head, sizeof R.head);
  if (r != 0) return (void *)1;
  return NULL;
}

static const char *state(int word) {
  return word == FUTEX_OWNER_DIED ? "owner died" : (word & FUTEX_OWNER_DIED) ? "other" : "unchanged";
}

static void own_list_case(int loop) {
  pthread_t t;
  pthread_create(&t, NULL, own_list, &loop);
  void *res;
  pthread_join(t, &res);
  printf("%s: set %s, entry word %s, pending word %s\n", loop ? "loop" : "bad pointer", res == NULL ? "ok" : "failed",
    state(R.a.word), state(R.pending.word));
}

static pthread_mutex_t held;

static void *hold_forever(void *arg) {
  (void)arg;
  pthread_mutex_lock(&held);
  sem_post(&locked);
  for (;;) pause();
  return NULL;
}

/* A child whose second thread holds a robust mutex when the process ends (exit) or replaces its
 * program (execve of itself with "quiet"): the lists are walked on the way; nothing to see but
 * the child's status. */
static void child_case(const char *how, char *self) {
  pid_t c = fork();
  if (c == 0) {
    pthread_t t;
    pthread_create(&t, NULL, hold_forever, NULL);
    sem_wait(&locked);
    if (strcmp(how, "execve") == 0) {
      char *argv[] = { self, "quiet", NULL };
      execv("/proc/self/exe", argv);
      _exit(3);
    }
    exit(7);
  }
  int st = 0;
  waitpid(c, &st, 0);
  printf("child that ends by %s with a robust mutex held: status %d\n", how, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Priority-inheritance mutexes (FUTEX_LOCK_PI / UNLOCK_PI): contended increments, a timed lock
 * that times out, and a robust one whose holder ends (with the locker waiting, and after). */
static pthread_mutex_t pim;
static long picount;
static void *pi_adder(void *arg) {
  (void)arg;
  for (int i = 0; i < 5000; i++) {
    pthread_mutex_lock(&pim);
    picount++;
    pthread_mutex_unlock(&pim);
  }
  return NULL;
}
static void *pi_sleeper(void *arg) {
  (void)arg;
  pthread_mutex_lock(&pim);
  sem_post(&locked);
  usleep(300000);
  pthread_mutex_unlock(&pim);
  return NULL;
}

static void pi_cases(void) {
  pthread_mutexattr_t at;
  pthread_mutexattr_init(&at);
  printf("PI: setprotocol %s\n", name(pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT)));
  printf("PI: init %s\n", name(pthread_mutex_init(&pim, &at)));
  pthread_t t[3];
  for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, pi_adder, NULL);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  printf("PI: three threads counted %ld\n", picount);
  int r;
  r = pthread_mutex_trylock(&pim);
  printf("PI: trylock %s", name(r));
  printf(", again %s\n", name(pthread_mutex_trylock(&pim)));
  printf("PI: unlock %s\n", name(pthread_mutex_unlock(&pim)));
  pthread_create(&t[0], NULL, pi_sleeper, NULL);
  sem_wait(&locked);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 50000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  r = pthread_mutex_timedlock(&pim, &ts);
  printf("PI: timedlock while held: %s\n", r == ETIMEDOUT ? "ETIMEDOUT" : name(r));
  printf("PI: lock, waiting for the unlock: %s\n", name(pthread_mutex_lock(&pim)));
  printf("PI: unlock %s\n", name(pthread_mutex_unlock(&pim)));
  pthread_join(t[0], NULL);
  pthread_mutex_destroy(&pim);

  pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&pim, &at);
  struct hold h = {&pim, 50};
  pthread_create(&t[0], NULL, holder, &h);
  sem_wait(&locked);
  printf("PI robust: lock while the holder ends: %s\n", name(pthread_mutex_lock(&pim)));
  printf("PI robust: consistent %s", name(pthread_mutex_consistent(&pim)));
  printf(", unlock %s\n", name(pthread_mutex_unlock(&pim)));
  pthread_join(t[0], NULL);
  h.wait_ms = 0;
  pthread_create(&t[0], NULL, holder, &h);
  sem_wait(&locked);
  pthread_join(t[0], NULL);
  printf("PI robust: lock after the holder ended: %s\n", name(pthread_mutex_lock(&pim)));
  printf("PI robust: consistent %s", name(pthread_mutex_consistent(&pim)));
  printf(", unlock %s\n", name(pthread_mutex_unlock(&pim)));
  printf("PI robust: lock again %s", name(pthread_mutex_lock(&pim)));
  printf(", unlock %s\n", name(pthread_mutex_unlock(&pim)));
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1) return 5; /* the program execve'd by child_case */
  pthread_mutexattr_t at;
  pthread_mutexattr_init(&at);
  pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m, &at);
  sem_init(&locked, 0, 0);

  /* The locker waits while the holder ends. */
  pthread_t t;
  struct hold h = {&m, 50};
  pthread_create(&t, NULL, holder, &h);
  sem_wait(&locked);
  int r = pthread_mutex_lock(&m);
  printf("lock while the holder ends: %s\n", name(r));
  printf("consistent: %s\n", name(pthread_mutex_consistent(&m)));
  printf("unlock: %s\n", name(pthread_mutex_unlock(&m)));
  printf("lock again: %s\n", name(pthread_mutex_lock(&m)));
  printf("unlock: %s\n", name(pthread_mutex_unlock(&m)));
  pthread_join(t, NULL);

  /* The locker comes after the holder ended; then without consistent, the mutex is lost. */
  h.wait_ms = 0;
  pthread_create(&t, NULL, holder, &h);
  sem_wait(&locked);
  pthread_join(t, NULL);
  printf("trylock after the holder ended: %s\n", name(pthread_mutex_trylock(&m)));
  printf("unlock without consistent: %s\n", name(pthread_mutex_unlock(&m)));
  printf("lock: %s\n", name(pthread_mutex_lock(&m)));

  /* set_robust_list / get_robust_list. */
  struct rlist_head *head = NULL;
  size_t len = 0;
  long g = syscall(SYS_get_robust_list, 0, &head, &len);
  printf("get_robust_list: %ld len %zu head set %d\n", g, len, head != NULL);
  printf("set_robust_list len 23: %s\n", syscall(SYS_set_robust_list, head, 23) == 0 ? "0" : errno == EINVAL ? "EINVAL" : "other");
  printf("get_robust_list bad pointer: %s\n", syscall(SYS_get_robust_list, 0, (void *)8, &len) == 0 ? "0" : errno == EFAULT ? "EFAULT" : "other");
  printf("get_robust_list no such thread: %s\n", syscall(SYS_get_robust_list, 999999, &head, &len) == 0 ? "0" : errno == ESRCH ? "ESRCH" : "other");

  pi_cases();
  own_list_case(1);
  own_list_case(0);

  pthread_mutex_init(&held, &at);
  child_case("exit", argv[0]);
  child_case("execve", argv[0]);
  return 0;
}
