/* poll.c: Linux epoll on a kqueue host (elfuse src/syscall/poll.c at 3209f18, the fixes of
 * PR #73, PR #5, PR #146, 26de80c and PR #332; spec §B4-§B7).
 *
 * An epoll instance is a host kqueue plus regs[], indexed by guest fd number. A registration
 * becomes one knote per direction (EVFILT_READ for EPOLLIN/EPOLLRDHUP, EVFILT_WRITE for
 * EPOLLOUT) keyed on the target's persistent host fd, with udata = the guest fd (plus the
 * registration's stamp, see epoll-146-pwait-no-generation), EV_CLEAR for
 * EPOLLET and EV_ONESHOT plus the software oneshot_armed flag for EPOLLONESHOT. pwait merges
 * kevents by udata. Not modelled: the wakeup pipe and 200 ms slices (they only re-check
 * signals, which the guest never sends), pty masters, EPOLLEXCLUSIVE. */
#include <sys/stat.h>

#include "shim.h"

#define KEVENT_BUF (2 * FD_TABLE_SIZE)

/* ---- instances ------------------------------------------------------------------------------ */

static void instance_free(shim_t *s, epoll_instance_t *inst) {
  cf_mutex_lock(&s->fd_lock);
  for (epoll_instance_t **pp = &s->epoll_live; *pp; pp = &(*pp)->live_next) {
    if (*pp == inst) {
      *pp = inst->live_next;
      s->epoll_live_count--;
      break;
    }
  }
  cf_mutex_unlock(&s->fd_lock);
  cf_pool_free(&s->inst_pool, inst);
}

/* A reference for an in-flight call, taken under fd_lock (PR #146). */
epoll_instance_t *epoll_instance_acquire(shim_t *s, int epfd) {
  if (epfd < 0 || epfd >= FD_TABLE_SIZE) return NULL;
  cf_mutex_lock(&s->fd_lock);
  fd_entry_t *e = &s->fd_table[epfd];
  epoll_instance_t *inst = e->type == FD_EPOLL ? e->dir : NULL;
  /* epoll-146-instance-uaf: before c711243 calls used the pointer without a reference. */
  if (inst && !cf_bug(CF_BUG_EPOLL_146_INSTANCE_UAF)) inst->refcount++;
  cf_mutex_unlock(&s->fd_lock);
  return inst;
}

static void instance_put(shim_t *s, epoll_instance_t *inst) {
  cf_mutex_lock(&s->fd_lock);
  int left = --inst->refcount;
  cf_mutex_unlock(&s->fd_lock);
  if (left == 0) instance_free(s, inst);
}

/* The epoll fd of a ctl/pwait, resolved once: the host ref (borrowed when single-threaded,
 * pinned otherwise, as host_fd_ref_open at 3209f18) and the instance reference in one fd_lock
 * section, so both come from the same incarnation of epfd. Upstream resolves the number twice
 * (host_fd_ref_open, then epoll_instance_acquire); a close of epfd in between answered EINVAL
 * and a close+reuse by another epoll paired one instance's kqueue with another's regs
 * (epoll-146-epfd-relookup). O_PATH: EBADF, as Linux's fdget(). */
static int epoll_ref_open(shim_t *s, guest_thread_t *t, int epfd, host_fd_ref_t *ref,
                          epoll_instance_t **inst) {
  *inst = NULL;
  if (cf_bug(CF_BUG_EPOLL_146_EPFD_RELOOKUP)) {
    int ret = host_fd_ref_open_io(s, t, epfd, ref);
    if (ret == 0) *inst = epoll_instance_acquire(s, epfd);
    return ret;
  }
  *ref = (host_fd_ref_t){.fd = -1};
  if (epfd < 0 || epfd >= FD_TABLE_SIZE) {
    shim_observe(s, t, SHIM_AT_RESOLVE, epfd, -EBADF);
    return -EBADF;
  }
  bool single = thread_is_single_active(s);
  cf_mutex_lock(&s->fd_lock);
  const fd_entry_t *e = &s->fd_table[epfd];
  int h = -EBADF;
  if (e->type != FD_CLOSED && e->type != FD_PATH) {
    h = e->host_fd;
    if (!single) host_fd_ref_pin_locked(s, t, epfd, ref, NULL);
  }
  if (h >= 0 && e->type == FD_EPOLL && e->dir) {
    *inst = e->dir;
    if (!cf_bug(CF_BUG_EPOLL_146_INSTANCE_UAF)) e->dir->refcount++;
  }
  shim_observe(s, t, SHIM_AT_RESOLVE, epfd, h < 0 ? h : 0);
  cf_mutex_unlock(&s->fd_lock);
  if (h < 0) return h;
  ref->fd = h;
  return 0;
}

