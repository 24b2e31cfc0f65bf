/* remote_client.c: HTTPRemoteClient and HTTPRequest::WriteReply (bitcoin/bitcoin
 * src/httpserver.cpp, PR #35182 and the #35614 diff; spec http-servers.md §2.2, §2.4).
 *
 * A client is shared: m_connected holds one reference, every HTTPRequest of it another (a
 * worker replying to a client the I/O thread already dropped still has it, and its socket,
 * until the request is gone). The last reference closes the socket.
 *
 * WriteReply runs on the worker that handled the request, or on the I/O thread for the 400 of
 * an unreadable request. It appends the response to m_send_buffer under m_send_mutex; if the
 * buffer was empty it tries to send right away ("optimistic send", akin to
 * CConnman::PushMessage), otherwise it leaves the bytes for the I/O thread and sets
 * m_send_ready so that GenerateWaitSockets polls the socket for SEND. Its last statement
 * clears m_req_busy, which lets the I/O thread dispatch the client's next request. */
#include <stdlib.h>
#include <string.h>

#include "btc_http.h"

HTTPRemoteClient *btc_client_new(HTTPServer *s, int64_t id, int sock) {
  HTTPRemoteClient *c = cf_pool_alloc(&s->client_pool);
  memset(c, 0, sizeof *c);
  cf_host_lock();
  c->all_next = s->all_clients;
  if (s->all_clients) s->all_clients->all_prev = c;
  s->all_clients = c;
  cf_host_unlock();
  c->m_id = id;
  c->server = s;
  c->m_sock = sock;
  c->refs.v = 1;
  c->m_connection_busy.v = 1; /* "Initialized to true while server waits for first request" */
  c->m_idle_since.v = (uint64_t)cf_now();
  http_req_init(&c->m_recv, c->m_recv_buffer, sizeof c->m_recv_buffer,
                s->cfg->max_headers_size, s->cfg->max_body_size);
  cf_mutex_init(&c->m_send_mutex, "m_send_mutex");
  cf_mutex_init(&c->m_sock_mutex, "m_sock_mutex");
  chk_btc_client_new(c);
  return c;
}

void btc_client_ref(HTTPRemoteClient *c) { cf_atomic_fetch_add(&c->refs, 1); }

void btc_client_unref(HTTPRemoteClient *c) {
  if (cf_atomic_fetch_sub(&c->refs, 1) != 1) return;
  chk_btc_client_free(c);
  HTTPServer *s = c->server;
  ks_close(s->k, c->m_sock); /* ~Sock */
  cf_mutex_destroy(&c->m_send_mutex);
  cf_mutex_destroy(&c->m_sock_mutex);
  free(c->m_send_buffer);
  cf_host_lock();
  if (c->all_prev)
    c->all_prev->all_next = c->all_next;
  else
    s->all_clients = c->all_next;
  if (c->all_next) c->all_next->all_prev = c->all_prev;
  cf_host_unlock();
  cf_pool_free(&s->client_pool, c);
}

HTTPRequest *btc_request_new(HTTPRemoteClient *c) {
  HTTPRequest *req = cf_pool_alloc(&c->server->request_pool);
  memset(req, 0, sizeof *req);
  btc_client_ref(c);
  req->m_client = c;
  req->serial = c->next_serial++;
  req->parsed.keep_alive = true; /* m_version 1.1: "used by error responses" */
  return req;
}

void btc_request_free(HTTPRequest *req) {
  HTTPRemoteClient *c = req->m_client;
  cf_pool_free(&c->server->request_pool, req);
  btc_client_unref(c);
}

/* HTTPRemoteClient::ReadRequest over the shared parser: m_recv_buffer's bytes are consumed as
 * they are parsed, and a complete request's fields are copied into the HTTPRequest. */
HTTPRequest *HTTPRemoteClient_ReadRequest(HTTPRemoteClient *c, int *status) {
  *status = c->m_recv_error;
  if (c->m_recv_error) return NULL;
  http_req_status_t st = http_req_parse(&c->m_recv, 0);
  if (st == HTTP_REQ_MORE) return NULL;
  if (st == HTTP_REQ_ERROR) {
    *status = c->m_recv_error = c->m_recv.error_status;
    return NULL;
  }
  HTTPRequest *req = btc_request_new(c);
  req->parsed = c->m_recv;
  req->parsed.buf = NULL; /* the fields only: the bytes stay the client's */
  req->parsed.cap = req->parsed.len = 0;
  http_req_next(&c->m_recv);
  return req;
}

static void send_buffer_append(HTTPRemoteClient *c, const char *p, size_t n) {
  if (c->m_send_len + n > c->m_send_cap) {
    size_t cap = c->m_send_cap ? c->m_send_cap : 1024;
    while (cap < c->m_send_len + n) cap *= 2;
    c->m_send_buffer = realloc(c->m_send_buffer, cap);
    if (!c->m_send_buffer) abort();
    c->m_send_cap = cap;
  }
  memcpy(c->m_send_buffer + c->m_send_len, p, n);
  c->m_send_len += n;
}

