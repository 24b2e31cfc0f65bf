/* server.c: NewServer's lifecycle (oven-sh/bun src/runtime/server/server.zig, spec §3.1):
 * Bun.serve (init, listen, the wrapper held strongly), stopFromJS and the stop() promise
 * (getAllClosedPromise, ServerAllConnectionsClosedTask), stop, stopListening, deinitIfWeCan,
 * scheduleDeinit (App.close and deinit as two tasks), finalize (the wrapper's GC finalizer),
 * deinit, and the request counter (onPendingRequest, onRequestComplete).
 *
 * The order of operations is upstream's, with one rule that makes the #22809 window: the native
 * server outlives its wrapper until the tasks scheduleDeinit queued have run, and uWS keeps
 * calling it for the sockets that are still open (a graceful stop closes only the listen
 * socket; keep-alive connections stay and keep sending requests). */
#include <string.h>

#include "bun_server.h"

void bun_config_default(bun_config_t *cfg) {
  *cfg = (bun_config_t){
      .idle_timeout = 10000,    /* idleTimeout: 10 s (ticks are milliseconds on the real backend) */
      .max_head = 8192,
      .max_body = 128u << 20,   /* max_request_body_size */
      .handler = BUN_HANDLER_SYNC,
      .routes = true,
  };
}

/* ---- Bun.serve ------------------------------------------------------------------------------- */

NewServer *bun_server_init(VirtualMachine *vm, const bun_config_t *config) {
  cf_pool_init(&vm->server_pool, BUN_SYSTEM, "NewServer", sizeof(NewServer));
  cf_pool_init(&vm->app_pool, BUN_SYSTEM, "App", sizeof(App));
  cf_pool_init(&vm->socket_pool, BUN_SYSTEM, "HttpSocket", sizeof(HttpSocket));
  cf_pool_init(&vm->saved_pool, BUN_SYSTEM, "SavedRequest", sizeof(SavedRequest));
  bun_request_pool_init(&vm->request_pool);
  NewServer *s = cf_pool_alloc(&vm->server_pool);
  memset(s, 0, sizeof *s);
  s->vm = vm;
  s->config = config;
  s->request_pool_allocator = &vm->request_pool;
  if (config->bake) s->dev_server = cf_sim_alloc(sizeof(DevServer));
  vm->server = s;
  /* The wrapper, held strongly while the server runs (routes cached on it: setRoutes). */
  bun_jsref_init_strong(s, bun_wrapper_new(vm, s, config->routes));
  return s;
}

static void ref(NewServer *s) { s->poll_ref = true; }
static void unref(NewServer *s) { s->poll_ref = false; }

/* listen -> onListen */
void bun_server_listen(NewServer *s, int listen_fd) {
  s->app = bun_app_create(s->vm, s, listen_fd);
  s->listener = true;
  ref(s);
}

/* ---- the wrapper, as the dispatch paths get it ----------------------------------------------- */

/* jsValueAssertAlive (server.zig, still so in the 2026 revision): bun.assert(isNotEmpty()) then
 * tryGet().? -- in a release build the null of a finalized JSRef goes on as the value. */
JSHTTPServer *bun_jsValueAssertAlive(NewServer *s) { return bun_jsref_tryGet(&s->js_value); }

/* tryGetJSValue (PR #28246): null once the wrapper is finalized. */
JSHTTPServer *bun_tryGetJSValue(NewServer *s) { return bun_jsref_tryGet(&s->js_value); }

bool bun_hasListener(const NewServer *s) { return s->listener; }

/* ---- stop() and its promise ------------------------------------------------------------------ */

static void ServerAllConnectionsClosedTask(VirtualMachine *vm, void *arg) {
  JSPromise *p = arg;
  bun_event(vm, "server.all-closed", "stop() promise resolved");
  p->resolved = true;
  cf_obligation_close(p->ob);
}

/* getAllClosedPromise: resolved at once when nothing is left, else the server's promise. */
static void getAllClosedPromise(NewServer *s) {
  if (!bun_hasListener(s) && s->pending_requests == 0) return;
  if (s->all_closed_promise) return;
  JSPromise *p = cf_sim_alloc(sizeof *p);
  p->ob = cf_obligation_open(BUN_SYSTEM, "stop() resolves", 0);
  s->all_closed_promise = p;
}

/* stopFromJS: server.stop(abrupt) from JS. */
void bun_stopFromJS(NewServer *s, bool abrupt) {
  getAllClosedPromise(s);
  if (bun_hasListener(s)) bun_stop(s, abrupt);
}

