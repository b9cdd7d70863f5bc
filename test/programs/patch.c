/* System-call sites the host may rewrite (src/guest/syscall-patch.ts), written in assembly so that
 * their bytes are the same under every libc. Prints whether each site's `syscall` is still in
 * memory, then checks that the calls behave. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* `syscall` followed by glibc's `cmp $-4095, %rax`: patchable. */
__attribute__((naked, noinline)) long site_plain(long nr __attribute__((unused))) {
  __asm__("mov %rdi, %rax\n\tsyscall\n\tcmp $-4095, %rax\n\tret\n");
}
#define PLAIN_SYSCALL_AT 3 /* after the 3-byte mov */

/* The same site, but a jump lands on the cmp after `syscall`: must be left alone. */
__attribute__((naked, noinline)) long site_joined(long nr __attribute__((unused))) {
  __asm__("test %rdi, %rdi\n\tjs 1f\n\tmov %rdi, %rax\n\tsyscall\n"
          "2:\n\tcmp $-4095, %rax\n\tret\n"
          "1:\n\tmov $-22, %rax\n\tjmp 2b\n");
}
#define JOINED_SYSCALL_AT 8 /* after test (3), js (2), mov (3) */

/* `syscall` then an instruction not on the list: left alone. */
__attribute__((naked, noinline)) long site_other(long nr __attribute__((unused))) {
  __asm__("mov %rdi, %rax\n\tsyscall\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\tret\n");
}
#define OTHER_SYSCALL_AT 3

static const char *state(void *fn, int at) {
  const unsigned char *p = (const unsigned char *)fn + at;
  if (p[0] == 0x0f && p[1] == 0x05) return "syscall";
  if (p[0] == 0xe9) return "jump";
  return "other";
}

int main(void) {
  int failures = 0;
#define CHECK(what, cond) do { if (!(cond)) { printf("FAIL %s\n", what); failures++; } } while (0)
  printf("plain=%s joined=%s other=%s\n", state(site_plain, PLAIN_SYSCALL_AT), state(site_joined, JOINED_SYSCALL_AT),
         state(site_other, OTHER_SYSCALL_AT));
  long sum = 0;
  for (int i = 0; i < 10000; i++) sum += site_plain(39); /* getpid, answered in the stub */
  CHECK("getpid through the patched site", sum == 10000 * (long)getpid());
  CHECK("getppid", site_plain(110) == getppid());
  CHECK("unknown call reaches the host", site_plain(500) == -38);
  CHECK("joined: call", site_joined(39) == getpid());
  CHECK("joined: branch onto the cmp", site_joined(-1) == -22);
  CHECK("other", site_other(39) == getpid());
  char cwd[64];
  CHECK("getcwd through libc", getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0);
  printf("failures=%d\n", failures);
  return failures != 0;
}
