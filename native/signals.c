/*
 * Signals sent to kvmbox itself, for the program inside (the CLI forwards Ctrl-C, SIGTERM, a
 * terminal resize... to the guest: src/cli/main.ts). The handler only records the signal in one
 * word; the run loop takes the word between exits (src/linux/kernel.ts), so nothing but an
 * atomic OR runs in signal context, on whichever of Node's threads the host picks.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include "helper.h"

static volatile uint64_t caught;
/* What each signal did before kvmbox_signals_catch, put back by kvmbox_signals_restore. */
static struct sigaction saved[64];
static uint64_t saved_mask;

static void on_signal(int sig) {
  __atomic_fetch_or(&caught, (uint64_t)1 << sig, __ATOMIC_SEQ_CST);
}

/*
 * Catch the signals of mask (bit N: signal N, 1..63), remembering what each did before: 0, or -1
 * when sigaction refused one (those caught so far stay caught until kvmbox_signals_restore).
 */
int kvmbox_signals_catch(uint64_t mask) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART; /* Node's own threads go on with their calls */
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < 64; sig++) {
    uint64_t bit = (uint64_t)1 << sig;
    if (!(mask & bit) || (saved_mask & bit)) continue;
    if (sigaction(sig, &sa, &saved[sig]) != 0) return -1;
    saved_mask |= bit;
  }
  return 0;
}

/* The signals of mask do again what they did before kvmbox_signals_catch (Node's handler, or the default). */
void kvmbox_signals_restore(uint64_t mask) {
  for (int sig = 1; sig < 64; sig++) {
    uint64_t bit = (uint64_t)1 << sig;
    if (!(mask & saved_mask & bit)) continue;
    sigaction(sig, &saved[sig], NULL);
    saved_mask &= ~bit;
  }
}

/* The signals caught since the last call (bit N: signal N), and forget them. */
uint64_t kvmbox_signals_take(void) {
  return __atomic_exchange_n(&caught, 0, __ATOMIC_SEQ_CST);
}
