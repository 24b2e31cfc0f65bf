/* stress.c: see stress.h. */
#include "stress.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf.h"

void cf_real_end_run(void);

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char hang_msg[160];

static void on_alarm(int sig) {
  (void)sig;
  ssize_t n = write(2, hang_msg, strlen(hang_msg));
  (void)n;
  _exit(3);
}

int stress_main(const stress_test_t *t, int argc, char **argv) {
  double limit = 10;
  long max_rounds = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      limit = atof(argv[++i]);
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      max_rounds = atol(argv[++i]);
    } else {
      printf("usage: %s [--seconds S] [--rounds N]\n%s"
             "Runs until S seconds (default 10) or N rounds pass. Toggles come from CHURN_BUGS.\n"
             "A failure aborts (non-zero exit); 0 means no hit.\n",
             argv[0], t->about);
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  cf_bugs_from_env();
  signal(SIGPIPE, SIG_IGN);
  snprintf(hang_msg, sizeof hang_msg, "%s: a round did not finish in %u s (hang)\n", t->name,
           t->round_timeout);
  signal(SIGALRM, on_alarm);
  double t0 = seconds(), next_report = t0 + 10;
  long rounds = 0;
  while ((max_rounds == 0 || rounds < max_rounds) && seconds() - t0 < limit) {
    alarm(t->round_timeout);
    t->round(t->arg);
    alarm(0);
    cf_real_end_run();
    rounds++;
    if (seconds() >= next_report) {
      printf("%s: %.0fs: %ld rounds (%ld %s), no failure yet\n", t->name, seconds() - t0,
             rounds, rounds * t->units_per_round, t->unit);
      fflush(stdout);
      next_report += 10;
    }
  }
  printf("%s: %ld rounds (%ld %s) in %.1fs, no failure\n", t->name, rounds,
         rounds * t->units_per_round, t->unit, seconds() - t0);
  return 0;
}
