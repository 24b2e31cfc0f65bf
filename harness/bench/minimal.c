/* minimal.c: the smallest useful simulated run (two fibers, a few yields each), used by
 * bench-runtime and by the libFuzzer exec/s measurement (out/bench/fuzz-bench-minimal). */
#include "bench.h"

static void bench_worker(void *arg) {
  cf_atomic_t *a = arg;
  for (int i = 0; i < 4; i++) cf_atomic_fetch_add(a, 1);
}

static void bench_main(void *arg) {
  (void)arg;
  cf_atomic_t a = {0};
  cf_thread_t t1, t2;
  cf_thread_spawn(&t1, bench_worker, &a, "w1");
  cf_thread_spawn(&t2, bench_worker, &a, "w2");
  cf_thread_join(&t1);
  cf_thread_join(&t2);
}

const cf_target_t bench_minimal_target = {
    .name = "fuzz_bench_minimal",
    .system = "bench",
    .main = bench_main,
};

CF_FUZZ_TARGET(bench_minimal_target)
