/* toys.c: the self-test models (see toys.h). */
#include "toys.h"

#include "cf.h"
#include "pool.h"

/* ---- toy-lost-update ---------------------------------------------------------------------- */

typedef struct counter_world {
  cf_atomic_t counter;
  int increments;
} counter_world_t;

static void counter_worker(void *arg) {
  counter_world_t *w = arg;
  for (int i = 0; i < w->increments; i++) {
    if (cf_bug(CF_BUG_TOY_LOST_UPDATE)) {
      /* Read-modify-write in two steps: another thread may store in between. */
      uint64_t v = cf_atomic_load(&w->counter);
      cf_atomic_store(&w->counter, v + 1);
    } else {
      cf_atomic_fetch_add(&w->counter, 1);
    }
  }
}

uint64_t toy_counter_race(int workers, int increments) {
  counter_world_t w = {{0}, increments};
  cf_thread_t t[8];
  if (workers > 8) workers = 8;
  for (int i = 0; i < workers; i++) cf_thread_spawn(&t[i], counter_worker, &w, "counter-worker");
  for (int i = 0; i < workers; i++) cf_thread_join(&t[i]);
  return w.counter.v;
}

/* ---- toy-lock-order ----------------------------------------------------------------------- */

typedef struct lock_world {
  cf_mutex_t a, b;
  int shared;
} lock_world_t;

static void lock_ab(void *arg) {
  lock_world_t *w = arg;
  cf_mutex_lock(&w->a);
  cf_mutex_lock(&w->b);
  w->shared++;
  cf_mutex_unlock(&w->b);
  cf_mutex_unlock(&w->a);
}

static void lock_second(void *arg) {
  lock_world_t *w = arg;
  if (cf_bug(CF_BUG_TOY_LOCK_ORDER)) {
    cf_mutex_lock(&w->b);
    cf_mutex_lock(&w->a);
    w->shared++;
    cf_mutex_unlock(&w->a);
    cf_mutex_unlock(&w->b);
  } else {
    lock_ab(arg);
  }
}

void toy_lock_order(void) {
  lock_world_t w;
  cf_mutex_init(&w.a, "a");
  cf_mutex_init(&w.b, "b");
  w.shared = 0;
  cf_thread_t t1, t2;
  cf_thread_spawn(&t1, lock_ab, &w, "lock-ab");
  cf_thread_spawn(&t2, lock_second, &w, "lock-second");
  cf_thread_join(&t1);
  cf_thread_join(&t2);
  CF_CHECK(w.shared == 2, "lock-order", TOY_SYSTEM, "both threads ran their critical section");
  cf_mutex_destroy(&w.a);
  cf_mutex_destroy(&w.b);
}

/* ---- toy-lost-wakeup ---------------------------------------------------------------------- */

typedef struct mailbox {
  cf_mutex_t mu;
  cf_cond_t cv;
  cf_atomic_t ready;   /* items posted and not yet taken */
  int remaining;       /* items the consumer still expects */
  cf_obligation_t owed[16];
  int head;
} mailbox_t;

static void consumer(void *arg) {
  mailbox_t *mb = arg;
  cf_mutex_lock(&mb->mu);
  while (mb->remaining > 0) {
    /* A worker waiting for work is idle, not deadlocked; a message it never receives shows up
     * as an open obligation instead. */
    while (cf_atomic_load(&mb->ready) == 0) cf_cond_wait_idle(&mb->cv, &mb->mu);
    cf_atomic_fetch_sub(&mb->ready, 1);
    cf_obligation_close(mb->owed[mb->head++]);
    mb->remaining--;
  }
  cf_mutex_unlock(&mb->mu);
}

static void producer(void *arg) {
  mailbox_t *mb = arg;
  int n = mb->remaining;
  for (int i = 0; i < n; i++) {
    if (cf_bug(CF_BUG_TOY_LOST_WAKEUP)) {
      /* The flag changes outside the mutex: the consumer may have checked it and not yet be
       * waiting, so the signal below wakes nobody. */
      cf_atomic_fetch_add(&mb->ready, 1);
      cf_cond_signal(&mb->cv);
    } else {
      cf_mutex_lock(&mb->mu);
      cf_atomic_fetch_add(&mb->ready, 1);
      cf_cond_signal(&mb->cv);
      cf_mutex_unlock(&mb->mu);
    }
  }
}

