/* System V message queues, semaphores and shared memory between processes: msgget, msgsnd, msgrcv (by type,
 * MSG_EXCEPT, MSG_NOERROR, MSG_COPY, waiting), msgctl (IPC_STAT, IPC_SET, IPC_RMID, IPC_INFO);
 * semget, semop, semtimedop (waiting for a value and for zero, IPC_NOWAIT, SEM_UNDO), semctl
 * (GETVAL, SETVAL, GETALL, SETALL, GETPID, GETNCNT, GETZCNT, IPC_STAT, IPC_RMID); shmget, shmat
 * (anywhere, at an address, SHM_RND, SHM_REMAP), shmdt, shmctl (nattch across fork, IPC_RMID of an
 * attached segment); waiters of a removed object get EIDRM; Linux's errors. Keys are the process's own (or IPC_PRIVATE), and
 * only what does not depend on other objects of the system is printed, so the output compares
 * with a native run. Lines that depend on privilege (root passes permission checks) start with
 * "priv:". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun { int val; struct semid_ds *buf; unsigned short *array; };

struct msg { long type; char text[64]; };

static const char *res(long r) {
  static char buf[24];
  if (r >= 0) { snprintf(buf, sizeof buf, "%ld", r); return buf; }
  switch (errno) {
    case EINVAL: return "EINVAL"; case ENOENT: return "ENOENT"; case EEXIST: return "EEXIST";
    case EAGAIN: return "EAGAIN"; case ENOMSG: return "ENOMSG"; case E2BIG: return "E2BIG";
    case EIDRM: return "EIDRM"; case ERANGE: return "ERANGE"; case EFBIG: return "EFBIG";
    case EACCES: return "EACCES"; case EPERM: return "EPERM"; case EINTR: return "EINTR";
    case ENOSYS: return "ENOSYS";
    default: return "other";
  }
}

static long snd(int q, long type, const char *text, int flags) {
  struct msg m = { .type = type };
  strncpy(m.text, text, sizeof m.text - 1);
  return msgsnd(q, &m, strlen(text), flags);
}

static void rcv(const char *what, int q, size_t max, long type, int flags) {
  struct msg m;
  memset(&m, 0, sizeof m);
  long n = msgrcv(q, &m, max, type, flags);
  if (n < 0) printf("%s: %s\n", what, res(n));
  else printf("%s: type %ld \"%.*s\"\n", what, m.type, (int)n, m.text);
}

/* Wait until GETNCNT or GETZCNT of a semaphore is n (another process is blocked on it). */
static void await_waiters(int s, int num, int cmd, int n) {
  for (int i = 0; i < 2000 && semctl(s, num, cmd) != n; i++) usleep(5000);
}

