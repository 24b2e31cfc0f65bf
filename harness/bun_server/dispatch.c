/* dispatch.c: how a request reaches user JS (oven-sh/bun src/runtime/server/server.zig, spec
 * §3.1, §3.3, §3.4): prepareJsRequestContext, onRequest (the `fetch` handler),
 * onUserRouteRequest (a `routes` entry, with the RouteList cached on the wrapper), the
 * DevServer's framework route (prepareAndSave, then onSavedRequest with .saved once the bundle
 * is built, or .stack when it is ready), handleRequest, and the user's handlers.
 *
 * Every path needs the wrapper: it is `this` of the call, the second argument of `fetch`, and
 * where the route list lives. The fixed order (the default) takes it first, with
 * tryGetJSValue, and answers 503 + close before any request state exists when the wrapper is
 * gone; holding the value in a local keeps it alive (conservative stack scan) until the
 * dispatch returns. The toggles bring back upstream's orders:
 *  - bun-22809-assert-alive: jsValueAssertAlive after prepareJsRequestContext; a finalized
 *    wrapper goes into user JS as null (the #22809 segfault; 0x4A on the route path);
 *  - bun-28246-saved-request-leak: onSavedRequest checks after preparing (.stack) or with the
 *    saved context in hand (.saved), and returns on 503 without releasing it;
 *  - bun-28246-fetch-request-leak: the same early return after prepareJsRequestContext on the
 *    fetch and route paths (the review findings on #28231 and #28263).
 * With bun-22809-assert-alive on, the two others have no effect: that code predates the PR. */
#include <string.h>

#include "bun_server.h"

/* ---- the user's JS -------------------------------------------------------------------------- */

/* A call into user JS with this wrapper as `this` (callback.call(globalThis, js_value, ...)).
 * The handler reads its server argument: through a dead wrapper that is the fault upstream
 * saw. */
static void js_enter(NewServer *server, JSHTTPServer *this_value, const char *what) {
  chk_bun_js_call(server->vm, this_value, what);
  NewServer *impl = this_value->m_ctx;
  (void)impl;
}

static void promise_settled(VirtualMachine *vm, void *arg) {
  (void)vm;
  bun_ctx_resolve(arg, 200);
}

/* The handler answers new Response(echo), synchronously or after an await (a timer). Returns
 * whether the response value is a pending promise. */
static bool js_handler(NewServer *server, JSHTTPServer *this_value, RequestContext *ctx,
                       const char *what) {
  js_enter(server, this_value, what);
  bool awaits = server->config->handler == BUN_HANDLER_ASYNC ||
                (server->config->handler == BUN_HANDLER_EITHER &&
                 cf_choose(CF_SITE("js.handler awaits"), 2) == 1);
  if (!awaits) return false;
  int64_t delay = 1 + 4 * (int64_t)cf_choose(CF_SITE("js.await ticks"), 4);
  bun_set_timer(server->vm, delay, promise_settled, ctx, "handler promise");
  return true;
}

/* js.routeListGetCached(server_js).? */
static RouteList *routeListGetCached(NewServer *server, JSHTTPServer *server_js) {
  chk_bun_js_call(server->vm, server_js, "routeListGetCached");
  return server_js->m_routeList;
}

/* ---- request state --------------------------------------------------------------------------- */

static void respond_503(NewServer *server, HttpSocket *resp) {
  bun_event(server->vm, "server.503", "503: the server's JS wrapper is gone");
  bun_resp_end_without_body(server->app, resp, 503, true);
}

/* prepareJsRequestContext: count the request, take a context from the pool, allocate the
 * AbortSignal and the Request (a collection may run there). */
static RequestContext *prepareJsRequestContext(NewServer *server, HttpSocket *resp,
                                               bool *should_deinit_context) {
  bun_onPendingRequest(server);
  RequestContext *ctx = bun_ctx_create(server, resp);
  ctx->defer_deinit_until_callback_completes = should_deinit_context;
  bun_gc_point(server->vm, CF_SITE("gc.prepareJsRequestContext"));
  return ctx;
}

/* handleRequest: onResponse, then deinit now if the callback finished the response, or wait
 * (toAsync) with the abort handler on the socket. */
