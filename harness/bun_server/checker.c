/* checker.c: the oracles of spec §3.5 over Bun's server copy, kept apart from the copy. It keeps
 * a ghost count of the RequestContexts taken and not released, and looks at the server, its
 * JSRef and its stop() promise at the copy's commit points.
 *
 *  N1 bun-dead-dispatch  no call into user JS (a handler, the route list) with a wrapper value
 *                        that tryGet() gave as null, or that is not the live wrapper: the
 *                        #22809 crash (bun-22809-assert-alive);
 *  N2 bun-pending        pending_requests equals the contexts taken and not released, between
 *                        loop turns and when the server is freed, and never goes below zero;
 *  N3 bun-drain          once stop() was called and nothing is left (no request pending, no
 *                        listener), its promise resolves within two loop turns; a promise
 *                        that never resolves is also an obligation ("stop() resolves"), open at
 *                        quiescence (the leaks of bun-28246-*);
 *  N4 bun-teardown       scheduleDeinit at most once, finalize at most once, no uWS callback
 *                        and no poll event for the server once it is freed;
 *  N5 bun-jsref          only the JSRef transitions upstream allows: empty -> strong (serve),
 *                        strong -> weak (stop), weak -> finalized (GC); and the GC collects the
 *                        wrapper only when the ref is weak, the script holds no reference and no
 *                        native frame holds the value;
 *  leak                  at quiescence no RequestContext is left (a context leaked by an early
 *                        return, bun-28246-*).
 * The client side (harness/http/client.c) checks every response (order, exactly once, the
 * echo of its request, close semantics; after stop() a 503 + close, a refused connection or a
 * close) and liveness: every complete request answered, never silence. */
#include "bun_server.h"

static struct {
  VirtualMachine *vm;
  int64_t ctx_live;
  int schedule_deinits, finalizes;
  int drained_turns;             /* loop turns with nothing left and the promise unresolved */
} chk;

void chk_bun_init(VirtualMachine *vm) {
  chk.vm = vm;
  chk.ctx_live = 0;
  chk.schedule_deinits = chk.finalizes = 0;
  chk.drained_turns = 0;
}

/* ---- N1 -------------------------------------------------------------------------------------- */

void chk_bun_js_call(VirtualMachine *vm, const JSHTTPServer *this_value, const char *what) {
  cf_checker_enter();
  bool dead = !this_value || this_value != vm->wrapper;
  cf_checker_leave();
  if (dead)
    cf_fail("bun-dead-dispatch", BUN_SYSTEM, CF_SITE("bun.N1"),
            "%s called with %s as the server: the JS wrapper was finalized", what,
            this_value ? "a collected wrapper" : "null (tryGet() of a finalized JSRef)");
}

/* ---- N2 -------------------------------------------------------------------------------------- */

void chk_bun_pending(NewServer *s, int delta) {
  cf_checker_enter();
  bool negative = delta < 0 && s->pending_requests == 0;
  cf_checker_leave();
  if (negative)
    cf_fail("bun-pending", BUN_SYSTEM, CF_SITE("bun.N2 negative"),
            "onRequestComplete with pending_requests already 0");
}

void chk_bun_ctx_taken(RequestContext *ctx) {
  (void)ctx;
  cf_checker_enter();
  chk.ctx_live++;
  cf_checker_leave();
}

void chk_bun_ctx_released(RequestContext *ctx) {
  (void)ctx;
  cf_checker_enter();
  chk.ctx_live--;
  cf_checker_leave();
}

static void counter_matches(NewServer *s, const cf_site_t *site, const char *when) {
  cf_checker_enter();
  int64_t pending = (int64_t)s->pending_requests, live = chk.ctx_live;
  cf_checker_leave();
  if (pending != live)
    cf_fail("bun-pending", BUN_SYSTEM, site,
            "%s: pending_requests is %lld but %lld RequestContext(s) are taken and not released",
            when, (long long)pending, (long long)live);
}

/* ---- N4 -------------------------------------------------------------------------------------- */

void chk_bun_schedule_deinit(NewServer *s) {
  (void)s;
  if (++chk.schedule_deinits > 1)
    cf_fail("bun-teardown", BUN_SYSTEM, CF_SITE("bun.N4 scheduleDeinit"),
            "scheduleDeinit ran twice");
}

void chk_bun_deinit(NewServer *s) {
  counter_matches(s, CF_SITE("bun.N2 deinit"), "the server is freed");
  if (s->pending_requests != 0)
    cf_fail("bun-teardown", BUN_SYSTEM, CF_SITE("bun.N4 deinit"),
            "the server is freed with pending_requests %llu",
            (unsigned long long)s->pending_requests);
}

void chk_bun_callback(VirtualMachine *vm, const char *what) {
  if (vm->server_gone || !vm->server)
    cf_fail("bun-teardown", BUN_SYSTEM, CF_SITE("bun.N4 callback"),
            "%s reaches the server after deinit", what);
}

void chk_bun_finalize(NewServer *s) {
  (void)s;
  if (++chk.finalizes > 1)
    cf_fail("bun-teardown", BUN_SYSTEM, CF_SITE("bun.N4 finalize"), "the wrapper finalized twice");
}

/* ---- N5 -------------------------------------------------------------------------------------- */

static const char *const tag_names[] = {"weak", "strong", "finalized"};

void chk_bun_jsref(NewServer *s, JSRefTag from, JSRefTag to) {
  bool empty = from == JSREF_WEAK && !s->js_value.value;
  bool ok = (empty && to == JSREF_STRONG) || (from == JSREF_STRONG && to == JSREF_WEAK) ||
            (from == JSREF_WEAK && !empty && to == JSREF_FINALIZED);
  if (!ok)
    cf_fail("bun-jsref", BUN_SYSTEM, CF_SITE("bun.N5 transition"), "js_value %s%s -> %s",
            empty ? "empty " : "", tag_names[from], tag_names[to]);
}

void chk_bun_gc(VirtualMachine *vm) {
  const char *why = NULL;
  if (vm->user_ref)
    why = "the script still holds the server";
  else if (vm->stack_roots)
    why = "a native frame holds its value";
  else if (vm->server && vm->server->js_value.tag != JSREF_WEAK)
    why = "the JSRef is not weak";
  if (why)
    cf_fail("bun-jsref", BUN_SYSTEM, CF_SITE("bun.N5 gc"), "the wrapper is collected although %s",
            why);
}

/* ---- between loop turns, the promise, quiescence --------------------------------------------- */

void chk_bun_tick(VirtualMachine *vm) {
  NewServer *s = vm->server;
  if (!s) return;
  counter_matches(s, CF_SITE("bun.N2"), "between loop turns");
  JSPromise *p = s->all_closed_promise;
  bool drained = p && !p->resolved && s->pending_requests == 0 && !bun_hasListener(s);
  chk.drained_turns = drained ? chk.drained_turns + 1 : 0;
  if (chk.drained_turns > 2)
    cf_fail("bun-drain", BUN_SYSTEM, CF_SITE("bun.N3"),
            "stop() was called and nothing is pending, but its promise is still unresolved after "
            "%d loop turns", chk.drained_turns);
}

void chk_bun_quiescent(VirtualMachine *vm) {
  if (chk.ctx_live != 0)
    cf_fail("leak", BUN_SYSTEM, CF_SITE("bun.leak"),
            "%lld RequestContext(s) never released (pending_requests %llu%s)",
            (long long)chk.ctx_live,
            (unsigned long long)(vm->server ? vm->server->pending_requests : 0),
            vm->server ? "" : ", the server already freed");
}
