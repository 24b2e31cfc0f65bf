/* httpserver.c: HTTPServer, the I/O thread "http" (bitcoin/bitcoin src/httpserver.cpp,
 * ThreadSocketHandler and what it calls; spec http-servers.md §2.3), accept, and the shutdown.
 *
 * Each iteration: GenerateWaitSockets (the listener for RECV; each client for SEND when
 * m_send_ready, else RECV, never both), WaitMany (poll(2), SELECT_TIMEOUT; sleep when it
 * fails), SocketHandlerConnected (send what is buffered, receive, parse and dispatch),
 * SocketHandlerListening (accept one connection), DisconnectClients. Virtual time replaces
 * the steady clock: SELECT_TIMEOUT and -rpcservertimeout are ticks (milliseconds on the real
 * backend). The modelled revision is PR #35182's HTTPClient (m_prevent_disconnect, here under
 * its later name m_connection_busy) with the #35614 diff; the idle timeout in
 * DisconnectClients is the PR's m_idle_since/-rpcservertimeout check. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btc_http.h"

void btc_config_default(btc_config_t *cfg) {
  *cfg = (btc_config_t){
      .rpc_threads = BTC_MAX_WORKERS, /* DEFAULT_HTTP_THREADS is 16; four show every race */
      .rpc_workqueue = 64,           /* DEFAULT_HTTP_WORKQUEUE */
      .rpcservertimeout = 30000,     /* DEFAULT_HTTP_SERVER_TIMEOUT, 30 s */
      .select_timeout = 50,          /* SELECT_TIMEOUT, 50 ms */
      .max_headers_size = 8192,      /* MAX_HEADERS_SIZE */
      .max_body_size = 1 << 20,
  };
}

void btc_log_line(HTTPServer *s, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  s->cfg->log(s->cfg->log_arg, line);
}

/* ---- GenerateWaitSockets ------------------------------------------------------------------ */

static void wait_sock_add(HTTPServer *s, int fd, short events, HTTPRemoteClient *c) {
  s->io_fds[s->io_count] = (struct pollfd){.fd = fd, .events = events};
  s->io_socks[s->io_count] = (btc_wait_sock_t){.client = c, .requested = events};
  s->io_count++;
}

static void GenerateWaitSockets(HTTPServer *s) {
  int need = s->n_connected + 1;
  if (need > s->io_cap) {
    s->io_cap = need * 2;
    s->io_fds = realloc(s->io_fds, sizeof *s->io_fds * (size_t)s->io_cap);
    s->io_socks = realloc(s->io_socks, sizeof *s->io_socks * (size_t)s->io_cap);
    if (!s->io_fds || !s->io_socks) abort();
  }
  s->io_count = 0;
  if (s->m_listen >= 0) wait_sock_add(s, s->m_listen, SOCK_RECV, NULL);
  for (int i = 0; i < s->n_connected; i++) {
    HTTPRemoteClient *c = s->m_connected[i];
    /* Don't try to receive again until the send buffer is cleared. Pre-fix the flag is read
     * lock-free; the #35614 fix reads it under m_send_mutex, in a critical section of its own
     * (never nested with m_sock_mutex, which only guards the socket handle: a plain number
     * here that never changes). */
    bool ready;
    if (cf_bug(CF_BUG_BTC_35614_SEND_READY_UNLOCKED)) {
      ready = cf_atomic_load(&c->m_send_ready) != 0;
    } else {
      cf_mutex_lock(&c->m_send_mutex);
      ready = cf_atomic_load(&c->m_send_ready) != 0;
      chk_btc_send_unlock(c);
      cf_mutex_unlock(&c->m_send_mutex);
    }
    wait_sock_add(s, c->m_sock, ready ? SOCK_SEND : SOCK_RECV, c);
  }
  chk_btc_wait_sockets(s);
}

/* ---- SocketHandlerConnected --------------------------------------------------------------- */

static void req_queue_push(HTTPRemoteClient *c, HTTPRequest *req) {
  if (c->m_req_queue_tail)
    c->m_req_queue_tail->next = req;
  else
    c->m_req_queue = req;
  c->m_req_queue_tail = req;
}

