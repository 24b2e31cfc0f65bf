/* checker.c: the oracles of spec §A9 over a ghost record of every config (see checker.h).
 *
 * Which check catches which toggle:
 *   tls-27838-resurrect          a strong increment from 0 (§A9.1), reported when the
 *                                resurrected config is freed or at quiescence, unless a reader
 *                                meets the freed content first (holder-config, or ASan);
 *   tls-27838-no-null-guard      strlen(NULL) in the builder: a crash where the guard gives a
 *                                clean error (holder-config);
 *   tls-27838-remove-by-content  remove(P) deleting another config's slot (§A9.4);
 *   tls-27838-dispose-under-lock the runtime's deadlock check (§A9.9);
 *   tls-cache-unpinned-key       a pointer-keyed hit on a different serial (§A9.7). */
#include <string.h>

#include "checker.h"
#include "tls.h"

#define CHK_MAX_SERIALS 64

typedef struct ghost {
  ssl_config_t *ptr; /* while live */
  int option_set;
  bool live, strings_valid, interned, resurrected;
  const char *resurrected_by;
  int holders[HOLDER_KINDS];
} ghost_t;

static struct {
  tls_world_t *w;
  int max_serial; /* highest serial allocated this run */
  uint64_t options_hash[TLS_OPTION_SETS];
  ghost_t g[CHK_MAX_SERIALS + 1];
} chk;

static const char *const holder_names[HOLDER_KINDS] = {"fetch", "tls_props", "pool", "cache"};

/* Real backend: hooks run on several threads. */
static void lock(void) { cf_host_lock(); }
static void unlock(void) { cf_host_unlock(); }

static unsigned long long serial_of(const ssl_config_t *c) {
  return (unsigned long long)cf_pool_serial(c);
}

static ghost_t *ghost(const ssl_config_t *c) {
  uint64_t s = cf_pool_serial(c);
  return s && s <= CHK_MAX_SERIALS ? &chk.g[s] : NULL;
}

static uint64_t options_hash(int option_set);

void chk_init(tls_world_t *w) {
  memset(chk.g, 0, sizeof chk.g);
  chk.w = w;
  chk.max_serial = 0;
  if (!chk.options_hash[0])
    for (int i = 0; i < TLS_OPTION_SETS; i++) chk.options_hash[i] = options_hash(i);
}

uint64_t tls_options_hash(int option_set) { return chk.options_hash[option_set]; }

/* The hooks below run their checks under the host lock (the real backend calls them from
 * several threads; under TSan it orders the checker's own bookkeeping). */

static uint64_t options_hash(int option_set) {
  const tls_options_t *o = &tls_option_sets[option_set];
  uint64_t h = 0xcbf29ce484222325ull;
  const char *fields[6] = {o->key, o->cert, o->ca, o->passphrase, o->server_name, o->ciphers};
  for (int i = 0; i < 6; i++)
    if (fields[i]) h = tls_mix_content(h, fields[i], strlen(fields[i]));
  return (h ^ o->flags) * 0x100000001b3ull;
}

void chk_config_alloc(ssl_config_t *c, int option_set) {
  uint64_t s = cf_pool_serial(c);
  if (s > CHK_MAX_SERIALS)
    cf_fail("capacity", TLS_SYSTEM, CF_SITE("checker.alloc"), "more than %d configs in one run",
            CHK_MAX_SERIALS);
  lock();
  chk.g[s] = (ghost_t){.ptr = c, .option_set = option_set, .live = true, .strings_valid = true};
  if ((int)s > chk.max_serial) chk.max_serial = (int)s;
  unlock();
}

static void chk_strong_increment_locked(ssl_config_t *c, uint64_t old, const char *who) {
  if (old != 0) return;
  ghost_t *g = ghost(c);
  if (g && !g->resurrected) {
    g->resurrected = true;
    g->resurrected_by = who;
  }
  cf_note(CF_SITE("ssl_config.strong_from_zero"),
          "%s: strong 0 -> 1 on config serial %llu after its last reference was released", who,
          serial_of(c));
}

static void chk_strings_freed_locked(ssl_config_t *c) {
  ghost_t *g = ghost(c);
  if (g) g->strings_valid = false;
}

static void report_resurrection(const ghost_t *g, unsigned long long serial, const char *when) {
  cf_fail("resurrection", TLS_SYSTEM, CF_SITE("ssl_config.resurrected"),
          "%s incremented config serial %llu (option set %d) from strong 0 to 1 while it was "
          "being torn down; %s",
          g->resurrected_by, serial, g->option_set, when);
}

