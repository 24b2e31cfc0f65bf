/* depth_ladder.c: the bug-depth ladder (toy-depth-1 .. toy-depth-5), a family of toy models
 * whose failure needs exactly d preemptions, each at one specific choice point, among about
 * 2 x LADDER_STEPS steps. Known bugs all fall within seconds, so they cannot tell search
 * strategies apart; the ladder can, because how time to bug grows with d says whether a
 * strategy scales. In PCT's terms (Burckhardt et al. 2010) a rung-d bug has depth d + 1, so
 * PCT finds it with probability at least 1/(n k^d) per run (n = 3 threads, k choice points).
 *
 * Two workers take LADDER_STEPS steps each; every step loads the shared `stage` (one yield
 * point). Stage j belongs to worker j % 2, which must advance it at exactly its step
 * ladder_point[j]. The rung is climbed only if control passes to the other worker right after
 * each advance: a worker that takes one more step while the other owes the next advance, or
 * that reaches its point late, breaks the ladder for the rest of the run. Climbing d + 1 stages
 * thus needs d preemptions (after advances 0 .. d-1) at fixed points, and the default schedule
 * (run each thread until it blocks) climbs one stage and breaks. No branch tells stage 3 from
 * stage 1 (only the hit counts of the early returns differ); what does is the stage itself: a
 * shared atomic, whose reads are the runtime's read features (harness/runtime/coverage.c), so a
 * schedule that makes a worker read a stage no earlier input showed is kept. That is the
 * gradient those features exist to follow, and the ladder measures how well each search uses
 * it; a bug whose progress never shows as a new value at a shared read would not have it.
 *
 * With toy-depth-d on, reaching stage d + 1 fails with `depth-ladder@ladder.top`; with every
 * toy-depth toggle off the same ladder runs and never fails (toy model, no upstream fix). */
#include "toys.h"

#include "cf.h"

#define LADDER_STEPS 64
#define LADDER_STAGES 6 /* advances for the deepest rung, d = 5 */
#define LADDER_BROKEN 1000

/* The step at which stage j is advanced, by worker j % 2: w0 at 8, 24, 40; w1 at 16, 32, 52. */
static const int ladder_point[LADDER_STAGES] = {8, 16, 24, 32, 40, 52};

typedef struct ladder {
  cf_atomic_t stage; /* next stage to advance, or LADDER_BROKEN */
  int depth;         /* preemptions the enabled rung needs; 0: no rung enabled */
} ladder_t;

typedef struct ladder_worker {
  ladder_t *l;
  int id; /* 0 or 1 */
} ladder_worker_t;

static void ladder_step(ladder_worker_t *me, int step) {
  ladder_t *l = me->l;
  uint64_t s = cf_atomic_load(&l->stage);
  if (s >= LADDER_STAGES) return; /* broken or at the top */
  int j = (int)s;
  if (j % 2 == me->id) {
    if (step < ladder_point[j]) return;
    uint64_t expect = s;
    /* Late: this worker went past its point while the stage waited for it. */
    uint64_t next = step == ladder_point[j] ? s + 1 : LADDER_BROKEN;
    if (!cf_atomic_cas(&l->stage, &expect, next) || next == LADDER_BROKEN) return;
    if (l->depth > 0 && j == l->depth)
      cf_fail("depth-ladder", TOY_LADDER_SYSTEM, CF_SITE("ladder.top"),
              "climbed %d stages: %d preemptions at their exact points", j + 1, l->depth);
  } else if (j > 0) {
    /* This worker made the last advance and took another step instead of being preempted. */
    uint64_t expect = s;
    cf_atomic_cas(&l->stage, &expect, LADDER_BROKEN);
  }
}

static void ladder_worker(void *arg) {
  ladder_worker_t *me = arg;
  for (int step = 0; step < LADDER_STEPS; step++) ladder_step(me, step);
}

void toy_depth_ladder_main(void *arg) {
  (void)arg;
  static const cf_bug_t rungs[] = {CF_BUG_TOY_DEPTH_1, CF_BUG_TOY_DEPTH_2, CF_BUG_TOY_DEPTH_3,
                                   CF_BUG_TOY_DEPTH_4, CF_BUG_TOY_DEPTH_5};
  ladder_t *l = cf_sim_alloc(sizeof *l);
  l->stage.v = 0;
  l->depth = 0;
  /* The lowest enabled rung wins, so `CHURN_BUGS=all` still names one bug. */
  for (int d = 5; d >= 1; d--)
    if (cf_bug(rungs[d - 1])) l->depth = d;
  ladder_worker_t w[2] = {{l, 0}, {l, 1}};
  cf_thread_t t[2];
  cf_thread_spawn(&t[0], ladder_worker, &w[0], "ladder-0");
  cf_thread_spawn(&t[1], ladder_worker, &w[1], "ladder-1");
  cf_thread_join(&t[0]);
  cf_thread_join(&t[1]);
}
