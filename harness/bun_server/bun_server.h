/* bun_server.h: Bun's native HTTP server behind Bun.serve (oven-sh/bun src/runtime/server/
 * server.zig, `NewServer`, as of its 2026 revision; earlier at src/bun.js/api/server.zig), with
 * the lifecycle the spec describes (shared/specs/http-servers.md §3): the native server and
 * its JS wrapper tied by a `JSRef` (strong -> weak at stop() -> finalized by GC),
 * `pending_requests` counting the RequestContexts taken from the pool, `stop(abrupt)`,
 * `deinitIfWeCan`, `scheduleDeinit`, `finalize`, and the `stop()` promise
 * (`all_closed_promise`). The fixed behaviour is the default: every dispatch into user JS checks
 * the wrapper before it creates request state and answers 503 + close when it is gone (the
 * repair the reviews of PRs #28231/#28246/#28263 asked for, as the Rust port did in #34346 and
 * #36811). Each upstream bug comes back behind its toggle (harness/runtime/bugs.def, bun-*).
 *
 * One thread runs both uWS's event loop and JS, as in Bun: its order of events, which the
 * schedule picks, is where the races are. The JS side is modelled, not run: the wrapper is a
 * cell that the model's GC frees, the user's handlers answer with the echo every copy answers
 * with (synchronously or after a timer), and a script thread posts the script's steps
 * (stop, dropping its reference, Bun.gc) to the loop as tasks.
 *
 *  vm.c              the VirtualMachine: the event loop thread (tasks, timers, poll), JS cells,
 *                    JSRef, the GC and its points, the script
 *  app.c             uWS's App on the loop: listen socket, accept, per-socket read/parse,
 *                    writes, end/close/timeout callbacks, App.close, and the Response calls
 *  server.c          NewServer: serve, stopFromJS, stop, stopListening, deinitIfWeCan,
 *                    scheduleDeinit, finalize, deinit, getAllClosedPromise, the counters
 *  dispatch.c        prepareJsRequestContext, onRequest, onUserRouteRequest, onSavedRequest,
 *                    handleRequest, the DevServer's saved requests, the user's handlers
 *  request_context.c RequestContext: the pool, create, onResponse, render, abort, deinit
 *  checker.c         the oracles (spec §3.5 N1-N5, leaks), kept apart from the copy
 *  bun_world.c       one simulated run: the server, the script, the churn clients
 *
 * The copy runs unchanged on the real kernel and pthreads (harness/real/bun_serve.c, `churn
 * serve bun`). */
#ifndef CF_BUN_SERVER_H
#define CF_BUN_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "cf.h"
#include "http.h"
#include "kernel.h"
#include "pool.h"

#define BUN_SYSTEM "bun-server"

/* ---- the public face: configuration, start, the script ------------------------------------- */

/* What the script does (server.stop(), server.stop(true), `server = null`, Bun.gc(true)). */
typedef enum bun_action { BUN_STOP, BUN_STOP_ABRUPT, BUN_DROP_REF, BUN_GC } bun_action_t;
#define BUN_MAX_STEPS 4
typedef struct bun_step {
  uint8_t action;               /* bun_action_t */
  uint32_t after_responses;     /* waits until this many responses were written */
  uint8_t yields;               /* then this many yields before posting the step */
} bun_step_t;
typedef struct bun_script {
  int nsteps;
  bun_step_t step[BUN_MAX_STEPS];
} bun_script_t;

/* How the user's handlers answer (the schedule decides per request in BUN_HANDLER_EITHER). */
typedef enum bun_handler_mode {
  BUN_HANDLER_SYNC,
  BUN_HANDLER_ASYNC,
  BUN_HANDLER_EITHER,
} bun_handler_mode_t;

typedef struct bun_config {
  int64_t idle_timeout;         /* ticks (config.idleTimeout, 10 s upstream) */
  uint32_t max_head, max_body;  /* 431 / 413 past them (maxHeaderSize, max_request_body_size) */
  bun_handler_mode_t handler;
  bool routes;                  /* a `routes` entry for /big/ paths: onUserRouteRequest */
  bool bake;                    /* a DevServer framework route: /handoff/ goes through
                                   onSavedRequest, saved while its bundle builds */
  /* The script, started by bun_script_start (NULL or no steps: none). */
  const bun_script_t *script;
  /* Real backend: the loop thread returns once the server is gone and nothing is left. */
  bool exit_when_done;
  void (*log)(void *arg, const char *line);
  void *log_arg;
  /* The churn clients of a simulated run (told of the stop and of dropped connections);
   * NULL otherwise. */
  http_clients_t *clients;
} bun_config_t;

void bun_config_default(bun_config_t *cfg);

typedef struct VirtualMachine VirtualMachine;

