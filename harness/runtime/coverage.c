/* coverage.c: interleaving features that every coverage-guided engine can see.
 *
 * Edge coverage is the same for every interleaving of the same code, so the fuzzer cannot tell
 * a new schedule from an old one. We add features for (previous yield site -> this yield site,
 * fiber switched or not) and for a coarse abstract-state hash supplied by the targets. Each
 * feature is a case of one big switch: the compiler gives every case its own basic block, so
 * libFuzzer's inline counters and AFL++'s edge map both count it, with their usual hit-count
 * buckets. No engine-specific section is needed. */
#include "internal.h"

#define CF_COV_TRANSITIONS 4096 /* [0, 4096): yield-site transitions */
#define CF_COV_STATES 1024      /* [4096, 5120): abstract states */

#define CF_C1(n) \
  case (n):      \
    __asm__ volatile("" ::"i"(n)); \
    break;
#define CF_C4(n) CF_C1(n) CF_C1((n) + 1) CF_C1((n) + 2) CF_C1((n) + 3)
#define CF_C16(n) CF_C4(n) CF_C4((n) + 4) CF_C4((n) + 8) CF_C4((n) + 12)
#define CF_C64(n) CF_C16(n) CF_C16((n) + 16) CF_C16((n) + 32) CF_C16((n) + 48)
#define CF_C256(n) CF_C64(n) CF_C64((n) + 64) CF_C64((n) + 128) CF_C64((n) + 192)
#define CF_C1024(n) CF_C256(n) CF_C256((n) + 256) CF_C256((n) + 512) CF_C256((n) + 768)

__attribute__((noinline)) static void cov_hit(uint32_t index) {
  switch (index) {
    CF_C1024(0)
    CF_C1024(1024)
    CF_C1024(2048)
    CF_C1024(3072)
    CF_C1024(4096)
    default:
      break;
  }
}

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

void cf_cov_transition(uint32_t prev, uint32_t site, bool switched) {
  uint32_t h = mix32(prev * 0x9E3779B1u ^ site ^ (switched ? 0x5bd1e995u : 0));
  cov_hit(h % CF_COV_TRANSITIONS);
}

void cf_cov_state(uint32_t state_hash) {
  if (!cf_run_state.active || cf_run_state.opt->no_interleaving_cov) return;
  cov_hit(CF_COV_TRANSITIONS + mix32(state_hash) % CF_COV_STATES);
}
