/* client.c: the connection-churn client workload and the HTTP liveness oracles.
 *
 * Client fibers run scripts decoded from the workload stream: each connects (more connections
 * than the server admits, so some wait in the accept queue), sends requests whole, split in
 * pieces whose sizes the schedule picks, or pipelined, with keep-alive or "Connection: close",
 * HTTP/1.0 or 1.1, good or malformed, then ends the connection one of four ways (close,
 * half-close, stall mid-request, linger idle) and reconnects for its next script. With resets
 * on, any send or recv may reset the connection (CF_FAULT_RESET).
 *
 * What the client checks (oracle "http-response" unless said otherwise):
 *  - every response is well formed, in the order of the requests, each request answered once:
 *    status 200 with the echo of exactly that request, or the error status of a bad request
 *    (400 malformed, 431 head too big, 413 body too big);
 *  - a response says "Connection: close" when the request asked to close (or was HTTP/1.0, or
 *    bad), and the server closes after a response that says so;
 *  - "http-dropped": the server closed with a complete request unanswered. Tolerated only when
 *    an earlier response on the connection said close (later pipelined requests are not
 *    served), when the connection was reset, or when the copy reported the drop with a listed
 *    reason (http_excuse_drop): HTTP_DROP_ACCEPT_FAILED, registering the accepted socket failed,
 *    so no request on it was ever read; HTTP_DROP_SERVER_STOPPED, the server closed it as it
 *    stopped (Bun's abrupt stop, or App.close once the server is collected);
 *    HTTP_DROP_HALF_CLOSED, the client half-closed and the server (uWS) closed rather than keep
 *    a half-open connection, aborting what was in flight;
 *    HTTP_DROP_PIPELINED_PENDING, a pipelined request reached the server (uWS) while the
 *    response before it was still pending, and it closed rather than pipeline asynchronously;
 *    on such a connection a response cut short by the close is tolerated as well;
 *  - once a copy says it stopped (http_clients_stopped, Bun's server.stop()): a connection may
 *    be refused, and a request may be answered "503 Service Unavailable" with close instead of
 *    its expected status;
 *  - liveness (obligations, checked at quiescence): every complete request is answered, a
 *    stalled request is timed out, a lingering idle connection is timed out, a half-closed or
 *    close-answered connection is closed by the server, a connection over the limit is served
 *    once a slot frees (its requests are owed like any other).
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define EXCUSE_MAX 64
#define RECV_BUF 16384

struct http_clients {
  ks_kernel_t *k;
  uint16_t port;
  const char *system;
  const http_workload_t *wl;
  cf_thread_t threads[HTTP_MAX_CLIENTS];
  struct client {
    http_clients_t *all;
    int index;
  } client[HTTP_MAX_CLIENTS];
  int64_t excused[EXCUSE_MAX];
  int nexcused;
  int answered;
  bool stopped;                 /* http_clients_stopped */
};

/* ---- the workload ------------------------------------------------------------------------- */

/* Layout (after the copy's own bytes):
 *   byte     bits 0-1 clients - 1, bit 2 resets on;
 *   per client, in order: byte bits 0-1 connections - 1 (made one after the other);
 *   per connection: byte bits 0-1 requests - 1, bits 2-3 how it ends (close, half-close,
 *            stall, linger);
 *   per request: byte bits 0-1 method (GET, POST, POST chunked, bad), bits 2-3 path (echo,
 *            echo, big, handoff) or, for a bad request, what is wrong (syntax, head too big,
 *            body too big, bad chunk), bit 4 HTTP/1.0, bit 5 "Connection: close", bit 6
 *            pipelined behind the previous request, bit 7 sent split. */
void http_workload_decode(http_workload_t *wl) {
  memset(wl, 0, sizeof *wl);
  uint32_t b = cf_workload_byte();
  wl->nclients = 1 + (int)(b & 3);
  wl->resets = (b >> 2) & 1;
  for (int c = 0; c < wl->nclients; c++) wl->nconn[c] = 1 + (int)(cf_workload_byte() & 3);
  for (int c = 0; c < wl->nclients; c++) {
    for (int i = 0; i < wl->nconn[c]; i++) {
      http_cconn_t *cc = &wl->conn[c][i];
      uint32_t cb = cf_workload_byte();
      cc->nreq = 1 + (int)(cb & 3);
      cc->end = (uint8_t)((cb >> 2) & 3);
      for (int r = 0; r < cc->nreq; r++) {
        uint32_t rb = cf_workload_byte();
        http_creq_t *q = &cc->req[r];
        q->method = (uint8_t)(rb & 3);
        q->path = (uint8_t)((rb >> 2) & 3);
        q->http10 = (rb >> 4) & 1;
        q->close = (rb >> 5) & 1;
        q->pipelined = (rb >> 6) & 1;
        q->split = (rb >> 7) & 1;
      }
    }
  }
}

