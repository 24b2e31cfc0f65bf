/* cf.h: the runtime API that system copies, the simulated kernel and fuzz targets use.
 *
 * A simulated run executes a copy's threads as cooperative fibers on one OS thread. Every
 * synchronisation operation and every simulated syscall is a yield point where the scheduler
 * picks the next fiber from the fuzz input (docs/INPUT_FORMAT.md). Nothing here reads the wall
 * clock, calls rand() or orders anything by address, so one input always gives one run.
 *
 * The same copy code links against one of two backends with identical signatures:
 *   platform_sim.c  - fibers and the scheduler (fuzz targets, replay, unit tests);
 *   platform_real.c - pthreads and C11-style atomics (upstream-style stress tests).
 */
#ifndef CF_H
#define CF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Yield sites                                                                                */

/* A named place in the code where the scheduler may switch fibers. The label is what traces,
 * coverage and failure signatures show, so it should say what the code is doing there
 * ("registry.ref", "worker.recv"). The id is a hash of label, file and line: the same in every
 * process, independent of where the binary is loaded. */
typedef struct cf_site {
  const char *label;
  const char *file;
  int line;
  uint32_t id; /* computed on first use by cf_site_id() */
} cf_site_t;

/* Sites live in their own section so that cf_sites_init() can hash them all before the first
 * run: otherwise the first run through a site would take a different branch than later ones,
 * and engines would see unstable coverage. */
#define CF_SITE(label_)                                                                 \
  (__extension__({                                                                      \
    __attribute__((section("cf_sites"), used, aligned(8))) static cf_site_t cf_site_ = { \
        (label_), __FILE__, __LINE__, 0};                                               \
    &cf_site_;                                                                          \
  }))

uint32_t cf_site_id(const cf_site_t *site);
void cf_sites_init(void);

/* ------------------------------------------------------------------------------------------ */
/* Decisions (see docs/INPUT_FORMAT.md)                                                       */

/* Workload stream, read from the front of the input. Targets decode their workload with these,
 * preferably before spawning threads so the workload does not depend on the schedule. When the
 * stream is exhausted every call returns 0. */
uint32_t cf_workload(uint32_t n);          /* uniform-ish value in [0, n); 0 if n == 0 */
uint32_t cf_workload_byte(void);           /* next raw byte, 0 when exhausted */
bool cf_workload_left(void);               /* true while workload bytes remain */

/* Environment decisions, read from the back of the input together with the scheduling picks
 * (both are "when and how the world behaves"). Default when exhausted: 0. */
uint32_t cf_choose(const cf_site_t *site, uint32_t n);

/* Fault injection classes. A class draws decisions only after the target enables it for the
 * run, so targets that never enable faults never spend input bytes on them. */
typedef enum cf_fault_class {
  CF_FAULT_EAGAIN = 0,     /* spurious EAGAIN from a non-blocking send/recv */
  CF_FAULT_SHORT_WRITE,    /* send/write accepts fewer bytes than it could */
  CF_FAULT_EPOLL_NOMEM,    /* epoll_ctl fails with ENOMEM or ENOSPC */
  CF_FAULT_RESET,          /* a connected socket is reset by its peer */
  CF_FAULT_CLASS_COUNT
} cf_fault_class_t;

void cf_fault_enable(cf_fault_class_t cls, bool on);
/* True when this operation should fail. Only in the safety phase, only for enabled classes,
 * never once the schedule stream is exhausted. */
bool cf_fault(const cf_site_t *site, cf_fault_class_t cls);

/* ------------------------------------------------------------------------------------------ */
/* Threads, mutexes, condition variables, atomics (the platform API)                          */

typedef struct cf_fiber cf_fiber_t;

typedef struct cf_thread {
  cf_fiber_t *fiber;  /* sim backend */
  pthread_t pthread;  /* real backend */
  const char *name;
} cf_thread_t;

/* Wait queue: the fibers blocked on one object, in blocking order (FIFO wake-up). */
typedef struct cf_waitq {
  cf_fiber_t *first;
  cf_fiber_t *last;
} cf_waitq_t;

typedef struct cf_mutex {
  const char *name;
  cf_fiber_t *owner;    /* sim */
  cf_waitq_t waiters;   /* sim */
  pthread_mutex_t pm;   /* real */
} cf_mutex_t;

typedef struct cf_cond {
  const char *name;
  cf_waitq_t waiters;   /* sim */
  pthread_cond_t pc;    /* real */
} cf_cond_t;

typedef struct cf_atomic {
  uint64_t v;
} cf_atomic_t;

void cf_thread_spawn_at(cf_thread_t *t, void (*fn)(void *), void *arg, const char *name,
                        const cf_site_t *site);
