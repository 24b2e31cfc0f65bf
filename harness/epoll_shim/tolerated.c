/* tolerated.c: the differences between the shim and Linux that fuzz_epoll_shim tolerates, in
 * one list, each with its reason and upstream reference (see tolerated.h). Anything not on
 * this list that differs is reported: a divergence of elfuse from Linux that is not listed
 * here is a finding. */
#include "tolerated.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

const tolerance_t tolerances[TOL_COUNT] = {
    [TOL_STALE_ITEM] = {
        "stale-item",
        "after dup(g) and close(g), Linux keeps reporting g's item (keyed by file and number) "
        "and answers ctl on a reused g against it; the shim keys registrations by number and "
        "generation, and g's knote died with g's host fd",
        "inherent to keying on guest fd numbers and to knotes belonging to descriptor numbers; "
        "events of such items are not compared, and a ctl answered differently because of one "
        "is brought to the shim's answer",
        "spec B9 (dup + close); 26de80c keeps the registration while a dup shares the ofd_id "
        "(poll.c epoll_note_fd_closed)"},
    [TOL_CONCURRENT_CHANGE] = {
        "concurrent-change",
        "a registration changed (ctl, close, reuse) between a pwait's kevent and its merge, or "
        "with a ctl in flight, may be reported by either side",
        "both orders are linearizations; the report must still name a registration of that "
        "fd in that epoll with bits it asked for (plus EPOLLHUP/EPOLLERR), and an EPOLLONESHOT "
        "arm the reference's early sample used up is given back when the ctl returns",
        "poll.c sys_epoll_ctl holds inst->lock only around its kevent changes; sys_epoll_pwait "
        "merges after its kevent (PR #146)"},
    [TOL_ONESHOT_SPLIT] = {
        "oneshot-split",
        "two pwaits on one epoll racing for one EPOLLONESHOT report: either may get it",
        "the shim takes the arm at the merge, Linux at the wait; the report moves between the "
        "two reference samples to follow the shim's order, compared by data",
        "poll.c sys_epoll_pwait sets oneshot_armed in the merge (PR #5, b8d16b8)"},
    [TOL_UNSUPPORTED_FILTER] = {
        "unsupported-filter",
        "a ctl whose kevent change the host refuses with EINVAL (EVFILT_WRITE on a pipe's read "
        "end or an eventfd's host pipe, EVFILT_READ on a write end) fails or drops that "
        "filter where Linux accepts any direction; the number is not compared until a new "
        "file is installed at it",
        "the workload asks only for directions the file supports, so this happens only when a "
        "number is reused under a racing ctl",
        "poll.c sys_epoll_ctl, PR #332 (3209f18: a refused write filter is dropped, a refused "
        "read filter is EPERM)"},
    [TOL_HANGUP_FLAVOUR] = {
        "hangup-flavour",
        "a hang-up is reported as kqueue's EV_EOF maps it: EPOLLHUP, EPOLLRDHUP if asked, and "
        "the firing filter's direction (a pipe read end whose writer closed: Linux EPOLLHUP, "
        "elfuse EPOLLIN|EPOLLRDHUP|EPOLLHUP; a write end whose reader closed: Linux "
        "EPOLLOUT|EPOLLERR, elfuse EPOLLOUT|EPOLLHUP; a socket shut for writing by its peer: "
        "Linux EPOLLRDHUP, elfuse EPOLLRDHUP|EPOLLHUP); compared as hangup_flavour_matches() "
        "says: the shim has EPOLLHUP (or EPOLLERR), every direction and EPOLLRDHUP Linux "
        "reports, and EPOLLERR only if Linux has it",
        "elfuse's own divergence from Linux on a real macOS host (docs/findings/"
        "elfuse-epoll-readiness.md), not a bug of the copy; tolerated so the fuzzer looks "
        "for races",
        "poll.c epoll_merge_event @3209f18: EV_EOF -> EPOLLHUP, EPOLLRDHUP on the read filter "
        "when asked, EPOLLIN from the read filter whatever the byte count"},
    [TOL_ET_REARM] = {
        "et-rearm",
        "an EPOLLET registration is reported again after a partial read (EV_CLEAR re-armed by "
        "the byte-count change) where Linux ET stays silent; extra reports pass, missing "
        "ones do not",
        "documented by upstream as a narrow divergence; programs that drain to EAGAIN, as the "
        "EPOLLET contract says, are unaffected",
        "poll.c sys_epoll_ctl comment on EPOLLET @3209f18; tests/test-epoll-edge.c"},
    [TOL_EPOLL_TARGET] = {
        "epoll-target",
        "epoll_ctl whose target is the epoll's own file: the shim compares numbers where Linux "
        "compares files (DEL/MOD of a dup of epfd answer ENOENT instead of EINVAL; ADD of a "
        "dup of epfd answers EPERM, the host refusing a kqueue watching itself, instead of "
        "EINVAL; a ctl racing the close and reuse of its own epfd number answers EINVAL)",
        "elfuse's own divergence on a real macOS host, reported here and not compared: only "
        "the answer differs; where Linux registered (the epfd number reused under the ctl), "
        "the reference deletes that item again at the ctl's commit point, and a MOD or DEL it "
        "carried out takes the number out of comparison until a new file is installed there",
        "poll.c sys_epoll_ctl `fd == epfd` @3209f18; XNU kern_event.c kqueue_kqfilter "
        "(parentkq == kq: EINVAL), which the one-filter loop maps to EPERM"},
    [TOL_NESTED_LOOP_CHECK] = {
        "nested-loop-check",
        "epoll_ctl(ADD) of an epoll to an epoll decided by the host's kqueue nesting rule, "
        "not Linux's: a loop Linux refuses with ELOOP is EPERM when XNU's ceiling protocol "
        "refuses it and 0 when it lets it through; a chain longer than EP_MAX_NESTS (4) "
        "links is accepted (XNU nests up to 1000); a non-loop the ceiling refuses (a kqueue "
        "already nested at level 1 taking one that has children) is EPERM where Linux says 0",
        "elfuse has no loop or depth check of its own and maps the host's EINVAL on the read "
        "filter to EPERM; the number is quarantined (not compared) until a new file is "
        "installed at it, since the two sides then hold different registrations",
        "poll.c sys_epoll_ctl @3209f18 (one filter per call, refused read filter -> EPERM); "
        "XNU bsd/kern/kern_event.c kqueue_kqfilter (ceiling protocol, MAX_NESTED_KQ); "
        "Linux fs/eventpoll.c ep_loop_check"},
    [TOL_NESTED_READINESS] = {
        "nested-readiness",
        "a nested epoll's readiness is its host kqueue's: the shim reports an epoll target "
        "readable while its kqueue holds a knote on the active queue whose condition has "
        "passed (a drained pipe, a knote the merge filters out), where Linux re-polls the "
        "inner items; and an EPOLLET registration of an epoll fires on a knote newly joining "
        "the inner active queue, not on every wake-up of an inner item as Linux's does. "
        "Extra level-triggered reports pass, missing ones do not; EPOLLET registrations of "
        "an epoll are not compared",
        "XNU's filt_kqueue reports kq_count, which no scan re-validates until a kevent "
        "collects, and KNOTE on kq_sel comes from knote_enqueue only; the copy maps the read "
        "filter to EPOLLIN as for any file",
        "poll.c epoll_merge_event @3209f18; XNU kern_event.c filt_kqueue, kqueue_wakeup; "
        "Linux fs/eventpoll.c ep_eventpoll_poll, ep_poll_callback"},
};

