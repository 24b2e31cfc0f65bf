#ifndef CF_BENCH_H
#define CF_BENCH_H
#include "cf.h"
#include "run.h"
extern const cf_target_t bench_minimal_target;
#endif
