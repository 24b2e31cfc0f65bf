/* tls.h: the TLS intern cache copy: Bun's SSLConfig, its process-global GlobalRegistry, and the
 * HTTP client thread that holds, caches and pools interned configs.
 *
 * Reference: shared spec tls-intern-cache.md (Bun PR #27385, which introduced the registry, and
 * PR #27838 with #27872/#27873, which fixed its intern/deref race). Names follow upstream:
 * SSLConfig.zig (intern, remove, deinit, contentHash, isSame), shared.zig (SharedPtr: strong and
 * weak counts, clone, cloneWeak, upgrade), HTTPThread.zig (custom_ssl_context_map),
 * HTTPContext.zig (PooledSocket, existingSocket, releaseSocket), openssl.c (the context builder).
 *
 * Two eras live side by side, chosen per run by the tls-27838-resurrect toggle:
 *   E1 (toggle on):  one atomic count, ref() a plain increment, the registry holds raw pointers,
 *                    destroy = remove by content, free the strings, free the object;
 *   E3 (default):    strong and weak counts with the collective weak, upgrade() that refuses 0,
 *                    in-place replacement of a dying slot, remove() with the identity check,
 *                    duplicates disposed after the unlock, remove before freeing the strings.
 *
 * The copy runs on both platform backends: as fibers under the simulated scheduler (the fuzz
 * target) and on pthreads (the upstream-style stress test). */
#ifndef TLS_H
#define TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"
#include "pool.h"

#define TLS_SYSTEM "tls-intern-cache"

/* ---- configs ------------------------------------------------------------------------------ */

/* Which string fields a config carries. The builder consults this like it consults
 * options.key_count: it survives deinit, the strings do not. */
enum {
  TLS_HAS_KEY = 1u << 0,
  TLS_HAS_CERT = 1u << 1,
  TLS_HAS_CA = 1u << 2,
  TLS_HAS_PASSPHRASE = 1u << 3,
  TLS_HAS_SERVER_NAME = 1u << 4,
  TLS_HAS_CIPHERS = 1u << 5,
};

/* One `tls: {...}` option set as a fetch passes it (static strings; NULL = absent). */
typedef struct tls_options {
  const char *key, *cert, *ca, *passphrase, *server_name, *ciphers;
  uint32_t flags; /* reject_unauthorized, request_cert, ... */
} tls_options_t;

#define TLS_OPTION_SETS 6
extern const tls_options_t tls_option_sets[TLS_OPTION_SETS];

/* SSLConfig with the SharedPtr FullData counts in front (E3). E1 uses `strong` alone as its
 * intrusive ThreadSafeRefCount and never touches `weak`. */
typedef struct ssl_config {
  cf_atomic_t strong;
  cf_atomic_t weak;
  char *key, *cert, *ca, *passphrase, *server_name, *ciphers; /* heap strings, NULL after deinit */
  uint32_t present;     /* TLS_HAS_* */
  uint32_t flags;
  uint64_t cached_hash; /* contentHash(), 0 = not computed yet */
} ssl_config_t;

/* ---- the world ---------------------------------------------------------------------------- */

#define TLS_MAX_FETCHES 12
#define TLS_MAX_JS_THREADS 2
#define TLS_REGISTRY_CAP 32
/* custom_ssl_context_map evicts its least recently used entry above 60 entries upstream; the
 * copy's limit is small so that eviction happens in short runs. */
#define TLS_CACHE_CAP 4
#define TLS_POOL_CAP 4

/* What one run does: decoded from the fuzz input's workload stream, or built by the stress
 * test. Fetches are issued in order by their JS thread. */
typedef struct tls_fetch {
  uint8_t option_set; /* index into tls_option_sets */
  bool keepalive;     /* keepalive: false releases the socket (and the config) at completion */
  bool proxy;         /* through an HTTP CONNECT proxy: a second SSL context after the tunnel */
  bool wait_wave;     /* the JS thread awaits its earlier fetches before issuing this one */
  uint8_t js_thread;
} tls_fetch_t;

typedef struct tls_scenario {
  int js_threads;
  int cache_limit; /* 1..TLS_CACHE_CAP */
  int pool_limit;  /* 0..TLS_POOL_CAP; 0 = no keep-alive pool */
  int nfetches;
  tls_fetch_t fetch[TLS_MAX_FETCHES];
} tls_scenario_t;

/* SSLConfig.GlobalRegistry: ArrayHashMap(*SSLConfig, WeakPtr, content context) + mutex. */
typedef struct registry_slot {
  ssl_config_t *key;
  ssl_config_t *weak; /* the slot's WeakPtr (E3); unused in E1, which holds no reference */
  uint64_t hash;
} registry_slot_t;

