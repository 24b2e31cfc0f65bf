/* btc_http.h: Bitcoin Core's own HTTP server (bitcoin/bitcoin src/httpserver.cpp/.h,
 * http_bitcoin::HTTPServer and HTTPRemoteClient, from PR #35182 "Replace libevent with our own
 * HTTP and socket-handling implementation"), as of the #35614 fix (73da2a8a, merged in
 * 239d6c52) with the #35182 review fix (r3358889539). Each upstream bug comes back behind its
 * toggle at the line where upstream had it (harness/runtime/bugs.def, btc-*). Names follow
 * upstream: HTTPServer, HTTPRemoteClient, HTTPRequest, GenerateWaitSockets, WaitMany,
 * SocketHandlerConnected, MaybeSendBytesFromBuffer, MaybeDispatchRequestsFromClient,
 * DisconnectClients, WriteReply, the WorkQueue of worker threads.
 *
 *  httpserver.c    the I/O thread (ThreadSocketHandler and what it calls), accept, the
 *                  shutdown sequence, the public start/stop API
 *  remote_client.c HTTPRemoteClient: its references (shared_ptr), ReadRequest,
 *                  MaybeSendBytesFromBuffer, and HTTPRequest::WriteReply with the optimistic
 *                  send, on whichever thread replies
 *  work_queue.c    the request dispatcher: a bounded WorkQueue and the worker threads running
 *                  the request handler (the echo every copy answers with)
 *  checker.c       the oracles (spec §2.8 B1-B5, leaks), kept apart from the copy
 *  btc_world.c     one simulated run: the server, the churn clients, the drain at the end
 *
 * The copy runs unchanged on the real kernel and pthreads (harness/real/): `churn serve btc`
 * and out/stress/btc-stress. */
#ifndef CF_BTC_HTTP_H
#define CF_BTC_HTTP_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf.h"
#include "http.h"
#include "kernel.h"
#include "pool.h"

#define BTC_SYSTEM "btc-httpserver"

/* ---- the public face: configuration, start, stop ------------------------------------------ */

typedef struct btc_config {
  int rpc_threads;              /* worker threads (-rpcthreads; DEFAULT_HTTP_THREADS = 16) */
  int rpc_workqueue;            /* WorkQueue depth (-rpcworkqueue; DEFAULT_HTTP_WORKQUEUE = 64) */
  int64_t rpcservertimeout;     /* idle timeout in ticks (-rpcservertimeout; 30 s upstream) */
  int64_t select_timeout;       /* WaitMany's timeout in ticks (SELECT_TIMEOUT = 50 ms) */
  uint32_t max_headers_size;    /* 431 past it (MAX_HEADERS_SIZE = 8192) */
  uint32_t max_body_size;       /* 413 past it */
  /* One line per connection event (accept, request, disconnect), or NULL. */
  void (*log)(void *arg, const char *line);
  void *log_arg;
} btc_config_t;

void btc_config_default(btc_config_t *cfg);

typedef struct HTTPServer HTTPServer;

/* BindAndStartListening on `listener` (bound, listening, non-blocking), then
 * StartSocketsThreads and the worker threads. cfg must outlive the server. */
HTTPServer *btc_server_start(ks_kernel_t *k, const btc_config_t *cfg, int listener);
/* The shutdown that drains: the workers finish every queued request and exit, the listener
 * closes, DisconnectAllClients, wait until no client is left, InterruptNet, join the I/O
 * thread, free the server. */
void btc_server_stop(HTTPServer *s);
/* Clients connected (GetConnectionsCount) and requests dispatched so far. */
uint64_t btc_server_connections(HTTPServer *s);
uint64_t btc_server_requests(HTTPServer *s);

/* ---- the copy's state --------------------------------------------------------------------- */

typedef struct HTTPRemoteClient HTTPRemoteClient;