/* Parse every complete request out of the receive buffer into m_req_queue, then hand the
 * oldest to a worker unless one of this client's is still there. Upstream answers a request
 * it cannot read with 400 at once, from this thread, and flags the client; the fix queues the
 * error in its turn, answered here when it reaches the front (and parses no further). */
static void MaybeDispatchRequestsFromClient(HTTPServer *s, HTTPRemoteClient *c) {
  bool inline_400 = cf_bug(CF_BUG_BTC_35182_BAD_REQUEST_INLINE);
  while ((inline_400 && c->m_recv_error) || (!c->m_recv_error && c->m_recv.len > 0)) {
    int status;
    HTTPRequest *req = HTTPRemoteClient_ReadRequest(c, &status);
    if (!req && status == 0) break; /* need more data */
    if (!req) {
      btc_event(s, "btc.bad-request", "client %lld: error reading HTTP request (%d)",
                (long long)c->m_id, status);
      req = btc_request_new(c);
      if (!inline_400) {
        req->error_status = status;
        req_queue_push(c, req);
        break;
      }
      /* Upstream: the 400 goes out now, ahead of whatever this client has queued or at a
       * worker, and its WriteReply ends with m_req_busy = false. */
      HTTPRequest_WriteReply(req, status, "", 0);
      btc_request_free(req);
      cf_atomic_store(&c->m_disconnect, 1);
      break;
    }
    btc_event(s, "btc.request", "client %lld: received %s %s", (long long)c->m_id,
              req->parsed.method, req->parsed.url);
    req_queue_push(c, req);
  }
  /* Already handling a request from this client: check again on the next iteration. */
  if (cf_atomic_load(&c->m_req_busy)) return;
  /* A reply said close: nothing after it is answered (upstream goes on dispatching). */
  if (!cf_bug(CF_BUG_BTC_35182_DISPATCH_AFTER_CLOSE) && cf_atomic_load(&c->m_closing)) return;
  HTTPRequest *front = c->m_req_queue;
  if (!front) return;
  c->m_req_queue = front->next;
  if (!c->m_req_queue) c->m_req_queue_tail = NULL;
  front->next = NULL;
  if (front->error_status) {
    HTTPRequest_WriteReply(front, front->error_status, "", 0);
    btc_request_free(front);
    cf_atomic_store(&c->m_disconnect, 1);
    return;
  }
  cf_atomic_store(&c->m_req_busy, 1);
  front->dispatched = true;
  chk_btc_dispatch(c, front);
  btc_request_dispatcher(s, front);
}

/* Drop the requests still queued (each holds a reference to the client). */
static void req_queue_clear(HTTPRemoteClient *c) {
  while (c->m_req_queue) {
    HTTPRequest *req = c->m_req_queue;
    c->m_req_queue = req->next;
    if (!c->m_req_queue) c->m_req_queue_tail = NULL;
    btc_request_free(req);
  }
}

