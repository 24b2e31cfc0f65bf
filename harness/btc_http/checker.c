/* checker.c: the oracles of spec §2.8 over the Bitcoin Core HTTPServer copy, kept apart from
 * the copy. It keeps a ghost record per HTTPRemoteClient (replies in progress, requests at a
 * worker, a send that failed for good) and looks at the client's flags and buffer at the
 * copy's commit points.
 *
 *  B1 btc-send-ready-empty  wherever m_send_mutex is released, m_send_ready implies a
 *                           non-empty m_send_buffer (#35614 breaks it: step 6 of §2.5);
 *  B2 btc-send-flag         between two I/O iterations, for a client no thread is replying
 *                           to, the buffer is non-empty exactly when m_send_ready is set:
 *                           "reply stranded" catches btc-35182-eagain-no-flag, "nothing to
 *                           send" the state #35614 leaves;
 *  B3 btc-wedged            a client polled for SEND with nothing to send for more than a few
 *                           iterations in a row is never read again (the #35614 symptom, as a
 *                           bound on I/O iterations rather than a timeout);
 *  B4 btc-one-at-a-time     at most one request per client at a worker: a dispatch while an
 *                           earlier one is not answered (responses in request order are the
 *                           client's check, harness/http/client.c);
 *  B5 btc-wait-sockets      GenerateWaitSockets asks for the listener's RECV and, per client,
 *                           exactly one of SEND and RECV;
 *  leaks                    once the server is stopped, no client (and so no socket) is left.
 * Tolerance, as narrow as the case it excuses: B2 skips a client whose send failed for good
 * (MaybeSendBytesFromBuffer clears m_send_ready and flags it for disconnection, leaving the
 * unsendable bytes in the buffer).
 *
 * On the real backend the hooks run on several threads under the host lock; B2, B3 and the
 * quiescence check need a consistent view of every client and run in simulation only. */
#include <stdlib.h>
#include <string.h>

#include "btc_http.h"

#define WEDGE_ITERATIONS 4

typedef struct ghost {
  HTTPRemoteClient *client;     /* live when non-NULL */
  int replying;                 /* WriteReply calls in progress */
  int at_worker;                /* dispatched requests not answered yet */
  uint64_t at_worker_serial;
  bool send_failed;
  int empty_send_polls;         /* consecutive iterations polled for SEND with nothing to send */
} ghost_t;

static struct {
  HTTPServer *s;
  ghost_t *g;
  int used, cap, nlive;
} chk;

static uint64_t peek(const cf_atomic_t *a) { return __atomic_load_n(&a->v, __ATOMIC_SEQ_CST); }

void chk_btc_init(HTTPServer *s) {
  free(chk.g);
  memset(&chk, 0, sizeof chk);
  chk.s = s;
}

static ghost_t *ghost_of(const HTTPRemoteClient *c) {
  for (int i = 0; i < chk.used; i++)
    if (chk.g[i].client == c) return &chk.g[i];
  return NULL;
}

void chk_btc_client_new(HTTPRemoteClient *c) {
  cf_checker_enter();
  ghost_t *g = ghost_of(NULL);
  if (!g) {
    if (chk.used == chk.cap) {
      chk.cap = chk.cap ? 2 * chk.cap : 32;
      chk.g = realloc(chk.g, sizeof *chk.g * (size_t)chk.cap);
      if (!chk.g) abort();
    }
    g = &chk.g[chk.used++];
  }
  *g = (ghost_t){.client = c};
  chk.nlive++;
  cf_checker_leave();
}

void chk_btc_client_free(HTTPRemoteClient *c) {
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  if (g) {
    g->client = NULL;
    chk.nlive--;
  }
  cf_checker_leave();
}

void chk_btc_send_unlock(HTTPRemoteClient *c) {
  cf_checker_enter();
  bool ready = peek(&c->m_send_ready) != 0;
  size_t len = c->m_send_len;
  cf_checker_leave();
  if (ready && len == 0)
    cf_fail("btc-send-ready-empty", BTC_SYSTEM, CF_SITE("btc.B1"),
            "client %lld: m_send_mutex released with m_send_ready set and an empty send buffer",
            (long long)c->m_id);
}