uint32_t tolerances_removed;

tolerance_id_t tolerance_by_id(const char *id) {
  for (int i = 0; i < TOL_COUNT; i++)
    if (!strcmp(tolerances[i].id, id)) return (tolerance_id_t)i;
  return TOL_COUNT;
}

void tolerances_from_env(void) {
  static bool done;
  if (done) return;
  done = true;
  const char *env = getenv("CHURN_EPOLL_UNTOLERATE");
  if (!env) return;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", env);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    tolerance_id_t t = tolerance_by_id(tok);
    if (t == TOL_COUNT) {
      fprintf(stderr, "churnfuzz: CHURN_EPOLL_UNTOLERATE: unknown tolerance '%s'\n", tok);
      exit(2);
    }
    tolerances_removed |= 1u << t;
  }
}

/* EV_EOF adds EPOLLHUP (and EPOLLRDHUP to a read filter that asked) to the firing filter's
 * direction, and EV_ERROR adds EPOLLERR; nothing in that mapping drops a direction Linux
 * reports, turns a hang-up into silence, or invents an error. */
bool hangup_flavour_matches(uint32_t shim, uint32_t linux_events) {
  if (!(shim & (EPOLLHUP | EPOLLERR))) return false;
  if ((linux_events & (EPOLLIN | EPOLLOUT)) & ~shim) return false;
  if ((linux_events & EPOLLRDHUP) && !(shim & EPOLLRDHUP)) return false;
  if ((shim & EPOLLERR) && !(linux_events & EPOLLERR)) return false;
  return true;
}
