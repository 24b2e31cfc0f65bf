/* sched.c: the scheduler and the life of one run.
 *
 * A run has two phases, after TigerBeetle's simulator:
 *   safety   - the input decides every pick (direct or PCT policy, docs/INPUT_FORMAT.md) and
 *              every enabled fault. When the schedule stream runs out, the current fiber keeps
 *              running until it blocks or exits, then the next runnable fiber after it in id
 *              order runs: no preemption, no faults, so the default schedule is sequential.
 *   liveness - entered only if the safety phase used up its step budget (something spins):
 *              faults off, round-robin at every yield point, and a no-progress watchdog.
 * The run ends at quiescence: no runnable fiber and no pending timer. Then a fiber still
 * blocked in a SYNC wait is a deadlock, an obligation still open is a liveness failure, and the
 * target's quiescence oracles run. Virtual time only moves when nothing can run.
 *
 * Picks are made on the yielding fiber's stack and switch straight to the next fiber; the host
 * context (the caller of cf_run) is resumed only when the run is over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

cf_run_state_t cf_run_state;
#define R cf_run_state

static const char *const phase_names[] = {"safety", "liveness", "done"};

/* ---- fibers ------------------------------------------------------------------------------- */

cf_fiber_t *cf_sched_spawn(void (*fn)(void *), void *arg, const char *name,
                           const cf_site_t *site) {
  if (R.nfibers >= CF_MAX_FIBERS)
    cf_fail("harness", "runtime", site, "more than %d fibers in one run", CF_MAX_FIBERS);
  cf_fiber_t *f = &R.fibers[R.nfibers];
  memset(f, 0, sizeof *f);
  f->id = R.nfibers++;
  f->name = name;
  f->fn = fn;
  f->arg = arg;
  f->deadline = -1;
  f->state = CF_FIBER_RUNNABLE;
  /* PCT: distinct initial priorities above every change-point priority, ordered by a hash of
   * the header's seed and the fiber id. */
  uint32_t h = (R.input.pct_seed + 1) * 0x9E3779B1u ^ (uint32_t)(f->id + 1) * 0x85EBCA77u;
  h ^= h >> 15;
  f->priority = 1000 + ((h % 1000) * CF_MAX_FIBERS) + (uint32_t)f->id;
  cf_fiber_prepare(f);
  cf_trace_event(CF_EV_SPAWN, site, (uint64_t)f->id, 0);
  return f;
}

static void waitq_remove(cf_waitq_t *q, cf_fiber_t *f) {
  cf_fiber_t **pp = &q->first, *prev = NULL;
  while (*pp && *pp != f) {
    prev = *pp;
    pp = &(*pp)->wq_next;
  }
  if (!*pp) return;
  *pp = f->wq_next;
  if (q->last == f) q->last = prev;
  f->wq_next = NULL;
}

void cf_sched_make_runnable(cf_fiber_t *f) {
  if (f->waitq) waitq_remove(f->waitq, f);
  f->waitq = NULL;
  f->state = CF_FIBER_RUNNABLE;
  f->deadline = -1;
}

/* ---- picking the next fiber --------------------------------------------------------------- */

static int collect_runnable(cf_fiber_t **out) {
  int n = 0;
  for (int i = 0; i < R.nfibers; i++)
    if (R.fibers[i].state == CF_FIBER_RUNNABLE) out[n++] = &R.fibers[i];
  return n;
}

/* Nothing can run: jump virtual time to the earliest deadline and time those waits out. */
static bool advance_time(void) {
  int64_t earliest = -1;
  for (int i = 0; i < R.nfibers; i++) {
    cf_fiber_t *f = &R.fibers[i];
    if (f->state == CF_FIBER_BLOCKED && f->deadline >= 0 && (earliest < 0 || f->deadline < earliest))
      earliest = f->deadline;
  }
  if (earliest < 0) return false;
  if (earliest > R.now) R.now = earliest;
  cf_trace_event(CF_EV_TIME, NULL, (uint64_t)R.now, 0);
  for (int i = 0; i < R.nfibers; i++) {
    cf_fiber_t *f = &R.fibers[i];
    if (f->state == CF_FIBER_BLOCKED && f->deadline >= 0 && f->deadline <= R.now) {
      cf_sched_make_runnable(f);
      f->timed_out = true;
    }
  }
  return true;
}

