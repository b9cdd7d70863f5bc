/* Signal handlers that run: raise with SA_SIGINFO, sigaltstack, registers kept across a handler,
 * a blocked signal delivered on unblock, SIGSEGV and SIGFPE from faults recovered with
 * siglongjmp, alarm + pause, setitimer, SA_RESETHAND, and abort() caught by a handler that
 * returns. Prints one line per check; test/signals.test.ts compares them with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <time.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static volatile int got_signo, got_code, got_pid_ok;
static volatile uintptr_t handler_sp;
static sigjmp_buf jump;
static volatile uintptr_t fault_addr;
static volatile int fault_code;

static void on_info(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  got_signo = si->si_signo;
  got_code = si->si_code;
  got_pid_ok = si->si_pid == getpid();
  hits++;
  (void)sig;
}

static void on_alt(int sig) {
  char here;
  handler_sp = (uintptr_t)&here;
  hits++;
  (void)sig;
}

static void on_count(int sig) { hits++; (void)sig; }

static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  fault_addr = (uintptr_t)si->si_addr;
  fault_code = si->si_code;
  siglongjmp(jump, sig);
}

static void install(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void install_info(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = fn;
  sa.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* Registers held across a raise(): callee-saved ones in asm, checked after the handler ran. */
static int registers_kept(void) {
  long v[10] = {0x1212121212, 0x1313131313, 0x1414141414, 0x1515151515, 0x0b0b0b0b};
  long pid = getpid();
  __asm__ volatile(
      "mov 0(%0), %%r12\n mov 8(%0), %%r13\n mov 16(%0), %%r14\n mov 24(%0), %%r15\n mov 32(%0), %%rbx\n"
      "mov $62, %%eax\n" /* SYS_kill(getpid(), SIGUSR2) */
      "mov %1, %%rdi\n mov $12, %%esi\n syscall\n"
      "mov %%r12, 40(%0)\n mov %%r13, 48(%0)\n mov %%r14, 56(%0)\n mov %%r15, 64(%0)\n mov %%rbx, 72(%0)\n"
      :
      : "r"(v), "r"(pid)
      : "rax", "rcx", "r11", "rdi", "rsi", "r12", "r13", "r14", "r15", "rbx", "memory");
  for (int i = 0; i < 5; i++)
    if (v[i] != v[i + 5]) return 0;
  return 1;
}

static volatile double fp_value = 1.5;

static char jump_stack[16384] __attribute__((aligned(16)));

/* Reached from the forged frame: if the IOPL bits had been restored, `out` would work. */
static void after_forged_return(void) {
  __asm__ volatile("outb %%al, $0x80" ::"a"(0));
  printf("iopl honoured\n");
  exit(0);
}

/* rt_sigreturn with no handler behind it and a frame the program forged: IOPL 3 and NT in the
 * flags, the kernel's code selector. The flags and selectors must not survive (Linux: SIGSEGV at
 * the `out`). */
static void forged_sigreturn(void) {
  static unsigned long uc[48] __attribute__((aligned(16)));
  memset(uc, 0, sizeof uc);
  unsigned long *mc = uc + 5;
  mc[15] = (unsigned long)(jump_stack + sizeof jump_stack - 8); /* rsp */
  mc[16] = (unsigned long)after_forged_return;                   /* rip */
  mc[17] = 0x3000 | 0x4000 | 0x202;                              /* eflags */
  mc[18] = 0x10 | (0x18ul << 48);                                /* cs, gs, fs, ss */
  printf("forging\n");
  __asm__ volatile("mov %0, %%rsp\n mov $15, %%eax\n syscall" ::"r"(uc) : "memory");
}

/* SIGALRM while spinning in user mode with live rcx and r11 (no system call to deliver at):
 * the interrupted context must come back whole. */
static int spin_kept(void) {
  long c, e;
  __asm__ volatile("mov $0x11111111, %%rcx\n mov $0x22222222, %%r11\n1: cmpl $3, %2\n jl 1b\n mov %%rcx, %0\n mov %%r11, %1"
                   : "=r"(c), "=r"(e) : "m"(hits) : "rcx", "r11", "cc");
  return c == 0x11111111 && e == 0x22222222;
}