static void handleRequest(NewServer *server, bool *should_deinit_context, RequestContext *ctx,
                          bool is_promise) {
  (void)server;
  bun_ctx_onResponse(ctx, is_promise, 200);
  ctx->defer_deinit_until_callback_completes = NULL;
  if (*should_deinit_context) {
    bun_ctx_deinit(ctx);
    return;
  }
  if (ctx->resp) bun_resp_on_aborted(ctx->resp, ctx); /* toAsync */
}

/* The wrapper for a dispatch: the fixed order takes it before anything else. Returns false when
 * the request was answered 503. */
static bool take_first(NewServer *server, HttpSocket *resp, JSHTTPServer **js_value) {
  *js_value = NULL;
  if (cf_bug(CF_BUG_BUN_22809_ASSERT_ALIVE)) return true;
  if (cf_bug(CF_BUG_BUN_28246_FETCH_REQUEST_LEAK)) return true;
  *js_value = bun_tryGetJSValue(server);
  if (!*js_value) {
    respond_503(server, resp);
    return false;
  }
  bun_stack_root(server->vm, *js_value);
  return true;
}

/* ... or upstream's orders, after prepareJsRequestContext. Returns false when the request was
 * answered 503, its context left behind. */
static bool take_after_prepare(NewServer *server, HttpSocket *resp, JSHTTPServer **js_value) {
  if (cf_bug(CF_BUG_BUN_22809_ASSERT_ALIVE)) { /* server.zig onRequestFor: jsValueAssertAlive */
    *js_value = bun_jsValueAssertAlive(server);
  } else if (cf_bug(CF_BUG_BUN_28246_FETCH_REQUEST_LEAK)) { /* #28263 :2111, #28231 :2066 */
    *js_value = bun_tryGetJSValue(server);
    if (!*js_value) {
      respond_503(server, resp);
      return false;
    }
  } else {
    return true; /* taken first */
  }
  bun_stack_root(server->vm, *js_value);
  return true;
}

/* ---- onRequest, onUserRouteRequest ----------------------------------------------------------- */

/* onRequest (the fetch handler) and onUserRouteRequest (a routes entry, whose handler comes
 * from the RouteList cached on the wrapper): the same steps around a different call. */
static void dispatch_js(NewServer *server, HttpSocket *resp, bool route) {
  JSHTTPServer *js_value;
  bool should_deinit_context = false;
  if (!take_first(server, resp, &js_value)) return;
  RequestContext *ctx = prepareJsRequestContext(server, resp, &should_deinit_context);
  if (take_after_prepare(server, resp, &js_value)) {
    /* Bun__ServerRouteList__callRoute(global, index, request, server_js, list, ...) */
    if (route) (void)routeListGetCached(server, js_value);
    bool is_promise = js_handler(server, js_value, ctx, route ? "route handler" : "fetch handler");
    handleRequest(server, &should_deinit_context, ctx, is_promise);
  }
  bun_stack_unroot(server->vm, js_value);
}

static void onRequest(NewServer *server, HttpSocket *resp) { dispatch_js(server, resp, false); }

static void onUserRouteRequest(NewServer *server, HttpSocket *resp) {
  dispatch_js(server, resp, true);
}

/* ---- the DevServer: saved requests ----------------------------------------------------------- */

/* onSavedRequest(req: .stack (a uWS request now) | .saved (prepared and saved earlier), resp,
 * callback): the framework's handler for the request. */