/* The runnable fiber after `cur` in cyclic id order (cur itself only if it is alone). */
static cf_fiber_t *next_after(cf_fiber_t **run, int n, const cf_fiber_t *cur) {
  int cur_id = cur ? cur->id : -1;
  for (int i = 0; i < n; i++)
    if (run[i]->id > cur_id) return run[i];
  return run[0];
}

static bool is_runnable_current(void) {
  return R.current && R.current != &R.host && R.current->state == CF_FIBER_RUNNABLE;
}

static cf_fiber_t *highest_priority(cf_fiber_t **run, int n) {
  cf_fiber_t *best = run[0];
  for (int i = 1; i < n; i++)
    if (run[i]->priority > best->priority) best = run[i];
  return best;
}

static cf_fiber_t *pick_pct(cf_fiber_t **run, int n) {
  /* At a change point the running fiber drops below every other priority (PCT). */
  uint32_t horizon = R.opt->pct_horizon ? R.opt->pct_horizon : CF_DEFAULT_PCT_HORIZON;
  for (int j = 0; j < R.input.pct_changes; j++) {
    uint32_t at = R.input.pct_planned ? R.input.pct_change_at[j]
                                      : R.input.pct_change_at[j] % horizon;
    if (R.choice_points == at && is_runnable_current())
      R.current->priority = (uint32_t)(R.input.pct_changes - j);
  }
  if (R.input.pct_planned) return highest_priority(run, n);
  if (R.pct_follow_left > 0) {
    R.pct_follow_left--;
    return highest_priority(run, n);
  }
  uint8_t b;
  if (cf_input_sched_byte(&R.input, &b)) {
    if (b & 0x80) return run[(b & 0x07) % n];
    R.pct_follow_left = b & 0x7f;
  }
  return highest_priority(run, n);
}

/* Default when the input says nothing: keep the current fiber, else the next one after it. */
static cf_fiber_t *pick_default(cf_fiber_t **run, int n) {
  if (is_runnable_current()) return R.current;
  return next_after(run, n, R.current == &R.host ? NULL : R.current);
}

/* Direct policy: a byte names the pick (low 3 bits, index into the runnable fibers in id
 * order) and how many following choice points take the default without reading a byte (high 5
 * bits), so one byte can say "switch to B here, then leave things alone for a while". */
static cf_fiber_t *pick_direct(cf_fiber_t **run, int n) {
  if (R.run_left > 0) {
    R.run_left--;
    return pick_default(run, n);
  }
  uint8_t b;
  if (!cf_input_sched_byte(&R.input, &b)) return pick_default(run, n);
  R.run_left = b >> 3;
  return run[(b & 0x07) % n];
}

static void enter_phase(cf_phase_t p) {
  R.phase = p;
  R.steps_since_progress = 0;
  R.run_left = 0;
  cf_trace_event(CF_EV_PHASE, NULL, (uint64_t)p, 0);
}

