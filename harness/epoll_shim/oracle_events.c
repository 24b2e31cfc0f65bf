/* oracle_events.c: the differential oracle's comparison of epoll_pwait results (and of the
 * liveness probe's) between the shim and the Linux reference kernel, split from oracle.c.
 * Every difference it lets pass asks tolerated() first (tolerated.c has the list). */
#include "world.h"
#include "tolerated.h"

#define HANGUP (EPOLLHUP | EPOLLERR | EPOLLRDHUP)

/* ---- comparing pwait results ------------------------------------------------------------------ */

static bool changed_since(world_t *w, int fd, uint64_t since) {
  return tolerated(TOL_CONCURRENT_CHANGE) && since != UINT64_MAX &&
         (w->last_change[fd] > since || w->ctl_inflight[fd] > 0);
}

/* The readiness of a nested epoll is that of the items inside it. Does the reference epoll at
 * fd (or an epoll nested in it) hold an item the oracle does not compare: of a quarantined
 * number, of an earlier incarnation of its number (stale-item), or of a number changed since
 * `since` (concurrent-change)? Then the two sides may disagree about the outer report for a
 * reason already tolerated inside, and it is not compared either. */
static bool inner_uncompared(world_t *w, int fd, uint64_t since, int depth) {
  ks_epoll_item_t items[MAX_EVENTS];
  int n = ks_epoll_items(w->lin, fd, items, MAX_EVENTS);
  for (int i = 0; i < n && i < MAX_EVENTS; i++) {
    int g = items[i].fd;
    uint64_t serial = items[i].data >> 6;
    if (g < 0 || g >= FD_TABLE_SIZE) continue;
    if (w->quarantined[g] || changed_since(w, g, since)) return true;
    if (tolerated(TOL_STALE_ITEM) && serial < MAX_OPS && w->data_inc[serial] != w->install_seq[g])
      return true;
    if (depth < 4 && inner_uncompared(w, g, since, depth + 1)) return true;
  }
  return false;
}

static bool nested_uncompared(world_t *w, int fd, uint64_t data, uint64_t since) {
  uint64_t serial = data >> 6;
  return serial < MAX_OPS && w->data_nested[serial] && inner_uncompared(w, fd, since, 0);
}

int oracle_filter_reference(world_t *w, const ks_epoll_event_t *in, int n, ks_epoll_event_t *out) {
  int kept = 0;
  for (int i = 0; i < n; i++) {
    int fd = (int)(in[i].data & 63);
    uint64_t serial = in[i].data >> 6;
    if (w->quarantined[fd]) continue;
    if (nested_uncompared(w, fd, in[i].data, UINT64_MAX)) continue;
    /* WHITELIST nested readiness: an EPOLLET registration of an epoll fires on the host only
     * for a knote newly queued in the inner kqueue, Linux on every wake-up inside it. */
    if (tolerated(TOL_NESTED_READINESS) && serial < MAX_OPS && w->data_nested[serial] &&
        (w->data_events[serial] & EPOLLET))
      continue;
    /* WHITELIST dup-then-close: the item is from an earlier incarnation of its number. */
    if (tolerated(TOL_STALE_ITEM) && serial < MAX_OPS && w->data_inc[serial] != w->install_seq[fd])
      continue;
    out[kept++] = in[i];
  }
  return kept;
}

static const linux_epoll_event_t *find_shim(const linux_epoll_event_t *ev, int n, int fd) {
  for (int i = 0; i < n; i++)
    if ((int)(ev[i].data & 63) == fd) return &ev[i];
  return NULL;
}


/* WHITELIST concurrent change, narrowed: a shim report of a number changed in the window must
 * still be one some registration of that number in this epoll could give: its data, and bits
 * within what it asked for (plus the hang-up bits every registration gets). */
