/* stress.h: the command line and round loop the real-threads stress tests share.
 *
 * A stress test runs rounds of a copy on pthreads until --seconds S (default 10) or --rounds N,
 * reporting every 10 s; toggles come from CHURN_BUGS. A failure (an oracle, a sanitizer, a round
 * over its time limit) ends the process with a non-zero status, so the exit status says whether
 * a bug was hit: 0 not hit. SIGPIPE is ignored (the copies send with MSG_NOSIGNAL; a client
 * might not). */
#ifndef CF_STRESS_H
#define CF_STRESS_H

typedef struct stress_test {
  const char *name;     /* "tls-stress": the prefix of every line */
  const char *about;    /* what a round is, for --help (lines end with \n) */
  const char *unit;     /* what rounds are counted in ("fetches") */
  long units_per_round;
  void (*round)(void *arg);
  void *arg;
  /* Seconds a round may take before the process exits 3 as hung (0: no limit). */
  unsigned round_timeout;
} stress_test_t;

int stress_main(const stress_test_t *t, int argc, char **argv);

#endif
