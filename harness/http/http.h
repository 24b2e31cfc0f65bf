/* http.h: the HTTP/1.1 layer the HTTP server copies share (http.zig's worker, Bitcoin Core's
 * HTTPServer, Bun's server), and the connection-churn client that drives them.
 *
 *  parser.c   request framing for a server, on nodejs' http-parser (libhttp-parser-dev):
 *             request line, headers, Content-Length and chunked bodies, HTTP/1.0 and 1.1
 *             keep-alive defaults, pipelined requests in one read, requests split across
 *             reads at any byte; 400 for malformed input, 431 past the head limit, 413 past
 *             the body limit. Parsing is not what the copies test, so a kept library does it.
 *  response.c the response writer: status line, Content-Length, keep-alive or close, sent
 *             with partial writes; and the echo handler every copy answers with.
 *  client.c   the churn client workload (fibers on the kernel's sockets) and its oracles.
 *  world.c    a simulated run's kernel, listening socket and faults, as every target sets them.
 *
 * Everything here uses only runtime/cf.h and kernel/kernel.h, so it runs in simulation and on
 * the real kernel alike. */
#ifndef CF_HTTP_H
#define CF_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"
#include "kernel.h"

/* ---- requests (parser.c) ----------------------------------------------------------------- */

typedef enum http_req_status {
  HTTP_REQ_MORE = 0,   /* the request is not complete yet: read more */
  HTTP_REQ_DONE = 1,   /* a whole request is parsed; bytes past it stay buffered */
  HTTP_REQ_ERROR = 2,  /* answer r->error_status (400, 413, 431) and close */
} http_req_status_t;

#define HTTP_URL_MAX 96

typedef struct http_req {
  http_parser parser;
  /* Bytes read from the socket and not yet given to the parser, at buf[0, len). A request's
   * bytes are consumed as they are parsed; parsing stops at the end of a request, so what
   * follows it (a pipelined request) waits here for http_req_next(). */
  uint8_t *buf;
  size_t cap, len;
  size_t max_head, max_body;
  size_t head_bytes, body_bytes;
  bool in_body, complete;
  int error_status;
  /* The request, once complete. */
  char method[12];
  char url[HTTP_URL_MAX];
  size_t url_len;
  bool keep_alive;     /* http_should_keep_alive: version default, then Connection */
  bool http10;
  uint32_t body_sum;   /* a checksum of the body, so an echo proves it was read whole */
} http_req_t;

/* The body checksum (FNV-1a), shared by the server's echo and the client's expectation. */
#define HTTP_BODY_SUM_INIT 2166136261u
static inline uint32_t http_body_sum(uint32_t h, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
  return h;
}

/* buf (cap bytes) is the connection's read buffer; max_head and max_body are the limits. */
void http_req_init(http_req_t *r, uint8_t *buf, size_t cap, size_t max_head, size_t max_body);
/* Where the next read goes: buf + len, room = cap - len (0 means the buffer is full). */
uint8_t *http_req_space(http_req_t *r, size_t *room);
/* A read appended n bytes at http_req_space(); they are parsed by the next http_req_parse. */
void http_req_received(http_req_t *r, size_t n);
/* Parse what is buffered, after a read appended n bytes (n may be 0 to parse leftovers). */
http_req_status_t http_req_parse(http_req_t *r, size_t n);
/* Bytes of an unfinished request were received: a peer that closes now cut a request short. */
bool http_req_pending(const http_req_t *r);
/* After a complete request was served: forget it, keep the bytes that followed it. */
void http_req_next(http_req_t *r);

/* ---- responses (response.c) -------------------------------------------------------------- */

const char *http_status_text(int status);
/* Format a response head and body into out (at most cap bytes, truncating the body). */
size_t http_response_format(char *out, size_t cap, int status, bool keep_alive, const char *body,
                            size_t body_len);

/* The echo handler's answer, which the churn client checks: a line naming the request (its
 * URL, method and body checksum), padded to a few kilobytes for /big/ URLs so that writes
 * are partial. Returns the body length written to out. */
#define HTTP_BIG_BODY 6000
#define HTTP_BODY_MAX (HTTP_BIG_BODY + 256)
size_t http_echo_body(const http_req_t *r, char *out, size_t cap);

/* A response being written: partial writes advance off. */
typedef struct http_out {
  const char *data;
  size_t len, off;
} http_out_t;
/* One send of what is left (flags as ks_send: MSG_DONTWAIT for a non-blocking attempt).
 * Returns the bytes sent (> 0), or -errno (-EAGAIN when nothing could be sent). */
ssize_t http_out_send(ks_kernel_t *k, int fd, http_out_t *o, int flags);
static inline bool http_out_done(const http_out_t *o) { return o->off >= o->len; }

/* ---- the churn client (client.c) ---------------------------------------------------------- */

