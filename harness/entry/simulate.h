/* simulate.h: the replay binary's feedback-free baselines (simulate.c). */
#ifndef CF_SIMULATE_H
#define CF_SIMULATE_H

#include <stdbool.h>

#include "run.h"

/* `--simulate random|pct ...`: see simulate.c. Returns the exit status. */
int cf_simulate_main(int argc, char **argv);

/* Parse "SEED:CP,CP,..." (as `--simulate pct` prints it); false when malformed. */
bool cf_parse_pct_plan(const char *text, cf_pct_plan_t *plan);

#endif