static void chk_config_free_locked(ssl_config_t *c, uint64_t owner_refs) {
  unsigned long long s = serial_of(c);
  ghost_t *g = ghost(c);
  if (!g) return;
  if (g->resurrected) report_resurrection(g, s, "now its memory is freed with a holder left");
  uint64_t strong = c->strong.v;
  int held = 0;
  for (int k = 0; k < HOLDER_KINDS; k++) held += g->holders[k];
  if (strong != owner_refs || held)
    cf_fail("freed-while-held", TLS_SYSTEM, CF_SITE("ssl_config.free"),
            "config serial %llu freed with strong count %llu and %d holder(s)", s,
            (unsigned long long)strong, held);
  g->live = false;
  g->ptr = NULL;
}

void chk_holder_acquire(ssl_config_t *c, holder_kind_t kind) {
  ghost_t *g = ghost(c);
  if (!g) return;
  lock();
  g->holders[kind]++;
  unlock();
}

void chk_holder_release(ssl_config_t *c, holder_kind_t kind) {
  ghost_t *g = ghost(c);
  if (!g) return;
  lock();
  int left = --g->holders[kind];
  unlock();
  if (left < 0)
    cf_fail("holder-accounting", TLS_SYSTEM, CF_SITE("checker.release"),
            "%s released config serial %llu more often than it acquired it", holder_names[kind],
            serial_of(c));
}

static void chk_registry_keys_locked(tls_world_t *w, const char *op) {
  for (int i = 0; i < w->registry.count; i++) {
    ssl_config_t *key = w->registry.slots[i].key;
    if (!cf_pool_is_live(key))
      cf_fail("registry-key-invalid", TLS_SYSTEM, CF_SITE("registry.keys"),
              "%s: slot %d's key was freed while in the map", op, i);
    ghost_t *g = ghost(key);
    if (g && !g->strings_valid)
      cf_fail("registry-key-invalid", TLS_SYSTEM, CF_SITE("registry.keys"),
              "%s: slot %d's key (serial %llu) lost its strings while in the map", op, i,
              serial_of(key));
  }
}

void chk_removed(ssl_config_t *p, ssl_config_t *removed_key) {
  if (removed_key != p)
    cf_fail("remove-not-exact", TLS_SYSTEM, CF_SITE("registry.remove"),
            "remove(config serial %llu) deleted the slot of config serial %llu (equal content, "
            "another object)",
            serial_of(p), serial_of(removed_key));
}

static void chk_interned_locked(ssl_config_t *c) {
  ghost_t *g = ghost(c);
  if (!g) return;
  g->interned = true;
  for (int s = 1; s <= chk.max_serial; s++) {
    ghost_t *o = &chk.g[s];
    if (o == g || !o->live || !o->interned || o->option_set != g->option_set) continue;
    if (o->ptr->strong.v > 0 && !o->resurrected)
      cf_fail("dedup", TLS_SYSTEM, CF_SITE("registry.intern"),
              "two live interned configs for option set %d: serial %d and serial %llu",
              g->option_set, s, serial_of(c));
  }
}

static void chk_use_locked(const http_client_t *client, const char *what, bool ok,
                           uint64_t content_hash) {
  uint64_t now = cf_pool_serial(client->tls_props);
  if (now != client->tls_serial)
    cf_fail("holder-config", TLS_SYSTEM, CF_SITE("http.build_ssl_ctx"),
            "client %d (%s): its tls_props, config serial %llu, was freed while held; serial "
            "%llu now lives at that address",
            client->id, what, (unsigned long long)client->tls_serial, (unsigned long long)now);
  if (!ok)
    cf_fail("holder-config", TLS_SYSTEM, CF_SITE("http.build_ssl_ctx"),
            "client %d (%s): SSL error building from config serial %llu: its strings were "
            "freed while the client held it",
            client->id, what, (unsigned long long)now);
  if (content_hash != tls_options_hash(client->option_set))
    cf_fail("holder-config", TLS_SYSTEM, CF_SITE("http.build_ssl_ctx"),
            "client %d (%s): SSL context built from content other than its option set %d",
            client->id, what, client->option_set);
}

