/* request_context.c: RequestContext (oven-sh/bun src/runtime/server/RequestContext.zig, spec
 * §3.1): one per request that reaches user JS, taken from the server's pool
 * (RequestContext.pool, a RequestContextStackAllocator) by prepareJsRequestContext, which
 * counts it in pending_requests first. Its references: the request's own (released when the
 * response is over: rendered, or aborted because the socket closed), one while the handler's
 * promise is pending, one held by a saved request (the DevServer's). The last one deinit's it:
 * back to the pool, then server.onRequestComplete(), which may let the server go.
 *
 * While a dispatch is still inside the user's callback, deinit is deferred through
 * defer_deinit_until_callback_completes: the caller deinit's once the callback returned. */
#include <string.h>

#include "bun_server.h"

void bun_request_pool_init(cf_pool_t *pool) {
  cf_pool_init(pool, BUN_SYSTEM, "RequestContext", sizeof(RequestContext));
}

/* ctx.create: the request's state, its fields copied from the parser (the uws.Request lives on
 * uWS's stack only for the callback). */
RequestContext *bun_ctx_create(NewServer *server, HttpSocket *resp) {
  RequestContext *ctx = cf_pool_alloc(server->request_pool_allocator);
  memset(ctx, 0, sizeof *ctx);
  ctx->server = server;
  ctx->app = server->app;
  ctx->resp = resp;
  ctx->ref_count = 1;
  ctx->req = resp->parser;
  ctx->req.buf = NULL; /* the fields only, not the socket's buffer */
  ctx->req.cap = ctx->req.len = 0;
  chk_bun_ctx_taken(ctx);
  return ctx;
}

void bun_ctx_ref(RequestContext *ctx) { ctx->ref_count++; }

void bun_ctx_deref(RequestContext *ctx) {
  if (--ctx->ref_count == 0) bun_ctx_deinit(ctx);
}

void bun_ctx_deinit(RequestContext *ctx) {
  if (ctx->defer_deinit_until_callback_completes) {
    *ctx->defer_deinit_until_callback_completes = true;
    return;
  }
  NewServer *server = ctx->server;
  chk_bun_ctx_released(ctx);
  if (ctx->resp) bun_resp_clear_aborted(ctx->resp, ctx);
  cf_pool_free(server->request_pool_allocator, ctx);
  bun_onRequestComplete(server);
}

/* The response is over (written, or never to be): detach from the socket, drop the request's
 * reference. */
static HttpSocket *detach(RequestContext *ctx) {
  HttpSocket *resp = ctx->resp;
  ctx->resp = NULL;
  if (resp) bun_resp_clear_aborted(resp, ctx);
  return resp;
}

static void finish(RequestContext *ctx) {
  if (ctx->has_finalized) return;
  ctx->has_finalized = true;
  detach(ctx);
  bun_ctx_deref(ctx);
}

/* renderResponse -> renderBytes: the user's Response (the echo of the request) with tryEnd.
 * When the socket does not take it all, the context stays (and counts in pending_requests)
 * until onWritable has written the rest, or the socket closes. */
static void render(RequestContext *ctx, int status) {
  HttpSocket *resp = ctx->resp;
  if (resp && !ctx->aborted) {
    char body[HTTP_BODY_MAX];
    size_t n = status == 200 ? http_echo_body(&ctx->req, body, sizeof body) : 0;
    bun_resp_on_aborted(resp, ctx);
    if (!bun_resp_try_end(ctx->app, resp, status, body, n, !ctx->req.keep_alive, ctx)) return;
  }
  finish(ctx);
}

void bun_ctx_written(RequestContext *ctx) { finish(ctx); }

/* onResponse(server, js_request, response_value) */
void bun_ctx_onResponse(RequestContext *ctx, bool is_promise, int status) {
  if (!is_promise) {
    render(ctx, status);
    return;
  }
  /* A pending promise: its reactions keep the context until it settles. */
  ctx->awaiting_promise = true;
  bun_ctx_ref(ctx);
}

/* The handler's promise resolved with a Response. */
void bun_ctx_resolve(RequestContext *ctx, int status) {
  ctx->awaiting_promise = false;
  if (!ctx->has_finalized) render(ctx, status);
  bun_ctx_deref(ctx);
}

/* uWS's onAborted: the socket closed with the response not ended. */
void bun_ctx_onAbort(RequestContext *ctx) {
  ctx->aborted = true;
  ctx->resp = NULL;
  finish(ctx);
}

/* Answer a saved context's request 503 + close and drop the request's reference (the fix of
 * the saved-request path: #36811's "release the +1"). */
void bun_ctx_reject_503(RequestContext *ctx) {
  HttpSocket *resp = detach(ctx);
  if (resp && !ctx->aborted) bun_resp_end_without_body(ctx->app, resp, 503, true);
  finish(ctx);
}
