/* tls_world.c: one run of the TLS intern cache copy: the JS threads that issue fetches, the
 * HTTP thread, and the workload decoded from the fuzz input (layout in fuzzers/fuzz_tls_intern.c). The stress test builds a scenario directly and runs it on pthreads. */
#include <string.h>

#include "checker.h"
#include "tls.h"

/* ---- JS threads --------------------------------------------------------------------------- */

typedef struct js_thread {
  tls_world_t *w;
  int index;
  http_client_t *issued[TLS_MAX_FETCHES]; /* fetches whose FetchTasklet still holds a ref */
  int nissued;
  int next_id;
} js_thread_t;

/* The FetchTasklet's completion callbacks: each finished fetch drops the ssl_config reference
 * it got from intern(). Runs on the JS thread, after the HTTP thread let go of the client. */
static void run_completions(js_thread_t *js) {
  tls_world_t *w = js->w;
  http_client_t *done[TLS_MAX_FETCHES];
  int ndone = 0;
  cf_mutex_lock(&w->mu);
  for (int i = 0; i < js->nissued;) {
    if (js->issued[i]->done) {
      done[ndone++] = js->issued[i];
      js->issued[i] = js->issued[--js->nissued];
    } else {
      i++;
    }
  }
  cf_mutex_unlock(&w->mu);
  for (int i = 0; i < ndone; i++) {
    ssl_config_t *cfg = done[i]->fetch_config;
    cf_note(CF_SITE("fetch.finalize"), "fetch %d releases its ssl_config", done[i]->id);
    chk_holder_release(cfg, HOLDER_FETCH);
    ssl_config_release(w, cfg);
    cf_pool_free(&w->clients, done[i]);
  }
}

static void await_outstanding(js_thread_t *js) {
  tls_world_t *w = js->w;
  cf_mutex_lock(&w->mu);
  while (w->outstanding[js->index] > 0) cf_cond_wait(&w->done_cv, &w->mu);
  cf_mutex_unlock(&w->mu);
  run_completions(js);
}

/* fetch(url, {tls, keepalive, proxy}): intern the options, hand a client to the HTTP thread. */
static void issue_fetch(js_thread_t *js, const tls_fetch_t *f) {
  tls_world_t *w = js->w;
  ssl_config_t *n = ssl_config_new(w, f->option_set);
  cf_note(CF_SITE("fetch.intern"), "intern option set %d (new config serial %llu)",
          f->option_set, (unsigned long long)cf_pool_serial(n));
  ssl_config_t *cfg = registry_intern(w, n);
  chk_holder_acquire(cfg, HOLDER_FETCH);
  http_client_t *c = cf_pool_alloc(&w->clients);
  c->id = js->index * TLS_MAX_FETCHES + js->next_id++; /* each JS thread numbers its own */
  c->js_thread = js->index;
  c->state = CLIENT_CONNECT;
  c->option_set = f->option_set;
  c->keepalive = f->keepalive;
  c->proxy = f->proxy;
  c->fetch_config = cfg;
  /* AsyncHTTP: the client's tls_props is its own strong clone (#27873). */
  ssl_config_clone(cfg);
  chk_holder_acquire(cfg, HOLDER_TLS_PROPS);
  c->tls_props = cfg;
  c->tls_serial = cf_pool_serial(cfg);
  cf_note(CF_SITE("fetch.submit"), "fetch %d uses config serial %llu", c->id,
          (unsigned long long)c->tls_serial);
  js->issued[js->nissued++] = c;
  http_submit(w, c);
}

static void js_thread_main(void *arg) {
  js_thread_t *js = arg;
  const tls_scenario_t *sc = &js->w->sc;
  for (int i = 0; i < sc->nfetches; i++) {
    const tls_fetch_t *f = &sc->fetch[i];
    if (f->js_thread != js->index) continue;
    if (f->wait_wave)
      await_outstanding(js);
    else if (cf_choose(CF_SITE("js.run_completions"), 2))
      run_completions(js);
    issue_fetch(js, f);
  }
  await_outstanding(js);
}

/* ---- the run ------------------------------------------------------------------------------ */

void tls_world_init(tls_world_t *w, const tls_scenario_t *sc) {
  memset(w, 0, sizeof *w);
  w->sc = *sc;
  cf_pool_init(&w->configs, TLS_SYSTEM, "ssl_config", sizeof(ssl_config_t));
  cf_pool_init(&w->strings, TLS_SYSTEM, "ssl_config.string", 48);
  cf_pool_init(&w->clients, TLS_SYSTEM, "http_client", sizeof(http_client_t));
  cf_pool_init(&w->ctxs, TLS_SYSTEM, "ssl_ctx", sizeof(ssl_ctx_t));
  registry_init(&w->registry);
  cf_mutex_init(&w->mu, "http.mu");
  cf_cond_init(&w->queue_cv, "http.queue_cv");
  cf_cond_init(&w->done_cv, "fetch.done_cv");
  chk_init(w);
}

void tls_world_run(tls_world_t *w) {
  js_thread_t *js = cf_sim_alloc(sizeof(js_thread_t) * TLS_MAX_JS_THREADS);
  cf_thread_t http, jst[TLS_MAX_JS_THREADS];
  cf_thread_spawn(&http, http_thread_main, w, "http-thread");
  for (int i = 0; i < w->sc.js_threads; i++) {
    js[i].w = w;
    js[i].index = i;
    cf_thread_spawn(&jst[i], js_thread_main, &js[i], "js-thread");
  }
  for (int i = 0; i < w->sc.js_threads; i++) cf_thread_join(&jst[i]);
  cf_mutex_lock(&w->mu);
  w->shutdown = true;
  cf_cond_signal(&w->queue_cv);
  cf_mutex_unlock(&w->mu);
  cf_thread_join(&http);
}

/* Decodes the workload stream; the layout is documented in fuzzers/fuzz_tls_intern.c. */
void tls_scenario_decode(tls_scenario_t *sc) {
  memset(sc, 0, sizeof *sc);
  uint32_t b0 = cf_workload_byte(), b1 = cf_workload_byte();
  int first = (int)(b0 & 7) % TLS_OPTION_SETS, nsets = 1 + (int)((b0 >> 3) & 3);
  sc->js_threads = 1 + (int)(b1 & 1);
  sc->cache_limit = 1 + (int)((b1 >> 1) & 3);
  sc->pool_limit = (int)((b1 >> 3) & 7) % (TLS_POOL_CAP + 1);
  sc->nfetches = 1 + (int)cf_workload(TLS_MAX_FETCHES);
  for (int i = 0; i < sc->nfetches; i++) {
    uint32_t op = cf_workload_byte();
    tls_fetch_t *f = &sc->fetch[i];
    f->option_set = (uint8_t)((first + (int)(op & 3) % nsets) % TLS_OPTION_SETS);
    f->keepalive = op & 4;
    f->proxy = op & 8;
    f->wait_wave = op & 16;
    f->js_thread = (uint8_t)(((op >> 5) & 1) % (uint32_t)sc->js_threads);
  }
}

void tls_intern_main(void *arg) {
  (void)arg;
  tls_world_t *w = cf_sim_alloc(sizeof *w);
  tls_scenario_t sc;
  tls_scenario_decode(&sc);
  tls_world_init(w, &sc);
  tls_world_run(w);
}
