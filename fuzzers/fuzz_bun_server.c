/* fuzz_bun_server: Bun's native server behind Bun.serve (harness/bun_server/) through its
 * lifecycle: churn clients keep connections alive, pipeline, close and reconnect while the
 * script stops the server (gracefully: keep-alive connections outlive it; or abruptly), drops
 * its reference and forces a GC, so the wrapper may be finalized while requests still arrive.
 * The schedule picks the interleaving of the loop thread, the script and the clients, when a
 * GC runs (between callbacks, in prepareJsRequestContext, in onRequestComplete's
 * processGCTimer), whether a handler awaits and for how long, when a DevServer bundle is
 * stale, the size of split sends, and (when on) EAGAIN, short writes and resets. Toggles: bun-*.
 *
 * Workload stream (after the header, docs/INPUT_FORMAT.md); missing bytes read as 0:
 *   byte 0   server: bits 0-1 the handlers answer (synchronously, after an await, either as
 *            the schedule picks, either), bit 2 routes: /big/ is a `routes` entry
 *            (onUserRouteRequest), bit 3 a DevServer framework route for /handoff/
 *            (onSavedRequest), bit 4 faults on (EAGAIN, short writes), bit 5 idleTimeout 10 s
 *            (else 2 s) of virtual time;
 *   byte 1   bits 0-1 script steps (0-3), then one byte per step: bits 0-1 what (server.stop(),
 *            server.stop(true), server = null, Bun.gc(true)), bits 2-4 after how many responses
 *            were written, bits 5-7 yields before it is posted;
 *   then     the churn clients (harness/http/client.c, http_workload_decode):
 *            byte: bits 0-1 clients - 1, bit 2 resets on;
 *            per client: byte bits 0-1 connections - 1;
 *            per connection: byte bits 0-1 requests - 1, bits 2-3 end (close, half-close,
 *            stall, linger);
 *            per request: byte bits 0-1 method (GET, POST, POST chunked, bad), bits 2-3 path
 *            (echo, echo, big, handoff) or what is bad (syntax, head too big, body too big,
 *            bad chunk), bit 4 HTTP/1.0, bit 5 Connection: close, bit 6 pipelined, bit 7 split.
 * Everything after that is the schedule stream's. Oracles: harness/bun_server/checker.c (N1-N5,
 * leaks) and harness/http/client.c (responses, drops, liveness). */
#include "bun_server.h"
#include "run.h"

const cf_target_t fuzz_bun_server_target = {
    .name = "fuzz_bun_server",
    .system = BUN_SYSTEM,
    .main = bun_world_main,
    .options = {.safety_steps = 3000},
};

CF_FUZZ_TARGET(fuzz_bun_server_target)