static void send_unlock(HTTPRemoteClient *c) {
  chk_btc_send_unlock(c);
  cf_mutex_unlock(&c->m_send_mutex);
}

/* HTTPRemoteClient::MaybeSendBytesFromBuffer: push what the send buffer holds. Returns false
 * when the client is done (a permanent error, or the last byte of a non-keep-alive reply went
 * out) and the I/O thread should skip reading from it. An empty buffer is a no-op that leaves
 * m_send_ready as it is ("we don't want to modify the disconnect flags if
 * SendBytesFromBuffer() was a no-op"), as at #35614. */
bool HTTPRemoteClient_MaybeSendBytesFromBuffer(HTTPRemoteClient *c) {
  ks_kernel_t *k = c->server->k;
  cf_mutex_lock(&c->m_send_mutex);
  if (c->m_send_len > 0) {
    cf_mutex_lock(&c->m_sock_mutex);
    ssize_t sent = ks_send(k, c->m_sock, c->m_send_buffer, c->m_send_len,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    cf_mutex_unlock(&c->m_sock_mutex);
    if (sent < 0) {
      if (btc_recoverable((int)-sent)) {
        /* Try again on the next I/O loop. These two flags were added during the #35182 review
         * (r3358889539): without them a reply whose optimistic send met EAGAIN is never
         * polled for SEND. */
        if (!cf_bug(CF_BUG_BTC_35182_EAGAIN_NO_FLAG)) {
          cf_atomic_store(&c->m_send_ready, 1);
          cf_atomic_store(&c->m_connection_busy, 1);
        }
        send_unlock(c);
        return true;
      }
      btc_event(c->server, "btc.send-error", "client %lld: permanent send error %d",
                (long long)c->m_id, (int)-sent);
      cf_atomic_store(&c->m_send_ready, 0);
      cf_atomic_store(&c->m_connection_busy, 0);
      cf_atomic_store(&c->m_disconnect, 1);
      chk_btc_send_failed(c);
      send_unlock(c);
      return false;
    }
    memmove(c->m_send_buffer, c->m_send_buffer + sent, c->m_send_len - (size_t)sent);
    c->m_send_len -= (size_t)sent;
    if (c->m_send_len == 0) {
      cf_atomic_store(&c->m_send_ready, 0);
      cf_atomic_store(&c->m_connection_busy, 0);
      if (!cf_atomic_load(&c->m_keep_alive)) {
        cf_atomic_store(&c->m_disconnect, 1);
        send_unlock(c);
        return false;
      }
      cf_atomic_store(&c->m_idle_since, (uint64_t)cf_now());
    } else {
      cf_atomic_store(&c->m_idle_since, (uint64_t)cf_now());
      cf_atomic_store(&c->m_send_ready, 1);
      cf_atomic_store(&c->m_connection_busy, 1);
    }
  }
  send_unlock(c);
  return true;
}

/* HTTPRequest::WriteReply. The response is the shared writer's (status line, Content-Length,
 * Connection); keep-alive is the request's (HTTP/1.1 unless "Connection: close", HTTP/1.0 only
 * with "Connection: keep-alive"), and an error reply closes. */
void HTTPRequest_WriteReply(HTTPRequest *req, int status, const char *body, size_t len) {
  HTTPRemoteClient *c = req->m_client;
  bool dispatched = req->dispatched;
  bool keep_alive = status == 200 && req->parsed.keep_alive;
  cf_atomic_store(&c->m_keep_alive, keep_alive);
  char out[HTTP_BODY_MAX + 128];
  size_t n = http_response_format(out, sizeof out, status, keep_alive, body, len);
  chk_btc_reply_begin(c, dispatched);
  bool send_buffer_was_empty;
  cf_mutex_lock(&c->m_send_mutex);
  send_buffer_was_empty = c->m_send_len == 0;
  send_buffer_append(c, out, n);
  if (!keep_alive) cf_atomic_store(&c->m_closing, 1); /* with the bytes, never before them */
  /* The #35614 fix (73da2a8a): set m_send_ready while m_send_mutex is still held. */
  if (!cf_bug(CF_BUG_BTC_35614_SEND_READY_UNLOCKED) && !send_buffer_was_empty)
    cf_atomic_store(&c->m_send_ready, 1);
  send_unlock(c);
  btc_event(c->server, "btc.reply", "client %lld: %d response (%zu bytes) added to send buffer",
            (long long)c->m_id, status, n);
  if (send_buffer_was_empty) {
    HTTPRemoteClient_MaybeSendBytesFromBuffer(c);
  } else if (cf_bug(CF_BUG_BTC_35614_SEND_READY_UNLOCKED)) {
    /* Pre-fix (#35182 as merged, httpserver.cpp:614): the flag is set after the lock was
     * released, so the I/O thread may have emptied the buffer in between. */
    cf_atomic_store(&c->m_send_ready, 1);
  }
  chk_btc_reply_end(c, dispatched);
  /* Signal to the I/O loop that we are ready to handle the next request. */
  cf_atomic_store(&c->m_req_busy, 0);
}
