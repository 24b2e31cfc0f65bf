/* tsan.h: ThreadSanitizer hooks of the runtime and the simulated kernel (no-ops elsewhere).
 *
 * Fibers switch with __tsan_switch_to_fiber_no_sync, so TSan treats them as unsynchronised
 * threads and reports a plain data race in copy code even though the scheduler ran the two
 * accesses one after the other. The runtime and the simulated kernel are built without TSan
 * instrumentation (-DCF_TSAN=1 instead, see build.sh: their bookkeeping is not the program's);
 * the platform API tells TSan about each synchronisation the program really performs, and
 * libc calls the core makes on its own behalf are hidden with the ignore brackets. */
#ifndef CF_TSAN_H
#define CF_TSAN_H

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(CF_TSAN)
#define CF_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(CF_TSAN)
#define CF_TSAN 1
#endif
#ifdef CF_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define cf_sync_acquire(p) __tsan_acquire((void *)(p))
#define cf_sync_release(p) __tsan_release((void *)(p))
/* Around core work that calls intercepted libc functions (memset, vsnprintf, free). The
 * brackets are counted per fiber: a fiber that switches away inside one (blocked in a
 * syscall) closes them for the time it is switched out (fiber.c), so a fiber abandoned at the
 * end of a run never holds one open. */
void cf_tsan_ignore_begin(void);
void cf_tsan_ignore_end(void);
#else
#define cf_sync_acquire(p) ((void)(p))
#define cf_sync_release(p) ((void)(p))
#define cf_tsan_ignore_begin() ((void)0)
#define cf_tsan_ignore_end() ((void)0)
#endif

#endif
