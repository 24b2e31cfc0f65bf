/* targets.c: the array behind cf_all_targets (see fuzzers/targets.def). */
#include "targets.h"

const cf_target_t *const cf_all_targets[] = {
#define CF_TARGET(name) &name##_target,
#include "targets.def"
#undef CF_TARGET
    0};
