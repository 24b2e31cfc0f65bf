/* oracle.c: the differential oracle. A Linux reference kernel (the simulated kernel's epoll,
 * fs/eventpoll.c semantics) is fed every guest operation at the shim's commit point for it,
 * inside an oracle section, so both see one order of operations; return values, errnos, bytes
 * read and every epoll_pwait result (events, data) must agree.
 *
 * Descriptors resolved at the start of a call (epfd of ctl/pwait, the fd of read/write/ioctl,
 * the source of dup) are pinned in the reference with F_DUPFD at PIN_BASE, as Linux's fdget
 * pins the file for the call, so a close racing the call affects both sides alike. The file a
 * close (or a dup2 over an open number) removes is pinned until that call returns: Linux
 * defers the final fput to the closer's return to user space, as the shim closes the host fd
 * after leaving fd_lock.
 *
 * The differences it lets pass are listed in one place, tolerated.c, each with its reason and
 * upstream reference; every place below that applies one is marked WHITELIST and asks
 * tolerated() first, so an entry taken off the list is reported again. */
#include <stdio.h>

#include "world.h"
#include "tolerated.h"

static void touch(world_t *w, int fd) {
  if (fd < 0 || fd >= FD_TABLE_SIZE) return;
  w->last_change[fd] = ++w->change_seq;
}

/* A new file is installed at fd: a new incarnation of the number; whatever was quarantined
 * there is gone. */
static void installed(world_t *w, int fd) {
  if (fd < 0 || fd >= FD_TABLE_SIZE) return;
  touch(w, fd);
  w->install_seq[fd] = w->change_seq;
  w->quarantined[fd] = false;
}

static void release_pin(world_t *w, int *pin) {
  if (*pin >= 0) ks_close(w->lin, *pin);
  *pin = -1;
}

static int ref_pin(world_t *w, int fd) {
  if (fd < 0 || fd >= FD_TABLE_SIZE) return -EBADF;
  return ks_fcntl(w->lin, fd, F_DUPFD, PIN_BASE);
}

/* The reference lowest-free number must stay inside the guest table, or it is EMFILE. */
static long within_table(world_t *w, long fd) {
  if (fd >= FD_TABLE_SIZE) {
    ks_close(w->lin, (int)fd);
    return -EMFILE;
  }
  return fd;
}

static long ref_create(world_t *w, op_rec_t *r) {
  const op_t *op = r->op;
  bool cloexec = op->a & 1;
  long ret;
  switch (op->kind) {
  case OP_EVENTFD:
    return within_table(w, ks_eventfd(w->lin, 0, EFD_NONBLOCK | (cloexec ? EFD_CLOEXEC : 0)));
  case OP_PIPE:
  case OP_SOCKETPAIR:
    ret = op->kind == OP_PIPE
              ? ks_pipe2(w->lin, r->ref_fds, O_NONBLOCK | (cloexec ? O_CLOEXEC : 0))
              : ks_socketpair(w->lin, AF_UNIX,
                              SOCK_STREAM | SOCK_NONBLOCK | (cloexec ? SOCK_CLOEXEC : 0), 0,
                              r->ref_fds);
    if (ret == 0 && r->ref_fds[1] >= FD_TABLE_SIZE) {
      ks_close(w->lin, r->ref_fds[0]);
      ks_close(w->lin, r->ref_fds[1]);
      ret = -EMFILE;
    }
    return ret;
  case OP_OPEN_PATH:
    return within_table(w, ks_open_path(w->lin, cloexec ? O_CLOEXEC : 0));
  case OP_OPEN_REGULAR:
    return within_table(w, ks_open_regular(w->lin, O_NONBLOCK | (cloexec ? O_CLOEXEC : 0)));
  case OP_EPOLL_CREATE:
    return within_table(w, ks_epoll_create1(w->lin, cloexec ? EPOLL_CLOEXEC : 0));
  default:
    return -EINVAL;
  }
}

/* Linux ioctl(FIONBIO) succeeds on any open descriptor but O_PATH ones. The reference keeps
 * its files non-blocking (it must never block), so only the answer is modelled. */