static void messages(key_t key) {
  int q = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
  printf("msgget create: %s\n", q >= 0 ? "ok" : res(q));
  printf("msgget again, exclusive: %s\n", res(msgget(key, IPC_CREAT | IPC_EXCL | 0600)));
  printf("msgget again: %s\n", msgget(key, 0) == q ? "same id" : "other");
  printf("msgget missing key: %s\n", res(msgget(key + 1, 0600)));
  struct msqid_ds ds;
  msgctl(q, IPC_STAT, &ds);
  printf("new: qnum %lu cbytes %lu qbytes %lu mode %o lspid %d\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
         (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777, ds.msg_lspid);

  snd(q, 3, "three", 0);
  snd(q, 1, "one", 0);
  snd(q, 2, "two", 0);
  snd(q, 1, "one again", 0);
  msgctl(q, IPC_STAT, &ds);
  printf("after 4 sends: qnum %lu cbytes %lu lspid self %d\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes, ds.msg_lspid == getpid());
  rcv("copy of #1", q, 64, 1, IPC_NOWAIT | MSG_COPY);
  rcv("copy of #9", q, 64, 9, IPC_NOWAIT | MSG_COPY);
  printf("MSG_COPY without IPC_NOWAIT: %s\n", res(msgrcv(q, &(struct msg){0}, 64, 0, MSG_COPY)));
  rcv("type 2", q, 64, 2, 0);
  rcv("type -2 (lowest up to 2)", q, 64, -2, 0);
  rcv("except type 1", q, 64, 1, MSG_EXCEPT);
  rcv("too small", q, 3, 0, 0);
  rcv("truncated", q, 3, 0, MSG_NOERROR);
  rcv("empty, IPC_NOWAIT", q, 64, 0, IPC_NOWAIT);
  printf("msgsnd type 0: %s\n", res(snd(q, 0, "x", 0)));
  printf("msgsnd 9000 bytes: %s\n", res(msgsnd(q, &(struct msg){ .type = 1 }, 9000, 0)));

  /* A smaller queue, filled: IPC_NOWAIT is EAGAIN; a waiting sender goes on once a reader takes one. */
  ds.msg_qbytes = 10;
  ds.msg_perm.mode = 0640;
  printf("IPC_SET: %s\n", res(msgctl(q, IPC_SET, &ds)));
  msgctl(q, IPC_STAT, &ds);
  printf("now qbytes %lu mode %o\n", (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777);
  snd(q, 1, "12345678", 0);
  printf("full, IPC_NOWAIT: %s\n", res(snd(q, 1, "abc", IPC_NOWAIT)));
  pid_t c = fork();
  if (c == 0) { _exit(snd(q, 5, "late", 0) == 0 ? 0 : 1); }
  usleep(100000);
  rcv("reader", q, 64, 0, 0);
  int st;
  waitpid(c, &st, 0);
  printf("blocked sender: %d\n", WEXITSTATUS(st));
  rcv("what it sent", q, 64, 0, 0);

  /* A reader waiting for type 7 gets it from a child; then one waiting when the queue goes: EIDRM. */
  c = fork();
  if (c == 0) { usleep(100000); _exit(snd(q, 7, "seven", 0) == 0 ? 0 : 1); }
  rcv("waited for type 7", q, 64, 7, 0);
  waitpid(c, &st, 0);
  c = fork();
  if (c == 0) {
    struct msg m;
    long n = msgrcv(q, &m, sizeof m.text, 0, 0);
    printf("child waiting when removed: %s\n", res(n));
    _exit(0);
  }
  usleep(200000);
  long r = msgctl(q, IPC_RMID, NULL);
  waitpid(c, &st, 0);
  printf("IPC_RMID: %s\n", res(r));
  printf("msgsnd after IPC_RMID: %s\n", res(snd(q, 1, "x", 0)));
  struct msginfo info;
  msgctl(0, IPC_INFO, (struct msqid_ds *)&info);
  printf("IPC_INFO: msgmax %d msgmnb %d\n", info.msgmax, info.msgmnb);
}

static void semaphores(key_t key) {
  int s = semget(key, 3, IPC_CREAT | 0600);
  printf("semget: %s\n", s >= 0 ? "ok" : res(s));
  printf("semget, more than it has: %s\n", res(semget(key, 4, 0)));
  printf("semget, no semaphores: %s\n", res(semget(IPC_PRIVATE, 0, 0600)));
  struct semid_ds ds;
  semctl(s, 0, IPC_STAT, (union semun){ .buf = &ds });
  printf("nsems %lu mode %o\n", (unsigned long)ds.sem_nsems, ds.sem_perm.mode & 0777);
  printf("SETVAL 5: %s, GETVAL ", res(semctl(s, 0, SETVAL, (union semun){ .val = 5 })));
  printf("%d\n", semctl(s, 0, GETVAL));
  printf("SETVAL 40000: %s\n", res(semctl(s, 0, SETVAL, (union semun){ .val = 40000 })));
  printf("GETVAL of #3: %s\n", res(semctl(s, 3, GETVAL)));
  unsigned short all[3] = { 1, 2, 3 }, back[3] = { 0 };
  printf("SETALL: %s\n", res(semctl(s, 0, SETALL, (union semun){ .array = all })));
  semctl(s, 0, GETALL, (union semun){ .array = back });
  printf("GETALL: %u %u %u, GETPID self %d\n", back[0], back[1], back[2], semctl(s, 1, GETPID) == getpid());

  struct sembuf ops[2] = { { 0, -1, 0 }, { 1, 2, 0 } };
  printf("semop -1, +2: %s\n", res(semop(s, ops, 2)));
  semctl(s, 0, GETALL, (union semun){ .array = back });
  printf("now %u %u %u\n", back[0], back[1], back[2]);
  struct sembuf take2 = { 0, -2, IPC_NOWAIT };
  printf("take 2 of 0, IPC_NOWAIT: %s\n", res(semop(s, &take2, 1)));
  struct sembuf bad = { 5, 1, 0 };
  printf("semaphore #5: %s\n", res(semop(s, &bad, 1)));
  struct sembuf many[501];
  memset(many, 0, sizeof many);
  printf("501 operations: %s\n", res(semop(s, many, 501)));
  printf("no operations: %s\n", res(semop(s, many, 0)));
  struct sembuf big = { 2, 32767, 0 };
  printf("past SEMVMX: %s\n", res(semop(s, &big, 1)));
  struct timespec ts = { 0, 50 * 1000 * 1000 };
  take2.sem_flg = 0;
  printf("semtimedop, 50 ms: %s\n", res(semtimedop(s, &take2, 1, &ts)));
  ts.tv_nsec = 2000000000L;
  printf("semtimedop, bad timeout: %s\n", res(semtimedop(s, &take2, 1, &ts)));

  /* A child waits to take 2 of #0 (GETNCNT 1); the parent adds them. */
  pid_t c = fork();
  if (c == 0) { _exit(semop(s, &take2, 1) == 0 ? 0 : 1); }
  await_waiters(s, 0, GETNCNT, 1);
  printf("GETNCNT: %d\n", semctl(s, 0, GETNCNT));
  struct sembuf give = { 0, 2, 0 };
  semop(s, &give, 1);
  int st;
  waitpid(c, &st, 0);
  printf("waiting taker: %d, value %d, GETPID child %d\n", WEXITSTATUS(st), semctl(s, 0, GETVAL), semctl(s, 0, GETPID) == c);

  /* A child waits for #1 to be zero (GETZCNT 1). */
  c = fork();
  if (c == 0) { struct sembuf z = { 1, 0, 0 }; _exit(semop(s, &z, 1) == 0 ? 0 : 1); }
  await_waiters(s, 1, GETZCNT, 1);
  printf("GETZCNT: %d\n", semctl(s, 1, GETZCNT));
  semctl(s, 1, SETVAL, (union semun){ .val = 0 });
  waitpid(c, &st, 0);
  printf("zero waiter: %d\n", WEXITSTATUS(st));

  /* SEM_UNDO: a child takes 1 of #2 (3) and ends; its take is undone. */
  c = fork();
  if (c == 0) {
    struct sembuf u = { 2, -1, SEM_UNDO };
    semop(s, &u, 1);
    printf("child took one: %d\n", semctl(s, 2, GETVAL));
    _exit(0);
  }
  waitpid(c, &st, 0);
  printf("after its end: %d\n", semctl(s, 2, GETVAL));
  /* ...unless SETVAL came between. */
  c = fork();
  if (c == 0) {
    struct sembuf u = { 2, -1, SEM_UNDO };
    semop(s, &u, 1);
    semctl(s, 2, SETVAL, (union semun){ .val = 10 });
    _exit(0);
  }
  waitpid(c, &st, 0);
  printf("SETVAL forgets the undo: %d\n", semctl(s, 2, GETVAL));

  /* A waiter when the array goes: EIDRM. */
  c = fork();
  if (c == 0) {
    struct sembuf w = { 0, -100, 0 };
    long r = semop(s, &w, 1);
    printf("child waiting when removed: %s\n", res(r));
    _exit(0);
  }
  await_waiters(s, 0, GETNCNT, 1);
  long r = semctl(s, 0, IPC_RMID);
  waitpid(c, &st, 0);
  printf("IPC_RMID: %s\n", res(r));
  printf("semop after IPC_RMID: %s\n", res(semop(s, &give, 1)));

  /* Permissions: a read-only array may not be changed (root may). */
  int ro = semget(IPC_PRIVATE, 1, 0400);
  printf("priv: semop on a read-only array: %s\n", res(semop(ro, &give, 1)));
  printf("priv: GETVAL on it: %s\n", res(semctl(ro, 0, GETVAL)));
  semctl(ro, 0, IPC_RMID);
  struct seminfo si;
  semctl(0, 0, IPC_INFO, (union semun){ .buf = (struct semid_ds *)&si });
  printf("IPC_INFO: semmsl %d semopm %d semvmx %d\n", si.semmsl, si.semopm, si.semvmx);
}

static unsigned long nattch(int id) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) < 0) return 999;
  return (unsigned long)ds.shm_nattch;
}

