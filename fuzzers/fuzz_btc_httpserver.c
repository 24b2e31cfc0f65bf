/* fuzz_btc_httpserver: Bitcoin Core's HTTPServer (harness/btc_http/) under connection churn:
 * clients send whole, split or pipelined requests, keep alive, close, half-close, stall or
 * linger until the idle timeout, and reconnect, over sockets whose buffers may hold only a
 * few hundred bytes, so replies go out in pieces from the worker's optimistic send and from
 * the I/O thread. The schedule picks the interleaving of the I/O thread, the workers and the
 * clients, the size of split sends, and (when on) EAGAIN, short writes and resets. Once the
 * clients are done the server shuts down, draining. Toggles: btc-*.
 *
 * Workload stream (after the header, docs/INPUT_FORMAT.md); missing bytes read as 0:
 *   byte 0   server: bit 0 worker threads - 1, bits 1-2 socket buffer bytes (65536, 8192,
 *            2048, 512), bit 3 faults on (EAGAIN, short writes), bit 4 idle timeout
 *            (-rpcservertimeout) 1 or 2 s of virtual time;
 *   then     the churn clients (harness/http/client.c, http_workload_decode):
 *            byte: bits 0-1 clients - 1, bit 2 resets on;
 *            per client: byte bits 0-1 connections - 1;
 *            per connection: byte bits 0-1 requests - 1, bits 2-3 end (close, half-close,
 *            stall, linger);
 *            per request: byte bits 0-1 method (GET, POST, POST chunked, bad), bits 2-3 path
 *            (echo, echo, big, echo) or what is bad (syntax, head too big, body too big,
 *            bad chunk), bit 4 HTTP/1.0, bit 5 Connection: close, bit 6 pipelined, bit 7 split.
 * Everything after that is the schedule stream's. Oracles: harness/btc_http/checker.c (B1-B5,
 * leaks) and harness/http/client.c (responses, drops, liveness). */
#include "btc_http.h"
#include "run.h"

const cf_target_t fuzz_btc_httpserver_target = {
    .name = "fuzz_btc_httpserver",
    .system = BTC_SYSTEM,
    .main = btc_world_main,
    .options = {.safety_steps = 3000},
};

CF_FUZZ_TARGET(fuzz_btc_httpserver_target)