static long ref_fionbio(world_t *w, int fd) {
  int fl = ks_fcntl(w->lin, fd, F_GETFL, 0);
  if (fl < 0) return fl;
  return (fl & O_PATH) ? -EBADF : 0;
}

static int64_t ref_epoll_of(world_t *w, op_rec_t *r) {
  return ks_fd_ofd_id(w->lin, r->pin_epfd >= 0 ? r->pin_epfd : r->op->a);
}

/* The items of (epoll, fd, fd's current file) are replaced by a MOD and gone after a DEL. */
static void retire_items(world_t *w, int64_t ep, int fd) {
  int64_t ofd = ks_fd_ofd_id(w->lin, fd);
  for (int i = 0; i < MAX_OPS; i++)
    if (w->data_live[i] && w->data_ep[i] == ep && w->data_fd[i] == fd && w->data_ofd[i] == ofd)
      w->data_live[i] = false;
}

static void remember_registration(world_t *w, op_rec_t *r) {
  int fd = r->op->c;
  int64_t ep = ref_epoll_of(w, r);
  uint64_t serial = r->ev.data >> 6;
  retire_items(w, ep, fd);
  if (r->op->b == EPOLL_CTL_DEL || serial >= MAX_OPS) return;
  w->data_inc[serial] = w->install_seq[fd];
  w->data_ofd[serial] = ks_fd_ofd_id(w->lin, fd);
  w->data_fd[serial] = fd;
  w->data_ep[serial] = ep;
  w->data_events[serial] = r->ev.events;
  w->data_nested[serial] = r->target_type == FD_EPOLL;
  w->data_live[serial] = true;
}

/* Does the reference epoll hold an item for fd's current file from an earlier incarnation? */
static bool has_stale_item(world_t *w, op_rec_t *r) {
  int fd = r->op->c;
  int64_t ep = ref_epoll_of(w, r), ofd = ks_fd_ofd_id(w->lin, fd);
  for (int i = 0; i < MAX_OPS; i++)
    if (w->data_live[i] && w->data_ep[i] == ep && w->data_fd[i] == fd && w->data_ofd[i] == ofd &&
        w->data_inc[i] != w->install_seq[fd])
      return true;
  return false;
}

/* dup's source is pinned from its lookup to its install (the shim's host dup in between is
 * what the new entry then holds). Once the new descriptor is installed, or the dup failed,
 * nothing holds the source for the rest of the call: Linux's dup looks it up and installs it
 * in one file_lock section, and a pin kept until the call returns kept the file open in the
 * reference only (a racing close of every other descriptor saw EPIPE in the shim). */
static void drop_source_pin(world_t *w, op_rec_t *r) { release_pin(w, &r->pin_fd); }

