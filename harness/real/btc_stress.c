/* btc_stress.c: the Bitcoin Core HTTPServer copy on real threads and loopback TCP, shaped like
 * upstream's own test of #35614 (http_socket_error_tests: a keep-alive client whose requests
 * arrive together over a socket that cannot take a reply at once): rounds of four clients
 * reconnecting with pipelined bursts of big and small requests over small socket buffers, so
 * replies leave in pieces from the workers' optimistic sends and from the I/O thread. The OS
 * decides the interleaving; this is the baseline the simulated scheduler is measured against.
 * The copy's oracles that need no global view (B1, B4; harness/btc_http/checker.c) and the
 * client's (harness/http/client.c) run as in simulation. A wedged or stranded client shows as
 * a request dropped at the idle timeout (2 s here); a round that does not finish in 20 s as a
 * hang.
 *
 * Usage: btc-stress [--seconds S] [--rounds N]   (toggles from CHURN_BUGS; default 10 s)
 * A failure (an oracle, ASan, a hang) aborts the process, so the exit status says whether a
 * bug was hit: 0 not hit, anything else hit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btc_http.h"
#include "cf.h"
#include "stress.h"

/* Keep-alive bursts (the #35614 shape), a half-close after a burst, a close reply with
 * requests behind it, and a bad request behind a good one. No stalls or lingering: those only
 * wait for the idle timeout. */
static void workload(http_workload_t *wl) {
#define REQ(m, p, ...) {.method = (m), .path = (p), __VA_ARGS__}
  static const http_cconn_t shapes[4] = {
      {.nreq = 4, .end = HTTP_END_CLOSE,
       .req = {REQ(HTTP_CM_GET, HTTP_PATH_BIG), REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .pipelined = true),
               REQ(HTTP_CM_POST, HTTP_PATH_BIG, .pipelined = true),
               REQ(HTTP_CM_GET, HTTP_PATH_ECHO)}},
      {.nreq = 3, .end = HTTP_END_HALF_CLOSE,
       .req = {REQ(HTTP_CM_GET, HTTP_PATH_ECHO), REQ(HTTP_CM_GET, HTTP_PATH_BIG, .pipelined = true),
               REQ(HTTP_CM_POST_CHUNKED, HTTP_PATH_ECHO, .pipelined = true)}},
      {.nreq = 3, .end = HTTP_END_CLOSE,
       .req = {REQ(HTTP_CM_GET, HTTP_PATH_BIG), REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .pipelined = true, .close = true),
               REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .pipelined = true)}},
      {.nreq = 2, .end = HTTP_END_CLOSE,
       .req = {REQ(HTTP_CM_POST, HTTP_PATH_ECHO),
               REQ(HTTP_CM_BAD, HTTP_BAD_SYNTAX, .pipelined = true)}},
  };
#undef REQ
  memset(wl, 0, sizeof *wl);
  wl->nclients = HTTP_MAX_CLIENTS;
  for (int c = 0; c < wl->nclients; c++) {
    wl->nconn[c] = HTTP_MAX_CONNS;
    for (int i = 0; i < HTTP_MAX_CONNS; i++) wl->conn[c][i] = shapes[(c + i) % 4];
  }
}

typedef struct stress {
  btc_config_t cfg;
  http_workload_t wl;
} stress_t;

static void round_once(const stress_t *st) {
  ks_config_t kc;
  ks_config_default(&kc);
  kc.sock_buf_bytes = 4096;
  ks_kernel_t *k = ks_kernel_new(&kc);
  int l = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l < 0 || ks_bind(k, l, 0) < 0 || ks_listen(k, l, 64) < 0) {
    fprintf(stderr, "btc-stress: cannot listen on loopback\n");
    exit(2);
  }
  int port = ks_getsockport(k, l);
  HTTPServer *s = btc_server_start(k, &st->cfg, l);
  http_clients_t *clients = http_clients_start(k, (uint16_t)port, &st->wl, BTC_SYSTEM);
  http_clients_join(clients);
  btc_server_stop(s); /* drains, then closes the listener */
  chk_btc_quiescent(s);
  ks_kernel_free(k);
}

static void round_once_cb(void *arg) { round_once(arg); }

int main(int argc, char **argv) {
  static stress_t st;
  btc_config_default(&st.cfg);
  st.cfg.rpc_threads = 2;
  st.cfg.rpcservertimeout = 2000;
  st.cfg.max_headers_size = 2048; /* as the fuzz target: the client's oversized heads meet 431 */
  st.cfg.max_body_size = 64 * 1024;
  workload(&st.wl);
  const stress_test_t t = {
      .name = "btc-stress",
      .about = "Runs the Bitcoin Core HTTPServer copy on pthreads and loopback sockets: 4 clients\n"
               "with pipelined bursts over small socket buffers, 2 workers.\n",
      .unit = "connections",
      .units_per_round = HTTP_MAX_CLIENTS * HTTP_MAX_CONNS,
      .round = round_once_cb,
      .arg = &st,
      .round_timeout = 20,
  };
  return stress_main(&t, argc, argv);
}
