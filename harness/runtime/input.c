/* input.c: the fuzz input as two decision streams (format: docs/INPUT_FORMAT.md).
 *
 * Byte 0 is the header (policy, PCT seed), followed by the PCT change points when the policy
 * is PCT. The rest is read from both ends: workload decisions from the front, schedule and
 * environment decisions from the back, last byte first. A mutation in one stream leaves the
 * other intact, and truncating the input shortens the schedule before it touches the workload's
 * first decisions. When the streams meet, both are exhausted and the defaults apply. */
#include <string.h>

#include "internal.h"

void cf_input_init(cf_input_t *in, const uint8_t *data, size_t size) {
  if (size > CF_INPUT_MAX) size = CF_INPUT_MAX;
  in->data = data;
  in->front = 0;
  in->back = size;
  in->policy = CF_POLICY_DIRECT;
  in->pct_seed = 0;
  in->pct_changes = 0;
  memset(in->pct_change_at, 0, sizeof in->pct_change_at);
  in->pct_planned = false;
  if (size == 0) return;
  uint8_t header = data[0];
  in->front = 1;
  uint8_t policy = header & 0x03;
  if (policy == 0) return;
  in->policy = CF_POLICY_PCT;
  in->pct_seed = header >> 2;
  in->pct_changes = policy - 1;
  for (int i = 0; i < in->pct_changes; i++) {
    uint32_t v = 0;
    for (int b = 0; b < 2; b++)
      if (in->front < in->back) v |= (uint32_t)data[in->front++] << (8 * b);
    in->pct_change_at[i] = v;
  }
}

void cf_input_init_planned(cf_input_t *in, const uint8_t *data, size_t size,
                           const cf_pct_plan_t *plan) {
  cf_input_init(in, NULL, 0);
  if (size > CF_INPUT_MAX) size = CF_INPUT_MAX;
  in->data = data;
  in->back = size;
  in->policy = CF_POLICY_PCT;
  in->pct_planned = true;
  in->pct_seed = plan->seed;
  in->pct_changes = plan->changes < 0 ? 0 : plan->changes > CF_PCT_PLAN_MAX ? CF_PCT_PLAN_MAX
                                                                             : plan->changes;
  for (int i = 0; i < in->pct_changes; i++) in->pct_change_at[i] = plan->change_at[i];
}

bool cf_input_sched_left(const cf_input_t *in) { return in->back > in->front; }

bool cf_input_sched_byte(cf_input_t *in, uint8_t *out) {
  if (in->back <= in->front) return false;
  *out = in->data[--in->back];
  return true;
}

static bool workload_byte(uint8_t *out) {
  cf_input_t *in = &cf_run_state.input;
  if (!cf_run_state.active || in->front >= in->back) return false;
  *out = in->data[in->front++];
  return true;
}

uint32_t cf_workload_byte(void) {
  uint8_t b = 0;
  bool got = workload_byte(&b);
  if (cf_run_state.active) cf_trace_event(CF_EV_WORKLOAD, NULL, b, got ? 256 : 0);
  return b;
}

bool cf_workload_left(void) {
  return cf_run_state.active && cf_run_state.input.front < cf_run_state.input.back;
}

/* Values below 256 take one byte, larger ranges take as many bytes as they need, little end
 * first, so small choices stay one mutation away from each other. */
uint32_t cf_workload(uint32_t n) {
  if (n <= 1) return 0;
  uint64_t v = 0;
  int got = 0;
  for (uint32_t range = n - 1, shift = 0; range; range >>= 8, shift += 8) {
    uint8_t b = 0;
    if (workload_byte(&b)) got = 1;
    v |= (uint64_t)b << shift;
  }
  uint32_t r = (uint32_t)(v % n);
  if (cf_run_state.active) cf_trace_event(CF_EV_WORKLOAD, NULL, r, got ? n : 0);
  return r;
}
