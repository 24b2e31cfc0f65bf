/* conn.c: HTTPConn, its pool, and what the pool threads run: processHTTPData (worker.zig:836)
 * with the request handler (httpz.zig handleRequest), res.disown() and writeAll.
 *
 * Sockets are non-blocking while the loop thread reads them; a handler's write that would block
 * switches its socket to blocking mode (writeAll), and requestDone switches it back when the
 * conn stays open, so responses have a predictable lifetime, as upstream intends.
 *
 * One departure from upstream: http.zig @8dc6441 forgets bytes read past the end of a request
 * (request.zig State.reset), so a pipelined request read together with the one before it is
 * never answered. The copy keeps them and serves them on the same pool thread, in order, before
 * the conn goes back to the keepalive list; no lock, list or state change is added. */
#include <stdio.h>
#include <string.h>

#include "httpz.h"

/* ---- HTTPConnPool (worker.zig:1383) ----------------------------------------------------------- */

static void http_conn_reset(Worker *w, HTTPConn *h) {
  size_t head = w->cfg->buffer_size < sizeof h->buf ? w->cfg->buffer_size : sizeof h->buf;
  http_req_init(&h->req_state, h->buf, sizeof h->buf, head, w->cfg->max_body_size);
}

static HTTPConn *http_conn_new(Worker *w) {
  HTTPConnPool *p = &w->http_conn_pool;
  cf_mutex_lock(&p->http_mem_pool_mut);
  HTTPConn *h = cf_zpool_create(&p->http_mem_pool);
  cf_mutex_unlock(&p->http_mem_pool_mut);
  memset(h, 0, sizeof *h);
  cf_mutex_init(&h->_mut, "HTTPConn._mut");
  http_conn_reset(w, h);
  return h;
}

void httpz_conn_pool_init(Worker *w) {
  HTTPConnPool *p = &w->http_conn_pool;
  cf_zpool_init(&p->http_mem_pool, HTTPZ_SYSTEM, "http_mem_pool", sizeof(HTTPConn));
  cf_mutex_init(&p->http_mem_pool_mut, "http_mem_pool_mut");
  p->len = w->cfg->min_conn;
  p->conns = cf_sim_alloc(sizeof(HTTPConn *) * (p->len ? p->len : 1));
  for (uint32_t i = 0; i < p->len; i++) p->conns[i] = http_conn_new(w);
  p->available = p->len;
}

/* Loop thread only: lock() and unlock() are no-ops in nonblocking mode. */
HTTPConn *httpz_conn_pool_acquire(Worker *w) {
  HTTPConnPool *p = &w->http_conn_pool;
  if (p->available == 0) return http_conn_new(w);
  return p->conns[--p->available];
}

/* A full array means the conn came from http_mem_pool: it is really destroyed. */
void httpz_conn_pool_release(Worker *w, HTTPConn *h) {
  HTTPConnPool *p = &w->http_conn_pool;
  if (p->available == p->len) {
    cf_mutex_lock(&p->http_mem_pool_mut);
    cf_zpool_destroy(&p->http_mem_pool, h);
    cf_mutex_unlock(&p->http_mem_pool_mut);
    return;
  }
  http_conn_reset(w, h);
  p->conns[p->available++] = h;
}

/* ---- sockets ---------------------------------------------------------------------------------- */

static void close_socket(Worker *w, int fd) {
  chk_httpz_closing(w, fd);
  ks_close(w->k, fd);
}

/* Conn.close (worker.zig:1540), on the loop thread: the socket leaves epoll first. Upstream
 * (86a44b6) only closes it, on the peer-closed, bad-request, timeout and accept-failure paths
 * alike; the #120 fix added the CTL_DEL to processSignal alone. While another holder (a forked
 * child) keeps the description open, close() leaves the epoll item in place, so the Conn
 * destroyed next stays registered and a later .recv names freed memory, #120 again. */
void httpz_conn_close(Worker *w, Conn *conn) {
  if (!cf_bug(CF_BUG_HTTPZ_86A44B6_CLOSE_NO_DEL)) httpz_loop_remove(w, conn);
  close_socket(w, conn->protocol.http->socket);
}

