/* ptrace(2) on x86-64, each section with its own child, traced only by its own parent:
 * 1 TRACEME + raise(SIGSTOP): siginfo of the stop, TRACESYSGOOD syscall stops and
 *   PTRACE_GET_SYSCALL_INFO (op, arch, nr, args, rval, is_error, returned sizes);
 * 2 GETREGS/SETREGS/GETREGSET: orig_rax and -ENOSYS at entry, a changed return value, a syscall
 *   skipped by orig_rax = -1 at entry (the child reports what it got through a pipe);
 * 3 PEEKDATA/POKEDATA (raw syscall form: the kernel stores the word at *data), PEEKUSER,
 *   process_vm_readv/writev, and the errors of bad addresses;
 * 4 signal-delivery-stops: siginfo, suppressing a signal, replacing it by another;
 * 5 PTRACE_EVENT_EXEC with TRACEEXEC, and the legacy SIGTRAP after execve without it;
 * 6 SEIZE, INTERRUPT (PTRACE_EVENT_STOP), group-stop under SEIZE, LISTEN, SIGCONT;
 * 7 PTRACE_EVENT_FORK, the auto-attached grandchild's SIGSTOP and exit, seen by the tracer;
 * 8 errors (ESRCH, EPERM, EIO, EINVAL), ATTACH/DETACH, siginfo at a syscall stop;
 * 9 PTRACE_O_EXITKILL: a tracee whose tracer exits is killed (seen as EOF on a pipe).
 * Prints only derived facts (no pids, addresses or register values), so the output compares
 * line by line with a native run, as root or not. Every wait names its pid; alarm(20) guards. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define PTRACE_TRACEME 0
#define PTRACE_PEEKDATA 2
#define PTRACE_PEEKUSER 3
#define PTRACE_POKEDATA 5
#define PTRACE_CONT 7
#define PTRACE_GETREGS 12
#define PTRACE_SETREGS 13
#define PTRACE_ATTACH 16
#define PTRACE_DETACH 17
#define PTRACE_SYSCALL 24
#ifndef PTRACE_SETOPTIONS
#define PTRACE_SETOPTIONS 0x4200
#endif
#ifndef PTRACE_GETEVENTMSG
#define PTRACE_GETEVENTMSG 0x4201
#endif
#ifndef PTRACE_GETSIGINFO
#define PTRACE_GETSIGINFO 0x4202
#endif
#ifndef PTRACE_GETREGSET
#define PTRACE_GETREGSET 0x4204
#endif
#ifndef PTRACE_SEIZE
#define PTRACE_SEIZE 0x4206
#endif
#ifndef PTRACE_INTERRUPT
#define PTRACE_INTERRUPT 0x4207
#endif
#ifndef PTRACE_LISTEN
#define PTRACE_LISTEN 0x4208
#endif
#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#define O_TRACESYSGOOD 0x1
#define O_TRACEFORK 0x2
#define O_TRACEEXEC 0x10
#define O_EXITKILL 0x100000
#define EVENT_FORK 1
#define EVENT_EXEC 4
#define EVENT_STOP 128
#ifndef NT_PRSTATUS
#define NT_PRSTATUS 1
#endif
#define AUDIT_ARCH_X86_64 0xc000003eu

struct sc_info {                                /* struct ptrace_syscall_info */
  uint8_t op, pad[3];
  uint32_t arch;
  uint64_t ip, sp;
  union {
    struct { uint64_t nr, args[6]; } entry;
    struct { int64_t rval; uint8_t is_error; } exit;
    uint8_t room[128];
  } u;
};

/* Raw ptrace: returns -1 with errno like the libc wrapper, but for PEEKDATA/PEEKUSER the kernel
 * stores the word at *data and returns 0 (glibc's ptrace() hides this, musl's differs). */
static long pt(long req, pid_t pid, void *addr, void *data) {
  return syscall(SYS_ptrace, req, (long)pid, addr, data);
}
#define D(x) ((void *)(long)(x))

static const char *en(int e) {
  switch (e) {
  case EPERM: return "EPERM"; case ESRCH: return "ESRCH"; case EIO: return "EIO";
  case EINVAL: return "EINVAL"; case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY";
  case ENOENT: return "ENOENT"; case ENOSYS: return "ENOSYS"; case 0: return "0";
  default: return "other";
  }
}
/* "0" for success, the errno name for -1 */
static const char *rs(long r) { return r == 0 ? "0" : r == -1 ? en(errno) : "unexpected"; }

