/* toy_stress.c: the toy models on real threads, the way upstream projects test races: run the
 * racy code many times and hope the OS interleaves it badly. It checks that the fixed code
 * never fails and reports how often the buggy code happened to fail; that rate (often zero) is
 * the baseline the simulated scheduler is measured against.
 * Usage: toy-stress [ROUNDS] [INCREMENTS]   (defaults 2000, 200) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cf.h"
#include "toys.h"

void cf_real_end_run(void);

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int lost_update_rounds(int rounds, int increments, bool buggy) {
  cf_bugs_enabled = buggy ? (1ull << CF_BUG_TOY_LOST_UPDATE) : 0;
  int lost = 0;
  for (int r = 0; r < rounds; r++) {
    if (toy_counter_race(2, increments) != (uint64_t)(2 * increments)) lost++;
    cf_real_end_run();
  }
  return lost;
}

int main(int argc, char **argv) {
  if (argc > 1 && (argv[1][0] == '-')) {
    printf("usage: %s [ROUNDS] [INCREMENTS]\n"
           "Runs the lost-update toy on two pthreads, fixed and buggy, and the lock-order and\n"
           "refcount toys' fixed versions; exits 1 if fixed code ever fails.\n", argv[0]);
    return 0;
  }
  int rounds = argc > 1 ? atoi(argv[1]) : 2000;
  int increments = argc > 2 ? atoi(argv[2]) : 200;
  if (rounds < 1 || increments < 1) {
    fprintf(stderr, "toy-stress: ROUNDS and INCREMENTS must be positive\n");
    return 2;
  }
  double t0 = seconds();
  int fixed_lost = lost_update_rounds(rounds, increments, false);
  double t1 = seconds();
  int buggy_lost = lost_update_rounds(rounds, increments, true);
  double t2 = seconds();
  cf_bugs_enabled = 0;
  for (int r = 0; r < rounds / 10 + 1; r++) {
    /* toy_lost_wakeup is left out: its consumer is a worker nobody joins, which only the
     * simulated run's end can stop. */
    toy_lock_order();
    toy_refcount_race(2);
    cf_real_end_run();
  }
  printf("toy-stress: fixed  lost-update: %d of %d rounds failed (%.2fs)\n", fixed_lost, rounds, t1 - t0);
  printf("toy-stress: buggy  lost-update: %d of %d rounds failed (%.2fs)\n", buggy_lost, rounds, t2 - t1);
  printf("toy-stress: fixed lock-order and refcount: %d rounds each, no failure\n",
         rounds / 10 + 1);
  return fixed_lost ? 1 : 0;
}
