/* seccomp: filters checked as Linux checks them, and each action as Linux takes it: ERRNO (its
 * data capped at 4095), TRAP (SIGSYS with the call's siginfo, forced through a blocked signal),
 * KILL_PROCESS, KILL_THREAD (one thread of several), LOG and ALLOW; the precedence of actions
 * and, among equal ones, the newest filter; filters over the arguments and with the ALU,
 * scratch memory and jumps; inheritance by fork, threads (and TSYNC) and execve; strict mode;
 * SECCOMP_GET_ACTION_AVAIL, SECCOMP_GET_NOTIF_SIZES and /proc/self/status. Each case runs in a
 * child of its own, as filters are for good. "priv:" lines depend on who runs the program (root
 * may install a filter without no_new_privs; a container may start with filters and
 * no_new_privs). argv[1]: this program's path (for the execve); argv[2] "exec-check": the
 * child after its execve. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* <linux/filter.h> and <linux/seccomp.h>, which musl-gcc does not see. */
struct sock_filter { unsigned short code; unsigned char jt, jf; unsigned int k; };
struct sock_fprog { unsigned short len; struct sock_filter *filter; };
struct seccomp_data { int nr; unsigned int arch; unsigned long long instruction_pointer, args[6]; };
struct seccomp_notif_sizes { unsigned short seccomp_notif, seccomp_notif_resp, seccomp_data; };
#define BPF_STMT(code, k) {(unsigned short)(code), 0, 0, k}
#define BPF_JUMP(code, k, jt, jf) {(unsigned short)(code), jt, jf, k}
#define BPF_LD 0x00
#define BPF_LDX 0x01
#define BPF_ST 0x02
#define BPF_ALU 0x04
#define BPF_JMP 0x05
#define BPF_RET 0x06
#define BPF_MISC 0x07
#define BPF_W 0x00
#define BPF_IMM 0x00
#define BPF_ABS 0x20
#define BPF_IND 0x40
#define BPF_MEM 0x60
#define BPF_ADD 0x00
#define BPF_SUB 0x10
#define BPF_MUL 0x20
#define BPF_DIV 0x30
#define BPF_OR 0x40
#define BPF_AND 0x50
#define BPF_LSH 0x60
#define BPF_MOD 0x90
#define BPF_JA 0x00
#define BPF_JEQ 0x10
#define BPF_JGE 0x30
#define BPF_JSET 0x40
#define BPF_K 0x00
#define BPF_X 0x08
#define BPF_A 0x10
#define BPF_TAX 0x00
#define SECCOMP_MODE_STRICT 1
#define SECCOMP_SET_MODE_STRICT 0
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_GET_ACTION_AVAIL 2
#define SECCOMP_GET_NOTIF_SIZES 3
#define SECCOMP_FILTER_FLAG_TSYNC 1
#define SECCOMP_RET_KILL_PROCESS 0x80000000u
#define SECCOMP_RET_KILL_THREAD 0x00000000u
#define SECCOMP_RET_TRAP 0x00030000u
#define SECCOMP_RET_ERRNO 0x00050000u
#define SECCOMP_RET_LOG 0x7ffc0000u
#define SECCOMP_RET_ALLOW 0x7fff0000u
#ifndef PR_GET_SECCOMP
#define PR_GET_SECCOMP 21
#define PR_SET_SECCOMP 22
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#define PR_GET_NO_NEW_PRIVS 39
#endif

#define NR offsetof(struct seccomp_data, nr)
#define ARCH offsetof(struct seccomp_data, arch)
#define ARG0 offsetof(struct seccomp_data, args[0])
#define LOAD(k) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, k)
#define IS(nr, then) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1), BPF_STMT(BPF_RET | BPF_K, then)
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static const char *name(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case EACCES: return "EACCES"; case EFAULT: return "EFAULT"; case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS"; case EOPNOTSUPP: return "EOPNOTSUPP"; case ENOMEM: return "ENOMEM";
    default: { static char b[16]; snprintf(b, sizeof b, "errno %d", e); return b; }
  }
}