/* Start the loop thread ("js"), which serves on `listener` (bound, listening, non-blocking):
 * Bun.serve. Returns once it listens. cfg must outlive the VM. */
VirtualMachine *bun_start(ks_kernel_t *k, const bun_config_t *cfg, int listener);
/* Start the script thread (cfg.script), which posts its steps to the loop one after the other. */
void bun_script_start(VirtualMachine *vm);
/* Post one step now (the real server's signal handler), and wait until it ran. */
void bun_script_post(VirtualMachine *vm, bun_action_t action);
/* Real backend: wait for the loop thread (cfg.exit_when_done: it returns once the server is
 * freed and nothing is left), then close the loop's descriptors. */
void bun_join(VirtualMachine *vm);
/* Responses written so far (every status) and whether the native server was freed. */
uint64_t bun_responses(VirtualMachine *vm);
bool bun_server_gone(VirtualMachine *vm);

/* ---- the copy's state ---------------------------------------------------------------------- */

typedef struct NewServer NewServer;
typedef struct App App;
typedef struct HttpSocket HttpSocket;
typedef struct RequestContext RequestContext;
typedef struct JSHTTPServer JSHTTPServer;

/* A JS cell of the wrapper (JSHTTPServer) and what hangs off it: the native server it wraps
 * and the RouteList cached in its m_routeList slot. Freed, and poisoned, when the GC collects
 * it; its finalizer is NewServer.finalize. */
typedef struct RouteList {
  int nroutes;
} RouteList;
struct JSHTTPServer {
  NewServer *m_ctx;
  RouteList *m_routeList;
};

/* jsc.JSRef (src/bun.js/bindings/JSRef.zig): weak holds the value without keeping it alive
 * (an empty weak ref holds NULL), strong keeps it alive, finalized after GC collected it. */
typedef enum JSRefTag { JSREF_WEAK, JSREF_STRONG, JSREF_FINALIZED } JSRefTag;
typedef struct JSRef {
  JSRefTag tag;
  JSHTTPServer *value;
} JSRef;

/* A task on the VM's queue (jsc.AnyTask), or a timer. */
typedef struct bun_task {
  struct bun_task *next;
  void (*run)(VirtualMachine *vm, void *arg);
  void *arg;
  int64_t due;                  /* timers only */
  uint64_t seq;                 /* timers: ties broken by insertion order */
  const char *name;
} bun_task_t;

struct VirtualMachine {
  ks_kernel_t *k;
  const bun_config_t *cfg;
  int listener;
  int epfd;                     /* uws Loop's epoll */
  int wakeup_fd;                /* eventfd: concurrent tasks arrived */
  bun_task_t *tasks, *tasks_tail;
  bun_task_t *timers;           /* sorted by (due, seq) */
  uint64_t timer_seq;
  cf_mutex_t concurrent_mu;     /* the concurrent task queue (other threads post here) */
  bun_task_t *concurrent, *concurrent_tail;
  bool loop_exited;             /* real backend: the loop returned, nothing runs tasks */
  cf_pool_t task_pool;          /* tasks and timers */
  cf_pool_t server_pool, app_pool, request_pool; /* NewServer, App, RequestContext.pool */
  cf_pool_t socket_pool;        /* uWS's sockets */
  cf_pool_t saved_pool;         /* the DevServer's SavedRequests */
  cf_pool_t cell_pool;          /* JS cells: JSHTTPServer, RouteList */
  /* The JS side of the GC: the script's `server` variable, and wrapper values held by native
   * frames (JSC scans the native stack conservatively: such a value is not collected). */
  bool user_ref;
  int stack_roots;
  JSHTTPServer *wrapper;        /* the live wrapper cell, NULL once collected */
  NewServer *server;            /* until deinit */
  bool server_gone;
  uint64_t responses;           /* every response ended, for the script and summaries */
  cf_thread_t loop_thread, script_thread;
  bool script_running;
  const bun_script_t *script;
  /* The script waits for responses and for its posted step to run. */
  cf_mutex_t script_mu;
  cf_cond_t script_cv;
  uint64_t steps_posted, steps_done;
  bool ready;
};

/* A JS promise (the one stop() returns): it lives in the JS heap, apart from the server, and
 * its resolution is an obligation (N3: stop() resolves once drained). */
typedef struct JSPromise {
  bool resolved;
  cf_obligation_t ob;
} JSPromise;

/* The server (NewServer(.http, .production) in server.zig). */
struct NewServer {
  VirtualMachine *vm;
  App *app;
  bool listener;                /* listener != null: the listen socket is open */
  JSRef js_value;
  const bun_config_t *config;
  uint64_t pending_requests;    /* usize upstream */
  cf_pool_t *request_pool_allocator;
  JSPromise *all_closed_promise; /* the JSPromise.Strong stop() returned, NULL: none */
  struct {
    bool deinit_scheduled, terminated, has_handled_all_closed_promise;
  } flags;
  bool poll_ref;                /* keeps the process alive while listening */
  struct DevServer *dev_server; /* bake: NULL unless configured, and once detached */
};

