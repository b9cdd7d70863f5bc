/* System-call sites the host may rewrite (src/linux/site-patch.ts), written in assembly so that
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

/* cpuid followed by plain moves: patchable. out[0..3] = eax..edx, out[4] = CF afterwards. */
__attribute__((naked, noinline)) void cpuid_site(unsigned leaf __attribute__((unused)), unsigned sub __attribute__((unused)),
                                                 unsigned *out __attribute__((unused))) {
  __asm__("push %rbx\n\tmov %rdx, %r8\n\tmov %edi, %eax\n\tmov %esi, %ecx\n\tstc\n\tcpuid\n"
          "\tmov %eax, (%r8)\n\tmov %ebx, 4(%r8)\n\tmov %ecx, 8(%r8)\n\tmov %edx, 12(%r8)\n"
          "\tsetc %al\n\tmovzbl %al, %eax\n\tmov %eax, 16(%r8)\n\tpop %rbx\n\tret\n");
}

/* The same, but a jmp follows cpuid: never patched, the reference. */
__attribute__((naked, noinline)) void cpuid_ref(unsigned leaf __attribute__((unused)), unsigned sub __attribute__((unused)),
                                                unsigned *out __attribute__((unused))) {
  __asm__("push %rbx\n\tmov %rdx, %r8\n\tmov %edi, %eax\n\tmov %esi, %ecx\n\tstc\n\tcpuid\n\tjmp 1f\n1:\n"
          "\tmov %eax, (%r8)\n\tmov %ebx, 4(%r8)\n\tmov %ecx, 8(%r8)\n\tmov %edx, 12(%r8)\n"
          "\tsetc %al\n\tmovzbl %al, %eax\n\tmov %eax, 16(%r8)\n\tpop %rbx\n\tret\n");
}

static const char *state(void *fn, int at) {
  const unsigned char *p = (const unsigned char *)fn + at;
  if (p[0] == 0x0f && p[1] == 0x05) return "syscall";
  if (p[0] == 0xe9) return "jump";
  return "other";
}

static int failures = 0;
#define CHECK(what, cond) do { if (!(cond)) { printf("FAIL %s\n", what); failures++; } } while (0)

static const char *cpuid_state(void) {
  const unsigned char *p = (const unsigned char *)cpuid_site;
  for (int i = 0; i < 24; i++) {
    if (p[i] == 0x0f && p[i + 1] == 0xa2) return "cpuid";
    if (p[i] == 0xe9) return "jump";
  }
  return "other";
}

/* Every leaf a libc asks for, patched site against the instruction; APIC IDs may differ between
 * two host CPUs and are masked. */
static int cpuid_checks(void) {
  static const unsigned leaves[][2] = {
    {0, 0}, {1, 0}, {2, 0}, {4, 0}, {4, 1}, {4, 2}, {4, 3}, {4, 9}, {6, 0}, {7, 0}, {7, 1}, {0xb, 0}, {0xb, 1},
    {0xd, 0}, {0xd, 1}, {0xd, 2}, {0xd, 5}, {0xd, 40}, {0x14, 0}, {0x19, 0}, {0x1f, 0}, {0x40000000, 0},
    {0x80000000, 0}, {0x80000001, 0}, {0x80000007, 0}, {0x80000008, 0}, {0x8000001d, 0}, {0x12345678, 0},
  };
  int n = 0;
  for (unsigned i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
    unsigned a[5], b[5];
    cpuid_site(leaves[i][0], leaves[i][1], a);
    cpuid_ref(leaves[i][0], leaves[i][1], b);
    if (leaves[i][0] == 1) { a[1] &= 0x00ffffff; b[1] &= 0x00ffffff; }
    if (leaves[i][0] == 0xb || leaves[i][0] == 0x1f) { a[3] = b[3] = 0; }
    char what[64];
    snprintf(what, sizeof what, "cpuid leaf %#x.%u", leaves[i][0], leaves[i][1]);
    CHECK(what, memcmp(a, b, 16) == 0);
    CHECK("cpuid keeps the flags", a[4] == 1 && b[4] == 1);
    n++;
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "cpuid") == 0) {
    const char *st = cpuid_state();
    int n = cpuid_checks();
    printf("cpuid=%s leaves=%d failures=%d\n", st, n, failures);
    return failures != 0;
  }
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
