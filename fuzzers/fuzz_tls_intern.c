/* fuzz_tls_intern: Bun's TLS config intern cache (harness/tls_intern/) under random connection
 * churn, close timing and config sharing. The workload picks option sets, fetches, keep-alive
 * and proxy use; the schedule picks the interleaving of JS threads and the HTTP thread and the
 * moments clients complete, pooled sockets close and cache entries expire. Toggles: tls-*. */
#include "run.h"
#include "tls.h"

const cf_target_t fuzz_tls_intern_target = {
    .name = "fuzz_tls_intern",
    .system = TLS_SYSTEM,
    .main = tls_intern_main,
};

CF_FUZZ_TARGET(fuzz_tls_intern_target)