static const char *scname(uint64_t nr) {
  if (nr == SYS_getppid) return "getppid";
  if (nr == SYS_chdir) return "chdir";
  if (nr == SYS_exit_group) return "exit_group";
  if (nr == SYS_getpid) return "getpid";
  return NULL;
}

static int wt(pid_t p) {
  int st;
  if (waitpid(p, &st, __WALL) != p) { printf("waitpid failed: %s\n", en(errno)); exit(1); }
  return st;
}
static int stopsig(int st, int sig) { return WIFSTOPPED(st) && WSTOPSIG(st) == sig; }
static int exited(int st, int code) { return WIFEXITED(st) && WEXITSTATUS(st) == code; }
static int killed(int st, int sig) { return WIFSIGNALED(st) && WTERMSIG(st) == sig; }

/* Forks a child that runs body() after TRACEME + raise(SIGSTOP); returns with it in that stop. */
static pid_t traced(void (*body)(void)) {
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    if (pt(PTRACE_TRACEME, 0, 0, 0)) _exit(100);
    raise(SIGSTOP);
    body();
    _exit(0);
  }
  int st = wt(p);
  if (!stopsig(st, SIGSTOP)) printf("initial stop is SIGSTOP: 0\n");
  return p;
}
static pid_t plain(void (*body)(void)) {
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) { body(); _exit(0); }
  return p;
}

static int pfd[2];
static void pauser(void) { for (;;) pause(); }

/* ---- 1 */
static void b1(void) { syscall(SYS_getppid); syscall(SYS_chdir, ""); _exit(7); }
static void s1(void) {
  printf("== 1 traceme, syscall stops, syscall info\n");
  pid_t p = traced(b1);
  printf("initial stop is SIGSTOP: 1\n");
  siginfo_t si; struct sc_info in;
  memset(&si, 0, sizeof si);
  printf("getsiginfo: %s\n", rs(pt(PTRACE_GETSIGINFO, p, 0, &si)));
  printf("si_signo == SIGSTOP: %d\n", si.si_signo == SIGSTOP);
  printf("si_code == SI_TKILL: %d\n", si.si_code == SI_TKILL);
  long n = pt(PTRACE_GET_SYSCALL_INFO, p, D(sizeof in), &in);
  printf("syscall info at a signal stop: size %ld op %d\n", n, in.op);
  printf("setoptions TRACESYSGOOD: %s\n", rs(pt(PTRACE_SETOPTIONS, p, 0, D(O_TRACESYSGOOD))));
  uint64_t last = (uint64_t)-1;
  for (;;) {
    pt(PTRACE_SYSCALL, p, 0, 0);
    int st = wt(p);
    if (!WIFSTOPPED(st)) { printf("exited 7: %d\n", exited(st, 7)); break; }
    memset(&in, 0, sizeof in);
    n = pt(PTRACE_GET_SYSCALL_INFO, p, D(sizeof in), &in);
    const char *name = scname(in.op == 1 ? in.u.entry.nr : last);
    if (in.op == 1) last = in.u.entry.nr;
    if (!name) continue;                        /* a libc-internal syscall: not printed */
    printf("%s %s: SIGTRAP|0x80 %d, op %d, size %ld, arch x86_64 %d, ip/sp nonzero %d", name,
           in.op == 1 ? "entry" : "exit", stopsig(st, SIGTRAP | 0x80), in.op, n,
           in.arch == AUDIT_ARCH_X86_64, in.ip != 0 && in.sp != 0);
    if (in.op == 1 && last == SYS_exit_group) printf(", args[0] %d", (int)in.u.entry.args[0]);
    if (in.op == 1 && last == SYS_chdir) printf(", args[0] nonzero %d", in.u.entry.args[0] != 0);
    if (in.op == 2 && last == SYS_getppid)
      printf(", rval == tracer pid %d, is_error %d", in.u.exit.rval == getpid(), in.u.exit.is_error);
    if (in.op == 2 && last == SYS_chdir)
      printf(", rval -%s, is_error %d", en((int)-in.u.exit.rval), in.u.exit.is_error);
    printf("\n");
  }
}

