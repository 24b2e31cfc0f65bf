/* entry.c: what libFuzzer's main, libAFLDriver's main and the replay main all call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const cf_target_t *cf_fuzz_target;
uint64_t cf_fuzz_last_hash;

static cf_target_t active_target;

/* ASan's defaults for every binary with an engine or replay entry (ASAN_OPTIONS still wins,
 * key by key). A run allocates its objects and frees them all by its end: at most about 180 KB
 * for fuzz_epoll_shim, under 10 KB for fuzz_tls_intern. ASan's default 256 MB quarantine then
 * only keeps freed memory cycling out of the cache and back in through page faults, which cost
 * a fifth of the run time; 1 MB still holds every chunk a run frees until well after the run
 * has ended, so a use after free inside a run is reported as before (and the copies' pools
 * poison freed items themselves). */
const char *__asan_default_options(void) { return "quarantine_size_mb=1"; }

/* An on/off switch with a default: unset or empty keeps it, "0" is off, anything else on. */
static bool env_switch(const char *name, bool dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  return strcmp(v, "0") != 0;
}

static bool env_flag(const char *name) { return env_switch(name, false); }

/* Everything a first run would do differently from later ones happens here, before the
 * engine's loop, so that every run of an input covers the same edges (AFL++ stability 100%). */
int cf_fuzz_init(const cf_target_t *t) {
  cf_bugs_from_env();
  cf_sites_init();
  cf_fiber_prefill_stacks();
  cf_trace_stream = env_flag("CHURN_TRACE");
  /* Inside an engine's loop nobody reads note text: the crash is replayed for its report. The
   * replay binary turns it back on after this. */
  cf_note_text = cf_trace_stream || env_flag("CHURN_NOTES");
  active_target = *t;
  cf_run_options_t *o = &active_target.options;
  o->cov_reads = env_switch("CHURN_COV_READS", true);
  o->cov_states = env_switch("CHURN_COV_STATES", true);
  o->cov_preemption_depth = env_flag("CHURN_COV_PREEMPTIONS");
  o->cov_transitions = env_switch("CHURN_COV_TRANSITIONS", false) || o->cov_preemption_depth;
  if (env_flag("CHURN_NO_INTERLEAVING_COV"))
    o->cov_reads = o->cov_states = o->cov_transitions = o->cov_preemption_depth = false;
  active_target.options.capture = false;
  cf_fuzz_target = &active_target;
  return 0;
}

void cf_fuzz_set_pct_plan(const cf_pct_plan_t *plan) {
  active_target.options.pct_planned = plan != NULL;
  if (plan) active_target.options.pct_plan = *plan;
}

int cf_fuzz_one(const cf_target_t *t, const uint8_t *data, size_t size) {
  if (cf_fuzz_target == NULL) cf_fuzz_init(t);
  cf_result_t res;
  cf_run(cf_fuzz_target, data, size, &res);
  cf_fuzz_last_hash = res.trace_hash;
  return 0;
}