static void onSavedRequest(NewServer *server, HttpSocket *stack, SavedRequest *saved) {
  VirtualMachine *vm = server->vm;
  bool assert_alive = cf_bug(CF_BUG_BUN_22809_ASSERT_ALIVE);
  bool pr_order = !assert_alive && cf_bug(CF_BUG_BUN_28246_SAVED_REQUEST_LEAK);
  JSHTTPServer *js_value = NULL;
  if (!assert_alive && !pr_order) {
    js_value = bun_tryGetJSValue(server);
    if (!js_value) {
      if (stack) {
        respond_503(server, stack);
      } else {
        bun_event(vm, "server.503", "503: the server's JS wrapper is gone (saved request)");
        bun_ctx_reject_503(saved->ctx);
      }
      return;
    }
    bun_stack_root(vm, js_value);
  }
  RequestContext *ctx = stack ? prepareJsRequestContext(server, stack, NULL) : saved->ctx;
  if (assert_alive) {
    js_value = bun_jsValueAssertAlive(server); /* server.zig onSavedRequest */
    bun_stack_root(vm, js_value);
  } else if (pr_order) {
    js_value = bun_tryGetJSValue(server); /* PR #28246 server.zig:2143 */
    if (!js_value) {
      HttpSocket *resp = stack ? stack : ctx->resp;
      if (resp && !ctx->aborted) respond_503(server, resp);
      return;
    }
    bun_stack_root(vm, js_value);
  }
  bool should_deinit_context = false;
  bool is_promise = js_handler(server, js_value, ctx, "framework route handler");
  bool *original_state = ctx->defer_deinit_until_callback_completes;
  ctx->defer_deinit_until_callback_completes = &should_deinit_context;
  bun_ctx_onResponse(ctx, is_promise, 200);
  ctx->defer_deinit_until_callback_completes = original_state;
  if (should_deinit_context)
    bun_ctx_deinit(ctx);
  else if (stack && ctx->resp)
    bun_resp_on_aborted(ctx->resp, ctx); /* toAsync; a saved one already is */
  bun_stack_unroot(vm, js_value);
}

/* The bundle is built: resume every deferred request in order, then drop the saved refs. */
static void bundle_done(VirtualMachine *vm, void *arg) {
  NewServer *server = arg;
  DevServer *dev = server->dev_server; /* still attached: its requests are pending */
  dev->bundle_timer = NULL;
  bun_event(vm, "bake.bundled", "DevServer: bundle built");
  while (dev->deferred) {
    SavedRequest *saved = dev->deferred;
    dev->deferred = saved->next;
    RequestContext *ctx = saved->ctx;
    onSavedRequest(server, NULL, saved);
    cf_pool_free(&vm->saved_pool, saved);
    bun_ctx_deref(ctx); /* SavedRequest.deinit */
    if (!server->dev_server) return;
  }
}

/* A framework route: dispatched now when the bundle is current, else prepared and saved
 * (prepareAndSaveJsRequestContext: +1 kept by the saved request) until it is built. */
static void devserver_request(NewServer *server, HttpSocket *resp) {
  DevServer *dev = server->dev_server;
  bool stale = dev->bundle_timer || cf_choose(CF_SITE("bake.stale"), 2) == 1;
  if (!stale) {
    onSavedRequest(server, resp, NULL);
    return;
  }
  RequestContext *ctx = prepareJsRequestContext(server, resp, NULL);
  bun_ctx_ref(ctx);
  ctx->saved = true;
  bun_resp_on_aborted(resp, ctx); /* PreparedRequest.save -> toAsync */
  SavedRequest *saved = cf_pool_alloc(&server->vm->saved_pool);
  *saved = (SavedRequest){.ctx = ctx};
  SavedRequest **p = &dev->deferred;
  while (*p) p = &(*p)->next;
  *p = saved;
  if (!dev->bundle_timer) {
    int64_t build = 2 + 8 * (int64_t)cf_choose(CF_SITE("bake.build ticks"), 4);
    dev->bundle_timer = bun_set_timer(server->vm, build, bundle_done, server, "DevServer bundle");
  }
}

void bun_devserver_deinit(NewServer *server) {
  DevServer *dev = server->dev_server;
  server->dev_server = NULL;
  if (server->app) server->app->routes_cleared = true; /* app.clearRoutes() */
  if (dev->bundle_timer) bun_cancel_timer(server->vm, dev->bundle_timer);
  dev->bundle_timer = NULL;
  /* Saved requests count in pending_requests, so none is left when the DevServer goes. */
  if (dev->deferred)
    cf_fail("harness", BUN_SYSTEM, CF_SITE("bake.deinit"),
            "DevServer detached with saved requests");
}

/* ---- the router ------------------------------------------------------------------------------ */

static bool prefixed(const char *url, const char *p) { return strncmp(url, p, strlen(p)) == 0; }

void bun_route_request(NewServer *server, HttpSocket *s) {
  chk_bun_callback(server->vm, "a request");
  const char *url = s->parser.url;
  bun_event(server->vm, "uws.request", "socket %u: %s %s", s->id, s->parser.method, url);
  if (server->config->routes && prefixed(url, "/big/"))
    onUserRouteRequest(server, s);
  else if (server->dev_server && prefixed(url, "/handoff/"))
    devserver_request(server, s);
  else
    onRequest(server, s);
}
