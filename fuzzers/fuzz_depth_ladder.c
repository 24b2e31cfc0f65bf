/* fuzz_depth_ladder: the bug-depth ladder (harness/toys/depth_ladder.c). With toy-depth-d on,
 * a run fails when the schedule makes d preemptions, each at its exact choice point; with no
 * rung on, no input may fail. The input is schedule only: the target reads no workload. */
#include "run.h"
#include "toys.h"

const cf_target_t fuzz_depth_ladder_target = {
    .name = "fuzz_depth_ladder",
    .system = TOY_LADDER_SYSTEM,
    .main = toy_depth_ladder_main,
};

CF_FUZZ_TARGET(fuzz_depth_ladder_target)
