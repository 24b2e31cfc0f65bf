/* bench_runtime.c: runtime micro-benchmarks; prints numbers, asserts nothing.
 *   - raw context switch (cf_fiber_switch between two contexts), ns per switch;
 *   - a yield that switches fibers (scheduler pick + trace + coverage + switch), ns per yield;
 *   - whole runs per second of the minimal two-fiber target and of the toy race target.
 * Build: ./build.sh bench (-O2, no sanitizers). Usage: bench-runtime [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "internal.h"

extern const cf_target_t fuzz_sim_selftest_target;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cf_fiber_t ping, host;
static void ping_main(void *arg) {
  (void)arg;
  for (;;) cf_fiber_switch(&ping, &host, false);
}

static double bench_raw_switch(long n) {
  memset(&ping, 0, sizeof ping);
  memset(&host, 0, sizeof host);
  cf_fiber_adopt_host(&host);
  ping.fn = ping_main;
  cf_fiber_prepare(&ping);
  cf_run_state.current = &ping;
  cf_fiber_switch(&host, &ping, false); /* first entry */
  double t0 = now_s();
  for (long i = 0; i < n; i++) cf_fiber_switch(&host, &ping, false);
  double t1 = now_s();
  cf_run_state.current = NULL;
  return (t1 - t0) * 1e9 / (double)(2 * n);
}

static int yields_per_fiber;
static void yielder(void *arg) {
  (void)arg;
  for (int i = 0; i < yields_per_fiber; i++) cf_yield("bench.yield");
}
static void yield_main(void *arg) {
  (void)arg;
  cf_thread_t a, b;
  cf_thread_spawn(&a, yielder, NULL, "a");
  cf_thread_spawn(&b, yielder, NULL, "b");
  cf_thread_join(&a);
  cf_thread_join(&b);
}

static double bench_yield_switch(int per_fiber) {
  yields_per_fiber = per_fiber;
  cf_target_t t = {.name = "bench_yield", .system = "bench", .main = yield_main};
  t.options.safety_steps = (uint64_t)per_fiber * 4 + 100;
  size_t len = (size_t)per_fiber * 2 + 16;
  uint8_t *in = calloc(1, len);
  /* Header 0 (direct policy); schedule bytes alternate picks 0 and 1 with no run-length, so
   * every decision switches fibers. */
  for (size_t i = 1; i < len; i++) in[i] = (uint8_t)(i & 1);
  cf_result_t res;
  double t0 = now_s();
  cf_run(&t, in, len, &res);
  double t1 = now_s();
  free(in);
  return (t1 - t0) * 1e9 / (double)res.steps;
}

static double bench_runs(const cf_target_t *t, const uint8_t *in, size_t len, long n) {
  cf_result_t res;
  double t0 = now_s();
  for (long i = 0; i < n; i++) cf_run(t, in, len, &res);
  double t1 = now_s();
  return (double)n / (t1 - t0);
}

int main(int argc, char **argv) {
  bool quick = argc > 1 && !strcmp(argv[1], "--quick");
  if (argc > 1 && !quick) {
    printf("usage: %s [--quick]\nPrints runtime micro-benchmark numbers.\n", argv[0]);
    return 0;
  }
  long n = quick ? 200000 : 5000000;
  printf("raw context switch:      %6.1f ns/switch  (%ld round trips)\n", bench_raw_switch(n), n);
  int per = quick ? 20000 : 200000;
  printf("yield with switch:       %6.1f ns/yield   (2 fibers x %d yields)\n",
         bench_yield_switch(per), per);
  static const uint8_t race_in[] = {0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x01, 0x00, 0x01};
  long runs = quick ? 20000 : 300000;
  printf("minimal 2-fiber run:     %8.0f runs/s (in-process, no sanitizers)\n",
         bench_runs(&bench_minimal_target, (const uint8_t *)"", 0, runs));
  printf("toy race target run:     %8.0f runs/s (in-process, no sanitizers)\n",
         bench_runs(&fuzz_sim_selftest_target, race_in, sizeof race_in, runs));
  return 0;
}
