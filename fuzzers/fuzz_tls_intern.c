/* fuzz_tls_intern: Bun's TLS config intern cache (harness/tls_intern/) under random connection
 * churn, close timing and config sharing. The workload picks option sets, fetches, keep-alive
 * and proxy use; the schedule picks the interleaving of JS threads and the HTTP thread and the
 * moments clients complete, pooled sockets close and cache entries expire. Toggles: tls-*.
 *
 * Workload stream (after the header, docs/INPUT_FORMAT.md); missing bytes read as 0:
 *   byte 0   bits 0-2 first option set (mod 6, harness/tls_intern/ssl_config.c),
 *            bits 3-4 number of distinct option sets in use - 1 (sets first, first+1, ...);
 *   byte 1   bit 0 JS threads - 1 (1 or 2), bits 1-2 SSL context cache limit - 1,
 *            bits 3-5 keep-alive pool size (mod 5; 0 = no keep-alive pool);
 *   byte 2   number of fetches - 1 (mod 12);
 *   then one byte per fetch, issued in order by its JS thread:
 *            bits 0-1 option set (mod the number in use), bit 2 keepalive, bit 3 through a
 *            proxy (a second SSL context after CONNECT), bit 4 await the thread's earlier
 *            fetches first (a wave boundary), bit 5 JS thread (mod the number of threads).
 * Everything after that is the schedule stream's: interleavings, when clients complete, when
 * pooled sockets close and cache entries expire, when JS runs completion callbacks. */
#include "run.h"
#include "tls.h"

const cf_target_t fuzz_tls_intern_target = {
    .name = "fuzz_tls_intern",
    .system = TLS_SYSTEM,
    .main = tls_intern_main,
};

CF_FUZZ_TARGET(fuzz_tls_intern_target)
