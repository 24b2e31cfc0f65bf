/* checker.c: the oracles of spec §1.9 over the http.zig copy, kept apart from the copy: it
 * keeps a ghost record of every Conn and every socket number the copy owns, and looks at the
 * copy's lists and the kernel's interest list at the copy's commit points.
 *
 *  H1 conn-freed        a .recv dispatched for a Conn that is not allocated (worker.recv);
 *  H2 registered-freed  a Conn destroyed while the epoll interest list still names it;
 *     pending-freed     a Conn destroyed while the harvested batch still holds an event for it;
 *  H3 lists             every list well linked, holding live Conns in its state only, and
 *                       every live Conn on the list of its state (skipped for a Conn or a list
 *                       whose mutex is held: a swapList is half done);
 *  H4 double-destroy    a Conn destroyed twice; double-close: a number closed that the copy
 *                       does not hold open;
 *  H5 counts            len equals the live Conns, len <= max_conn, full => the listener is
 *                       not registered;
 *  H6 liveness          every handed-over Conn is processed by a later processSignal (an
 *                       obligation, checked at quiescence);
 *  leaks                at quiescence, once every client is done: no Conn, HTTPConn or socket
 *                       left, the HTTPConn pool full again.
 * Which toggle each catches: httpz-120-disown-no-del H2 (registered-freed) or H1;
 * httpz-214-inline-signal H2 (pending-freed); wisp-181-stale-snapshot H3; wisp-184-double-
 * destroy H4.
 *
 * On the real backend the hooks run on several threads under the host lock; H3 and the
 * quiescence checks need a consistent view and run in simulation only. */
#include <string.h>

#include "httpz.h"

#define GHOSTS 64
#define FDS 1024

typedef struct ghost {
  Conn *conn;          /* live when non-NULL */
  uint64_t serial;
  int fd;
  cf_obligation_t handover;
  bool handed_over;
} ghost_t;

static struct {
  Worker *w;
  ghost_t g[GHOSTS];
  bool fd_open[FDS];
  int nlive;
  int used; /* ghosts [0, used) have been taken this run: the loops look no further */
} chk;

/* The hooks run on the copy's threads, each inside cf_checker_enter/leave: under the host lock
 * on the real backend, and as oracle sections (hidden from TSan, no yield) in simulation, where
 * the ghost state is shared by every fiber. */
static const cf_site_t *site_of_state(httpz_state_t s);
static void check_lists(Worker *w, const char *where);

void chk_httpz_init(Worker *w) {
  memset(&chk, 0, sizeof chk);
  chk.w = w;
}

static ghost_t *ghost_of(const Conn *c) {
  for (int i = 0; i < chk.used; i++)
    if (chk.g[i].conn == c) return &chk.g[i];
  return NULL;
}

static ghost_t *free_ghost(void) {
  ghost_t *g = ghost_of(NULL);
  if (!g && chk.used < GHOSTS) g = &chk.g[chk.used++];
  return g;
}

void chk_httpz_created(Worker *w, Conn *c) {
  cf_checker_enter();
  ghost_t *g = free_ghost();
  if (!g) {
    cf_checker_leave();
    cf_fail("capacity", HTTPZ_SYSTEM, CF_SITE("checker.created"), "more than %d live conns",
            GHOSTS);
  }
  *g = (ghost_t){.conn = c, .serial = cf_pool_serial(c), .fd = c->protocol.http->socket};
  chk.nlive++;
  cf_checker_leave();
}

void chk_httpz_dispatch(Worker *w, Conn *c) {
  if (!cf_pool_is_live(c))
    cf_fail("conn-freed", HTTPZ_SYSTEM, CF_SITE("worker.recv"),
            "a .recv event names a Conn that was destroyed (H1)");
}