/* ---- building requests --------------------------------------------------------------------- */

typedef struct expect {
  char line[HTTP_URL_MAX + 48]; /* the echo's first line, for a 200 */
  int status;
  bool big, must_close;
  bool partial;                 /* not sent whole: an answer is allowed, not owed */
  cf_obligation_t ob;
} expect_t;

typedef struct conn {
  http_clients_t *all;
  int fd, client, index;
  int64_t peer;                 /* the server socket's description, for excuses */
  expect_t out[HTTP_MAX_REQS];  /* requests sent, not answered yet, oldest first */
  int nout;
  bool close_seen, eof, reset, send_failed;
  char rbuf[RECV_BUF];
  size_t rlen;
} conn_t;

static const char *const path_names[] = {"echo", "echo", "big", "handoff"};

/* The request bytes and what its answer must be. */
static size_t build_request(conn_t *c, int r, const http_creq_t *q, char *out, size_t cap,
                            expect_t *e) {
  char url[HTTP_URL_MAX];
  const char *path = q->method == HTTP_CM_BAD ? "bad" : path_names[q->path];
  snprintf(url, sizeof url, "/%s/%d.%d.%d", path, c->client, c->index, r);
  const char *version = q->http10 ? "HTTP/1.0" : "HTTP/1.1";
  const char *conn_hdr = q->close ? "Connection: close\r\n" : "";
  char body[320];
  size_t body_len = 0;
  if (q->method == HTTP_CM_POST || q->method == HTTP_CM_POST_CHUNKED) {
    body_len = 1 + (size_t)(37 * (c->client * 16 + c->index * 4 + r)) % 300;
    for (size_t i = 0; i < body_len; i++) body[i] = (char)('a' + (i + (size_t)r) % 26);
  }
  memset(e, 0, sizeof *e);
  e->status = 200;
  e->must_close = q->close || q->http10;
  e->big = q->method != HTTP_CM_BAD && q->path == HTTP_PATH_BIG;
  size_t n;
  switch (q->method) {
  case HTTP_CM_GET:
    n = (size_t)snprintf(out, cap, "GET %s %s\r\nHost: churn\r\n%s\r\n", url, version, conn_hdr);
    snprintf(e->line, sizeof e->line, "%s GET 0 %08x", url, (unsigned)HTTP_BODY_SUM_INIT);
    return n;
  case HTTP_CM_POST:
    n = (size_t)snprintf(out, cap, "POST %s %s\r\nHost: churn\r\n%sContent-Length: %zu\r\n\r\n",
                         url, version, conn_hdr, body_len);
    memcpy(out + n, body, body_len);
    n += body_len;
    break;
  case HTTP_CM_POST_CHUNKED: {
    /* Chunked bodies are HTTP/1.1 only. Two chunks (one when the body has a single byte: a
     * chunk of size 0 ends the body). */
    size_t half = body_len / 2;
    n = (size_t)snprintf(out, cap, "POST %s HTTP/1.1\r\nHost: churn\r\n%sTransfer-Encoding: chunked\r\n\r\n",
                         url, conn_hdr);
    if (half > 0) n += (size_t)snprintf(out + n, cap - n, "%zx\r\n%.*s\r\n", half, (int)half, body);
    n += (size_t)snprintf(out + n, cap - n, "%zx\r\n%.*s\r\n0\r\n\r\n", body_len - half,
                          (int)(body_len - half), body + half);
    e->must_close = q->close;
    break;
  }
  default: /* HTTP_CM_BAD */
    e->must_close = true;
    switch (q->path) {
    case HTTP_BAD_SYNTAX:
      e->status = 400;
      return (size_t)snprintf(out, cap, "GET %s HTTP/1.1\r\nHost churn\r\n\r\n", url);
    case HTTP_BAD_HEAD_TOO_BIG: {
      e->status = 431;
      n = (size_t)snprintf(out, cap, "GET %s HTTP/1.1\r\nX-Pad: ", url);
      memset(out + n, 'p', 2200);
      n += 2200;
      return n + (size_t)snprintf(out + n, cap - n, "\r\n\r\n");
    }
    case HTTP_BAD_BODY_TOO_BIG:
      e->status = 413;
      return (size_t)snprintf(out, cap, "POST %s HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", url);
    default:
      e->status = 400;
      return (size_t)snprintf(out, cap,
                              "POST %s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", url);
    }
  }
  snprintf(e->line, sizeof e->line, "%s POST %zu %08x", url, body_len,
           (unsigned)http_body_sum(HTTP_BODY_SUM_INIT, body, body_len));
  return n;
}

