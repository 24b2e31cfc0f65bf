/* fuzz_httpz_worker: http.zig's NonBlocking worker (harness/httpz/) under connection churn:
 * clients connect beyond max_conn, send whole, split or pipelined requests, keep alive, close,
 * half-close, stall or linger until a timeout, and reconnect, while the app forks children
 * that keep closed sockets' descriptions (and so their epoll items) alive for a while. The
 * schedule picks the interleaving of the loop thread, the pool threads, the streaming thread,
 * the clients and the app, the size of split sends, and (when on) EAGAIN, short writes,
 * epoll_ctl ENOMEM and resets. Toggles: httpz-*, wisp-*.
 *
 * Workload stream (after the header, docs/INPUT_FORMAT.md); missing bytes read as 0:
 *   byte 0   server: bits 0-1 max_conn - 1, bit 2 pool threads - 1, bit 3 preallocated
 *            HTTPConns - 1, bits 4-5 max requests per connection (100, 2, 3, 5), bit 6 faults
 *            on (EAGAIN, short writes, epoll_ctl ENOMEM); timeouts are 2 s (request) and
 *            3 s (keepalive) of virtual time;
 *   byte 1   bits 0-1 forks by the app thread (0-3), then one byte per fork: bits 0-3 yields
 *            before it, bits 4-7 half the yields before its exec;
 *   then     the churn clients (harness/http/client.c, http_workload_decode):
 *            byte: bits 0-1 clients - 1, bit 2 resets on;
 *            per client: byte bits 0-1 connections - 1;
 *            per connection: byte bits 0-1 requests - 1, bits 2-3 end (close, half-close,
 *            stall, linger);
 *            per request: byte bits 0-1 method (GET, POST, POST chunked, bad), bits 2-3 path
 *            (echo, echo, big, handoff) or what is bad (syntax, head too big, body too big,
 *            bad chunk), bit 4 HTTP/1.0, bit 5 Connection: close, bit 6 pipelined, bit 7 split.
 * Everything after that is the schedule stream's. Oracles: harness/httpz/checker.c (H1-H6,
 * leaks) and harness/http/client.c (responses, drops, liveness). */
#include "httpz.h"
#include "run.h"

const cf_target_t fuzz_httpz_worker_target = {
    .name = "fuzz_httpz_worker",
    .system = HTTPZ_SYSTEM,
    .main = httpz_world_main,
    /* A conn that is readable while a pool thread handles it keeps the level-triggered loop
     * spinning until the schedule lets the pool thread finish: a spin ends the safety phase,
     * and a smaller budget keeps such runs cheap (whole runs take a few hundred steps). */
    .options = {.safety_steps = 2000},
};

CF_FUZZ_TARGET(fuzz_httpz_worker_target)
