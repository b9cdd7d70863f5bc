/* Interrupts and exceptions. The kernel has no policy of its own: it tells the host what
 * happened and does what the host answers. */
#include "kernel.h"

#define USER_RPL 3

void trap(struct trapframe *tf) {
  if (tf->vector == VEC_TIMER) {
    timer_eoi();
    hc_timer(tf->rip, tf->cs, 0, 0, 0);
    return;
  }
  u64 cr2 = read_cr2();
  if ((tf->cs & 3) == USER_RPL) {
    /* The host ends the program with the matching signal, or, for a page it has mapped since
     * this CPU cached the old entry, asks us to drop the stale TLB entry and retry. */
    if (hc_fault(tf->vector, tf->error, cr2, tf->rip, tf->rsp) == FAULT_RETRY) {
      invlpg(cr2);
      return;
    }
  }
  for (;;) hc_panic(tf->vector, tf->error, cr2, tf->rip, 0);
}