/* The whole operation on the reference, with the pinned descriptor where there is one. */
static long ref_apply(world_t *w, op_rec_t *r) {
  const op_t *op = r->op;
  int fd = r->pin_fd >= 0 ? r->pin_fd : op->a;
  int epfd = r->pin_epfd >= 0 ? r->pin_epfd : op->a;
  long ret;
  switch (op->kind) {
  case OP_CLOSE:
    r->pin_old = ref_pin(w, op->a); /* Linux's deferred fput: released when close returns */
    ret = ks_close(w->lin, op->a);
    if (ret == 0) installed(w, op->a); /* a closed number is a new incarnation too */
    return ret;
  case OP_DUP:
    ret = within_table(w, r->pin_fd >= 0 ? ks_fcntl(w->lin, fd, F_DUPFD, 0) : ks_dup(w->lin, fd));
    drop_source_pin(w, r);
    installed(w, (int)ret);
    return ret;
  case OP_DUP2:
  case OP_DUP3:
    if (op->a == op->b)
      return op->kind == OP_DUP3 ? ks_dup3(w->lin, op->a, op->b, 0) : ks_dup2(w->lin, op->a, op->b);
    r->pin_old = ref_pin(w, op->b); /* the replaced file, released when the call returns */
    ret = ks_dup3(w->lin, fd, op->b, (op->kind == OP_DUP3 && (op->c & 1)) ? O_CLOEXEC : 0);
    drop_source_pin(w, r);
    if (ret < 0 && r->pin_old >= 0) {
      /* A failed dup2 (bad oldfd) never touches newfd: nothing was replaced, so nothing is
       * held past the call (a held pin kept a pipe end open in the reference only). */
      ks_close(w->lin, r->pin_old);
      r->pin_old = -1;
    }
    installed(w, (int)ret);
    return ret;
  case OP_WRITE:
    return ks_write(w->lin, fd, r->wbuf, sizeof r->wbuf);
  case OP_READ:
    return ks_read(w->lin, fd, r->ref_rbuf, sizeof r->ref_rbuf);
  case OP_CTL: {
    ks_epoll_event_t ev = {r->ev.events, r->ev.data};
    touch(w, op->c);
    r->commit_change = w->last_change[op->c];
    r->quarantined = w->quarantined[op->c];
    r->stale_item = has_stale_item(w, r);
    ret = ks_epoll_ctl(w->lin, epfd, op->b, op->c, &ev);
    if (ret == 0) remember_registration(w, r);
    return ret;
  }
  case OP_PWAIT:
    return ks_epoll_wait(w->lin, epfd, r->ref_events, MAX_EVENTS, 0);
  case OP_IOCTL:
    if (op->b == 0) return ref_fionbio(w, fd);
    return ks_fcntl(w->lin, op->a, F_SETFD, op->b == 1 ? FD_CLOEXEC : 0);
  case OP_CLONE:
  case OP_EXIT:
    return 0;
  default:
    ret = ref_create(w, r);
    if (op->kind == OP_PIPE || op->kind == OP_SOCKETPAIR) {
      if (ret == 0) {
        installed(w, r->ref_fds[0]);
        installed(w, r->ref_fds[1]);
      }
    } else if (ret >= 0) {
      installed(w, (int)ret);
    }
    return ret;
  }
}

static void apply_once(world_t *w, op_rec_t *r) {
  if (r->applied) return;
  r->applied = true;
  r->ref_ret = ref_apply(w, r);
}

/* WHITELIST dup-then-close, at the ctl's commit point: the reference answered differently
 * because it still holds the item of an earlier incarnation of the number. Drop that item and
 * redo an ADD the shim accepted, now rather than when the ctl returns: a sibling's pwait can
 * collect the shim's new knote (and use up its EPOLLONESHOT arm) before then, and the
 * reference must have had the item to report at that sample too. */
static void resync_stale_item(world_t *w, op_rec_t *r, int shim_result) {
  const op_t *op = r->op;
  int epfd = r->pin_epfd >= 0 ? r->pin_epfd : op->a;
  r->stale_resynced = true;
  if (ks_epoll_ctl(w->lin, epfd, EPOLL_CTL_DEL, op->c, NULL) == 0)
    retire_items(w, ref_epoll_of(w, r), op->c);
  if (op->b == EPOLL_CTL_ADD && shim_result == 0) {
    ks_epoll_event_t ev = {r->ev.events, r->ev.data};
    if (ks_epoll_ctl(w->lin, epfd, EPOLL_CTL_ADD, op->c, &ev) == 0) remember_registration(w, r);
  }
}

/* WHITELIST concurrent change, the reference's side effect: a ctl is applied to the reference
 * at its commit point, before the shim's kevent changes make it visible to a sibling's kevent,
 * so in that window the reference item is more available than the shim's knotes. A pwait
 * sampling the reference then can use up the EPOLLONESHOT arm of an item whose knote the
 * shim has not added yet (the shim ordered that pwait before the change). Such items are
 * recorded at the sample, and when the last ctl in flight on the number returns, the reference
 * item is re-armed (a MOD with its own settings) if the shim's registration is still armed:
 * active, not fired, and not held by a pwait between its kevent and its merge (which will
 * report it). The other way round cannot happen (the shim never sees the change first), and
 * EPOLLET needs nothing: extra shim reports of it are whitelisted, missing ones are not. */