#define HTTP_MAX_CLIENTS 4
#define HTTP_MAX_CONNS 4   /* per client, one after the other (reconnects) */
#define HTTP_MAX_REQS 4    /* per connection */

typedef enum http_cmethod { HTTP_CM_GET, HTTP_CM_POST, HTTP_CM_POST_CHUNKED, HTTP_CM_BAD } http_cmethod_t;
/* What a bad request is (HTTP_CM_BAD, kind from the path bits). */
typedef enum http_cbad { HTTP_BAD_SYNTAX, HTTP_BAD_HEAD_TOO_BIG, HTTP_BAD_BODY_TOO_BIG, HTTP_BAD_CHUNK } http_cbad_t;
typedef enum http_cpath { HTTP_PATH_ECHO, HTTP_PATH_ECHO2, HTTP_PATH_BIG, HTTP_PATH_HANDOFF } http_cpath_t;
/* How a connection ends once its requests are answered (or given up). */
typedef enum http_cend {
  HTTP_END_CLOSE,      /* close it */
  HTTP_END_HALF_CLOSE, /* shutdown(SHUT_WR) after the last request, read responses to EOF */
  HTTP_END_STALL,      /* send half of the last request and wait: the request timeout */
  HTTP_END_LINGER,     /* keep it open and idle: the keep-alive timeout */
} http_cend_t;

typedef struct http_creq {
  uint8_t method, path;   /* http_cmethod_t; http_cpath_t, or http_cbad_t when BAD */
  bool http10, close;     /* HTTP/1.0; "Connection: close" */
  bool pipelined;         /* sent right after the previous one, before its response */
  bool split;             /* sent in pieces whose sizes the schedule picks */
} http_creq_t;

typedef struct http_cconn {
  int nreq;
  uint8_t end;            /* http_cend_t */
  http_creq_t req[HTTP_MAX_REQS];
} http_cconn_t;

typedef struct http_workload {
  int nclients;
  bool resets;            /* CF_FAULT_RESET on: any send/recv may reset the connection */
  int nconn[HTTP_MAX_CLIENTS];
  http_cconn_t conn[HTTP_MAX_CLIENTS][HTTP_MAX_CONNS];
} http_workload_t;

/* Decode the client part of the workload stream (layout in http_workload_decode's comment,
 * client.c; each target's fuzzer file shows it in place). */
void http_workload_decode(http_workload_t *wl);

/* Why a server may drop a connection without answering a complete request. The copies report
 * each such drop (http_excuse_drop) and the client accepts an unanswered request only on a
 * connection dropped for one of these reasons; each is listed with the race it excuses in
 * client.c. */
typedef enum http_drop_reason {
  HTTP_DROP_ACCEPT_FAILED = 1, /* registering the accepted socket failed (epoll_ctl ENOMEM) */
  HTTP_DROP_SERVER_STOPPED,    /* the server closed it as it stopped (after http_clients_stopped) */
  HTTP_DROP_HALF_CLOSED,       /* the peer half-closed and the server does not keep half-open
                                  connections (uWS): requests in flight are aborted */
  HTTP_DROP_PIPELINED_PENDING, /* a request arrived while the response before it was pending and
                                  the server refuses asynchronous pipelining (uWS) */
} http_drop_reason_t;

/* A simulated run's kernel (freed when the run ends, cfg NULL for the defaults) and a listening,
 * non-blocking socket on port, in *listener; system names the server if it cannot listen
 * (world.c). */
ks_kernel_t *http_world_kernel(const ks_config_t *cfg, uint16_t port, const char *system,
                               int *listener);
/* The faults every HTTP target may turn on (EAGAIN, short writes), and ENOMEM from epoll_ctl. */
void http_world_faults(bool on, bool epoll_nomem);

typedef struct http_clients http_clients_t;

/* The clients of one run: nclients fibers connecting to port on kernel k. system names the
 * server in oracle lines. new() only prepares them (so a server can be given the pointer
 * before it starts), run() starts their threads; start() is both. */
http_clients_t *http_clients_new(ks_kernel_t *k, uint16_t port, const http_workload_t *wl,
                                 const char *system);
void http_clients_run(http_clients_t *c);
http_clients_t *http_clients_start(ks_kernel_t *k, uint16_t port, const http_workload_t *wl,
                                   const char *system);
/* Wait for every client fiber to finish its script. */
void http_clients_join(http_clients_t *c);
/* The server dropped the connection behind its socket fd for a listed reason (NULL c: no-op,
 * as on the real backend when no client of ours is watching). */
void http_excuse_drop(http_clients_t *c, ks_kernel_t *k, int fd, http_drop_reason_t why);
/* Requests answered, for summaries. */
int http_clients_answered(const http_clients_t *c);
/* The server stopped listening (Bun's server.stop()): from now on a refused connection is
 * owed nothing, and "503 Service Unavailable" with close answers any request (NULL c: no-op). */
void http_clients_stopped(http_clients_t *c);

#endif