/* The DevServer's deferred requests: prepared, saved, and resumed through onSavedRequest once
 * the bundle is built. */
typedef struct SavedRequest {
  struct SavedRequest *next;
  RequestContext *ctx;          /* the +1 the earlier prepare took */
} SavedRequest;
typedef struct DevServer {
  SavedRequest *deferred;
  bun_task_t *bundle_timer;     /* the build in progress, NULL when none */
} DevServer;

/* ---- uWS (app.c) ----------------------------------------------------------------------------- */

#define BUN_RECV_BUF 16384

/* HttpResponseData.state bits */
#define HTTP_RESPONSE_PENDING 1u

/* A connection (us_socket_t with its HttpResponseData): uWS's per-socket state. */
struct HttpSocket {
  uint32_t id;                  /* epoll data; serial within the App */
  int fd;
  bool closed;                  /* us_socket_is_closed: freed at the end of the poll batch */
  bool got_end;                 /* FIN received: no more reads */
  uint32_t state;
  bool close_after_write;       /* end(..., close_connection) or an error: close once flushed */
  bool dispatching;             /* inside the router's call for this socket */
  uint32_t polled;              /* the events it is polled for */
  int64_t timeout_at;           /* idle deadline in ticks, -1: none */
  RequestContext *aborted_ctx;  /* onAborted handler: the response's RequestContext */
  RequestContext *writable_ctx; /* onWritable handler: a tryEnd whose rest is queued */
  char *out;                    /* queued outgoing bytes */
  size_t out_len, out_off, out_cap;
  http_req_t parser;
  uint8_t buf[BUN_RECV_BUF];
};

struct App {
  VirtualMachine *vm;
  NewServer *server;
  int listen_fd;                /* -1 once closed */
  HttpSocket **sockets;         /* open and closed-this-batch sockets */
  int nsockets, cap;
  uint32_t next_id;
  bool routes_cleared;          /* clearRoutes(): no handler for any request */
  bool closed;                  /* App.close ran */
};

App *bun_app_create(VirtualMachine *vm, NewServer *server, int listen_fd);
/* The loop saw an event for the App: data from bun_app_event_data. */
void bun_app_on_poll(App *app, uint64_t data, uint32_t events);
bool bun_app_owns(uint64_t data);
/* Earliest idle deadline (-1 none); close sockets whose deadline passed (on_timeout). */
int64_t bun_app_next_timeout(App *app);
void bun_app_timeouts(App *app, int64_t now);
/* Free sockets closed during the batch (uSockets' closed list). */
void bun_app_sweep(App *app);
/* us_listen_socket_close: the listen socket only. */
void bun_app_close_listener(App *app);
/* App.close: the listen socket and every connection (their responses abort). */
void bun_app_close(App *app);
/* App.destroy */
void bun_app_destroy(App *app);
int bun_app_open_sockets(const App *app);

/* uws.Response (HttpResponse): what the server and RequestContext call. */
/* resp.end(body, close_connection) with a status line (writeStatus). */
void bun_resp_end(App *app, HttpSocket *s, int status, const char *body, size_t len, bool close);
/* resp.tryEnd(body, total, close_connection): true when it all went out; else ctx hears of it
 * through bun_ctx_written (or onAborted). */
bool bun_resp_try_end(App *app, HttpSocket *s, int status, const char *body, size_t len,
                      bool close, RequestContext *ctx);
/* resp.writeStatus(...); resp.endWithoutBody(close_connection) */
void bun_resp_end_without_body(App *app, HttpSocket *s, int status, bool close);
/* resp.onAborted(ctx); clearAborted (when ctx is the one registered) */
void bun_resp_on_aborted(HttpSocket *s, RequestContext *ctx);
void bun_resp_clear_aborted(HttpSocket *s, RequestContext *ctx);
bool bun_resp_should_close(const HttpSocket *s); /* the request asked to close */

/* ---- the server (server.c) ------------------------------------------------------------------ */

