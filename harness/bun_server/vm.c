/* vm.c: the VirtualMachine the server lives in: the one thread that runs uWS's loop and JS
 * (spec §3.2), its task queue and timers, the JS cells of the wrapper, jsc.JSRef, the GC, and
 * the script.
 *
 * The loop does what Bun's event loop does each turn: run the timers that are due, take the
 * concurrent tasks other threads posted, drain the task queue until it is empty (tasks may
 * queue more), then poll the sockets once (uws Loop.tick) and dispatch the whole batch. So a
 * task queued while a batch is dispatched (scheduleDeinit's App.close and deinit, when GC
 * finalizes the wrapper in the middle of a batch) runs only after the rest of the batch: that
 * is the #22809 window.
 *
 * The GC is modelled by what it may do to this server: collect the wrapper once nothing keeps
 * it alive (the JSRef is weak, the script dropped its reference, and no native frame holds the
 * value), then run its finalizer, NewServer.finalize. When it runs is the schedule's choice at
 * the places a collection can happen: between two loop turns (the GC controller's timers),
 * between two callbacks of a batch (allocation in the previous one), inside
 * prepareJsRequestContext (it allocates the Request), in onRequestComplete (processGCTimer),
 * and at the script's Bun.gc(true), which always collects what it can.
 *
 * The script stands for the user's JS around the server: a thread that waits until enough
 * responses went out, then posts its next step (server.stop(), server.stop(true),
 * `server = null`, Bun.gc(true)) as a concurrent task, which the loop runs on the JS thread
 * between two polls, as a timer or a promise continuation would run. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bun_server.h"

#define DATA_WAKEUP 0
#define EVENTS_MAX 64

void bun_log_line(VirtualMachine *vm, const char *fmt, ...) {
  char line[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  vm->cfg->log(vm->cfg->log_arg, line);
}

/* ---- tasks and timers ------------------------------------------------------------------------ */

static bun_task_t *task_new(VirtualMachine *vm, void (*run)(VirtualMachine *, void *), void *arg,
                            const char *name) {
  bun_task_t *t = cf_pool_alloc(&vm->task_pool);
  *t = (bun_task_t){.run = run, .arg = arg, .name = name};
  return t;
}

static void append_task(VirtualMachine *vm, bun_task_t *t) {
  t->next = NULL;
  if (vm->tasks_tail)
    vm->tasks_tail->next = t;
  else
    vm->tasks = t;
  vm->tasks_tail = t;
}

/* vm.enqueueTask: runs in this turn's drain, after the tasks already queued. */
void bun_enqueue_task(VirtualMachine *vm, void (*run)(VirtualMachine *, void *), void *arg,
                      const char *name) {
  append_task(vm, task_new(vm, run, arg, name));
}

bun_task_t *bun_set_timer(VirtualMachine *vm, int64_t ticks, void (*run)(VirtualMachine *, void *),
                          void *arg, const char *name) {
  bun_task_t *t = task_new(vm, run, arg, name);
  t->due = cf_now() + ticks;
  t->seq = vm->timer_seq++;
  bun_task_t **p = &vm->timers;
  while (*p && ((*p)->due < t->due || ((*p)->due == t->due && (*p)->seq < t->seq))) p = &(*p)->next;
  t->next = *p;
  *p = t;
  return t;
}

void bun_cancel_timer(VirtualMachine *vm, bun_task_t *t) {
  for (bun_task_t **p = &vm->timers; *p; p = &(*p)->next) {
    if (*p == t) {
      *p = t->next;
      cf_pool_free(&vm->task_pool, t);
      return;
    }
  }
}

/* Another thread's task (jsc.ConcurrentTask): queued under the lock, the loop woken. False when
 * the loop has returned (real backend): nothing will run it. */
static bool post_concurrent(VirtualMachine *vm, bun_task_t *t) {
  cf_mutex_lock(&vm->concurrent_mu);
  if (vm->loop_exited) {
    cf_mutex_unlock(&vm->concurrent_mu);
    return false;
  }
  if (vm->concurrent_tail)
    vm->concurrent_tail->next = t;
  else
    vm->concurrent = t;
  vm->concurrent_tail = t;
  cf_mutex_unlock(&vm->concurrent_mu);
  uint64_t one = 1;
  ks_write(vm->k, vm->wakeup_fd, &one, sizeof one);
  return true;
}

