/* worker.c: the loop thread of http.zig's NonBlocking worker (src/worker.zig @86a44b6, the
 * run/accept/processSignal/disown code of 8dc6441 with the #120 fix), on the kernel's epoll.
 *
 * epoll is level-triggered and the event data is the raw Conn pointer; nothing checks that
 * pointer before use, exactly as upstream, so a Conn freed while still registered (or still
 * named by a harvested event) is dereferenced by a later .recv. The harvested batch is kept in
 * loop.event_list[next, count) so the checker can see what is still pending when a Conn is
 * destroyed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "httpz.h"

#define DATA_ACCEPT 0
#define DATA_SIGNAL 1
#define DATA_SHUTDOWN 2

void httpz_log_line(Worker *w, const char *fmt, ...) {
  char line[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  w->cfg->log(w->cfg->log_arg, line);
}

/* ---- List and ConcurrentList (worker.zig:1009-1067) ----------------------------------------- */

void httpz_list_insert(List *l, Conn *node) {
  if (l->tail) {
    l->tail->next = node;
    node->prev = l->tail;
    l->tail = node;
  } else {
    node->prev = NULL;
    l->head = node;
    l->tail = node;
  }
  node->next = NULL;
}

/* No membership check: head and tail are rewritten from the node's own links (spec §1.8b). */
void httpz_list_remove(List *l, Conn *node) {
  if (node->prev)
    node->prev->next = node->next;
  else
    l->head = node->next;
  if (node->next)
    node->next->prev = node->prev;
  else
    l->tail = node->prev;
  node->prev = NULL;
  node->next = NULL;
}

static void clist_insert(ConcurrentList *l, Conn *node) {
  cf_mutex_lock(&l->mut);
  httpz_list_insert(&l->inner, node);
  cf_mutex_unlock(&l->mut);
}

static void clist_remove(ConcurrentList *l, Conn *node) {
  cf_mutex_lock(&l->mut);
  httpz_list_remove(&l->inner, node);
  cf_mutex_unlock(&l->mut);
}

/* swapList (:664), on the loop thread or a pool thread. The unlock of _mut comes after the
 * insert (Zig's defer). */
void httpz_swapList(Worker *w, Conn *conn, httpz_state_t new_state) {
  HTTPConn *h = conn->protocol.http;
  cf_mutex_lock(&h->_mut);
  switch ((httpz_state_t)h->_state.v) {
  case STATE_ACTIVE: clist_remove(&w->active_list, conn); break;
  case STATE_KEEPALIVE: clist_remove(&w->keepalive_list, conn); break;
  case STATE_REQUEST: httpz_list_remove(&w->request_list, conn); break;
  case STATE_HANDOVER: clist_remove(&w->handover_list, conn); break;
  }
  cf_atomic_store(&h->_state, new_state); /* setState */
  cf_note(CF_SITE("worker.swapList"), "fd %d -> %s", h->socket,
          (const char *[]){"request", "keepalive", "active", "handover"}[new_state]);
  switch (new_state) {
  case STATE_ACTIVE: clist_insert(&w->active_list, conn); break;
  case STATE_KEEPALIVE: clist_insert(&w->keepalive_list, conn); break;
  case STATE_REQUEST: httpz_list_insert(&w->request_list, conn); break;
  case STATE_HANDOVER: clist_insert(&w->handover_list, conn); break;
  }
  cf_mutex_unlock(&h->_mut);
}

/* ---- EPoll (worker.zig:1225-1360) ------------------------------------------------------------- */

static int loop_init(Worker *w) {
  EPoll *l = &w->loop;
  l->close_fd = ks_eventfd(w->k, 0, EFD_CLOEXEC | EFD_NONBLOCK);
  l->event_fd = ks_eventfd(w->k, 0, EFD_CLOEXEC | EFD_NONBLOCK);
  l->fd = ks_epoll_create1(w->k, 0);
  return l->close_fd < 0 ? l->close_fd : l->event_fd < 0 ? l->event_fd : l->fd < 0 ? l->fd : 0;
}

