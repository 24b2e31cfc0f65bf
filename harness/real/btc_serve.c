/* btc_serve.c: the Bitcoin Core HTTPServer copy (harness/btc_http/) as a real HTTP server on
 * 127.0.0.1, on pthreads (platform_real.c) and Linux (kernel_real.c), so real clients (curl,
 * wrk, a browser) can drive it: `churn serve btc`, and the server `churn test` checks.
 *
 * Usage: btc-serve [--port N] [--workers N] [--timeout S] [--max-head N] [--max-body N] [-v]
 * (toggles from CHURN_BUGS)
 * Prints `btc-serve: listening on 127.0.0.1:PORT`, serves until SIGINT or SIGTERM, then shuts
 * the server down the way the copy does (the workers drain their queue, every client is
 * disconnected once idle, the I/O thread stops), prints the requests served and exits 0. A
 * bad option or a port it cannot have: one line on stderr, exit status 2. An oracle of the
 * copy or a sanitizer that fires aborts, as in the stress tests. */
#include <stdio.h>
#include <string.h>

#include "btc_http.h"
#include "cf.h"
#include "kernel.h"
#include "serve.h"

void cf_real_end_run(void);

#define PROG "btc-serve"

static void usage(FILE *to) {
  fprintf(to,
          "usage: " PROG " [--port N] [--workers N] [--timeout S] [--max-head N] [--max-body N] [-v]\n"
          "Runs the Bitcoin Core HTTPServer copy (harness/btc_http/) as a real server on\n"
          "127.0.0.1 until SIGINT or SIGTERM. Every request on any path is answered 200 with a\n"
          "short body naming it (/big/ paths: a few kilobytes).\n"
          "  --port N      port to listen on, 0 for any free one (default 8332)\n"
          "  --workers N   worker threads (-rpcthreads), 1..%d (default %d)\n"
          "  --timeout S   idle seconds before a client is disconnected (-rpcservertimeout,\n"
          "                default 30)\n"
          "  --max-head N  request head bytes before 431 (MAX_HEADERS_SIZE, default 8192)\n"
          "  --max-body N  request body bytes before 413 (default 1048576)\n"
          "  -v            one line on stderr per connection event\n"
          "Bug toggles come from CHURN_BUGS (see `churn bugs`). Exit status: 0 after a signal,\n"
          "2 on a bad option or a port that cannot be had.\n",
          BTC_MAX_WORKERS, BTC_MAX_WORKERS);
}

int main(int argc, char **argv) {
  long port = 8332, workers = BTC_MAX_WORKERS, timeout = 30, max_head = 8192, max_body = 1 << 20;
  bool verbose = false;
  serve_prog = PROG;
  const serve_option_t opts[] = {
      SERVE_NUMBER("--port", &port, 0, 65535),
      SERVE_NUMBER("--workers", &workers, 1, BTC_MAX_WORKERS),
      SERVE_NUMBER("--timeout", &timeout, 1, 86400),
      SERVE_NUMBER("--max-head", &max_head, 64, BTC_RECV_CAPACITY - 1),
      SERVE_NUMBER("--max-body", &max_body, 0, 1L << 30),
      SERVE_FLAG("-v", &verbose),
      SERVE_END,
  };
  serve_parse(argc, argv, opts, usage);
  cf_bugs_from_env();
  serve_block_signals();

  btc_config_t cfg;
  btc_config_default(&cfg);
  cfg.rpc_threads = (int)workers;
  cfg.rpcservertimeout = timeout * 1000; /* ticks are milliseconds on the real backend */
  cfg.max_headers_size = (uint32_t)max_head;
  cfg.max_body_size = (uint32_t)max_body;
  if (verbose) cfg.log = serve_log_line;

  ks_kernel_t *k = ks_kernel_new(NULL);
  int fd = serve_listen(k, port, 128);
  HTTPServer *s = btc_server_start(k, &cfg, fd);
  serve_announce(k, fd);
  const char *sig = serve_wait_signal(verbose);
  btc_server_stop(s); /* closes the listener */
  unsigned long long served = (unsigned long long)btc_server_requests(s);
  cf_real_end_run(); /* the server's memory, as at the end of a simulated run */
  ks_kernel_free(k);
  printf(PROG ": stopped after %s, %llu requests served\n", sig, served);
  return 0;
}
