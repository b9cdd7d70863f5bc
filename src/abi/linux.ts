// Linux x86-64 ABI constants: system-call numbers, errno values, flags and struct layouts.

export const SYS = {
  read: 0, write: 1, open: 2, close: 3, stat: 4, fstat: 5, lstat: 6, poll: 7, lseek: 8, mmap: 9,
  mprotect: 10, munmap: 11, brk: 12, rt_sigaction: 13, rt_sigprocmask: 14, rt_sigreturn: 15, ioctl: 16,
  pread64: 17, pwrite64: 18, readv: 19, writev: 20, access: 21, pipe: 22, select: 23, sched_yield: 24,
  mremap: 25, msync: 26, mincore: 27, madvise: 28, dup: 32, dup2: 33, pause: 34, nanosleep: 35,
  getitimer: 36, alarm: 37, setitimer: 38, getpid: 39, sendfile: 40, socket: 41, connect: 42,
  accept: 43, sendto: 44, recvfrom: 45, sendmsg: 46, recvmsg: 47, shutdown: 48, bind: 49, listen: 50,
  getsockname: 51, getpeername: 52, socketpair: 53, setsockopt: 54, getsockopt: 55, accept4: 288,
  clone: 56, fork: 57, vfork: 58, execve: 59, exit: 60, wait4: 61, kill: 62, uname: 63, fcntl: 72,
  flock: 73, fsync: 74, fdatasync: 75, truncate: 76, ftruncate: 77, getdents: 78, getcwd: 79, chdir: 80,
  fchdir: 81, rename: 82, mkdir: 83, rmdir: 84, creat: 85, link: 86, unlink: 87, symlink: 88,
  readlink: 89, chmod: 90, fchmod: 91, chown: 92, fchown: 93, lchown: 94, umask: 95, gettimeofday: 96,
  getrlimit: 97, getrusage: 98, sysinfo: 99, times: 100, ptrace: 101, getuid: 102, getgid: 104, setuid: 105,
  setgid: 106, geteuid: 107, getegid: 108, setpgid: 109, getppid: 110, getpgrp: 111, setsid: 112,
  getgroups: 115, getpgid: 121, getsid: 124, capget: 125, capset: 126, rt_sigpending: 127, rt_sigtimedwait: 128,
  rt_sigqueueinfo: 129, rt_sigsuspend: 130, sigaltstack: 131, utime: 132, statfs: 137, fstatfs: 138, getpriority: 140, setpriority: 141,
  sched_setparam: 142, sched_getparam: 143, sched_setscheduler: 144, sched_getscheduler: 145,
  sched_get_priority_max: 146, sched_get_priority_min: 147, sched_rr_get_interval: 148, mlock: 149,
  munlock: 150, mlockall: 151, munlockall: 152, prctl: 157, arch_prctl: 158,
  setrlimit: 160, sync: 162, gettid: 186, tkill: 200, time: 201, futex: 202, sched_setaffinity: 203,
  sched_getaffinity: 204, getdents64: 217, set_tid_address: 218, fadvise64: 221, timer_create: 222, timer_settime: 223, timer_gettime: 224,
  timer_getoverrun: 225, timer_delete: 226, clock_gettime: 228,
  clock_getres: 229, clock_nanosleep: 230, exit_group: 231, tgkill: 234, utimes: 235, openat: 257,
  mkdirat: 258, fchownat: 260, futimesat: 261, newfstatat: 262, unlinkat: 263, renameat: 264,
  linkat: 265, symlinkat: 266, readlinkat: 267, fchmodat: 268, faccessat: 269, pselect6: 270,
  ppoll: 271, set_robust_list: 273, get_robust_list: 274, utimensat: 280, fallocate: 285, dup3: 292,
  pipe2: 293, preadv: 295, pwritev: 296, rt_tgsigqueueinfo: 297, prlimit64: 302, getcpu: 309, renameat2: 316, getrandom: 318,
  memfd_create: 319, mlock2: 325, statx: 332, rseq: 334, clone3: 435, close_range: 436, openat2: 437,
  faccessat2: 439,
  setreuid: 113, setregid: 114, setgroups: 116, setresuid: 117, getresuid: 118, setresgid: 119,
  setxattr: 188, lsetxattr: 189, fsetxattr: 190, getxattr: 191, lgetxattr: 192, fgetxattr: 193,
  listxattr: 194, llistxattr: 195, flistxattr: 196, removexattr: 197, lremovexattr: 198, fremovexattr: 199,
  getresgid: 120, setfsuid: 122, setfsgid: 123, mknod: 133, mknodat: 259, syncfs: 306,
  copy_file_range: 326, waitid: 247, execveat: 322, epoll_create: 213, epoll_ctl: 233, epoll_wait: 232,
  epoll_create1: 291, epoll_pwait: 281, epoll_pwait2: 441, signalfd: 282, eventfd: 284, signalfd4: 289, eventfd2: 290,
  timerfd_create: 283, timerfd_settime: 286, timerfd_gettime: 287,
  inotify_init: 253, inotify_add_watch: 254, inotify_rm_watch: 255, inotify_init1: 294,
  pidfd_send_signal: 424, pidfd_open: 434, pidfd_getfd: 438, ioprio_set: 251, ioprio_get: 252,
  personality: 135, sched_setattr: 314, sched_getattr: 315,
  shmget: 29, shmat: 30, shmctl: 31, shmdt: 67,
  semget: 64, semop: 65, semctl: 66, semtimedop: 220, msgget: 68, msgsnd: 69, msgrcv: 70, msgctl: 71,
  pkey_mprotect: 329, pkey_alloc: 330, pkey_free: 331,
  unshare: 272, set_mempolicy: 238, get_mempolicy: 239, clock_settime: 227, settimeofday: 164,
  preadv2: 327, pwritev2: 328, readahead: 187, sync_file_range: 277, splice: 275, tee: 276, vmsplice: 278,
  membarrier: 324, sendmmsg: 307, recvmmsg: 299, process_vm_readv: 310, process_vm_writev: 311,
  chroot: 161, mount: 165, umount2: 166, pivot_root: 155, swapon: 167, swapoff: 168, reboot: 169,
  sethostname: 170, setdomainname: 171, iopl: 172, ioperm: 173, init_module: 175, finit_module: 313,
  perf_event_open: 298, bpf: 321, fanotify_init: 300, open_by_handle_at: 304, setns: 308, userfaultfd: 323,
  seccomp: 317, mq_open: 240, mq_unlink: 241, mq_timedsend: 242, mq_timedreceive: 243, mq_notify: 244, mq_getsetattr: 245,
  delete_module: 176, kexec_load: 246, kexec_file_load: 320, acct: 163, quotactl: 179, vhangup: 153, syslog: 103,
} as const;