typedef struct global_registry {
  cf_mutex_t mutex;
  registry_slot_t slots[TLS_REGISTRY_CAP];
  int count;
} global_registry_t;

typedef struct ssl_ctx {
  int refs;              /* the cache entry's and each in-flight client's */
  uint64_t content_hash; /* what the builder read */
} ssl_ctx_t;

/* custom_ssl_context_map entry, keyed by config pointer ("configs are interned"). */
typedef struct ssl_ctx_cache_entry {
  ssl_config_t *config;
  uint64_t config_serial; /* checker record: the serial the key had when inserted */
  ssl_ctx_t *ctx;
  uint64_t last_used;
  bool holds_ref; /* config_ref: a strong clone pinning the key */
} ssl_ctx_cache_entry_t;

/* PooledSocket: a keep-alive socket with its own strong clone of the config. */
typedef struct pooled_socket {
  ssl_config_t *ssl_config;
  uint64_t config_serial; /* checker record */
} pooled_socket_t;

typedef enum client_state {
  CLIENT_CONNECT,
  CLIENT_PROXY_CONNECT, /* CONNECT round trip in flight */
  CLIENT_PROXY_TUNNEL,  /* ProxyTunnel.start(): builds a second SSL context from tls_props */
  CLIENT_REQUEST,
  CLIENT_DONE,
} client_state_t;

typedef struct http_client {
  int id;
  int js_thread;
  client_state_t state;
  ssl_config_t *fetch_config; /* the FetchTasklet's strong ref (from intern), JS thread */
  ssl_config_t *tls_props; /* one strong ref, released in deinit */
  uint64_t tls_serial;     /* checker record: serial of the config intern returned */
  uint8_t option_set;      /* what the fetch asked for */
  bool keepalive, proxy, failed;
  bool done; /* set under the world's mu when the HTTP thread let go of the client */
  ssl_ctx_t *ctx;
} http_client_t;

typedef struct tls_world {
  tls_scenario_t sc;
  global_registry_t registry;
  cf_pool_t configs, strings, clients, ctxs;

  /* JS threads -> HTTP thread */
  cf_mutex_t mu;
  cf_cond_t queue_cv; /* new client queued, or shutdown */
  cf_cond_t done_cv;  /* a client completed */
  http_client_t *queue[TLS_MAX_FETCHES];
  int queued;
  int outstanding[TLS_MAX_JS_THREADS];
  bool shutdown;

  /* HTTP thread only */
  http_client_t *inflight[TLS_MAX_FETCHES];
  int ninflight;
  ssl_ctx_cache_entry_t cache[TLS_CACHE_CAP + 1];
  int ncache;
  uint64_t cache_clock;
  pooled_socket_t pool[TLS_POOL_CAP];
  int npool;
} tls_world_t;

/* ---- operations --------------------------------------------------------------------------- */

/* ssl_config.c: content, hash, equality, and the reference counts of both eras. */
ssl_config_t *ssl_config_new(tls_world_t *w, int option_set); /* strong 1, weak 1 */
uint64_t ssl_config_content_hash(ssl_config_t *c);
bool ssl_config_is_same(const ssl_config_t *a, const ssl_config_t *b);
void ssl_config_free_strings(tls_world_t *w, ssl_config_t *c);
void ssl_config_free_unshared(tls_world_t *w, ssl_config_t *c);
bool tls_era_e1(void);
/* A new strong reference from one that is held (clone / E1 ref). */
void ssl_config_clone(ssl_config_t *c);
/* Give up a strong reference (SharedPtr.deinit / E1 deref), tearing down on the last. */
void ssl_config_release(tls_world_t *w, ssl_config_t *c);
void ssl_config_clone_weak(ssl_config_t *c);
void ssl_config_weak_deinit(tls_world_t *w, ssl_config_t *c);
bool ssl_config_upgrade(ssl_config_t *c);
void ssl_config_deinit(tls_world_t *w, ssl_config_t *c);

/* registry.c */
void registry_init(global_registry_t *r);
ssl_config_t *registry_intern(tls_world_t *w, ssl_config_t *n);
void registry_remove(tls_world_t *w, ssl_config_t *p);

/* http_thread.c */
uint64_t tls_mix_content(uint64_t h, const char *s, size_t n); /* what the builder hashes */
void http_thread_main(void *arg);
void http_submit(tls_world_t *w, http_client_t *c);

/* tls_world.c */
void tls_world_init(tls_world_t *w, const tls_scenario_t *sc);
void tls_world_run(tls_world_t *w);
void tls_scenario_decode(tls_scenario_t *sc);
void tls_intern_main(void *arg); /* the fuzz target's main fiber */

#endif