static void SocketHandlerConnected(HTTPServer *s) {
  ks_kernel_t *k = s->k;
  for (int i = 0; i < s->io_count; i++) {
    if (cf_atomic_load(&s->m_interrupt_net)) return;
    HTTPRemoteClient *c = s->io_socks[i].client;
    if (!c) continue;
    short revents = s->io_fds[i].revents;
    /* Sock::WaitMany's mapping of poll(2) results to Sock events. */
    bool send_ready = revents & POLLOUT;
    bool recv_ready = revents & POLLIN;
    bool err_ready = revents & (POLLERR | POLLHUP);
    if (send_ready) {
      /* On an error skip the receive: the client is going to be disconnected. */
      if (!HTTPRemoteClient_MaybeSendBytesFromBuffer(c)) recv_ready = false;
    }
    if (recv_ready || err_ready) {
      size_t room;
      uint8_t *space = http_req_space(&c->m_recv, &room);
      ssize_t nrecv = -EAGAIN;
      if (room > 0) {
        cf_mutex_lock(&c->m_sock_mutex);
        nrecv = ks_recv(k, c->m_sock, space, room, MSG_DONTWAIT);
        cf_mutex_unlock(&c->m_sock_mutex);
      }
      if (nrecv < 0) {
        if (!btc_recoverable((int)-nrecv)) {
          btc_event(s, "btc.recv-error", "client %lld: permanent read error %d",
                    (long long)c->m_id, (int)-nrecv);
          cf_atomic_store(&c->m_disconnect, 1);
        }
      } else if (nrecv == 0) {
        btc_event(s, "btc.eof", "client %lld: received EOF", (long long)c->m_id);
        cf_atomic_store(&c->m_disconnect, 1);
        /* A partial request can never complete now: the data received no longer makes the
         * client busy unless a reply is still to be sent (upstream keeps it busy, and so
         * polled and read at EOF every iteration, until -rpcservertimeout). Bytes left behind
         * by a send that failed for good (m_send_ready cleared) will never go. */
        if (!cf_bug(CF_BUG_BTC_35182_EOF_SPIN)) {
          cf_mutex_lock(&c->m_send_mutex);
          if (c->m_send_len == 0 || !cf_atomic_load(&c->m_send_ready))
            cf_atomic_store(&c->m_connection_busy, 0);
          chk_btc_send_unlock(c);
          cf_mutex_unlock(&c->m_send_mutex);
        }
      } else {
        /* Prevent disconnect until all requests are completely handled. */
        cf_atomic_store(&c->m_connection_busy, 1);
        cf_atomic_store(&c->m_idle_since, (uint64_t)cf_now());
        http_req_received(&c->m_recv, (size_t)nrecv);
      }
    }
    /* For every client, read or not: it may parse a request already received. */
    MaybeDispatchRequestsFromClient(s, c);
  }
}

/* ---- SocketHandlerListening, NewSockAccepted ---------------------------------------------- */

static void connected_push(HTTPServer *s, HTTPRemoteClient *c) {
  if (s->n_connected == s->cap_connected) {
    s->cap_connected = s->cap_connected ? 2 * s->cap_connected : 16;
    s->m_connected = realloc(s->m_connected, sizeof *s->m_connected * (size_t)s->cap_connected);
    if (!s->m_connected) abort();
  }
  s->m_connected[s->n_connected++] = c;
}

static void SocketHandlerListening(HTTPServer *s) {
  if (s->io_count == 0 || s->io_socks[0].client || !(s->io_fds[0].revents & POLLIN)) return;
  if (cf_atomic_load(&s->m_interrupt_net)) return;
  /* The accepted socket stays blocking: every Send and Recv passes MSG_DONTWAIT. */
  int sock = ks_accept4(s->k, s->m_listen, SOCK_CLOEXEC);
  if (sock < 0) {
    if (sock != -EAGAIN) btc_event(s, "btc.accept-error", "cannot accept new connection: %d", -sock);
    return;
  }
  HTTPRemoteClient *c = btc_client_new(s, s->m_next_id++, sock);
  connected_push(s, c);
  cf_atomic_fetch_add(&s->m_connected_size, 1);
  btc_event(s, "btc.accept", "client %lld: connection accepted (fd %d)", (long long)c->m_id, sock);
}

/* ---- DisconnectClients -------------------------------------------------------------------- */

static void DisconnectClients(HTTPServer *s) {
  int64_t now = cf_now();
  int kept = 0;
  uint64_t erased = 0;
  for (int i = 0; i < s->n_connected; i++) {
    HTTPRemoteClient *c = s->m_connected[i];
    bool timeout = now - (int64_t)cf_atomic_load(&c->m_idle_since) > s->cfg->rpcservertimeout;
    bool flagged = cf_atomic_load(&c->m_disconnect) || cf_atomic_load(&s->m_disconnect_all_clients);
    /* A request at a worker keeps a client too, and so do queued ones unless a reply said
     * close (upstream erases it, and the queued requests keep it alive: see
     * req_queue_clear). m_req_busy is read first: a worker sets m_connection_busy for a
     * partial send before it clears m_req_busy. */
    bool cycle = cf_bug(CF_BUG_BTC_35182_QUEUE_CYCLE);
    bool at_worker = !cycle && cf_atomic_load(&c->m_req_busy);
    bool busy = cf_atomic_load(&c->m_connection_busy) || at_worker;
    if (!cycle && !busy) busy = c->m_req_queue && !cf_atomic_load(&c->m_closing);
    if ((flagged && !busy) || timeout) {
      btc_event(s, "btc.disconnect", "client %lld: disconnected%s", (long long)c->m_id,
                timeout ? " (idle timeout)" : "");
      if (!cycle) req_queue_clear(c);
      btc_client_unref(c);
      erased++;
    } else {
      s->m_connected[kept++] = c;
    }
  }
  s->n_connected = kept;
  if (erased) cf_atomic_fetch_sub(&s->m_connected_size, erased);
}