static cf_fiber_t *pick(const cf_site_t *site) {
  R.steps++;
  R.steps_since_progress++;
  uint64_t safety = R.opt->safety_steps ? R.opt->safety_steps : CF_DEFAULT_SAFETY_STEPS;
  uint64_t live = R.opt->liveness_steps ? R.opt->liveness_steps : CF_DEFAULT_LIVENESS_STEPS;
  uint64_t max = R.opt->max_steps ? R.opt->max_steps : CF_DEFAULT_MAX_STEPS;
  if (R.phase == CF_PHASE_SAFETY && R.steps > safety) enter_phase(CF_PHASE_LIVENESS);
  if (R.phase == CF_PHASE_LIVENESS && R.steps_since_progress > live)
    cf_fail("no-progress", "runtime", site,
            "%llu steps in the liveness phase without progress",
            (unsigned long long)R.steps_since_progress);
  if (R.steps > max)
    cf_fail("step-budget", "runtime", site, "the run did not reach quiescence in %llu steps",
            (unsigned long long)max);

  cf_fiber_t *run[CF_MAX_FIBERS];
  int n = collect_runnable(run);
  while (n == 0) {
    if (!advance_time()) return NULL;
    n = collect_runnable(run);
  }
  cf_fiber_t *next;
  if (n == 1) {
    next = run[0];
  } else if (R.phase == CF_PHASE_LIVENESS) {
    next = next_after(run, n, R.current == &R.host ? NULL : R.current);
    R.choice_points++;
  } else {
    next = R.input.policy == CF_POLICY_PCT ? pick_pct(run, n) : pick_direct(run, n);
    R.choice_points++;
  }
  bool switched = next != R.current;
  uint32_t sid = site ? cf_site_id(site) : 0;
  bool preempted = switched && is_runnable_current();
  if (preempted) R.preemptions++;
  if (R.opt->cov_transitions) {
    uint32_t depth = R.opt->cov_preemption_depth ? (R.preemptions < 7 ? R.preemptions : 7) : 0;
    cf_cov_transition(R.prev_site ^ depth * 0x27d4eb2fu, sid, switched);
  }
  R.prev_site = sid;
  cf_trace_event(CF_EV_PICK, site, (uint64_t)next->id, (uint64_t)n);
  return next;
}

void cf_sched_switch(const cf_site_t *site) {
  cf_fiber_t *self = R.current;
  cf_fiber_t *next = pick(site);
  bool exits = self->state == CF_FIBER_EXITED;
  if (next == self) return;
  if (!next) {
    next = &R.host; /* quiescent: the host finishes the run */
    cf_sync_release(&R.host);
  }
  R.current = next;
  /* Only the host acquires this (at the end of the run): what a fiber did before it stopped is
   * visible to the end-of-run checks, without ordering it against other fibers. */
  cf_sync_release(self);
  cf_fiber_switch(self, next, exits || next == &R.host);
}

void cf_sched_exit(void) {
  cf_fiber_t *self = R.current;
  self->state = CF_FIBER_EXITED;
  cf_sync_release(self); /* for cf_thread_join */
  cf_trace_event(CF_EV_EXIT, NULL, (uint64_t)self->id, 0);
  cf_wake_all(&self->joiners);
  cf_sched_switch(NULL);
  __builtin_unreachable();
}

/* ---- yield points and waiting ------------------------------------------------------------- */

bool cf_in_sim(void) { return R.active && R.current && R.current != &R.host; }

void cf_yield_at(const cf_site_t *site) {
  if (!cf_in_sim() || R.oracle_depth > 0) return;
  cf_trace_event(CF_EV_YIELD, site, (uint64_t)R.current->id, 0);
  cf_sched_switch(site);
}

bool cf_wait_at(cf_waitq_t *q, cf_wait_kind_t kind, int64_t timeout, const cf_site_t *site) {
  if (!cf_in_sim()) return false;
  if (R.oracle_depth > 0)
    cf_fail("harness", "runtime", site, "a blocking wait inside an oracle section");
  cf_fiber_t *f = R.current;
  f->state = CF_FIBER_BLOCKED;
  f->wait_kind = kind;
  f->wait_site = site;
  f->waitq = q;
  f->wq_next = NULL;
  if (q->last) q->last->wq_next = f;
  else q->first = f;
  q->last = f;
  f->deadline = timeout >= 0 ? R.now + timeout : -1;
  f->timed_out = false;
  cf_trace_event(CF_EV_BLOCK, site, (uint64_t)kind, (uint64_t)timeout);
  cf_sched_switch(site);
  f->wait_site = NULL;
  return !f->timed_out;
}