/** clone's, clone3's and unshare's flags for new namespaces (CLONE_NEWNS ... CLONE_NEWNET); CLONE_NEWTIME (0x80) is unshare's and clone3's only. */
export const CLONE_NAMESPACES = 0x20000n | 0x2000000n | 0x4000000n | 0x8000000n | 0x10000000n | 0x20000000n | 0x40000000n;
export const CLONE_NEWTIME = 0x80n;

/** Reverse map for traces. */
export const SYSCALL_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SYS).map(([k, v]) => [v, k]));

export const E = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9, ECHILD: 10,
  EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19,
  ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25, EFBIG: 27, ENOSPC: 28,
  ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38,
  ENOTEMPTY: 39, ELOOP: 40, ENOMSG: 42, EIDRM: 43, ENODATA: 61, EOVERFLOW: 75, EOPNOTSUPP: 95, ETIMEDOUT: 110,
  ENOTSOCK: 88, EPROTONOSUPPORT: 93, ESOCKTNOSUPPORT: 94, EAFNOSUPPORT: 97, EISCONN: 106, ENOTCONN: 107, EADDRINUSE: 98, ECONNREFUSED: 111, EADDRNOTAVAIL: 99, ENETUNREACH: 101, EDESTADDRREQ: 89, ENOPROTOOPT: 92, EMSGSIZE: 90, ENOBUFS: 105, ETOOMANYREFS: 109, EINPROGRESS: 115,
} as const;

/** A system call failed with errno. Thrown inside handlers; the dispatcher turns it into -errno. */
export class Errno extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

export const O = {
  RDONLY: 0, WRONLY: 1, RDWR: 2, ACCMODE: 3, CREAT: 0o100, EXCL: 0o200, NOCTTY: 0o400, TRUNC: 0o1000,
  APPEND: 0o2000, NONBLOCK: 0o4000, DSYNC: 0o10000, DIRECT: 0o40000, LARGEFILE: 0o100000,
  DIRECTORY: 0o200000, NOFOLLOW: 0o400000, NOATIME: 0o1000000, CLOEXEC: 0o2000000, PATH: 0o10000000,
  TMPFILE: 0o20200000,
} as const;

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_EMPTY_PATH = 0x1000;

