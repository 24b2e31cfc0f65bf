/* app.c: uWS's App (HttpContext over uSockets) as Bun's server uses it, on the VM's loop: the
 * listen socket, accept, one HttpSocket per connection with its parser and queued output, the
 * callbacks uSockets makes (readable, writable, end, timeout, close), the router's dispatch of
 * a complete request, and the Response calls (end, endWithoutBody, onAborted).
 *
 * What follows uWS/uSockets (packages/bun-uws, packages/bun-usockets):
 *  - epoll is level-triggered; a socket is polled for EPOLLIN, and for EPOLLOUT only while
 *    output is queued; on EOF readable polling stops.
 *  - a request complete while the response before it is pending closes the connection (no
 *    asynchronous pipelining; synchronous pipelining works);
 *  - end(body, close): the response is written at once as far as the socket takes it, the rest
 *    queued for writable events; with close, the socket closes once the output is out.
 *    tryEnd (how RequestContext renders its body) leaves the response pending until the rest
 *    is out, and only then is the context done;
 *  - on FIN: HTTP has no half-open sockets; uWS closes unless output is still queued (then it
 *    closes once flushed), so a request still in flight is aborted.
 *  - every callback's socket may be closed by an earlier one of the same batch: closed sockets
 *    stay in the table, ignored, until the batch is over (uSockets' closed list).
 *  - idle timeout: reset by data and by writes; a timed-out socket is closed.
 *  - a socket closed with its response pending calls the response's onAborted handler.
 *  - no route for a request (the App's routes were cleared): the socket is closed.
 *  - App.close: the listen socket and every connection.
 * Departures: a request is dispatched once it is complete, body included (uWS dispatches at the
 * end of the head and streams the body); the shared parser answers 400, 431 and 413 (Bun checks
 * Content-Length against max_request_body_size in prepareJsRequestContext, before
 * onPendingRequest, so neither touches the counter); a malformed request behind a pending
 * response closes the connection without the error response. */
#include <stdlib.h>
#include <string.h>

#include "bun_server.h"

#define DATA_LISTEN 1
#define DATA_SOCKET0 2

bool bun_app_owns(uint64_t data) { return data >= DATA_LISTEN; }

static HttpSocket *find(App *app, uint32_t id) {
  for (int i = 0; i < app->nsockets; i++)
    if (app->sockets[i]->id == id) return app->sockets[i];
  return NULL;
}