static int blockingMode(Worker *w, HTTPConn *h) {
  if (h->_io_mode_blocking) return 0;
  int rc = ks_fcntl(w->k, h->socket, F_SETFL, h->socket_flags & ~O_NONBLOCK);
  if (rc < 0) return rc;
  h->_io_mode_blocking = true;
  return 0;
}

static int nonblockingMode(Worker *w, HTTPConn *h) {
  if (!h->_io_mode_blocking) return 0;
  int rc = ks_fcntl(w->k, h->socket, F_SETFL, h->socket_flags);
  if (rc < 0) return rc;
  h->_io_mode_blocking = false;
  return 0;
}

/* HTTPConn.writeAll (:1758): write; on WouldBlock switch to blocking mode and go on. */
static int writeAll(Worker *w, HTTPConn *h, const char *data, size_t len) {
  http_out_t o = {data, len, 0};
  while (!http_out_done(&o)) {
    ssize_t n = http_out_send(w->k, h->socket, &o, 0);
    if (n == -EAGAIN) {
      int rc = blockingMode(w, h);
      if (rc < 0) return rc;
      continue;
    }
    if (n < 0) return (int)n;
  }
  return 0;
}

/* requestError: the error response of a request that could not be parsed, written on the
 * loop thread. Nothing is written to a peer that closed or reset (error_status 0). */
void httpz_requestError(Worker *w, HTTPConn *h) {
  int status = h->req_state.error_status;
  if (!status) return;
  char resp[256];
  const char *text = http_status_text(status);
  size_t n = http_response_format(resp, sizeof resp, status, false, text, strlen(text));
  writeAll(w, h, resp, n);
}

/* requestDone (:1749): forget the request; back to non-blocking if the conn stays open. */
static bool requestDone(Worker *w, HTTPConn *h, bool revert_blocking) {
  http_req_next(&h->req_state);
  return !revert_blocking || nonblockingMode(w, h) == 0;
}

/* ---- the handler ------------------------------------------------------------------------------ */

/* HTTPConn.disown (:1721), from the handler's res.disown(): the new owner may close the socket
 * at any time, so it leaves epoll now, from this pool thread (#129). */
static int HTTPConn_disown(Worker *w, HTTPConn *h) {
  h->handover = HANDOVER_DISOWN;
  return ks_epoll_ctl(w->k, w->loop.fd, EPOLL_CTL_DEL, h->socket, NULL);
}

static void handoff_push(Worker *w, int fd, const char *body, size_t len) {
  cf_mutex_lock(&w->handoff_mu);
  while (w->handoff_count == (int)(sizeof w->handoff_fd / sizeof w->handoff_fd[0]))
    cf_cond_wait(&w->handoff_cv, &w->handoff_mu);
  int i = w->handoff_count++;
  w->handoff_fd[i] = fd;
  size_t n = len < sizeof w->handoff_body[i] - 1 ? len : sizeof w->handoff_body[i] - 1;
  memcpy(w->handoff_body[i], body, n);
  w->handoff_body[i][n] = 0;
  cf_cond_broadcast(&w->handoff_cv);
  cf_mutex_unlock(&w->handoff_mu);
}

/* server.handleRequest: the echo, keep-alive unless the request or the per-connection limit
 * says otherwise; /handoff/ URLs are disowned to the streaming thread, which answers them. */
static void handleRequest(Worker *w, HTTPConn *h) {
  const http_req_t *req = &h->req_state;
  char body[HTTP_BODY_MAX];
  size_t blen = http_echo_body(req, body, sizeof body);
  h->handover = HANDOVER_UNKNOWN;
  if (strncmp(req->url, "/handoff/", 9) == 0) {
    if (HTTPConn_disown(w, h) == 0) {
      handoff_push(w, h->socket, body, blen);
      return;
    }
    h->handover = HANDOVER_CLOSE;
    return;
  }
  bool keep = req->keep_alive && h->request_count < w->cfg->max_request_per_connection;
  char resp[HTTP_BODY_MAX + 128];
  size_t n = http_response_format(resp, sizeof resp, 200, keep, body, blen);
  if (writeAll(w, h, resp, n) < 0) keep = false;
  h->handover = keep ? HANDOVER_KEEPALIVE : HANDOVER_CLOSE;
}

