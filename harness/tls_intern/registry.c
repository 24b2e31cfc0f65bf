/* registry.c: SSLConfig.GlobalRegistry, the process-global content-keyed dedup map.
 *
 * Fetches with identical `tls` options get the same SSLConfig object while it is alive, so the
 * HTTP thread's caches can compare configs by pointer. The map is an ArrayHashMap keyed by the
 * config pointer with a content context (contentHash / isSame): a lookup reads the content of
 * every candidate key, so a key's strings must stay valid while it is in the map.
 *
 * E1 (tls-27838-resurrect): the map holds raw pointers and no reference; intern() refs whatever
 * it finds, even a config whose count already reached 0 and whose destroy() is waiting for the
 * mutex: the 0->1 resurrection of PR #27838.
 * E3 (default): the map holds a WeakPtr per key; intern() upgrades it, and when the upgrade
 * fails (the entry is dying) replaces the key in place with the new config. */
#include "checker.h"
#include "tls.h"

void registry_init(global_registry_t *r) {
  cf_mutex_init(&r->mutex, "GlobalRegistry.mutex");
  r->count = 0;
}

/* getIndexContext(p): the slot whose key has p's content, or -1. */
static int find_by_content(global_registry_t *r, ssl_config_t *p) {
  uint64_t h = ssl_config_content_hash(p);
  for (int i = 0; i < r->count; i++)
    if (r->slots[i].hash == h && ssl_config_is_same(r->slots[i].key, p)) return i;
  return -1;
}

static void swap_remove_at(global_registry_t *r, int idx) {
  r->slots[idx] = r->slots[r->count - 1];
  r->count--;
}

static int put_new(global_registry_t *r, ssl_config_t *n) {
  if (r->count == TLS_REGISTRY_CAP)
    cf_fail("capacity", TLS_SYSTEM, CF_SITE("registry.put"), "more than %d interned configs",
            TLS_REGISTRY_CAP);
  registry_slot_t *s = &r->slots[r->count];
  s->key = n;
  s->weak = NULL;
  s->hash = ssl_config_content_hash(n);
  return r->count++;
}

/* ---- E1 ----------------------------------------------------------------------------------- */

static ssl_config_t *intern_e1(tls_world_t *w, ssl_config_t *n) {
  global_registry_t *r = &w->registry;
  cf_mutex_lock(&r->mutex);
  chk_registry_keys(w, "intern");
  int idx = find_by_content(r, n);
  if (idx >= 0) {
    ssl_config_t *existing = r->slots[idx].key;
    /* existing.ref(): no check for 0 (SSLConfig.zig #27385; fixed by #27838). */
    ssl_config_clone(existing);
    cf_note(CF_SITE("registry.intern"), "found existing config (strong now %llu); free new",
            (unsigned long long)existing->strong.v);
    ssl_config_free_unshared(w, n); /* never a key, never shared: freed directly */
    chk_interned(existing);
    cf_mutex_unlock(&r->mutex);
    return existing;
  }
  /* Not found: the new config stays in the map with count 1, which is the caller's. */
  put_new(r, n);
  chk_interned(n);
  cf_mutex_unlock(&r->mutex);
  return n;
}

/* remove by content: swapRemoveContext(this), no pointer check. */
static void remove_e1(tls_world_t *w, ssl_config_t *p) {
  global_registry_t *r = &w->registry;
  cf_mutex_lock(&r->mutex);
  int idx = find_by_content(r, p);
  if (idx >= 0) {
    chk_removed(p, r->slots[idx].key);
    swap_remove_at(r, idx);
  }
  cf_mutex_unlock(&r->mutex);
}

/* ---- E3 ----------------------------------------------------------------------------------- */

static void dispose(tls_world_t *w, ssl_config_t *dispose_new, ssl_config_t *dispose_old_weak) {
  if (dispose_new) ssl_config_release(w, dispose_new); /* N.deinit -> remove(N) re-locks */
  if (dispose_old_weak) ssl_config_weak_deinit(w, dispose_old_weak);
}

static ssl_config_t *intern_e3(tls_world_t *w, ssl_config_t *n) {
  global_registry_t *r = &w->registry;
  ssl_config_t *dispose_new = NULL, *dispose_old_weak = NULL, *result;
  cf_mutex_lock(&r->mutex);
  chk_registry_keys(w, "intern");
  int idx = find_by_content(r, n);
  if (idx >= 0 && ssl_config_upgrade(r->slots[idx].weak)) {
    result = r->slots[idx].key;
    dispose_new = n;
    cf_note(CF_SITE("registry.intern"), "upgraded existing config; dispose the new one");
  } else {
    if (idx >= 0) {
      /* The entry is dying: its deinit is blocked in remove() on this mutex with its content
       * still intact, so the new, content-equal config can take the slot in place. */
      dispose_old_weak = r->slots[idx].weak;
      r->slots[idx].key = n;
      cf_note(CF_SITE("registry.intern"), "upgrade refused (strong 0): replace the key in place");
    } else {
      idx = put_new(r, n);
    }
    ssl_config_clone_weak(n);
    r->slots[idx].weak = n;
    result = n;
  }
  chk_interned(result);
  if (cf_bug(CF_BUG_TLS_27838_DISPOSE_UNDER_LOCK)) {
    /* Disposing while holding the mutex: N.deinit -> remove(N) locks it again. */
    dispose(w, dispose_new, dispose_old_weak);
    cf_mutex_unlock(&r->mutex);
  } else {
    /* Deferred until after the unlock (SSLConfig.zig, #27838). */
    cf_mutex_unlock(&r->mutex);
    dispose(w, dispose_new, dispose_old_weak);
  }
  return result;
}

static void remove_e3(tls_world_t *w, ssl_config_t *p) {
  global_registry_t *r = &w->registry;
  cf_mutex_lock(&r->mutex);
  if (r->count == 0) {
    cf_mutex_unlock(&r->mutex);
    return;
  }
  int idx = find_by_content(r, p);
  /* The identity check: a content match may be a different config that replaced a dying one,
   * or the live original when a losing duplicate is disposed (#27838). */
  bool mismatch = idx >= 0 && r->slots[idx].key != p;
  if (idx < 0 || (mismatch && !cf_bug(CF_BUG_TLS_27838_REMOVE_BY_CONTENT))) {
    cf_mutex_unlock(&r->mutex);
    return;
  }
  ssl_config_t *weak = r->slots[idx].weak;
  chk_removed(p, r->slots[idx].key);
  swap_remove_at(r, idx);
  ssl_config_weak_deinit(w, weak); /* 2 -> 1: the collective weak is still held */
  cf_mutex_unlock(&r->mutex);
}

/* ---- entry points ------------------------------------------------------------------------- */

/* intern(): runs on a JS thread for every fetch with `tls` options. Takes ownership of n (a
 * fresh config, strong 1) and returns one strong reference to the canonical config. */
ssl_config_t *registry_intern(tls_world_t *w, ssl_config_t *n) {
  return tls_era_e1() ? intern_e1(w, n) : intern_e3(w, n);
}

void registry_remove(tls_world_t *w, ssl_config_t *p) {
  if (tls_era_e1())
    remove_e1(w, p);
  else
    remove_e3(w, p);
}
