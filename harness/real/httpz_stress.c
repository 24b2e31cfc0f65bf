/* httpz_stress.c: the http.zig copy on real threads and the real kernel, under the churn the
 * fuzz target drives, shaped like an upstream stress test: rounds of four clients reconnecting
 * against max_conn 2 with keep-alive, "Connection: close", pipelined, split, hand-off and bad
 * requests, while an app thread forks children that hold the server's sockets for a moment.
 * The OS decides the interleaving; this is the baseline the simulated scheduler is measured
 * against. The copy's oracles (harness/httpz/checker.c) and the client's (harness/http/
 * client.c) run as in simulation; a round that does not finish within 20 s counts as a hang.
 *
 * Usage: httpz-stress [--seconds S] [--rounds N]   (toggles from CHURN_BUGS; default 10 s)
 * A failure (an oracle, ASan, a hang) aborts the process, so the exit status says whether a
 * bug was hit: 0 not hit, anything else hit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf.h"
#include "httpz.h"
#include "stress.h"

/* Every connection shape the client knows but stalls and lingers (those wait for timeouts). */
static void workload(http_workload_t *wl) {
#define REQ(m, p, ...) {.method = (m), .path = (p), __VA_ARGS__}
  static const http_cconn_t shapes[4] = {
      {.nreq = 2, .end = HTTP_END_CLOSE,
       .req = {REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .close = false),
               REQ(HTTP_CM_POST, HTTP_PATH_ECHO, .close = true)}},
      {.nreq = 3, .end = HTTP_END_CLOSE,
       .req = {REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .close = false),
               REQ(HTTP_CM_GET, HTTP_PATH_BIG, .split = true),
               REQ(HTTP_CM_GET, HTTP_PATH_HANDOFF, .close = false)}},
      {.nreq = 3, .end = HTTP_END_HALF_CLOSE,
       .req = {REQ(HTTP_CM_POST_CHUNKED, HTTP_PATH_ECHO, .close = false),
               REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .pipelined = true),
               REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .pipelined = true)}},
      {.nreq = 2, .end = HTTP_END_CLOSE,
       .req = {REQ(HTTP_CM_GET, HTTP_PATH_ECHO, .http10 = true),
               REQ(HTTP_CM_BAD, HTTP_BAD_SYNTAX, .close = false)}},
  };
#undef REQ
  memset(wl, 0, sizeof *wl);
  wl->nclients = HTTP_MAX_CLIENTS;
  for (int c = 0; c < wl->nclients; c++) {
    wl->nconn[c] = HTTP_MAX_CONNS;
    for (int i = 0; i < HTTP_MAX_CONNS; i++) wl->conn[c][i] = shapes[(c + i) % 4];
  }
}

typedef struct app {
  ks_kernel_t *k;
  Worker *w;
  cf_atomic_t stop;
  cf_thread_t thread;
} app_t;

/* The app forks a child now and then; it holds the server's descriptors for a millisecond. */
static void app_main(void *arg) {
  app_t *a = arg;
  while (!cf_atomic_load(&a->stop)) {
    uint8_t set[KS_NFD / 8];
    httpz_server_fds(a->w, set);
    ks_fork_t *child = ks_fork(a->k, set);
    cf_sleep(1);
    ks_fork_exec(a->k, child);
    cf_sleep(2);
  }
}

static void round_once(const httpz_config_t *base, const http_workload_t *wl) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  httpz_config_t *cfg = cf_sim_alloc(sizeof *cfg);
  *cfg = *base;
  int l = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l < 0 || ks_bind(k, l, 0) < 0 || ks_listen(k, l, 64) < 0) {
    fprintf(stderr, "httpz-stress: cannot listen on loopback\n");
    exit(2);
  }
  int port = ks_getsockport(k, l);
  cfg->clients = http_clients_new(k, (uint16_t)port, wl, HTTPZ_SYSTEM);
  Worker *w = httpz_server_start(k, cfg, l);
  if (!w) {
    fprintf(stderr, "httpz-stress: the worker did not start\n");
    exit(2);
  }
  app_t *a = cf_sim_alloc(sizeof *a);
  a->k = k;
  a->w = w;
  cf_thread_spawn(&a->thread, app_main, a, "app");
  http_clients_run(cfg->clients);
  http_clients_join(cfg->clients);
  cf_atomic_store(&a->stop, 1);
  cf_thread_join(&a->thread);
  /* Every client closed: the server closes its side once it has read the EOFs. The leak
   * checks run once the worker is stopped (its threads joined): until then the loop thread may
   * be between `len -= 1` and the destroy that follows it. */
  for (int i = 0; i < 2000 && httpz_server_len(w) > 0; i++) usleep(1000);
  httpz_server_stop(w);
  chk_httpz_quiescent(w);
  ks_close(k, l);
  ks_kernel_free(k);
}

typedef struct stress {
  httpz_config_t cfg;
  http_workload_t wl;
} stress_t;

static void round_once_cb(void *arg) {
  stress_t *st = arg;
  round_once(&st->cfg, &st->wl);
}

int main(int argc, char **argv) {
  static stress_t st;
  httpz_config_default(&st.cfg);
  st.cfg.max_conn = 2;
  st.cfg.min_conn = 1;
  st.cfg.thread_pool_count = 2;
  st.cfg.max_request_per_connection = 3;
  workload(&st.wl);
  const stress_test_t t = {
      .name = "httpz-stress",
      .about = "Runs the http.zig worker copy on pthreads and loopback sockets under connection\n"
               "churn: 4 clients, max_conn 2, forks holding the server's sockets.\n",
      .unit = "connections",
      .units_per_round = HTTP_MAX_CLIENTS * HTTP_MAX_CONNS,
      .round = round_once_cb,
      .arg = &st,
      .round_timeout = 20,
  };
  return stress_main(&t, argc, argv);
}
