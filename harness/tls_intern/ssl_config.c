/* ssl_config.c: SSLConfig content (strings, contentHash, isSame) and its reference counts.
 *
 * E3 (default) follows shared.zig's SharedPtr with `allow_weak`: strong and weak counts, the
 * weak count holding one "collective" reference on behalf of all strong ones, so the memory
 * outlives the strong 1->0 window in which another thread may still CAS the strong count.
 * E1 (tls-27838-resurrect) is the #27385 era: ThreadSafeRefCount, whose ref() is a bare
 * fetchAdd with only a debug assertion against 0. */
#include <string.h>

#include "checker.h"
#include "tls.h"

const tls_options_t tls_option_sets[TLS_OPTION_SETS] = {
    /* the upstream stress test's shape: client cert and key, a private CA */
    {"key:client-a", "cert:client-a", "ca:corp-root", NULL, "api.internal", NULL, 1},
    /* same identity, different trust store: must not share a context with set 0 */
    {"key:client-a", "cert:client-a", "ca:public-roots", NULL, "api.internal", NULL, 1},
    /* only a CA (server verification) */
    {NULL, NULL, "ca:corp-root", NULL, NULL, NULL, 1},
    /* encrypted key */
    {"key:client-b", "cert:client-b", "ca:corp-root", "pass:hunter2", NULL, "ciphers:modern", 1},
    /* rejectUnauthorized: false */
    {NULL, NULL, NULL, NULL, "localhost", NULL, 0},
    /* set 0 with a different flag */
    {"key:client-a", "cert:client-a", "ca:corp-root", NULL, "api.internal", NULL, 3},
};

bool tls_era_e1(void) { return cf_bug(CF_BUG_TLS_27838_RESURRECT); }

/* ---- content ------------------------------------------------------------------------------ */

#define TLS_STRING_MAX 48

static char *dup_string(tls_world_t *w, const char *s, uint32_t bit, uint32_t *present) {
  if (!s) return NULL;
  char *d = cf_pool_alloc(&w->strings);
  size_t n = strlen(s);
  if (n >= TLS_STRING_MAX) n = TLS_STRING_MAX - 1;
  memcpy(d, s, n);
  d[n] = 0;
  *present |= bit;
  return d;
}

/* SSLConfig.fromJS + SharedPtr.new: a heap config with strong 1 and weak 1. */
ssl_config_t *ssl_config_new(tls_world_t *w, int option_set) {
  const tls_options_t *o = &tls_option_sets[option_set];
  ssl_config_t *c = cf_pool_alloc(&w->configs);
  c->key = dup_string(w, o->key, TLS_HAS_KEY, &c->present);
  c->cert = dup_string(w, o->cert, TLS_HAS_CERT, &c->present);
  c->ca = dup_string(w, o->ca, TLS_HAS_CA, &c->present);
  c->passphrase = dup_string(w, o->passphrase, TLS_HAS_PASSPHRASE, &c->present);
  c->server_name = dup_string(w, o->server_name, TLS_HAS_SERVER_NAME, &c->present);
  c->ciphers = dup_string(w, o->ciphers, TLS_HAS_CIPHERS, &c->present);
  c->flags = o->flags;
  c->strong.v = 1;
  c->weak.v = 1;
  chk_config_alloc(c, option_set);
  return c;
}

static uint64_t mix_string(uint64_t h, const char *s) {
  /* A NULL field hashes differently from an empty one, as an optional does. */
  if (!s) return (h ^ 0x9e3779b97f4a7c15ull) * 0x100000001b3ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return (h ^ 0xff) * 0x100000001b3ull;
}

/* contentHash(): over every content field, cached; 0 means "not computed" so it is never 0. */
uint64_t ssl_config_content_hash(ssl_config_t *c) {
  if (c->cached_hash) return c->cached_hash;
  uint64_t h = 0xcbf29ce484222325ull;
  h = mix_string(h, c->key);
  h = mix_string(h, c->cert);
  h = mix_string(h, c->ca);
  h = mix_string(h, c->passphrase);
  h = mix_string(h, c->server_name);
  h = mix_string(h, c->ciphers);
  h = (h ^ c->flags) * 0x100000001b3ull;
  c->cached_hash = h ? h : 1;
  return c->cached_hash;
}

