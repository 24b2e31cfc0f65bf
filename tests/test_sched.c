/* test_sched.c: the scheduler, the phases and the oracles, on the toy models and on small
 * purpose-built worlds. Failures are captured (cf_run returns them) instead of aborting. */
#include <stdlib.h>

#include "cf.h"
#include "internal.h"
#include "run.h"
#include "task.h"
#include "testutil.h"
#include "toys.h"

static cf_target_t toy_target(void) {
  cf_target_t t = {.name = "toys", .system = TOY_SYSTEM, .main = toy_selftest_main};
  t.options.capture = true;
  return t;
}

/* Workload for the lost-update toy: toy 0, 2 workers, 3 increments each. */
static const uint8_t lost_update_workload[] = {0x00 /* header */, 0, 0, 2};

TEST_IMPL(sched_default_schedule_is_sequential) {
  cf_target_t t = toy_target();
  cf_result_t r;
  cf_bugs_enabled = 1ull << CF_BUG_TOY_LOST_UPDATE;
  int rc = cf_run(&t, lost_update_workload, sizeof lost_update_workload, &r);
  cf_bugs_enabled = 0;
  ASSERT_EQ(rc, 0);
  ASSERT_FALSE(r.failed);
  ASSERT_TRUE(r.steps > 10);
  return 0;
}

/* Search schedule suffixes of one and two bytes for a lost update. */
TEST_IMPL(sched_lost_update_reached_by_some_schedule) {
  cf_target_t t = toy_target();
  cf_result_t r;
  uint8_t in[sizeof lost_update_workload + 2];
  memcpy(in, lost_update_workload, sizeof lost_update_workload);
  int found = 0;
  cf_bugs_enabled = 1ull << CF_BUG_TOY_LOST_UPDATE;
  for (int a = 0; a < 256 && !found; a++) {
    for (int b = 0; b < 256 && !found; b += 7) {
      in[sizeof lost_update_workload] = (uint8_t)b;
      in[sizeof lost_update_workload + 1] = (uint8_t)a; /* read first: the stream runs backwards */
      if (cf_run(&t, in, sizeof in, &r)) found = 1;
    }
  }
  cf_bugs_enabled = 0;
  ASSERT_TRUE(found);
  ASSERT_STR_EQ(r.oracle, "lost-update");
  ASSERT_STR_EQ(r.site, "toy.counter.check");
  /* The same input without the toggle passes: the fixed code is race-free. */
  ASSERT_EQ(cf_run(&t, in, sizeof in, &r), 0);
  return 0;
}

TEST_IMPL(sched_lock_order_inversion_is_deadlock) {
  cf_target_t t = toy_target();
  cf_result_t r;
  uint8_t in[] = {0x00, 0x01 /* toy 1 */, 0, 0, 0, 0, 0, 0, 0, 0};
  int found = 0;
  cf_bugs_enabled = 1ull << CF_BUG_TOY_LOCK_ORDER;
  for (uint32_t seed = 1; seed < 4000 && !found; seed++) {
    fill_random(in + 2, sizeof in - 2, seed);
    if (cf_run(&t, in, sizeof in, &r)) found = 1;
  }
  cf_bugs_enabled = 0;
  ASSERT_TRUE(found);
  ASSERT_STR_EQ(r.oracle, "deadlock");
  /* The report names a lock wait, not the join of the thread that waits for the others. */
  ASSERT_TRUE(strncmp(r.site, "lock ", 5) == 0);
  ASSERT_EQ(cf_run(&t, in, sizeof in, &r), 0);
  return 0;
}

