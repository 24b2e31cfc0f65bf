/* pool.h: checked allocators for system copies.
 *
 * cf_pool  - a generic object pool: freed objects are poisoned for ASan, reused last-in
 *            first-out so a dangling pointer soon meets a new object at the same address, and
 *            every allocation gets a serial number so an oracle can tell the old object from the
 *            new one at that address (ABA).
 * cf_zpool - the same, but laid out like Zig's std.heap.MemoryPool: destroy() writes the free
 *            list's next pointer at offset 0 of the freed item and create() pops it again (LIFO).
 *            A use-after-free that reads offset 0 sees that pointer, as a Zig program would; the
 *            rest of the item stays poisoned so ASan reports any other access.
 * Both detect double frees and frees of foreign pointers. Memory is returned when the run
 * ends (init registers the teardown with cf_defer). */
#ifndef CF_POOL_H
#define CF_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

typedef struct cf_pool_node cf_pool_node_t;

typedef struct cf_pool {
  const char *name;
  const char *system;     /* for oracle lines */
  size_t item_size;
  bool zig_layout;        /* cf_zpool: next pointer at offset 0 of freed items */
  cf_pool_node_t *free_list;
  cf_pool_node_t *all;    /* every node ever allocated, for teardown */
  uint64_t next_serial;
  size_t live;
  char free_label[64];    /* "<name>.free": the site of misuse reports, so signatures say
                             which pool */
  cf_site_t free_site;
} cf_pool_t;

void cf_pool_init(cf_pool_t *p, const char *system, const char *name, size_t item_size);
void *cf_pool_alloc(cf_pool_t *p);
void cf_pool_free(cf_pool_t *p, void *item);
/* Serial of the live object at this address, or 0 if the slot is free. `item` must come from
 * a pool. */
uint64_t cf_pool_serial(const void *item);
bool cf_pool_is_live(const void *item);
void cf_pool_destroy(cf_pool_t *p);

typedef cf_pool_t cf_zpool_t;
void cf_zpool_init(cf_zpool_t *p, const char *system, const char *name, size_t item_size);
/* Zig: MemoryPool.create() */
void *cf_zpool_create(cf_zpool_t *p);
/* Zig: MemoryPool.destroy(ptr) */
void cf_zpool_destroy(cf_zpool_t *p, void *item);

#endif
