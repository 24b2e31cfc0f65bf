/* bun_world.c: one simulated run of Bun's server copy: a kernel, a listening socket, the VM's
 * loop thread serving it (Bun.serve), the script that may stop the server, drop its reference
 * and force a GC, and the churn clients. Nothing joins anyone: a client still waiting for an
 * answer at quiescence is an open obligation (liveness@response), and so is a stop() promise
 * that never resolved (liveness@stop() resolves). Workload layout in fuzzers/fuzz_bun_server.c. */
#include <string.h>

#include "bun_server.h"

#define PORT 3000

typedef struct world {
  ks_kernel_t *k;
  bun_config_t cfg;
  bun_script_t script;
  bool faults;
  http_workload_t wl;
  VirtualMachine *vm;
} world_t;

static void decode(world_t *wd) {
  static const bun_handler_mode_t modes[4] = {BUN_HANDLER_SYNC, BUN_HANDLER_ASYNC,
                                              BUN_HANDLER_EITHER, BUN_HANDLER_EITHER};
  uint32_t b = cf_workload_byte();
  bun_config_t *c = &wd->cfg;
  bun_config_default(c);
  c->handler = modes[b & 3];
  c->routes = (b >> 2) & 1;
  c->bake = (b >> 3) & 1;
  wd->faults = (b >> 4) & 1;
  c->idle_timeout = (b >> 5) & 1 ? 10000 : 2000; /* 10 s (Bun's default) or 2 s of virtual time */
  /* Below what the churn client's oversized requests carry, so they meet 431 and 413. */
  c->max_head = 2048;
  c->max_body = 64 * 1024;
  uint32_t sb = cf_workload_byte();
  wd->script.nsteps = (int)(sb & 3);
  for (int i = 0; i < wd->script.nsteps; i++) {
    uint32_t st = cf_workload_byte();
    wd->script.step[i] = (bun_step_t){(uint8_t)(st & 3), (st >> 2) & 7, (uint8_t)(st >> 5)};
  }
  http_workload_decode(&wd->wl);
}

static void quiescent(void *vm) { chk_bun_quiescent(vm); }

void bun_world_main(void *arg) {
  (void)arg;
  world_t *wd = cf_sim_alloc(sizeof *wd);
  decode(wd);
  int listener;
  wd->k = http_world_kernel(NULL, PORT, BUN_SYSTEM, &listener);
  ks_kernel_t *k = wd->k;
  /* The server tells the clients of its stop and of the connections it drops. */
  wd->cfg.clients = http_clients_new(k, PORT, &wd->wl, BUN_SYSTEM);
  wd->cfg.script = &wd->script;
  wd->vm = bun_start(k, &wd->cfg, listener);
  http_world_faults(wd->faults, false);
  http_clients_run(wd->cfg.clients);
  bun_script_start(wd->vm);
  cf_on_quiescence(quiescent, wd->vm);
}
