/* http_thread.c: Bun's HTTP client thread as it holds interned configs.
 *
 * One thread runs every HTTPClient: it connects (reusing a keep-alive socket matched by config
 * pointer, or getting an SSL context from custom_ssl_context_map, also keyed by pointer),
 * optionally tunnels through a proxy and builds a second SSL context from tls_props after the
 * CONNECT round trip (ProxyTunnel.start), completes, and tears the client down, dropping its
 * tls_props reference. Which client advances next, when pooled sockets are dropped and when
 * cache entries expire are decisions of the fuzz input: that is the random close timing.
 *
 * Sources: HTTPThread.zig (custom_ssl_context_map, evictStaleSslContexts,
 * evictOldestSslContext), HTTPContext.zig (existingSocket, releaseSocket, PooledSocket), http.zig
 * (HTTPClient.tls_props, deinit), ProxyTunnel, openssl.c (create_ssl_context_from_bun_options and
 * the content helpers that gained NULL guards in #27838). */
#include <string.h>

#include "checker.h"
#include "tls.h"

/* ---- openssl.c: building an SSL context from a config's strings ---------------------------- */

uint64_t tls_mix_content(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return (h ^ 0xff) * 0x100000001b3ull;
}

/* us_ssl_ctx_use_privatekey_content / us_ssl_ctx_use_certificate_chain /
 * add_ca_cert_to_ctx_store: strlen(content), then a BIO over it. */
static int use_content(ssl_ctx_t *ctx, const char *content) {
  /* `if (content == NULL) return 0;` (openssl.c, #27838): a freed string becomes a clean SSL
   * error instead of strlen(NULL). */
  if (!cf_bug(CF_BUG_TLS_27838_NO_NULL_GUARD) && content == NULL) return 0;
  size_t n = strlen(content);
  ctx->content_hash = tls_mix_content(ctx->content_hash, content, n);
  return 1;
}

static void use_optional(ssl_ctx_t *ctx, const char *s) {
  if (s) ctx->content_hash = tls_mix_content(ctx->content_hash, s, strlen(s));
}

/* NewHTTPContext's count: the cache entry's and each in-flight client's. Only the HTTP thread
 * touches it, so it is a plain integer. */
static void ctx_deref(tls_world_t *w, ssl_ctx_t *ctx) {
  if (ctx && --ctx->refs == 0) cf_pool_free(&w->ctxs, ctx);
}

/* create_ssl_context_from_bun_options(tls_props->asUSocketsForClientVerification()). Reads the
 * config's fields the way the C side does: the presence bits play key_count's role and survive
 * deinit; the strings do not. Returns NULL on a clean SSL error. */
static ssl_ctx_t *build_ssl_ctx(tls_world_t *w, http_client_t *c, const char *what) {
  ssl_config_t *cfg = c->tls_props;
  cf_yield("openssl.create_ssl_context");
  ssl_ctx_t *ctx = cf_pool_alloc(&w->ctxs);
  ctx->refs = 1;
  ctx->content_hash = 0xcbf29ce484222325ull;
  uint32_t present = cfg->present;
  int ok = 1;
  if (present & TLS_HAS_KEY) ok = ok && use_content(ctx, cfg->key);
  if (present & TLS_HAS_CERT) ok = ok && use_content(ctx, cfg->cert);
  if (present & TLS_HAS_CA) ok = ok && use_content(ctx, cfg->ca);
  if (ok) {
    use_optional(ctx, cfg->passphrase);
    use_optional(ctx, cfg->server_name);
    use_optional(ctx, cfg->ciphers);
    ctx->content_hash = (ctx->content_hash ^ cfg->flags) * 0x100000001b3ull;
  }
  chk_use(c, what, ok, ctx->content_hash);
  if (!ok) {
    ctx_deref(w, ctx);
    return NULL;
  }
  return ctx;
}

/* ---- custom_ssl_context_map --------------------------------------------------------------- */

