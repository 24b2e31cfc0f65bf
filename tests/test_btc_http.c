/* test_btc_http.c: Bitcoin Core HTTPServer copy (harness/btc_http/), HTTPRemoteClient::
 * MaybeSendBytesFromBuffer against the table of upstream's http_send_buffer_tests
 * (RunSendCase): what the buffer, m_send_ready, m_connection_busy, m_disconnect and
 * m_idle_since are after a partial send, a full send with and without keep-alive, EAGAIN, a
 * permanent error, and an empty buffer; and the same EAGAIN case with the #35182 review fix
 * taken out. A socket whose buffer holds 64 bytes makes the partial send and the EAGAIN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btc_http.h"
#include "run.h"
#include "task.h"

static int failed_line;
static const char *failed_what;
#define CHECK(cond)                    \
  do {                                 \
    if (!(cond) && !failed_line) {     \
      failed_line = __LINE__;          \
      failed_what = #cond;             \
    }                                  \
  } while (0)

typedef struct send_case {
  const char *name;
  size_t initial;        /* bytes in the send buffer */
  size_t peer_holds;     /* bytes already waiting in the socket (64 fit) */
  bool peer_closed;
  bool keep_alive;
  /* expected */
  size_t remaining;
  bool ret, ready, busy, disconnect, idle_refreshed;
} send_case_t;

static const send_case_t CASES[] = {
    {"partial", 100, 0, false, true, 36, true, true, true, false, true},
    {"full, keep-alive", 3, 0, false, true, 0, true, false, false, false, true},
    {"full, close", 3, 0, false, false, 0, false, false, false, true, false},
    {"EAGAIN", 3, 64, false, true, 3, true, true, true, false, false},
    {"EPIPE", 3, 0, true, true, 3, false, false, false, true, false},
    {"empty buffer", 0, 0, false, true, 0, true, false, true, false, false},
};

static const send_case_t *current;

static void send_case_main(void *arg) {
  (void)arg;
  const send_case_t *sc = current;
  ks_config_t kc;
  ks_config_default(&kc);
  kc.sock_buf_bytes = 64;
  ks_kernel_t *k = ks_kernel_new(&kc);
  btc_config_t *cfg = cf_sim_alloc(sizeof *cfg);
  btc_config_default(cfg);
  HTTPServer *s = cf_sim_alloc(sizeof *s);
  s->k = k;
  s->cfg = cfg;
  cf_pool_init(&s->client_pool, BTC_SYSTEM, "HTTPRemoteClient", sizeof(HTTPRemoteClient));
  cf_pool_init(&s->request_pool, BTC_SYSTEM, "HTTPRequest", sizeof(HTTPRequest));
  chk_btc_init(s);
  int sv[2];
  CHECK(ks_socketpair(k, AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  char junk[64];
  memset(junk, 'j', sizeof junk);
  if (sc->peer_holds) CHECK(ks_send(k, sv[0], junk, sc->peer_holds, MSG_DONTWAIT) == (ssize_t)sc->peer_holds);
  if (sc->peer_closed) ks_close(k, sv[1]);
  HTTPRemoteClient *c = btc_client_new(s, 0, sv[0]);
  c->m_send_buffer = malloc(128);
  for (size_t i = 0; i < sc->initial; i++) c->m_send_buffer[i] = (uint8_t)('a' + i % 26);
  c->m_send_len = sc->initial;
  c->m_send_cap = 128;
  c->m_keep_alive.v = sc->keep_alive;
  c->m_connection_busy.v = 1;
  cf_sleep(10); /* so that a refreshed m_idle_since differs from the one set at creation */
  uint64_t idle_before = c->m_idle_since.v;
  bool ret = HTTPRemoteClient_MaybeSendBytesFromBuffer(c);
  CHECK(ret == sc->ret);
  CHECK(c->m_send_len == sc->remaining);
  if (sc->remaining && sc->remaining < sc->initial)
    CHECK(c->m_send_buffer[0] == (uint8_t)('a' + (sc->initial - sc->remaining) % 26));
  CHECK((c->m_send_ready.v != 0) == sc->ready);
  CHECK((c->m_connection_busy.v != 0) == sc->busy);
  CHECK((c->m_disconnect.v != 0) == sc->disconnect);
  CHECK((c->m_idle_since.v != idle_before) == sc->idle_refreshed);
  c->m_send_len = 0; /* the test's bytes, not a reply: no B1 at the release below */
  c->m_send_ready.v = 0;
  btc_client_unref(c);
  if (!sc->peer_closed) ks_close(k, sv[1]);
  ks_kernel_free(k);
}

/* quiet: a case expected to fail, so no message. */
static int run_case(const send_case_t *sc, uint64_t bugs, bool quiet) {
  cf_target_t t = {.name = "btc-unit", .system = BTC_SYSTEM, .main = send_case_main};
  t.options.capture = true;
  uint64_t saved = cf_bugs_enabled;
  cf_bugs_enabled = bugs;
  failed_line = 0;
  current = sc;
  cf_result_t res;
  cf_run(&t, NULL, 0, &res);
  cf_bugs_enabled = saved;
  if (res.failed) {
    fprintf(stderr, "  %s: run failed: %s@%s: %s\n", sc->name, res.oracle, res.site, res.detail);
    return 1;
  }
  if (failed_line && !quiet)
    fprintf(stderr, "  %s: check failed at line %d: %s\n", sc->name, failed_line, failed_what);
  return failed_line ? 1 : 0;
}

TEST_IMPL(btc_send_buffer_contract) {
  int bad = 0;
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) bad += run_case(&CASES[i], 0, false);
  ASSERT_EQ(bad, 0);
  return 0;
}

/* Without the #35182 review fix the EAGAIN case keeps neither flag: the reply is stranded. */
TEST_IMPL(btc_send_buffer_eagain_without_review_fix) {
  send_case_t sc = CASES[3];
  sc.ready = false;
  sc.busy = true; /* unchanged from before the call */
  ASSERT_EQ(run_case(&sc, 1ull << CF_BUG_BTC_35182_EAGAIN_NO_FLAG, false), 0);
  sc.ready = true;
  ASSERT_EQ(run_case(&sc, 1ull << CF_BUG_BTC_35182_EAGAIN_NO_FLAG, true), 1); /* the fixed row fails */
  return 0;
}
