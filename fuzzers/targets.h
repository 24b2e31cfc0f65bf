/* targets.h: every registered fuzz target (fuzzers/targets.def), for code that iterates over
 * all of them, such as the determinism self-test. */
#ifndef CF_TARGETS_H
#define CF_TARGETS_H

#include "run.h"

#define CF_TARGET(name) extern const cf_target_t name##_target;
#include "targets.def"
#undef CF_TARGET

/* NULL-terminated. */
extern const cf_target_t *const cf_all_targets[];

#endif