static void chk_pointer_hit_locked(const char *where, uint64_t recorded_serial, ssl_config_t *ptr) {
  uint64_t now = cf_pool_serial(ptr);
  if (now == recorded_serial) return;
  const cf_site_t *site = strcmp(where, "ssl_ctx_cache.hit") == 0
                              ? CF_SITE("ssl_ctx_cache.hit")
                              : CF_SITE("pooled_socket.match");
  cf_fail("aba", TLS_SYSTEM, site,
          "record made for config serial %llu matched by pointer, but serial %llu lives there "
          "now",
          (unsigned long long)recorded_serial, (unsigned long long)now);
}

static bool in_registry(tls_world_t *w, const ssl_config_t *c) {
  for (int i = 0; i < w->registry.count; i++)
    if (w->registry.slots[i].key == c) return true;
  return false;
}

static void chk_quiescent_locked(tls_world_t *w) {
  for (int s = 1; s <= chk.max_serial; s++) {
    ghost_t *g = &chk.g[s];
    if (!g->live) continue;
    if (g->resurrected) report_resurrection(g, (unsigned long long)s, "found at quiescence");
    uint64_t strong = g->ptr->strong.v, weak = g->ptr->weak.v;
    int held = 0;
    for (int k = 0; k < HOLDER_KINDS; k++) held += g->holders[k];
    bool reg = in_registry(w, g->ptr);
    if (strong != (uint64_t)held)
      cf_fail("refcount-conservation", TLS_SYSTEM, CF_SITE("tls.quiescence"),
              "config serial %d: strong count %llu, holders %d (pool %d, cache %d)", s,
              (unsigned long long)strong, held, g->holders[HOLDER_POOL], g->holders[HOLDER_CACHE]);
    if (!tls_era_e1() && weak != (uint64_t)(strong > 0) + reg)
      cf_fail("refcount-conservation", TLS_SYSTEM, CF_SITE("tls.quiescence"),
              "config serial %d: weak count %llu, expected %d (strong %llu, %s)", s,
              (unsigned long long)weak, (int)(strong > 0) + reg, (unsigned long long)strong,
              reg ? "in the registry" : "not in the registry");
    if (g->interned && strong > 0 && !reg)
      cf_fail("registry-lost-entry", TLS_SYSTEM, CF_SITE("tls.quiescence"),
              "config serial %d is alive and was interned but is no registry key", s);
  }
  for (int i = 0; i < w->registry.count; i++)
    if (w->registry.slots[i].key->strong.v == 0)
      cf_fail("registry-dead-slot", TLS_SYSTEM, CF_SITE("tls.quiescence"),
              "registry slot %d holds config serial %llu with strong count 0", i,
              serial_of(w->registry.slots[i].key));
}

static void chk_teardown_locked(tls_world_t *w) {
  for (int s = 1; s <= chk.max_serial; s++)
    if (chk.g[s].live)
      cf_fail("leak", TLS_SYSTEM, CF_SITE("tls.teardown"),
              "config serial %d (option set %d) still alive after every holder let go", s,
              chk.g[s].option_set);
  if (w->registry.count)
    cf_fail("leak", TLS_SYSTEM, CF_SITE("tls.teardown"), "%d registry slot(s) left",
            w->registry.count);
}

void chk_strong_increment(ssl_config_t *c, uint64_t old, const char *who) {
  lock();
  chk_strong_increment_locked(c, old, who);
  unlock();
}

void chk_strings_freed(ssl_config_t *c) {
  lock();
  chk_strings_freed_locked(c);
  unlock();
}

void chk_config_free(ssl_config_t *c, uint64_t owner_refs) {
  lock();
  chk_config_free_locked(c, owner_refs);
  unlock();
}

void chk_registry_keys(tls_world_t *w, const char *op) {
  lock();
  chk_registry_keys_locked(w, op);
  unlock();
}

void chk_interned(ssl_config_t *c) {
  lock();
  chk_interned_locked(c);
  unlock();
}

void chk_use(const http_client_t *client, const char *what, bool ok, uint64_t content_hash) {
  lock();
  chk_use_locked(client, what, ok, content_hash);
  unlock();
}

void chk_pointer_hit(const char *where, uint64_t recorded_serial, ssl_config_t *ptr) {
  lock();
  chk_pointer_hit_locked(where, recorded_serial, ptr);
  unlock();
}

void chk_quiescent(tls_world_t *w) {
  lock();
  chk_quiescent_locked(w);
  unlock();
}

void chk_teardown(tls_world_t *w) {
  lock();
  chk_teardown_locked(w);
  unlock();
}
