/* serve.c: see serve.h. */
#include "serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *serve_prog = "serve";

void serve_bad(const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s (see %s --help)\n", serve_prog, msg, serve_prog);
  exit(2);
}

/* The value after option argv[*i] as a whole number in [lo, hi], or exit 2. */
static long serve_number(int argc, char **argv, int *i, long lo, long hi) {
  const char *opt = argv[*i];
  if (*i + 1 >= argc) serve_bad("%s needs a value", opt);
  const char *s = argv[++*i];
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    serve_bad("%s: %s is not a whole number in %ld..%ld", opt, s, lo, hi);
  return v;
}

void serve_parse(int argc, char **argv, const serve_option_t *opts, void (*usage)(FILE *to)) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    const serve_option_t *o = opts;
    while (o->name && strcmp(argv[i], o->name) != 0) o++;
    if (!o->name) serve_bad("unknown option %s", argv[i]);
    if (o->value)
      *o->value = serve_number(argc, argv, &i, o->lo, o->hi);
    else
      *o->flag = true;
  }
}

void serve_log_line(void *arg, const char *line) {
  (void)arg;
  fprintf(stderr, "%s: %s\n", serve_prog, line); /* one call per line: stdio keeps lines whole */
}

static sigset_t stop_signals;

void serve_block_signals(void) {
  /* Signals are taken by sigwait only: blocked before any thread exists, so no server thread
   * is ever interrupted (the copies, written for the model, never see EINTR). An inherited
   * SIG_IGN (a background job of a script) would discard them unseen: reset it. */
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
}

const char *serve_wait_signal(bool verbose) {
  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (verbose) fprintf(stderr, "%s: %s: stopping\n", serve_prog, strsignal(sig));
  return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

int serve_listen(ks_kernel_t *k, long port, int backlog) {
  int fd = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rc = fd < 0 ? fd : ks_bind(k, fd, (uint16_t)port);
  if (rc == 0) rc = ks_listen(k, fd, backlog);
  if (rc < 0) {
    fprintf(stderr, "%s: cannot listen on 127.0.0.1:%ld: %s\n", serve_prog, port, strerror(-rc));
    ks_kernel_free(k);
    exit(2);
  }
  return fd;
}

void serve_announce(ks_kernel_t *k, int listener) {
  printf("%s: listening on 127.0.0.1:%d\n", serve_prog, ks_getsockport(k, listener));
  fflush(stdout);
}
