/* Threads that must run at the same time, and what one thread's munmap/mprotect does to another.
 *   rendezvous [N]: two threads each set a flag and spin, with no system call, until they see
 *               the other's; then each reports the CPU it runs on (getcpu). On one CPU with no
 *               timer this never ends; on two they meet, on two different CPUs (tried up to N
 *               times, default 1, until they do).
 *   shootdown:  a thread keeps reading a page; another unmaps it (then write-protects another
 *               page the first keeps writing) and says so; the first's next access must fault,
 *               however recently its CPU translated the address.
 *   sum N [M]:  a CPU-bound sum of M terms (default 20 million) split over N threads. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_int flags[2];
static int cpu_of[2];

static int getcpu_now(void) {
  unsigned cpu = 0;
  if (syscall(SYS_getcpu, &cpu, NULL, NULL) != 0) return -1;
  return (int)cpu;
}

static void *meet(void *arg) {
  int me = (int)(long)arg;
  atomic_store(&flags[me], 1);
  while (!atomic_load(&flags[1 - me])) { /* spin in user mode: no system call */ }
  cpu_of[me] = getcpu_now();
  /* Stay until the other has read its CPU too, so both are on a CPU at once. */
  atomic_fetch_add(&flags[me], 1);
  while (atomic_load(&flags[1 - me]) < 2) { }
  return NULL;
}

/* Up to `tries` meetings, until one has the two threads on different CPUs: where a scheduler
 * may also time-slice spinning threads (kvmbox's run loop does, so that they meet on one vCPU),
 * a meeting can end on one CPU now and then although two run in parallel. */
static int rendezvous(int tries) {
  for (int i = 0; i < tries; i++) {
    pthread_t a, b;
    atomic_store(&flags[0], 0);
    atomic_store(&flags[1], 0);
    pthread_create(&a, NULL, meet, (void *)0L);
    pthread_create(&b, NULL, meet, (void *)1L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    if (cpu_of[0] != cpu_of[1]) break;
  }
  printf("rendezvous ok\n");
  fprintf(stderr, "cpus %d %d\n", cpu_of[0], cpu_of[1]);
  return 0;
}

static volatile char *page_r, *page_w;
static atomic_int phase;
static sigjmp_buf jb;
static volatile int faults;

static void on_segv(int sig) {
  (void)sig;
  faults++;
  siglongjmp(jb, 1);
}

static void *toucher(void *arg) {
  (void)arg;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, NULL);
  volatile char sink = 0;
  /* Read the page over and over, so its translation stays cached on this CPU, until told it is
   * gone; then once more. A read from the moment munmap returned must fault. */
  int before = faults;
  if (sigsetjmp(jb, 1) == 0) {
    atomic_store(&phase, 1);
    while (atomic_load(&phase) == 1) sink += page_r[0];
    sink += page_r[0];
  }
  printf("read after munmap faulted: %d\n", faults - before);
  /* The read may fault between munmap's return and the main thread's "done": wait for that
   * before going on, or phase 3 would be overwritten by 2 (and the main thread would wait for
   * it for ever, while this thread wrote on before the mprotect). */
  while (atomic_load(&phase) != 2) { }
  before = faults;
  if (sigsetjmp(jb, 1) == 0) {
    atomic_store(&phase, 3);
    while (atomic_load(&phase) == 3) page_w[0]++;
    page_w[0] = 1;
  }
  printf("write after mprotect faulted: %d\n", faults - before);
  (void)sink;
  return NULL;
}

static int shootdown(void) {
  page_r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  page_w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page_r == MAP_FAILED || page_w == MAP_FAILED) return 1;
  page_r[0] = 1;
  pthread_t t;
  pthread_create(&t, NULL, toucher, NULL);
  while (atomic_load(&phase) != 1) { }
  for (volatile int i = 0; i < 1000000; i++) { } /* let it read a while */
  munmap((void *)page_r, 4096);
  atomic_store(&phase, 2);
  while (atomic_load(&phase) != 3) { }
  for (volatile int i = 0; i < 1000000; i++) { }
  mprotect((void *)page_w, 4096, PROT_READ);
  atomic_store(&phase, 4);
  pthread_join(t, NULL);
  return 0;
}

struct part { unsigned long lo, hi, sum; };

static void *sum_part(void *arg) {
  struct part *p = arg;
  unsigned long s = 0;
  for (unsigned long i = p->lo; i < p->hi; i++) s += (i * i) % 7;
  p->sum = s;
  return NULL;
}

static int sum(int n, unsigned long total) {
  if (n < 1 || n > 16) return 2;
  struct part parts[16];
  pthread_t th[16];
  for (int i = 0; i < n; i++) {
    parts[i].lo = total * i / n;
    parts[i].hi = total * (i + 1) / n;
    pthread_create(&th[i], NULL, sum_part, &parts[i]);
  }
  unsigned long s = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(th[i], NULL);
    s += parts[i].sum;
  }
  printf("sum %lu\n", s);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && !strcmp(argv[1], "rendezvous")) return rendezvous(argc > 2 ? atoi(argv[2]) : 1);
  if (argc > 1 && !strcmp(argv[1], "shootdown")) return shootdown();
  if (argc > 2 && !strcmp(argv[1], "sum")) return sum(atoi(argv[2]), argc > 3 ? strtoul(argv[3], NULL, 10) : 20000000);
  fprintf(stderr, "usage: parallel rendezvous|shootdown|sum N\n");
  return 2;
}