bool cf_wake_one(cf_waitq_t *q) {
  cf_fiber_t *f = q->first;
  if (!f) return false;
  cf_trace_event(CF_EV_WAKE, NULL, (uint64_t)f->id, 0);
  cf_sched_make_runnable(f);
  return true;
}

void cf_wake_all(cf_waitq_t *q) {
  while (cf_wake_one(q)) {
  }
}

int64_t cf_now(void) { return R.active ? R.now : 0; }

/* The oracle's reads of the copy's state are not the program's accesses: hidden from TSan. */
void cf_oracle_begin(void) {
  cf_tsan_ignore_begin();
  if (R.active) R.oracle_depth++;
}

void cf_oracle_end(void) {
  if (R.active && R.oracle_depth > 0) R.oracle_depth--;
  cf_tsan_ignore_end();
}

void cf_sleep_at(int64_t ticks, const cf_site_t *site) {
  cf_waitq_t q = {NULL, NULL};
  if (ticks < 0) ticks = 0;
  cf_wait_at(&q, CF_WAIT_SYNC, ticks, site);
}

/* ---- environment decisions and faults ----------------------------------------------------- */

uint32_t cf_choose(const cf_site_t *site, uint32_t n) {
  if (!R.active || n <= 1) return 0;
  uint8_t b = 0;
  if (R.phase == CF_PHASE_SAFETY) cf_input_sched_byte(&R.input, &b);
  uint32_t v = b % n;
  cf_trace_event(CF_EV_CHOOSE, site, v, n);
  return v;
}

void cf_fault_enable(cf_fault_class_t cls, bool on) {
  if (R.active && cls < CF_FAULT_CLASS_COUNT) R.faults_on[cls] = on;
}

/* A fault fires for one byte value in sixteen, so random schedule bytes inject faults now and
 * then rather than at every eligible operation. */
bool cf_fault(const cf_site_t *site, cf_fault_class_t cls) {
  if (!R.active || R.phase != CF_PHASE_SAFETY || cls >= CF_FAULT_CLASS_COUNT || !R.faults_on[cls])
    return false;
  uint8_t b;
  if (!cf_input_sched_byte(&R.input, &b)) return false;
  bool fire = (b & 0x0f) == 0x0f;
  cf_trace_event(CF_EV_FAULT, site, (uint64_t)cls, fire);
  return fire;
}

/* ---- obligations and end-of-run callbacks ------------------------------------------------- */

cf_obligation_t cf_obligation_open(const char *system, const char *what, uint64_t id) {
  if (!R.active) return -1;
  for (int i = 0; i < R.nobligations; i++) {
    if (!R.obligations[i].open) {
      R.obligations[i] = (cf_obligation_slot_t){system, what, id, true};
      return i;
    }
  }
  if (R.nobligations >= CF_MAX_OBLIGATIONS)
    cf_fail("harness", system, CF_SITE("obligation_open"), "more than %d open obligations",
            CF_MAX_OBLIGATIONS);
  R.obligations[R.nobligations] = (cf_obligation_slot_t){system, what, id, true};
  return R.nobligations++;
}

void cf_obligation_close(cf_obligation_t ob) {
  if (!R.active || ob < 0 || ob >= R.nobligations) return;
  R.obligations[ob].open = false;
  cf_progress();
}

void cf_progress(void) {
  if (R.active) R.steps_since_progress = 0;
}

static void push_callback(cf_callback_t *arr, int *n, void (*fn)(void *), void *arg) {
  if (*n >= CF_MAX_CALLBACKS)
    cf_fail("harness", "runtime", CF_SITE("callback"), "more than %d callbacks", CF_MAX_CALLBACKS);
  arr[(*n)++] = (cf_callback_t){fn, arg};
}

void cf_on_quiescence(void (*fn)(void *), void *arg) {
  if (R.active) push_callback(R.quiescence_cbs, &R.nquiescence, fn, arg);
}