/* processHTTPData (:836), on a pool thread. */
void httpz_processData(Worker *w, uint32_t now, Conn *conn) {
  HTTPConn *h = conn->protocol.http;
  httpz_handover_t handover;
  for (;;) {
    h->request_count += 1;
    cf_atomic_fetch_add(&w->request_total, 1);
    handleRequest(w, h);
    handover = h->handover;
    if (!requestDone(w, h, handover == HANDOVER_KEEPALIVE)) handover = HANDOVER_CLOSE;
    if (handover != HANDOVER_KEEPALIVE) break;
    /* The departure: a pipelined request already buffered is served now. */
    http_req_status_t st = http_req_parse(&h->req_state, 0);
    if (st == HTTP_REQ_MORE) break;
    if (st == HTTP_REQ_ERROR) {
      httpz_requestError(w, h);
      handover = h->handover = HANDOVER_CLOSE;
      break;
    }
  }
  switch (handover) {
  case HANDOVER_KEEPALIVE:
    h->timeout = now + w->timeout_keepalive;
    httpz_swapList(w, conn, STATE_KEEPALIVE);
    return;
  case HANDOVER_CLOSE:
  case HANDOVER_UNKNOWN:
    /* #120: closing here, on the pool thread, raced epoll_wait; the fix closes on the loop
     * thread after CTL_DEL (processSignal). */
    if (cf_bug(CF_BUG_HTTPZ_120_DISOWN_NO_DEL))
      close_socket(w, conn->protocol.http->socket); /* 8dc6441 worker.zig:864 */
    break;
  case HANDOVER_DISOWN:
    break;
  }
  chk_httpz_handed_over(w, conn);
  httpz_swapList(w, conn, STATE_HANDOVER);
  httpz_loop_signal(w);
}

/* ---- the streaming thread --------------------------------------------------------------------- */

static void handoff_main(void *arg) {
  Worker *w = arg;
  for (;;) {
    cf_mutex_lock(&w->handoff_mu);
    while (w->handoff_count == 0 && !w->stopping) cf_cond_wait_idle(&w->handoff_cv, &w->handoff_mu);
    if (w->handoff_count == 0) {
      cf_mutex_unlock(&w->handoff_mu);
      return;
    }
    int fd = w->handoff_fd[0];
    char body[sizeof w->handoff_body[0]];
    memcpy(body, w->handoff_body[0], sizeof body);
    w->handoff_count--;
    memmove(w->handoff_fd, w->handoff_fd + 1, sizeof w->handoff_fd[0] * (size_t)w->handoff_count);
    memmove(w->handoff_body, w->handoff_body + 1, sizeof w->handoff_body[0] * (size_t)w->handoff_count);
    cf_cond_broadcast(&w->handoff_cv);
    cf_mutex_unlock(&w->handoff_mu);
    char resp[sizeof body + 128];
    size_t n = http_response_format(resp, sizeof resp, 200, false, body, strlen(body));
    int flags = ks_fcntl(w->k, fd, F_GETFL, 0);
    if (flags >= 0) ks_fcntl(w->k, fd, F_SETFL, flags & ~O_NONBLOCK);
    http_out_t o = {resp, n, 0};
    while (!http_out_done(&o) && http_out_send(w->k, fd, &o, 0) > 0) {
    }
    chk_httpz_closing(w, fd);
    ks_close(w->k, fd);
  }
}

void httpz_handoff_start(Worker *w) {
  cf_mutex_init(&w->handoff_mu, "handoff_mu");
  cf_cond_init(&w->handoff_cv, "handoff_cv");
  cf_thread_spawn(&w->handoff_thread, handoff_main, w, "handoff");
}

void httpz_handoff_stop(Worker *w) {
  cf_mutex_lock(&w->handoff_mu);
  w->stopping = true;
  cf_cond_broadcast(&w->handoff_cv);
  cf_mutex_unlock(&w->handoff_mu);
  cf_thread_join(&w->handoff_thread);
}