static bool plausible_in_window(world_t *w, int64_t ep, int fd, const linux_epoll_event_t *ev) {
  uint64_t serial = ev->data >> 6;
  if (serial >= MAX_OPS || w->data_fd[serial] != fd || w->data_ep[serial] != ep) return false;
  uint32_t allowed = w->data_events[serial] | EPOLLHUP | EPOLLERR;
  return (ev->events & ~allowed & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0;
}


/* The shim reported fd (data `data`) and the reference epoll did not. When the reference's
 * own file at fd is ready (poll(2) on the reference kernel) for a level-triggered, non-oneshot
 * item of that registration, Linux's epoll must have reported it: the reference model missed
 * a wake-up, not the shim invented one. */
static bool reference_missed(world_t *w, int fd, uint64_t data) {
  uint64_t serial = data >> 6;
  if (serial >= MAX_OPS || !w->data_live[serial] || w->data_fd[serial] != fd) return false;
  uint32_t ev = w->data_events[serial];
  if (ev & (EPOLLET | EPOLLONESHOT)) return false;
  struct pollfd p = {fd, (short)(ev & (EPOLLIN | EPOLLOUT | EPOLLRDHUP)), 0};
  return ks_poll(w->lin, &p, 1, 0) == 1 && !(p.revents & POLLNVAL);
}

void oracle_compare_events(world_t *w, epoll_instance_t *inst, const linux_epoll_event_t *shim,
                           int nshim, const ks_epoll_event_t *ref_in, int nref_in,
                           uint64_t skip_since, int64_t ref_ep, const char *base,
                           const char *oracle) {
  ks_epoll_event_t ref[MAX_EVENTS];
  int nref = oracle_filter_reference(w, ref_in, nref_in, ref);
  bool matched[MAX_EVENTS] = {false};
  for (int i = 0; i < nref; i++) {
    int fd = (int)(ref[i].data & 63);
    /* WHITELIST concurrent change (also inside a nested epoll reported here) */
    if (changed_since(w, fd, skip_since) || nested_uncompared(w, fd, ref[i].data, skip_since))
      continue;
    const linux_epoll_event_t *s = find_shim(shim, nshim, fd);
    if (!s)
      cf_fail(oracle, SHIM_SYSTEM, events_site(base, "shim-missed"),
              "fd %d is ready on Linux (events 0x%x, data 0x%llx) but the shim did not report it",
              fd, ref[i].events, (unsigned long long)ref[i].data);
    matched[s - shim] = true;
    bool sh = s->events & HANGUP, rh = ref[i].events & HANGUP;
    uint32_t dirs = EPOLLIN | EPOLLOUT;
    /* WHITELIST hang-up flavour: once either side has a hang-up, the shim's bits must be what
     * elfuse's EV_EOF mapping can make of Linux's. */
    bool same_bits = (sh || rh) && tolerated(TOL_HANGUP_FLAVOUR)
                         ? hangup_flavour_matches(s->events, ref[i].events)
                         : (s->events & (dirs | HANGUP)) == (ref[i].events & (dirs | HANGUP));
    if (s->data != ref[i].data || !same_bits)
      cf_fail(oracle, SHIM_SYSTEM, events_site(base, s->data != ref[i].data ? "data" : "events"),
              "fd %d: shim reported events 0x%x data 0x%llx, Linux 0x%x data 0x%llx", fd,
              s->events, (unsigned long long)s->data, ref[i].events,
              (unsigned long long)ref[i].data);
  }
  for (int j = 0; j < nshim; j++) {
    int fd = (int)(shim[j].data & 63);
    if (matched[j] || w->quarantined[fd]) continue;
    if (changed_since(w, fd, skip_since)) {
      if (plausible_in_window(w, ref_ep, fd, &shim[j])) continue;
      cf_fail(oracle, SHIM_SYSTEM, events_site(base, "shim-extra in-window"),
              "fd %d changed while this pwait ran, but the shim's report (events 0x%x, data "
              "0x%llx) is not one any of its registrations in this epoll could give", fd,
              shim[j].events, (unsigned long long)shim[j].data);
    }
    /* WHITELIST dup-then-close, the other way round: a registration of an earlier incarnation
     * (its knote lives until the host close that follows the table's close, as Linux's item
     * lives while the file does) is not compared either. */
    uint64_t serial = shim[j].data >> 6;
    if (tolerated(TOL_STALE_ITEM) && serial < MAX_OPS && w->data_inc[serial] != w->install_seq[fd])
      continue;
    /* WHITELIST nested readiness: an epoll target reads ready while its host kqueue holds an
     * activation Linux's re-poll of the inner items would not count. */
    if (tolerated(TOL_NESTED_READINESS) && serial < MAX_OPS && w->data_nested[serial] &&
        w->data_fd[serial] == fd) {
      /* That report used up an EPOLLONESHOT arm Linux still has: the number's later reports
       * differ by that arm, and are not compared until a new file is installed there. */
      if (w->data_events[serial] & EPOLLONESHOT) w->quarantined[fd] = true;
      continue;
    }
    /* WHITELIST EPOLLET re-arm: EV_CLEAR may fire again where Linux ET does not. */
    if (tolerated(TOL_ET_REARM) && inst && (inst->regs[fd].events & EPOLLET) &&
        inst->regs[fd].data == shim[j].data)
      continue;
    if (reference_missed(w, fd, shim[j].data))
      cf_fail(oracle, SHIM_SYSTEM, events_site(base, "reference-missed"),
              "the Linux reference did not report fd %d although its file is ready for the "
              "level-triggered item (data 0x%llx) the shim reported (events 0x%x)", fd,
              (unsigned long long)shim[j].data, shim[j].events);
    cf_fail(oracle, SHIM_SYSTEM, events_site(base, "shim-extra"),
            "the shim reported fd %d (events 0x%x, data 0x%llx), which Linux does not report", fd,
            shim[j].events, (unsigned long long)shim[j].data);
  }
}