void chk_btc_send_failed(HTTPRemoteClient *c) {
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  if (g) g->send_failed = true;
  cf_checker_leave();
}

void chk_btc_reply_begin(HTTPRemoteClient *c, bool dispatched) {
  (void)dispatched;
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  if (g) g->replying++;
  cf_checker_leave();
}

void chk_btc_reply_end(HTTPRemoteClient *c, bool dispatched) {
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  if (g) {
    g->replying--;
    if (dispatched) g->at_worker--;
  }
  cf_checker_leave();
}

void chk_btc_dispatch(HTTPRemoteClient *c, const HTTPRequest *req) {
  cf_checker_enter();
  ghost_t *g = ghost_of(c);
  int busy = g ? g->at_worker : 0;
  uint64_t earlier = g ? g->at_worker_serial : 0;
  if (g && !busy) {
    g->at_worker = 1;
    g->at_worker_serial = req->serial;
  }
  cf_checker_leave();
  if (busy)
    cf_fail("btc-one-at-a-time", BTC_SYSTEM, CF_SITE("btc.B4"),
            "client %lld: request %llu dispatched while its request %llu is still at a worker",
            (long long)c->m_id, (unsigned long long)req->serial, (unsigned long long)earlier);
}

void chk_btc_iteration(HTTPServer *s) {
  if (!cf_in_sim()) return;
  cf_checker_enter();
  for (int i = 0; i < s->n_connected; i++) {
    HTTPRemoteClient *c = s->m_connected[i];
    ghost_t *g = ghost_of(c);
    if (!g || g->replying || g->send_failed) continue;
    bool ready = peek(&c->m_send_ready) != 0;
    size_t len = c->m_send_len;
    if (len > 0 && !ready) {
      cf_checker_leave();
      cf_fail("btc-send-flag", BTC_SYSTEM, CF_SITE("btc.B2 stranded"),
              "client %lld: reply stranded: %zu bytes buffered, m_send_ready false, nobody "
              "replying: the I/O thread only polls it for RECV", (long long)c->m_id, len);
    }
    if (len == 0 && ready) {
      cf_checker_leave();
      cf_fail("btc-send-flag", BTC_SYSTEM, CF_SITE("btc.B2 nothing to send"),
              "client %lld: m_send_ready set with an empty send buffer and nobody replying: "
              "the I/O thread polls it for SEND only", (long long)c->m_id);
    }
    /* B3 (the same state, counted over iterations, also while a reply is being written). */
    g->empty_send_polls = (ready && len == 0) ? g->empty_send_polls + 1 : 0;
    if (g->empty_send_polls > WEDGE_ITERATIONS) {
      cf_checker_leave();
      cf_fail("btc-wedged", BTC_SYSTEM, CF_SITE("btc.B3"),
              "client %lld: polled for SEND with nothing to send for %d iterations",
              (long long)c->m_id, g->empty_send_polls);
    }
  }
  cf_checker_leave();
}

void chk_btc_wait_sockets(HTTPServer *s) {
  cf_checker_enter();
  int expect = s->n_connected + (s->m_listen >= 0);
  bool ok = s->io_count == expect;
  for (int i = 0; ok && i < s->io_count; i++) {
    const btc_wait_sock_t *w = &s->io_socks[i];
    if (!w->client)
      ok = i == 0 && w->requested == SOCK_RECV;
    else
      ok = (w->requested == SOCK_RECV || w->requested == SOCK_SEND) &&
           s->io_fds[i].fd == w->client->m_sock;
  }
  cf_checker_leave();
  if (!ok)
    cf_fail("btc-wait-sockets", BTC_SYSTEM, CF_SITE("btc.B5"),
            "GenerateWaitSockets: %d sockets for %d clients, or a client not asked for exactly "
            "one of SEND and RECV", s->io_count, s->n_connected);
}

void chk_btc_quiescent(HTTPServer *s) {
  (void)s;
  int live = chk.nlive;
  free(chk.g);
  chk.g = NULL;
  chk.used = chk.cap = 0;
  if (live)
    cf_fail("leak", BTC_SYSTEM, CF_SITE("btc.leak"),
            "%d HTTPRemoteClient(s) (and their sockets) left after the server stopped", live);
}