/* HTTPRequest: a parsed request (the shared parser's view of it) and the client it came from,
 * whose reference it holds (std::shared_ptr<HTTPRemoteClient> m_client). */
typedef struct HTTPRequest {
  struct HTTPRequest *next;     /* in m_req_queue or the WorkQueue */
  HTTPRemoteClient *m_client;
  http_req_t parsed;            /* method, target, version, keep-alive, body length and sum */
  uint64_t serial;              /* per client, in arrival order (for the checker) */
  bool dispatched;              /* handed to m_request_dispatcher (m_req_busy was set for it) */
  int error_status;             /* an unreadable request, answered in its turn (the fix of
                                   btc-35182-bad-request-inline) */
} HTTPRequest;

#define BTC_RECV_CAPACITY 16384

struct HTTPRemoteClient {
  int64_t m_id;
  HTTPServer *server;
  HTTPRemoteClient *all_prev, *all_next; /* every live client (HTTPServer.all_clients) */
  cf_atomic_t refs;             /* the shared_ptr use count: m_connected and each HTTPRequest */
  /* I/O thread only. */
  http_req_t m_recv;            /* the parser over m_recv_buffer */
  uint8_t m_recv_buffer[BTC_RECV_CAPACITY];
  /* Upstream's ReadRequest leaves the bytes of a request it cannot read in m_recv_buffer, so
   * every later parse fails on them again: the status it failed with, 0 before. */
  int m_recv_error;
  HTTPRequest *m_req_queue, *m_req_queue_tail;
  uint64_t next_serial;
  /* Set by the I/O thread when a request goes to a worker, cleared as the last statement of
   * WriteReply. */
  cf_atomic_t m_req_busy;
  cf_mutex_t m_send_mutex;
  uint8_t *m_send_buffer;       /* GUARDED_BY(m_send_mutex) */
  size_t m_send_len, m_send_cap;
  /* Set by workers after writing a response, cleared by the I/O thread after flushing.
   * Pre-fix an atomic read and written without the lock; since the #35614 fix
   * GUARDED_BY(m_send_mutex). An atomic here either way, so both run from one build. */
  cf_atomic_t m_send_ready;
  cf_mutex_t m_sock_mutex;      /* serialises Send and Recv; lock order m_send_mutex first */
  int m_sock;
  cf_atomic_t m_connection_busy; /* earlier m_prevent_disconnect; initially true */
  cf_atomic_t m_keep_alive;
  cf_atomic_t m_disconnect;
  cf_atomic_t m_idle_since;     /* virtual ticks */
  /* A reply without keep-alive was written: no later request may be dispatched (the fix of
   * btc-35182-dispatch-after-close; upstream has no such flag). */
  cf_atomic_t m_closing;
};

/* The request dispatcher's queue (WorkQueue<HTTPClosure>): bounded, drained by the workers
 * on shutdown. */
#define BTC_MAX_WORKERS 4
typedef struct WorkQueue {
  cf_mutex_t cs;
  cf_cond_t cond;
  HTTPRequest *head, *tail;
  size_t size, maxDepth;
  bool running;
  int nthreads;
  cf_thread_t threads[BTC_MAX_WORKERS];
} WorkQueue;

/* One socket WaitMany watches: a listener (client NULL) or a connected client. */
typedef struct btc_wait_sock {
  HTTPRemoteClient *client;
  short requested;              /* Sock::RECV (POLLIN) or Sock::SEND (POLLOUT) */
} btc_wait_sock_t;

