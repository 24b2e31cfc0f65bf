/* coverage.c: interleaving features that every coverage-guided engine can see.
 *
 * Edge coverage is the same for every interleaving of the same code, so the fuzzer cannot tell
 * a new schedule from an old one. We add three kinds of feature:
 *   reads        - (atomic access site, the value it read, bucketed): a schedule that makes a
 *                  shared read see a value no earlier input showed it is new coverage. This is
 *                  what lets a search climb a race step by step: each preemption that moves a
 *                  counter, a stage or a refcount somewhere new is kept. On by default.
 *   states       - a coarse abstract-state hash supplied by a copy (cf_cov_state). On.
 *   transitions  - (previous yield site -> this yield site, fiber switched or not). Off by
 *                  default (CHURN_COV_TRANSITIONS=1): measured, they do not shorten time to bug
 *                  and they cost speed (docs/INTERLEAVING_FEATURES.md).
 * CHURN_NO_INTERLEAVING_COV=1 turns all three off (edge coverage only). Each
 * feature is one of 7,000 tiny functions called through a table: every function entry gets its
 * own counter from the compiler's coverage instrumentation, so libFuzzer's inline counters and
 * AFL++'s edge map both count it, with their usual hit-count buckets, and no engine-specific
 * section is needed. (A switch would do the same, but comparison tracing then walks its 7,000
 * case values on every call.) */
#include "internal.h"

#define CF_COV_TRANSITIONS 4000 /* [0, 4000): yield-site transitions */
#define CF_COV_STATES 1000      /* [4000, 5000): abstract states */
#define CF_COV_READS 2000       /* [5000, 7000): (site, value read) */

/* Decimal expansion by token pasting: CF_D1000(m, 3) applies m to 3000 ... 3999. */
#define CF_D10(m, p) m(p##0) m(p##1) m(p##2) m(p##3) m(p##4) m(p##5) m(p##6) m(p##7) m(p##8) m(p##9)
#define CF_D100(m, p)                                                                        \
  CF_D10(m, p##0) CF_D10(m, p##1) CF_D10(m, p##2) CF_D10(m, p##3) CF_D10(m, p##4)          \
  CF_D10(m, p##5) CF_D10(m, p##6) CF_D10(m, p##7) CF_D10(m, p##8) CF_D10(m, p##9)
#define CF_D1000(m, p)                                                                       \
  CF_D100(m, p##0) CF_D100(m, p##1) CF_D100(m, p##2) CF_D100(m, p##3) CF_D100(m, p##4)     \
  CF_D100(m, p##5) CF_D100(m, p##6) CF_D100(m, p##7) CF_D100(m, p##8) CF_D100(m, p##9)
#define CF_ALL(m)                                                                            \
  CF_D1000(m, 0) CF_D1000(m, 1) CF_D1000(m, 2) CF_D1000(m, 3) CF_D1000(m, 4) CF_D1000(m, 5)  \
  CF_D1000(m, 6)

#define CF_FEATURE_FN(n)                                                                     \
  __attribute__((noinline)) static void cf_feature_##n(void) { __asm__ volatile(""); }
#define CF_FEATURE_PTR(n) cf_feature_##n,

CF_ALL(CF_FEATURE_FN)

static void (*const features[CF_COV_TRANSITIONS + CF_COV_STATES + CF_COV_READS])(void) = {
    CF_ALL(CF_FEATURE_PTR)};

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/* Not instrumented itself: its indirect call would cost a __sanitizer_cov_trace_pc_indir on
 * every yield and tell the engines nothing the feature functions do not. */
__attribute__((no_sanitize("coverage"))) void cf_cov_transition(uint32_t prev, uint32_t site,
                                                                 bool switched) {
  uint32_t h = mix32(prev * 0x9E3779B1u ^ site ^ (switched ? 0x5bd1e995u : 0));
  features[h % CF_COV_TRANSITIONS]();
}

__attribute__((no_sanitize("coverage"))) void cf_cov_state(uint32_t state_hash) {
  if (!cf_run_state.active || !cf_run_state.opt->cov_states) return;
  features[CF_COV_TRANSITIONS + mix32(state_hash) % CF_COV_STATES]();
}

/* Small values (counts, stages, states, refcounts) exactly; larger ones (times, sizes,
 * addresses) by their power of two, so a value that differs on every run stays one feature. */
static uint32_t value_bucket(uint64_t v) {
  if (v < 16) return (uint32_t)v;
  return 16 + (uint32_t)(63 - __builtin_clzll(v));
}

__attribute__((no_sanitize("coverage"))) void cf_cov_read(uint32_t site, uint64_t value) {
  if (!cf_run_state.active || !cf_run_state.opt->cov_reads) return;
  uint32_t h = mix32(site * 0x9E3779B1u ^ value_bucket(value) * 0x85EBCA77u);
  features[CF_COV_TRANSITIONS + CF_COV_STATES + h % CF_COV_READS]();
}
