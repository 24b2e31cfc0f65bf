/* platform_sim.c: threads, mutexes, condition variables and atomics as fibers.
 *
 * Each operation is a yield point: the scheduler may run another fiber just before it, which is
 * where real threads could be preempted too. A blocked fiber leaves the runnable set until a
 * wake; a lock that is free when its waiter wakes is taken by whoever runs first, as with a real
 * futex-based mutex, so waiters re-check in a loop. */
#include "internal.h"

#define R cf_run_state

static const char *sys = "runtime";

void cf_thread_spawn_at(cf_thread_t *t, void (*fn)(void *), void *arg, const char *name,
                        const cf_site_t *site) {
  t->name = name;
  t->fiber = cf_sched_spawn(fn, arg, name, site);
  cf_sync_release(t->fiber);
  cf_yield_at(site);
}

void cf_thread_join_at(cf_thread_t *t, const cf_site_t *site) {
  cf_yield_at(site);
  cf_fiber_t *self = cf_run_state.current;
  while (t->fiber->state != CF_FIBER_EXITED) {
    self->joining = true;
    cf_wait_at(&t->fiber->joiners, CF_WAIT_SYNC, -1, site);
    self->joining = false;
  }
  cf_sync_acquire(t->fiber);
}

void cf_mutex_init(cf_mutex_t *m, const char *name) {
  m->name = name;
  m->owner = NULL;
  m->waiters = (cf_waitq_t){NULL, NULL};
}

void cf_mutex_destroy(cf_mutex_t *m) {
  if (m->owner) cf_fail("mutex-misuse", sys, CF_SITE("mutex_destroy"), "%s destroyed while held", m->name);
}

static void lock_slow(cf_mutex_t *m, const cf_site_t *site) {
  if (m->owner == R.current)
    cf_fail("deadlock", sys, site, "%s locked again by its owner (fiber %d)", m->name, R.current->id);
  while (m->owner) cf_wait_at(&m->waiters, CF_WAIT_SYNC, -1, site);
  m->owner = R.current;
  cf_sync_acquire(m);
}

void cf_mutex_lock_at(cf_mutex_t *m, const cf_site_t *site) {
  cf_yield_at(site);
  lock_slow(m, site);
}

bool cf_mutex_trylock_at(cf_mutex_t *m, const cf_site_t *site) {
  cf_yield_at(site);
  if (m->owner) return false;
  m->owner = R.current;
  cf_sync_acquire(m);
  return true;
}

static void release(cf_mutex_t *m, const cf_site_t *site) {
  if (m->owner != R.current)
    cf_fail("mutex-misuse", sys, site, "%s unlocked by fiber %d, which does not hold it", m->name,
            R.current ? R.current->id : -1);
  cf_sync_release(m);
  m->owner = NULL;
  cf_wake_one(&m->waiters);
}

void cf_mutex_unlock_at(cf_mutex_t *m, const cf_site_t *site) {
  release(m, site);
  cf_yield_at(site);
}

void cf_cond_init(cf_cond_t *c, const char *name) {
  c->name = name;
  c->waiters = (cf_waitq_t){NULL, NULL};
}

void cf_cond_destroy(cf_cond_t *c) { (void)c; }

static bool cond_block(cf_cond_t *c, cf_mutex_t *m, cf_wait_kind_t kind, int64_t timeout,
                       const cf_site_t *site) {
  cf_yield_at(site);
  release(m, site);
  bool woken = cf_wait_at(&c->waiters, kind, timeout, site);
  lock_slow(m, site);
  return woken;
}

void cf_cond_wait_at(cf_cond_t *c, cf_mutex_t *m, cf_wait_kind_t kind, const cf_site_t *site) {
  cond_block(c, m, kind, -1, site);
}

bool cf_cond_timedwait_at(cf_cond_t *c, cf_mutex_t *m, int64_t ticks, const cf_site_t *site) {
  return cond_block(c, m, CF_WAIT_SYNC, ticks < 0 ? 0 : ticks, site);
}

void cf_cond_signal_at(cf_cond_t *c, const cf_site_t *site) {
  cf_wake_one(&c->waiters);
  cf_yield_at(site);
}

void cf_cond_broadcast_at(cf_cond_t *c, const cf_site_t *site) {
  cf_wake_all(&c->waiters);
  cf_yield_at(site);
}

/* What a read saw is a coverage feature (cf_cov_read): the value, not who wrote it, because
 * the same site reading the same value is the same state whichever schedule led there. */
static uint64_t observed(const cf_site_t *site, uint64_t v) {
  cf_cov_read(cf_site_id(site), v);
  return v;
}

/* Atomics: the yield comes first, then the operation happens indivisibly, which is what a
 * sequentially consistent atomic gives real threads. */

uint64_t cf_atomic_load_at(cf_atomic_t *a, const cf_site_t *site) {
  cf_yield_at(site);
  cf_sync_acquire(a);
  return observed(site, a->v);
}

void cf_atomic_store_at(cf_atomic_t *a, uint64_t v, const cf_site_t *site) {
  cf_yield_at(site);
  cf_sync_release(a);
  a->v = v;
}

uint64_t cf_atomic_fetch_add_at(cf_atomic_t *a, uint64_t v, const cf_site_t *site) {
  cf_yield_at(site);
  cf_sync_acquire(a);
  cf_sync_release(a);
  uint64_t old = observed(site, a->v);
  a->v = old + v;
  return old;
}

uint64_t cf_atomic_fetch_sub_at(cf_atomic_t *a, uint64_t v, const cf_site_t *site) {
  cf_yield_at(site);
  cf_sync_acquire(a);
  cf_sync_release(a);
  uint64_t old = observed(site, a->v);
  a->v = old - v;
  return old;
}

bool cf_atomic_cas_at(cf_atomic_t *a, uint64_t *expected, uint64_t desired, const cf_site_t *site) {
  cf_yield_at(site);
  cf_sync_acquire(a);
  if (observed(site, a->v) == *expected) {
    cf_sync_release(a);
    a->v = desired;
    return true;
  }
  *expected = a->v;
  return false;
}

/* No real lock in simulation; under TSan the lock still orders the bookkeeping it guards. */
static int host_lock_token;
void cf_host_lock(void) { cf_sync_acquire(&host_lock_token); }
void cf_host_unlock(void) { cf_sync_release(&host_lock_token); }
