/* A system-call fuzzer (issue 12, item 7): random system calls with random arguments, the same
 * ones for the same seed. usage: fuzz-syscalls SEED CALLS RWDIR RODIR OUTSIDE
 *   RWDIR    a directory granted read-write: the program works in it (relative names land there)
 *   RODIR    a directory granted read-only (must not change)
 *   OUTSIDE  a directory not granted (must not change, nor be seen)
 * Arguments come from pools of the values that break system calls: pointers at the edges of
 * mapped memory (last bytes of a mapping, just past it, read-only pages, kernel and
 * non-canonical addresses), huge and negative lengths, bad descriptors, path strings that run
 * into an unmapped page or cross a page boundary. Calls that would only end or wedge the
 * program are left out or tamed (exit, execve, fork/clone, kill, arch_prctl, brk, mremap, waits
 * without a timeout; MAP_FIXED, blocking pipes and message queues, SIGPIPE; limits whose excess ends the program, as Linux's
 * SIGXCPU and SIGXFSZ and a stack that may not grow past RLIMIT_AS do). Ends with exit status 0 after CALLS calls; the
 * host must serve every one of them without an error of its own.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096ul
#define SCRATCH_PAGES 16ul
#define SCRATCH_LEN (SCRATCH_PAGES * PAGE)

static uint64_t state;
static uint64_t rnd(void) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 2685821657736338717ull;
}
static uint64_t pick(const uint64_t *v, size_t n) { return v[rnd() % n]; }
#define PICK(a) pick(a, sizeof a / sizeof a[0])

static char *scratch;   /* SCRATCH_LEN bytes, read-write, followed by an unmapped page */
static char *ropage;    /* one read-only page */
static char *strings;   /* two read-only pages of path strings, followed by an unmapped page */
static char *zerots;    /* a zero timespec (in ropage) */
static uint64_t paths[40];
static size_t npaths;

static void add_path(char **at, const char *s) {
  size_t n = strlen(s) + 1;
  memcpy(*at, s, n);
  paths[npaths++] = (uint64_t)*at;
  *at += n;
}