/* The table's reference (fd_cleanup_entry) goes here. */
void epoll_instance_release(shim_t *s, epoll_instance_t *inst) { instance_put(s, inst); }

/* The in-flight call's reference. */
static void epoll_instance_done(shim_t *s, epoll_instance_t *inst) {
  if (!cf_bug(CF_BUG_EPOLL_146_INSTANCE_UAF)) instance_put(s, inst);
}

/* Called under fd_lock by the dup path. */
void epoll_dup_fd(shim_t *s, epoll_instance_t *inst) {
  (void)s;
  inst->refcount++;
}

int sys_epoll_create1(shim_t *s, guest_thread_t *t, int flags) {
  if (flags & ~EPOLL_CLOEXEC) return -EINVAL;
  int kq = ks_kqueue(s->host);
  if (kq < 0) return kq;
  epoll_instance_t *inst = cf_pool_alloc(&s->inst_pool);
  inst->kq_hostfd = kq;
  inst->refcount = 1;
  cf_mutex_init(&inst->lock, "inst->lock");
  cf_mutex_lock(&s->fd_lock);
  inst->live_next = s->epoll_live;
  s->epoll_live = inst;
  s->epoll_live_count++;
  cf_mutex_unlock(&s->fd_lock);
  /* fd_alloc_dir: type, host fd, instance and flags published together (PR #146). */
  int fd = fd_alloc(s, t, FD_EPOLL, kq, (flags & EPOLL_CLOEXEC) ? LINUX_O_CLOEXEC : 0, inst, NULL);
  if (fd < 0) {
    instance_free(s, inst);
    ks_close(s->host, kq);
  }
  return fd;
}

/* The close hook (PR #146, with 26de80c's retention): fd_lock is held. No EV_DELETE: the host
 * close that follows drops the knotes keyed on the number's host fd. */
void epoll_note_fd_closed(shim_t *s, int fd, uint64_t ofd_id) {
  for (int other = 0; other < FD_TABLE_SIZE; other++) {
    if (other != fd && s->fd_table[other].type != FD_CLOSED &&
        s->fd_table[other].ofd_id == ofd_id)
      return; /* another guest fd still shares the description: keep (matches Linux) */
  }
  for (epoll_instance_t *inst = s->epoll_live; inst; inst = inst->live_next) {
    cf_mutex_lock(&inst->lock);
    inst->regs[fd].active = false;
    inst->regs[fd].oneshot_armed = false;
    cf_mutex_unlock(&inst->lock);
  }
}

/* ---- epoll_ctl ------------------------------------------------------------------------------ */

static int kevent_change(shim_t *s, int kq, int ident, int16_t filter, uint16_t flags,
                         uint64_t udata) {
  ks_kevent_t ch = {(uintptr_t)ident, filter, flags, 0, 0, udata};
  return ks_kevent(s->host, kq, &ch, 1, NULL, 0, 0);
}

/* Does the host take any knote on the target (upstream epoll_target_pollable): a read filter
 * added disabled, so that a pwait on this kqueue cannot collect it, then deleted. */
static bool target_pollable(shim_t *s, int kq, int host_fd) {
  if (kevent_change(s, kq, host_fd, KS_EVFILT_READ, KS_EV_ADD | KS_EV_DISABLE, 0) < 0) return false;
  kevent_change(s, kq, host_fd, KS_EVFILT_READ, KS_EV_DELETE, 0);
  return true;
}

static bool wants_read(uint32_t events) { return events & (EPOLLIN | EPOLLRDHUP); }
static bool wants_write(uint32_t events) { return events & EPOLLOUT; }

/* DEL: PR #332 deletes each filter in its own call and ignores errors (a filter EV_ONESHOT
 * already removed answers ENOENT). */