NewServer *bun_server_init(VirtualMachine *vm, const bun_config_t *config);
void bun_server_listen(NewServer *s, int listen_fd);
JSHTTPServer *bun_jsValueAssertAlive(NewServer *s);
JSHTTPServer *bun_tryGetJSValue(NewServer *s);
bool bun_hasListener(const NewServer *s);
void bun_stopFromJS(NewServer *s, bool abrupt);
void bun_stop(NewServer *s, bool abrupt);
void bun_deinitIfWeCan(NewServer *s);
void bun_finalize(NewServer *s);
void bun_onPendingRequest(NewServer *s);
void bun_onRequestComplete(NewServer *s);
void bun_log_line(VirtualMachine *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define bun_event(vm, label, ...)                         \
  do {                                                    \
    cf_note(CF_SITE(label), __VA_ARGS__);                 \
    if ((vm)->cfg->log) bun_log_line((vm), __VA_ARGS__); \
  } while (0)

/* ---- dispatch (dispatch.c) ------------------------------------------------------------------ */

/* uWS's router: a complete request on socket s (the parser holds it) goes to onRequest,
 * onUserRouteRequest or the DevServer's framework route by its URL. */
void bun_route_request(NewServer *server, HttpSocket *s);
void bun_devserver_deinit(NewServer *server);

/* ---- RequestContext (request_context.c) ----------------------------------------------------- */

struct RequestContext {
  NewServer *server;
  App *app;
  HttpSocket *resp;             /* NULL once detached (aborted, ended) */
  uint32_t ref_count;
  bool aborted, has_finalized;
  bool *defer_deinit_until_callback_completes;
  bool awaiting_promise;        /* the handler's promise is pending */
  bool saved;                   /* held by the DevServer */
  /* What the echo needs, copied at create (toAsync: the uws.Request is stack allocated). */
  http_req_t req;
};

void bun_request_pool_init(cf_pool_t *pool);
RequestContext *bun_ctx_create(NewServer *server, HttpSocket *resp);
/* ctx.onResponse(server, js_request, response_value): a Response (rendered now) or a pending
 * promise (the handler resolves it later through bun_ctx_resolve). */
void bun_ctx_onResponse(RequestContext *ctx, bool is_promise, int status);
void bun_ctx_resolve(RequestContext *ctx, int status);
void bun_ctx_onAbort(RequestContext *ctx);
/* The rest of a tryEnd response went out (onWritable). */
void bun_ctx_written(RequestContext *ctx);
void bun_ctx_reject_503(RequestContext *ctx);
void bun_ctx_ref(RequestContext *ctx);
void bun_ctx_deref(RequestContext *ctx);
/* ctx.deinit: back to the pool, server.onRequestComplete (or deferred while a callback runs). */
void bun_ctx_deinit(RequestContext *ctx);

/* ---- the VM (vm.c) -------------------------------------------------------------------------- */

void bun_enqueue_task(VirtualMachine *vm, void (*run)(VirtualMachine *, void *), void *arg,
                      const char *name);
bun_task_t *bun_set_timer(VirtualMachine *vm, int64_t ticks, void (*run)(VirtualMachine *, void *),
                          void *arg, const char *name);
void bun_cancel_timer(VirtualMachine *vm, bun_task_t *t);
/* A GC may run here (an allocation, processGCTimer): the schedule decides, when the wrapper
 * can be collected at all. */
void bun_gc_point(VirtualMachine *vm, const cf_site_t *site);
/* A native frame holds the wrapper value (conservative stack scan) between these. */
void bun_stack_root(VirtualMachine *vm, JSHTTPServer *v);
void bun_stack_unroot(VirtualMachine *vm, JSHTTPServer *v);
JSHTTPServer *bun_wrapper_new(VirtualMachine *vm, NewServer *s, bool routes);
void bun_responded(VirtualMachine *vm);
/* jsc.JSRef */
void bun_jsref_init_strong(NewServer *s, JSHTTPServer *v);
JSHTTPServer *bun_jsref_tryGet(const JSRef *r);
bool bun_jsref_isNotEmpty(const JSRef *r);
void bun_jsref_downgrade(NewServer *s);
void bun_jsref_finalize(NewServer *s);

/* ---- bun_world.c ---------------------------------------------------------------------------- */

void bun_world_main(void *arg);

/* ---- checker.c: the oracles (spec §3.5), called at the copy's commit points ----------------- */

void chk_bun_init(VirtualMachine *vm);
/* N1: a call into user JS (a handler, the route list) with this wrapper value. */
void chk_bun_js_call(VirtualMachine *vm, const JSHTTPServer *this_value, const char *what);
/* N2: the counter and the contexts. */
void chk_bun_pending(NewServer *s, int delta);
void chk_bun_ctx_taken(RequestContext *ctx);
void chk_bun_ctx_released(RequestContext *ctx);
/* N4 */
void chk_bun_schedule_deinit(NewServer *s);
void chk_bun_deinit(NewServer *s);
void chk_bun_callback(VirtualMachine *vm, const char *what); /* a uWS callback reaches the server */
void chk_bun_finalize(NewServer *s);
/* N5 */
void chk_bun_jsref(NewServer *s, JSRefTag from, JSRefTag to);
void chk_bun_gc(VirtualMachine *vm);
/* N3 and N2 between loop ticks; the stop() promise. */
void chk_bun_tick(VirtualMachine *vm);
void chk_bun_quiescent(VirtualMachine *vm);

#endif