TEST_IMPL(sched_lost_wakeup_leaves_obligation_open) {
  cf_target_t t = toy_target();
  cf_result_t r;
  uint8_t in[] = {0x00, 0x02 /* toy 2 */, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
  int found = 0;
  cf_bugs_enabled = 1ull << CF_BUG_TOY_LOST_WAKEUP;
  for (uint32_t seed = 1; seed < 4000 && !found; seed++) {
    fill_random(in + 3, sizeof in - 3, seed);
    if (cf_run(&t, in, sizeof in, &r)) found = 1;
  }
  cf_bugs_enabled = 0;
  ASSERT_TRUE(found);
  ASSERT_STR_EQ(r.oracle, "liveness");
  ASSERT_STR_EQ(r.site, "message");
  ASSERT_TRUE(strstr(r.detail, "still open at quiescence") != NULL);
  ASSERT_EQ(cf_run(&t, in, sizeof in, &r), 0);
  return 0;
}

TEST_IMPL(sched_pct_header_finds_lost_update) {
  cf_target_t t = toy_target();
  cf_result_t r;
  /* Header policy 2: PCT with one change point; then the workload; no per-step bytes. */
  uint8_t in[] = {0x02, 0, 0, 0, 0, 2};
  int found = 0;
  cf_bugs_enabled = 1ull << CF_BUG_TOY_LOST_UPDATE;
  for (int seed = 0; seed < 64 && !found; seed++) {
    for (int cp = 0; cp < 40 && !found; cp++) {
      in[0] = (uint8_t)(0x02 | (seed << 2));
      in[1] = (uint8_t)cp;
      if (cf_run(&t, in, sizeof in, &r)) found = 1;
    }
  }
  cf_bugs_enabled = 0;
  ASSERT_TRUE(found);
  ASSERT_STR_EQ(r.oracle, "lost-update");
  return 0;
}

/* ---- purpose-built worlds ----------------------------------------------------------------- */

static cf_atomic_t spin_flag;
static void spinner(void *arg) {
  (void)arg;
  while (cf_atomic_load(&spin_flag) == 0) {
  }
}
static void spin_main(void *arg) {
  (void)arg;
  spin_flag.v = 0;
  cf_thread_t t;
  cf_thread_spawn(&t, spinner, NULL, "spinner");
  cf_thread_join(&t);
}

TEST_IMPL(sched_spinning_fiber_is_no_progress) {
  cf_target_t t = {.name = "spin", .system = "test", .main = spin_main};
  t.options.capture = true;
  t.options.safety_steps = 500;
  t.options.liveness_steps = 500;
  cf_result_t r;
  ASSERT_EQ(cf_run(&t, NULL, 0, &r), 1);
  ASSERT_STR_EQ(r.oracle, "no-progress");
  ASSERT_TRUE(r.steps > 1000);
  ASSERT_TRUE(r.steps < 1100);
  return 0;
}

static cf_mutex_t tw_mu;
static cf_cond_t tw_cv;
static int64_t tw_woke_at;
static bool tw_result;
static void timed_main(void *arg) {
  (void)arg;
  cf_mutex_init(&tw_mu, "mu");
  cf_cond_init(&tw_cv, "cv");
  cf_mutex_lock(&tw_mu);
  tw_result = cf_cond_timedwait(&tw_cv, &tw_mu, 250);
  tw_woke_at = cf_now();
  cf_mutex_unlock(&tw_mu);
}

TEST_IMPL(sched_timed_wait_advances_virtual_time) {
  cf_target_t t = {.name = "timed", .system = "test", .main = timed_main};
  t.options.capture = true;
  cf_result_t r;
  ASSERT_EQ(cf_run(&t, NULL, 0, &r), 0);
  ASSERT_FALSE(tw_result);
  ASSERT_EQ(tw_woke_at, 250);
  return 0;
}

static void quiescence_check_fails(void *arg) {
  (void)arg;
  cf_fail("conservation", "test", CF_SITE("test.quiescence"), "refcount off by one");
}
static void quiescence_main(void *arg) {
  (void)arg;
  cf_on_quiescence(quiescence_check_fails, NULL);
}

TEST_IMPL(sched_quiescence_oracle_failure_is_captured) {
  cf_target_t t = {.name = "q", .system = "test", .main = quiescence_main};
  t.options.capture = true;
  cf_result_t r;
  ASSERT_EQ(cf_run(&t, NULL, 0, &r), 1);
  ASSERT_STR_EQ(r.oracle, "conservation");
  ASSERT_STR_EQ(r.site, "test.quiescence");
  /* The runtime is usable again right after a captured failure. */
  cf_target_t toys = toy_target();
  ASSERT_EQ(cf_run(&toys, lost_update_workload, sizeof lost_update_workload, &r), 0);
  return 0;
}

static void relock_main(void *arg) {
  (void)arg;
  cf_mutex_t m;
  cf_mutex_init(&m, "m");
  cf_mutex_lock(&m);
  cf_mutex_lock(&m);
}

TEST_IMPL(sched_relock_by_owner_is_deadlock) {
  cf_target_t t = {.name = "relock", .system = "test", .main = relock_main};
  t.options.capture = true;
  cf_result_t r;
  ASSERT_EQ(cf_run(&t, NULL, 0, &r), 1);
  ASSERT_STR_EQ(r.oracle, "deadlock");
  return 0;
}

/* Two fibers that keep handing a token back and forth and call it progress: the liveness
 * watchdog never fires, the absolute step budget does. */
static cf_atomic_t token;
static void pinger(void *arg) {
  uint64_t me = (uint64_t)(uintptr_t)arg;
  for (;;) {
    if (cf_atomic_load(&token) == me) {
      cf_atomic_store(&token, 1 - me);
      cf_progress();
    }
  }
}
static void pingpong_main(void *arg) {
  (void)arg;
  token.v = 0;
  cf_thread_t a, b;
  cf_thread_spawn(&a, pinger, (void *)(uintptr_t)0, "ping");
  cf_thread_spawn(&b, pinger, (void *)(uintptr_t)1, "pong");
  cf_thread_join(&a);
}

TEST_IMPL(sched_step_budget_bounds_every_run) {
  cf_target_t t = {.name = "pingpong", .system = "test", .main = pingpong_main};
  t.options.capture = true;
  t.options.safety_steps = 100;
  t.options.liveness_steps = 100;
  t.options.max_steps = 5000;
  cf_result_t r;
  ASSERT_EQ(cf_run(&t, NULL, 0, &r), 1);
  ASSERT_STR_EQ(r.oracle, "step-budget");
  ASSERT_EQ(r.steps, 5001);
  return 0;
}

/* PCT change points are independent: the one at choice point 1 (listed second) must not stop
 * the one at choice point 3 (listed first) from firing. With seed 0 the drop at 3 exposes the
 * race and the drop at 1 does not, so the pair must fail like the drop at 3 alone. */
TEST_IMPL(sched_pct_change_points_fire_in_any_order) {
  cf_target_t t = toy_target();
  cf_result_t r;
  static const uint8_t both[] = {0x03, 0x03, 0x00, 0x01, 0x00};
  static const uint8_t first_only[] = {0x02, 0x03, 0x00};
  static const uint8_t second_only[] = {0x02, 0x01, 0x00};
  cf_bugs_enabled = 1ull << CF_BUG_TOY_LOST_UPDATE;
  int rc_both = cf_run(&t, both, sizeof both, &r);
  int rc_first = cf_run(&t, first_only, sizeof first_only, &r);
  int rc_second = cf_run(&t, second_only, sizeof second_only, &r);
  cf_bugs_enabled = 0;
  ASSERT_EQ(rc_first, 1);
  ASSERT_EQ(rc_second, 0);
  ASSERT_EQ(rc_both, 1);
  return 0;
}

/* A PCT plan given outside the input (`--simulate pct`, `--pct-plan`) schedules exactly as the
 * same seed and change point given in the header, and per-step bytes never override it. */
TEST_IMPL(sched_pct_plan_matches_header_and_ignores_overrides) {
  cf_target_t t = toy_target();
  cf_result_t r;
  static const uint8_t header_at_3[] = {0x02, 0x03, 0x00};
  static const uint8_t workload[] = {0, 0, 0};
  static const uint8_t workload_then_overrides[] = {0, 0, 0, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81};
  cf_bugs_enabled = 1ull << CF_BUG_TOY_LOST_UPDATE;
  int rc_header = cf_run(&t, header_at_3, sizeof header_at_3, &r);
  uint64_t header_hash = r.trace_hash;
  t.options.pct_planned = true;
  t.options.pct_plan = (cf_pct_plan_t){.seed = 0, .changes = 1, .change_at = {3}};
  int rc_plan = cf_run(&t, NULL, 0, &r);
  uint64_t plan_hash = r.trace_hash;
  t.options.pct_plan.change_at[0] = 1;
  int rc_plan_at_1 = cf_run(&t, workload, sizeof workload, &r);
  uint64_t plain_hash = r.trace_hash;
  cf_run(&t, workload_then_overrides, sizeof workload_then_overrides, &r);
  uint64_t overridden_hash = r.trace_hash;
  cf_bugs_enabled = 0;
  ASSERT_EQ(rc_header, 1);
  ASSERT_EQ(rc_plan, 1);
  ASSERT_EQ(plan_hash, header_hash);
  ASSERT_EQ(rc_plan_at_1, 0);
  ASSERT_EQ(overridden_hash, plain_hash);
  return 0;
}