static int loop_start(Worker *w) {
  ks_epoll_event_t ev = {EPOLLIN, DATA_SHUTDOWN};
  int rc = ks_epoll_ctl(w->k, w->loop.fd, EPOLL_CTL_ADD, w->loop.close_fd, &ev);
  if (rc < 0) return rc;
  ev = (ks_epoll_event_t){EPOLLIN | EPOLLET, DATA_SIGNAL};
  return ks_epoll_ctl(w->k, w->loop.fd, EPOLL_CTL_ADD, w->loop.event_fd, &ev);
}

static void eventfd_add_one(Worker *w, int fd) {
  uint64_t one = 1;
  ks_write(w->k, fd, &one, sizeof one);
}

/* EPoll.signal: an eventfd write; EPOLLET and never drained, so every write is a new edge. */
void httpz_loop_signal(Worker *w) { eventfd_add_one(w, w->loop.event_fd); }

static int loop_monitorAccept(Worker *w) {
  ks_epoll_event_t ev = {EPOLLIN | EPOLLEXCLUSIVE, DATA_ACCEPT};
  return ks_epoll_ctl(w->k, w->loop.fd, EPOLL_CTL_ADD, w->listener, &ev);
}

static int loop_pauseAccept(Worker *w) {
  return ks_epoll_ctl(w->k, w->loop.fd, EPOLL_CTL_DEL, w->listener, NULL);
}

static int loop_monitorRead(Worker *w, Conn *conn) {
  ks_epoll_event_t ev = {EPOLLIN | EPOLLRDHUP, (uint64_t)(uintptr_t)conn};
  return ks_epoll_ctl(w->k, w->loop.fd, EPOLL_CTL_ADD, conn->protocol.http->socket, &ev);
}

/* EPoll.remove (new in the #120 fix, 0c6cd82): CTL_DEL, errors ignored. */
void httpz_loop_remove(Worker *w, Conn *conn) {
  ks_epoll_ctl(w->k, w->loop.fd, EPOLL_CTL_DEL, conn->protocol.http->socket, NULL);
}

/* EPoll.wait: timeout in seconds, NULL (< 0) forever. */
static int loop_wait(Worker *w, int timeout_sec) {
  int64_t ticks = timeout_sec < 0 ? -1 : (int64_t)timeout_sec * HTTPZ_TICKS_PER_SECOND;
  int n = ks_epoll_wait(w->k, w->loop.fd, w->loop.event_list, EVENT_LIST_LEN, ticks);
  w->loop.count = n < 0 ? 0 : n;
  w->loop.next = 0;
  return n;
}

/* ---- disown, timeouts, the listener ----------------------------------------------------------- */

/* Worker-level disown (:900): off its list, len--, HTTPConn back to its pool, Conn destroyed.
 * No CTL_DEL and no close: callers do those first (or, pre-#120, relied on a pool thread's
 * close). on_list is false for a conn already detached from a processSignal snapshot (the
 * wisp#181 fix): removing it again would rewrite the live list's head and tail. */
static void disown_from(Worker *w, Conn *conn, bool on_list) {
  HTTPConn *h = conn->protocol.http;
  if (on_list) {
    switch ((httpz_state_t)h->_state.v) {
    case STATE_REQUEST: httpz_list_remove(&w->request_list, conn); break;
    case STATE_HANDOVER: clist_remove(&w->handover_list, conn); break;
    case STATE_KEEPALIVE: clist_remove(&w->keepalive_list, conn); break;
    case STATE_ACTIVE:
      cf_fail("unreachable", HTTPZ_SYSTEM, CF_SITE("worker.disown active"),
              "disown of an active conn");
    }
  }
  w->len -= 1;
  httpz_conn_pool_release(w, h);
  chk_httpz_destroying(w, conn);
  cf_zpool_destroy(&w->conn_mem_pool, conn);
}

static void disown(Worker *w, Conn *conn) { disown_from(w, conn, true); }

