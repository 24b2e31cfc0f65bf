/* internal.h: private declarations shared by the runtime's files (input, fiber, sched, trace,
 * coverage, oracle). Copies and the kernel include cf.h only. */
#ifndef CF_INTERNAL_H
#define CF_INTERNAL_H

#include <setjmp.h>

#include "cf.h"
#include "run.h"

#define CF_MAX_FIBERS 32
#define CF_MAX_OBLIGATIONS 1024
#define CF_MAX_CALLBACKS 64

/* ---- input.c: the two decision streams ---------------------------------------------------- */

typedef enum cf_policy { CF_POLICY_DIRECT = 0, CF_POLICY_PCT = 1 } cf_policy_t;

typedef struct cf_input {
  const uint8_t *data;
  size_t front;        /* next workload byte */
  size_t back;         /* one past the next schedule byte (read backwards) */
  cf_policy_t policy;
  uint32_t pct_seed;
  int pct_changes;     /* number of priority-change points (0..2 from a header) */
  uint32_t pct_change_at[CF_PCT_PLAN_MAX];
  /* A planned PCT run (cf_input_init_planned): change points are absolute choice-point
   * indexes and schedule bytes never override a pick. */
  bool pct_planned;
} cf_input_t;

void cf_input_init(cf_input_t *in, const uint8_t *data, size_t size);
void cf_input_init_planned(cf_input_t *in, const uint8_t *data, size_t size,
                           const cf_pct_plan_t *plan);
bool cf_input_sched_left(const cf_input_t *in);
/* Next schedule-stream byte; false when exhausted. */
bool cf_input_sched_byte(cf_input_t *in, uint8_t *out);

#include "tsan.h"

/* ---- fiber.c: contexts and stacks --------------------------------------------------------- */

typedef enum cf_fiber_state {
  CF_FIBER_FREE = 0,
  CF_FIBER_RUNNABLE,
  CF_FIBER_BLOCKED,
  CF_FIBER_EXITED
} cf_fiber_state_t;

struct cf_fiber {
  int id;
  const char *name;
  cf_fiber_state_t state;
  /* Blocking. */
  cf_wait_kind_t wait_kind;
  const cf_site_t *wait_site;
  cf_waitq_t *waitq;
  cf_fiber_t *wq_next;
  int64_t deadline;   /* virtual time of timeout, or -1 */
  bool timed_out;
  bool joining;       /* blocked in cf_thread_join */
  cf_waitq_t joiners;
  /* Scheduling. */
  uint32_t priority;  /* PCT */
  /* Execution context. */
  void *sp;
  void *stack;        /* mapping base, guard page included */
  size_t stack_size;  /* usable size above the guard page */
  void (*fn)(void *);
  void *arg;
  void *asan_fake_stack;
  const void *asan_stack_bottom;
  size_t asan_stack_size;
  void *tsan_fiber;
  int tsan_ignores;   /* open cf_tsan_ignore_begin brackets */
#ifdef CF_FIBER_PORTABLE
  jmp_buf jb;
#endif
};

/* Create the context of a fresh fiber so that switching to it runs cf_fiber_entry(). */
void cf_fiber_prepare(cf_fiber_t *f);
/* Release a finished fiber's stack back to the cache. */
void cf_fiber_release(cf_fiber_t *f);
/* Switch from `from` (the running context) to `to`. `from_exits` tells the sanitizers that
 * `from` will never run again. Returns when something switches back to `from`. */
void cf_fiber_switch(cf_fiber_t *from, cf_fiber_t *to, bool from_exits);
/* The first code every fiber runs; calls the fiber's function, then cf_sched_exit(). */
__attribute__((noreturn)) void cf_fiber_entry(void);
/* Map the stacks of a full run ahead of time (see cf_fuzz_init). */
void cf_fiber_prefill_stacks(void);
/* Adopt the calling OS-thread context as fiber `f` (the run's host context). */
void cf_fiber_adopt_host(cf_fiber_t *f);

/* ---- sched.c: the run ---------------------------------------------------------------------- */

typedef enum cf_phase { CF_PHASE_SAFETY = 0, CF_PHASE_LIVENESS = 1, CF_PHASE_DONE = 2 } cf_phase_t;