static void shared(key_t key) {
  printf("shmget size 0: %s\n", res(shmget(IPC_PRIVATE, 0, 0600)));
  int id = shmget(key, 10000, IPC_CREAT | 0600);
  printf("shmget: %s\n", id >= 0 ? "ok" : res(id));
  printf("shmget, larger than it is: %s\n", res(shmget(key, 20000, 0)));
  struct shmid_ds ds;
  shmctl(id, IPC_STAT, &ds);
  printf("segsz %zu nattch %lu cpid self %d mode %o\n", ds.shm_segsz, (unsigned long)ds.shm_nattch, ds.shm_cpid == getpid(), ds.shm_perm.mode & 0777);
  char *a = shmat(id, NULL, 0);
  if (a == (char *)-1) { printf("shmat: %s\n", res(-1)); return; }
  printf("zero at first: %d, nattch %lu\n", a[0] == 0 && a[9999] == 0, nattch(id));
  strcpy(a, "hello");
  pid_t c = fork();
  if (c == 0) {
    printf("child sees \"%s\", nattch %lu\n", a, nattch(id));
    strcpy(a + 5000, "from the child");
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  printf("parent sees \"%s\", nattch %lu\n", a + 5000, nattch(id));
  char *b = shmat(id, NULL, SHM_RDONLY);
  printf("second attachment: nattch %lu, same bytes %d\n", nattch(id), strcmp(b, "hello") == 0);
  printf("shmdt inside it: %s\n", res(shmdt(a + 4096)));
  long r = shmdt(b);
  printf("shmdt: %s, nattch %lu\n", res(r), nattch(id));
  printf("shmdt again: %s\n", res(shmdt(b)));
  /* Where it was: at that address, with SHM_RND from inside its first page, and over a mapping only with SHM_REMAP. */
  char *c1 = shmat(id, b, 0);
  printf("at an address: %s\n", c1 == b ? "there" : "elsewhere");
  shmdt(c1);
  char *c2 = shmat(id, b + 100, SHM_RND);
  printf("SHM_RND: %s\n", c2 == b ? "rounded" : "elsewhere");
  printf("without SHM_RND: %s\n", res((long)shmat(id, b + 100, 0)));
  printf("over a mapping: %s\n", res((long)shmat(id, b, 0)));
  char *c3 = shmat(id, b, SHM_REMAP);
  printf("SHM_REMAP: %s, nattch %lu\n", c3 == b ? "there" : "elsewhere", nattch(id));
  shmdt(c3);
  /* IPC_RMID while attached: the key is free, the id lives until the last shmdt. */
  printf("IPC_RMID: %s\n", res(shmctl(id, IPC_RMID, NULL)));
  shmctl(id, IPC_STAT, &ds);
  printf("after: key %d, dest %d, nattch %lu, still \"%s\"\n", (int)ds.shm_perm.__key, (ds.shm_perm.mode & SHM_DEST) != 0,
         (unsigned long)ds.shm_nattch, a);
  printf("shmget of its key: %s\n", res(shmget(key, 0, 0)));
  shmdt(a);
  printf("after the last shmdt: %s\n", res(shmctl(id, IPC_STAT, &ds)));
  struct shminfo info;
  shmctl(0, IPC_INFO, (struct shmid_ds *)&info);
  printf("IPC_INFO: shmmin %lu\n", (unsigned long)info.shmmin);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  key_t key = 0x4b560000 | (getpid() & 0xffff);
  messages(key);
  semaphores(key);
  shared(key);
  return 0;
}
