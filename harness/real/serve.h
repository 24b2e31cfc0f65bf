/* serve.h: what the real servers share (`churn serve NAME`: httpz_serve.c, btc_serve.c,
 * bun_serve.c): their option parsing, the signal handling that stops them, and the listening
 * socket.
 *
 * A server prints `PROG: listening on 127.0.0.1:PORT` once it accepts, serves until SIGINT or
 * SIGTERM, then stops its copy and exits 0. A bad option or a port it cannot have: one line
 * on stderr naming the problem, exit status 2. */
#ifndef CF_SERVE_H
#define CF_SERVE_H

#include <stdbool.h>
#include <stdio.h>

#include "kernel.h"

/* The program name used in every message; set once by main. */
extern const char *serve_prog;

/* Print `PROG: <message> (see PROG --help)` and exit 2. */
__attribute__((noreturn, format(printf, 1, 2))) void serve_bad(const char *fmt, ...);
/* One option of a server: `name` followed by a whole number in [lo, hi] stored in *value, or,
 * with value NULL, a flag that sets *flag. */
typedef struct serve_option {
  const char *name;
  long *value;
  long lo, hi;
  bool *flag;
} serve_option_t;
#define SERVE_NUMBER(opt, var, min, max) {.name = (opt), .value = (var), .lo = (min), .hi = (max)}
#define SERVE_FLAG(opt, var) {.name = (opt), .flag = (var)}
#define SERVE_END {.name = NULL}
/* Parse argv against opts (ended by a NULL name): --help or -h prints usage to stdout and
 * exits 0; an unknown option or a bad value exits 2 with one line naming it. */
void serve_parse(int argc, char **argv, const serve_option_t *opts, void (*usage)(FILE *to));
/* A log callback of the copies' configs: one line on stderr per event. */
void serve_log_line(void *arg, const char *line);
/* Block SIGINT and SIGTERM in every thread to come (call before any thread exists), so only
 * serve_wait_signal sees them. */
void serve_block_signals(void);
/* Wait for SIGINT or SIGTERM; returns its name ("SIGINT"). */
const char *serve_wait_signal(bool verbose);
/* A listening socket on 127.0.0.1:port (0: any free port), non-blocking; exits 2 with a
 * message when the port cannot be had. */
int serve_listen(ks_kernel_t *k, long port, int backlog);
/* Print the listening line (with the port the kernel picked). */
void serve_announce(ks_kernel_t *k, int listener);

#endif
