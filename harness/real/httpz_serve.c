/* httpz_serve.c: the http.zig copy (harness/httpz/) as a real HTTP server on 127.0.0.1, on
 * pthreads (platform_real.c) and Linux (kernel_real.c), so real clients (curl, wrk, a browser)
 * can drive it: `churn serve httpz`, and the server `churn test` checks.
 *
 * Usage: httpz-serve [--port N] [--workers N] [--max-conn N] [-v]   (toggles from CHURN_BUGS)
 * Prints `httpz-serve: listening on 127.0.0.1:PORT` once it accepts (PORT is the one the
 * kernel picked for --port 0), then serves until SIGINT or SIGTERM, stops the worker, prints
 * the requests served and exits 0. A bad option or a port it cannot have: one line on stderr,
 * exit status 2. An oracle of the copy or a sanitizer that fires aborts, as in the stress
 * tests. */
#include <stdio.h>
#include <string.h>

#include "cf.h"
#include "httpz.h"
#include "kernel.h"
#include "serve.h"

void cf_real_end_run(void);

#define PROG "httpz-serve"

static void usage(FILE *to) {
  fprintf(to,
          "usage: " PROG " [--port N] [--workers N] [--max-conn N] [-v]\n"
          "Runs the http.zig NonBlocking worker copy (harness/httpz/) as a real server on\n"
          "127.0.0.1 until SIGINT or SIGTERM. Every request on any path is answered 200 with a\n"
          "short body naming it.\n"
          "  --port N      port to listen on, 0 for any free one (default 8080)\n"
          "  --workers N   thread pool threads, 1..%d (default 2)\n"
          "  --max-conn N  connections served at once, 1..65536 (default 64)\n"
          "  -v            one line on stderr per connection event\n"
          "Bug toggles come from CHURN_BUGS (see `churn bugs`). Exit status: 0 after a signal,\n"
          "1 when the server could not start, 2 on a bad option or a port that cannot be had.\n",
          TP_MAX_THREADS);
}

int main(int argc, char **argv) {
  long port = 8080, workers = 2, max_conn = 64;
  bool verbose = false;
  serve_prog = PROG;
  const serve_option_t opts[] = {
      SERVE_NUMBER("--port", &port, 0, 65535),
      SERVE_NUMBER("--workers", &workers, 1, TP_MAX_THREADS),
      SERVE_NUMBER("--max-conn", &max_conn, 1, 65536),
      SERVE_FLAG("-v", &verbose),
      SERVE_END,
  };
  serve_parse(argc, argv, opts, usage);
  cf_bugs_from_env();

  serve_block_signals();

  httpz_config_t cfg;
  httpz_config_default(&cfg);
  cfg.thread_pool_count = (int)workers;
  cfg.max_conn = (uint32_t)max_conn;
  /* Preallocating more than may ever be used is what http.zig avoids too (min of the two). */
  if (cfg.min_conn > cfg.max_conn) cfg.min_conn = cfg.max_conn;
  if (verbose) cfg.log = serve_log_line;

  ks_kernel_t *k = ks_kernel_new(NULL);
  int fd = serve_listen(k, port, 128);
  Worker *w = httpz_server_start(k, &cfg, fd);
  if (!w) {
    fprintf(stderr, PROG ": the worker did not start (its epoll or eventfds)\n");
    cf_real_end_run();
    ks_kernel_free(k);
    return 1;
  }
  serve_announce(k, fd);
  const char *sig = serve_wait_signal(verbose);
  httpz_server_stop(w);
  unsigned long long served = (unsigned long long)httpz_server_requests(w);
  cf_real_end_run(); /* the worker's memory (cf_sim_alloc), as at the end of a simulated run */
  ks_close(k, fd);
  ks_kernel_free(k);
  printf(PROG ": stopped after %s, %llu requests served\n", sig, served);
  return 0;
}