/* One turn's tasks: due timers, then concurrent tasks, then the queue until it is empty. */
static void tick(VirtualMachine *vm) {
  int64_t now = cf_now();
  while (vm->timers && vm->timers->due <= now) {
    bun_task_t *t = vm->timers;
    vm->timers = t->next;
    append_task(vm, t);
  }
  cf_mutex_lock(&vm->concurrent_mu);
  bun_task_t *c = vm->concurrent;
  vm->concurrent = vm->concurrent_tail = NULL;
  cf_mutex_unlock(&vm->concurrent_mu);
  while (c) {
    bun_task_t *next = c->next;
    append_task(vm, c);
    c = next;
  }
  while (vm->tasks) {
    bun_task_t *t = vm->tasks;
    vm->tasks = t->next;
    if (!vm->tasks) vm->tasks_tail = NULL;
    cf_note(CF_SITE("vm.task"), "task %s", t->name);
    t->run(vm, t->arg);
    cf_pool_free(&vm->task_pool, t);
  }
}

/* ---- JS cells, JSRef, GC --------------------------------------------------------------------- */

JSHTTPServer *bun_wrapper_new(VirtualMachine *vm, NewServer *s, bool routes) {
  JSHTTPServer *w = cf_pool_alloc(&vm->cell_pool);
  *w = (JSHTTPServer){.m_ctx = s};
  if (routes) {
    RouteList *rl = cf_pool_alloc(&vm->cell_pool);
    *rl = (RouteList){.nroutes = 1};
    w->m_routeList = rl;
  }
  vm->wrapper = w;
  return w;
}

static void jsref_set(NewServer *s, JSRefTag tag, JSHTTPServer *value) {
  chk_bun_jsref(s, s->js_value.tag, tag);
  s->js_value = (JSRef){tag, value};
}

void bun_jsref_init_strong(NewServer *s, JSHTTPServer *v) { jsref_set(s, JSREF_STRONG, v); }

/* weak: the raw value (no liveness check); strong: the value; finalized: null. */
JSHTTPServer *bun_jsref_tryGet(const JSRef *r) {
  return r->tag == JSREF_FINALIZED ? NULL : r->value;
}

bool bun_jsref_isNotEmpty(const JSRef *r) { return r->tag != JSREF_FINALIZED && r->value; }

void bun_jsref_downgrade(NewServer *s) {
  if (s->js_value.tag == JSREF_STRONG) jsref_set(s, JSREF_WEAK, s->js_value.value);
}

void bun_jsref_finalize(NewServer *s) { jsref_set(s, JSREF_FINALIZED, NULL); }

void bun_stack_root(VirtualMachine *vm, JSHTTPServer *v) {
  if (v) vm->stack_roots++;
}
void bun_stack_unroot(VirtualMachine *vm, JSHTTPServer *v) {
  if (v) vm->stack_roots--;
}

/* Nothing keeps the wrapper alive: the native side holds it weakly, the script dropped it, no
 * native frame holds its value. */
static bool collectable(VirtualMachine *vm) {
  return vm->wrapper && !vm->user_ref && vm->stack_roots == 0 &&
         (!vm->server || vm->server->js_value.tag != JSREF_STRONG);
}

/* The wrapper dies: JSC runs its finalizer during the sweep, then the cell is reused. */
static void collect(VirtualMachine *vm) {
  chk_bun_gc(vm);
  JSHTTPServer *w = vm->wrapper;
  vm->wrapper = NULL;
  bun_event(vm, "vm.gc", "GC: the server's JS wrapper is collected");
  if (w->m_ctx) bun_finalize(w->m_ctx);
  if (w->m_routeList) cf_pool_free(&vm->cell_pool, w->m_routeList);
  cf_pool_free(&vm->cell_pool, w);
}

void bun_gc_point(VirtualMachine *vm, const cf_site_t *site) {
  if (collectable(vm) && cf_choose(site, 4) == 3) collect(vm);
}

/* A response was written: the script may be waiting for it (on the real backend other threads
 * read the count, hence the lock; a simulated run without a script needs none). */
void bun_responded(VirtualMachine *vm) {
  cf_progress();
  if (!vm->script_running && cf_in_sim()) {
    vm->responses++;
    return;
  }
  cf_mutex_lock(&vm->script_mu);
  vm->responses++;
  cf_cond_broadcast(&vm->script_cv);
  cf_mutex_unlock(&vm->script_mu);
}

/* ---- the script ------------------------------------------------------------------------------ */

static const char *const action_names[] = {"server.stop()", "server.stop(true)", "server = null",
                                           "Bun.gc(true)"};