struct HTTPServer {
  ks_kernel_t *k;
  const btc_config_t *cfg;
  int m_listen;                 /* -1 once StopListening closed it */
  HTTPRemoteClient **m_connected; /* I/O thread only */
  int n_connected, cap_connected;
  cf_atomic_t m_connected_size;
  cf_atomic_t m_disconnect_all_clients;
  cf_atomic_t m_interrupt_net;
  int64_t m_next_id;
  cf_atomic_t requests;         /* dispatched so far */
  /* Allocation (make_shared, make_unique): pools return everything when a run ends, also
   * what an abandoned run still held; all_clients (under the host lock) lets that teardown
   * free their send buffers too. */
  cf_pool_t client_pool, request_pool;
  HTTPRemoteClient *all_clients;
  WorkQueue work_queue;
  cf_thread_t m_thread_socket_handler;
  /* IOReadiness of the current iteration: pollfds and what each one is. */
  struct pollfd *io_fds;
  btc_wait_sock_t *io_socks;
  int io_count, io_cap;
};

/* Sock::RECV / Sock::SEND / Sock::ERR as WaitMany's poll(2) masks. */
#define SOCK_RECV POLLIN
#define SOCK_SEND POLLOUT

/* remote_client.c */
HTTPRemoteClient *btc_client_new(HTTPServer *s, int64_t id, int sock);
void btc_client_ref(HTTPRemoteClient *c);
/* Drop a reference; the last one closes the socket and frees the client (~Sock, ~HTTPClient). */
void btc_client_unref(HTTPRemoteClient *c);
bool HTTPRemoteClient_MaybeSendBytesFromBuffer(HTTPRemoteClient *c);
/* Parse the next complete request out of m_recv_buffer: the request (holding a reference), or
 * NULL with *status 0 when more bytes are needed, or the error status of a malformed one. */
HTTPRequest *HTTPRemoteClient_ReadRequest(HTTPRemoteClient *c, int *status);
/* A request object for a reply to an unreadable request (HTTP/1.1 defaults). */
HTTPRequest *btc_request_new(HTTPRemoteClient *c);
void btc_request_free(HTTPRequest *req);
void HTTPRequest_WriteReply(HTTPRequest *req, int status, const char *body, size_t len);
static inline bool btc_recoverable(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EMSGSIZE || err == EINTR ||
         err == EINPROGRESS;
}

/* work_queue.c */
void btc_work_queue_start(HTTPServer *s, int depth, int threads);
/* m_request_dispatcher: hand the request to a worker (503 when the queue is full). */
void btc_request_dispatcher(HTTPServer *s, HTTPRequest *req);
/* Interrupt, then join the workers once they drained the queue. */
void btc_work_queue_stop(HTTPServer *s);

/* httpserver.c */
void btc_log_line(HTTPServer *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define btc_event(s, label, ...)                    \
  do {                                              \
    cf_note(CF_SITE(label), __VA_ARGS__);           \
    if ((s)->cfg->log) btc_log_line((s), __VA_ARGS__); \
  } while (0)

/* btc_world.c: one simulated run (the fuzz target's main). */
void btc_world_main(void *arg);

/* checker.c: the oracles (spec §2.8), called at the copy's commit points. */
void chk_btc_init(HTTPServer *s);
void chk_btc_client_new(HTTPRemoteClient *c);
void chk_btc_client_free(HTTPRemoteClient *c);
void chk_btc_send_unlock(HTTPRemoteClient *c);      /* B1: m_send_mutex about to be released */
void chk_btc_send_failed(HTTPRemoteClient *c);      /* a permanent send error abandoned the buffer */
/* WriteReply's extent; dispatched: the reply to a request m_req_busy was set for (not the 400
 * of an unreadable one). */
void chk_btc_reply_begin(HTTPRemoteClient *c, bool dispatched);
void chk_btc_reply_end(HTTPRemoteClient *c, bool dispatched); /* just before m_req_busy = false */
void chk_btc_dispatch(HTTPRemoteClient *c, const HTTPRequest *req); /* B4 */
void chk_btc_iteration(HTTPServer *s);              /* B2, B3: the I/O thread between iterations */
void chk_btc_wait_sockets(HTTPServer *s);           /* B5: what GenerateWaitSockets asked for */
void chk_btc_quiescent(HTTPServer *s);              /* leaks once the server is stopped */

#endif
