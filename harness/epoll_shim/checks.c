/* checks.c: structural and liveness oracles (spec §B11).
 *
 * Structural checks read the shim's tables and the host kernel's knotes (ks_kqueue_knotes, not
 * a yield point). They run at quiet points only: when the calling thread finished a syscall
 * and no other guest thread is inside one, except parked in pwait's kevent, because a ctl in
 * the middle of its kevent changes legitimately has a registration without its knotes.
 *
 * Liveness runs at quiescence: no guest thread may be blocked in epoll_pwait while Linux says
 * its instance has a ready registration, and a timeout-0 pwait on every instance nobody waits
 * on must report what Linux reports. */
#include <stdio.h>

#include "world.h"

#define MAX_KNOTES 256

bool world_quiet(world_t *w, guest_thread_t *self) {
  bool quiet = true;
  cf_oracle_begin(); /* other threads' bookkeeping: the oracle's reads, not the program's */
  for (int i = 0; i < SHIM_MAX_THREADS; i++) {
    guest_thread_t *t = &w->threads[i];
    if (t == self || !w->started[i]) continue;
    if (t->in_syscall && !t->in_kevent) quiet = false;
  }
  cf_oracle_end();
  return quiet;
}

/* A host descriptor of inst's kqueue through any open guest epoll fd (dups share it). */
static int instance_kq(world_t *w, const epoll_instance_t *inst, int *epfd) {
  for (int g = 0; g < FD_TABLE_SIZE; g++) {
    const fd_entry_t *e = &w->shim.fd_table[g];
    if (e->type == FD_EPOLL && e->dir == inst) {
      if (epfd) *epfd = g;
      return e->host_fd;
    }
  }
  return -1;
}

/* Does the host take a knote of that filter on guest fd's file (kqueue refuses EVFILT_WRITE on
 * a pipe's read end, and so on an eventfd's host pipe, and EVFILT_READ on a write end)? */
bool host_takes_filter(world_t *w, int fd, int16_t filter) {
  const fd_entry_t *e = &w->shim.fd_table[fd];
  if (e->type == FD_EVENTFD) return filter == KS_EVFILT_READ;
  if (e->type == FD_EPOLL) return filter == KS_EVFILT_READ; /* a kqueue: XNU kqueue_kqfilter */
  if (e->type != FD_PIPE) return true;
  int fl = ks_fcntl(w->host, e->host_fd, F_GETFL, 0);
  bool read_end = fl >= 0 && (fl & O_ACCMODE) == O_RDONLY;
  return read_end == (filter == KS_EVFILT_READ);
}

static bool has_knote(const ks_kevent_t *kn, int n, int ident, int16_t filter, int udata) {
  for (int i = 0; i < n; i++)
    if ((int)kn[i].ident == ident && kn[i].filter == filter && udata_fd(kn[i].udata) == (uint64_t)udata)
      return true;
  return false;
}

/* Is host fd h held open by a pin whose slot has closed (or any live pin on it)? */
static bool host_fd_pinned(const shim_t *s, int h) {
  for (const fd_lifetime_t *lt = s->lifetimes; lt; lt = lt->live_next)
    if (lt->host_fd == h && lt->refs.v > 0) return true;
  return false;
}