typedef struct cf_callback {
  void (*fn)(void *);
  void *arg;
} cf_callback_t;

typedef struct cf_obligation_slot {
  const char *system;
  const char *what;
  uint64_t id;
  bool open;
} cf_obligation_slot_t;

typedef struct cf_run_state {
  bool active;
  const cf_run_options_t *opt;
  cf_input_t input;
  cf_phase_t phase;
  cf_fiber_t host;              /* the OS thread's own context */
  cf_fiber_t fibers[CF_MAX_FIBERS];
  int nfibers;
  cf_fiber_t *current;
  int64_t now;
  uint64_t steps;
  uint64_t choice_points;       /* decisions with two or more runnable fibers */
  uint64_t steps_since_progress;
  int run_left;                 /* direct policy: choice points to keep the current pick */
  int pct_follow_left;          /* PCT policy: choice points to follow PCT without reading */
  uint32_t prev_site;           /* coverage: the last yield site */
  uint32_t preemptions;         /* switches away from a fiber that could have gone on */
  bool faults_on[CF_FAULT_CLASS_COUNT];
  cf_obligation_slot_t obligations[CF_MAX_OBLIGATIONS];
  int nobligations;
  cf_callback_t quiescence_cbs[CF_MAX_CALLBACKS];
  int nquiescence;
  cf_callback_t defer_cbs[CF_MAX_CALLBACKS];
  int ndefer;
  cf_result_t *result;
  jmp_buf unwind;               /* capture mode: where cf_fail returns to */
  int oracle_depth;             /* open cf_oracle_begin() sections: yield points do not switch */
} cf_run_state_t;

/* The one run in progress. Reset at the start of every run; nothing in it survives. */
extern cf_run_state_t cf_run_state;

/* The exiting fiber's last switch; never returns. Deliberately not declared noreturn: ASan
 * would then call __asan_handle_no_return (a sigaltstack syscall and a shadow wipe) on every
 * fiber exit, and the stack's used part is unpoisoned when it is recycled anyway. */
void cf_sched_exit(void);
/* Pick and switch to the next fiber. `site` is the yield point; the current fiber's state
 * (runnable or blocked) is already set. */
void cf_sched_switch(const cf_site_t *site);
/* Make a blocked fiber runnable again (from a wait queue or a timer). */
void cf_sched_make_runnable(cf_fiber_t *f);
cf_fiber_t *cf_sched_spawn(void (*fn)(void *), void *arg, const char *name,
                           const cf_site_t *site);

/* ---- trace.c ------------------------------------------------------------------------------- */

typedef enum cf_event_kind {
  CF_EV_PICK = 0,  /* schedule decision: a = picked fiber, b = runnable count */
  CF_EV_YIELD,     /* a fiber reached a yield point */
  CF_EV_BLOCK,     /* a = wait kind, b = timeout */
  CF_EV_WAKE,      /* a = woken fiber */
  CF_EV_SPAWN,     /* a = new fiber */
  CF_EV_EXIT,
  CF_EV_CHOOSE,    /* environment decision: a = value, b = n */
  CF_EV_FAULT,     /* a = class, b = fired */
  CF_EV_WORKLOAD,  /* a = value, b = n */
  CF_EV_TIME,      /* virtual time advanced to a */
  CF_EV_PHASE,     /* a = new phase */
  CF_EV_NOTE,      /* copy-level note; text kept in the ring */
  CF_EV_FAIL
} cf_event_kind_t;

void cf_trace_reset(void);
void cf_trace_event(cf_event_kind_t kind, const cf_site_t *site, uint64_t a, uint64_t b);
void cf_trace_note_text(const cf_site_t *site, const char *text);
uint64_t cf_trace_hash(void);
/* Print the last `n` events to stderr. */
void cf_trace_print_tail(int n);

/* ---- coverage.c ---------------------------------------------------------------------------- */

/* Feature for reaching `site` right after `prev`, with or without a fiber switch. */
void cf_cov_transition(uint32_t prev, uint32_t site, bool switched);
void cf_cov_read(uint32_t site, uint64_t value);

const char *cf_phase_name(int phase);

/* ---- oracle.c ------------------------------------------------------------------------------ */

/* Process-wide output settings read once from the environment (CHURN_TRACE). */
extern bool cf_trace_stream;

#endif