static void record_rearm(world_t *w, guest_thread_t *t, op_rec_t *r) {
  if (!tolerated(TOL_CONCURRENT_CHANGE)) return;
  for (int i = 0; i < r->ref_nevents; i++) {
    int fd = (int)(r->ref_events[i].data & 63);
    uint64_t serial = r->ref_events[i].data >> 6;
    if (serial >= MAX_OPS || !w->data_live[serial] || w->ctl_inflight[fd] == 0) continue;
    if (!(w->data_events[serial] & EPOLLONESHOT) || w->data_inc[serial] != w->install_seq[fd])
      continue;
    if (w->nrearms == MAX_REARMS) continue;
    w->rearms[w->nrearms++] = (rearm_t){t->pwait_inst, cf_pool_serial(t->pwait_inst), fd, serial};
  }
}

/* WHITELIST concurrent pwaits, EPOLLONESHOT: two pwaits on one instance whose kevent-to-merge
 * windows overlap may give one EPOLLONESHOT report to either. The reference hands the arm to
 * the first sample (Linux's wait); the shim to the first merge (oneshot_armed). When this
 * merge reports an EPOLLONESHOT fd its own sample lacks and a sibling still between its sample
 * and its merge has it (same data), the event moves from the sibling's sample to this one: the
 * report is counted once on each side, attributed in the shim's order. */
static void take_oneshot_from_sibling(world_t *w, guest_thread_t *t, op_rec_t *r, int nshim) {
  if (!tolerated(TOL_ONESHOT_SPLIT)) return;
  for (int j = 0; j < nshim; j++) {
    int fd = (int)(r->out[j].data & 63);
    if (!(t->pwait_inst->regs[fd].events & EPOLLONESHOT) || r->ref_nevents == MAX_EVENTS) continue;
    bool mine = false;
    for (int i = 0; i < r->ref_nevents; i++)
      if ((int)(r->ref_events[i].data & 63) == fd) mine = true;
    for (int q = 0; q < SHIM_MAX_THREADS && !mine; q++) {
      op_rec_t *o = &w->recs[q];
      if (q == t->id || !w->started[q] || w->threads[q].op != o || !o->sampled ||
          w->threads[q].pwait_inst != t->pwait_inst)
        continue;
      for (int i = 0; i < o->ref_nevents && !mine; i++) {
        if (o->ref_events[i].data != r->out[j].data) continue;
        /* The sibling's sample saw the file at its own kevent: only the data (which
         * registration reported) carries over, the bits are this merge's. */
        r->ref_events[r->ref_nevents++] = (ks_epoll_event_t){r->out[j].events, o->ref_events[i].data};
        o->ref_events[i] = o->ref_events[--o->ref_nevents];
        mine = true;
      }
    }
  }
}

/* A reference descriptor of the epoll file `ep`: a guest number or a call's pin. */
static int ref_epoll_fd(world_t *w, int64_t ep) {
  for (int g = 0; g < FD_TABLE_SIZE; g++)
    if (ks_fd_ofd_id(w->lin, g) == ep) return g;
  for (int i = 0; i < SHIM_MAX_THREADS; i++)
    if (w->recs[i].pin_epfd >= 0 && ks_fd_ofd_id(w->lin, w->recs[i].pin_epfd) == ep)
      return w->recs[i].pin_epfd;
  return -1;
}

static bool shim_oneshot_armed(world_t *w, const rearm_t *a) {
  bool live = false;
  for (epoll_instance_t *inst = w->shim.epoll_live; inst; inst = inst->live_next)
    if (inst == a->inst && cf_pool_serial(inst) == a->inst_serial) live = true;
  if (!live) return false;
  const epoll_reg_t *reg = &a->inst->regs[a->fd];
  uint64_t data = (a->serial << 6) | (uint64_t)a->fd;
  if (!reg->active || reg->oneshot_armed || reg->data != data) return false;
  for (int i = 0; i < SHIM_MAX_THREADS; i++) {
    const guest_thread_t *q = &w->threads[i];
    if (!w->started[i] || q->pwait_inst != a->inst) continue;
    for (int k = 0; k < q->pwait_nkev; k++)
      if (udata_fd(q->pwait_kev[k].udata) == (uint64_t)a->fd &&
          udata_stamp(q->pwait_kev[k].udata) == reg->stored_at)
        return false; /* collected: that pwait's merge reports it */
  }
  return true;
}