static void check_instance(world_t *w, epoll_instance_t *inst) {
  shim_t *s = &w->shim;
  int kq = instance_kq(w, inst, NULL);
  if (kq < 0) return;
  ks_kevent_t kn[MAX_KNOTES];
  int n = ks_kqueue_knotes(w->host, kq, kn, MAX_KNOTES);
  if (n > MAX_KNOTES) n = MAX_KNOTES;
  /* B11.1 (PR #73): every live registration of the current incarnation has its knotes, keyed
   * on the table's persistent host fd, with udata = the guest fd. */
  for (int g = 0; g < FD_TABLE_SIZE; g++) {
    const epoll_reg_t *reg = &inst->regs[g];
    if (!reg->active) continue;
    const fd_entry_t *e = &s->fd_table[g];
    if (!reg->active || reg->oneshot_armed || w->quarantined[g]) continue;
    if (e->type == FD_CLOSED || e->generation != reg->generation) continue;
    bool rd = reg->events & (EPOLLIN | EPOLLRDHUP), wr = reg->events & EPOLLOUT;
    /* PR #332: a write filter the host refused was dropped from the registration. */
    if (wr && !host_takes_filter(w, g, KS_EVFILT_WRITE)) wr = false;
    int16_t missing = 0;
    if (rd && !has_knote(kn, n, e->host_fd, KS_EVFILT_READ, g)) missing = KS_EVFILT_READ;
    else if (wr && !has_knote(kn, n, e->host_fd, KS_EVFILT_WRITE, g)) missing = KS_EVFILT_WRITE;
    if (missing) {
      /* The site says what removed the knote, so that different bugs sign differently: a
       * knote that was never on this host fd (keyed on another descriptor), one an EV_DELETE
       * took, one a close of its ident took, one EV_ONESHOT used up. */
      ks_knote_fate_t fate = ks_kqueue_knote_fate(w->host, kq, e->host_fd, missing);
      const cf_site_t *site =
          fate == KS_KNOTE_DELETED   ? CF_SITE("struct.registration-has-knote deleted")
          : fate == KS_KNOTE_CLOSED  ? CF_SITE("struct.registration-has-knote closed")
          : fate == KS_KNOTE_ONESHOT ? CF_SITE("struct.registration-has-knote oneshot")
                                     : CF_SITE("struct.registration-has-knote never-added");
      cf_fail("structural", SHIM_SYSTEM, site,
              "fd %d is registered (events 0x%x) but the kqueue has no %s knote on its host fd %d",
              g, reg->events, missing == KS_EVFILT_READ ? "read" : "write", e->host_fd);
    }
  }
  /* host fd -> guest fd, so ownership is one lookup per knote */
  int8_t guest_of[KS_NFD];
  memset(guest_of, -1, sizeof guest_of);
  for (int x = 0; x < FD_TABLE_SIZE; x++)
    if (s->fd_table[x].type != FD_CLOSED && s->fd_table[x].host_fd >= 0)
      guest_of[s->fd_table[x].host_fd] = (int8_t)x;
  for (int i = 0; i < n; i++) {
    int g = (int)udata_fd(kn[i].udata), h = (int)kn[i].ident;
    if (udata_fd(kn[i].udata) >= FD_TABLE_SIZE)
      cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.knote-owner"),
              "knote (%d, %d) has udata %llu, not a guest fd", h, kn[i].filter,
              (unsigned long long)kn[i].udata);
    if (w->quarantined[g]) continue;
    /* B11.3: a knote never sits on another guest fd's descriptor (its readiness would be
     * reported as g's). */
    int x = h >= 0 && h < KS_NFD ? guest_of[h] : -1;
    if (x >= 0 && x != g)
      cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.knote-owner"),
              "knote (host fd %d, filter %d) carries udata %d but host fd %d is guest fd %d's", h,
              kn[i].filter, g, h, x);
    /* B11.3/B11.4: every knote belongs to a registration (DEL removes all of its knotes);
     * except on a closed slot's host descriptor that an in-flight call still pins (PR #324):
     * the close hook has cleared the registration and the host close that drops the knote
     * comes with the last pin's release, as Linux's item goes with the file's last fput. */
    if (!inst->regs[g].active && !(x < 0 && host_fd_pinned(s, h)))
      cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.knote-registered"),
              "knote (host fd %d, filter %d, udata %d) outlives fd %d's registration", h,
              kn[i].filter, g, g);
  }
}

void check_structure(world_t *w) {
  cf_oracle_begin();
  for (epoll_instance_t *inst = w->shim.epoll_live; inst; inst = inst->live_next)
    check_instance(w, inst);
  cf_oracle_end();
}

/* Is the description `ofd` open at a guest fd other than `fd`? */
static bool description_open_elsewhere(const shim_t *s, int fd, uint64_t ofd) {
  for (int x = 0; x < FD_TABLE_SIZE; x++)
    if (x != fd && s->fd_table[x].type != FD_CLOSED && s->fd_table[x].ofd_id == ofd) return true;
  return false;
}

/* Does another open guest fd share fd's description (its entry's ofd_id, which closing
 * leaves in place)? Read under fd_lock, at the close's commit point. */
bool shares_description(world_t *w, int fd) {
  return description_open_elsewhere(&w->shim, fd, w->shim.fd_table[fd].ofd_id);
}

/* B11.5 (PR #146): once close(fd) returned, no instance keeps a registration of the
 * incarnation it removed, unless another guest fd shared the description when the close
 * decided (26de80c keeps it then, as Linux keeps the item while the file lives; a sibling
 * closing that last dup before this close returns does not make it this close's to clear)
 * or still does. Registrations are told apart by generation: while the close was in flight
 * the number may have been reused, registered, and closed again as a dup, and what is left of
 * that registration is the later close's business. */
void check_close_hygiene(world_t *w, int fd, const op_rec_t *close) {
  shim_t *s = &w->shim;
  cf_oracle_begin();
  if (!close->close_shared && !description_open_elsewhere(s, fd, close->close_ofd)) {
    for (epoll_instance_t *inst = s->epoll_live; inst; inst = inst->live_next)
      if (inst->regs[fd].active && inst->regs[fd].generation == close->close_generation)
        cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.close-hygiene"),
                "fd %d was closed but an epoll instance still has it registered (data 0x%llx)", fd,
                (unsigned long long)inst->regs[fd].data);
  }
  cf_oracle_end();
}

/* B11.4 on the DEL call itself (PR #332: the batched DEL stopped at the first ENOENT, the
 * filter an EPOLLONESHOT had already used up, and leaked the other knote). The caller saw the
 * DEL return 0 with no other ctl, close or dup touching the number from its commit point on,
 * so every instance's knotes on the number's current host fd with its udata belong to a
 * registration: only ctls add knotes, and they would have touched the number. Unlike the
 * quiet-point scan this holds while siblings are inside syscalls. */
