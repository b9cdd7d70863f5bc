/* Hostile: issue hypercalls straight from user mode with `out` to port argv[1]. On kvm_pvm the
 * system-call port is open to user mode (it is how system calls reach the host, validated like
 * any call); every other port must fault (#GP -> SIGSEGV, exit 139). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  unsigned short port = argc > 1 ? (unsigned short)strtoul(argv[1], 0, 0) : 17;
  long rax = 39; /* getpid, if the port is the system-call port */
  printf("about to out to port %u\n", port);
  fflush(stdout);
  __asm__ volatile("out %%al, %%dx" : "+a"(rax) : "d"(port) : "rcx", "r11", "memory");
  printf("survived rax=%ld\n", rax);
  return 0;
}
