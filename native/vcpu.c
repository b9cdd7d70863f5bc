/* vCPU threads: KVM_RUN on a thread of the helper library, with each exit handed to the one
 * thread that serves exits (the sandbox's JavaScript thread), through futex words.
 *
 * This is the mechanism docs/design.md plans for threads and for processes that run at the same
 * time. Each vCPU runs on its own native thread, in parallel on the host's cores. JavaScript stays
 * single-threaded: it waits for any exit in one call (kvmbox_vt_wait), serves it, and resumes
 * that vCPU (kvmbox_vt_resume). src/kvm/kvm.ts uses it for a single vCPU when
 * KVMBOX_VCPU_THREAD=1, so that the hand-over cost can be measured (bench/handover.ts) and
 * tested before threads exist.
 *
 * States of a vCPU thread (vt->state, a futex word):
 *   PARKED  waits for a resume;  RUNNING  in or about to enter KVM_RUN;
 *   EXITED  KVM_RUN returned, result in vt->result, bit set in the group's ready mask;
 *   STOP    the thread must end.
 * Only the serving thread moves PARKED/EXITED -> RUNNING and sets STOP; only the vCPU thread moves
 * RUNNING -> EXITED. The group's `seq` word is bumped on every exit and is what the server waits on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

enum { PARKED = 0, RUNNING = 1, EXITED = 2, STOP = 3 };
#define MAX_VCPUS 64
/* The signal that kicks a vCPU thread out of KVM_RUN (EINTR). glibc keeps SIGRTMIN..+2 for itself. */
#define KICK_SIGNAL (SIGRTMIN + 7)

struct group {
	_Atomic uint32_t seq;       /* bumped on each exit: the server's futex word */
	_Atomic uint64_t ready;     /* bit i: vCPU i has exited and waits to be served */
};

struct vt {
	struct group *g;
	int fd;
	int index;
	struct kvm_run *run;        /* the vCPU's mapped kvm_run, for immediate_exit */
	_Atomic uint32_t state;
	long result;                /* KVM_RUN's result: >= 0, or -errno */
	pthread_t th;
};

static long futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)w, op | FUTEX_PRIVATE_FLAG, val, ts, NULL, 0);
}

static void kick_handler(int sig) { (void)sig; }

static void install_kick_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
}

static void *vcpu_main(void *arg)
{
	struct vt *vt = arg;
	for (;;) {
		uint32_t s = atomic_load(&vt->state);
		if (s == STOP) break;
		if (s != RUNNING) {
			futex(&vt->state, FUTEX_WAIT, s, NULL);
			continue;
		}
		long r = ioctl(vt->fd, KVM_RUN, 0);
		vt->result = r < 0 ? -errno : r;
		/* A kick has been delivered as this exit: the next KVM_RUN enters the guest again. */
		if (r < 0 && vt->run) __atomic_store_n(&vt->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		/* A stop that came while the guest ran wins over the exit. */
		uint32_t expect = RUNNING;
		if (!atomic_compare_exchange_strong(&vt->state, &expect, EXITED)) break;
		atomic_fetch_or(&vt->g->ready, (uint64_t)1 << vt->index);
		atomic_fetch_add(&vt->g->seq, 1);
		futex(&vt->g->seq, FUTEX_WAKE, 1, NULL);
	}
	return NULL;
}

void *kvmbox_vt_group(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install_kick_handler);
	return calloc(1, sizeof(struct group));
}

/* Starts a parked thread for vCPU `fd` (index < 64 in its group). run: the vCPU's kvm_run mapping. */
void *kvmbox_vt_start(void *group, int fd, int index, void *run)
{
	if (!group || index < 0 || index >= MAX_VCPUS) return NULL;
	struct vt *vt = calloc(1, sizeof *vt);
	if (!vt) return NULL;
	vt->g = group;
	vt->fd = fd;
	vt->index = index;
	vt->run = run;
	atomic_store(&vt->state, PARKED);
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, KICK_SIGNAL);
	/* The new thread takes only the kick signal: the host's other signals stay with Node. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&vt->th, NULL, vcpu_main, vt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		free(vt);
		return NULL;
	}
	char name[16];
	snprintf(name, sizeof name, "kvmbox-vcpu%d", index);
	pthread_setname_np(vt->th, name);
	return vt;
}

/* Lets a parked or exited vCPU run again (after its exit was served). */
void kvmbox_vt_resume(void *p)
{
	struct vt *vt = p;
	uint32_t s = atomic_load(&vt->state);
	if (s != PARKED && s != EXITED) return;
	atomic_store(&vt->state, RUNNING);
	futex(&vt->state, FUTEX_WAKE, 1, NULL);
}

/* Waits until some vCPU of the group has exited, or timeout_ms passed (< 0: no limit).
 * Returns the mask of exited vCPUs (taken: each must be served and resumed), 0 on timeout. */
int64_t kvmbox_vt_wait(void *group, int timeout_ms)
{
	struct group *g = group;
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	for (;;) {
		uint32_t seq = atomic_load(&g->seq);
		uint64_t m = atomic_exchange(&g->ready, 0);
		if (m) return (int64_t)m;
		if (timeout_ms == 0) return 0;
		long r = futex(&g->seq, FUTEX_WAIT, seq, timeout_ms < 0 ? NULL : &ts);
		if (r < 0 && errno == ETIMEDOUT) return (int64_t)atomic_exchange(&g->ready, 0);
	}
}

/* Resumes vCPU vt and waits for its next exit: one hand-over each way. Returns KVM_RUN's result. */
long kvmbox_vt_run(void *p)
{
	struct vt *vt = p;
	uint64_t bit = (uint64_t)1 << vt->index;
	kvmbox_vt_resume(vt);
	for (;;) {
		uint32_t seq = atomic_load(&vt->g->seq);
		uint64_t m = atomic_fetch_and(&vt->g->ready, ~bit);
		if (m & bit) return vt->result;
		futex(&vt->g->seq, FUTEX_WAIT, seq, NULL);
	}
}

/* Makes a running vCPU leave the guest soon (its KVM_RUN returns -EINTR). */
void kvmbox_vt_kick(void *p)
{
	struct vt *vt = p;
	if (vt->run) __atomic_store_n(&vt->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load(&vt->state) == RUNNING) pthread_kill(vt->th, KICK_SIGNAL);
}

/* Ends the thread (kicking it out of the guest if needed) and frees it. */
void kvmbox_vt_stop(void *p)
{
	struct vt *vt = p;
	if (!vt) return;
	uint32_t s = atomic_exchange(&vt->state, STOP);
	if (s == RUNNING) {
		if (vt->run) __atomic_store_n(&vt->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(vt->th, KICK_SIGNAL);
	}
	futex(&vt->state, FUTEX_WAKE, 1, NULL);
	pthread_join(vt->th, NULL);
	if (vt->run) __atomic_store_n(&vt->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	free(vt);
}

void kvmbox_vt_group_free(void *group) { free(group); }

/* KVM_RUN's result of the exit the thread last reported (read after kvmbox_vt_wait named it). */
long kvmbox_vt_result(void *p)
{
	struct vt *vt = p;
	return vt->result;
}
