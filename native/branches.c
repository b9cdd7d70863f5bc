/* Part of kvmbox's host helper library (loaded through koffi by src/kvm/libc.ts): which of some
 * addresses a direct branch in x86 code could land on. Used by src/linux/site-patch.ts to
 * leave alone the call sites that a jump may enter in the middle. Scanning a 2 MiB text byte by
 * byte costs 7-25 ms in JavaScript, under 1 ms here, and the CLI pays it on every run.
 * Plain C on libc: no Node API, no state. */
#include <stdint.h>
#include <string.h>
#include "helper.h"

static int32_t rel32(const unsigned char *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/*
 * marks[0, len] has 1 at the offsets wanted. For every byte of code[0, len) that could start a
 * direct branch (jcc/jmp rel8, call/jmp rel32, jcc rel32) whose target is a wanted offset, that
 * mark becomes 2. Every byte position counts, instruction boundary or not: a false hit only
 * leaves a site alone.
 */
void kvmbox_branch_targets(const unsigned char *code, long len, unsigned char *marks) {
  for (long i = 0; i + 2 <= len; i++) {
    unsigned char b = code[i];
    int64_t target;
    if ((b >= 0x70 && b <= 0x7f) || b == 0xeb) {
      target = i + 2 + (int8_t)code[i + 1];
    } else if ((b == 0xe8 || b == 0xe9) && i + 5 <= len) {
      target = i + 5 + (int64_t)rel32(code + i + 1);
    } else if (b == 0x0f && code[i + 1] >= 0x80 && code[i + 1] <= 0x8f && i + 6 <= len) {
      target = i + 6 + (int64_t)rel32(code + i + 2);
    } else {
      continue;
    }
    if (target >= 0 && target <= len && marks[target]) marks[target] = 2;
  }
}