static void epoll_del_filters(shim_t *s, int kq, int ident, uint32_t events, uint64_t udata) {
  if (cf_bug(CF_BUG_EPOLL_332_BATCHED_DEL)) {
    /* epoll-332-batched-del: one changelist and no eventlist, so the first ENOENT stops it
     * and the second filter's knote survives. */
    ks_kevent_t ch[2];
    int n = 0;
    if (wants_read(events))
      ch[n++] = (ks_kevent_t){(uintptr_t)ident, KS_EVFILT_READ, KS_EV_DELETE, 0, 0, udata};
    if (wants_write(events))
      ch[n++] = (ks_kevent_t){(uintptr_t)ident, KS_EVFILT_WRITE, KS_EV_DELETE, 0, 0, udata};
    if (n) ks_kevent(s->host, kq, ch, n, NULL, 0, 0);
    return;
  }
  if (wants_read(events)) kevent_change(s, kq, ident, KS_EVFILT_READ, KS_EV_DELETE, udata);
  if (wants_write(events)) kevent_change(s, kq, ident, KS_EVFILT_WRITE, KS_EV_DELETE, udata);
}

/* The target lookup: one fd_lock section validates the target and yields the host fd the
 * knote is keyed on (PR #73), and decides the errors Linux reports before touching the
 * interest list, in Linux's order (PR #332): EBADF, EPERM, EINVAL. On success fd_lock stays
 * held until the registration is stored: upstream releases it here, and a sibling's close of
 * the target before EV_ADD leaves the registration of a closed number, or with the host
 * reusing the number, a knote on another file reported as this fd (spec §B6;
 * epoll-73-snapshot-toctou). Holding it keeps the close path out, so the host fd cannot be
 * closed or reused under the kevent changes; the lock order fd_lock -> inst->lock is the close
 * hook's. */
static int ctl_target_snapshot(shim_t *s, guest_thread_t *t, int epfd, int op, int fd,
                               epoll_instance_t *inst, fd_entry_t *snap) {
  if (fd < 0 || fd >= FD_TABLE_SIZE) {
    shim_observe(s, t, SHIM_AT_CTL, fd, -EBADF);
    return -EBADF;
  }
  cf_mutex_lock(&s->fd_lock);
  *snap = s->fd_table[fd];
  bool locked = true;
  int ret = 0;
  if (snap->type == FD_CLOSED || snap->type == FD_PATH) {
    ret = -EBADF;
  } else if (cf_bug(CF_BUG_EPOLL_73_SNAPSHOT_TOCTOU)) {
    /* epoll-73-snapshot-toctou: upstream's fd_snapshot lets go of fd_lock here, and decides
     * EPERM by asking the host about the snapshot's descriptor (poll.c epoll_target_is_dir,
     * then fstat S_ISREG), which a sibling may have closed and the host handed to another
     * file since: a pipe can be refused as a regular file, a regular file let through. */
    cf_mutex_unlock(&s->fd_lock);
    locked = false;
    if (ks_fstat_mode(s->host, snap->host_fd) == S_IFREG) ret = -EPERM;
  } else if (snap->type == FD_REGULAR || snap->type == FD_DIR) {
    /* Under fd_lock the snapshot's descriptor is the slot's, so its type is what upstream's
     * probe would find, without the host call. */
    ret = -EPERM;
  }
  if (ret == 0 && (fd == epfd || !inst))
    ret = -EINVAL;
  else if (ret == 0 && op != EPOLL_CTL_ADD && op != EPOLL_CTL_DEL && op != EPOLL_CTL_MOD)
    ret = -EINVAL;
  if (ret < 0) shim_observe(s, t, SHIM_AT_CTL, fd, ret);
  if (ret < 0 && locked) cf_mutex_unlock(&s->fd_lock);
  return ret;
}

/* The ctl's commit point: its outcome is decided and its first kevent change, which a
 * sibling's kevent can observe, comes next. */
static int ctl_decided(shim_t *s, guest_thread_t *t, int fd, int ret) {
  shim_observe(s, t, SHIM_AT_CTL, fd, ret);
  return ret;
}

