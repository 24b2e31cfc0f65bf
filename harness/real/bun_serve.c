/* bun_serve.c: Bun's server copy (harness/bun_server/) as a real HTTP server on 127.0.0.1, on
 * pthreads (platform_real.c) and Linux (kernel_real.c): `churn serve bun`, and the server
 * `churn test` checks. One loop thread serves, as Bun's JS thread does; the driver plays the
 * script: after --stop-after N responses (or on SIGINT/SIGTERM) it calls server.stop(), drops its
 * reference and forces a GC, so the wrapper is finalized, and the server frees itself once every
 * pending request is answered (App.close closes the keep-alive connections left). The process
 * exits when the loop has nothing left.
 *
 * Usage: bun-serve [--port N] [--idle-timeout S] [--stop-after N] [--max-head N] [--max-body N]
 *        [-v]   (toggles from CHURN_BUGS)
 * Prints `bun-serve: listening on 127.0.0.1:PORT`, serves, stops as above, prints the requests
 * served and exits 0. A bad option or a port it cannot have: one line on stderr, exit status 2.
 * An oracle of the copy or a sanitizer that fires aborts, as in the stress tests. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bun_server.h"
#include "cf.h"
#include "kernel.h"
#include "serve.h"

void cf_real_end_run(void);

#define PROG "bun-serve"

static void usage(FILE *to) {
  fprintf(to,
          "usage: " PROG " [--port N] [--idle-timeout S] [--stop-after N] [--max-head N] [--max-body N] [-v]\n"
          "Runs Bun's server copy (harness/bun_server/) as a real server on 127.0.0.1. Every\n"
          "request on any path is answered 200 with a short body naming it (/big/ paths, a\n"
          "`routes` entry: a few kilobytes). It stops like a script that calls server.stop(),\n"
          "drops the server and runs Bun.gc(true): new connections are refused, requests on\n"
          "kept-alive connections are answered or refused with 503 + close, and the process exits\n"
          "once the server has drained and freed itself.\n"
          "  --port N          port to listen on, 0 for any free one (default 3000)\n"
          "  --idle-timeout S  seconds before an idle connection is closed (idleTimeout,\n"
          "                    default 10)\n"
          "  --stop-after N    stop after N responses (default: only on SIGINT or SIGTERM)\n"
          "  --max-head N      request head bytes before 431 (default 8192)\n"
          "  --max-body N      request body bytes before 413 (default 1048576)\n"
          "  -v                one line on stderr per connection event\n"
          "Bug toggles come from CHURN_BUGS (see `churn bugs`). Exit status: 0 once stopped and\n"
          "drained, 2 on a bad option or a port that cannot be had.\n");
}

/* Wait for SIGINT/SIGTERM or for the server to be gone (it stopped itself): the signal's name,
 * or NULL. */
static const char *wait_signal_or_gone(VirtualMachine *vm, bool verbose) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  struct timespec tick = {0, 100 * 1000 * 1000};
  while (!bun_server_gone(vm)) {
    int sig = sigtimedwait(&set, NULL, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      if (verbose) fprintf(stderr, "%s: %s: stopping\n", PROG, strsignal(sig));
      return sig == SIGINT ? "SIGINT" : "SIGTERM";
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  long port = 3000, idle = 10, stop_after = 0, max_head = 8192, max_body = 1 << 20;
  bool verbose = false;
  serve_prog = PROG;
  const serve_option_t opts[] = {
      SERVE_NUMBER("--port", &port, 0, 65535),
      SERVE_NUMBER("--idle-timeout", &idle, 1, 255), /* idleTimeout is at most 255 s */
      SERVE_NUMBER("--stop-after", &stop_after, 1, 1000000000),
      SERVE_NUMBER("--max-head", &max_head, 64, BUN_RECV_BUF - 1),
      SERVE_NUMBER("--max-body", &max_body, 0, 1L << 30),
      SERVE_FLAG("-v", &verbose),
      SERVE_END,
  };
  serve_parse(argc, argv, opts, usage);
  cf_bugs_from_env();
  serve_block_signals();

  bun_config_t cfg;
  bun_config_default(&cfg);
  cfg.idle_timeout = idle * 1000; /* ticks are milliseconds on the real backend */
  cfg.max_head = (uint32_t)max_head;
  cfg.max_body = (uint32_t)max_body;
  cfg.exit_when_done = true;
  if (verbose) cfg.log = serve_log_line;

  static bun_script_t script;
  if (stop_after > 0) {
    script.nsteps = 3;
    script.step[0] = (bun_step_t){BUN_STOP, (uint32_t)stop_after, 0};
    script.step[1] = (bun_step_t){BUN_DROP_REF, (uint32_t)stop_after, 0};
    script.step[2] = (bun_step_t){BUN_GC, (uint32_t)stop_after, 0};
    cfg.script = &script;
  }

  ks_kernel_t *k = ks_kernel_new(NULL);
  int fd = serve_listen(k, port, 128);
  VirtualMachine *vm = bun_start(k, &cfg, fd);
  bun_script_start(vm);
  serve_announce(k, fd);
  const char *sig = wait_signal_or_gone(vm, verbose);
  if (sig) {
    bun_script_post(vm, BUN_STOP);
    bun_script_post(vm, BUN_DROP_REF);
    bun_script_post(vm, BUN_GC);
  }
  bun_join(vm); /* the loop returns once the server freed itself */
  unsigned long long served = (unsigned long long)bun_responses(vm);
  char why[64];
  if (sig)
    snprintf(why, sizeof why, "%s", sig);
  else
    snprintf(why, sizeof why, "%ld responses", stop_after);
  cf_real_end_run(); /* the server's memory, as at the end of a simulated run */
  ks_kernel_free(k);
  printf(PROG ": stopped after %s, %llu requests served\n", why, served);
  return 0;
}