static void show(const char *what, long r) {
  if (r < 0) printf("%s: %s\n", what, name(errno));
  else printf("%s: %ld\n", what, r);
  fflush(stdout);
}

static long install(struct sock_filter *f, unsigned short n, unsigned flags) {
  struct sock_fprog prog = {n, f};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* Run fn in a child; print how the child ended. */
static void in_child(const char *what, void (*fn)(void)) {
  pid_t c = fork();
  if (c == 0) {
    fn();
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  if (WIFSIGNALED(st)) printf("%s: killed by signal %d\n", what, WTERMSIG(st));
  else printf("%s: exit %d\n", what, WEXITSTATUS(st));
  fflush(stdout);
}

static const char *self;
/* Filters the program started with (a container's). */
static long base_filters;

/* A number from /proc/self/status. */
static long status_field(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f)) if (!strncmp(line, field, n) && line[n] == ':') v = atol(line + n + 1);
  if (f) fclose(f);
  return v;
}

static void status_lines(void) {
  printf("  NoNewPrivs %ld Seccomp %ld filters %ld more\n", status_field("NoNewPrivs"), status_field("Seccomp"),
         status_field("Seccomp_filters") - base_filters);
}

/* getppid -> EACCES, uname -> 0 without a call, getpgid -> errno capped at 4095. */
static void errno_case(void) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  struct sock_filter f[] = {
    LOAD(ARCH), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xc000003e, 1, 0), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    LOAD(NR), IS(SYS_getppid, SECCOMP_RET_ERRNO | EACCES), IS(SYS_uname, SECCOMP_RET_ERRNO | 0),
    IS(SYS_getpgid, SECCOMP_RET_ERRNO | 0xffff), IS(SYS_getpriority, SECCOMP_RET_LOG), ALLOW,
  };
  show("install", install(f, sizeof f / sizeof f[0], 0));
  show("getppid", syscall(SYS_getppid));
  char buf[512];
  memset(buf, 'x', sizeof buf);
  show("uname", syscall(SYS_uname, buf));
  printf("  untouched: %s\n", buf[0] == 'x' ? "yes" : "no");
  long r = syscall(SYS_getpgid, 0);
  printf("getpgid: %ld errno %d\n", r, errno);
  show("getpriority (logged)", syscall(SYS_getpriority, 0, 0) >= 0 ? 0 : -1);
  show("PR_GET_SECCOMP", prctl(PR_GET_SECCOMP));
  status_lines();
  /* inherited by fork and kept across execve */
  pid_t c = fork();
  if (c == 0) {
    show("child getppid", syscall(SYS_getppid));
    execl(self, "seccomp", self, "exec-check", (char *)NULL);
    _exit(9);
  }
  int st;
  waitpid(c, &st, 0);
  printf("exec child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  printf("  SIGSYS %d: code %d errno %d syscall %d arch %x addr %s\n", sig, si->si_code, si->si_errno, si->si_syscall,
         si->si_arch, si->si_call_addr ? "set" : "null");
}

static void trap_case(void) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSYS, &sa, NULL);
  struct sock_filter f[] = {LOAD(NR), IS(SYS_getpgid, SECCOMP_RET_TRAP | 42), ALLOW};
  show("install", install(f, sizeof f / sizeof f[0], 0));
  show("getpgid (trapped)", syscall(SYS_getpgid, 0));
  /* Blocked, SIGSYS is forced: the default action ends the process. */
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGSYS);
  sigprocmask(SIG_BLOCK, &s, NULL);
  syscall(SYS_getpgid, 0);
  printf("  not reached\n");
}

static void kill_case(void) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  struct sock_filter f[] = {LOAD(NR), IS(SYS_getpgid, SECCOMP_RET_KILL_PROCESS), ALLOW};
  install(f, sizeof f / sizeof f[0], 0);
  syscall(SYS_getpgid, 0);
  printf("  not reached\n");
}

static void *doomed(void *arg) {
  (void)arg;
  syscall(SYS_getpgid, 0);
  printf("  not reached\n");
  return NULL;
}