void cf_thread_join_at(cf_thread_t *t, const cf_site_t *site);

void cf_mutex_init(cf_mutex_t *m, const char *name);
void cf_mutex_destroy(cf_mutex_t *m);
void cf_mutex_lock_at(cf_mutex_t *m, const cf_site_t *site);
bool cf_mutex_trylock_at(cf_mutex_t *m, const cf_site_t *site);
void cf_mutex_unlock_at(cf_mutex_t *m, const cf_site_t *site);

void cf_cond_init(cf_cond_t *c, const char *name);
void cf_cond_destroy(cf_cond_t *c);
/* Wait kinds decide what the quiescence check thinks of a fiber still blocked at the end:
 * a SYNC wait that can never be satisfied is a deadlock; an IDLE wait (a worker waiting for
 * work, an event loop parked in epoll_wait) is a normal resting state. */
typedef enum cf_wait_kind { CF_WAIT_SYNC = 0, CF_WAIT_IDLE = 1 } cf_wait_kind_t;
void cf_cond_wait_at(cf_cond_t *c, cf_mutex_t *m, cf_wait_kind_t kind, const cf_site_t *site);
/* Returns false on timeout. Timeouts are in virtual ticks (see cf_now). */
bool cf_cond_timedwait_at(cf_cond_t *c, cf_mutex_t *m, int64_t ticks, const cf_site_t *site);
void cf_cond_signal_at(cf_cond_t *c, const cf_site_t *site);
void cf_cond_broadcast_at(cf_cond_t *c, const cf_site_t *site);

uint64_t cf_atomic_load_at(cf_atomic_t *a, const cf_site_t *site);
void cf_atomic_store_at(cf_atomic_t *a, uint64_t v, const cf_site_t *site);
uint64_t cf_atomic_fetch_add_at(cf_atomic_t *a, uint64_t v, const cf_site_t *site);
uint64_t cf_atomic_fetch_sub_at(cf_atomic_t *a, uint64_t v, const cf_site_t *site);
/* Compare-and-swap; on failure *expected receives the current value. */
bool cf_atomic_cas_at(cf_atomic_t *a, uint64_t *expected, uint64_t desired,
                      const cf_site_t *site);

/* A bare yield point, for shared accesses that are not atomics (a plain load in a racy
 * read-modify-write, a queue push): the scheduler may switch here. */
void cf_yield_at(const cf_site_t *site);

/* Virtual time in ticks. It only moves when no fiber can run and a timer is pending. */
int64_t cf_now(void);
void cf_sleep_at(int64_t ticks, const cf_site_t *site);

/* The call-site macros: each names its yield site after the operation and its argument. */
#define cf_thread_spawn(t, fn, arg, name) \
  cf_thread_spawn_at((t), (fn), (arg), (name), CF_SITE("spawn " name))
#define cf_thread_join(t) cf_thread_join_at((t), CF_SITE("join " #t))
#define cf_mutex_lock(m) cf_mutex_lock_at((m), CF_SITE("lock " #m))
#define cf_mutex_trylock(m) cf_mutex_trylock_at((m), CF_SITE("trylock " #m))
#define cf_mutex_unlock(m) cf_mutex_unlock_at((m), CF_SITE("unlock " #m))
#define cf_cond_wait(c, m) cf_cond_wait_at((c), (m), CF_WAIT_SYNC, CF_SITE("wait " #c))
#define cf_cond_wait_idle(c, m) cf_cond_wait_at((c), (m), CF_WAIT_IDLE, CF_SITE("idle " #c))
#define cf_cond_timedwait(c, m, t) cf_cond_timedwait_at((c), (m), (t), CF_SITE("timedwait " #c))
#define cf_cond_signal(c) cf_cond_signal_at((c), CF_SITE("signal " #c))
#define cf_cond_broadcast(c) cf_cond_broadcast_at((c), CF_SITE("broadcast " #c))
#define cf_atomic_load(a) cf_atomic_load_at((a), CF_SITE("load " #a))
#define cf_atomic_store(a, v) cf_atomic_store_at((a), (v), CF_SITE("store " #a))
#define cf_atomic_fetch_add(a, v) cf_atomic_fetch_add_at((a), (v), CF_SITE("fetch_add " #a))
#define cf_atomic_fetch_sub(a, v) cf_atomic_fetch_sub_at((a), (v), CF_SITE("fetch_sub " #a))
#define cf_atomic_cas(a, e, d) cf_atomic_cas_at((a), (e), (d), CF_SITE("cas " #a))
#define cf_yield(label) cf_yield_at(CF_SITE(label))
#define cf_sleep(t) cf_sleep_at((t), CF_SITE("sleep"))