/* stopListening: a graceful stop closes the listen socket only; already accepted connections
 * stay open and keep dispatching. An abrupt one closes the App, every connection with it. */
static void stopListening(NewServer *s, bool abrupt) {
  if (!s->listener) return;
  s->listener = false;
  unref(s);
  /* Connections are refused from here on, and stopped ones may be closed or answered 503. */
  http_clients_stopped(s->config->clients);
  bun_event(s->vm, "server.stopListening", "stopListening(%s)", abrupt ? "abrupt" : "graceful");
  if (!abrupt) {
    bun_app_close_listener(s->app);
  } else if (!s->flags.terminated) {
    s->flags.terminated = true;
    bun_app_close(s->app);
  }
}

void bun_stop(NewServer *s, bool abrupt) {
  if (bun_jsref_isNotEmpty(&s->js_value)) bun_jsref_downgrade(s);
  stopListening(s, abrupt);
  bun_deinitIfWeCan(s);
}

/* ---- teardown -------------------------------------------------------------------------------- */

static void deinit(NewServer *s) {
  VirtualMachine *vm = s->vm;
  chk_bun_deinit(s);
  bun_event(vm, "server.deinit", "deinit: the native server is freed");
  s->all_closed_promise = NULL; /* all_closed_promise.deinit(): the Strong only */
  if (s->app) {
    App *app = s->app;
    s->app = NULL;
    bun_app_destroy(app);
  }
  if (s->dev_server) bun_devserver_deinit(s);
  vm->server = NULL;
  cf_pool_free(&vm->server_pool, s);
  cf_mutex_lock(&vm->script_mu); /* read by other threads on the real backend */
  vm->server_gone = true;
  cf_mutex_unlock(&vm->script_mu);
}

static void deinit_task(VirtualMachine *vm, void *arg) {
  (void)vm;
  deinit(arg);
}

static void app_close_task(VirtualMachine *vm, void *arg) {
  (void)vm;
  bun_app_close(arg);
}

/* scheduleDeinit: App.close can run finalizers, and scheduleDeinit runs inside one, so both
 * are tasks, App.close first. */
static void scheduleDeinit(NewServer *s) {
  if (s->flags.deinit_scheduled) return;
  s->flags.deinit_scheduled = true;
  chk_bun_schedule_deinit(s);
  bun_event(s->vm, "server.scheduleDeinit", "scheduleDeinit");
  if (!s->flags.terminated) {
    s->flags.terminated = true;
    bun_enqueue_task(s->vm, app_close_task, s->app, "App.close");
  }
  bun_enqueue_task(s->vm, deinit_task, s, "NewServer.deinit");
}

void bun_deinitIfWeCan(NewServer *s) {
  bool idle = s->pending_requests == 0 && !bun_hasListener(s); /* no websockets modelled */
  if (idle && !s->flags.has_handled_all_closed_promise && s->all_closed_promise) {
    /* A flag, not the promise's state: this may run again before the task does. */
    s->flags.has_handled_all_closed_promise = true;
    bun_enqueue_task(s->vm, ServerAllConnectionsClosedTask, s->all_closed_promise,
                     "ServerAllConnectionsClosedTask");
  }
  if (!idle) return;
  unref(s);
  /* Detach the DevServer (and with it every route of the App). */
  if (s->dev_server) bun_devserver_deinit(s);
  /* Only free the memory if the JS reference has been freed too. */
  if (s->js_value.tag == JSREF_FINALIZED) scheduleDeinit(s);
}

/* The wrapper's finalizer (GC). */
void bun_finalize(NewServer *s) {
  chk_bun_finalize(s);
  bun_event(s->vm, "server.finalize", "finalize: pending_requests=%llu",
            (unsigned long long)s->pending_requests);
  bun_jsref_finalize(s);
  bun_deinitIfWeCan(s);
}

/* ---- the counter ----------------------------------------------------------------------------- */

void bun_onPendingRequest(NewServer *s) {
  chk_bun_pending(s, +1);
  s->pending_requests += 1;
}

/* onRequestComplete: processGCTimer may collect here, before the counter drops. */
void bun_onRequestComplete(NewServer *s) {
  bun_gc_point(s->vm, CF_SITE("gc.processGCTimer"));
  chk_bun_pending(s, -1);
  s->pending_requests -= 1;
  bun_deinitIfWeCan(s);
}