/* A script step, on the JS thread. */
static void run_step(VirtualMachine *vm, void *arg) {
  bun_action_t a = (bun_action_t)(uintptr_t)arg;
  NewServer *s = vm->server;
  switch (a) {
  case BUN_STOP:
  case BUN_STOP_ABRUPT:
    /* Only a script that still holds the server can call it (and then it is alive). */
    if (vm->user_ref && s) {
      bun_event(vm, "script.stop", "script: %s", action_names[a]);
      bun_stopFromJS(s, a == BUN_STOP_ABRUPT);
    }
    break;
  case BUN_DROP_REF:
    bun_event(vm, "script.drop", "script: server = null");
    vm->user_ref = false;
    break;
  case BUN_GC:
    bun_event(vm, "script.gc", "script: Bun.gc(true)");
    if (collectable(vm)) collect(vm);
    break;
  }
  cf_mutex_lock(&vm->script_mu);
  vm->steps_done++;
  cf_cond_broadcast(&vm->script_cv);
  cf_mutex_unlock(&vm->script_mu);
}

/* Post a step and wait until the loop ran it (the pool takes the host lock on the real
 * backend, where this is another thread). */
void bun_script_post(VirtualMachine *vm, bun_action_t action) {
  cf_mutex_lock(&vm->script_mu);
  uint64_t mine = ++vm->steps_posted;
  cf_mutex_unlock(&vm->script_mu);
  bun_task_t *t = task_new(vm, run_step, (void *)(uintptr_t)action, action_names[action]);
  if (!post_concurrent(vm, t)) {
    cf_pool_free(&vm->task_pool, t);
    return;
  }
  cf_mutex_lock(&vm->script_mu);
  while (vm->steps_done < mine) cf_cond_wait(&vm->script_cv, &vm->script_mu);
  cf_mutex_unlock(&vm->script_mu);
}

static void script_main(void *arg) {
  VirtualMachine *vm = arg;
  const bun_script_t *sc = vm->script;
  for (int i = 0; i < sc->nsteps; i++) {
    const bun_step_t *st = &sc->step[i];
    cf_mutex_lock(&vm->script_mu);
    while (vm->responses < st->after_responses) cf_cond_wait_idle(&vm->script_cv, &vm->script_mu);
    cf_mutex_unlock(&vm->script_mu);
    for (int y = 0; y < st->yields; y++) cf_yield("script.wait");
    bun_script_post(vm, (bun_action_t)st->action);
  }
}

void bun_script_start(VirtualMachine *vm) {
  if (vm->script_running) cf_thread_spawn(&vm->script_thread, script_main, vm, "script");
}

/* ---- the loop thread ------------------------------------------------------------------------- */

static int64_t next_timeout(VirtualMachine *vm) {
  int64_t due = vm->timers ? vm->timers->due : -1;
  if (vm->server && vm->server->app) {
    int64_t t = bun_app_next_timeout(vm->server->app);
    if (t >= 0 && (due < 0 || t < due)) due = t;
  }
  if (vm->tasks) return 0; /* concurrent tasks write the wakeup eventfd */
  if (due < 0) return -1;
  int64_t now = cf_now();
  return due > now ? due - now : 0;
}

static void drain_wakeup(VirtualMachine *vm) {
  uint64_t v;
  ks_read(vm->k, vm->wakeup_fd, &v, sizeof v);
}

static void post_ready(VirtualMachine *vm) {
  cf_mutex_lock(&vm->script_mu);
  vm->ready = true;
  cf_cond_broadcast(&vm->script_cv);
  cf_mutex_unlock(&vm->script_mu);
}

/* Nothing is left for the loop: the server is gone with its sockets, no task or timer (real
 * backend only; a simulated loop rests in epoll_wait). */
static bool done(VirtualMachine *vm) {
  if (!vm->cfg->exit_when_done || !vm->server_gone || vm->timers || vm->tasks) return false;
  cf_mutex_lock(&vm->concurrent_mu);
  vm->loop_exited = !vm->concurrent;
  cf_mutex_unlock(&vm->concurrent_mu);
  return vm->loop_exited;
}

/* The lifecycle as an abstract state, a coverage feature once per loop turn (cf_cov_state): the
 * wrapper's JSRef and whether it was collected, the script's reference, listening or not, the
 * pending requests and saved ones (capped), a build in progress, the stop() promise, a deinit
 * scheduled. Edge coverage is the same for "a request is saved" before and after the wrapper
 * was finalized; this tells the two apart, so an input that reaches a new combination (the
 * windows of #22809 and of #28246's early returns) is kept and mutated further. */
static void lifecycle_state(VirtualMachine *vm) {
  NewServer *s = vm->server;
  uint32_t h = vm->user_ref | (uint32_t)(vm->wrapper != NULL) << 1;
  if (s) {
    uint32_t pending = s->pending_requests < 3 ? (uint32_t)s->pending_requests : 3;
    uint32_t saved = 0;
    if (s->dev_server) {
      for (SavedRequest *r = s->dev_server->deferred; r && saved < 2; r = r->next) saved++;
      saved |= (uint32_t)(s->dev_server->bundle_timer != NULL) << 2;
    }
    uint32_t promise = !s->all_closed_promise ? 0 : s->all_closed_promise->resolved ? 1 : 2;
    h |= 1u << 2 | (uint32_t)s->js_value.tag << 3 | (uint32_t)s->listener << 5 | pending << 6 |
         saved << 8 | promise << 11 | (uint32_t)s->flags.deinit_scheduled << 13;
  }
  cf_cov_state(h);
}

