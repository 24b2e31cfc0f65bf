/* arena.c: where a simulated kernel's objects live.
 *
 * Every file, knote, epoll item, pipe and poll waiter of a kernel is carved from the kernel's
 * arena, and the arena's chunks go back to a process-wide cache when the kernel is freed, for
 * the next run's kernels. Under ASan, a malloc and a free each record a stack trace; with a
 * few dozen kernel objects per run that was about a fifth of fuzz_epoll_shim's time.
 *
 * The arena keeps what ASan gave: a freed object is poisoned by hand and never handed out
 * again by the same kernel, so a use after free is still reported (as use-after-poison), and
 * the bytes around every object (its size header and a trailing redzone) stay poisoned, so an
 * overflow into the next object is reported too. A chunk comes back from the cache wholly
 * poisoned; each object is unpoisoned as it is handed out. */
#include <sanitizer/asan_interface.h>

#include "kernel_internal.h"

enum {
  CHUNK_BYTES = 64 * 1024,
  ALIGN = 16,
  HEADER = 16,  /* the object's size, kept poisoned */
  REDZONE = 16, /* after every object */
  CACHE_MAX = 64,
};

struct ks_chunk {
  ks_chunk_t *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

/* The chunk cache is the allocator's bookkeeping, not the program's: cf_host_lock guards it. */
static ks_chunk_t *cache;
static int cache_len;

static ks_chunk_t *chunk_get(size_t need) {
  ks_chunk_t *c = NULL;
  if (need <= CHUNK_BYTES) {
    cf_host_lock();
    if ((c = cache) != NULL) {
      cache = c->next;
      cache_len--;
    }
    cf_host_unlock();
  }
  if (!c) {
    size_t size = need > CHUNK_BYTES ? need : CHUNK_BYTES;
    c = malloc(sizeof *c + size);
    if (!c) abort();
    c->size = size;
  }
  c->used = 0;
  ASAN_POISON_MEMORY_REGION(c->data, c->size);
  return c;
}

void *ks_alloc(ks_kernel_t *k, size_t size) {
  size_t body = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  size_t need = HEADER + body + REDZONE;
  ks_chunk_t *c = k->arena;
  if (!c || c->size - c->used < need) {
    ks_chunk_t *fresh = chunk_get(need);
    fresh->next = c;
    k->arena = c = fresh;
  }
  unsigned char *h = c->data + c->used;
  c->used += need;
  ASAN_UNPOISON_MEMORY_REGION(h, HEADER);
  *(size_t *)h = size;
  ASAN_POISON_MEMORY_REGION(h, HEADER);
  ASAN_UNPOISON_MEMORY_REGION(h + HEADER, size);
  memset(h + HEADER, 0, size);
  return h + HEADER;
}

void ks_free(ks_kernel_t *k, void *p) {
  (void)k;
  if (!p) return;
  unsigned char *h = (unsigned char *)p - HEADER;
  ASAN_UNPOISON_MEMORY_REGION(h, HEADER);
  size_t size = *(size_t *)h;
  ASAN_POISON_MEMORY_REGION(h, HEADER + size);
}

void ks_arena_release(ks_kernel_t *k) {
  while (k->arena) {
    ks_chunk_t *c = k->arena;
    k->arena = c->next;
    cf_host_lock();
    bool keep = c->size == CHUNK_BYTES && cache_len < CACHE_MAX;
    if (keep) {
      c->next = cache;
      cache = c;
      cache_len++;
    }
    cf_host_unlock();
    if (!keep) free(c);
  }
}
