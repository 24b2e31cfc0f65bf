/* tls_stress.c: the TLS intern cache copy on real threads, shaped like Bun's regression test
 * fetch-proxy-tls-intern-race.test.ts (#27838): waves of concurrent proxied fetches with
 * identical `tls` options and keepalive: false, so every completion drops the config's last
 * reference while the next wave interns the same content. The OS decides the interleaving;
 * this is the baseline the simulated scheduler is measured against.
 *
 * Usage: tls-stress [--seconds S] [--rounds N]   (toggles from CHURN_BUGS; default 10 s)
 * Runs rounds until the time or round limit. A failure (an oracle or ASan) aborts the process,
 * so the exit status says whether the bug was hit: 0 not hit, anything else hit. */
#include <string.h>

#include "cf.h"
#include "stress.h"
#include "tls.h"

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

static void round_once(void *arg) {
  tls_world_t *w = cf_sim_alloc(sizeof *w);
  tls_world_init(w, arg);
  tls_world_run(w);
}

int main(int argc, char **argv) {
  static tls_scenario_t sc;
  upstream_scenario(&sc);
  const stress_test_t t = {
      .name = "tls-stress",
      .about = "Runs the TLS intern cache copy on pthreads in the shape of Bun's\n"
               "fetch-proxy-tls-intern-race test.\n",
      .unit = "fetches",
      .units_per_round = TLS_MAX_FETCHES,
      .round = round_once,
      .arg = &sc,
  };
  return stress_main(&t, argc, argv);
}
