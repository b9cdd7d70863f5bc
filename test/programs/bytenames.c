/* File names are bytes: names that are no valid UTF-8 reach the files they name, stay distinct
 * from each other (0xff and 0xfe, 0xff and U+FFFD), and come back byte for byte from readdir,
 * getcwd, readlink, getsockname, argv, the environment, /proc/self/cmdline and a script's #!
 * line. Run in an empty writable directory (argv[1]); prints one line per check, names in hex,
 * the same natively. `bytenames child ARG` prints what a child sees. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void hex(const char *label, const char *s, size_t n) {
  printf("%s:", label);
  for (size_t i = 0; i < n; i++) printf(" %02x", (unsigned char)s[i]);
  printf("\n");
}

static void put(const char *name, const char *text) {
  int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) { printf("create %s: failed\n", text); return; }
  if (write(fd, text, strlen(text)) < 0) printf("write %s: failed\n", text);
  close(fd);
}

static void get(const char *label, const char *name) {
  char buf[64] = { 0 };
  int fd = open(name, O_RDONLY);
  if (fd < 0) { printf("%s: open failed\n", label); return; }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  printf("%s: %s\n", label, n >= 0 ? buf : "(read failed)");
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void listing(const char *label) {
  DIR *d = opendir(".");
  char *names[32];
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) && n < 32) if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
  if (d) closedir(d);
  qsort(names, n, sizeof names[0], by_name);
  printf("%s: %d names\n", label, n);
  for (int i = 0; i < n; i++) { hex("  name", names[i], strlen(names[i])); free(names[i]); }
}

static int child(char **argv) {
  hex("child argv[1]", argv[1], strlen(argv[1]));
  const char *k = getenv("K");
  if (k) hex("child env K", k, strlen(k));
  char buf[256];
  int fd = open("/proc/self/cmdline", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
  if (fd >= 0) close(fd);
  /* Past argv[0] (the program's path differs between runs). */
  size_t skip = strlen(buf) + 1;
  if (n > 0) hex("child cmdline after argv[0]", buf + skip, (size_t)n - skip);
  return 0;
}

static void run_child(char *const argv[], char *const envp[]) {
  pid_t pid = fork();
  if (pid == 0) { execve(argv[0], argv, envp); printf("execve failed\n"); _exit(127); }
  int status;
  waitpid(pid, &status, 0);
  fflush(stdout);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && strcmp(argv[1], "child") == 0) return child(argv + 1);
  /* A script's interpreter gets [interp, arg, script]: argv[1] is "child". */
  if (argc > 3 && strcmp(argv[2], "child") != 0 && strncmp(argv[1], "child", 5) == 0) return child(argv);
  if (argc < 2 || chdir(argv[1]) != 0) { printf("usage: bytenames DIR\n"); return 2; }

  /* Two names Buffer's UTF-8 decoding made the same, and U+FFFD itself beside 0xff. */
  put("a\xff", "one");
  put("a\xfe", "two");
  put("a\xef\xbf\xbd", "three");
  put("\xc3\xa9t\xe9", "four");
  get("a ff", "a\xff");
  get("a fe", "a\xfe");
  get("a U+FFFD", "a\xef\xbf\xbd");
  get("c3 a9 74 e9", "\xc3\xa9t\xe9");
  listing("after create");

  struct stat st;
  int r = stat("a\xff", &st);
  printf("stat a ff: %s size %lld\n", r == 0 ? "ok" : "failed", (long long)st.st_size);
  printf("rename a ff -> b 80 c0: %s\n", rename("a\xff", "b\x80\xc0") == 0 ? "ok" : "failed");
  printf("a ff after: %s\n", access("a\xff", F_OK) == 0 ? "still there" : "gone");
  get("b 80 c0", "b\x80\xc0");
  printf("unlink a fe: %s\n", unlink("a\xfe") == 0 ? "ok" : "failed");

  printf("symlink: %s\n", symlink("t\xe9\xff", "l\xfd") == 0 ? "ok" : "failed");
  char link[64];
  ssize_t n = readlink("l\xfd", link, sizeof link);
  if (n >= 0) hex("readlink", link, (size_t)n);
  printf("lstat size: %lld\n", lstat("l\xfd", &st) == 0 ? (long long)st.st_size : -1LL);

  printf("mkdir d ff: %s\n", mkdir("d\xff", 0755) == 0 ? "ok" : "failed");
  printf("chdir: %s\n", chdir("d\xff") == 0 ? "ok" : "failed");
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) {
    const char *last = strrchr(cwd, '/');
    hex("getcwd's last name", last + 1, strlen(last + 1));
  }
  int pfd = open("/proc/self/cwd", O_PATH);
  printf("/proc/self/cwd opens: %s\n", pfd >= 0 ? "yes" : "no");
  char cl[4096];
  n = readlink("/proc/self/cwd", cl, sizeof cl - 1);
  if (n > 0) { cl[n] = 0; const char *last = strrchr(cl, '/'); hex("/proc/self/cwd's last name", last + 1, strlen(last + 1)); }
  printf("chdir ..: %s\n", chdir("..") == 0 ? "ok" : "failed");

  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  strcpy(sa.sun_path, "s\xff");
  printf("bind s ff: %s\n", bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 ? "ok" : "failed");
  struct sockaddr_un got;
  socklen_t len = sizeof got;
  if (getsockname(s, (struct sockaddr *)&got, &len) == 0) hex("getsockname", got.sun_path, strlen(got.sun_path));
  printf("the socket's name is in the directory: %s\n", lstat("s\xff", &st) == 0 && S_ISSOCK(st.st_mode) ? "yes" : "no");
  close(s);
  listing("after the changes");

  char self[4096];
  n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) { printf("no /proc/self/exe\n"); return 1; }
  self[n] = 0;
  char *cargv[] = { self, "child", "x\xff\xfe", "\xe2\x82", NULL };
  char *cenv[] = { "K=\xff\xc3\xa9", NULL };
  run_child(cargv, cenv);
  cargv[2] = NULL;

  /* A script whose #! line names an interpreter and an argument that are no UTF-8. */
  printf("interpreter link: %s\n", symlink(self, "i\xff") == 0 ? "ok" : "failed");
  char here[4096], script[8192];
  if (!getcwd(here, sizeof here)) return 1;
  snprintf(script, sizeof script, "#!%s/i\xff child\xfe\n", here);
  int fd = open("sc\xff", O_WRONLY | O_CREAT | O_EXCL, 0755);
  if (fd < 0 || write(fd, script, strlen(script)) < 0) return 1;
  close(fd);
  char *sargv[] = { "sc\xff", "z\xff", NULL };
  char *senv[] = { NULL };
  run_child(sargv, senv);
  return 0;
}
