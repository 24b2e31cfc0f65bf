/* checker.h: the TLS intern cache's oracles (spec §A9), kept apart from the copy.
 *
 * The copy calls these hooks at the points where upstream code takes or drops references, reads
 * a config's content or hits a pointer-keyed record. The checker keeps its own ghost record of
 * every config ever allocated in the run (by pool serial): the option set it was built from,
 * whether its strings and memory are still valid, whether it was interned, how many holders own
 * a strong reference. It never changes the copy's state and never yields, so turning it off
 * would not change a schedule. */
#ifndef TLS_CHECKER_H
#define TLS_CHECKER_H

#include "tls.h"

typedef enum holder_kind {
  HOLDER_FETCH,     /* FetchTasklet's ssl_config (JS thread) */
  HOLDER_TLS_PROPS, /* HTTPClient.tls_props (HTTP thread) */
  HOLDER_POOL,      /* PooledSocket.ssl_config */
  HOLDER_CACHE,     /* SslContextCacheEntry.config_ref */
  HOLDER_KINDS
} holder_kind_t;

void chk_init(tls_world_t *w);

void chk_config_alloc(ssl_config_t *c, int option_set);
/* A strong count went from old to old+1 (clone, ref, upgrade). */
void chk_strong_increment(ssl_config_t *c, uint64_t old, const char *who);
void chk_strings_freed(ssl_config_t *c);
/* The config's memory is about to go back to the allocator; owner_refs is the strong count
 * the freeing code legitimately still owns (1 for a never-shared config, else 0). */
void chk_config_free(ssl_config_t *c, uint64_t owner_refs);

void chk_holder_acquire(ssl_config_t *c, holder_kind_t kind);
void chk_holder_release(ssl_config_t *c, holder_kind_t kind);

/* Registry hooks, called with the registry mutex held. */
void chk_registry_keys(tls_world_t *w, const char *op);
void chk_removed(ssl_config_t *p, ssl_config_t *removed_key);
void chk_interned(ssl_config_t *c);

/* An SSL context was built from a client's tls_props (ok = false: the builder refused a NULL
 * string and returned its clean error). */
void chk_use(const http_client_t *client, const char *what, bool ok, uint64_t content_hash);
/* A pointer-keyed record (cache entry, pooled socket) matched `ptr`. */
void chk_pointer_hit(const char *where, uint64_t recorded_serial, ssl_config_t *ptr);

/* No request in flight: counts must equal holders (§A9.8), every live interned config must be
 * a registry key and every key alive (§A9.6). */
void chk_quiescent(tls_world_t *w);
/* After the HTTP context drained its pool and cache: nothing left alive. */
void chk_teardown(tls_world_t *w);

uint64_t tls_options_hash(int option_set);

#endif