static int ctl_locked(shim_t *s, guest_thread_t *t, epoll_instance_t *inst, int kq, int op,
                      int fd, int target_host_fd, const fd_entry_t *snap,
                      const linux_epoll_event_t *ev) {
  epoll_reg_t *reg = &inst->regs[fd];
  /* ABA guard (PR #73): a registration stamped with another incarnation of this number is
   * gone, as Linux auto-removes on close. epoll-73-no-generation: no guard. */
  if (!cf_bug(CF_BUG_EPOLL_73_NO_GENERATION) && (reg->active || reg->oneshot_armed) &&
      reg->generation != snap->generation) {
    reg->active = false;
    reg->oneshot_armed = false;
  }
  if (op == EPOLL_CTL_DEL) {
    if (!reg->active) return ctl_decided(s, t, fd, -ENOENT);
    ctl_decided(s, t, fd, 0);
    epoll_del_filters(s, kq, target_host_fd, reg->events, (uint64_t)fd);
    reg->active = false;
    reg->oneshot_armed = false;
    return 0;
  }
  if (op == EPOLL_CTL_ADD && reg->active) return ctl_decided(s, t, fd, -EEXIST);
  if (op == EPOLL_CTL_MOD && !reg->active && !reg->oneshot_armed)
    return ctl_decided(s, t, fd, -ENOENT);
  ctl_decided(s, t, fd, 0);
  if (op == EPOLL_CTL_MOD) {
    /* PR #5: each filter in its own call, so a missing one does not stop the other. */
    kevent_change(s, kq, target_host_fd, KS_EVFILT_READ, KS_EV_DELETE, (uint64_t)fd);
    kevent_change(s, kq, target_host_fd, KS_EVFILT_WRITE, KS_EV_DELETE, (uint64_t)fd);
  }
  uint16_t kflags = KS_EV_ADD;
  if (ev->events & EPOLLET) kflags |= KS_EV_CLEAR;
  if (ev->events & EPOLLONESHOT) kflags |= KS_EV_ONESHOT;
  uint64_t stamp = cf_bug(CF_BUG_EPOLL_146_PWAIT_NO_GENERATION) ? 0 : ++inst->ctl_seq;
  uint64_t udata = (uint64_t)fd | (stamp << UDATA_STAMP_SHIFT);
  /* One filter per call, as PR #332 (3209f18): Linux decides EPERM from the target alone and
   * accepts any direction on a pollable file, so a write filter the host refuses with EINVAL
   * is dropped (the registration lives on without it) when the read filter took or the target
   * takes a knote at all; a refused read filter is EPERM. Any other error is returned (a
   * kevent failure changes the decided 0: announced again with the error); upstream then
   * undoes the filters this pass armed (epoll_undo_changes). */
  int16_t filters[2];
  int nf = 0;
  if (wants_read(ev->events)) filters[nf++] = KS_EVFILT_READ;
  if (wants_write(ev->events)) filters[nf++] = KS_EVFILT_WRITE;
  bool read_registered = false;
  for (int i = 0; i < nf; i++) {
    int r = kevent_change(s, kq, target_host_fd, filters[i], kflags, udata);
    if (r == 0) {
      read_registered |= filters[i] == KS_EVFILT_READ;
      continue;
    }
    if (r != -EINVAL) {
      if (i > 0) kevent_change(s, kq, target_host_fd, filters[0], KS_EV_DELETE, udata);
      return ctl_decided(s, t, fd, r);
    }
    if (filters[i] == KS_EVFILT_READ || !(read_registered || target_pollable(s, kq, target_host_fd)))
      return ctl_decided(s, t, fd, -EPERM);
  }
  reg->events = ev->events;
  reg->data = ev->data;
  reg->generation = snap->generation;
  reg->ofd_id = snap->ofd_id;
  reg->active = true;
  reg->oneshot_armed = false;
  reg->stored_at = stamp;
  return 0;
}

