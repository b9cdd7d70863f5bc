/* Thread benchmarks (issue 16), one mode per run:
 *   spin THREADS UNITS   UNITS units of CPU work split over THREADS threads (speed-up: compare
 *                        the 1- and 2-thread runs)
 *   pingpong N           two threads hand a token back and forth N times through a mutex and a
 *                        condition variable (round trips)
 *   wake N               one thread wakes another through a futex N times, each waiting for the
 *                        other's acknowledgement (futex wake latency, round trip)
 * Prints one deterministic line, so that runs can be checked. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long units_each;
static void *spin(void *arg) {
  volatile unsigned long x = (unsigned long)(size_t)arg + 1;
  for (long u = 0; u < units_each; u++)
    for (int i = 0; i < 1000000; i++) x = x * 6364136223846793005ul + 1442695040888963407ul;
  return (void *)(size_t)(x & 1);
}

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long turn, rounds;
static void *player(void *arg) {
  long me = (long)arg;
  for (long i = 0; i < rounds; i++) {
    pthread_mutex_lock(&m);
    while (turn != me) pthread_cond_wait(&c, &m);
    turn = 1 - me;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&m);
  }
  return NULL;
}

static atomic_int word;
static long wakes;
static void fwait(atomic_int *w, int v) { syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0); }
static void fwake(atomic_int *w) { syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }
/* Round i: main asks with 2i+1, the waker answers with 2i+2; each waits for the other's value,
 * so neither can overwrite a value the other has not seen. */
static void *waker(void *arg) {
  (void)arg;
  for (long i = 0; i < wakes; i++) {
    int v;
    while ((v = atomic_load(&word)) != 2 * (int)i + 1) fwait(&word, v);
    atomic_store(&word, 2 * (int)i + 2);
    fwake(&word);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: threadbench spin THREADS UNITS | pingpong N | wake N\n"); return 2; }
  if (!strcmp(argv[1], "spin") && argc >= 4) {
    int n = atoi(argv[2]);
    long units = atol(argv[3]);
    if (n < 1 || n > 64) return 2;
    units_each = units / n;
    pthread_t t[64];
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, spin, (void *)(size_t)i);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    printf("spin threads=%d units=%ld\n", n, units_each * n);
    return 0;
  }
  if (!strcmp(argv[1], "pingpong")) {
    rounds = atol(argv[2]);
    pthread_t a, b;
    pthread_create(&a, NULL, player, (void *)0);
    pthread_create(&b, NULL, player, (void *)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("pingpong rounds=%ld\n", rounds);
    return 0;
  }
  if (!strcmp(argv[1], "wake")) {
    wakes = atol(argv[2]);
    pthread_t w;
    pthread_create(&w, NULL, waker, NULL);
    for (long i = 0; i < wakes; i++) {
      atomic_store(&word, 2 * (int)i + 1);
      fwake(&word);
      int v;
      while ((v = atomic_load(&word)) != 2 * (int)i + 2) fwait(&word, v);
    }
    pthread_join(w, NULL);
    printf("wake rounds=%ld\n", wakes);
    return 0;
  }
  return 2;
}
