/* The vDSO (kernel/vdso.c on the cpl0-entry path): whether the program has one (AT_SYSINFO_EHDR),
 * that its clocks agree with the system calls' (the host's clocks), and that CLOCK_MONOTONIC never
 * goes back, within a thread or between two threads on different vCPUs. Prints "vdso" and
 * "agree" lines and "monotonic: ok" or the first violation; the test counts the system calls the
 * reads made (none reach the host where the vDSO answers). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define READS 200000

static long ns(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }
static _Atomic long latest;
static _Atomic int bad;

/* arg: NULL, READS reads; else "long": reads for 3 s, with a system call now and then (the host
 * re-anchors the clocks about once a second, at an exit). */
static void *reader(void *arg) {
  long last = 0, end = 0;
  if (arg) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    end = ns(t) + 3000000000L;
  }
  for (long i = 0; arg ? last < end : i < READS; i++) {
    if (arg && i % 20000 == 0) syscall(SYS_getppid);
    long seen = atomic_load(&latest);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long now = ns(t);
    if (now < last || now < seen) {
      if (!atomic_exchange(&bad, 1)) printf("monotonic: went back by %ld ns\n", now < last ? last - now : seen - now);
    }
    last = now;
    long cur = atomic_load(&latest);
    while (cur < now && !atomic_compare_exchange_weak(&latest, &cur, now)) {}
  }
  return NULL;
}

static long diff_ms(clockid_t c) {
  struct timespec a, b;
  clock_gettime(c, &a);
  syscall(SYS_clock_gettime, c, &b);
  return labs(ns(b) - ns(a)) / 1000000;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "long")) {
    pthread_t a, b;
    pthread_create(&a, NULL, reader, "long");
    pthread_create(&b, NULL, reader, "long");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    if (!bad) printf("monotonic: ok\n");
    long mono = diff_ms(CLOCK_MONOTONIC), real = diff_ms(CLOCK_REALTIME);
    printf("agree after re-anchoring: %s\n", mono < 50 && real < 50 ? "yes" : "no");
    if (mono >= 50 || real >= 50) fprintf(stderr, "differences: %ld %ld ms\n", mono, real);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "maps")) {
    /* /proc/self/maps names the vDSO's pages [vdso], at AT_SYSINFO_EHDR, read+execute, and its
       data page [vvar], read-only. */
    unsigned long ehdr = getauxval(AT_SYSINFO_EHDR), lo, hi;
    char line[512], rights[8];
    int vdso = 0, vvar = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f)) {
      if (sscanf(line, "%lx-%lx %7s", &lo, &hi, rights) != 3) continue;
      if (strstr(line, "[vdso]")) vdso = lo == ehdr && !strcmp(rights, "r-xp");
      if (strstr(line, "[vvar]")) vvar = !strcmp(rights, "r--p");
    }
    printf("maps: [vdso] at AT_SYSINFO_EHDR %s, [vvar] %s\n", vdso ? "yes" : "no", vvar ? "yes" : "no");
    /* System calls may read the vDSO's pages (write from them), never write them (read into them). */
    int p[2], z = open("/dev/zero", O_RDONLY);
    char got[4] = {0};
    if (pipe(p) || z < 0) return 1;
    long w = write(p[1], (void *)ehdr, 4), r = read(p[0], got, 4);
    errno = 0;
    long into = read(z, (void *)ehdr, 4);
    printf("write from the vDSO: %ld %ld %s; read into it: %ld %s\n", w, r, memcmp(got, "\177ELF", 4) ? "not ELF" : "ELF", into, strerror(errno));
    return 0;
  }
  printf("vdso: %s\n", getauxval(AT_SYSINFO_EHDR) ? "yes" : "no");
  long mono = diff_ms(CLOCK_MONOTONIC), real = diff_ms(CLOCK_REALTIME);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct timespec r;
  syscall(SYS_clock_gettime, CLOCK_REALTIME, &r);
  long gtod = labs(tv.tv_sec * 1000L + tv.tv_usec / 1000 - ns(r) / 1000000);
  long t = labs((long)time(NULL) - (long)r.tv_sec);
  /* 50 ms: the emulated lane's exits take about a millisecond each. */
  printf("agree: monotonic %s, realtime %s, gettimeofday %s, time %s\n", mono < 50 ? "yes" : "no", real < 50 ? "yes" : "no",
         gtod < 50 ? "yes" : "no", t <= 1 ? "yes" : "no");
  if (mono >= 50 || real >= 50 || gtod >= 50) fprintf(stderr, "differences: %ld %ld %ld ms\n", mono, real, gtod);
  pthread_t a, b;
  pthread_create(&a, NULL, reader, NULL);
  pthread_create(&b, NULL, reader, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  if (!bad) printf("monotonic: ok\n");
  return 0;
}
