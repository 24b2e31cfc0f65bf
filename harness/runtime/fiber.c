/* fiber.c: execution contexts for simulated threads.
 *
 * A context switch saves the callee-saved registers on the old stack and loads the stack
 * pointer of the new one: about a dozen instructions on x86-64, against a sigprocmask system
 * call per switch for swapcontext(). Other architectures use _setjmp/_longjmp, with
 * makecontext only to enter a fresh stack once (define CF_FIBER_PORTABLE to test that path on
 * x86-64).
 *
 * Every switch is announced to AddressSanitizer (__sanitizer_start_switch_fiber /
 * __sanitizer_finish_switch_fiber) so stack-use-after-return and stack bounds stay right, and
 * to ThreadSanitizer (__tsan_switch_to_fiber with no_sync: a switch is not a synchronisation
 * the program performed). Stacks have a PROT_NONE guard page below them, and finished stacks
 * are kept for the next run: the cache holds memory only, no state a run can observe. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef CF_FIBER_PORTABLE
#include <ucontext.h>
#endif

#include "internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(CF_ASAN)
#define CF_ASAN 1
#endif

#ifdef CF_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CF_TSAN
/* Declared here rather than through <sanitizer/tsan_interface.h> so that uninstrumented
 * runtime objects (-DCF_TSAN=1) build the same way as instrumented ones. */
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#define __tsan_switch_to_fiber_no_sync (1 << 0)
#endif

#if !defined(__x86_64__) && !defined(CF_FIBER_PORTABLE)
#define CF_FIBER_PORTABLE 1
#endif

/* Sanitizer builds use much larger frames; 256 KiB leaves room for deep copies. */
#define CF_STACK_SIZE (256u * 1024u)
#define CF_STACK_CACHE 64

static size_t page_size(void) {
  static size_t ps;
  if (!ps) ps = (size_t)sysconf(_SC_PAGESIZE);
  return ps;
}

/* ---- stacks ------------------------------------------------------------------------------- */

static void *stack_cache[CF_STACK_CACHE];
static int stack_cache_len;

static void stack_put(void *base);

static void *stack_get(void) {
  if (stack_cache_len > 0) return stack_cache[--stack_cache_len];
  size_t total = CF_STACK_SIZE + page_size();
  void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
  if (base == MAP_FAILED) {
    perror("churnfuzz: mmap fiber stack");
    abort();
  }
  if (mprotect(base, page_size(), PROT_NONE) != 0) {
    perror("churnfuzz: mprotect guard page");
    abort();
  }
  return base;
}

void cf_fiber_prefill_stacks(void) {
  void *stacks[CF_MAX_FIBERS];
  for (int i = 0; i < CF_MAX_FIBERS; i++) stacks[i] = stack_get();
  for (int i = 0; i < CF_MAX_FIBERS; i++) stack_put(stacks[i]);
}

static void stack_put(void *base) {
  if (stack_cache_len < CF_STACK_CACHE) {
    stack_cache[stack_cache_len++] = base;
    return;
  }
  munmap(base, CF_STACK_SIZE + page_size());
}

/* ---- the switch itself -------------------------------------------------------------------- */

#ifndef CF_FIBER_PORTABLE
/* cf_ctx_switch(void **save_sp, void *new_sp): push the callee-saved registers, store the
 * stack pointer through save_sp, load new_sp, pop the new context's registers and return into
 * it. cf_ctx_start is where a fresh stack "returns" to the first time. */
__asm__(".text\n"
        ".globl cf_ctx_switch\n"
        ".type cf_ctx_switch,@function\n"
        "cf_ctx_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size cf_ctx_switch, .-cf_ctx_switch\n"
        ".type cf_ctx_start,@function\n"
        "cf_ctx_start:\n"
        "  call cf_fiber_entry\n"
        "  ud2\n"
        ".size cf_ctx_start, .-cf_ctx_start\n"
        ".section .note.GNU-stack,\"\",@progbits\n"
        ".text\n");
void cf_ctx_switch(void **save_sp, void *new_sp);
void cf_ctx_start(void);
#endif

void cf_fiber_adopt_host(cf_fiber_t *f) {
  f->stack = NULL;
  f->asan_fake_stack = NULL;
  f->asan_stack_bottom = NULL;
  f->asan_stack_size = 0;
#ifdef CF_TSAN
  f->tsan_fiber = __tsan_get_current_fiber();
#else
  f->tsan_fiber = NULL;
#endif
}

#ifdef CF_FIBER_PORTABLE
/* Enter a fresh stack once with makecontext, record it with _setjmp and come straight back;
 * every later switch is _setjmp/_longjmp. */
static ucontext_t boot_return;
static cf_fiber_t *boot_fiber;

static void portable_boot(void) {
  cf_fiber_t *self = boot_fiber;
#ifdef CF_ASAN
  const void *host_bottom;
  size_t host_size;
  __sanitizer_finish_switch_fiber(NULL, &host_bottom, &host_size);
#endif
  if (_setjmp(self->jb) == 0) {
    ucontext_t dummy;
#ifdef CF_ASAN
    __sanitizer_start_switch_fiber(&self->asan_fake_stack, host_bottom, host_size);
#endif
    swapcontext(&dummy, &boot_return);
  }
  cf_fiber_entry();
}
#endif