int sys_epoll_ctl(shim_t *s, guest_thread_t *t, int epfd, int op, int fd,
                  const linux_epoll_event_t *ev) {
  if (op != EPOLL_CTL_DEL && !ev) return -EFAULT; /* the event copy fails first (PR #332) */
  host_fd_ref_t epoll_ref;
  epoll_instance_t *inst;
  int ret = epoll_ref_open(s, t, epfd, &epoll_ref, &inst);
  if (ret < 0) return ret;
  t->ctl_inst = inst;
  host_fd_ref_t target_ref = {.fd = -1};
  if (cf_bug(CF_BUG_EPOLL_73_TRANSIENT_DUP)) {
    /* epoll-73-transient-dup: before b8569ab the ident came from host_fd_ref_open, then a
     * dup in a multi-threaded guest, closed (with its knotes) when the call returns. */
    ret = host_fd_ref_open_dup(s, t, fd, &target_ref);
    if (ret < 0) {
      shim_observe(s, t, SHIM_AT_CTL, fd, ret);
      goto out;
    }
  }
  fd_entry_t snap;
  ret = ctl_target_snapshot(s, t, epfd, op, fd, inst, &snap);
  int target_host_fd = target_ref.fd >= 0 ? target_ref.fd : snap.host_fd;
  if (ret == 0) {
    cf_mutex_lock(&inst->lock);
    ret = ctl_locked(s, t, inst, epoll_ref.fd, op, fd, target_host_fd, &snap, ev);
    cf_mutex_unlock(&inst->lock);
    if (!cf_bug(CF_BUG_EPOLL_73_SNAPSHOT_TOCTOU)) cf_mutex_unlock(&s->fd_lock);
  }
out:
  t->ctl_inst = NULL;
  if (inst) epoll_instance_done(s, inst);
  host_fd_ref_close(s, &target_ref);
  host_fd_ref_close(s, &epoll_ref);
  return ret;
}

/* ---- epoll_pwait ---------------------------------------------------------------------------- */

/* Is the knote (ident, filter) another registration's now? The kevent that named it may be
 * older than the merge: its host fd closed, reused by another file and registered in between.
 * fd_lock and inst->lock are held and every ctl holds both across its kevent changes, so an
 * open guest fd on that host fd whose live registration here wants the filter owns the knote. */
static bool knote_taken_over(shim_t *s, epoll_instance_t *inst, int ident, int16_t filter) {
  for (int x = 0; x < FD_TABLE_SIZE; x++) {
    const fd_entry_t *e = &s->fd_table[x];
    const epoll_reg_t *reg = &inst->regs[x];
    if (e->type == FD_CLOSED || e->host_fd != ident || !reg->active ||
        reg->generation != e->generation)
      continue;
    if (filter == KS_EVFILT_READ ? wants_read(reg->events) : wants_write(reg->events)) return true;
  }
  return false;
}

/* Merge the kevents into Linux events, one per guest fd (epoll_merge_event); inst->lock held.
 * Returns how many events were written. */
static int epoll_merge_events(shim_t *s, epoll_instance_t *inst, int kq, const ks_kevent_t *kev,
                              int n, linux_epoll_event_t *out, int maxevents) {
  int out_fd[FD_TABLE_SIZE];
  int nout = 0;
  for (int i = 0; i < n; i++) {
    uint64_t g = udata_fd(kev[i].udata);
    if (g >= FD_TABLE_SIZE) continue;
    epoll_reg_t *reg = &inst->regs[g];
    const fd_entry_t *e = &s->fd_table[g];
    /* The knote must be the current incarnation's: keyed on the number's host fd now, stamped
     * with its generation. A closing file's knote lives until the close path's host close,
     * after the number may have been reused and registered again (PR #146, c711243, left pwait
     * without a generation check, relying on the close hook; epoll-146-pwait-no-generation).
     * fd_lock is held by the caller. */
    bool stale = !cf_bug(CF_BUG_EPOLL_146_PWAIT_NO_GENERATION) && reg->active &&
                 (e->type == FD_CLOSED || e->host_fd != (int)kev[i].ident ||
                  e->generation != reg->generation);
    if (!reg->active || stale) {
      /* 26de80c: an orphan knote (its registration is gone, or it is stale) would keep a
       * level-triggered wait spinning; delete it, keyed by the ident the kevent came back
       * with, unless that knote is a newer registration's (epoll-26de80c-orphan-delete:
       * upstream deletes it all the same, and that registration never reports again). */
      if (cf_bug(CF_BUG_EPOLL_26DE80C_ORPHAN_DELETE) ||
          !knote_taken_over(s, inst, (int)kev[i].ident, kev[i].filter))
        kevent_change(s, kq, (int)kev[i].ident, kev[i].filter, KS_EV_DELETE, kev[i].udata);
      continue;
    }
    if (reg->oneshot_armed) continue; /* the other filter of a fired EPOLLONESHOT */
    /* An event from a knote of an earlier registration, collected before a ctl replaced it
     * (possibly for another file at the same number and reused host fd): reporting it would
     * give the new data and use up a new EPOLLONESHOT arm. The new knote was evaluated by
     * EV_ADD, so the next kevent reports it if it is ready. epoll-146-pwait-no-generation:
     * upstream merges it. */
    if (!cf_bug(CF_BUG_EPOLL_146_PWAIT_NO_GENERATION) && udata_stamp(kev[i].udata) != reg->stored_at)
      continue;
    uint32_t bits = kev[i].filter == KS_EVFILT_READ ? EPOLLIN : EPOLLOUT;
    bits &= reg->events;
    if (kev[i].flags & KS_EV_EOF) {
      bits |= EPOLLHUP;
      if (kev[i].filter == KS_EVFILT_READ && (reg->events & EPOLLRDHUP)) bits |= EPOLLRDHUP;
    }
    if (kev[i].flags & KS_EV_ERROR) bits |= EPOLLERR;
    if (!bits) continue;
    int j = 0;
    while (j < nout && out_fd[j] != (int)g) j++;
    if (j == nout) {
      if (nout == maxevents) continue;
      out_fd[nout] = (int)g;
      out[nout].events = 0;
      out[nout].data = reg->data;
      nout++;
    }
    out[j].events |= bits;
  }
  for (int j = 0; j < nout; j++)
    if (inst->regs[out_fd[j]].events & EPOLLONESHOT) inst->regs[out_fd[j]].oneshot_armed = true;
  return nout;
}

