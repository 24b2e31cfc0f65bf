/* fuzz_sim_selftest: the runtime's own toy models (harness/toys/), whose races sit behind the
 * toy-* toggles. With a toggle on the fuzzer must find its bug in seconds; with none on, no
 * input may fail. */
#include "run.h"
#include "toys.h"

const cf_target_t fuzz_sim_selftest_target = {
    .name = "fuzz_sim_selftest",
    .system = TOY_SYSTEM,
    .main = toy_selftest_main,
};

CF_FUZZ_TARGET(fuzz_sim_selftest_target)