/* ---- 2 */
static void b2(void) {
  long r[2];
  r[0] = syscall(SYS_getppid);
  r[1] = syscall(SYS_getpid);
  if (write(pfd[1], r, sizeof r) != sizeof r) _exit(1);
}
static void s2(void) {
  printf("== 2 registers\n");
  if (pipe(pfd)) return;
  pid_t p = traced(b2);
  close(pfd[1]);
  pt(PTRACE_SETOPTIONS, p, 0, D(O_TRACESYSGOOD));
  struct user_regs_struct r, r2;
  int stage = 0, st;
  while (stage < 4) {
    pt(PTRACE_SYSCALL, p, 0, 0);
    st = wt(p);
    if (!stopsig(st, SIGTRAP | 0x80)) { printf("unexpected stop\n"); break; }
    pt(PTRACE_GETREGS, p, 0, &r);
    if (stage == 0 && r.orig_rax == SYS_getppid) {
      printf("entry: orig_rax == SYS_getppid %d, rax == -ENOSYS %d\n", 1, r.rax == (unsigned long)-ENOSYS);
      struct iovec iov = { &r2, sizeof r2 + 64 };
      long n = pt(PTRACE_GETREGSET, p, D(NT_PRSTATUS), &iov);
      printf("getregset: %s, iov_len == sizeof(user_regs_struct) %d, same orig_rax %d, same rip %d\n",
             rs(n), iov.iov_len == sizeof r2, r2.orig_rax == r.orig_rax, r2.rip == r.rip);
      stage = 1;
    } else if (stage == 1) {
      printf("exit: orig_rax == SYS_getppid %d, rax == tracer pid %d\n", r.orig_rax == SYS_getppid,
             (long)r.rax == getpid());
      r.rax = 4242;
      printf("setregs rax = 4242: %s\n", rs(pt(PTRACE_SETREGS, p, 0, &r)));
      stage = 2;
    } else if (stage == 2 && r.orig_rax == SYS_getpid) {
      r.orig_rax = (unsigned long)-1;
      r.rax = 99;
      printf("entry getpid: setregs orig_rax = -1, rax = 99: %s\n", rs(pt(PTRACE_SETREGS, p, 0, &r)));
      stage = 3;
    } else if (stage == 3) {
      struct sc_info in;
      pt(PTRACE_GET_SYSCALL_INFO, p, D(sizeof in), &in);
      printf("skipped call's exit stop: orig_rax == -1 %d, rax %ld, info op %d rval %ld\n",
             r.orig_rax == (unsigned long)-1, (long)r.rax, in.op, (long)in.u.exit.rval);
      stage = 4;
    }
  }
  pt(PTRACE_CONT, p, 0, 0);
  long got[2] = {0, 0};
  if (read(pfd[0], got, sizeof got) != sizeof got) printf("pipe read short\n");
  close(pfd[0]);
  printf("child's getppid returned 4242: %d\n", got[0] == 4242);
  printf("child's skipped getpid returned: %ld\n", got[1]);
  printf("exited 0: %d\n", exited(wt(p), 0));
}

/* ---- 3 */
static volatile long word = 0x1122334455667788;
static char buf[64] = "the tracer reads this buffer";
/* An anonymous page the child may only read, never written before: POKEDATA writes it anyway. */
static volatile long *ro_page;
static void b3(void) {
  _exit((word == 0x0123456789abcdef ? 0 : 1) | (strcmp(buf, "written by the tracer") ? 2 : 0) | (ro_page[1] == 0x5a5a ? 0 : 4));
}
static void s3(void) {
  printf("== 3 memory\n");
  ro_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  pid_t p = traced(b3);
  long v = 0;
  printf("peekdata: %s\n", rs(pt(PTRACE_PEEKDATA, p, (void *)&word, &v)));
  printf("peekdata read the child's word: %d\n", v == 0x1122334455667788);
  memcpy(&v, buf + 1, 8); long w = 0;
  pt(PTRACE_PEEKDATA, p, buf + 1, &w);
  printf("peekdata at an unaligned address: %d\n", w == v);
  printf("pokedata: %s\n", rs(pt(PTRACE_POKEDATA, p, (void *)&word, D(0x0123456789abcdef))));
  printf("pokedata into a read-only page: %s\n", rs(pt(PTRACE_POKEDATA, p, (void *)&ro_page[1], D(0x5a5a))));
  printf("peekdata at 0: %s\n", rs(pt(PTRACE_PEEKDATA, p, 0, &v)));
  printf("pokedata at 0: %s\n", rs(pt(PTRACE_POKEDATA, p, 0, 0)));
  printf("peekdata into a bad data pointer: %s\n", rs(pt(PTRACE_PEEKDATA, p, (void *)&word, 0)));
  struct user_regs_struct r;
  pt(PTRACE_GETREGS, p, 0, &r);
  v = 0;
  printf("peekuser rip: %s\n", rs(pt(PTRACE_PEEKUSER, p, D(offsetof(struct user, regs.rip)), &v)));
  printf("peekuser rip == getregs rip: %d\n", (unsigned long)v == r.rip);
  printf("peekuser misaligned offset: %s\n", rs(pt(PTRACE_PEEKUSER, p, D(3), &v)));
  printf("peekuser at offset 4096: %s\n", rs(pt(PTRACE_PEEKUSER, p, D(4096), &v)));
  char got[64] = {0}, msg[64] = "written by the tracer";
  struct iovec l = { got, sizeof got }, rm = { buf, sizeof buf };
  long n = syscall(SYS_process_vm_readv, (long)p, &l, 1L, &rm, 1L, 0L);
  printf("process_vm_readv: %ld bytes, same text %d\n", n, strcmp(got, buf) == 0);
  l.iov_base = msg;
  n = syscall(SYS_process_vm_writev, (long)p, &l, 1L, &rm, 1L, 0L);
  printf("process_vm_writev: %ld bytes\n", n);
  pt(PTRACE_CONT, p, 0, 0);
  int st = wt(p);
  printf("child saw the poked words and the written buffer (exit 0): %d\n", exited(st, 0));
}