void check_del_left_no_knote(world_t *w, int fd) {
  shim_t *s = &w->shim;
  cf_oracle_begin();
  const fd_entry_t *e = &s->fd_table[fd];
  if (e->type != FD_CLOSED && e->host_fd >= 0 && !w->quarantined[fd]) {
    for (epoll_instance_t *inst = s->epoll_live; inst; inst = inst->live_next) {
      int kq = instance_kq(w, inst, NULL);
      if (kq < 0 || inst->regs[fd].active) continue;
      ks_kevent_t kn[MAX_KNOTES];
      int n = ks_kqueue_knotes(w->host, kq, kn, MAX_KNOTES);
      for (int i = 0; i < n && i < MAX_KNOTES; i++)
        if ((int)kn[i].ident == e->host_fd && udata_fd(kn[i].udata) == (uint64_t)fd)
          cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.knote-registered"),
                  "epoll_ctl(DEL, %d) returned 0 but left the knote (host fd %d, filter %d)",
                  fd, e->host_fd, kn[i].filter);
    }
  }
  cf_oracle_end();
}

static oneshot_track_t *oneshot_of(world_t *w, const epoll_instance_t *inst) {
  uint64_t serial = cf_pool_serial(inst);
  oneshot_track_t *free_slot = &w->oneshot[0];
  for (int i = 0; i < 8; i++) {
    if (w->oneshot[i].inst == inst && w->oneshot[i].serial == serial) return &w->oneshot[i];
    if (!w->oneshot[i].inst) free_slot = &w->oneshot[i];
  }
  memset(free_slot, 0, sizeof *free_slot);
  free_slot->inst = inst;
  free_slot->serial = serial;
  return free_slot;
}

void check_oneshot_armed(world_t *w, epoll_instance_t *inst, int fd) {
  oneshot_of(w, inst)->reported[fd] = false;
}

/* B11.7: an EPOLLONESHOT registration reports at most once per arm. */
void check_oneshot_report(world_t *w, epoll_instance_t *inst, int fd) {
  oneshot_track_t *o = oneshot_of(w, inst);
  if (o->reported[fd])
    cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.oneshot-once"),
            "EPOLLONESHOT fd %d reported twice without a MOD re-arming it", fd);
  o->reported[fd] = true;
}

/* B11.10: generations strictly increase across incarnations. */
void check_generation(world_t *w, int fd) {
  uint64_t gen = w->shim.fd_table[fd].generation;
  if (gen <= w->max_generation)
    cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.generation-monotonic"),
            "fd %d got generation %llu after %llu was handed out", fd, (unsigned long long)gen,
            (unsigned long long)w->max_generation);
  w->max_generation = gen;
}

/* ---- liveness ------------------------------------------------------------------------------- */

static bool someone_waits_on(world_t *w, const epoll_instance_t *inst) {
  for (int i = 0; i < SHIM_MAX_THREADS; i++)
    if (w->started[i] && w->threads[i].in_kevent && w->threads[i].pwait_inst == inst) return true;
  return false;
}

void check_liveness_at_quiescence(void *arg) {
  world_t *w = arg;
  shim_t *s = &w->shim;
  ks_epoll_event_t ref[MAX_EVENTS], kept[MAX_EVENTS];
  /* Nobody may sleep in epoll_pwait while Linux would have woken it. */
  for (int i = 0; i < SHIM_MAX_THREADS; i++) {
    guest_thread_t *t = &w->threads[i];
    if (!w->started[i] || !t->in_kevent || !t->op) continue;
    op_rec_t *r = t->op;
    int n = ks_epoll_wait(w->lin, r->pin_epfd, ref, MAX_EVENTS, 0);
    n = oracle_filter_reference(w, ref, n < 0 ? 0 : n, kept);
    if (n > 0)
      cf_fail("liveness", SHIM_SYSTEM, CF_SITE("liveness.pwait-sleeps-while-ready"),
              "thread %d sleeps in epoll_pwait(%d) while fd %d is ready on Linux (events 0x%x)",
              t->id, t->pwait_epfd, (int)(kept[0].data & 63), kept[0].events);
  }
  /* A readied registered fd is reported by a timeout-0 pwait. */
  if (s->fd_lock.owner) return; /* a thread stopped inside the table: nothing to probe */
  guest_thread_t probe = {.id = SHIM_MAX_THREADS, .shim = s};
  s->observer = NULL;
  for (epoll_instance_t *inst = s->epoll_live; inst; inst = inst->live_next) {
    int epfd = -1;
    if (instance_kq(w, inst, &epfd) < 0 || someone_waits_on(w, inst) || inst->lock.owner) continue;
    linux_epoll_event_t out[MAX_EVENTS];
    int nshim = sys_epoll_pwait(s, &probe, epfd, out, MAX_EVENTS, 0);
    int nref = ks_epoll_wait(w->lin, epfd, ref, MAX_EVENTS, 0);
    oracle_compare_events(w, inst, out, nshim < 0 ? 0 : nshim, ref, nref < 0 ? 0 : nref,
                          UINT64_MAX, -1, "liveness.probe", "liveness");
  }
}
