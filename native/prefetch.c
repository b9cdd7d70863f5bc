/* A directory lister that works ahead on a thread of its own (src/fs/dir-cache.ts).
 *
 * A program walking a large read-only tree (find, ls -R) makes the host list directory after
 * directory: getdents64 and an lstat per entry, the same kernel work the program would do
 * natively. The host used to do it between two runs of the vCPU, so it added to the program's
 * time. A prefetcher walks the same tree depth first, in the order the program walks it (as
 * listed, or sorted by name), on its own thread, and keeps at most `window` bytes of listings
 * (counted as directory-cache bytes) that nobody has taken yet. The main thread takes a listing
 * by path; what it skipped over is dropped. A path the prefetcher has not listed is a miss, and
 * the caller lists it itself.
 *
 * What it reads: directories below one root, opened each relative to its parent with openat2
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, as the main thread does; a
 * listing is only handed out for the exact path it was made for. It holds at most one
 * descriptor per level of the walk (MAX_DEPTH) and no signal is delivered to its thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "helper.h"

#define MAX_DEPTH 64
/* What kvmbox_pf_take returns for a path the prefetcher does not have. */
#define PF_MISS (-100000L)

struct item {
  struct item *next;
  char *path;
  long rc;
  int64_t res[4];
  unsigned char *data; /* records, then stats at res[1] */
  unsigned long len;
  int64_t cost;
};

/* A directory on the walk's stack: its subdirectories' names, in the order they are visited. */
struct frame {
  int fd;
  char *path;
  char *names;       /* NUL-separated */
  unsigned long *at; /* offsets into names */
  unsigned long count, next;
};

struct kvmbox_pf {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t to_worker, to_main;
  int stop, finished;
  int root_fd;
  char *root_path, *resume;
  int sorted;
  uint32_t params[5]; /* as kvmbox_list_dir's: [0] set per directory, then the owner mapping */
  unsigned long cap;  /* the largest listing handed out (bytes of records and stats) */
  unsigned char *buf;
  struct item *head, *tail;
  int64_t ahead, window;
  const char *busy; /* the path being listed now, or NULL */
  long stats[3];    /* listed, taken, dropped */
};

static void free_item(struct item *it) {
  free(it->path);
  free(it->data);
  free(it);
}

static char *join(const char *dir, const char *name) {
  size_t d = strcmp(dir, "/") == 0 ? 0 : strlen(dir), n = strlen(name);
  char *p = malloc(d + 1 + n + 1);
  if (!p) return NULL;
  memcpy(p, dir, d);
  p[d] = '/';
  memcpy(p + d + 1, name, n + 1);
  return p;
}

static int by_name(const void *a, const void *b, void *names) {
  return strcmp((const char *)names + *(const unsigned long *)a, (const char *)names + *(const unsigned long *)b);
}

/* Collect the subdirectories of the getdents64 records rec[0, len) (stats: one per record, or
 * NULL to go by d_type, with lstat where the type is unknown). room: the bytes allocated for
 * names and for offsets, and the bytes of names used. */