static void kill_thread_case(void) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  struct sock_filter f[] = {LOAD(NR), IS(SYS_getpgid, SECCOMP_RET_KILL_THREAD), ALLOW};
  install(f, sizeof f / sizeof f[0], 0);
  pthread_t th;
  pthread_create(&th, NULL, doomed, NULL);
  /* Not pthread_join: musl's waits for the thread's own exit path, which a killed thread never takes. */
  for (int i = 0; i < 5000 && status_field("Threads") > 1; i++) usleep(1000);
  printf("  threads left: %ld; the process goes on\n", status_field("Threads"));
}

/* Arguments, the ALU, scratch memory, and the newest of equal actions. */
static void args_case(void) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  struct sock_filter older[] = {LOAD(NR), IS(SYS_getpgid, SECCOMP_RET_ERRNO | 1), IS(SYS_getsid, SECCOMP_RET_ERRNO | 1), ALLOW};
  show("older", install(older, 6, 0));
  struct sock_filter f[] = {
    LOAD(NR),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 15),
    LOAD(ARG0),                                              /* A = pid argument (low word) */
    BPF_STMT(BPF_ST, 3),                                     /* M[3] = A */
    BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 3),                  /* A = 3a */
    BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 7),                  /* A = 3a + 7 */
    BPF_STMT(BPF_MISC | BPF_TAX, 0),                         /* X = A */
    BPF_STMT(BPF_LD | BPF_MEM, 3),                           /* A = a */
    BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 4),                  /* A = 16a */
    BPF_STMT(BPF_ALU | BPF_SUB | BPF_X, 0),                  /* A = 16a - (3a + 7) = 13a - 7 */
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff),
    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 2, 0),        /* high bit: allow */
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 100, 1, 0),          /* >= 100: allow */
    BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
    ALLOW,
    BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
    BPF_STMT(BPF_RET | BPF_A, 0),
    IS(SYS_getsid, SECCOMP_RET_ERRNO | 2),                   /* newer, equal action: its data wins */
    ALLOW,
  };
  show("newer", install(f, sizeof f / sizeof f[0], 0));
  for (int a = 1; a <= 12; a++) {
    errno = 0;
    long r = syscall(SYS_getpgid, a);
    printf("  getpgid(%d): %s\n", a, r < 0 ? name(errno) : "allowed");
  }
  show("getsid", syscall(SYS_getsid, 0));
  struct sock_filter trap[] = {LOAD(NR), IS(SYS_getsid, SECCOMP_RET_TRAP), ALLOW};
  show("a trap over the errnos", install(trap, 4, 0));
  signal(SIGSYS, SIG_IGN);  /* ignored, a forced SIGSYS still kills */
  syscall(SYS_getsid, 0);
  printf("  not reached\n");
}

/* Division by a zero X ends with 0: SECCOMP_RET_KILL_THREAD, the only thread. */
static void divide_case(void) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  struct sock_filter f[] = {
    LOAD(NR), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 3),
    BPF_STMT(BPF_LDX | BPF_IMM, 0), BPF_STMT(BPF_ALU | BPF_DIV | BPF_X, 0), BPF_STMT(BPF_RET | BPF_A, 0), ALLOW,
  };
  install(f, sizeof f / sizeof f[0], 0);
  syscall(SYS_getpgid, 0);
  printf("  not reached\n");
}

/* Output through write alone: musl's stdio writes with writev, which strict mode kills. */
static void strict_case(void) {
  long r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
  char b[32];
  int n = snprintf(b, sizeof b, "strict: %ld\n", r);
  syscall(SYS_write, 1, b, n);
  const char msg[] = "  write still works\n";
  syscall(SYS_write, 1, msg, sizeof msg - 1);
  syscall(SYS_getpid);
  syscall(SYS_write, 1, "  not reached\n", 14);
}

static int go[2];

static void *waiter(void *arg) {
  (void)arg;
  char c;
  if (read(go[0], &c, 1) != 1) return NULL;
  errno = 0;
  long r = syscall(SYS_getpgid, 0);
  printf("  other thread's getpgid: %s\n", r < 0 ? name(errno) : "allowed");
  return NULL;
}