static void settle_rearm(world_t *w, int fd) {
  int kept = 0;
  for (int i = 0; i < w->nrearms; i++) {
    rearm_t a = w->rearms[i];
    if (a.fd != fd) {
      w->rearms[kept++] = a;
      continue;
    }
    uint64_t sl = a.serial;
    if (!w->data_live[sl] || w->data_inc[sl] != w->install_seq[fd] ||
        w->data_ofd[sl] != ks_fd_ofd_id(w->lin, fd) || !shim_oneshot_armed(w, &a))
      continue;
    int epfd = ref_epoll_fd(w, w->data_ep[sl]);
    ks_epoll_event_t ev = {w->data_events[sl], (sl << 6) | (uint64_t)fd};
    if (epfd >= 0) ks_epoll_ctl(w->lin, epfd, EPOLL_CTL_MOD, fd, &ev);
  }
  w->nrearms = kept;
}

/* WHITELIST epoll target, at the ctl's commit point: the shim refused `fd == epfd` as numbers
 * while Linux, comparing files, accepted it (the epfd number was closed and reused by another
 * file after the ctl resolved it). The reference follows the shim's refusal there and then, so
 * that siblings meet the same interest list: an item the ADD registered is deleted again; a
 * MOD or DEL it carried out cannot be taken back, and the number is left out of comparison
 * until a new file is installed at it. */
static void follow_own_epoll_refusal(world_t *w, op_rec_t *r) {
  const op_t *op = r->op;
  int epfd = r->pin_epfd >= 0 ? r->pin_epfd : op->a;
  if (op->b == EPOLL_CTL_ADD)
    ks_epoll_ctl(w->lin, epfd, EPOLL_CTL_DEL, op->c, NULL);
  else
    w->quarantined[op->c] = true;
}

