/* platform_real.c: the platform API on real threads (pthreads, sequentially consistent
 * atomics), so the copies run unchanged as upstream-style stress tests. There is no scheduler
 * here: yield points do nothing, decisions and faults return their defaults, and interleavings
 * are whatever the OS produces, which is exactly what such tests measure. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf.h"

uint32_t cf_site_id(const cf_site_t *site) { return site ? (uint32_t)site->line : 0; }

uint32_t cf_workload(uint32_t n) { (void)n; return 0; }
uint32_t cf_workload_byte(void) { return 0; }
bool cf_workload_left(void) { return false; }
uint32_t cf_choose(const cf_site_t *site, uint32_t n) { (void)site; (void)n; return 0; }
void cf_fault_enable(cf_fault_class_t cls, bool on) { (void)cls; (void)on; }
bool cf_fault(const cf_site_t *site, cf_fault_class_t cls) { (void)site; (void)cls; return false; }

typedef struct start {
  void (*fn)(void *);
  void *arg;
} start_t;

static void *thread_main(void *p) {
  start_t s = *(start_t *)p;
  free(p);
  s.fn(s.arg);
  return NULL;
}

void cf_thread_spawn_at(cf_thread_t *t, void (*fn)(void *), void *arg, const char *name,
                        const cf_site_t *site) {
  (void)site;
  start_t *s = malloc(sizeof *s);
  if (!s) abort();
  *s = (start_t){fn, arg};
  t->name = name;
  t->fiber = NULL;
  if (pthread_create(&t->pthread, NULL, thread_main, s) != 0) {
    perror("churnfuzz: pthread_create");
    abort();
  }
}

void cf_thread_join_at(cf_thread_t *t, const cf_site_t *site) {
  (void)site;
  pthread_join(t->pthread, NULL);
}

void cf_mutex_init(cf_mutex_t *m, const char *name) {
  memset(m, 0, sizeof *m);
  m->name = name;
  pthread_mutex_init(&m->pm, NULL);
}
void cf_mutex_destroy(cf_mutex_t *m) { pthread_mutex_destroy(&m->pm); }
void cf_mutex_lock_at(cf_mutex_t *m, const cf_site_t *s) { (void)s; pthread_mutex_lock(&m->pm); }
bool cf_mutex_trylock_at(cf_mutex_t *m, const cf_site_t *s) {
  (void)s;
  return pthread_mutex_trylock(&m->pm) == 0;
}
void cf_mutex_unlock_at(cf_mutex_t *m, const cf_site_t *s) { (void)s; pthread_mutex_unlock(&m->pm); }

void cf_cond_init(cf_cond_t *c, const char *name) {
  memset(c, 0, sizeof *c);
  c->name = name;
  pthread_cond_init(&c->pc, NULL);
}
void cf_cond_destroy(cf_cond_t *c) { pthread_cond_destroy(&c->pc); }
void cf_cond_wait_at(cf_cond_t *c, cf_mutex_t *m, cf_wait_kind_t kind, const cf_site_t *s) {
  (void)kind;
  (void)s;
  pthread_cond_wait(&c->pc, &m->pm);
}
/* One tick is one millisecond of real time here. */
bool cf_cond_timedwait_at(cf_cond_t *c, cf_mutex_t *m, int64_t ticks, const cf_site_t *s) {
  (void)s;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ticks / 1000;
  ts.tv_nsec += (ticks % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  return pthread_cond_timedwait(&c->pc, &m->pm, &ts) == 0;
}
void cf_cond_signal_at(cf_cond_t *c, const cf_site_t *s) { (void)s; pthread_cond_signal(&c->pc); }
void cf_cond_broadcast_at(cf_cond_t *c, const cf_site_t *s) {
  (void)s;
  pthread_cond_broadcast(&c->pc);
}

uint64_t cf_atomic_load_at(cf_atomic_t *a, const cf_site_t *s) {
  (void)s;
  return __atomic_load_n(&a->v, __ATOMIC_SEQ_CST);
}
void cf_atomic_store_at(cf_atomic_t *a, uint64_t v, const cf_site_t *s) {
  (void)s;
  __atomic_store_n(&a->v, v, __ATOMIC_SEQ_CST);
}
uint64_t cf_atomic_fetch_add_at(cf_atomic_t *a, uint64_t v, const cf_site_t *s) {
  (void)s;
  return __atomic_fetch_add(&a->v, v, __ATOMIC_SEQ_CST);
}
uint64_t cf_atomic_fetch_sub_at(cf_atomic_t *a, uint64_t v, const cf_site_t *s) {
  (void)s;
  return __atomic_fetch_sub(&a->v, v, __ATOMIC_SEQ_CST);
}
bool cf_atomic_cas_at(cf_atomic_t *a, uint64_t *e, uint64_t d, const cf_site_t *s) {
  (void)s;
  return __atomic_compare_exchange_n(&a->v, e, d, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void cf_yield_at(const cf_site_t *site) { (void)site; }
/* Real threads have no reference model to run atomically: oracle sections are no-ops. */
void cf_oracle_begin(void) {}
void cf_oracle_end(void) {}
int64_t cf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
void cf_sleep_at(int64_t ticks, const cf_site_t *site) {
  (void)site;
  struct timespec ts = {ticks / 1000, (long)(ticks % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

bool cf_in_sim(void) { return false; }
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
void cf_host_lock(void) { pthread_mutex_lock(&host_lock); }
void cf_host_unlock(void) { pthread_mutex_unlock(&host_lock); }
bool cf_wait_at(cf_waitq_t *q, cf_wait_kind_t k, int64_t t, const cf_site_t *s) {
  (void)q, (void)k, (void)t, (void)s;
  return false;
}
void cf_wake_all(cf_waitq_t *q) { (void)q; }
bool cf_wake_one(cf_waitq_t *q) { (void)q; return false; }

cf_obligation_t cf_obligation_open(const char *system, const char *what, uint64_t id) {
  (void)system, (void)what, (void)id;
  return -1;
}
void cf_obligation_close(cf_obligation_t ob) { (void)ob; }
void cf_progress(void) {}
void cf_on_quiescence(void (*fn)(void *), void *arg) { (void)fn, (void)arg; }

/* Per-run memory: kept until cf_real_end_run() frees it all, like the simulated run's end. */
#define REAL_DEFER_MAX 4096
static struct {
  void (*fn)(void *);
  void *arg;
} deferred[REAL_DEFER_MAX];
static int ndeferred;
static pthread_mutex_t defer_mu = PTHREAD_MUTEX_INITIALIZER;

void cf_defer(void (*fn)(void *), void *arg) {
  pthread_mutex_lock(&defer_mu);
  if (ndeferred < REAL_DEFER_MAX) deferred[ndeferred].fn = fn, deferred[ndeferred++].arg = arg;
  pthread_mutex_unlock(&defer_mu);
}

void *cf_sim_alloc(size_t size) {
  void *p = calloc(1, size ? size : 1);
  if (!p) abort();
  cf_defer(free, p);
  return p;
}

void cf_real_end_run(void) {
  while (ndeferred > 0) {
    ndeferred--;
    deferred[ndeferred].fn(deferred[ndeferred].arg);
  }
}

void cf_fail(const char *oracle, const char *system, const cf_site_t *site, const char *fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  cf_report_failure_line(oracle, system, site, detail);
  abort();
}

void cf_note(const cf_site_t *site, const char *fmt, ...) { (void)site, (void)fmt; }
void cf_cov_state(uint32_t h) { (void)h; }