static void tsync_case(void) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (pipe(go)) return;
  pthread_t th;
  pthread_create(&th, NULL, waiter, NULL);
  struct sock_filter f[] = {LOAD(NR), IS(SYS_getpgid, SECCOMP_RET_ERRNO | EPERM), ALLOW};
  show("TSYNC", install(f, sizeof f / sizeof f[0], SECCOMP_FILTER_FLAG_TSYNC));
  if (write(go[1], "g", 1) != 1) return;
  pthread_join(th, NULL);
  show("strict after filters", syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL));
}

static void checks(void) {
  base_filters = status_field("Seccomp_filters");
  printf("priv: at the start: PR_GET_SECCOMP %d, PR_GET_NO_NEW_PRIVS %d, filters %ld\n", prctl(PR_GET_SECCOMP),
         prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), base_filters);
  struct sock_filter allow[] = {ALLOW};
  pid_t c = fork();
  if (c == 0) {
    printf("priv: without no_new_privs: %s\n", install(allow, 1, 0) < 0 ? name(errno) : "installed");
    fflush(stdout);
    _exit(0);
  }
  waitpid(c, NULL, 0);
  show("PR_SET_NO_NEW_PRIVS 2", prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0));
  show("PR_SET_NO_NEW_PRIVS", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  show("PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  struct sock_filter ind[] = {BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0), ALLOW};
  struct sock_filter far[] = {LOAD(64), ALLOW};
  struct sock_filter odd[] = {LOAD(2), ALLOW};
  struct sock_filter jump[] = {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0), ALLOW};
  struct sock_filter ja[] = {BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0), ALLOW};
  struct sock_filter noret[] = {LOAD(NR)};
  struct sock_filter div0[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ALLOW};
  struct sock_filter mod[] = {BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 3), ALLOW};
  struct sock_filter shift[] = {BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 32), ALLOW};
  struct sock_filter mem[] = {BPF_STMT(BPF_ST, 16), ALLOW};
  show("empty filter", install(allow, 0, 0));
  show("BPF_IND load", install(ind, 2, 0));
  show("load past seccomp_data", install(far, 2, 0));
  show("unaligned load", install(odd, 2, 0));
  show("jump past the end", install(jump, 2, 0));
  show("BPF_JA past the end", install(ja, 2, 0));
  show("no return at the end", install(noret, 1, 0));
  show("division by a constant zero", install(div0, 2, 0));
  show("BPF_MOD", install(mod, 2, 0));
  show("shift by 32", install(shift, 2, 0));
  show("scratch word 16", install(mem, 2, 0));
  show("too long", install(allow, 4097, 0));
  show("unknown flag", install(allow, 1, 1u << 10));
  show("no program", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL));
  show("strict with flags", syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL));
  show("unknown operation", syscall(SYS_seccomp, 99, 0, NULL));
  unsigned action = SECCOMP_RET_ALLOW;
  show("ALLOW available", syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action));
  action = SECCOMP_RET_KILL_PROCESS;
  show("KILL_PROCESS available", syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action));
  action = 0x12340000;
  show("an unknown action available", syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action));
  struct seccomp_notif_sizes sizes;
  show("notif sizes", syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes));
  printf("  %u %u %u\n", sizes.seccomp_notif, sizes.seccomp_notif_resp, sizes.seccomp_data);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  self = argc > 1 ? argv[1] : "/proc/self/exe";
  if (argc > 2 && !strcmp(argv[2], "exec-check")) {
    show("after execve, getppid", syscall(SYS_getppid));
    show("after execve, PR_GET_SECCOMP", prctl(PR_GET_SECCOMP));
    return 3;
  }
  checks();
  in_child("errno", errno_case);
  in_child("trap", trap_case);
  in_child("kill process", kill_case);
  in_child("kill thread", kill_thread_case);
  in_child("arguments", args_case);
  in_child("division by zero", divide_case);
  in_child("strict", strict_case);
  in_child("tsync", tsync_case);
  return 0;
}