void cf_fiber_prepare(cf_fiber_t *f) {
  f->stack = stack_get();
  f->stack_size = CF_STACK_SIZE;
  char *lo = (char *)f->stack + page_size();
  f->asan_stack_bottom = lo;
  f->asan_stack_size = CF_STACK_SIZE;
  f->asan_fake_stack = NULL;
#ifdef CF_TSAN
  f->tsan_fiber = __tsan_create_fiber(0);
#endif
#ifndef CF_FIBER_PORTABLE
  /* Six zeroed register slots, then the address cf_ctx_switch returns to. The slot sits at
   * top-24 so that cf_ctx_start's call leaves cf_fiber_entry with the ABI's alignment. */
  uintptr_t top = ((uintptr_t)lo + CF_STACK_SIZE) & ~(uintptr_t)15;
  uintptr_t *ret_slot = (uintptr_t *)(top - 24);
  *ret_slot = (uintptr_t)cf_ctx_start;
  uintptr_t *regs = ret_slot - 6;
  for (int i = 0; i < 6; i++) regs[i] = 0;
  f->sp = regs;
#else
  ucontext_t uc;
  getcontext(&uc);
  uc.uc_stack.ss_sp = lo;
  uc.uc_stack.ss_size = CF_STACK_SIZE;
  uc.uc_link = NULL;
  makecontext(&uc, portable_boot, 0);
  boot_fiber = f;
#ifdef CF_ASAN
  void *fake = NULL;
  const void *b;
  size_t s;
  __sanitizer_start_switch_fiber(&fake, lo, CF_STACK_SIZE);
#endif
  swapcontext(&boot_return, &uc);
#ifdef CF_ASAN
  __sanitizer_finish_switch_fiber(fake, &b, &s);
#endif
#endif
}

/* Below the stack pointer a fiber last saved, every frame has returned and cleaned up after
 * itself; the frames above it never returned (the fiber exited or was abandoned at the end of
 * the run) and leave poisoned shadow that the stack's next fiber must not inherit. Unpoisoning
 * only that part, with a margin, keeps recycling a stack cheap. */
static void unpoison_used_part(cf_fiber_t *f) {
#ifdef CF_ASAN
  char *lo = (char *)f->stack + page_size();
  char *top = lo + CF_STACK_SIZE;
  char *from = (char *)f->sp - 4096;
  if (!f->sp || from < lo) from = lo;
  ASAN_UNPOISON_MEMORY_REGION(from, (size_t)(top - from));
#else
  (void)f;
#endif
}

void cf_fiber_release(cf_fiber_t *f) {
  if (f->stack) {
    unpoison_used_part(f);
    stack_put(f->stack);
  }
  f->stack = NULL;
#ifdef CF_TSAN
  if (f->tsan_fiber && f != &cf_run_state.host) __tsan_destroy_fiber(f->tsan_fiber);
  f->tsan_fiber = NULL;
#endif
}

/* The context we are switching away from; lets the arriving side learn the host's stack
 * bounds, which only ASan knows. */
static cf_fiber_t *switching_from;

static void arrived(cf_fiber_t *self) {
#ifdef CF_ASAN
  const void *old_bottom = NULL;
  size_t old_size = 0;
  __sanitizer_finish_switch_fiber(self->asan_fake_stack, &old_bottom, &old_size);
  if (switching_from && !switching_from->asan_stack_bottom) {
    switching_from->asan_stack_bottom = old_bottom;
    switching_from->asan_stack_size = old_size;
  }
#else
  (void)self;
#endif
}

#ifdef CF_TSAN
void cf_tsan_ignore_begin(void) {
  __tsan_ignore_thread_begin();
  if (cf_run_state.current) cf_run_state.current->tsan_ignores++;
}

void cf_tsan_ignore_end(void) {
  __tsan_ignore_thread_end();
  if (cf_run_state.current) cf_run_state.current->tsan_ignores--;
}
#endif

void cf_fiber_switch(cf_fiber_t *from, cf_fiber_t *to, bool from_exits) {
#ifdef CF_TSAN
  for (int i = 0; i < from->tsan_ignores; i++) __tsan_ignore_thread_end();
#endif
  switching_from = from;
#ifdef CF_ASAN
  __sanitizer_start_switch_fiber(from_exits ? NULL : &from->asan_fake_stack, to->asan_stack_bottom,
                                 to->asan_stack_size);
#else
  (void)from_exits;
#endif
#ifdef CF_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, __tsan_switch_to_fiber_no_sync);
#endif
#ifndef CF_FIBER_PORTABLE
  cf_ctx_switch(&from->sp, to->sp);
#else
  if (_setjmp(from->jb) == 0) _longjmp(to->jb, 1);
#endif
  arrived(from);
#ifdef CF_TSAN
  for (int i = 0; i < from->tsan_ignores; i++) __tsan_ignore_thread_begin();
#endif
}

void cf_fiber_entry(void) {
  cf_fiber_t *self = cf_run_state.current;
  arrived(self);
  cf_sync_acquire(self); /* everything the spawner did happens before the new thread starts */
  cf_sync_acquire(&cf_run_state.host); /* and everything the host set up before the run */
  self->fn(self->arg);
  cf_sched_exit();
  __builtin_unreachable();
}