/* enableListener (:1002). Upstream clears `full` first and only logs a failed re-arm: the
 * listener is then registered nowhere and nothing tries again, so the worker never accepts
 * another connection. The fix keeps `full` set and the loop retries once a second. */
static void enableListener(Worker *w) {
  bool lost = cf_bug(CF_BUG_HTTPZ_86A44B6_LISTENER_LOST);
  if (lost) w->full = false;
  if (loop_monitorAccept(w) < 0) {
    httpz_event(w, "worker.enableListener failed", "failed to enable monitor to listening socket");
    return;
  }
  w->full = false;
}

/* Conns whose timeout passed, from the front of a list sorted by timeout (:955). They are cut
 * off into a list of their own. Upstream (86a44b6) leaves the first conn kept with its prev link
 * to the last one taken, and closeList then removes each taken conn from the live list again
 * (disown picks the list by state): a lone timed-out head empties the live list, losing every
 * conn behind it (never timed out, later unlinked through a freed Conn). */
static List collectTimedOut(List *list, uint32_t now, size_t *count, int64_t *next) {
  List timed_out = {0};
  Conn *conn = list->head;
  *count = 0;
  while (conn) {
    uint32_t timeout = conn->protocol.http->timeout;
    if (timeout > now) {
      list->head = conn;
      if (!cf_bug(CF_BUG_HTTPZ_86A44B6_TIMEOUT_RELINK)) conn->prev = NULL;
      *next = timeout;
      return timed_out;
    }
    (*count)++;
    Conn *c = conn;
    conn = c->next;
    httpz_list_insert(&timed_out, c);
  }
  list->head = NULL;
  list->tail = NULL;
  *next = -1;
  return timed_out;
}

/* closeList (:975): close and disown, on the loop thread, with no CTL_DEL (as upstream). */
static void closeList(Worker *w, List list) {
  Conn *conn = list.head;
  while (conn) {
    Conn *c = conn;
    conn = c->next;
    httpz_event(w, "worker.timeout", "fd %d: timed out", c->protocol.http->socket);
    httpz_conn_close(w, c);
    /* Upstream disowns it off the live list it no longer is on (worker.zig:975). */
    disown_from(w, c, cf_bug(CF_BUG_HTTPZ_86A44B6_TIMEOUT_RELINK));
  }
}

/* prepareToWait (:915): enforce the timeouts; returns whether any conn was closed and sets
 * *timeout to the seconds until the next one (-1: none). */
static bool prepareToWait(Worker *w, uint32_t now, int *timeout) {
  size_t request_count, keepalive_count;
  int64_t request_next, keepalive_next;
  List request_timed_out = collectTimedOut(&w->request_list, now, &request_count, &request_next);
  cf_mutex_lock(&w->keepalive_list.mut);
  List keepalive_timed_out =
      collectTimedOut(&w->keepalive_list.inner, now, &keepalive_count, &keepalive_next);
  cf_mutex_unlock(&w->keepalive_list.mut);
  bool closed = false;
  if (request_count > 0) {
    closed = true;
    closeList(w, request_timed_out);
  }
  if (keepalive_count > 0) {
    closed = true;
    closeList(w, keepalive_timed_out);
  }
  if (request_next < 0 && keepalive_next < 0) {
    *timeout = -1;
    return closed;
  }
  int64_t next = request_next < 0 ? keepalive_next
                 : keepalive_next < 0 ? request_next
                 : request_next < keepalive_next ? request_next : keepalive_next;
  *timeout = next < now ? 1 : (int)(next - now);
  return closed;
}

/* ---- accept (:687) ---------------------------------------------------------------------------- */