static void setup(const char *rw, const char *ro, const char *outside) {
  scratch = mmap(0, SCRATCH_LEN + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  strings = mmap(0, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ropage = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (scratch == MAP_FAILED || strings == MAP_FAILED || ropage == MAP_FAILED) _exit(3);
  munmap(scratch + SCRATCH_LEN, PAGE);
  munmap(strings + 2 * PAGE, PAGE);
  for (size_t i = 0; i < SCRATCH_LEN; i += 8) *(uint64_t *)(scratch + i) = rnd();
  memset(ropage, 0, PAGE);
  zerots = ropage;
  char buf[512];
  char *at = strings;
  const char *names[] = {"f0", "f1", "d0", "d1", "l0", "d0/f2", "d1/d2", ".", "..", "", "/", "/dev/null",
                         "/proc/self/fd/1", "/proc/self/exe", "/dev/tty", "/nonexistent/x"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) add_path(&at, names[i]);
  snprintf(buf, sizeof buf, "%s/f9", rw); add_path(&at, buf);
  snprintf(buf, sizeof buf, "%s/file", ro); add_path(&at, buf);
  snprintf(buf, sizeof buf, "%s/sub/deep", ro); add_path(&at, buf);
  snprintf(buf, sizeof buf, "%s", ro); add_path(&at, buf);
  snprintf(buf, sizeof buf, "%s/secret", outside); add_path(&at, buf);
  snprintf(buf, sizeof buf, "%s", outside); add_path(&at, buf);
  snprintf(buf, sizeof buf, "%s/../../../..%s/secret", rw, outside); add_path(&at, buf);
  add_path(&at, "../../../../../../etc/passwd");
  /* A name that crosses from the first page into the second (both mapped). */
  at = strings + PAGE - 3;
  add_path(&at, "f0-crossing");
  /* A long name (more than NAME_MAX, less than PATH_MAX). */
  at = strings + PAGE + 64;
  memset(at, 'a', 300);
  at[300] = 0;
  paths[npaths++] = (uint64_t)at;
  /* A name with no NUL before the unmapped page, and one that is the page's last byte. */
  memset(strings + 2 * PAGE - 16, 'b', 16);
  paths[npaths++] = (uint64_t)(strings + 2 * PAGE - 16);
  paths[npaths++] = (uint64_t)(strings + 2 * PAGE - 1);
  mprotect(strings, 2 * PAGE, PROT_READ);
  mprotect(ropage, PAGE, PROT_READ);
}

static uint64_t ptr(void) {
  uint64_t s = (uint64_t)scratch, r = (uint64_t)ropage;
  const uint64_t pool[] = {
    s, s + 8, s + rnd() % SCRATCH_LEN, s + SCRATCH_LEN - 1, s + SCRATCH_LEN - 8, s + SCRATCH_LEN - 16,
    s + SCRATCH_LEN, s + SCRATCH_LEN + PAGE, s - 1, r, r + PAGE - 1, r + PAGE - 8, (uint64_t)&setup,
    (uint64_t)strings + 2 * PAGE - 4, 0, 1, 0xfff, 0x1000, 0xffffffff80000000ull, 0xffffffff80020000ull,
    0xffff800000000000ull, 0xffff888000000000ull, 0x0000800000000000ull, 0x00007ffffffff000ull,
    0x00007fffffffffffull, 0x8000000000000000ull, 0xdead000000000000ull, ~0ull, ~0ull - 4095, rnd(),
  };
  return PICK(pool);
}

static uint64_t len(void) {
  const uint64_t pool[] = {0, 1, 2, 7, 8, 16, 24, 144, 4095, 4096, 4097, SCRATCH_LEN, SCRATCH_LEN + 1,
                           0x7ffff000, 0x7fffffff, 0x80000000, 0xffffffff, 1ull << 32, 1ull << 40,
                           ~0ull, ~0ull - 4095, 1ull << 63, rnd() & 0xffff, rnd()};
  return PICK(pool);
}

static uint64_t fd(void) {
  const uint64_t pool[] = {(uint64_t)-1, 0, 1, 2, 3, 3 + rnd() % 12, 3 + rnd() % 12, 3 + rnd() % 12, 100, 1023,
                           1024, 1u << 20, 0x7fffffff, 0x100000003ull, (uint64_t)-100 /* AT_FDCWD */, rnd()};
  return PICK(pool);
}

static uint64_t path(void) { return rnd() % 8 ? paths[rnd() % npaths] : ptr(); }

static uint64_t flags(void) {
  const uint64_t pool[] = {0, O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_CREAT, O_WRONLY | O_CREAT | O_TRUNC,
                           O_RDONLY | O_DIRECTORY, O_PATH, O_CREAT | O_EXCL | O_RDWR, O_APPEND | O_WRONLY,
                           O_NOFOLLOW, O_TMPFILE | O_RDWR, 0x100 /* AT_SYMLINK_NOFOLLOW */, 0x200, 0x1000,
                           rnd() & 0xffffffff, rnd()};
  return PICK(pool);
}

static uint64_t mode(void) {
  const uint64_t pool[] = {0, 0644, 0755, 0777, 04755, 06777, 07777, 01777, rnd() & 0xffff, rnd()};
  return PICK(pool);
}

static uint64_t offset(void) {
  const uint64_t pool[] = {0, 1, 4096, 1ull << 31, 1ull << 40, (uint64_t)-1, 1ull << 63, rnd() & 0xfffff};
  return PICK(pool);
}

static uint64_t small(void) { return rnd() % 8 ? rnd() % 64 : rnd(); }

static uint64_t any(void) {
  switch (rnd() % 7) {
  case 0: return ptr();
  case 1: return len();
  case 2: return fd();
  case 3: return path();
  case 4: return flags();
  case 5: return small();
  default: return rnd();
  }
}

/* Argument kinds: f fd, p pointer, l length, s path, i flags, m mode, o offset, n small number,
 * x anything. */
struct call { long nr; const char *sig; };
static const struct call calls[] = {
  {SYS_read, "fpl"}, {SYS_write, "fpl"}, {SYS_open, "sim"}, {SYS_close, "f"}, {SYS_stat, "sp"},
  {SYS_fstat, "fp"}, {SYS_lstat, "sp"}, {SYS_poll, "pn"}, {SYS_lseek, "fon"}, {SYS_mmap, "plnnfo"},
  {SYS_mprotect, "pln"}, {SYS_munmap, "pl"}, {SYS_rt_sigaction, "npp"}, {SYS_rt_sigprocmask, "nppl"},
  {SYS_ioctl, "fxp"}, {SYS_pread64, "fplo"}, {SYS_pwrite64, "fplo"}, {SYS_readv, "fpn"}, {SYS_writev, "fpn"},
  {SYS_access, "sn"}, {SYS_pipe2, "pi"}, {SYS_select, "nppp"}, {SYS_sched_yield, ""}, {SYS_madvise, "pln"},
  {SYS_dup, "f"}, {SYS_dup2, "ff"}, {SYS_getpid, ""}, {SYS_sendfile, "ffpl"}, {SYS_uname, "p"},
  {SYS_fcntl, "fnx"}, {SYS_flock, "fn"}, {SYS_fsync, "f"}, {SYS_fdatasync, "f"}, {SYS_truncate, "so"},
  {SYS_ftruncate, "fo"}, {SYS_getcwd, "pl"}, {SYS_chdir, "s"}, {SYS_fchdir, "f"}, {SYS_rename, "ss"},
  {SYS_mkdir, "sm"}, {SYS_rmdir, "s"}, {SYS_creat, "sm"}, {SYS_link, "ss"}, {SYS_unlink, "s"},
  {SYS_symlink, "ss"}, {SYS_readlink, "spl"}, {SYS_chmod, "sm"}, {SYS_fchmod, "fm"}, {SYS_chown, "snn"},
  {SYS_fchown, "fnn"}, {SYS_lchown, "snn"}, {SYS_umask, "m"}, {SYS_gettimeofday, "pp"},
  {SYS_getrlimit, "np"}, {SYS_getrusage, "np"}, {SYS_sysinfo, "p"}, {SYS_times, "p"}, {SYS_getuid, ""},
  {SYS_setuid, "n"}, {SYS_setgid, "n"}, {SYS_sigaltstack, "pp"}, {SYS_statfs, "sp"}, {SYS_fstatfs, "fp"},
  {SYS_prctl, "nxxxx"}, {SYS_setrlimit, "np"}, {SYS_getdents64, "fpl"}, {SYS_set_tid_address, "p"},
  {SYS_clock_gettime, "np"}, {SYS_clock_getres, "np"}, {SYS_openat, "fsim"}, {SYS_mkdirat, "fsm"},
  {SYS_fchownat, "fsnni"}, {SYS_newfstatat, "fspi"}, {SYS_unlinkat, "fsi"}, {SYS_renameat, "fsfs"},
  {SYS_linkat, "fsfsi"}, {SYS_symlinkat, "sfs"}, {SYS_readlinkat, "fspl"}, {SYS_fchmodat, "fsmi"},
  {SYS_faccessat, "fsni"}, {SYS_pselect6, "npppp"}, {SYS_ppoll, "pnpp"}, {SYS_utimensat, "fspi"},
  {SYS_dup3, "ffi"}, {SYS_preadv, "fpno"}, {SYS_pwritev, "fpno"}, {SYS_prlimit64, "nnpp"},
  {SYS_syncfs, "f"}, {SYS_getcpu, "ppp"}, {SYS_renameat2, "fsfsn"}, {SYS_getrandom, "pln"},
  {SYS_statx, "fsinp"}, {SYS_close_range, "ffn"}, {SYS_faccessat2, "fsni"}, {SYS_copy_file_range, "fpfpln"},
  {SYS_fallocate, "fnoo"}, {SYS_getdents64, "fpl"}, {SYS_read, "fpl"}, {SYS_write, "fpl"}, {SYS_openat, "fsim"},
  {SYS_ioctl, "fxp"}, {SYS_fcntl, "fnx"}, {SYS_lseek, "fon"}, {SYS_futex, "pnnppn"}, {SYS_wait4, "npnp"},
  {SYS_timerfd_create, "ni"}, {SYS_timerfd_settime, "fipp"}, {SYS_timerfd_gettime, "fp"},
  {SYS_set_robust_list, "pl"}, {SYS_get_robust_list, "npp"},
  {SYS_preadv2, "fpnonx"}, {SYS_pwritev2, "fpnonx"}, {SYS_splice, "fpfpli"}, {SYS_tee, "ffli"},
  {SYS_vmsplice, "fpni"}, {SYS_readahead, "fol"}, {SYS_sync_file_range, "fooi"}, {SYS_mincore, "plp"},
  {SYS_membarrier, "nn"}, {SYS_sendmmsg, "fpni"}, {SYS_recvmmsg, "fpnip"}, {SYS_process_vm_readv, "npnpnn"},
  {SYS_process_vm_writev, "npnpnn"}, {SYS_chroot, "s"}, {SYS_mount, "sssnp"}, {SYS_iopl, "n"}, {SYS_ioperm, "lln"},
  {SYS_mq_open, "simp"}, {SYS_mq_unlink, "s"}, {SYS_mq_timedsend, "fplnp"}, {SYS_mq_timedreceive, "fplpp"},
  {SYS_mq_notify, "fp"}, {SYS_mq_getsetattr, "fpp"}, {SYS_ptrace, "xnpp"},
  {334, "xxxx"}, {460, "xxx"}, {1000, "x"}, {0x40000000 + SYS_getpid, ""},
};

static uint64_t arg(char kind) {
  if (rnd() % 10 == 0) return any();
  switch (kind) {
  case 'f': return fd();
  case 'p': return ptr();
  case 'l': return len();
  case 's': return path();
  case 'i': return flags();
  case 'm': return mode();
  case 'o': return offset();
  case 'n': return small();
  default: return any();
  }
}

int main(int argc, char **argv) {
  if (argc < 6) return 2;
  state = strtoull(argv[1], 0, 0) * 0x9e3779b97f4a7c15ull + 1;
  long count = atol(argv[2]);
  setup(argv[3], argv[4], argv[5]);
  /* A write, splice or tee into a pipe with no reader is EPIPE, not the end of the program. */
  signal(SIGPIPE, SIG_IGN);
  if (chdir(argv[3]) < 0) return 4;
  uint64_t s = (uint64_t)scratch;
  const size_t ncalls = sizeof calls / sizeof calls[0];
  for (long i = 0; i < count; i++) {
    const struct call *c = &calls[rnd() % ncalls];
    uint64_t a[6];
    for (int k = 0; k < 6; k++) a[k] = c->sig[k] ? arg(c->sig[k]) : (rnd() % 4 ? 0 : any());
    switch (c->nr) {
    case SYS_mmap: /* never over the program itself */
      a[3] &= ~(uint64_t)(MAP_FIXED | MAP_FIXED_NOREPLACE);
      break;
    case SYS_munmap: case SYS_mprotect: case SYS_madvise: /* only the scratch pages */
      a[0] = s + (rnd() % SCRATCH_PAGES) * PAGE;
      if (a[1] > SCRATCH_LEN) a[1] = rnd() % (SCRATCH_LEN + 1);
      if (c->nr == SYS_mprotect) a[2] &= PROT_READ | PROT_WRITE;
      break;
    case SYS_pipe2: case SYS_fcntl: /* no descriptor that could make a read or write wait forever */
      if (c->nr == SYS_pipe2) a[1] |= O_NONBLOCK;
      else if (a[1] == F_SETFL) a[2] |= O_NONBLOCK;
      else if (a[1] == F_SETLKW || a[1] == F_OFD_SETLKW) a[1] = F_GETFL;
      break;
    case SYS_timerfd_create: a[1] |= O_NONBLOCK; break; /* TFD_NONBLOCK: a read never waits */
    case SYS_mq_open: a[1] |= O_NONBLOCK; break; /* a queue's send and receive never wait */
    case SYS_ptrace: { /* real requests mostly; the pid is the fuzzer's own or nobody's (it has no tracee) */
      static const uint64_t reqs[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 16, 17, 24, 0x4200, 0x4201, 0x4202,
                                      0x4203, 0x4204, 0x4205, 0x4206, 0x4207, 0x4208, 0x420a, 0x420b, 0x420e};
      if (rnd() % 4) a[0] = PICK(reqs);
      break;
    }
    case SYS_mq_getsetattr: a[1] = 0; break; /* nor after mq_setattr */
    case SYS_poll: a[2] = 0; break;
    case SYS_ppoll: a[2] = (uint64_t)zerots; break;
    case SYS_select: case SYS_pselect6: a[4] = (uint64_t)zerots; break;
    case SYS_futex: a[1] = 1; /* FUTEX_WAKE: never a wait */ break;
    case SYS_wait4: a[2] |= 1; /* WNOHANG */ break;
    case SYS_rt_sigprocmask: a[0] = rnd() % 3; break;
    case SYS_rt_sigaction: if (a[0] == SIGPIPE) a[0] = SIGURG; break; /* SIGPIPE stays ignored */
    case SYS_prctl: if (a[0] == 22 /* PR_SET_SECCOMP */) a[0] = 16; break;
    case SYS_setrlimit: case SYS_prlimit64: { /* RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_AS become RLIMIT_CORE */
      uint64_t *r = &a[c->nr == SYS_setrlimit ? 0 : 1];
      if (*r == 0 || *r == 1 || *r == 9) *r = 4;
      break;
    }
    }
    syscall(c->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
  char msg[64];
  int n = snprintf(msg, sizeof msg, "fuzz: %ld calls done\n", count);
  if (write(2, msg, (size_t)n) < 0) { /* stderr may be closed by now */ }
  _exit(0);
}