/* ---- receiving and checking ---------------------------------------------------------------- */

static bool stopped(http_clients_t *all) {
  cf_host_lock();
  bool s = all->stopped;
  cf_host_unlock();
  return s;
}

static bool excused(const conn_t *c) {
  bool found = false;
  cf_host_lock(); /* the server's threads add excuses (http_excuse_drop) */
  for (int i = 0; i < c->all->nexcused && !found; i++) found = c->all->excused[i] == c->peer;
  cf_host_unlock();
  return found;
}

static void settle(conn_t *c, int i) {
  cf_obligation_close(c->out[i].ob);
  c->out[i].ob = -1; /* closed once: the slot may be reused by another obligation */
}

static void pop_expect(conn_t *c) {
  settle(c, 0);
  memmove(c->out, c->out + 1, sizeof c->out[0] * (size_t)(c->nout - 1));
  c->nout--;
}

/* The connection ended (EOF or reset) with requests unanswered: allowed or a drop. */
static void ended_with_requests_owed(conn_t *c) {
  const char *sys = c->all->system;
  bool owed = c->nout > 0 && !c->out[0].partial;
  if (owed && !c->close_seen && !c->reset && !excused(c))
    cf_fail("http-dropped", sys, CF_SITE("client.eof"),
            "client %d connection %d: the server closed with %d request(s) unanswered, the "
            "first %s", c->client, c->index, c->nout, c->out[0].line);
  while (c->nout > 0) pop_expect(c);
}

static bool header_says(const char *head, size_t len, const char *name, const char *value) {
  size_t nl = strlen(name), vl = strlen(value);
  for (const char *p = head; p + nl + vl <= head + len; p++) {
    if ((p == head || p[-1] == '\n') && strncasecmp(p, name, nl) == 0) {
      const char *v = p + nl;
      while (*v == ' ') v++;
      return (size_t)(head + len - v) >= vl && strncasecmp(v, value, vl) == 0;
    }
  }
  return false;
}