/* ---- the I/O thread ----------------------------------------------------------------------- */

static void ThreadSocketHandler(void *arg) {
  HTTPServer *s = arg;
  while (!cf_atomic_load(&s->m_interrupt_net)) {
    chk_btc_iteration(s);
    GenerateWaitSockets(s);
    int n = s->io_count > 0 ? ks_poll(s->k, s->io_fds, (nfds_t)s->io_count, s->cfg->select_timeout)
                            : -1;
    if (n < 0) {
      for (int i = 0; i < s->io_count; i++) s->io_fds[i].revents = 0;
      cf_sleep(s->cfg->select_timeout); /* m_interrupt_net.sleep_for(SELECT_TIMEOUT) */
    }
    SocketHandlerConnected(s);
    SocketHandlerListening(s);
    DisconnectClients(s);
  }
}

/* ---- start and stop ------------------------------------------------------------------------ */

/* The end of a run, however it ended: what a run abandoned mid-way still holds. */
static void server_teardown(void *arg) {
  HTTPServer *s = arg;
  for (HTTPRemoteClient *c = s->all_clients; c; c = c->all_next) free(c->m_send_buffer);
  s->all_clients = NULL;
  free(s->m_connected);
  free(s->io_fds);
  free(s->io_socks);
  s->m_connected = NULL;
  s->io_fds = NULL;
  s->io_socks = NULL;
}

HTTPServer *btc_server_start(ks_kernel_t *k, const btc_config_t *cfg, int listener) {
  HTTPServer *s = cf_sim_alloc(sizeof *s);
  s->k = k;
  s->cfg = cfg;
  s->m_listen = listener;
  cf_pool_init(&s->client_pool, BTC_SYSTEM, "HTTPRemoteClient", sizeof(HTTPRemoteClient));
  cf_pool_init(&s->request_pool, BTC_SYSTEM, "HTTPRequest", sizeof(HTTPRequest));
  cf_defer(server_teardown, s);
  chk_btc_init(s);
  btc_work_queue_start(s, cfg->rpc_workqueue, cfg->rpc_threads);
  cf_thread_spawn(&s->m_thread_socket_handler, ThreadSocketHandler, s, "http");
  return s;
}

void btc_server_stop(HTTPServer *s) {
  btc_work_queue_stop(s);
  cf_atomic_store(&s->m_disconnect_all_clients, 1);
  while (cf_atomic_load(&s->m_connected_size) > 0) cf_sleep(s->cfg->select_timeout);
  cf_atomic_store(&s->m_interrupt_net, 1);
  cf_thread_join(&s->m_thread_socket_handler);
  /* StopListening, once the I/O thread no longer polls the listener. */
  ks_close(s->k, s->m_listen);
  s->m_listen = -1;
  /* Whatever an interrupted iteration left (nothing, once m_connected_size reached 0). */
  for (int i = 0; i < s->n_connected; i++) {
    req_queue_clear(s->m_connected[i]);
    btc_client_unref(s->m_connected[i]);
  }
  s->n_connected = 0;
}

uint64_t btc_server_connections(HTTPServer *s) { return cf_atomic_load(&s->m_connected_size); }
uint64_t btc_server_requests(HTTPServer *s) { return cf_atomic_load(&s->requests); }
