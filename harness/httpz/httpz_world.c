/* httpz_world.c: one simulated run of the http.zig copy: a kernel, a listening socket, the
 * Worker (loop thread, pool threads, the streaming thread), the churn clients, and an app
 * thread that forks children. A child holds every descriptor the server had open until it
 * execs: that is how a socket the server closed keeps its description, and so its epoll item,
 * alive (epoll(7): an item goes when the last reference to the description goes), the window
 * behind #120. Workload layout in fuzzers/fuzz_httpz_worker.c. */
#include <string.h>

#include "httpz.h"

#define PORT 8080
#define MAX_FORKS 3

typedef struct app_fork {
  uint8_t yields_before, yields_held;
} app_fork_t;

typedef struct world {
  ks_kernel_t *k;
  httpz_config_t cfg;
  Worker *w;
  int listener;
  bool faults;
  int nforks;
  app_fork_t fork[MAX_FORKS];
  http_workload_t wl;
  cf_thread_t app;
} world_t;

static void decode(world_t *wd) {
  uint32_t b = cf_workload_byte();
  httpz_config_t *c = &wd->cfg;
  httpz_config_default(c);
  static const uint32_t max_requests[4] = {100, 2, 3, 5};
  c->max_conn = 1 + (b & 3);
  c->thread_pool_count = 1 + (int)((b >> 2) & 1);
  c->min_conn = 1 + ((b >> 3) & 1);
  c->max_request_per_connection = max_requests[(b >> 4) & 3];
  c->timeout_request = 2;
  c->timeout_keepalive = 3;
  wd->faults = (b >> 6) & 1;
  uint32_t f = cf_workload_byte();
  wd->nforks = (int)(f & 3);
  for (int i = 0; i < wd->nforks; i++) {
    uint32_t y = cf_workload_byte();
    wd->fork[i] = (app_fork_t){(uint8_t)(y & 15), (uint8_t)(2 * (y >> 4))};
  }
  http_workload_decode(&wd->wl);
}

void httpz_server_fds(Worker *w, uint8_t *set) {
  memset(set, 0, KS_NFD / 8);
  int own[] = {w->listener, w->loop.fd, w->loop.event_fd, w->loop.close_fd};
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    if (own[i] >= 0 && own[i] < KS_NFD) set[own[i] / 8] |= 1u << (own[i] % 8);
  for (int fd = 0; fd < KS_NFD; fd++)
    if (chk_httpz_holds_fd(w, fd)) set[fd / 8] |= 1u << (fd % 8);
}

static void app_main(void *arg) {
  world_t *wd = arg;
  for (int i = 0; i < wd->nforks; i++) {
    for (int y = 0; y < wd->fork[i].yields_before; y++) cf_yield("app.before-fork");
    uint8_t set[KS_NFD / 8];
    httpz_server_fds(wd->w, set);
    ks_fork_t *child = ks_fork(wd->k, set);
    cf_note(CF_SITE("app.fork"), "fork %d holds the server's descriptors", i);
    for (int y = 0; y < wd->fork[i].yields_held; y++) cf_yield("app.child-running");
    ks_fork_exec(wd->k, child);
  }
}

static void quiescent(void *w) { chk_httpz_quiescent(w); }

void httpz_world_main(void *arg) {
  (void)arg;
  world_t *wd = cf_sim_alloc(sizeof *wd);
  decode(wd);
  wd->k = http_world_kernel(NULL, PORT, HTTPZ_SYSTEM, &wd->listener);
  ks_kernel_t *k = wd->k;
  /* The server reads cfg.clients (to learn of dropped connections) from its start on. */
  wd->cfg.clients = http_clients_new(k, PORT, &wd->wl, HTTPZ_SYSTEM);
  wd->w = httpz_server_start(k, &wd->cfg, wd->listener);
  if (!wd->w) cf_fail("harness", HTTPZ_SYSTEM, CF_SITE("world.start"), "the worker did not start");
  http_world_faults(wd->faults, true);
  http_clients_run(wd->cfg.clients);
  cf_thread_spawn(&wd->app, app_main, wd, "app");
  /* Nobody joins the clients: a client waiting forever for an answer then shows as an open
   * obligation at quiescence (liveness@response), not as main's join deadlocking. */
  cf_on_quiescence(quiescent, wd->w);
}