/* ---- 4 */
static volatile int usr1, usr2;
static void h(int sig) { if (sig == SIGUSR1) usr1++; else usr2++; }
static void b4(void) {
  signal(SIGUSR1, h); signal(SIGUSR2, h);
  kill(getpid(), SIGUSR1);
  syscall(SYS_getppid);
  kill(getpid(), SIGUSR1);
  _exit(usr1 * 10 + usr2);
}
static void s4(void) {
  printf("== 4 signal-delivery-stops\n");
  pid_t p = traced(b4);
  pt(PTRACE_CONT, p, 0, 0);
  int st = wt(p);
  printf("first stop is SIGUSR1: %d\n", stopsig(st, SIGUSR1) && st >> 16 == 0);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  pt(PTRACE_GETSIGINFO, p, 0, &si);
  printf("si_signo == SIGUSR1 %d, si_code == SI_USER %d, si_pid == child %d, si_uid == getuid %d\n",
         si.si_signo == SIGUSR1, si.si_code == SI_USER, si.si_pid == p, si.si_uid == getuid());
  pt(PTRACE_CONT, p, 0, 0);                     /* suppressed */
  st = wt(p);
  printf("second stop is SIGUSR1: %d\n", stopsig(st, SIGUSR1));
  pt(PTRACE_CONT, p, 0, D(SIGUSR2));            /* replaced */
  st = wt(p);
  printf("child exit (usr1 handler runs * 10 + usr2 handler runs): %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* A traced child running body with option set, continued to its first stop: prints whether
 * that is the event's stop (named name); *msg gets PTRACE_GETEVENTMSG's word, *r its result. */
static pid_t to_event(void (*body)(void), long option, int event, const char *name, unsigned long *msg, long *r) {
  pid_t p = traced(body);
  pt(PTRACE_SETOPTIONS, p, 0, D(option));
  pt(PTRACE_CONT, p, 0, 0);
  int st = wt(p);
  printf("stop is SIGTRAP | PTRACE_EVENT_%s << 8: %d\n", name, WIFSTOPPED(st) && st >> 8 == (SIGTRAP | event << 8));
  *msg = 0;
  *r = pt(PTRACE_GETEVENTMSG, p, 0, msg);
  return p;
}

/* ---- 5 */
static char *self;
static void b5(void) { execl(self, self, "exec-child", (char *)0); _exit(127); }
static void s5(void) {
  printf("== 5 exec\n");
  unsigned long m;
  long r;
  pid_t p = to_event(b5, O_TRACEEXEC, EVENT_EXEC, "EXEC", &m, &r);
  int st;
  printf("geteventmsg: %s, former tid == child %d\n", rs(r), m == (unsigned long)p);
  pt(PTRACE_CONT, p, 0, 0);
  printf("exited 3: %d\n", exited(wt(p), 3));
  p = traced(b5);
  pt(PTRACE_CONT, p, 0, 0);
  st = wt(p);
  printf("without TRACEEXEC: plain SIGTRAP stop %d\n", stopsig(st, SIGTRAP) && st >> 16 == 0);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  pt(PTRACE_GETSIGINFO, p, 0, &si);
  printf("si_signo == SIGTRAP %d, si_code == SI_USER %d\n", si.si_signo == SIGTRAP, si.si_code == SI_USER);
  pt(PTRACE_CONT, p, 0, 0);
  printf("exited 3: %d\n", exited(wt(p), 3));
}

/* ---- 6 */
static void s6(void) {
  printf("== 6 seize, interrupt, listen\n");
  pid_t p = plain(pauser);
  printf("seize: %s\n", rs(pt(PTRACE_SEIZE, p, 0, D(O_TRACESYSGOOD))));
  printf("interrupt: %s\n", rs(pt(PTRACE_INTERRUPT, p, 0, 0)));
  int st = wt(p);
  printf("stopped by SIGTRAP %d, event == PTRACE_EVENT_STOP %d\n", stopsig(st, SIGTRAP), st >> 16 == EVENT_STOP);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  pt(PTRACE_GETSIGINFO, p, 0, &si);
  printf("si_signo == SIGTRAP %d, si_code == SIGTRAP | PTRACE_EVENT_STOP << 8 %d\n",
         si.si_signo == SIGTRAP, si.si_code == (SIGTRAP | EVENT_STOP << 8));
  printf("cont: %s\n", rs(pt(PTRACE_CONT, p, 0, 0)));
  kill(p, SIGSTOP);
  st = wt(p);
  printf("SIGSTOP signal-delivery-stop: %d\n", stopsig(st, SIGSTOP) && st >> 16 == 0);
  pt(PTRACE_CONT, p, 0, D(SIGSTOP));
  st = wt(p);
  printf("group-stop: SIGSTOP with PTRACE_EVENT_STOP %d\n", stopsig(st, SIGSTOP) && st >> 16 == EVENT_STOP);
  printf("listen: %s\n", rs(pt(PTRACE_LISTEN, p, 0, 0)));
  printf("nothing to wait for while listening: %d\n", waitpid(p, &st, __WALL | WNOHANG) == 0);
  kill(p, SIGCONT);
  st = wt(p);
  printf("after SIGCONT: SIGTRAP with PTRACE_EVENT_STOP %d\n", stopsig(st, SIGTRAP) && st >> 16 == EVENT_STOP);
  pt(PTRACE_CONT, p, 0, 0);
  st = wt(p);
  printf("then SIGCONT signal-delivery-stop: %d\n", stopsig(st, SIGCONT) && st >> 16 == 0);
  pt(PTRACE_CONT, p, 0, 0);
  kill(p, SIGKILL);
  printf("killed by SIGKILL: %d\n", killed(wt(p), SIGKILL));
}

/* ---- 7 */
static void b7(void) {
  pid_t g = fork();
  if (g == 0) _exit(5);
  int st;
  if (waitpid(g, &st, 0) != g) _exit(1);
  _exit(WEXITSTATUS(st) + 10);
}
static void s7(void) {
  printf("== 7 fork event\n");
  unsigned long g;
  long r;
  pid_t p = to_event(b7, O_TRACEFORK, EVENT_FORK, "FORK", &g, &r);
  int st;
  printf("geteventmsg: %s\n", rs(r));
  st = wt((pid_t)g);
  printf("grandchild starts in a SIGSTOP stop: %d\n", stopsig(st, SIGSTOP) && st >> 16 == 0);
  printf("grandchild cont: %s\n", rs(pt(PTRACE_CONT, (pid_t)g, 0, 0)));
  pt(PTRACE_CONT, p, 0, 0);
  printf("tracer sees the grandchild exit 5: %d\n", exited(wt((pid_t)g), 5));
  st = wt(p);                                   /* traced, so even an ignored signal stops */
  printf("child then stops with SIGCHLD: %d\n", stopsig(st, SIGCHLD));
  pt(PTRACE_CONT, p, 0, D(SIGCHLD));
  printf("child exited 15: %d\n", exited(wt(p), 15));
}

/* ---- 8 */
static void b8a(void) {
  long a = pt(PTRACE_TRACEME, 0, 0, 0);
  long b = pt(PTRACE_TRACEME, 0, 0, 0);
  _exit(a == 0 && b == -1 ? errno : 99);
}
static void b8b(void) { syscall(SYS_getppid); }
static void s8(void) {
  printf("== 8 errors, attach, detach\n");
  pid_t p = plain(pauser);
  printf("cont on an untraced child: %s\n", rs(pt(PTRACE_CONT, p, 0, 0)));
  printf("attach to own child: %s\n", rs(pt(PTRACE_ATTACH, p, 0, 0)));
  int st = wt(p);
  printf("attached child stops with SIGSTOP: %d\n", stopsig(st, SIGSTOP));
  printf("attach again: %s\n", rs(pt(PTRACE_ATTACH, p, 0, 0)));
  printf("detach: %s\n", rs(pt(PTRACE_DETACH, p, 0, 0)));
  printf("cont after detach: %s\n", rs(pt(PTRACE_CONT, p, 0, 0)));
  kill(p, SIGKILL);
  printf("killed by SIGKILL: %d\n", killed(wt(p), SIGKILL));
  printf("attach to itself: %s\n", rs(pt(PTRACE_ATTACH, getpid(), 0, 0)));
  p = plain(b8a);
  printf("traceme twice: second fails with %s\n", en(WEXITSTATUS(wt(p))));
  p = plain(pauser);
  pt(PTRACE_SEIZE, p, 0, 0);
  struct user_regs_struct r;
  printf("getregs on a running tracee: %s\n", rs(pt(PTRACE_GETREGS, p, 0, &r)));
  kill(p, SIGKILL);
  wt(p);
  p = traced(b8b);
  pt(PTRACE_SETOPTIONS, p, 0, D(O_TRACESYSGOOD));
  pt(PTRACE_SYSCALL, p, 0, 0);
  st = wt(p);
  printf("syscall stop: %d\n", stopsig(st, SIGTRAP | 0x80));
  siginfo_t si;
  memset(&si, 0, sizeof si);
  pt(PTRACE_GETSIGINFO, p, 0, &si);
  printf("siginfo at a syscall stop: si_signo == SIGTRAP %d, si_code == SIGTRAP|0x80 %d\n",
         si.si_signo == SIGTRAP, si.si_code == (SIGTRAP | 0x80));
  printf("unknown request 0x9999: %s\n", rs(pt(0x9999, p, 0, 0)));
  printf("interrupt without seize: %s\n", rs(pt(PTRACE_INTERRUPT, p, 0, 0)));
  printf("listen without seize: %s\n", rs(pt(PTRACE_LISTEN, p, 0, 0)));
  printf("setoptions unknown bit: %s\n", rs(pt(PTRACE_SETOPTIONS, p, 0, D(1L << 25))));
  printf("getsiginfo to a bad pointer: %s\n", rs(pt(PTRACE_GETSIGINFO, p, 0, D(8))));
  printf("detach from a syscall stop: %s\n", rs(pt(PTRACE_DETACH, p, 0, 0)));
  printf("exited 0: %d\n", exited(wt(p), 0));
}

/* ---- 9 */
static void b9(void) { if (write(pfd[1], "x", 1)) {} }
static void s9(void) {
  printf("== 9 exitkill\n");
  if (pipe(pfd)) return;
  fflush(stdout);
  pid_t t = fork();
  if (t == 0) {                                 /* the tracer T */
    pid_t c = fork();
    if (c == 0) {                               /* the tracee C */
      close(pfd[0]);
      if (pt(PTRACE_TRACEME, 0, 0, 0)) _exit(1);
      raise(SIGSTOP);
      b9();
      _exit(0);
    }
    close(pfd[0]); close(pfd[1]);
    int st = wt(c);
    if (!stopsig(st, SIGSTOP)) _exit(2);
    if (pt(PTRACE_SETOPTIONS, c, 0, D(O_EXITKILL))) _exit(3);
    _exit(0);                                   /* exits with C still stopped */
  }
  close(pfd[1]);
  int st = wt(t);
  printf("tracer exited 0: %d\n", exited(st, 0));
  char c;
  long n = read(pfd[0], &c, 1);
  printf("tracee killed before writing (EOF): %d\n", n == 0);
  close(pfd[0]);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "exec-child") == 0) _exit(3);
  self = argv[0];
  alarm(20);
  setvbuf(stdout, NULL, _IOLBF, 0);
  s1(); s2(); s3(); s4(); s5(); s6(); s7(); s8(); s9();
  printf("done\n");
  return 0;
}