void chk_httpz_destroying(Worker *w, Conn *c) {
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  if (!g || !cf_pool_is_live(c)) {
    cf_checker_leave();
    cf_fail("double-destroy", HTTPZ_SYSTEM, CF_SITE("conn_mem_pool.destroy"),
            "destroying a Conn that is not allocated (H4)");
  }
  int fd = g->fd;
  unsigned long long serial = (unsigned long long)g->serial;
  g->conn = NULL;
  chk.nlive--;
  uint64_t data = (uint64_t)(uintptr_t)c;
  for (int i = w->loop.next; i < w->loop.count; i++)
    if (w->loop.event_list[i].data == data)
      cf_fail("pending-freed", HTTPZ_SYSTEM, CF_SITE("conn_mem_pool.destroy"),
              "Conn #%llu (fd %d) destroyed while event %d of the harvested batch still names "
              "it (H2b)", serial, fd, i);
  ks_epoll_item_t items[64];
  int n = ks_epoll_items(w->k, w->loop.fd, items, 64);
  cf_checker_leave();
  for (int i = 0; i < n && i < 64; i++)
    if (items[i].data == data)
      cf_fail("registered-freed", HTTPZ_SYSTEM, CF_SITE("conn_mem_pool.destroy"),
              "Conn #%llu destroyed while epoll still has it registered (fd %d, its socket "
              "closed but its description still open) (H2a)", serial, items[i].fd);
}

void chk_httpz_fd_opened(Worker *w, int fd) {
  cf_checker_enter();
  if (fd >= 0 && fd < FDS) chk.fd_open[fd] = true;
  cf_checker_leave();
}

bool chk_httpz_holds_fd(Worker *w, int fd) {
  cf_checker_enter();
  bool held = fd >= 0 && fd < FDS && chk.fd_open[fd];
  cf_checker_leave();
  return held;
}

void chk_httpz_closing(Worker *w, int fd) {
  cf_checker_enter();
  bool was_open = fd >= 0 && fd < FDS && chk.fd_open[fd];
  if (was_open) chk.fd_open[fd] = false;
  cf_checker_leave();
  if (!was_open && fd >= 0 && fd < FDS)
    cf_fail("double-close", HTTPZ_SYSTEM, CF_SITE("conn.close"),
            "closing fd %d, which the server no longer holds (H4)", fd);
}

void chk_httpz_handed_over(Worker *w, Conn *c) {
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  if (g) {
    g->handed_over = true;
    g->handover = cf_obligation_open(HTTPZ_SYSTEM, "handed-over conn processed", g->serial);
  }
  cf_checker_leave();
}

void chk_httpz_signal_processed(Worker *w, Conn *c) {
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  if (g && g->handed_over) {
    g->handed_over = false;
    cf_obligation_close(g->handover);
  }
  cf_checker_leave();
}

/* ---- H3, H5 ----------------------------------------------------------------------------------- */

static bool held(const cf_mutex_t *m) { return m->owner != NULL; }

/* Walk one list; marks the ghosts found on it. */
static void check_list(const List *l, httpz_state_t state, bool *seen, const char *where) {
  const cf_site_t *site = site_of_state(state);
  const Conn *prev = NULL;
  int steps = 0;
  for (const Conn *c = l->head; c; prev = c, c = c->next) {
    if (++steps > GHOSTS)
      cf_fail("lists", HTTPZ_SYSTEM, site, "%s: the list has a cycle (H3)", where);
    if (!cf_pool_is_live(c))
      cf_fail("lists", HTTPZ_SYSTEM, site, "%s: a destroyed Conn is linked in the list (H3)",
              where);
    ghost_t *g = ghost_of(c);
    if (c->prev != prev)
      cf_fail("lists", HTTPZ_SYSTEM, site, "%s: Conn #%llu's prev link is wrong (H3)", where,
              (unsigned long long)(g ? g->serial : 0));
    HTTPConn *h = c->protocol.http;
    if (!held(&h->_mut) && (httpz_state_t)h->_state.v != state)
      cf_fail("lists", HTTPZ_SYSTEM, site, "%s: Conn #%llu in state %d is on this list (H3)",
              where, (unsigned long long)(g ? g->serial : 0), (int)h->_state.v);
    if (g) seen[g - chk.g] = true;
  }
  if (l->tail != prev)
    cf_fail("lists", HTTPZ_SYSTEM, site, "%s: tail is not the last node (H3)", where);
}

