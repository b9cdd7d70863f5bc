/* The local APIC timer in x2APIC mode, used only to bound run time: a program spinning in user
 * mode makes no exits, so a periodic interrupt is what gives the host a chance to stop it. */
#include "kernel.h"

#define APIC_SVR_ENABLE 0x100
#define SPURIOUS_VECTOR 0xff
#define LVT_TIMER_PERIODIC (1u << 17)
#define APIC_DIVIDE_BY_1 0xb

void timer_start(u64 initial_count) {
  wrmsr(MSR_X2APIC_SVR, APIC_SVR_ENABLE | SPURIOUS_VECTOR);
  wrmsr(MSR_X2APIC_DIV_CONF, APIC_DIVIDE_BY_1);
  wrmsr(MSR_X2APIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_TIMER);
  wrmsr(MSR_X2APIC_INIT_COUNT, initial_count);
}

void timer_eoi(void) { wrmsr(MSR_X2APIC_EOI, 0); }
