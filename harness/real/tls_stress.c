/* tls_stress.c: the TLS intern cache copy on real threads, shaped like Bun's regression test
 * fetch-proxy-tls-intern-race.test.ts (#27838): waves of concurrent proxied fetches with
 * identical `tls` options and keepalive: false, so every completion drops the config's last
 * reference while the next wave interns the same content. The OS decides the interleaving;
 * this is the baseline the simulated scheduler is measured against.
 *
 * Usage: tls-stress [--seconds S] [--rounds N]   (toggles from CHURN_BUGS; default 10 s)
 * Runs rounds until the time or round limit. A failure (an oracle or ASan) aborts the process,
 * so the exit status says whether the bug was hit: 0 not hit, anything else hit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf.h"
#include "tls.h"

void cf_real_end_run(void);

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Three overlapping waves of four proxied fetches, one option set, no keep-alive: the
 * upstream test's shape within one world's fetch budget. */
static void upstream_scenario(tls_scenario_t *sc) {
  memset(sc, 0, sizeof *sc);
  sc->js_threads = 1;
  sc->cache_limit = 1;
  sc->pool_limit = 0;
  sc->nfetches = TLS_MAX_FETCHES;
  for (int i = 0; i < sc->nfetches; i++) {
    sc->fetch[i].option_set = 0;
    sc->fetch[i].proxy = true;
    sc->fetch[i].wait_wave = i > 0 && i % 4 == 0 && (i / 4) % 2 == 0;
  }
}

int main(int argc, char **argv) {
  double limit = 10;
  long max_rounds = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      limit = atof(argv[++i]);
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      max_rounds = atol(argv[++i]);
    } else {
      printf("usage: %s [--seconds S] [--rounds N]\n"
             "Runs the TLS intern cache copy on pthreads in the shape of Bun's\n"
             "fetch-proxy-tls-intern-race test until S seconds (default 10) or N rounds pass.\n"
             "Toggles come from CHURN_BUGS. A failure aborts (non-zero exit); 0 means no hit.\n",
             argv[0]);
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  cf_bugs_from_env();
  tls_scenario_t sc;
  upstream_scenario(&sc);
  double t0 = seconds(), next_report = t0 + 10;
  long rounds = 0;
  while ((max_rounds == 0 || rounds < max_rounds) && seconds() - t0 < limit) {
    tls_world_t *w = cf_sim_alloc(sizeof *w);
    tls_world_init(w, &sc);
    tls_world_run(w);
    cf_real_end_run();
    rounds++;
    if (seconds() >= next_report) {
      printf("tls-stress: %.0fs: %ld rounds (%ld fetches), no failure yet\n", seconds() - t0,
             rounds, rounds * sc.nfetches);
      fflush(stdout);
      next_report += 10;
    }
  }
  printf("tls-stress: %ld rounds (%ld fetches) in %.1fs, no failure\n", rounds,
         rounds * sc.nfetches, seconds() - t0);
  return 0;
}