/* Check the complete responses at the front of rbuf; returns false when one is incomplete. */
static bool take_response(conn_t *c) {
  const char *sys = c->all->system;
  char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
  if (!end) {
    if (c->rlen == sizeof c->rbuf)
      cf_fail("http-response", sys, CF_SITE("client.response"), "response head too long");
    return false;
  }
  size_t head_len = (size_t)(end - c->rbuf) + 4;
  int status = 0;
  size_t clen = 0;
  char *cl = NULL;
  if (sscanf(c->rbuf, "HTTP/1.%*d %d ", &status) != 1)
    cf_fail("http-response", sys, CF_SITE("client.response"), "no status line: %.40s", c->rbuf);
  for (char *p = c->rbuf; p < end; p++)
    if ((p == c->rbuf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) cl = p + 15;
  if (!cl || sscanf(cl, " %zu", &clen) != 1)
    cf_fail("http-response", sys, CF_SITE("client.response"), "no Content-Length");
  if (c->rlen < head_len + clen) return false;
  bool says_close = header_says(c->rbuf, head_len, "Connection:", "close");
  const char *body = c->rbuf + head_len;
  if (c->nout == 0)
    cf_fail("http-response", sys, CF_SITE("client.unrequested"),
            "client %d connection %d: a response (status %d, %.40s) to no request", c->client,
            c->index, status, body);
  if (c->close_seen)
    cf_fail("http-response", sys, CF_SITE("client.after-close"),
            "client %d connection %d: a response after one that said close", c->client,
            c->index);
  expect_t *e = &c->out[0];
  bool stop_503 = status == 503 && says_close && stopped(c->all);
  if (status != e->status && !stop_503)
    cf_fail("http-response", sys, CF_SITE("client.status"), "%s: status %d, expected %d",
            e->line[0] ? e->line : "bad request", status, e->status);
  if (status == 200) {
    size_t ll = strlen(e->line);
    bool ok = clen > ll && memcmp(body, e->line, ll) == 0 && body[ll] == '\n' &&
              (e->big ? clen == HTTP_BIG_BODY : clen == ll + 1);
    if (!ok)
      cf_fail("http-response", sys, CF_SITE("client.echo"),
              "client %d connection %d: expected the echo \"%s\", got %zu bytes \"%.*s\"",
              c->client, c->index, e->line, clen, (int)(clen < 60 ? clen : 60), body);
  }
  if (e->must_close && !says_close)
    cf_fail("http-response", sys, CF_SITE("client.keepalive"),
            "%s: the request asked to close but the response keeps the connection alive",
            e->line[0] ? e->line : "bad request");
  c->close_seen = says_close;
  cf_host_lock(); /* bookkeeping shared by the client threads of the real backend */
  c->all->answered++;
  cf_host_unlock();
  cf_progress();
  pop_expect(c);
  memmove(c->rbuf, c->rbuf + head_len + clen, c->rlen - head_len - clen);
  c->rlen -= head_len + clen;
  return true;
}

/* Read until every request sent is answered (and, with want_eof, until the server closes). */
static void read_responses(conn_t *c, bool want_eof) {
  while (!c->eof && !c->reset && (c->nout > 0 || want_eof)) {
    ssize_t n = ks_recv(c->all->k, c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
    if (n == -ECONNRESET) {
      c->reset = true;
    } else if (n == 0) {
      c->eof = true;
    } else if (n < 0) {
      cf_fail("http-client", c->all->system, CF_SITE("client.recv"), "recv: %s",
              strerror((int)-n));
    } else {
      c->rlen += (size_t)n;
      while (c->rlen > 0 && take_response(c)) {
      }
    }
  }
  if (c->rlen > 0 && c->eof && !c->reset && !excused(c))
    cf_fail("http-response", c->all->system, CF_SITE("client.truncated"),
            "client %d connection %d: %zu bytes of an incomplete response before EOF",
            c->client, c->index, c->rlen);
  if (c->eof || c->reset) ended_with_requests_owed(c);
}

/* Send bytes, split in up to three pieces when asked; false when the connection broke. */
static bool send_bytes(conn_t *c, const char *p, size_t n, bool split) {
  size_t off = 0;
  int pieces = split ? 3 : 1;
  while (off < n) {
    size_t len = n - off;
    if (--pieces > 0 && len > 1) len = 1 + cf_choose(CF_SITE("client.split"), (uint32_t)len - 1);
    ssize_t s = ks_send(c->all->k, c->fd, p + off, len, MSG_NOSIGNAL);
    if (s == -ECONNRESET) c->reset = true;
    if (s < 0) {
      c->send_failed = true; /* EPIPE: the server closed; reading tells whether it may */
      return false;
    }
    off += (size_t)s;
  }
  return true;
}

static void run_connection(http_clients_t *all, int client, int index, const http_cconn_t *cc) {
  conn_t *c = cf_sim_alloc(sizeof *c);
  *c = (conn_t){.all = all, .client = client, .index = index};
  ks_kernel_t *k = all->k;
  c->fd = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc = c->fd < 0 ? c->fd : ks_connect(k, c->fd, all->port);
  if (rc == -ECONNREFUSED && stopped(all)) {
    /* The server stopped listening: this connection and its requests are owed nothing. */
    ks_close(k, c->fd);
    return;
  }
  if (rc < 0)
    cf_fail("http-client", all->system, CF_SITE("client.connect"), "connect: %s",
            strerror(-rc));
  c->peer = ks_sock_peer_id(k, c->fd);
  char req[2600];
  for (int r = 0; r < cc->nreq && !c->close_seen && !c->eof && !c->reset; r++) {
    const http_creq_t *q = &cc->req[r];
    bool stall = cc->end == HTTP_END_STALL && r == cc->nreq - 1;
    if (!q->pipelined || stall) read_responses(c, false);
    if (c->close_seen || c->eof || c->reset) break;
    expect_t e;
    size_t n = build_request(c, r, q, req, sizeof req, &e);
    if (stall) {
      /* Half the request, then nothing: the server's request timeout must close it. */
      cf_obligation_t ob = cf_obligation_open(all->system, "stalled request timed out",
                                              (uint64_t)(client * 100 + index));
      if (send_bytes(c, req, n / 2, q->split)) read_responses(c, true);
      if (c->rlen > 0 || c->close_seen)
        cf_fail("http-response", all->system, CF_SITE("client.stall"),
                "a response to a request that was never completed");
      cf_obligation_close(ob);
      break;
    }
    cf_note(CF_SITE("client.request"), "client %d connection %d sends %.*s%s", client, index,
            (int)(strchr(req, '\r') ? strchr(req, '\r') - req : 0), req,
            q->pipelined ? " (pipelined)" : "");
    e.ob = cf_obligation_open(all->system, "response", (uint64_t)(client * 100 + index * 10 + r));
    c->out[c->nout++] = e;
    if (!send_bytes(c, req, n, q->split)) {
      /* The server closed before the request got through whole: the ones before it are still
       * owed; it may be answered (a bad request is, as soon as the server sees it is bad) but
       * is owed nothing. */
      c->out[c->nout - 1].partial = true;
      settle(c, c->nout - 1);
      break;
    }
    if (q->method == HTTP_CM_BAD) break; /* the server closes after answering it */
  }
  if (cc->end == HTTP_END_HALF_CLOSE && !c->eof && !c->reset && !c->send_failed)
    ks_shutdown(k, c->fd, SHUT_WR);
  read_responses(c, false);
  bool server_closes = cc->end == HTTP_END_HALF_CLOSE || cc->end == HTTP_END_LINGER ||
                       c->close_seen || c->send_failed;
  if (server_closes && !c->eof && !c->reset) {
    cf_obligation_t ob = cf_obligation_open(all->system, "server closes the connection",
                                            (uint64_t)(client * 100 + index));
    read_responses(c, true);
    cf_obligation_close(ob);
  }
  ks_close(k, c->fd);
}

static void client_main(void *arg) {
  struct client *cl = arg;
  http_clients_t *all = cl->all;
  for (int i = 0; i < all->wl->nconn[cl->index]; i++)
    run_connection(all, cl->index, i, &all->wl->conn[cl->index][i]);
}

http_clients_t *http_clients_new(ks_kernel_t *k, uint16_t port, const http_workload_t *wl,
                                 const char *system) {
  http_clients_t *c = cf_sim_alloc(sizeof *c);
  c->k = k;
  c->port = port;
  c->wl = wl;
  c->system = system;
  return c;
}

void http_clients_run(http_clients_t *c) {
  const http_workload_t *wl = c->wl;
  if (wl->resets) cf_fault_enable(CF_FAULT_RESET, true);
  for (int i = 0; i < wl->nclients; i++) {
    c->client[i] = (struct client){c, i};
    cf_thread_spawn(&c->threads[i], client_main, &c->client[i], "client");
  }
}

http_clients_t *http_clients_start(ks_kernel_t *k, uint16_t port, const http_workload_t *wl,
                                   const char *system) {
  http_clients_t *c = http_clients_new(k, port, wl, system);
  http_clients_run(c);
  return c;
}

void http_clients_join(http_clients_t *c) {
  for (int i = 0; i < c->wl->nclients; i++) cf_thread_join(&c->threads[i]);
}

void http_excuse_drop(http_clients_t *c, ks_kernel_t *k, int fd, http_drop_reason_t why) {
  (void)why;
  if (!c) return;
  int64_t id = ks_fd_ofd_id(k, fd);
  cf_host_lock();
  if (c->nexcused < EXCUSE_MAX) c->excused[c->nexcused++] = id;
  cf_host_unlock();
}

int http_clients_answered(const http_clients_t *c) { return c->answered; }

void http_clients_stopped(http_clients_t *c) {
  if (!c) return;
  cf_host_lock();
  c->stopped = true;
  cf_host_unlock();
}