static void spin(void) {
  install(SIGALRM, on_count, 0);
  struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 20000}};
  hits = 0;
  setitimer(ITIMER_REAL, &it, NULL);
  int kept = spin_kept();
  struct itimerval off = {0};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("spin: kept=%d hits>=3 %d\n", kept, hits >= 3);
  /* nanosleep ended early by a handler: EINTR. */
  install(SIGALRM, on_count, 0);
  alarm(1);
  struct timespec ts = {5, 0};
  int r = nanosleep(&ts, &ts);
  printf("nanosleep: r=%d eintr=%d left_ok=%d\n", r, r == -1 && errno == EINTR, ts.tv_sec >= 2 && ts.tv_sec <= 4);
  exit(0);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && strcmp(argv[1], "forged") == 0) forged_sigreturn();
  if (argc > 1 && strcmp(argv[1], "spin") == 0) spin();
  if (argc > 2 && strcmp(argv[1], "loop") == 0) {
    /* For measurements: N raise()s, each running a handler and returning through rt_sigreturn. */
    install(SIGUSR1, argc > 3 ? SIG_IGN : on_count, 0);
    long n = atol(argv[2]);
    hits = 0;
    for (long i = 0; i < n; i++) raise(SIGUSR1);
    printf("loop: hits=%d\n", hits);
    exit(0);
  }
  if (argc > 1 && strcmp(argv[1], "sigpipe") == 0) {
    /* SIGPIPE's default action ends the program (141). */
    int fds[2];
    pipe(fds);
    close(fds[0]);
    printf("writing\n");
    write(fds[1], "x", 1);
    printf("not reached\n");
  }
  if (argc > 1 && strcmp(argv[1], "blocked-segv") == 0) {
    /* A fault signal that is blocked kills, handler or not. */
    install_info(SIGSEGV, on_fault, 0);
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_BLOCK, &segv, NULL);
    printf("faulting\n");
    *(volatile int *)(uintptr_t)(hits + 16) = 1;
    printf("not reached\n");
  }

  install_info(SIGUSR1, on_info, 0);
  hits = 0;
  raise(SIGUSR1);
  printf("raise: hits=%d signo=%d code=%d pid_ok=%d\n", hits, got_signo, got_code, got_pid_ok);
  kill(getpid(), SIGUSR1);
  printf("kill: hits=%d signo=%d code=%d pid_ok=%d\n", hits, got_signo, got_code, got_pid_ok);

  /* SIGKILL's and SIGSTOP's actions can be read (valgrind reads every signal's), never set. */
  struct sigaction query, set_kill;
  memset(&set_kill, 0, sizeof set_kill);
  set_kill.sa_handler = on_count;
  int read_kill = sigaction(SIGKILL, NULL, &query);
  int kill_dfl = query.sa_handler == SIG_DFL;
  int read_stop = sigaction(SIGSTOP, NULL, &query);
  int set_rc = sigaction(SIGKILL, &set_kill, NULL);
  printf("sigaction: read SIGKILL=%d dfl=%d read SIGSTOP=%d set SIGKILL=%d errno=%d\n", read_kill, kill_dfl, read_stop, set_rc, errno);

  static char alt[65536];
  stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
  printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
  install(SIGUSR2, on_alt, SA_ONSTACK);
  hits = 0;
  raise(SIGUSR2);
  printf("altstack: hits=%d on_alt=%d\n", hits, handler_sp > (uintptr_t)alt && handler_sp <= (uintptr_t)alt + sizeof alt);
  stack_t old;
  sigaltstack(NULL, &old);
  printf("altstack after: flags=%d size_ok=%d\n", old.ss_flags, old.ss_size == sizeof alt);

  install(SIGUSR2, on_count, 0);
  hits = 0;
  double before = fp_value * 2;
  int kept = registers_kept();
  printf("registers: kept=%d hits=%d fp=%d\n", kept, hits, before == fp_value * 2);

  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigprocmask(SIG_BLOCK, &set, NULL);
  hits = 0;
  raise(SIGUSR2);
  sigpending(&pending);
  printf("blocked: hits=%d pending=%d\n", hits, sigismember(&pending, SIGUSR2));
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  printf("unblocked: hits=%d\n", hits);

  install_info(SIGSEGV, on_fault, 0);
  int sig = sigsetjmp(jump, 1);
  if (sig == 0) {
    *(volatile int *)0 = 1;
    printf("segv: not reached\n");
  } else {
    printf("segv: caught=%d addr=%lu code=%d\n", sig, (unsigned long)fault_addr, fault_code);
  }
  /* The mask was restored by siglongjmp: a second fault is caught too. */
  sig = sigsetjmp(jump, 1);
  if (sig == 0) *(volatile int *)(uintptr_t)(hits + 8) = 1;
  else printf("segv again: caught=%d addr=%lu\n", sig, (unsigned long)fault_addr);

  install_info(SIGFPE, on_fault, 0);
  sig = sigsetjmp(jump, 1);
  if (sig == 0) {
    volatile int zero = 0;
    volatile int x = 7 / zero;
    (void)x;
    printf("fpe: not reached\n");
  } else {
    printf("fpe: caught=%d code=%d\n", sig, fault_code);
  }

  install(SIGALRM, on_count, 0);
  hits = 0;
  alarm(1);
  int r = pause();
  printf("alarm: hits=%d pause=%d\n", hits, r);

  struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 20000}};
  hits = 0;
  setitimer(ITIMER_REAL, &it, NULL);
  while (hits < 3) pause();
  struct itimerval off = {0};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("setitimer: hits>=3 %d\n", hits >= 3);

  install(SIGUSR1, on_count, SA_RESETHAND);
  hits = 0;
  raise(SIGUSR1);
  struct sigaction now;
  sigaction(SIGUSR1, NULL, &now);
  printf("resethand: hits=%d reset=%d\n", hits, now.sa_handler == SIG_DFL);

  /* A pending signal whose action becomes SIG_IGN is discarded. */
  sigprocmask(SIG_BLOCK, &set, NULL);
  raise(SIGUSR2);
  install(SIGUSR2, SIG_IGN, 0);
  install(SIGUSR2, on_count, 0);
  hits = 0;
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  sigpending(&pending);
  printf("ignored while pending: hits=%d pending=%d\n", hits, sigismember(&pending, SIGUSR2));

  /* A write to a pipe with no reader: EPIPE, and SIGPIPE to its handler. */
  int fds[2];
  pipe(fds);
  close(fds[0]);
  install(SIGPIPE, SIG_IGN, 0);
  errno = 0;
  long w = write(fds[1], "x", 1);
  printf("sigpipe ignored: w=%ld epipe=%d\n", w, errno == EPIPE);
  install(SIGPIPE, on_count, 0);
  hits = 0;
  errno = 0;
  w = write(fds[1], "x", 1);
  printf("sigpipe handled: w=%ld epipe=%d hits=%d\n", w, errno == EPIPE, hits);
  close(fds[1]);

  install(SIGCHLD, SIG_DFL, 0);
  raise(SIGCHLD);
  printf("sigchld default: ignored\n");

  install(SIGABRT, on_count, 0);
  hits = 0;
  printf("abort next\n");
  abort();
}
