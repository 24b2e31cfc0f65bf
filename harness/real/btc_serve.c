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
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--port") == 0) {
      port = serve_number(argc, argv, &i, 0, 65535);
    } else if (strcmp(argv[i], "--workers") == 0) {
      workers = serve_number(argc, argv, &i, 1, BTC_MAX_WORKERS);
    } else if (strcmp(argv[i], "--timeout") == 0) {
      timeout = serve_number(argc, argv, &i, 1, 86400);
    } else if (strcmp(argv[i], "--max-head") == 0) {
      max_head = serve_number(argc, argv, &i, 64, BTC_RECV_CAPACITY - 1);
    } else if (strcmp(argv[i], "--max-body") == 0) {
      max_body = serve_number(argc, argv, &i, 0, 1L << 30);
    } else if (strcmp(argv[i], "-v") == 0) {
      verbose = true;
    } else {
      serve_bad("unknown option %s", argv[i]);
    }
  }
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
