/* test_tls_intern.c: the TLS intern cache copy's registry semantics in both eras, driven
 * directly inside a simulated run (single fiber: no interleaving, so every step is the one the
 * spec describes), and its oracles catching each toggle. */
#include "cf.h"
#include "run.h"
#include "task.h"
#include "tls.h"

typedef struct probe {
  int ok;           /* set by the scenario when every in-run expectation held */
  uint64_t s1, w1;  /* counts observed after the first intern */
  bool same;        /* the second intern of equal content returned the first config */
  bool upgrade_of_dead;
  size_t live_after;
} probe_t;

static probe_t probe;

static tls_world_t *new_world(void) {
  tls_world_t *w = cf_sim_alloc(sizeof *w);
  tls_scenario_t sc = {.js_threads = 1, .cache_limit = 1, .nfetches = 0};
  tls_world_init(w, &sc);
  return w;
}

/* E3: intern gives strong 1 / weak 2 (collective + registry); an equal config dedups to the
 * same object; releasing both frees everything; upgrade refuses a strong count of 0. */
static void e3_main(void *arg) {
  (void)arg;
  tls_world_t *w = new_world();
  ssl_config_t *a = registry_intern(w, ssl_config_new(w, 0));
  probe.s1 = a->strong.v;
  probe.w1 = a->weak.v;
  ssl_config_t *b = registry_intern(w, ssl_config_new(w, 0));
  probe.same = a == b;
  ssl_config_release(w, b);
  ssl_config_release(w, a);
  probe.live_after = w->configs.live + w->strings.live;
  ssl_config_t *d = ssl_config_new(w, 1);
  d->strong.v = 0;
  probe.upgrade_of_dead = ssl_config_upgrade(d);
  d->strong.v = 1;
  ssl_config_release(w, d);
}

static int run_main(void (*fn)(void *), uint64_t bugs, cf_result_t *r) {
  cf_target_t t = {.name = "tls-unit", .system = TLS_SYSTEM, .main = fn};
  t.options.capture = true;
  uint64_t saved = cf_bugs_enabled;
  cf_bugs_enabled = bugs;
  int rc = cf_run(&t, (const uint8_t *)"", 0, r);
  cf_bugs_enabled = saved;
  return rc;
}

TEST_IMPL(tls_e3_intern_dedups_and_frees) {
  cf_result_t r;
  memset(&probe, 0, sizeof probe);
  ASSERT_EQ(run_main(e3_main, 0, &r), 0);
  ASSERT_U64_EQ(probe.s1, 1);
  ASSERT_U64_EQ(probe.w1, 2);
  ASSERT_TRUE(probe.same);
  ASSERT_EQ(probe.live_after, 0);
  ASSERT_FALSE(probe.upgrade_of_dead);
  return 0;
}

/* A config whose last holder is tearing it down (strong 0, still a registry key): E3 replaces
 * the key in place with the new config; E1 refs it back to 1 and the checker reports the
 * resurrection when the teardown frees it. */
static void dying_entry_main(void *arg) {
  (void)arg;
  tls_world_t *w = new_world();
  ssl_config_t *x = registry_intern(w, ssl_config_new(w, 2));
  x->strong.v = 0; /* as after the last holder's fetch_sub, before its remove() */
  ssl_config_t *n = registry_intern(w, ssl_config_new(w, 2));
  probe.same = n == x;
  probe.ok = w->registry.count == 1 && w->registry.slots[0].key == n;
  /* The dying config's teardown continues: remove (a no-op for E3: another key now), strings,
   * memory. */
  if (tls_era_e1()) {
    registry_remove(w, x);
    ssl_config_free_unshared(w, x); /* the checker fires here: x has a holder again */
  } else {
    ssl_config_deinit(w, x);
    ssl_config_weak_deinit(w, x);
    probe.live_after = (size_t)w->registry.count;
    ssl_config_release(w, n);
  }
}

TEST_IMPL(tls_e3_dying_entry_is_replaced_in_place) {
  cf_result_t r;
  memset(&probe, 0, sizeof probe);
  ASSERT_EQ(run_main(dying_entry_main, 0, &r), 0);
  ASSERT_FALSE(probe.same);
  ASSERT_TRUE(probe.ok);
  ASSERT_EQ(probe.live_after, 1); /* x's remove() left n's slot alone */
  return 0;
}

TEST_IMPL(tls_e1_resurrection_is_reported) {
  cf_result_t r;
  memset(&probe, 0, sizeof probe);
  ASSERT_EQ(run_main(dying_entry_main, 1ull << CF_BUG_TLS_27838_RESURRECT, &r), 1);
  ASSERT_TRUE(probe.same);
  ASSERT_STR_EQ(r.oracle, "resurrection");
  return 0;
}

/* remove(P) where P's content matches another config's slot: the identity check keeps the
 * slot; without it the checker reports the wrong removal. */
static void remove_other_main(void *arg) {
  (void)arg;
  tls_world_t *w = new_world();
  ssl_config_t *x = registry_intern(w, ssl_config_new(w, 3));
  ssl_config_t *p = ssl_config_new(w, 3); /* equal content, never interned */
  registry_remove(w, p);
  probe.ok = w->registry.count == 1 && w->registry.slots[0].key == x;
  ssl_config_release(w, p);
  ssl_config_release(w, x);
}

TEST_IMPL(tls_remove_checks_identity) {
  cf_result_t r;
  memset(&probe, 0, sizeof probe);
  ASSERT_EQ(run_main(remove_other_main, 0, &r), 0);
  ASSERT_TRUE(probe.ok);
  ASSERT_EQ(run_main(remove_other_main, 1ull << CF_BUG_TLS_27838_REMOVE_BY_CONTENT, &r), 1);
  ASSERT_STR_EQ(r.oracle, "remove-not-exact");
  return 0;
}