void oracle_observe(void *ctx, guest_thread_t *t, shim_point_t at, int arg, int result) {
  world_t *w = ctx;
  op_rec_t *r = t->op;
  if (!r) return;
  cf_oracle_begin();
  switch (at) {
  case SHIM_AT_RESOLVE:
    r->resolves++;
    if (result < 0) {
      apply_once(w, r); /* the call fails at its resolution: the reference fails there too */
    } else if (r->resolves == 1) {
      int pin = ref_pin(w, arg);
      if (r->op->kind == OP_CTL || r->op->kind == OP_PWAIT)
        r->pin_epfd = pin;
      else
        r->pin_fd = pin;
      if (pin < 0) {
        r->applied = true; /* the reference has no such descriptor: a difference */
        r->ref_ret = pin;
      }
    }
    break;
  case SHIM_AT_CLOSE:
    if (result == 0) {
      r->close_shared = shares_description(w, arg);
      r->close_generation = w->shim.fd_table[arg].generation;
      r->close_ofd = w->shim.fd_table[arg].ofd_id;
    }
    apply_once(w, r);
    break;
  case SHIM_AT_ALLOC:
  case SHIM_AT_DUP:
  case SHIM_AT_IO:
  case SHIM_AT_IOCTL:
  case SHIM_AT_INSTANCE:
    apply_once(w, r);
    if (at == SHIM_AT_DUP && result >= 0 && r->op->a != r->op->b) check_generation(w, result);
    if (at == SHIM_AT_ALLOC && result >= 0) check_generation(w, result);
    break;
  case SHIM_AT_CTL:
    if (r->ctl_counted) {
      /* WHITELIST unsupported host filter, from the failing kevent change on: the knote an
       * earlier change of this call added stays behind (upstream does not roll it back), and
       * the reference may hold the item its commit point added (or, when it refused the
       * ctl, e.g. EEXIST for an item kept alive by a dup, an item the shim no longer has);
       * a sibling's ctl on the number must not be compared before this call returns. */
      if ((result == -EINVAL || result == -EPERM) && r->target_type != FD_EPOLL &&
          tolerated(TOL_UNSUPPORTED_FILTER))
        w->quarantined[r->op->c] = true; /* (an epoll target's refusal: nested-loop-check) */
      break;
    }
    r->target_type = w->shim.fd_table[r->op->c].type;
    r->target_own_epoll = r->op->a == r->op->c ||
                          (r->target_type == FD_EPOLL && t->ctl_inst &&
                           w->shim.fd_table[r->op->c].dir == t->ctl_inst);
    /* WHITELIST unsupported host filter, dropped (PR #332): the ctl asks for a direction the
     * file now at the number refuses on the host (the number was reused under it); the shim
     * registers it without that filter, so that direction is never reported. An epoll
     * target's write filter is not one of these: the host never takes it, and an epoll is
     * never writable on Linux either, so dropping it loses nothing (PR #332's comment). */
    if (result == 0 && r->op->b != EPOLL_CTL_DEL && tolerated(TOL_UNSUPPORTED_FILTER) &&
        (((r->ev.events & (EPOLLIN | EPOLLRDHUP)) && !host_takes_filter(w, r->op->c, KS_EVFILT_READ)) ||
         ((r->ev.events & EPOLLOUT) && r->target_type != FD_EPOLL &&
          !host_takes_filter(w, r->op->c, KS_EVFILT_WRITE))))
      w->quarantined[r->op->c] = true;
    if (!r->ctl_counted) {
      r->ctl_counted = true;
      w->ctl_inflight[r->op->c]++;
    }
    apply_once(w, r);
    if (tolerated(TOL_STALE_ITEM) && r->stale_item && result != r->ref_ret)
      resync_stale_item(w, r, result);
    if (tolerated(TOL_EPOLL_TARGET) && r->target_own_epoll && result < 0 && r->ref_ret == 0)
      follow_own_epoll_refusal(w, r);
    /* The arm goes to the instance the ctl holds: its epfd number may have been closed or
     * replaced (dup2) since it was resolved, and a later pwait through another dup of that
     * instance sees the arm. */
    if (result == 0 && r->op->b != EPOLL_CTL_DEL && t->ctl_inst)
      check_oneshot_armed(w, t->ctl_inst, r->op->c);
    break;
  case SHIM_AT_UNPIN:
    /* Linux's fdput: the call's hold on the file ends where the shim's pin does, not at the
     * call's return, so a sibling that sees the file gone in between sees it on both sides. */
    if (r->op->kind == OP_CTL || r->op->kind == OP_PWAIT) release_pin(w, &r->pin_epfd);
    else release_pin(w, &r->pin_fd);
    break;
  case SHIM_AT_RETIRED:
    release_pin(w, &r->pin_old); /* the closer's deferred fput, where the shim's release is */
    break;
  case SHIM_AT_KEVENT:
    r->applied = true;
    r->ref_ret = result < 0 ? result : ref_apply(w, r);
    r->ref_nevents = r->ref_ret > 0 ? (int)r->ref_ret : 0;
    r->seq_at_kevent = w->change_seq;
    r->sampled = true;
    record_rearm(w, t, r);
    break;
  case SHIM_AT_MERGE:
    /* inst->lock is held: the shim's registrations are stable while we compare. */
    r->merged = true;
    r->sampled = false;
    take_oneshot_from_sibling(w, t, r, result);
    oracle_compare_events(w, t->pwait_inst, r->out, result, r->ref_events, r->ref_nevents,
                          r->seq_at_kevent, ref_epoll_of(w, r), "diff.epoll_pwait", "differential");
    for (int i = 0; i < result; i++) {
      int fd = (int)(r->out[i].data & 63);
      if (t->pwait_inst->regs[fd].events & EPOLLONESHOT) check_oneshot_report(w, t->pwait_inst, fd);
    }
    break;
  }
  cf_oracle_end();
}

/* ---- the end of a call ------------------------------------------------------------------------- */

static bool unsupported_filter(world_t *w, op_rec_t *r) {
  /* The shim failed a ctl where Linux accepted it because the host refused a filter: EINVAL,
   * or EPERM for a refused read filter (PR #332). */
  if (r->op->kind != OP_CTL || (r->ret != -EINVAL && r->ret != -EPERM) || r->ref_ret != 0 ||
      r->target_type == FD_EPOLL) /* the host's kqueue nesting rule: nested-loop-check */
    return false;
  return true;
}