static int accept_conns(Worker *w, uint32_t now) {
  uint32_t len = w->len;
  for (;;) {
    if (len == w->max_conn) {
      w->full = true;
      loop_pauseAccept(w);
      return 0;
    }
    int socket = ks_accept4(w->k, w->listener, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (socket < 0) return socket == -EAGAIN ? 0 : socket;
    chk_httpz_fd_opened(w, socket);
    int socket_flags = ks_fcntl(w->k, socket, F_GETFL, 0);
    Conn *conn = cf_zpool_create(&w->conn_mem_pool);
    HTTPConn *h = httpz_conn_pool_acquire(w);
    h->request_count = 1;
    cf_atomic_store(&h->_state, STATE_REQUEST);
    h->handover = HANDOVER_UNKNOWN;
    h->_io_mode_blocking = false;
    h->socket_flags = socket_flags;
    h->socket = socket;
    h->timeout = now + w->timeout_request;
    w->len += 1;
    *conn = (Conn){.protocol = {.http = h}, .protocol_tag = 1, .next = NULL, .prev = NULL};
    chk_httpz_created(w, conn);
    httpz_list_insert(&w->request_list, conn);
    int rc = loop_monitorRead(w, conn);
    if (rc < 0) {
      httpz_event(w, "worker.accept failed", "fd %d: monitorRead failed: %s", socket, strerror(-rc));
      http_excuse_drop(w->cfg->clients, w->k, socket, HTTP_DROP_ACCEPT_FAILED);
      /* The errdefers live at monitorRead, run last-in first-out: close + disown, then (the
       * wisp#184 bug) destroy and close again, although disown already destroyed the Conn. */
      httpz_conn_close(w, conn);
      disown(w, conn);
      if (cf_bug(CF_BUG_WISP_184_DOUBLE_DESTROY)) { /* wisp#184: worker.zig accept errdefers */
        chk_httpz_destroying(w, conn);
        cf_zpool_destroy(&w->conn_mem_pool, conn);
        chk_httpz_closing(w, socket);
        ks_close(w->k, socket);
      }
      return rc;
    }
    httpz_event(w, "worker.accept", "fd %d: accepted (%u/%u)", socket, w->len, w->max_conn);
    len += 1;
  }
}

/* ---- processSignal (:757) --------------------------------------------------------------------- */

static void processSignal(Worker *w, bool *closed_conn) {
  ConcurrentList *hl = &w->handover_list;
  cf_mutex_lock(&hl->mut);
  List snapshot = hl->inner;
  hl->inner = (List){0};
  cf_mutex_unlock(&hl->mut);
  Conn *c = snapshot.head;
  while (c) {
    Conn *conn = c;
    c = conn->next;
    HTTPConn *h = conn->protocol.http;
    /* The pool thread that put it on the handover list may still be inside swapList: wait for
     * its _mut before the conn (and its HTTPConn, mutex included) is given back. */
    if (!cf_bug(CF_BUG_HTTPZ_86A44B6_SWAPLIST_PUBLISH)) {
      cf_mutex_lock(&h->_mut);
      cf_mutex_unlock(&h->_mut);
    }
    /* wisp#181: disown on a snapshot node removes it from the live list, whose head and tail
     * it then rewrites; the fix detaches it from the snapshot instead. */
    bool stale_snapshot = cf_bug(CF_BUG_WISP_181_STALE_SNAPSHOT);
    if (!stale_snapshot) httpz_list_remove(&snapshot, conn);
    chk_httpz_signal_processed(w, conn);
    switch (h->handover) {
    case HANDOVER_CLOSE:
    case HANDOVER_UNKNOWN:
      *closed_conn = true;
      if (!cf_bug(CF_BUG_HTTPZ_120_DISOWN_NO_DEL)) { /* #120 fix, 0c6cd82 */
        httpz_loop_remove(w, conn);
        httpz_conn_close(w, conn);
      }
      httpz_event(w, "worker.signal close", "fd %d: closed", h->socket);
      disown_from(w, conn, stale_snapshot);
      break;
    case HANDOVER_DISOWN:
      /* res.disown() already removed the socket from epoll on the pool thread (#129). */
      *closed_conn = true;
      httpz_event(w, "worker.signal disown", "fd %d: disowned", h->socket);
      disown_from(w, conn, stale_snapshot);
      break;
    case HANDOVER_KEEPALIVE:
      cf_fail("unreachable", HTTPZ_SYSTEM, CF_SITE("worker.processSignal keepalive"),
              "a keepalive conn on the handover list");
    }
  }
}

/* ---- run (:532) ------------------------------------------------------------------------------- */

/* The state of a conn a pool thread may be handing back. swapList stores the new state before
 * it puts the conn on its new list and before it unlocks _mut (upstream 86a44b6 too): read
 * without _mut, a conn just made keepalive can be read, closed and destroyed by the loop
 * thread while the pool thread is still inserting it into keepalive_list, which then holds
 * freed memory (and the pool thread then unlocks the freed HTTPConn's mutex). Taking _mut
 * waits for the swap to finish. */
static httpz_state_t settled_state(HTTPConn *h) {
  if (cf_bug(CF_BUG_HTTPZ_86A44B6_SWAPLIST_PUBLISH)) return httpz_getState(h); /* worker.zig:597 */
  cf_mutex_lock(&h->_mut);
  httpz_state_t s = httpz_getState(h);
  cf_mutex_unlock(&h->_mut);
  return s;
}

/* One .recv: read and parse on the loop thread while the conn is in request or keepalive.
 * Returns false when the event was skipped (the conn belongs to a pool thread). */
static bool on_recv(Worker *w, Conn *conn, uint32_t now) {
  chk_httpz_dispatch(w, conn);
  HTTPConn *h = conn->protocol.http;
  switch (settled_state(h)) {
  case STATE_REQUEST:
  case STATE_KEEPALIVE:
    break;
  case STATE_ACTIVE:
  case STATE_HANDOVER:
    return false; /* level-triggered: reported again once the pool thread is done */
  }
  size_t room;
  uint8_t *space = http_req_space(&h->req_state, &room);
  ssize_t n = room ? ks_recv(w->k, h->socket, space, room, 0) : 0;
  http_req_status_t st;
  if (n == -EAGAIN) return true;
  if (n < 0 || (n == 0 && room)) {
    st = HTTP_REQ_ERROR; /* reset, or EOF: nothing to answer */
    h->req_state.error_status = 0;
  } else {
    st = http_req_parse(&h->req_state, (size_t)n);
  }
  if (st == HTTP_REQ_ERROR) {
    httpz_requestError(w, h);
    httpz_event(w, "worker.recv close", "fd %d: %s", h->socket, n <= 0 ? "peer closed" : "bad request");
    httpz_conn_close(w, conn);
    disown(w, conn);
    if (w->full) enableListener(w);
    return true;
  }
  if (st == HTTP_REQ_MORE) {
    httpz_swapList(w, conn, STATE_REQUEST);
    return true;
  }
  httpz_swapList(w, conn, STATE_ACTIVE);
  httpz_thread_pool_spawn(w, (httpz_job_t){w, now, conn});
  return true;
}

static void post_ready(Worker *w) {
  cf_mutex_lock(&w->ready_mu);
  w->ready = true;
  cf_cond_broadcast(&w->ready_cv);
  cf_mutex_unlock(&w->ready_mu);
}

static void run(void *arg) {
  Worker *w = arg;
  if (loop_start(w) < 0 || loop_monitorAccept(w) < 0) {
    httpz_event(w, "worker.start failed", "failed to start the event loop");
    post_ready(w);
    return;
  }
  post_ready(w);
  uint32_t now = httpz_timestamp(), last_timeout = now;
  for (;;) {
    int timeout = 1;
    bool acted = false; /* for the checker: more happened than skipped events */
    if (now - last_timeout > 1) {
      bool had_timeouts = prepareToWait(w, now, &timeout);
      acted = had_timeouts;
      if (had_timeouts && w->full) enableListener(w);
      last_timeout = now;
    }
    if (w->full && w->len < w->max_conn) timeout = 1; /* a failed re-arm is retried */
    if (loop_wait(w, timeout) < 0) {
      cf_sleep(100);
      continue;
    }
    now = httpz_timestamp();
    bool closed_conn = false, has_signal = false;
    acted |= w->loop.count == 0;
    while (w->loop.next < w->loop.count) {
      ks_epoll_event_t ev = w->loop.event_list[w->loop.next++];
      switch (ev.data) {
      case DATA_ACCEPT:
        acted = true;
        if (accept_conns(w, now) < 0) cf_sleep(5);
        break;
      case DATA_SIGNAL:
        acted = true;
        /* #214: processing the signal here freed conns a later event of this batch named. */
        if (cf_bug(CF_BUG_HTTPZ_214_INLINE_SIGNAL)) /* e50bf99^ worker.zig:579 */
          processSignal(w, &closed_conn);
        else
          has_signal = true;
        break;
      case DATA_SHUTDOWN:
        return;
      default:
        acted |= on_recv(w, (Conn *)(uintptr_t)ev.data, now);
      }
    }
    if (has_signal) processSignal(w, &closed_conn);
    if (w->thread_pool.batch_size > 0) httpz_thread_pool_flush(w, w->thread_pool.batch_size);
    if (w->full && (closed_conn || w->len < w->max_conn)) enableListener(w);
    /* An iteration that only skipped events (a level-triggered spin) changed nothing. */
    if (acted) chk_httpz_lists(w, "end of loop iteration");
  }
}

/* ---- the public face -------------------------------------------------------------------------- */

void httpz_config_default(httpz_config_t *cfg) {
  *cfg = (httpz_config_t){
      .thread_pool_count = 2,
      .max_conn = 64,
      .min_conn = 8,
      .timeout_request = 5,
      .timeout_keepalive = 10,
      .max_request_per_connection = 100,
      .buffer_size = 2048,
      .max_body_size = 8192,
  };
}

Worker *httpz_server_start(ks_kernel_t *k, const httpz_config_t *cfg, int listener) {
  Worker *w = cf_sim_alloc(sizeof *w);
  w->k = k;
  w->cfg = cfg;
  w->listener = listener;
  w->max_conn = cfg->max_conn;
  w->timeout_request = cfg->timeout_request;
  w->timeout_keepalive = cfg->timeout_keepalive;
  cf_mutex_init(&w->keepalive_list.mut, "keepalive_list.mut");
  cf_mutex_init(&w->active_list.mut, "active_list.mut");
  cf_mutex_init(&w->handover_list.mut, "handover_list.mut");
  cf_zpool_init(&w->conn_mem_pool, HTTPZ_SYSTEM, "conn_mem_pool", sizeof(Conn));
  httpz_conn_pool_init(w);
  chk_httpz_init(w);
  if (loop_init(w) < 0) return NULL;
  httpz_thread_pool_init(w, cfg->thread_pool_count);
  httpz_handoff_start(w);
  cf_mutex_init(&w->ready_mu, "ready_mu");
  cf_cond_init(&w->ready_cv, "ready_cv");
  cf_thread_spawn(&w->loop_thread, run, w, "loop");
  cf_mutex_lock(&w->ready_mu);
  while (!w->ready) cf_cond_wait(&w->ready_cv, &w->ready_mu);
  cf_mutex_unlock(&w->ready_mu);
  return w;
}

/* Worker.stop, then deinit: the loop returns at the shutdown event, the pool drains, and every
 * conn still on a list is closed (shutdownList). */
void httpz_server_stop(Worker *w) {
  eventfd_add_one(w, w->loop.close_fd);
  cf_thread_join(&w->loop_thread);
  httpz_thread_pool_stop(w);
  httpz_handoff_stop(w);
  List *lists[] = {&w->request_list, &w->keepalive_list.inner, &w->active_list.inner,
                   &w->handover_list.inner};
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
    for (Conn *c = lists[i]->head; c; c = c->next) ks_close(w->k, c->protocol.http->socket);
  }
  ks_close(w->k, w->loop.close_fd);
  ks_close(w->k, w->loop.event_fd);
  ks_close(w->k, w->loop.fd);
}

uint32_t httpz_server_len(const Worker *w) { return w->len; }
uint64_t httpz_server_requests(const Worker *w) { return w->request_total.v; }
