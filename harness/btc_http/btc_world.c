/* btc_world.c: one simulated run of the Bitcoin Core HTTPServer copy: a kernel whose socket
 * buffers may be small (a slow socket that takes a few bytes at a time, as upstream's
 * ErrorSock and fuzz sockets do), a listening socket, the server (I/O thread and workers),
 * the churn clients, and, once every client is done, the shutdown that drains. Workload
 * layout in fuzzers/fuzz_btc_httpserver.c. */
#include "btc_http.h"

#define PORT 8332

typedef struct world {
  ks_kernel_t *k;
  btc_config_t cfg;
  HTTPServer *s;
  bool faults;
  uint32_t sock_buf_bytes;
  http_workload_t wl;
} world_t;

static void decode(world_t *wd) {
  static const uint32_t sock_bufs[4] = {64 * 1024, 8192, 2048, 512};
  uint32_t b = cf_workload_byte();
  btc_config_t *c = &wd->cfg;
  btc_config_default(c);
  c->rpc_threads = 1 + (int)(b & 1);
  wd->sock_buf_bytes = sock_bufs[(b >> 1) & 3];
  wd->faults = (b >> 3) & 1;
  c->rpcservertimeout = 1000 * (1 + (int64_t)((b >> 4) & 1)); /* 1 or 2 s of virtual time */
  /* Below what the churn client's oversized requests carry, so they meet 431 and 413. */
  c->max_headers_size = 2048;
  c->max_body_size = 64 * 1024;
  http_workload_decode(&wd->wl);
}

void btc_world_main(void *arg) {
  (void)arg;
  world_t *wd = cf_sim_alloc(sizeof *wd);
  decode(wd);
  ks_config_t kc;
  ks_config_default(&kc);
  kc.sock_buf_bytes = wd->sock_buf_bytes;
  int listener;
  wd->k = http_world_kernel(&kc, PORT, BTC_SYSTEM, &listener);
  ks_kernel_t *k = wd->k;
  wd->s = btc_server_start(k, &wd->cfg, listener);
  http_world_faults(wd->faults, false);
  http_clients_t *clients = http_clients_start(k, PORT, &wd->wl, BTC_SYSTEM);
  http_clients_join(clients);
  btc_server_stop(wd->s);
  chk_btc_quiescent(wd->s);
}
