/* run.h: running one input as one simulated run, and the glue every fuzz engine calls. */
#ifndef CF_RUN_H
#define CF_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Inputs longer than this are truncated (never rejected): the rest is ignored. */
#define CF_INPUT_MAX 65536

/* A PCT schedule chosen outside the input, for measuring PCT as Shuttle and Coyote run it (the
 * `--simulate pct` mode of the replay binary, `churn bench matrix`): random priorities from
 * `seed`, `changes` priority-change points at the given choice-point indexes (not reduced modulo
 * the horizon), and no per-step overrides. The whole input is then workload and environment
 * bytes: it has no header, and schedule-stream bytes are read only by cf_choose/cf_fault. The
 * input format cannot say more than 2 change points; this can say up to CF_PCT_PLAN_MAX. */
#define CF_PCT_PLAN_MAX 6
typedef struct cf_pct_plan {
  uint32_t seed;
  int changes;
  uint32_t change_at[CF_PCT_PLAN_MAX];
} cf_pct_plan_t;

typedef struct cf_run_options {
  /* Unwind on failure and return it from cf_run() instead of printing and aborting. Only for
   * failures raised by cf_fail(); sanitizer reports still abort. */
  bool capture;
  /* Scheduling steps allowed in the safety phase before the run switches to the liveness
   * phase (fair round-robin, faults off). 0 selects the default. */
  uint64_t safety_steps;
  /* Liveness phase: steps allowed without a progress event before "no-progress" fires. */
  uint64_t liveness_steps;
  /* Absolute bound on scheduling steps in one run, progress or not ("step-budget"). */
  uint64_t max_steps;
  /* PCT: change points are decision indexes in [0, pct_horizon). */
  uint32_t pct_horizon;
  /* Interleaving-coverage features (harness/runtime/coverage.c). Zero here means off: the
   * engines' entry (cf_fuzz_init) turns reads and states on and reads the CHURN_COV_* and
   * CHURN_NO_INTERLEAVING_COV switches; a direct cf_run() caller gets none. */
  bool cov_reads;       /* (atomic site, value read) */
  bool cov_states;      /* cf_cov_state hashes from the copies */
  bool cov_transitions; /* (yield site -> yield site, switched): CHURN_COV_TRANSITIONS=1 */
  /* Experimental, off (CHURN_COV_PREEMPTIONS=1, implies transitions): key each transition
   * feature by the run's preemptions so far (capped at 7). docs/INTERLEAVING_FEATURES.md
   * reports what it did. */
  bool cov_preemption_depth;
  /* When set, pct_plan replaces the input's header (see cf_pct_plan_t). */
  bool pct_planned;
  cf_pct_plan_t pct_plan;
} cf_run_options_t;

#define CF_DEFAULT_SAFETY_STEPS 20000
#define CF_DEFAULT_LIVENESS_STEPS 20000
#define CF_DEFAULT_MAX_STEPS 1000000
#define CF_DEFAULT_PCT_HORIZON 256

typedef struct cf_result {
  bool failed;
  char oracle[48];
  char system[48];
  char site[96];
  char detail[256];
  uint64_t trace_hash;
  uint64_t steps;
  uint64_t choice_points;
} cf_result_t;

typedef struct cf_target {
  const char *name;     /* the fuzzer's name, e.g. "fuzz_sim_selftest" */
  const char *system;   /* what oracle lines call the system under test */
  /* Runs as the first fiber ("main"): decode the workload, build the world, spawn threads,
   * join them, check. Everything it allocates must be released through cf_defer(). */
  void (*main)(void *arg);
  cf_run_options_t options;
} cf_target_t;

/* Run one input. Returns 0 when it passed, 1 when an oracle fired (capture mode only; in the
 * default mode a failure aborts the process after the report). */
int cf_run(const cf_target_t *t, const uint8_t *data, size_t size, cf_result_t *res);

/* libFuzzer / AFL++ / replay glue. */
int cf_fuzz_init(const cf_target_t *t);
int cf_fuzz_one(const cf_target_t *t, const uint8_t *data, size_t size);
/* The target linked into this binary (set by CF_FUZZ_TARGET) and its last run's trace hash. */
extern const cf_target_t *cf_fuzz_target;
extern uint64_t cf_fuzz_last_hash;
/* Give every later cf_fuzz_one a PCT plan (NULL: back to the input's own header). */
void cf_fuzz_set_pct_plan(const cf_pct_plan_t *plan);

/* Whether cf_note formats its text (default on). Notes are always recorded and hashed the
 * same way; only their text, which the trace stream and failure reports show, is skipped. */
extern bool cf_note_text;

/* One entry file for every engine: libFuzzer's and libAFLDriver's main call these, and so
 * does the standalone replay main. */
#ifndef CF_NO_FUZZ_ENTRY
#define CF_FUZZ_TARGET(target_)                                                              \
  int LLVMFuzzerInitialize(int *argc, char ***argv) {                                       \
    (void)argc;                                                                             \
    (void)argv;                                                                             \
    return cf_fuzz_init(&(target_));                                                        \
  }                                                                                         \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                           \
    return cf_fuzz_one(&(target_), data, size);                                             \
  }
#else
#define CF_FUZZ_TARGET(target_)
#endif

#endif