/* us_poll_change: readable until FIN, writable while output is queued. */
static void repoll(App *app, HttpSocket *s) {
  uint32_t events = (s->got_end ? 0 : EPOLLIN) | (s->out_off < s->out_len ? EPOLLOUT : 0);
  if (events == s->polled) return;
  s->polled = events;
  ks_epoll_event_t ev = {events, DATA_SOCKET0 + (uint64_t)s->id};
  ks_epoll_ctl(app->vm->k, app->vm->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static void reset_timeout(App *app, HttpSocket *s) {
  s->timeout_at = cf_now() + app->server->config->idle_timeout;
}

/* us_socket_close: out of the poll, the descriptor closed, onAborted for a pending response.
 * why: a drop the churn clients are told of (0: none). */
static void close_socket(App *app, HttpSocket *s, http_drop_reason_t why) {
  if (s->closed) return;
  VirtualMachine *vm = app->vm;
  s->closed = true;
  bun_event(vm, "uws.close", "socket %u (fd %d) closed", s->id, s->fd);
  if (why) http_excuse_drop(app->server->config->clients, vm->k, s->fd, why);
  ks_epoll_ctl(vm->k, vm->epfd, EPOLL_CTL_DEL, s->fd, NULL);
  ks_close(vm->k, s->fd);
  RequestContext *ctx = s->aborted_ctx;
  s->aborted_ctx = NULL;
  s->writable_ctx = NULL;
  if (ctx && (s->state & HTTP_RESPONSE_PENDING)) bun_ctx_onAbort(ctx);
}

static void socket_free(App *app, HttpSocket *s) {
  free(s->out);
  cf_pool_free(&app->vm->socket_pool, s);
}

/* ---- writes ---------------------------------------------------------------------------------- */

/* Write what is queued: 1 when all of it is out, 0 when the socket would block, -1 when the
 * peer is gone (EPIPE, ECONNRESET). */
static int write_out(App *app, HttpSocket *s) {
  ks_kernel_t *k = app->vm->k;
  while (s->out_off < s->out_len) {
    ssize_t n = ks_send(k, s->fd, s->out + s->out_off, s->out_len - s->out_off,
                        MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == -EAGAIN) return 0;
    if (n < 0) return -1;
    s->out_off += (size_t)n;
    reset_timeout(app, s);
  }
  return 1;
}

static void queue(HttpSocket *s, const char *p, size_t n) {
  if (s->out_len + n > s->out_cap) {
    s->out_cap = (s->out_len + n) * 2;
    s->out = realloc(s->out, s->out_cap);
    if (!s->out) abort();
  }
  memcpy(s->out + s->out_len, p, n);
  s->out_len += n;
}

static void process(App *app, HttpSocket *s);

/* Everything queued is out: close if the response said close or FIN came, else go on with the
 * next request (unless this runs inside the dispatch of the current one). */
static void drained(App *app, HttpSocket *s) {
  s->out_off = s->out_len = 0;
  if (s->close_after_write || s->got_end) {
    close_socket(app, s, s->got_end ? HTTP_DROP_HALF_CLOSED : 0);
    return;
  }
  repoll(app, s);
  if (!s->dispatching) process(app, s);
}

static void response_done(App *app, HttpSocket *s) {
  s->state &= ~HTTP_RESPONSE_PENDING;
  s->aborted_ctx = NULL;
  bun_responded(app->vm);
}

/* A writable event: more of the queue goes out; the rest of a tryEnd response completes it. */
static void on_writable(App *app, HttpSocket *s) {
  int r = write_out(app, s);
  if (r < 0) {
    close_socket(app, s, 0);
    return;
  }
  if (r == 0) {
    repoll(app, s);
    return;
  }
  RequestContext *ctx = s->writable_ctx;
  s->writable_ctx = NULL;
  if (ctx) {
    response_done(app, s);
    bun_ctx_written(ctx);
  }
  drained(app, s);
}

static void head(App *app, HttpSocket *s, int status, const char *body, size_t len, bool close) {
  char out[HTTP_BODY_MAX + 256];
  size_t n = http_response_format(out, sizeof out, status, !close, body, len);
  queue(s, out, n);
  if (close) s->close_after_write = true;
  bun_event(app->vm, "uws.end", "socket %u: %d%s", s->id, status, close ? ", close" : "");
}

/* resp.end: the response is over for the application at once; uWS keeps what the socket did
 * not take and writes it on writable events. */
void bun_resp_end(App *app, HttpSocket *s, int status, const char *body, size_t len, bool close) {
  if (s->closed) return;
  head(app, s, status, body, len, close);
  response_done(app, s);
  int r = write_out(app, s);
  if (r < 0)
    close_socket(app, s, 0);
  else if (r == 0)
    repoll(app, s);
  else
    drained(app, s);
}

/* resp.tryEnd (RequestContext's renderBytes): true when the whole response went out. Otherwise
 * it stays pending (a request behind it closes the connection) and ctx is told through
 * bun_ctx_written once the rest is out, or aborted if the socket closes first. */
bool bun_resp_try_end(App *app, HttpSocket *s, int status, const char *body, size_t len,
                      bool close, RequestContext *ctx) {
  if (s->closed) return true;
  head(app, s, status, body, len, close);
  int r = write_out(app, s);
  if (r < 0) {
    close_socket(app, s, 0); /* onAborted: ctx is finished there */
    return false;
  }
  if (r == 0) {
    s->writable_ctx = ctx;
    repoll(app, s);
    return false;
  }
  response_done(app, s);
  drained(app, s);
  return true;
}

void bun_resp_end_without_body(App *app, HttpSocket *s, int status, bool close) {
  bun_resp_end(app, s, status, "", 0, close);
}

void bun_resp_on_aborted(HttpSocket *s, RequestContext *ctx) { s->aborted_ctx = ctx; }

void bun_resp_clear_aborted(HttpSocket *s, RequestContext *ctx) {
  if (s->aborted_ctx == ctx) s->aborted_ctx = NULL;
}

bool bun_resp_should_close(const HttpSocket *s) { return !s->parser.keep_alive; }

/* ---- reads and the router -------------------------------------------------------------------- */

/* Parse and dispatch the buffered requests in order. A request that is complete while the
 * response before it is still pending closes the connection: uWS supports pipelining only for
 * responses ended within the handler ("denying async pipelining", HttpContext.h). */
static void process(App *app, HttpSocket *s) {
  s->dispatching = true;
  while (!s->closed && !s->close_after_write) {
    http_req_status_t st = http_req_parse(&s->parser, 0);
    if (st == HTTP_REQ_MORE) break;
    if (s->state & HTTP_RESPONSE_PENDING) {
      close_socket(app, s, HTTP_DROP_PIPELINED_PENDING);
      break;
    }
    if (st == HTTP_REQ_ERROR) {
      bun_resp_end_without_body(app, s, s->parser.error_status, true);
      break;
    }
    s->state |= HTTP_RESPONSE_PENDING;
    if (app->routes_cleared) {
      /* No handler accepted the request: uWS closes the socket. */
      close_socket(app, s, HTTP_DROP_SERVER_STOPPED);
      break;
    }
    bun_route_request(app->server, s);
    http_req_next(&s->parser);
  }
  s->dispatching = false;
}

static void on_readable(App *app, HttpSocket *s) {
  ks_kernel_t *k = app->vm->k;
  size_t room;
  uint8_t *space = http_req_space(&s->parser, &room);
  if (room == 0) { /* cannot happen: the parser consumes what it reads, up to the head limit */
    close_socket(app, s, 0);
    return;
  }
  ssize_t n = ks_recv(k, s->fd, space, room, MSG_DONTWAIT);
  if (n == -EAGAIN) return;
  if (n < 0) { /* reset */
    close_socket(app, s, 0);
    return;
  }
  if (n == 0) {
    /* on_end: no more reads; HTTP has no half-open sockets. */
    s->got_end = true;
    bun_event(app->vm, "uws.end-of-input", "socket %u: FIN", s->id);
    if (s->out_off < s->out_len) {
      repoll(app, s);
      return;
    }
    close_socket(app, s, HTTP_DROP_HALF_CLOSED);
    return;
  }
  http_req_received(&s->parser, (size_t)n);
  reset_timeout(app, s);
  process(app, s);
}

/* ---- the listen socket ----------------------------------------------------------------------- */

static void on_accept(App *app) {
  VirtualMachine *vm = app->vm;
  for (;;) {
    int fd = ks_accept4(vm->k, app->listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    HttpSocket *s = cf_pool_alloc(&vm->socket_pool);
    memset(s, 0, sizeof *s);
    s->id = app->next_id++;
    s->fd = fd;
    http_req_init(&s->parser, s->buf, sizeof s->buf, app->server->config->max_head,
                  app->server->config->max_body);
    s->polled = EPOLLIN;
    reset_timeout(app, s);
    if (app->nsockets == app->cap) {
      app->cap = app->cap ? 2 * app->cap : 16;
      app->sockets = realloc(app->sockets, sizeof *app->sockets * (size_t)app->cap);
      if (!app->sockets) abort();
    }
    app->sockets[app->nsockets++] = s;
    ks_epoll_event_t ev = {EPOLLIN, DATA_SOCKET0 + (uint64_t)s->id};
    if (ks_epoll_ctl(vm->k, vm->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close_socket(app, s, HTTP_DROP_ACCEPT_FAILED);
      continue;
    }
    bun_event(vm, "uws.open", "socket %u: accepted (fd %d)", s->id, fd);
  }
}

void bun_app_on_poll(App *app, uint64_t data, uint32_t events) {
  if (data == DATA_LISTEN) {
    if (app->listen_fd >= 0) on_accept(app);
    return;
  }
  HttpSocket *s = find(app, (uint32_t)(data - DATA_SOCKET0));
  if (!s || s->closed) return;
  if (events & EPOLLOUT) on_writable(app, s);
  if (!s->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(app, s);
}

/* ---- timeouts, the closed list --------------------------------------------------------------- */

int64_t bun_app_next_timeout(App *app) {
  int64_t t = -1;
  for (int i = 0; i < app->nsockets; i++) {
    HttpSocket *s = app->sockets[i];
    if (!s->closed && s->timeout_at >= 0 && (t < 0 || s->timeout_at < t)) t = s->timeout_at;
  }
  return t;
}

void bun_app_timeouts(App *app, int64_t now) {
  for (int i = 0; i < app->nsockets; i++) {
    HttpSocket *s = app->sockets[i];
    if (!s->closed && s->timeout_at >= 0 && s->timeout_at <= now) {
      bun_event(app->vm, "uws.timeout", "socket %u: idle timeout", s->id);
      close_socket(app, s, 0);
    }
  }
}

void bun_app_sweep(App *app) {
  int kept = 0;
  for (int i = 0; i < app->nsockets; i++) {
    HttpSocket *s = app->sockets[i];
    if (s->closed)
      socket_free(app, s);
    else
      app->sockets[kept++] = s;
  }
  app->nsockets = kept;
}

int bun_app_open_sockets(const App *app) {
  int n = 0;
  for (int i = 0; i < app->nsockets; i++) n += !app->sockets[i]->closed;
  return n;
}

/* ---- App ------------------------------------------------------------------------------------- */

/* The end of a run, however it ended: what a live App still holds outside its pools. */
static void app_teardown(void *arg) {
  VirtualMachine *vm = arg;
  App *app = vm->server ? vm->server->app : NULL;
  if (!app) return;
  for (int i = 0; i < app->nsockets; i++) free(app->sockets[i]->out);
  free(app->sockets);
  app->sockets = NULL;
  app->nsockets = 0;
}

App *bun_app_create(VirtualMachine *vm, NewServer *server, int listen_fd) {
  App *app = cf_pool_alloc(&vm->app_pool);
  memset(app, 0, sizeof *app);
  app->vm = vm;
  app->server = server;
  app->listen_fd = listen_fd;
  cf_defer(app_teardown, vm); /* after the pools': runs before they are freed */
  ks_epoll_event_t ev = {EPOLLIN, DATA_LISTEN};
  if (ks_epoll_ctl(vm->k, vm->epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
    cf_fail("harness", BUN_SYSTEM, CF_SITE("uws.listen"), "cannot poll the listen socket");
  return app;
}

void bun_app_close_listener(App *app) {
  if (app->listen_fd < 0) return;
  ks_epoll_ctl(app->vm->k, app->vm->epfd, EPOLL_CTL_DEL, app->listen_fd, NULL);
  ks_close(app->vm->k, app->listen_fd);
  app->listen_fd = -1;
}

void bun_app_close(App *app) {
  bun_event(app->vm, "uws.App.close", "App.close: %d connection(s)", bun_app_open_sockets(app));
  bun_app_close_listener(app);
  for (int i = 0; i < app->nsockets; i++)
    close_socket(app, app->sockets[i], HTTP_DROP_SERVER_STOPPED);
  app->closed = true;
}

void bun_app_destroy(App *app) {
  for (int i = 0; i < app->nsockets; i++) {
    close_socket(app, app->sockets[i], HTTP_DROP_SERVER_STOPPED);
    socket_free(app, app->sockets[i]);
  }
  free(app->sockets);
  cf_pool_free(&app->vm->app_pool, app);
}