/* ------------------------------------------------------------------------------------------ */
/* Blocking primitives for the simulated kernel                                               */

/* True inside a simulated run (a fiber is executing). Outside one, as in the differential
 * test against the real kernel, simulated syscalls never block. */
bool cf_in_sim(void);
/* A process-wide lock for bookkeeping that is not the program under test (a copy's allocator,
 * its checker): nothing in simulation, where fibers never run at once and no yield point may
 * be added; a pthread mutex on the real backend. Never held across a yield point. */
void cf_host_lock(void);
void cf_host_unlock(void);

/* Block the current fiber on q until woken or until `timeout` ticks pass (timeout < 0: no
 * timeout). Returns true if woken, false on timeout. Callers re-check their condition. */
bool cf_wait_at(cf_waitq_t *q, cf_wait_kind_t kind, int64_t timeout, const cf_site_t *site);
void cf_wake_all(cf_waitq_t *q);
bool cf_wake_one(cf_waitq_t *q);

/* ------------------------------------------------------------------------------------------ */
/* Liveness bookkeeping                                                                        */

/* An obligation is a promise the system owes before it may rest ("request 7 owes a
 * response", "fd 5 is ready and registered"). Any obligation still open when the run reaches
 * quiescence is a liveness failure, reported at the same decision index on every replay. */
typedef int cf_obligation_t;
cf_obligation_t cf_obligation_open(const char *system, const char *what, uint64_t id);
void cf_obligation_close(cf_obligation_t ob);

/* Something useful happened; resets the no-progress watchdog of the liveness phase. */
void cf_progress(void);

/* Called once the run is quiescent and obligations were checked, LIFO; the place for
 * end-of-run oracles such as "refcounts are conserved". */
void cf_on_quiescence(void (*fn)(void *), void *arg);
/* Zeroed memory that lives until the end of the run (freed through cf_defer). For state that
 * threads nobody joins still use when the spawning function returns. */
void *cf_sim_alloc(size_t size);

/* Called when the run ends however it ends (also after a captured failure), LIFO; the place
 * to free per-run memory. */
void cf_defer(void (*fn)(void *), void *arg);

/* ------------------------------------------------------------------------------------------ */
/* Oracles                                                                                    */

/* Report a failure: one line `churnfuzz: <oracle>: <system>: <site label>: <detail>`, then the
 * tail of the trace, then abort(). <oracle> and the site label form the stable signature. In
 * capture mode (unit tests) the run is unwound instead and cf_run() returns the failure. */
__attribute__((noreturn, format(printf, 4, 5))) void cf_fail(const char *oracle,
                                                             const char *system,
                                                             const cf_site_t *site,
                                                             const char *fmt, ...);

/* Print just the first line of a failure report (both backends' cf_fail use it). */
void cf_report_failure_line(const char *oracle, const char *system, const cf_site_t *site,
                            const char *detail);

/* Oracle sections. Between cf_oracle_begin() and cf_oracle_end() yield points do not switch
 * fibers and are not traced, so an oracle can drive a reference model through simulated
 * syscalls (a second ks_kernel_t) at a copy's commit point, atomically with it, without adding
 * interleavings or spending schedule bytes. Nothing inside may block (that is a harness error):
 * the reference must be driven with non-blocking calls. Sections nest. The oracle's own memory
 * accesses inside one (reading the copy's state) are hidden from TSan. */
void cf_oracle_begin(void);
void cf_oracle_end(void);
/* A checker's hook on a copy's thread: the host lock (the real backend runs the hooks on several
 * threads) around an oracle section (simulation: no yield, hidden from TSan). */
static inline void cf_checker_enter(void) {
  cf_host_lock();
  cf_oracle_begin();
}
static inline void cf_checker_leave(void) {
  cf_oracle_end();
  cf_host_unlock();
}

#define CF_CHECK(cond, oracle, system, ...)                                           \
  do {                                                                                \
    if (!(cond)) cf_fail((oracle), (system), CF_SITE(oracle), __VA_ARGS__);           \
  } while (0)

/* Record a copy-level operation in the trace ("intern P=3 refs=1"), for explain and for the
 * trace tail that follows a failure. Cheap when nobody reads it. */
__attribute__((format(printf, 2, 3))) void cf_note(const cf_site_t *site, const char *fmt, ...);

/* Coarse abstract-state feature: targets feed a small hash of the state they care about
 * (connection state x pending events x refcount bucket) at chosen points. */
void cf_cov_state(uint32_t state_hash);

/* Bug toggles (see harness/runtime/bugs.def). */
#include "bugs.h"

#ifdef __cplusplus
}
#endif
#endif /* CF_H */
