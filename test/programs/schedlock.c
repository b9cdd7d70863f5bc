/* Scheduling policies, I/O priorities, memory locks, capabilities and the older calls that set file times (test/process.test.ts
 * compares the lines that do not depend on privilege with the native run; those that do start
 * with "priv:" and are checked against what Linux gives an unprivileged user, as kvmbox's guest
 * user is). With a directory argument, it sets file times there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <utime.h>

static const char *res(long r) {
  if (r >= 0) return "0";
  switch (errno) {
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case ENOMEM: return "ENOMEM";
    case ESRCH: return "ESRCH";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOTEMPTY: return "ENOTEMPTY";
    default: return strerror(errno);
  }
}

/* A result that is a value: the value, or the error's name. */
static const char *val(long r) {
  static char buf[24];
  if (r < 0) return res(r);
  snprintf(buf, sizeof buf, "%ld", r);
  return buf;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("priority range: FIFO %d-%d RR %d-%d OTHER %d-%d BATCH %d-%d IDLE %d-%d\n",
         sched_get_priority_min(SCHED_FIFO), sched_get_priority_max(SCHED_FIFO),
         sched_get_priority_min(SCHED_RR), sched_get_priority_max(SCHED_RR),
         sched_get_priority_min(SCHED_OTHER), sched_get_priority_max(SCHED_OTHER),
         sched_get_priority_min(SCHED_BATCH), sched_get_priority_max(SCHED_BATCH),
         sched_get_priority_min(SCHED_IDLE), sched_get_priority_max(SCHED_IDLE));
  printf("priority range of policy 42: %s\n", res(sched_get_priority_max(42)));
  struct sched_param sp = {0};
  const char *r;
  sp.sched_priority = 7;
  r = res(sched_getparam(0, &sp));
  printf("getscheduler %d, getparam %s priority %d\n", sched_getscheduler(0), r, sp.sched_priority);
  printf("getscheduler of no such pid: %s\n", res(sched_getscheduler(999999)));
  printf("getscheduler of pid -1: %s\n", res(sched_getscheduler(-1)));
  sp.sched_priority = 5;
  printf("setscheduler OTHER with priority 5: %s\n", res(sched_setscheduler(0, SCHED_OTHER, &sp)));
  sp.sched_priority = 0;
  r = res(sched_setscheduler(0, SCHED_BATCH, &sp));
  printf("setscheduler BATCH: %s, now %d\n", r, sched_getscheduler(0));
  pid_t pid = fork();
  if (pid == 0) { printf("child's scheduler %d\n", sched_getscheduler(0)); _exit(0); }
  waitpid(pid, NULL, 0);
  r = res(sched_setparam(0, &sp));
  printf("setparam priority 0: %s, still %d\n", r, sched_getscheduler(0));
  r = res(sched_setscheduler(0, SCHED_OTHER, &sp));
  printf("setscheduler OTHER: %s, now %d\n", r, sched_getscheduler(0));

  /* sched_getattr and sched_setattr: the policy and the nice value together. */
  unsigned char attr[64];
  memset(attr, 0xff, sizeof attr);
  r = res(syscall(SYS_sched_getattr, 0, attr, 56, 0));
  unsigned size, policy;
  int nice;
  memcpy(&size, attr, 4);
  memcpy(&policy, attr + 4, 4);
  memcpy(&nice, attr + 16, 4);
  printf("sched_getattr: %s size %u policy %u nice %d\n", r, size, policy, nice);
  printf("sched_getattr, 40 bytes: %s\n", res(syscall(SYS_sched_getattr, 0, attr, 40, 0)));
  printf("sched_getattr, flags 1: %s\n", res(syscall(SYS_sched_getattr, 0, attr, 56, 1)));
  memset(attr, 0, sizeof attr);
  size = 48;
  policy = SCHED_BATCH;
  nice = 3;
  memcpy(attr, &size, 4);
  memcpy(attr + 4, &policy, 4);
  memcpy(attr + 16, &nice, 4);
  r = res(syscall(SYS_sched_setattr, 0, attr, 0));
  printf("sched_setattr BATCH nice 3: %s, now %d nice %d\n", r, sched_getscheduler(0), getpriority(PRIO_PROCESS, 0));
  size = 30;
  memcpy(attr, &size, 4);
  r = res(syscall(SYS_sched_setattr, 0, attr, 0));
  memcpy(&size, attr, 4);
  printf("sched_setattr, 30 bytes: %s, size now %u\n", r, size);
  size = 48;
  policy = SCHED_OTHER;
  memcpy(attr, &size, 4);
  memcpy(attr + 4, &policy, 4);
  printf("sched_setattr OTHER nice 3: %s\n", res(syscall(SYS_sched_setattr, 0, attr, 0)));

  /* personality: kept and inherited. */
  printf("personality: %#lx", syscall(SYS_personality, 0xffffffffUL));
  printf(", set ADDR_NO_RANDOMIZE: %#lx", syscall(SYS_personality, 0x0040000UL));
  printf(", now %#lx\n", syscall(SYS_personality, 0xffffffffUL));
  pid = fork();
  if (pid == 0) { printf("child's personality %#lx\n", syscall(SYS_personality, 0xffffffffUL)); _exit(0); }
  waitpid(pid, NULL, 0);
  syscall(SYS_personality, 0UL);

  /* Limits: Linux's defaults (which the host may have changed: "host:"), and prlimit of a child. */
  struct rlimit rl2;
  getrlimit(RLIMIT_CORE, &rl2);
  printf("host: RLIMIT_CORE %lld %lld\n", (long long)rl2.rlim_cur, (long long)rl2.rlim_max);
  getrlimit(RLIMIT_NICE, &rl2);
  printf("host: RLIMIT_NICE %lld %lld\n", (long long)rl2.rlim_cur, (long long)rl2.rlim_max);
  getrlimit(RLIMIT_RTPRIO, &rl2);
  printf("host: RLIMIT_RTPRIO %lld %lld\n", (long long)rl2.rlim_cur, (long long)rl2.rlim_max);
  int ready[2];
  if (pipe(ready)) return 1;
  pid = fork();
  if (pid == 0) {
    struct rlimit mine = { 1234, 5678 };
    setrlimit(RLIMIT_FSIZE, &mine);
    write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char byte;
  read(ready[0], &byte, 1);
  struct rlimit theirs, lower = { 1000, 5000 };
  r = res(prlimit(pid, RLIMIT_FSIZE, &lower, &theirs));
  printf("prlimit of a child: %s, it had %lld %lld", r, (long long)theirs.rlim_cur, (long long)theirs.rlim_max);
  prlimit(pid, RLIMIT_FSIZE, NULL, &theirs);
  printf(", now %lld %lld\n", (long long)theirs.rlim_cur, (long long)theirs.rlim_max);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  printf("prlimit of no such pid: %s\n", res(prlimit(999999, RLIMIT_FSIZE, NULL, &theirs)));

  /* I/O priorities (ioprio_get, ioprio_set; IOPRIO_WHO_PROCESS 1): kept and inherited by fork. */
  long io = syscall(SYS_ioprio_get, 1, 0);
  printf("ioprio: %ld\n", io);
  r = res(syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 5));
  io = syscall(SYS_ioprio_get, 1, getpid());
  printf("ioprio set best-effort 5: %s, now %#lx\n", r, io);
  pid = fork();
  if (pid == 0) { printf("child's ioprio %#lx\n", syscall(SYS_ioprio_get, 1, 0)); _exit(0); }
  waitpid(pid, NULL, 0);
  printf("ioprio set class 5: %s\n", res(syscall(SYS_ioprio_set, 1, 0, 5 << 13)));
  printf("ioprio set none with a level: %s\n", res(syscall(SYS_ioprio_set, 1, 0, 1)));
  printf("ioprio get who 0: %s\n", res(syscall(SYS_ioprio_get, 0, 0)));
  printf("ioprio get of no such pid: %s\n", res(syscall(SYS_ioprio_get, 1, 999999)));
  printf("priv: ioprio set real-time 0: %s\n", res(syscall(SYS_ioprio_set, 1, 0, 1 << 13)));
  r = res(syscall(SYS_ioprio_set, 1, 0, 3 << 13));
  io = syscall(SYS_ioprio_get, 1, 0);
  printf("ioprio set idle: %s, now %#lx\n", r, io);
  sp.sched_priority = 10;
  printf("priv: setscheduler FIFO 10: %s\n", res(sched_setscheduler(0, SCHED_FIFO, &sp)));
  struct timespec slice;
  printf("rr_get_interval: %s\n", res(sched_rr_get_interval(0, &slice)));

  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  printf("setaffinity to its own CPUs: %s\n", res(sched_setaffinity(0, sizeof set, &set)));
  CPU_ZERO(&set);
  printf("setaffinity to none: %s\n", res(sched_setaffinity(0, sizeof set, &set)));

  long page = sysconf(_SC_PAGESIZE);
  char *mem = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(mem + 2 * page, page);
  printf("mlock a page: %s\n", res(mlock(mem + 10, 100)));
  printf("mlock2 with MLOCK_ONFAULT: %s\n", res(syscall(SYS_mlock2, mem, page, 1)));
  printf("mlock2 with flag 8: %s\n", res(syscall(SYS_mlock2, mem, page, 8)));
  printf("mlock over a hole: %s\n", res(mlock(mem, 4 * page)));
  printf("munlock: %s\n", res(munlock(mem, 2 * page)));
  printf("munlock over a hole: %s\n", res(munlock(mem, 4 * page)));
  printf("mlockall with no flags: %s\n", res(mlockall(0)));
  printf("mlockall MCL_FUTURE: %s\n", res(mlockall(MCL_FUTURE)));
  printf("munlockall: %s\n", res(munlockall()));
  struct rlimit rl;
  getrlimit(RLIMIT_MEMLOCK, &rl);
  printf("priv: RLIMIT_MEMLOCK %llu\n", (unsigned long long)rl.rlim_cur);
  char *big = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("priv: mlock 16 MiB: %s\n", res(mlock(big, 16 << 20)));
  r = res(mlock(big, 4 << 20));
  printf("priv: mlock 4 MiB, twice: %s %s\n", r, res(mlock(big, 4 << 20)));
  printf("priv: then 4 MiB more and a page: %s\n", res(mlock(big + (4 << 20), (4 << 20) + page)));
  munmap(big, 16 << 20);
  big = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("priv: after munmap, mlock 8 MiB: %s\n", res(mlock(big, 8 << 20)));

  struct { unsigned version; int pid; } hdr = {0, 0};
  unsigned caps[6] = {1, 1, 1, 1, 1, 1};
  long probe = syscall(SYS_capget, &hdr, NULL);
  printf("capget probe: %ld, version %#x\n", probe, hdr.version);
  r = res(syscall(SYS_capget, &hdr, caps));
  printf("priv: capget: %s, sets %u %u %u %u %u %u\n", r, caps[0], caps[1], caps[2], caps[3], caps[4], caps[5]);
  memset(caps, 0, sizeof caps);
  printf("capset to none: %s\n", res(syscall(SYS_capset, &hdr, caps)));
  hdr.pid = 999999;
  printf("capget of no such pid: %s\n", res(syscall(SYS_capget, &hdr, caps)));
  /* The bounding and ambient sets, as prctl shows them (libcap-ng probes the last capability). */
  printf("priv: capbset read 0 and 40: %s", val(prctl(PR_CAPBSET_READ, 0, 0, 0, 0)));
  printf(" %s, 41: ", val(prctl(PR_CAPBSET_READ, 40, 0, 0, 0)));
  printf("%s\n", res(prctl(PR_CAPBSET_READ, 41, 0, 0, 0)));
  printf("ambient is set 0: %s", val(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 0, 0, 0)));
  printf(", clear all: %s\n", res(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)));
  printf("keepcaps %s", val(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0)));
  printf(", securebits %s\n", val(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0)));
  printf("priv: capbset drop 39: %s\n", res(prctl(PR_CAPBSET_DROP, 39, 0, 0, 0)));

  /* NUMA policy on a machine with one node: kept, given back, inherited; node 1 does not exist. */
  int mode = -1;
  unsigned long nodes = 7, one = 1, two = 2, both = 3;
  r = res(syscall(SYS_get_mempolicy, &mode, &nodes, 64, 0, 0));
  printf("get_mempolicy: %s, mode %d nodes %#lx\n", r, mode, nodes);
  printf("get_mempolicy maxnode 0: %s\n", res(syscall(SYS_get_mempolicy, &mode, &nodes, 0, 0, 0)));
  printf("get_mempolicy flag 8: %s\n", res(syscall(SYS_get_mempolicy, &mode, NULL, 0, 0, 8)));
  printf("get_mempolicy addr without MPOL_F_ADDR: %s\n", res(syscall(SYS_get_mempolicy, &mode, NULL, 0, &mode, 0)));
  nodes = 7;
  r = res(syscall(SYS_get_mempolicy, &mode, &nodes, 64, 0, 4 /* MPOL_F_MEMS_ALLOWED */));
  printf("mems allowed: %s, mode %d nodes %#lx\n", r, mode, nodes);
  printf("set_mempolicy bind node 0: %s", res(syscall(SYS_set_mempolicy, 2, &one, 64)));
  nodes = 7;
  r = res(syscall(SYS_get_mempolicy, &mode, &nodes, 64, 0, 0));
  printf(", get %s mode %d nodes %#lx\n", r, mode, nodes);
  pid = fork();
  if (pid == 0) {
    syscall(SYS_get_mempolicy, &mode, NULL, 0, 0, 0);
    printf("child's mempolicy %d\n", mode);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  printf("set_mempolicy bind node 1: %s\n", res(syscall(SYS_set_mempolicy, 2, &two, 64)));
  r = res(syscall(SYS_set_mempolicy, 3 | (1 << 15), &both, 64));
  syscall(SYS_get_mempolicy, &mode, &nodes, 64, 0, 0);
  printf("set_mempolicy interleave static nodes 0-1: %s, mode %#x nodes %#lx", r, mode, nodes);
  printf(", next node %s", res(syscall(SYS_get_mempolicy, &mode, NULL, 0, 0, 1 /* MPOL_F_NODE */)));
  printf(" %d\n", mode);
  r = res(syscall(SYS_set_mempolicy, 1, NULL, 0));
  syscall(SYS_get_mempolicy, &mode, &nodes, 64, 0, 0);
  printf("set_mempolicy preferred, no nodes: %s, mode %d\n", r, mode);
  printf("next node, not interleaving: %s\n", res(syscall(SYS_get_mempolicy, &mode, NULL, 0, 0, 1)));
  printf("set_mempolicy local with a node: %s\n", res(syscall(SYS_set_mempolicy, 4, &one, 64)));
  printf("set_mempolicy default with a node: %s\n", res(syscall(SYS_set_mempolicy, 0, &one, 64)));
  printf("set_mempolicy mode 9: %s\n", res(syscall(SYS_set_mempolicy, 9, NULL, 0)));
  printf("set_mempolicy balancing without bind: %s\n", res(syscall(SYS_set_mempolicy, 3 | (1 << 13), &one, 64)));
  r = res(syscall(SYS_set_mempolicy, 0, NULL, 0));
  syscall(SYS_get_mempolicy, &mode, NULL, 0, 0, 0);
  printf("set_mempolicy default: %s, mode %d\n", r, mode);
  mode = -1;
  r = res(syscall(SYS_get_mempolicy, &mode, NULL, 0, mem, 3 /* MPOL_F_NODE | MPOL_F_ADDR */));
  printf("node of a page: %s %d\n", r, mode);
  errno = 0;
  r = res(syscall(SYS_get_mempolicy, &mode, NULL, 0, mem + 2 * page, 2));
  printf("policy of a hole: %s\n", errno == EFAULT ? "EFAULT" : r);

  /* unshare: nothing to do for a process alone; new namespaces need a privilege. */
  printf("unshare nothing: %s, files and fs: %s, flag 1: %s\n", res(syscall(SYS_unshare, 0)),
         res(syscall(SYS_unshare, CLONE_FILES | CLONE_FS | CLONE_SYSVSEM)), res(syscall(SYS_unshare, 1)));
  pid = fork();
  if (pid == 0) {
    printf("priv: unshare user namespace: %s\n", res(syscall(SYS_unshare, CLONE_NEWUSER)));
    _exit(0);
  }
  waitpid(pid, NULL, 0);

  if (argc > 1) {
    char path[4096];
    snprintf(path, sizeof path, "%s/times", argv[1]);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    close(fd);
    struct stat st;
    struct utimbuf ub = {.actime = 1000000000, .modtime = 1100000000};
    printf("utime: %s", res(utime(path, &ub)));
    stat(path, &st);
    printf(" -> atime %ld mtime %ld\n", (long)st.st_atime, (long)st.st_mtime);
    struct timeval tv[2] = {{1200000000, 250000}, {1300000000, 500000}};
    printf("utimes: %s", res(utimes(path, tv)));
    stat(path, &st);
    printf(" -> atime %ld.%06ld mtime %ld.%06ld\n", (long)st.st_atime, st.st_atim.tv_nsec / 1000, (long)st.st_mtime, st.st_mtim.tv_nsec / 1000);
    tv[1].tv_usec = 1000000;
    printf("utimes with 1000000 us: %s\n", res(utimes(path, tv)));
    tv[1].tv_usec = 0;
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    printf("futimesat: %s", res(syscall(SYS_futimesat, dir, "times", tv)));
    stat(path, &st);
    printf(" -> mtime %ld\n", (long)st.st_mtime);
    printf("utime of a missing file: %s\n", res(utime("/nonexistent-kvmbox", &ub)));
    time_t before = time(NULL);
    printf("utimes to now: %s", res(utimes(path, NULL)));
    stat(path, &st);
    printf(" -> recent %d\n", st.st_mtime >= before - 1 && st.st_mtime <= time(NULL) + 1);

    /* A directory the program made read-only keeps its entries: adding and removing names is
     * EACCES for a non-root user (natively root may: "priv:"). */
    char ro[4096], f[4200], g[4200], out[4200];
    snprintf(ro, sizeof ro, "%s/ro", argv[1]);
    snprintf(f, sizeof f, "%s/f", ro);
    snprintf(g, sizeof g, "%s/g", ro);
    snprintf(out, sizeof out, "%s/moved", argv[1]);
    mkdir(ro, 0755);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    chmod(ro, 0555);
    printf("priv: unlink in a 0555 directory: %s\n", res(unlink(f)));
    int made = open(g, O_CREAT | O_WRONLY, 0644);
    printf("priv: create in it: %s\n", res(made));
    if (made >= 0) close(made), unlink(g);
    printf("priv: mkdir in it: %s\n", res(mkdir(g, 0755)));
    rmdir(g);
    printf("priv: rename out of it: %s\n", res(rename(f, out)));
    rename(out, f);
    printf("priv: rmdir of it while it holds f: %s\n", res(rmdir(ro)));
    chmod(ro, 0755);
    printf("after chmod 755: unlink %s", res(unlink(f)));
    printf(", rmdir %s\n", res(rmdir(ro)));
  }
  cpu_set_t none;
  printf("getaffinity of pid -1: %s", res(sched_getaffinity(-1, sizeof none, &none)));
  printf(", setaffinity: %s\n", res(sched_setaffinity(-1, sizeof none, &none)));
  return 0;
}