/* A nested ADD the host's kqueue nesting rule answered differently from Linux's loop check:
 * Linux ELOOP, or the shim's EPERM (the host refused the read filter on a kqueue). */
static bool nested_loop_check_differs(const op_rec_t *r) {
  return r->op->kind == OP_CTL && r->op->b == EPOLL_CTL_ADD && r->target_type == FD_EPOLL &&
         !r->target_own_epoll && r->ret != r->ref_ret &&
         (r->ref_ret == -ELOOP || r->ret == -EPERM);
}

void oracle_op_done(world_t *w, guest_thread_t *t) {
  op_rec_t *r = t->op;
  const op_t *op = r->op;
  cf_oracle_begin();
  apply_once(w, r);
  if (r->ctl_counted) {
    w->ctl_inflight[op->c]--;
    r->undisturbed = w->ctl_inflight[op->c] == 0 && w->last_change[op->c] == r->commit_change;
    touch(w, op->c); /* its kevent changes are done: a change for pwaits sampled before */
    if (w->ctl_inflight[op->c] == 0) settle_rearm(w, op->c);
  }
  if (op->kind == OP_CTL && tolerated(TOL_UNSUPPORTED_FILTER) && unsupported_filter(w, r)) {
    /* WHITELIST unsupported host filter: quarantine the number until it is reused (unless a
     * new file was installed there since the commit point). */
    if (w->install_seq[op->c] <= r->commit_change) w->quarantined[op->c] = true;
  } else if (tolerated(TOL_NESTED_LOOP_CHECK) && nested_loop_check_differs(r)) {
    /* WHITELIST nested loop check: the two sides now hold different registrations of the
     * number; quarantine it until a new file is installed there. */
    if (w->install_seq[op->c] <= r->commit_change) w->quarantined[op->c] = true;
  } else if (r->stale_resynced) {
    /* WHITELIST dup-then-close: the answers differed because of Linux's stale item, which
     * resync_stale_item replaced by the shim's outcome at the commit point. */
  } else if (!(op->kind == OP_CTL &&
                (w->quarantined[op->c] || r->quarantined ||
                 (tolerated(TOL_EPOLL_TARGET) && r->target_own_epoll)))) {
    long ref_ret = r->ref_ret;
    if (op->kind == OP_PWAIT && r->merged) ref_ret = r->ret; /* events were compared at merge */
    bool same = r->ret == ref_ret;
    if (same && r->ret == 0 && (op->kind == OP_PIPE || op->kind == OP_SOCKETPAIR))
      same = r->fds[0] == r->ref_fds[0] && r->fds[1] == r->ref_fds[1];
    if (same && op->kind == OP_READ && r->ret > 0)
      same = memcmp(r->rbuf, r->ref_rbuf, (size_t)r->ret) == 0;
    if (!same) {
      cf_fail("differential", SHIM_SYSTEM, diff_site(op->kind, r->ret, ref_ret),
              "thread %d %s(%d, %d, %d) returned %ld (fds %d,%d), Linux %ld (fds %d,%d)",
              t->id, op_name(op->kind), op->a, op->b, op->c, r->ret, r->fds[0], r->fds[1],
              ref_ret, r->ref_fds[0], r->ref_fds[1]);
    }
  }
  /* B11.8: epoll_wait returns 0 only when its timeout has passed (Linux ep_poll). */
  if (op->kind == OP_PWAIT && r->ret == 0 && op->b != 0) {
    int64_t timeout = pwait_timeout(op->b);
    if (timeout < 0 || cf_now() < r->started_at + timeout)
      cf_fail("structural", SHIM_SYSTEM, CF_SITE("struct.pwait-early-zero"),
              "thread %d epoll_pwait(%d) returned 0 at tick %lld, before its timeout (%lld "
              "ticks from %lld)", t->id, op->a, (long long)cf_now(), (long long)timeout,
              (long long)r->started_at);
  }
  release_pin(w, &r->pin_fd);
  release_pin(w, &r->pin_old);
  release_pin(w, &r->pin_epfd);
  cf_oracle_end();
}