void cf_defer(void (*fn)(void *), void *arg) {
  if (R.active) push_callback(R.defer_cbs, &R.ndefer, fn, arg);
}

void *cf_sim_alloc(size_t size) {
  cf_tsan_ignore_begin();
  void *p = calloc(1, size ? size : 1);
  cf_tsan_ignore_end();
  if (!p) abort();
  if (R.active) cf_defer(free, p);
  return p;
}

/* ---- the run ------------------------------------------------------------------------------ */

static cf_site_t quiescence_site = {"quiescence", __FILE__, __LINE__, 0};

static void check_quiescence(void) {
  R.phase = CF_PHASE_DONE;
  /* Name the wait at the root of the deadlock: a thread joining a stuck thread is only a
   * consequence, so join waits are reported only when nothing else is stuck. */
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < R.nfibers; i++) {
      cf_fiber_t *f = &R.fibers[i];
      if (f->state == CF_FIBER_BLOCKED && f->wait_kind == CF_WAIT_SYNC && f->joining == (pass == 1))
        cf_fail("deadlock", "runtime", f->wait_site ? f->wait_site : &quiescence_site,
                "no fiber can run; fiber %d (%s) waits forever", f->id, f->name);
    }
  }
  for (int i = 0; i < R.nobligations; i++) {
    cf_obligation_slot_t *o = &R.obligations[i];
    if (o->open) {
      /* The site is the kind of obligation ("message", "response"), so the signature says
       * what was owed, not merely that something was. */
      cf_site_t owed = {o->what, __FILE__, __LINE__, 0};
      cf_fail("liveness", o->system, &owed, "%s %llu still open at quiescence", o->what,
              (unsigned long long)o->id);
    }
  }
  while (R.nquiescence > 0) {
    cf_callback_t cb = R.quiescence_cbs[--R.nquiescence];
    cb.fn(cb.arg);
  }
}

static void finish_run(cf_result_t *res) {
  cf_tsan_ignore_begin();
  while (R.ndefer > 0) {
    cf_callback_t cb = R.defer_cbs[--R.ndefer];
    cb.fn(cb.arg);
  }
  for (int i = 0; i < R.nfibers; i++) cf_fiber_release(&R.fibers[i]);
  res->trace_hash = cf_trace_hash();
  res->steps = R.steps;
  res->choice_points = R.choice_points;
  cf_tsan_ignore_end(); /* while the host is still current: the bracket is counted on it */
  R.active = false;
  R.current = NULL;
}

static void target_main_trampoline(void *arg) {
  const cf_target_t *t = arg;
  t->main(NULL);
}

int cf_run(const cf_target_t *t, const uint8_t *data, size_t size, cf_result_t *res) {
  memset(&R, 0, sizeof R);
  memset(res, 0, sizeof *res);
  R.opt = &t->options;
  R.result = res;
  if (t->options.pct_planned) cf_input_init_planned(&R.input, data, size, &t->options.pct_plan);
  else cf_input_init(&R.input, data, size);
  cf_trace_reset();
  cf_fiber_adopt_host(&R.host);
  R.host.id = -1;
  R.host.name = "host";
  R.current = &R.host;
  R.active = true;
  if (setjmp(R.unwind) == 0) {
    cf_sched_spawn(target_main_trampoline, (void *)t, "main", NULL);
    cf_fiber_t *first = pick(NULL);
    R.current = first;
    cf_sync_release(&R.host);
    cf_fiber_switch(&R.host, first, false);
    cf_sync_acquire(&R.host);
    for (int i = 0; i < R.nfibers; i++) cf_sync_acquire(&R.fibers[i]);
    /* Back on the host: quiescent, or a captured failure abandoned the fibers. */
    if (!res->failed) check_quiescence();
  }
  finish_run(res);
  return res->failed ? 1 : 0;
}

const char *cf_phase_name(int p) { return p >= 0 && p <= 2 ? phase_names[p] : "?"; }