static int add_names(struct frame *f, int fd, const unsigned char *rec, unsigned long len, const unsigned char *stats,
                     unsigned long *room) {
  unsigned long i = 0, used = room[2], off = 0;
  const char *name;
  unsigned name_len, reclen;
  for (; (reclen = dirent_at(rec, len, off, &name, &name_len)) != 0; i++) {
    unsigned char type = rec[off + DIRENT_TYPE];
    off += reclen;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
    int dir;
    if (stats) {
      dir = S_ISDIR(((const struct stat *)(stats + i * STAT_BYTES))->st_mode);
    } else if (type != DT_UNKNOWN) {
      dir = type == DT_DIR;
    } else {
      struct stat st;
      dir = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (!dir) continue;
    size_t n = name_len + 1;
    if ((f->count + 1) * sizeof *f->at > room[1]) {
      unsigned long *at = realloc(f->at, (room[1] = room[1] * 2 + 64 * sizeof *f->at));
      if (!at) return -1;
      f->at = at;
    }
    if (used + n > room[0]) {
      char *names = realloc(f->names, (room[0] = (room[0] + n) * 2 + 256));
      if (!names) return -1;
      f->names = names;
    }
    memcpy(f->names + used, name, n);
    f->at[f->count++] = used;
    used += n;
  }
  room[2] = used;
  return 0;
}

/* Fill f with its directory's subdirectories, in the order they are visited: from the listing
 * in pf->buf that res describes, or (res NULL: the listing did not fit, or there is none) by
 * reading the directory from its start. */
static int subdirs(struct kvmbox_pf *pf, struct frame *f, const int64_t *res) {
  unsigned long room[3] = {0, 0, 0};
  int r;
  if (res) {
    r = add_names(f, f->fd, pf->buf, (unsigned long)res[0], pf->buf + res[1], room);
  } else {
    if (lseek(f->fd, 0, SEEK_SET) < 0) return -1;
    r = 0;
    for (;;) {
      long n = syscall(SYS_getdents64, f->fd, pf->buf, pf->cap);
      if (n <= 0) break;
      if ((r = add_names(f, f->fd, pf->buf, (unsigned long)n, NULL, room)) < 0) break;
    }
  }
  if (r == 0 && pf->sorted && f->count > 1) {
    qsort_r(f->at, f->count, sizeof *f->at, by_name, f->names);
  }
  return r;
}

/* List directory fd (path) and publish the listing, after waiting for room in the window.
 * Returns kvmbox_list_dir's result (the listing stays in pf->buf), or PF_MISS when stopped. */
static long list_one(struct kvmbox_pf *pf, int fd, const char *path, int64_t *res) {
  pthread_mutex_lock(&pf->mu);
  while (!__atomic_load_n(&pf->stop, __ATOMIC_RELAXED) && pf->ahead > pf->window) pthread_cond_wait(&pf->to_worker, &pf->mu);
  if (__atomic_load_n(&pf->stop, __ATOMIC_RELAXED)) {
    pthread_mutex_unlock(&pf->mu);
    return PF_MISS;
  }
  pf->busy = path;
  pthread_mutex_unlock(&pf->mu);

  uint32_t params[5];
  memcpy(params, pf->params, sizeof params);
  params[0] = strcmp(path, "/") == 0 ? 0 : (uint32_t)strlen(path);
  long rc = kvmbox_list_dir(fd, pf->buf, pf->cap, params, res);
  struct item *it = calloc(1, sizeof *it);
  if (it) {
    it->path = strdup(path);
    it->rc = rc;
    memcpy(it->res, res, sizeof it->res);
    if (rc >= 0) {
      it->len = (unsigned long)res[1] + (unsigned long)rc * STAT_BYTES;
      it->data = malloc(it->len ? it->len : 1);
      if (it->data) memcpy(it->data, pf->buf, it->len);
      it->cost = res[2];
    }
    if (!it->path || (rc >= 0 && !it->data)) {
      free_item(it);
      it = NULL;
    }
  }
  pthread_mutex_lock(&pf->mu);
  pf->busy = NULL;
  if (it) {
    if (pf->tail) pf->tail->next = it;
    else pf->head = it;
    pf->tail = it;
    pf->ahead += it->cost;
    pf->stats[0]++;
  }
  pthread_cond_broadcast(&pf->to_main);
  pthread_mutex_unlock(&pf->mu);
  return rc;
}

static void drop(struct frame *f) {
  close(f->fd);
  free(f->path);
  free(f->names);
  free(f->at);
}

static const struct open_how how = {
  .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
  .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
};

/* Put on the stack the directories from the root down to where the walk resumes (pf->resume,
 * relative to the root): each is read for its subdirectories only, and the walk goes on after
 * the one it went down through. Returns the depth, or 0 when the way is not there. */
static int descend(struct kvmbox_pf *pf, struct frame *stack) {
  stack[0] = (struct frame){.fd = pf->root_fd, .path = strdup(pf->root_path)};
  pf->root_fd = -1; /* the stack's now */
  int depth = 1;
  for (const char *rest = pf->resume; *rest && stack[depth - 1].path;) {
    struct frame *f = &stack[depth - 1];
    const char *slash = strchrnul(rest, '/');
    char name[256];
    if ((size_t)(slash - rest) >= sizeof name || depth == MAX_DEPTH || subdirs(pf, f, NULL) < 0) break;
    memcpy(name, rest, (size_t)(slash - rest));
    name[slash - rest] = 0;
    rest = *slash ? slash + 1 : slash;
    while (f->next < f->count && strcmp(f->names + f->at[f->next], name) != 0) f->next++;
    if (f->next++ == f->count) break;
    int fd = (int)syscall(SYS_openat2, f->fd, name, &how, sizeof how);
    if (fd < 0) break;
    stack[depth++] = (struct frame){.fd = fd, .path = join(f->path, name)};
    if (!*rest) return stack[depth - 1].path ? depth : (drop(&stack[depth - 1]), depth - 1);
  }
  if (!pf->resume[0] && stack[0].path) return 1;
  while (depth > 0) drop(&stack[--depth]);
  return 0;
}

static void *walk(void *arg) {
  struct kvmbox_pf *pf = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  struct frame stack[MAX_DEPTH];
  int64_t res[4];

  int depth = descend(pf, stack);
  if (depth > 0) {
    /* Where the walk resumes: listed like those below it. */
    struct frame *top = &stack[depth - 1];
    long rc = list_one(pf, top->fd, top->path, res);
    if (rc == PF_MISS || (rc < 0 && rc != -ENOSPC) || subdirs(pf, top, rc >= 0 ? res : NULL) < 0) drop(&stack[--depth]);
  }
  while (depth > 0) {
    struct frame *f = &stack[depth - 1];
    if (f->next == f->count || __atomic_load_n(&pf->stop, __ATOMIC_RELAXED)) {
      drop(f);
      depth--;
      continue;
    }
    const char *name = f->names + f->at[f->next++];
    int fd = (int)syscall(SYS_openat2, f->fd, name, &how, sizeof how);
    if (fd < 0) continue;
    char *path = join(f->path, name);
    long rc = path ? list_one(pf, fd, path, res) : PF_MISS;
    /* At MAX_DEPTH frames the walk lists a directory but goes no deeper: what lies below it is
     * a miss, which the host lists itself (the stack is full, and so are the descriptors the
     * walk may hold). */
    if (depth == MAX_DEPTH || rc == PF_MISS || (rc < 0 && rc != -ENOSPC)) {
      close(fd);
      free(path);
      continue;
    }
    struct frame *c = &stack[depth];
    *c = (struct frame){.fd = fd, .path = path};
    if (subdirs(pf, c, rc >= 0 ? res : NULL) < 0) {
      drop(c);
      continue;
    }
    depth++;
  }
  pthread_mutex_lock(&pf->mu);
  pf->finished = 1;
  pthread_cond_broadcast(&pf->to_main);
  pthread_mutex_unlock(&pf->mu);
  return NULL;
}

/*
 * Start a prefetcher for the tree at directory fd (the guest path root_path), resuming a walk of
 * it at resume (a path relative to the root, "" for the root itself): that directory first, then
 * what is below it, then the later siblings of it and of each directory above it, up to the
 * root. fd is not taken (the prefetcher opens its own description of it). sorted: walk siblings in byte order of
 * their names, else as listed. params[1..4]: the owner mapping of kvmbox_list_dir. cap: the
 * largest listing to hand out. window: bytes of listings (directory-cache bytes) it may hold
 * untaken. Returns NULL on failure (errno set).
 */
struct kvmbox_pf *kvmbox_pf_start(int fd, const char *root_path, const char *resume, int sorted, const uint32_t *params, unsigned long cap,
                                  int64_t window) {
  struct kvmbox_pf *pf = calloc(1, sizeof *pf);
  if (!pf) return NULL;
  pf->root_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  pf->root_path = strdup(root_path);
  pf->resume = strdup(resume);
  pf->buf = malloc(cap);
  pf->cap = cap;
  pf->sorted = sorted;
  pf->window = window;
  memcpy(pf->params, params, sizeof pf->params);
  if (pf->root_fd < 0 || !pf->root_path || !pf->resume || !pf->buf) goto fail;
  pthread_mutex_init(&pf->mu, NULL);
  pthread_cond_init(&pf->to_worker, NULL);
  pthread_cond_init(&pf->to_main, NULL);
  int e = pthread_create(&pf->thread, NULL, walk, pf);
  if (e == 0) return pf;
  pthread_mutex_destroy(&pf->mu);
  pthread_cond_destroy(&pf->to_worker);
  pthread_cond_destroy(&pf->to_main);
  errno = e;
fail:
  e = errno;
  if (pf->root_fd >= 0) close(pf->root_fd);
  free(pf->root_path);
  free(pf->resume);
  free(pf->buf);
  free(pf);
  errno = e;
  return NULL;
}

/* Let the prefetcher hold up to window bytes of listings untaken. */
void kvmbox_pf_window(struct kvmbox_pf *pf, int64_t window) {
  pthread_mutex_lock(&pf->mu);
  pf->window = window;
  pthread_cond_broadcast(&pf->to_worker);
  pthread_mutex_unlock(&pf->mu);
}

/*
 * The listing of path, as kvmbox_list_dir(fd of path, out, cap, ..., res) would give it: from the
 * prefetcher, waiting if it is listing path right now or holds no listing yet. Listings made
 * before it are dropped. Returns
 * PF_MISS when the prefetcher has not listed path (or its listing is larger than cap).
 */
long kvmbox_pf_take(struct kvmbox_pf *pf, const char *path, unsigned char *out, unsigned long cap, int64_t *res) {
  pthread_mutex_lock(&pf->mu);
  for (;;) {
    struct item *it = pf->head;
    while (it && strcmp(it->path, path) != 0) it = it->next;
    if (it) {
      /* Drop what came before: the caller walks in the same order, so it went past those. */
      for (struct item *d = pf->head; d != it;) {
        struct item *next = d->next;
        pf->ahead -= d->cost;
        pf->stats[2]++;
        free_item(d);
        d = next;
      }
      pf->head = it->next;
      if (!pf->head) pf->tail = NULL;
      pf->ahead -= it->cost;
      pf->stats[1]++;
      pthread_cond_broadcast(&pf->to_worker);
      pthread_mutex_unlock(&pf->mu);
      long rc = it->rc;
      if (rc >= 0 && it->len > cap) rc = PF_MISS;
      else if (rc >= 0) memcpy(out, it->data, it->len);
      memcpy(res, it->res, sizeof it->res);
      free_item(it);
      return rc;
    }
    /* Wait while it lists path, or while it has nothing to show yet (it may be on its way there:
     * listing path here too would cost as much). */
    if (!(pf->busy && strcmp(pf->busy, path) == 0) && (pf->head || pf->finished)) break;
    pthread_cond_wait(&pf->to_main, &pf->mu);
  }
  pthread_mutex_unlock(&pf->mu);
  return PF_MISS;
}

/* Counts for tests and the bench: listed, taken, dropped. */
void kvmbox_pf_stats(struct kvmbox_pf *pf, int64_t *out) {
  pthread_mutex_lock(&pf->mu);
  for (int i = 0; i < 3; i++) out[i] = pf->stats[i];
  pthread_mutex_unlock(&pf->mu);
}

/* Stop the prefetcher (it finishes the listing in hand), and free it and what it holds. */
void kvmbox_pf_stop(struct kvmbox_pf *pf) {
  pthread_mutex_lock(&pf->mu);
  __atomic_store_n(&pf->stop, 1, __ATOMIC_RELAXED);
  pthread_cond_broadcast(&pf->to_worker);
  pthread_mutex_unlock(&pf->mu);
  pthread_join(pf->thread, NULL);
  for (struct item *it = pf->head; it;) {
    struct item *next = it->next;
    free_item(it);
    it = next;
  }
  if (pf->root_fd >= 0) close(pf->root_fd);
  pthread_mutex_destroy(&pf->mu);
  pthread_cond_destroy(&pf->to_worker);
  pthread_cond_destroy(&pf->to_main);
  free(pf->root_path);
  free(pf->resume);
  free(pf->buf);
  free(pf);
}
