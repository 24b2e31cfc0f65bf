/* pool.c: see pool.h. Each node is its own malloc block (so ASan keeps redzones between
 * nodes) with a small header in front of the item that never gets poisoned. */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf.h"
#include "internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_POOL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(CF_POOL_ASAN)
#define CF_POOL_ASAN 1
#endif
#ifdef CF_POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NODE_LIVE 0x4c495645u /* "LIVE" */
#define NODE_FREE 0x46524545u /* "FREE" */

struct cf_pool_node {
  cf_pool_t *owner;
  cf_pool_node_t *next_all;
  cf_pool_node_t *next_free; /* generic layout only; the Zig layout keeps it in the item */
  uint64_t serial;
  uint32_t state;
  uint32_t pad;
  _Alignas(16) unsigned char item[];
};

static cf_pool_node_t *node_of(const void *item) {
  return (cf_pool_node_t *)((uintptr_t)item - offsetof(cf_pool_node_t, item));
}

static void destroy_cb(void *p) { cf_pool_destroy(p); }

void cf_pool_init(cf_pool_t *p, const char *system, const char *name, size_t item_size) {
  memset(p, 0, sizeof *p);
  p->system = system;
  p->name = name;
  p->item_size = item_size ? item_size : 1;
  snprintf(p->free_label, sizeof p->free_label, "%s.free", name);
  p->free_site = (cf_site_t){p->free_label, __FILE__, __LINE__, 0};
  cf_defer(destroy_cb, p);
}

void cf_zpool_init(cf_zpool_t *p, const char *system, const char *name, size_t item_size) {
  /* Zig sizes items to hold at least the free-list node. */
  cf_pool_init(p, system, name, item_size < sizeof(void *) ? sizeof(void *) : item_size);
  p->zig_layout = true;
}

static cf_pool_node_t *pop_free(cf_pool_t *p) {
  cf_pool_node_t *n;
  if (p->zig_layout) {
    void *item = p->free_list ? p->free_list->item : NULL;
    if (!item) return NULL;
    n = node_of(item);
    void *next_item;
    memcpy(&next_item, item, sizeof next_item); /* the next pointer lives at offset 0 */
    p->free_list = next_item ? node_of(next_item) : NULL;
  } else {
    n = p->free_list;
    if (!n) return NULL;
    p->free_list = n->next_free;
  }
  UNPOISON(n->item, p->item_size);
  return n;
}

/* On the real backend several threads share a pool, as they share malloc: its bookkeeping
 * takes the host lock there. Simulated fibers never run at once, and taking a lock there would
 * order every allocation for TSan, hiding races between them. */
static void host_lock(void) {
  if (!cf_in_sim()) cf_host_lock();
}
static void host_unlock(void) {
  if (!cf_in_sim()) cf_host_unlock();
}

/* The pool is the allocator: handing a node to one thread after another freed it is a
 * synchronisation, as in any real allocator, and its own bookkeeping is not the program's. */
void *cf_pool_alloc(cf_pool_t *p) {
  host_lock();
  cf_sync_acquire(p);
  cf_tsan_ignore_begin();
  cf_pool_node_t *n = pop_free(p);
  if (!n) {
    n = malloc(sizeof *n + p->item_size);
    if (!n) abort();
    n->owner = p;
    n->next_all = p->all;
    p->all = n;
  }
  n->next_free = NULL;
  n->serial = ++p->next_serial;
  n->state = NODE_LIVE;
  p->live++;
  memset(n->item, 0, p->item_size);
  cf_tsan_ignore_end();
  host_unlock();
  return n->item;
}

void *cf_zpool_create(cf_zpool_t *p) {
  void *item = cf_pool_alloc(p);
  /* Zig leaves a created item undefined; fill it like a safe build's 0xAA. */
  cf_tsan_ignore_begin();
  memset(item, 0xaa, p->item_size);
  cf_tsan_ignore_end();
  return item;
}

static void check_free(cf_pool_t *p, void *item) {
  if (!item)
    cf_fail("pool-misuse", p->system, &p->free_site, "%s: free of NULL", p->name);
  cf_pool_node_t *n = node_of(item);
  if (n->owner != p)
    cf_fail("pool-misuse", p->system, &p->free_site, "%s: free of a foreign pointer", p->name);
  if (n->state == NODE_FREE)
    cf_fail("double-free", p->system, &p->free_site, "%s: object serial %llu freed twice",
            p->name, (unsigned long long)n->serial);
}

void cf_pool_free(cf_pool_t *p, void *item) {
  if (p->zig_layout) {
    cf_zpool_destroy(p, item);
    return;
  }
  host_lock();
  check_free(p, item);
  cf_sync_release(p);
  cf_tsan_ignore_begin();
  cf_pool_node_t *n = node_of(item);
  n->state = NODE_FREE;
  p->live--;
  memset(item, 0xdd, p->item_size);
  POISON(item, p->item_size);
  n->next_free = p->free_list;
  p->free_list = n;
  cf_tsan_ignore_end();
  host_unlock();
}

void cf_zpool_destroy(cf_zpool_t *p, void *item) {
  host_lock();
  check_free(p, item);
  cf_sync_release(p);
  cf_pool_node_t *n = node_of(item);
  n->state = NODE_FREE;
  p->live--;
  /* Zig: `ptr.* = undefined` (0xAA in safe builds), then the item becomes a free-list node
   * whose next field is at offset 0. */
  memset(item, 0xaa, p->item_size);
  void *next_item = p->free_list ? (void *)p->free_list->item : NULL;
  memcpy(item, &next_item, sizeof next_item);
  if (p->item_size > sizeof(void *))
    POISON((unsigned char *)item + sizeof(void *), p->item_size - sizeof(void *));
  p->free_list = n;
  host_unlock();
}

uint64_t cf_pool_serial(const void *item) {
  const cf_pool_node_t *n = node_of(item);
  return n->state == NODE_LIVE ? n->serial : 0;
}

bool cf_pool_is_live(const void *item) { return node_of(item)->state == NODE_LIVE; }

void cf_pool_destroy(cf_pool_t *p) {
  cf_pool_node_t *n = p->all;
  while (n) {
    cf_pool_node_t *next = n->next_all;
    UNPOISON(n->item, p->item_size);
    free(n);
    n = next;
  }
  p->all = NULL;
  p->free_list = NULL;
}