void toy_lost_wakeup(int messages) {
  static const char *const what = "message";
  mailbox_t *mb = cf_sim_alloc(sizeof *mb);
  cf_mutex_init(&mb->mu, "mailbox.mu");
  cf_cond_init(&mb->cv, "mailbox.cv");
  if (messages > 16) messages = 16;
  mb->remaining = messages;
  for (int i = 0; i < messages; i++) mb->owed[i] = cf_obligation_open(TOY_SYSTEM, what, (uint64_t)i);
  cf_thread_t c, p;
  /* The consumer is a long-lived worker: nobody joins it, as with a server's worker threads. */
  cf_thread_spawn(&c, consumer, mb, "consumer");
  cf_thread_spawn(&p, producer, mb, "producer");
  cf_thread_join(&p);
}

/* ---- toy-refcount-uaf --------------------------------------------------------------------- */

typedef struct shared_obj {
  cf_atomic_t refs;
  uint64_t payload;
} shared_obj_t;

typedef struct ref_world {
  cf_pool_t pool;
  cf_mutex_t mu;
  shared_obj_t *slot; /* the lookup table: one entry, guarded by mu */
  cf_atomic_t seen;
} ref_world_t;

static void obj_release(ref_world_t *w, shared_obj_t *o) {
  if (cf_atomic_fetch_sub(&o->refs, 1) == 1) {
    /* Last reference: remove from the table, then free. */
    cf_mutex_lock(&w->mu);
    if (w->slot == o) w->slot = NULL;
    cf_mutex_unlock(&w->mu);
    cf_pool_free(&w->pool, o);
  }
}

/* Take a reference unless the count already reached zero (the object is dying). */
static bool obj_upgrade(shared_obj_t *o) {
  uint64_t cur = cf_atomic_load(&o->refs);
  while (cur != 0)
    if (cf_atomic_cas(&o->refs, &cur, cur + 1)) return true;
  return false;
}

static void reader(void *arg) {
  ref_world_t *w = arg;
  cf_mutex_lock(&w->mu);
  shared_obj_t *o = w->slot;
  bool got = false;
  if (o) {
    if (cf_bug(CF_BUG_TOY_REFCOUNT_UAF)) {
      cf_atomic_fetch_add(&o->refs, 1);
      got = true;
    } else {
      got = obj_upgrade(o);
    }
  }
  cf_mutex_unlock(&w->mu);
  if (!got) return;
  cf_yield("reader.use");
  cf_atomic_fetch_add(&w->seen, o->payload);
  obj_release(w, o);
}

static void owner(void *arg) {
  ref_world_t *w = arg;
  cf_mutex_lock(&w->mu);
  shared_obj_t *o = w->slot;
  cf_mutex_unlock(&w->mu);
  if (o) obj_release(w, o);
}

void toy_refcount_race(int readers) {
  ref_world_t *w = cf_sim_alloc(sizeof *w);
  cf_pool_init(&w->pool, TOY_SYSTEM, "shared_obj", sizeof(shared_obj_t));
  cf_mutex_init(&w->mu, "table.mu");
  shared_obj_t *o = cf_pool_alloc(&w->pool);
  o->refs.v = 1;
  o->payload = 42;
  w->slot = o;
  if (readers > 3) readers = 3;
  cf_thread_t t[4];
  cf_thread_spawn(&t[0], owner, w, "owner");
  for (int i = 1; i <= readers; i++) cf_thread_spawn(&t[i], reader, w, "reader");
  for (int i = 0; i <= readers; i++) cf_thread_join(&t[i]);
}

/* ---- the self-test target ----------------------------------------------------------------- */

void toy_selftest_main(void *arg) {
  (void)arg;
  switch (cf_workload(4)) {
    case 0: {
      int workers = 2 + (int)cf_workload(2);
      int increments = 1 + (int)cf_workload(4);
      uint64_t got = toy_counter_race(workers, increments);
      if (got != (uint64_t)(workers * increments))
        cf_fail("lost-update", TOY_SYSTEM, CF_SITE("toy.counter.check"),
                "counter is %llu after %d workers x %d increments", (unsigned long long)got,
                workers, increments);
      break;
    }
    case 1:
      toy_lock_order();
      break;
    case 2:
      toy_lost_wakeup(1 + (int)cf_workload(3));
      break;
    default:
      toy_refcount_race(1 + (int)cf_workload(2));
      break;
  }
}