static void cache_evict_at(tls_world_t *w, int i) {
  ssl_ctx_cache_entry_t e = w->cache[i];
  w->cache[i] = w->cache[--w->ncache];
  cf_note(CF_SITE("ssl_ctx_cache.evict"), "evict entry for config serial %llu",
          (unsigned long long)e.config_serial);
  ctx_deref(w, e.ctx);
  if (e.holds_ref) { /* config_ref.deinit() */
    chk_holder_release(e.config, HOLDER_CACHE);
    ssl_config_release(w, e.config);
  }
}

/* evictOldestSslContext: above the size limit the least recently used entry goes. */
static void cache_evict_oldest(tls_world_t *w) {
  int oldest = 0;
  for (int i = 1; i < w->ncache; i++)
    if (w->cache[i].last_used < w->cache[oldest].last_used) oldest = i;
  cache_evict_at(w, oldest);
}

/* getPtr(requested_config): by pointer, because configs are interned. */
static ssl_ctx_t *ssl_ctx_for(tls_world_t *w, http_client_t *c) {
  ssl_config_t *requested = c->tls_props;
  for (int i = 0; i < w->ncache; i++) {
    if (w->cache[i].config != requested) continue;
    chk_pointer_hit("ssl_ctx_cache.hit", w->cache[i].config_serial, requested);
    w->cache[i].last_used = ++w->cache_clock;
    w->cache[i].ctx->refs++;
    return w->cache[i].ctx;
  }
  ssl_ctx_t *ctx = build_ssl_ctx(w, c, "connect");
  if (!ctx) return NULL;
  ssl_ctx_cache_entry_t *e = &w->cache[w->ncache++];
  e->config = requested;
  e->config_serial = cf_pool_serial(requested);
  e->ctx = ctx;
  e->last_used = ++w->cache_clock;
  /* Each entry holds a strong ref on its config (HTTPThread.zig config_ref): without it the key
   * can die and a new config can be born at the same address. */
  e->holds_ref = !cf_bug(CF_BUG_TLS_CACHE_UNPINNED_KEY);
  if (e->holds_ref) {
    ssl_config_clone(requested);
    chk_holder_acquire(requested, HOLDER_CACHE);
  }
  if (w->ncache > w->sc.cache_limit) cache_evict_oldest(w);
  ctx->refs++; /* the in-flight client's */
  return ctx;
}

/* ---- keep-alive pool ---------------------------------------------------------------------- */

static void pool_drop_at(tls_world_t *w, int i) {
  pooled_socket_t s = w->pool[i];
  w->pool[i] = w->pool[--w->npool];
  chk_holder_release(s.ssl_config, HOLDER_POOL);
  ssl_config_release(w, s.ssl_config);
}

/* existingSocket(): match ssl_config by pointer equality (interned configs). */
static bool existing_socket(tls_world_t *w, http_client_t *c) {
  for (int i = 0; i < w->npool; i++) {
    if (w->pool[i].ssl_config != c->tls_props) continue;
    chk_pointer_hit("pooled_socket.match", w->pool[i].config_serial, c->tls_props);
    cf_note(CF_SITE("pool.reuse"), "client %d reuses a pooled socket", c->id);
    pool_drop_at(w, i); /* the pooled socket's ref goes; the client keeps its own */
    return true;
  }
  return false;
}

/* releaseSocket(): the pool clones a strong ref ("the caller retains its own ref via
 * HTTPClient.tls_props"). */
static void release_socket(tls_world_t *w, http_client_t *c) {
  if (w->npool >= w->sc.pool_limit) return; /* pool full: close */
  ssl_config_clone(c->tls_props);
  chk_holder_acquire(c->tls_props, HOLDER_POOL);
  w->pool[w->npool++] = (pooled_socket_t){c->tls_props, cf_pool_serial(c->tls_props)};
}

/* ---- one client --------------------------------------------------------------------------- */

/* HTTPClient.deinit(): drop tls_props and the context, then tell the JS thread. */
static void client_deinit(tls_world_t *w, http_client_t *c) {
  ssl_config_t *props = c->tls_props;
  chk_holder_release(props, HOLDER_TLS_PROPS);
  ssl_config_release(w, props);
  ctx_deref(w, c->ctx);
  c->ctx = NULL;
  cf_mutex_lock(&w->mu);
  c->state = CLIENT_DONE;
  c->done = true;
  w->outstanding[c->js_thread]--;
  cf_cond_broadcast(&w->done_cv);
  cf_mutex_unlock(&w->mu);
  cf_progress();
}