static const cf_site_t *site_of_state(httpz_state_t s) {
  switch (s) {
  case STATE_REQUEST: return CF_SITE("request_list");
  case STATE_KEEPALIVE: return CF_SITE("keepalive_list");
  case STATE_ACTIVE: return CF_SITE("active_list");
  default: return CF_SITE("handover_list");
  }
}

void chk_httpz_lists(Worker *w, const char *where) {
  if (!cf_in_sim()) return;
  /* Reads lists other fibers own without their locks: atomic in simulation, and hidden from
   * TSan as an oracle's reads. */
  cf_oracle_begin();
  check_lists(w, where);
  cf_oracle_end();
}

static void check_lists(Worker *w, const char *where) {
  bool seen[GHOSTS] = {0};
  const struct {
    const List *l;
    const cf_mutex_t *m;
    httpz_state_t s;
  } lists[] = {{&w->request_list, NULL, STATE_REQUEST},
               {&w->keepalive_list.inner, &w->keepalive_list.mut, STATE_KEEPALIVE},
               {&w->active_list.inner, &w->active_list.mut, STATE_ACTIVE},
               {&w->handover_list.inner, &w->handover_list.mut, STATE_HANDOVER}};
  bool skipped[4] = {0};
  for (int i = 0; i < 4; i++) {
    if (lists[i].m && held(lists[i].m)) {
      skipped[i] = true;
      continue;
    }
    check_list(lists[i].l, lists[i].s, seen, where);
  }
  for (int i = 0; i < chk.used; i++) {
    const Conn *c = chk.g[i].conn;
    if (!c || seen[i] || held(&c->protocol.http->_mut)) continue;
    httpz_state_t s = (httpz_state_t)c->protocol.http->_state.v;
    if (!skipped[s])
      cf_fail("lists", HTTPZ_SYSTEM, site_of_state(s),
              "%s: live Conn #%llu (fd %d) in state %d is on no list (H3)", where,
              (unsigned long long)chk.g[i].serial, chk.g[i].fd, (int)s);
  }
  if ((int)w->len != chk.nlive || w->len > w->max_conn)
    cf_fail("counts", HTTPZ_SYSTEM, CF_SITE("worker.len"),
            "len %u, %d live Conns, max_conn %u (H5)", w->len, chk.nlive, w->max_conn);
  if (w->full) {
    ks_epoll_item_t items[64];
    int n = ks_epoll_items(w->k, w->loop.fd, items, 64);
    for (int i = 0; i < n && i < 64; i++)
      if (items[i].data == 0)
        cf_fail("counts", HTTPZ_SYSTEM, CF_SITE("worker.full"),
                "full, but the listener is still registered (H5)");
  }
}

/* ---- leaks at quiescence ---------------------------------------------------------------------- */

static void check_quiescent(Worker *w);

void chk_httpz_quiescent(Worker *w) {
  cf_checker_enter();
  check_quiescent(w);
  cf_checker_leave();
}

static void check_quiescent(Worker *w) {
  if (w->len != 0 || chk.nlive != 0 || w->conn_mem_pool.live != 0)
    cf_fail("leak", HTTPZ_SYSTEM, CF_SITE("quiescence.conns"),
            "every client is done, but len %u, %d live Conns, %zu Conns allocated", w->len,
            chk.nlive, w->conn_mem_pool.live);
  HTTPConnPool *p = &w->http_conn_pool;
  if (p->available != p->len || p->http_mem_pool.live != p->len)
    cf_fail("leak", HTTPZ_SYSTEM, CF_SITE("quiescence.http_conn_pool"),
            "HTTPConn pool has %u of %u back, %zu allocated", p->available, p->len,
            p->http_mem_pool.live);
  for (int fd = 0; fd < FDS; fd++)
    if (chk.fd_open[fd])
      cf_fail("leak", HTTPZ_SYSTEM, CF_SITE("quiescence.sockets"),
              "every client is done, but the server still holds socket fd %d", fd);
}