/** RLIMIT_MSGQUEUE's default: the bytes all of a user's POSIX message queues may take. */
export const MQ_BYTES_MAX = 819200;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_IFBLK = 0o060000;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_FIXED_NOREPLACE = 0x100000;

export const ARCH_SET_GS = 0x1001;
export const ARCH_SET_FS = 0x1002;
export const ARCH_GET_FS = 0x1003;
export const ARCH_GET_GS = 0x1004;

export const SIG = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGXCPU: 24, SIGXFSZ: 25, SIGWINCH: 28 } as const;
export const SIGNAL_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SIG).map(([k, v]) => [v, k]));

// auxv keys
export const AT = {
  NULL: 0, PHDR: 3, PHENT: 4, PHNUM: 5, PAGESZ: 6, BASE: 7, FLAGS: 8, ENTRY: 9, UID: 11, EUID: 12,
  GID: 13, EGID: 14, PLATFORM: 15, HWCAP: 16, CLKTCK: 17, SECURE: 23, RANDOM: 25, HWCAP2: 26,
  EXECFN: 31, SYSINFO_EHDR: 33, MINSIGSTKSZ: 51,
} as const;

/** struct stat (x86-64), 144 bytes. */
export const STAT_SIZE = 144;
export const STAT = {
  dev: 0, ino: 8, nlink: 16, mode: 24, uid: 28, gid: 32, rdev: 40, size: 48, blksize: 56, blocks: 64,
  atime: 72, mtime: 88, ctime: 104,
} as const;

export const TCGETS = 0x5401;
export const TCSETS = 0x5402;
export const TCSETSW = 0x5403;
export const TCSETSF = 0x5404;
export const TCSBRK = 0x5409;
export const TCXONC = 0x540a;
export const TCFLSH = 0x540b;
export const TIOCGWINSZ = 0x5413;
export const TIOCGPGRP = 0x540f;
export const TIOCSPGRP = 0x5410;
export const TIOCGSID = 0x5429;
export const FIONREAD = 0x541b;
export const TIOCSWINSZ = 0x5414;
export const TIOCSCTTY = 0x540e;
export const TIOCNOTTY = 0x5422;
export const TIOCOUTQ = 0x5411;
export const TIOCGPTN = 0x80045430;
export const TIOCSPTLCK = 0x40045431;
export const TIOCGPTLCK = 0x80045439;
export const TIOCGPTPEER = 0x5441;
export const FIONBIO = 0x5421;

/** ptrace(2): the requests kvmbox serves, and the options and events of <linux/ptrace.h>. */
export const PTRACE = {
  TRACEME: 0, PEEKTEXT: 1, PEEKDATA: 2, PEEKUSER: 3, POKETEXT: 4, POKEDATA: 5, POKEUSER: 6, CONT: 7, KILL: 8,
  SINGLESTEP: 9, GETREGS: 12, SETREGS: 13, GETFPREGS: 14, SETFPREGS: 15, ATTACH: 16, DETACH: 17, SYSCALL: 24,
  SETOPTIONS: 0x4200, GETEVENTMSG: 0x4201, GETSIGINFO: 0x4202, SETSIGINFO: 0x4203, GETREGSET: 0x4204, SETREGSET: 0x4205,
  SEIZE: 0x4206, INTERRUPT: 0x4207, LISTEN: 0x4208, GETSIGMASK: 0x420a, SETSIGMASK: 0x420b, GET_SYSCALL_INFO: 0x420e,
} as const;
export const PTRACE_O = {
  TRACESYSGOOD: 1, TRACEFORK: 2, TRACEVFORK: 4, TRACECLONE: 8, TRACEEXEC: 0x10, TRACEVFORKDONE: 0x20, TRACEEXIT: 0x40,
  TRACESECCOMP: 0x80, EXITKILL: 0x100000, SUSPEND_SECCOMP: 0x200000,
} as const;
export const PTRACE_EVENT = { FORK: 1, VFORK: 2, CLONE: 3, EXEC: 4, VFORK_DONE: 5, EXIT: 6, SECCOMP: 7, STOP: 128 } as const;
/** SIGCHLD's si_code for a ptrace stop, reported to the tracer. */
export const CLD_TRAPPED = 4;