int sys_epoll_pwait(shim_t *s, guest_thread_t *t, int epfd, linux_epoll_event_t *events,
                    int maxevents, int64_t timeout) {
  host_fd_ref_t epoll_ref;
  epoll_instance_t *inst;
  int ret = epoll_ref_open(s, t, epfd, &epoll_ref, &inst);
  if (ret < 0) return ret;
  if (maxevents <= 0 && inst) {
    epoll_instance_done(s, inst);
    inst = NULL;
  }
  if (!inst) {
    shim_observe(s, t, SHIM_AT_INSTANCE, epfd, -EINVAL);
    host_fd_ref_close(s, &epoll_ref);
    return -EINVAL;
  }
  if (maxevents > 128) maxevents = 128;
  ks_kevent_t kev[KEVENT_BUF];
  int64_t deadline = timeout > 0 ? cf_now() + timeout : 0;
  t->pwait_inst = inst;
  t->pwait_epfd = epfd;
  for (;;) {
    t->in_kevent = true;
    int n = ks_kevent(s->host, epoll_ref.fd, NULL, 0, kev, KEVENT_BUF, timeout);
    t->in_kevent = false;
    t->pwait_kev = kev;
    t->pwait_nkev = n > 0 ? n : 0;
    shim_observe(s, t, SHIM_AT_KEVENT, epfd, n);
    if (n < 0) {
      t->pwait_nkev = 0;
      ret = n;
      break;
    }
    /* The instance is walked under its lock, never across the blocking kevent (PR #146), and
     * under fd_lock (taken first, the lock order) so the merge can tell stale knotes. */
    bool table_locked = !cf_bug(CF_BUG_EPOLL_146_PWAIT_NO_GENERATION);
    if (table_locked) cf_mutex_lock(&s->fd_lock);
    cf_mutex_lock(&inst->lock);
    ret = epoll_merge_events(s, inst, epoll_ref.fd, kev, n, events, maxevents);
    shim_observe(s, t, SHIM_AT_MERGE, epfd, ret);
    t->pwait_nkev = 0;
    cf_mutex_unlock(&inst->lock);
    if (table_locked) cf_mutex_unlock(&s->fd_lock);
    /* Everything returned was filtered out: wait again rather than report a spurious zero
     * (fc2a9b0), for what is left of a finite timeout. epoll-3209f18-pwait-early-zero:
     * upstream returns the 0 (it re-enters the wait only for muted usbfs knotes). */
    if (ret > 0 || n == 0 || timeout == 0 || cf_bug(CF_BUG_EPOLL_3209F18_PWAIT_EARLY_ZERO)) break;
    if (timeout > 0) {
      timeout = deadline - cf_now();
      if (timeout <= 0) break;
    }
  }
  t->pwait_inst = NULL;
  epoll_instance_done(s, inst);
  host_fd_ref_close(s, &epoll_ref);
  return ret;
}