static void loop_main(void *arg) {
  VirtualMachine *vm = arg;
  /* Bun.serve: the native server, its wrapper held strongly, the routes, listen. */
  NewServer *s = bun_server_init(vm, vm->cfg);
  bun_server_listen(s, vm->listener);
  post_ready(vm);
  ks_epoll_event_t evs[EVENTS_MAX];
  for (;;) {
    tick(vm);
    /* GarbageCollectionController's timers and JSC's own GC activity callbacks run on the
     * loop between two polls (src/bun.js/event_loop/GarbageCollectionController.zig). */
    bun_gc_point(vm, CF_SITE("gc.timer"));
    chk_bun_tick(vm);
    lifecycle_state(vm);
    if (done(vm)) return;
    int n = ks_epoll_wait(vm->k, vm->epfd, evs, EVENTS_MAX, next_timeout(vm));
    for (int i = 0; i < n; i++) {
      if (evs[i].data == DATA_WAKEUP) {
        drain_wakeup(vm);
        continue;
      }
      /* The previous callback allocated: a collection may have run before this one. */
      if (i > 0) bun_gc_point(vm, CF_SITE("gc.between-callbacks"));
      /* After deinit the App is gone, and with it every socket it registered. */
      if (!vm->server || !vm->server->app || !bun_app_owns(evs[i].data)) {
        chk_bun_callback(vm, "a poll event after the App was destroyed");
        continue;
      }
      bun_app_on_poll(vm->server->app, evs[i].data, evs[i].events);
    }
    if (vm->server && vm->server->app) {
      bun_app_timeouts(vm->server->app, cf_now());
      bun_app_sweep(vm->server->app);
    }
  }
}

VirtualMachine *bun_start(ks_kernel_t *k, const bun_config_t *cfg, int listener) {
  VirtualMachine *vm = cf_sim_alloc(sizeof *vm);
  vm->k = k;
  vm->cfg = cfg;
  vm->listener = listener;
  vm->user_ref = true;
  /* Known before the loop thread starts, which reads it. */
  vm->script = cfg->script;
  vm->script_running = cfg->script && cfg->script->nsteps > 0;
  cf_pool_init(&vm->task_pool, BUN_SYSTEM, "jsc.AnyTask", sizeof(bun_task_t));
  cf_pool_init(&vm->cell_pool, BUN_SYSTEM, "JSCell",
               sizeof(JSHTTPServer) > sizeof(RouteList) ? sizeof(JSHTTPServer) : sizeof(RouteList));
  cf_mutex_init(&vm->concurrent_mu, "concurrent_mu");
  cf_mutex_init(&vm->script_mu, "script_mu");
  cf_cond_init(&vm->script_cv, "script_cv");
  chk_bun_init(vm);
  vm->epfd = ks_epoll_create1(k, EPOLL_CLOEXEC);
  vm->wakeup_fd = ks_eventfd(k, 0, EFD_NONBLOCK | EFD_CLOEXEC);
  ks_epoll_event_t ev = {EPOLLIN, DATA_WAKEUP};
  if (vm->epfd < 0 || vm->wakeup_fd < 0 ||
      ks_epoll_ctl(k, vm->epfd, EPOLL_CTL_ADD, vm->wakeup_fd, &ev) < 0)
    cf_fail("harness", BUN_SYSTEM, CF_SITE("vm.start"), "cannot create the event loop");
  cf_thread_spawn(&vm->loop_thread, loop_main, vm, "js");
  cf_mutex_lock(&vm->script_mu);
  while (!vm->ready) cf_cond_wait(&vm->script_cv, &vm->script_mu);
  cf_mutex_unlock(&vm->script_mu);
  return vm;
}

void bun_join(VirtualMachine *vm) {
  cf_thread_join(&vm->loop_thread);
  ks_close(vm->k, vm->wakeup_fd);
  ks_close(vm->k, vm->epfd);
}

uint64_t bun_responses(VirtualMachine *vm) {
  cf_mutex_lock(&vm->script_mu);
  uint64_t n = vm->responses;
  cf_mutex_unlock(&vm->script_mu);
  return n;
}

bool bun_server_gone(VirtualMachine *vm) {
  cf_mutex_lock(&vm->script_mu);
  bool gone = vm->server_gone;
  cf_mutex_unlock(&vm->script_mu);
  return gone;
}