static bool same_string(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

/* isSame(): field-by-field, skipping the bookkeeping (counts, cached hash). */
bool ssl_config_is_same(const ssl_config_t *a, const ssl_config_t *b) {
  return a->flags == b->flags && same_string(a->key, b->key) && same_string(a->cert, b->cert) &&
         same_string(a->ca, b->ca) && same_string(a->passphrase, b->passphrase) &&
         same_string(a->server_name, b->server_name) && same_string(a->ciphers, b->ciphers);
}

static void free_field(tls_world_t *w, char **field) {
  if (!*field) return;
  cf_pool_free(&w->strings, *field);
  *field = NULL;
}

/* SSLConfig.deinit()'s string part: free every string field, leaving NULLs behind. */
void ssl_config_free_strings(tls_world_t *w, ssl_config_t *c) {
  chk_strings_freed(c);
  free_field(w, &c->key);
  free_field(w, &c->cert);
  cf_yield("ssl_config.free_strings");
  free_field(w, &c->ca);
  free_field(w, &c->passphrase);
  free_field(w, &c->server_name);
  free_field(w, &c->ciphers);
  /* The frees go through the allocator, which another thread may run between: the key and
   * cert are gone (NULL) before the rest, and before the object itself. */
  cf_yield("ssl_config.strings_freed");
}

static void free_memory(tls_world_t *w, ssl_config_t *c, uint64_t owner_refs) {
  chk_config_free(c, owner_refs);
  cf_pool_free(&w->configs, c);
}

/* A config only its creator ever saw (E1 intern's losing duplicate): strings, then memory. */
void ssl_config_free_unshared(tls_world_t *w, ssl_config_t *c) {
  ssl_config_free_strings(w, c);
  free_memory(w, c, 1);
}

/* ---- E3: SharedPtr ------------------------------------------------------------------------ */

/* SSLConfig.deinit(): remove from the registry first, while the content the map hashes and
 * compares is still intact, then free the strings (#27838). */
void ssl_config_deinit(tls_world_t *w, ssl_config_t *c) {
  registry_remove(w, c);
  ssl_config_free_strings(w, c);
}

void ssl_config_clone_weak(ssl_config_t *c) { cf_atomic_fetch_add(&c->weak, 1); }

/* Weak.deinit(): the last weak reference frees the memory. */
void ssl_config_weak_deinit(tls_world_t *w, ssl_config_t *c) {
  if (cf_atomic_fetch_sub(&c->weak, 1) == 1) free_memory(w, c, 0);
}

/* Weak.upgrade() / tryIncrementStrong(): a CAS loop that refuses 0, since "once value is set to
 * 0, its value never changes" (shared.zig). Non-consuming: the weak handle stays valid. */
bool ssl_config_upgrade(ssl_config_t *c) {
  uint64_t cur = cf_atomic_load(&c->strong);
  while (cur != 0) {
    if (cf_atomic_cas(&c->strong, &cur, cur + 1)) {
      chk_strong_increment(c, cur, "upgrade");
      return true;
    }
  }
  return false;
}

/* ---- E1: ThreadSafeRefCount --------------------------------------------------------------- */

/* destroy(): remove by content, free the strings, free the object (#27385). */
static void ssl_config_destroy_e1(tls_world_t *w, ssl_config_t *c) {
  registry_remove(w, c);
  ssl_config_free_strings(w, c);
  cf_yield("ssl_config.destroy");
  free_memory(w, c, 0);
}

/* ---- both eras ---------------------------------------------------------------------------- */

void ssl_config_clone(ssl_config_t *c) {
  /* E1 ref(): fetchAdd(1) with debugAssert(old > 0), a no-op in release (ref_count.zig). E3
   * clone() is the same increment, from a reference the caller holds. */
  uint64_t old = cf_atomic_fetch_add(&c->strong, 1);
  chk_strong_increment(c, old, tls_era_e1() ? "ref" : "clone");
}

void ssl_config_release(tls_world_t *w, ssl_config_t *c) {
  uint64_t old = cf_atomic_fetch_sub(&c->strong, 1);
  if (old != 1) return;
  if (tls_era_e1()) {
    ssl_config_destroy_e1(w, c);
  } else {
    ssl_config_deinit(w, c);
    ssl_config_weak_deinit(w, c); /* the collective weak */
  }
}