/* Advance one client by one event; returns true when it is finished. */
static bool client_step(tls_world_t *w, http_client_t *c) {
  switch (c->state) {
    case CLIENT_CONNECT:
      cf_note(CF_SITE("http.connect"), "client %d connects", c->id);
      if (w->sc.pool_limit > 0 && existing_socket(w, c)) {
        c->state = CLIENT_REQUEST;
        return false;
      }
      c->ctx = ssl_ctx_for(w, c);
      if (!c->ctx) {
        c->failed = true;
        c->state = CLIENT_REQUEST;
        return false;
      }
      c->state = c->proxy ? CLIENT_PROXY_CONNECT : CLIENT_REQUEST;
      return false;
    case CLIENT_PROXY_CONNECT: /* CONNECT sent; the proxy's 200 arrives later */
      c->state = CLIENT_PROXY_TUNNEL;
      return false;
    case CLIENT_PROXY_TUNNEL: {
      ssl_ctx_t *tunnel = build_ssl_ctx(w, c, "proxy-tunnel");
      if (!tunnel) c->failed = true;
      ctx_deref(w, tunnel);
      c->state = CLIENT_REQUEST;
      return false;
    }
    case CLIENT_REQUEST:
      cf_note(CF_SITE("http.complete"), "client %d completes%s", c->id, c->failed ? " (SSL error)" : "");
      if (c->keepalive && !c->failed) release_socket(w, c);
      client_deinit(w, c);
      return true;
    case CLIENT_DONE:
      break;
  }
  return true;
}

/* ---- the thread --------------------------------------------------------------------------- */

void http_submit(tls_world_t *w, http_client_t *c) {
  cf_mutex_lock(&w->mu);
  w->queue[w->queued++] = c;
  w->outstanding[c->js_thread]++;
  cf_cond_signal(&w->queue_cv);
  cf_mutex_unlock(&w->mu);
}

/* Idle housekeeping the fuzzer times: a pooled socket closes, a cache entry's TTL runs out. */
static void housekeeping(tls_world_t *w) {
  if (w->npool) {
    uint32_t k = cf_choose(CF_SITE("pool.idle_close"), (uint32_t)w->npool + 1);
    if (k) pool_drop_at(w, (int)k - 1);
  }
  if (w->ncache) {
    uint32_t k = cf_choose(CF_SITE("ssl_ctx_cache.ttl"), (uint32_t)w->ncache + 1);
    if (k) cache_evict_at(w, (int)k - 1);
  }
}

/* HTTPContext.deinit: drain the pool and the SSL context cache. */
static void http_context_deinit(tls_world_t *w) {
  while (w->npool) pool_drop_at(w, w->npool - 1);
  while (w->ncache) cache_evict_at(w, w->ncache - 1);
}

void http_thread_main(void *arg) {
  tls_world_t *w = arg;
  for (;;) {
    /* One event-loop tick: take the queued clients, then give each in-flight client one event,
     * unless the fuzzer holds it back this tick (that is how completions reorder). */
    cf_mutex_lock(&w->mu);
    while (w->queued == 0 && w->ninflight == 0 && !w->shutdown)
      cf_cond_wait_idle(&w->queue_cv, &w->mu);
    for (int i = 0; i < w->queued; i++) w->inflight[w->ninflight++] = w->queue[i];
    w->queued = 0;
    bool done = w->shutdown && w->ninflight == 0;
    cf_mutex_unlock(&w->mu);
    if (done) break;
    housekeeping(w);
    int kept = 0;
    for (int i = 0; i < w->ninflight; i++) {
      http_client_t *c = w->inflight[i];
      if (cf_choose(CF_SITE("http.hold_client"), 2) || !client_step(w, c)) w->inflight[kept++] = c;
    }
    w->ninflight = kept;
  }
  /* Shutdown comes after every JS thread finished and released its fetches: the only holders
   * left are the pool and the cache. */
  chk_quiescent(w);
  http_context_deinit(w);
  chk_teardown(w);
}
