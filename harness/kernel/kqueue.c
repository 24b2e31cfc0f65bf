/* kqueue.c: BSD kqueue semantics (kqueue(2) as on FreeBSD and macOS).
 *
 * - A knote is keyed by (ident, filter) within one kqueue. EV_ADD creates it or, if it exists,
 *   overwrites its flags and udata; EV_DELETE of a missing knote fails with ENOENT; an ident
 *   that is not an open descriptor fails with EBADF.
 * - Knotes belong to the descriptor number, not to the open file: closing a number drops every
 *   knote with that ident in every kqueue of the kernel, even while a dup keeps the file open
 *   (ks_kqueue_fd_closed, called by fd.c on close and on dup2 over an open number).
 * - A knote hooks onto its file as a watcher. On every state change of the file its filter is
 *   evaluated; when it fires the knote is "activated" and joins the kqueue's active queue
 *   (unless disabled). Every EV_ADD or EV_ENABLE also evaluates it, so re-adding a ready
 *   descriptor reports it again, EV_CLEAR or not.
 * - kevent collects from the active queue in order, evaluating each filter again: a knote that
 *   no longer fires leaves the queue; one that fires is reported with the filter's data and
 *   EV_EOF where the filter sets it. Then EV_ONESHOT deletes the knote, EV_DISPATCH disables it,
 *   EV_CLEAR leaves it inactive until the next activation, and any other knote stays queued
 *   (level-triggered). Disabled knotes are skipped and re-evaluated on EV_ENABLE.
 * - The changelist is applied in order. A failing change is reported as an EV_ERROR entry
 *   (data = errno) when the eventlist has room, and processing goes on; the call then returns
 *   the number of error entries without collecting events. Without room the call fails with
 *   that errno and stops there: earlier changes stay applied, later ones are not attempted.
 * - A dup of a kqueue descriptor is the same kqueue; the kqueue goes with its last descriptor.
 * Filters: EVFILT_READ and EVFILT_WRITE, as each file type defines them (kq_event). Epoll files
 * cannot be watched (EINVAL); O_PATH descriptors count as not open (EBADF).
 * - kqueue (a kqueue watching a kqueue; XNU bsd/kern/kern_event.c kqueue_kqfilter / filt_kqueue,
 *   FreeBSD alike): EVFILT_READ only (EVFILT_WRITE is EINVAL), data = knotes on the active
 *   queue (kq_count), fires while it is > 0. That count is not re-validated: a knote stays
 *   queued until a kevent collects it, so a kqueue reads as ready while it holds an activation
 *   whose condition has passed (a drained pipe) until someone collects it. A knote joining the
 *   active queue wakes the knotes watching its kqueue (kqueue_wakeup -> KNOTE on kq_sel); one
 *   already queued wakes nobody. A kqueue cannot watch itself (EINVAL, parentkq == kq), and
 *   nesting follows XNU's ceiling protocol: each kqueue has a level (0: never nested); adding
 *   a child to a parent whose level is set and lower than the child's is EINVAL; otherwise
 *   the parent's level becomes at least 2 and at least the child's + 1 (EINVAL past
 *   MAX_NESTED_KQ, 1000), the child's at least 1. Levels never go down. The protocol refuses
 *   A into B after B into A, but not every loop (it is a ceiling, not a graph walk): a loop it
 *   lets through is modelled too, and a wake-up goes round it once (a queued knote wakes
 *   nobody).
 * Readiness rules, with their source (FreeBSD sys_pipe.c / uipc_socket.c / uipc_usrreq.c and
 * XNU's equivalents; kevent(2)):
 * - pipe: EVFILT_READ only on the read end (EINVAL on the write end), data = bytes buffered,
 *   fires when data > 0 or with EV_EOF once the writer is gone; EVFILT_WRITE only on the write
 *   end, data = room, fires with room >= PIPE_BUF or with EV_EOF once the reader is gone
 *   (filt_piperead, filt_pipewrite, pipe_kqfilter). Every buffer change notifies both ends'
 *   knotes (pipeselwakeup on read and write), which is what re-fires an EV_CLEAR read knote
 *   after a partial read (upstream elfuse's EPOLLET comment).
 * - stream socket: EVFILT_READ watches so_rcv: data = bytes queued, EV_EOF once the receive
 *   side is shut (the peer's SHUT_WR or close); EVFILT_WRITE watches so_snd: data = room in
 *   the peer's receive buffer, EV_EOF once this end cannot send (filt_soread, filt_sowrite).
 *   A read notifies the reader's read knotes only; the room it frees wakes the peer's write
 *   knotes (uipc_rcvd -> sowwakeup(so2)), not the reader's own.
 * - eventfd (Linux only here) and regular files: no kqueue support in this kernel. */
#include "kernel_internal.h"

typedef struct ks_kqueue {
  ks_file_t file;
  ks_list_t link;            /* in k->kqueues */
  ks_list_t knotes;          /* every knote, in registration order */
  ks_list_t active;          /* activated, enabled knotes waiting to be collected */
  struct {                   /* the last removals, for ks_kqueue_knote_fate (a ring) */
    int ident;
    int16_t filter;
    uint8_t fate;
  } fates[KS_KNOTE_FATES];
  unsigned nfates;
  int level;                 /* XNU's kq_level: nesting ceiling (0: never nested) */
} ks_kqueue_t;

/* XNU's MAX_NESTED_KQ. */
#define KQ_MAX_NESTED 1000

typedef struct ks_knote {
  ks_watch_t watch;          /* on the file behind ident */
  ks_kqueue_t *kq;
  ks_list_t kq_link;         /* in kq->knotes */
  ks_list_t act_link;        /* in kq->active, or self-linked */
  int ident;
  int16_t filter;
  uint16_t flags;            /* EV_ADD plus EV_ONESHOT / EV_CLEAR / EV_DISPATCH as registered */
  uint64_t udata;
  bool disabled;
  bool activated;            /* fired since it was last collected */
} ks_knote_t;

#define KEPT_FLAGS (KS_EV_ADD | KS_EV_ONESHOT | KS_EV_CLEAR | KS_EV_DISPATCH)

static bool queued(const ks_knote_t *kn) { return !ks_list_empty(&kn->act_link); }

/* Evaluate the filter; on firing, mark the knote activated and queue it if enabled. */
static int evaluate(ks_kernel_t *k, ks_knote_t *kn, ks_kevent_t *ev) {
  ks_file_t *f = kn->watch.file;
  memset(ev, 0, sizeof *ev);
  int r = f->ops->kq_event(k, f, kn->filter, ev);
  if (r > 0) kn->activated = true;
  if (kn->activated && !kn->disabled && !queued(kn)) {
    ks_list_push_back(&kn->kq->active, &kn->act_link);
    ks_wake(k, &kn->kq->file, 0); /* kevent callers, and knotes watching this kqueue */
  }
  return r;
}

static void knote_notify(ks_kernel_t *k, ks_watch_t *w, uint32_t key) {
  (void)key; /* a knote re-evaluates its filter on every change, whatever the poll key */
  ks_kevent_t ev;
  evaluate(k, (ks_knote_t *)w, &ev);
}

static void knote_drop(ks_kernel_t *k, ks_watch_t *w) {
  ks_knote_t *kn = (ks_knote_t *)w;
  ks_list_del(&kn->watch.link);
  ks_list_del(&kn->kq_link);
  ks_list_del(&kn->act_link);
  ks_free(k, kn);
}

/* Remove a knote from its kqueue, recording why. */
static void knote_remove(ks_kernel_t *k, ks_knote_t *kn, ks_knote_fate_t fate) {
  ks_kqueue_t *kq = kn->kq;
  unsigned i = kq->nfates++ % KS_KNOTE_FATES;
  kq->fates[i].ident = kn->ident;
  kq->fates[i].filter = kn->filter;
  kq->fates[i].fate = (uint8_t)fate;
  knote_drop(k, &kn->watch);
}

static ks_knote_t *find_knote(ks_kqueue_t *kq, int ident, int16_t filter) {
  for (ks_list_t *l = kq->knotes.next; l != &kq->knotes; l = l->next) {
    ks_knote_t *kn = KS_CONTAINER(l, ks_knote_t, kq_link);
    if (kn->ident == ident && kn->filter == filter) return kn;
  }
  return NULL;
}

void ks_kqueue_fd_closed(ks_kernel_t *k, int fd) {
  for (ks_list_t *q = k->kqueues.next; q != &k->kqueues; q = q->next) {
    ks_kqueue_t *kq = KS_CONTAINER(q, ks_kqueue_t, link);
    for (ks_list_t *l = kq->knotes.next, *next; l != &kq->knotes; l = next) {
      next = l->next;
      ks_knote_t *kn = KS_CONTAINER(l, ks_knote_t, kq_link);
      if (kn->ident == fd) knote_remove(k, kn, KS_KNOTE_CLOSED);
    }
  }
}

static const ks_file_ops_t kqueue_ops;

/* XNU kqueue_kqfilter: may `child` be attached to `parent` with this filter? On success the
 * nesting levels are raised (even for a knote added disabled). Returns 0 or a positive errno. */
static int kqueue_nest(ks_kqueue_t *parent, ks_kqueue_t *child, int16_t filter) {
  if (parent == child || filter != KS_EVFILT_READ) return EINVAL;
  if (parent->level > 0 && parent->level < child->level) return EINVAL;
  int plevel = parent->level == 0 ? 2 : parent->level;
  if (plevel < child->level + 1) {
    if (child->level + 1 > KQ_MAX_NESTED) return EINVAL;
    plevel = child->level + 1;
  }
  parent->level = plevel;
  if (child->level == 0) child->level = 1;
  return 0;
}

/* Apply one change; returns 0 or a positive errno. */
static int apply_change(ks_kernel_t *k, ks_kqueue_t *kq, const ks_kevent_t *ch) {
  if (ch->filter != KS_EVFILT_READ && ch->filter != KS_EVFILT_WRITE) return EINVAL;
  if (ch->ident >= KS_NFD) return EBADF;
  int ident = (int)ch->ident;
  ks_file_t *f = ks_fget(k, ident, false);
  if (!f) return EBADF;
  int err = 0;
  ks_knote_t *kn = find_knote(kq, ident, ch->filter);
  ks_kevent_t ev;
  if (ch->flags & KS_EV_DELETE) {
    if (kn)
      knote_remove(k, kn, KS_KNOTE_DELETED);
    else
      err = ENOENT;
    goto out;
  }
  if (!kn) {
    if (!(ch->flags & KS_EV_ADD)) {
      err = ENOENT;
      goto out;
    }
    int r = f->ops->kq_event ? f->ops->kq_event(k, f, ch->filter, &ev) : -EINVAL;
    if (r < 0) {
      err = -r;
      goto out;
    }
    if (f->ops == &kqueue_ops && (err = kqueue_nest(kq, (ks_kqueue_t *)f, ch->filter))) goto out;
    kn = ks_alloc(k, sizeof *kn);
    kn->watch.file = f;
    kn->watch.knote = true;
    kn->watch.kq_filter = ch->filter;
    kn->watch.notify = knote_notify;
    kn->watch.drop = knote_drop;
    ks_list_push_front(&f->watchers, &kn->watch.link);
    kn->kq = kq;
    ks_list_push_back(&kq->knotes, &kn->kq_link);
    ks_list_init(&kn->act_link);
    kn->ident = ident;
    kn->filter = ch->filter;
  }
  if (ch->flags & KS_EV_ADD) {
    kn->flags = (ch->flags & KEPT_FLAGS) | KS_EV_ADD;
    kn->udata = ch->udata;
  }
  if (ch->flags & KS_EV_DISABLE) kn->disabled = true;
  if (ch->flags & KS_EV_ENABLE) kn->disabled = false;
  if (!kn->disabled) evaluate(k, kn, &ev);
out:
  ks_fput(k, f);
  return err;
}

/* Collect up to nevents from the active queue (BSD's kqueue_scan). Knotes put back during the
 * pass are not visited twice. */
static int collect(ks_kernel_t *k, ks_kqueue_t *kq, ks_kevent_t *out, int nevents) {
  int pending = 0, n = 0;
  for (ks_list_t *l = kq->active.next; l != &kq->active; l = l->next) pending++;
  while (pending-- > 0 && n < nevents) {
    ks_knote_t *kn = KS_CONTAINER(kq->active.next, ks_knote_t, act_link);
    ks_list_del(&kn->act_link);
    if (kn->disabled) continue; /* stays activated; EV_ENABLE queues it again */
    ks_kevent_t ev;
    memset(&ev, 0, sizeof ev);
    ks_file_t *f = kn->watch.file;
    if (f->ops->kq_event(k, f, kn->filter, &ev) <= 0) {
      kn->activated = false;
      continue;
    }
    out[n].ident = (uintptr_t)kn->ident;
    out[n].filter = kn->filter;
    out[n].flags = kn->flags | (ev.flags & KS_EV_EOF);
    out[n].fflags = ev.fflags;
    out[n].data = ev.data;
    out[n].udata = kn->udata;
    n++;
    if (kn->flags & KS_EV_ONESHOT) {
      knote_remove(k, kn, KS_KNOTE_ONESHOT);
    } else if (kn->flags & (KS_EV_CLEAR | KS_EV_DISPATCH)) {
      kn->activated = false;
      if (kn->flags & KS_EV_DISPATCH) kn->disabled = true;
    } else {
      ks_list_push_back(&kq->active, &kn->act_link);
    }
  }
  return n;
}

static void kqueue_release(ks_kernel_t *k, ks_file_t *f) {
  ks_kqueue_t *kq = (ks_kqueue_t *)f;
  while (!ks_list_empty(&kq->knotes)) {
    ks_knote_t *kn = KS_CONTAINER(kq->knotes.next, ks_knote_t, kq_link);
    knote_drop(k, &kn->watch);
  }
  ks_list_del(&kq->link);
}

/* A kqueue watched by another (XNU filt_kqueue): readable while knotes wait on its active
 * queue, whether or not their condition still holds. */
static int kqueue_kq_event(ks_kernel_t *k, ks_file_t *f, int16_t filter, ks_kevent_t *ev) {
  (void)k;
  if (filter != KS_EVFILT_READ) return -EINVAL;
  ks_kqueue_t *kq = (ks_kqueue_t *)f;
  int64_t count = 0;
  for (ks_list_t *l = kq->active.next; l != &kq->active; l = l->next)
    count += !KS_CONTAINER(l, ks_knote_t, act_link)->disabled;
  ev->data = count;
  return count > 0;
}

static const ks_file_ops_t kqueue_ops = {
    .type = KS_FT_KQUEUE,
    .kq_event = kqueue_kq_event,
    .release = kqueue_release,
};

int ks_kqueue(ks_kernel_t *k) {
  KS_SYSCALL(k, "kqueue");
  ks_kqueue_t *kq = (ks_kqueue_t *)ks_file_new(k, &kqueue_ops, sizeof *kq, O_RDWR);
  ks_list_init(&kq->knotes);
  ks_list_init(&kq->active);
  ks_list_push_back(&k->kqueues, &kq->link);
  int fd = ks_fd_install(k, &kq->file, false);
  if (fd < 0) ks_fput(k, &kq->file);
  return fd;
}

static ks_kqueue_t *kqueue_get(ks_kernel_t *k, int kqfd) {
  ks_file_t *f = ks_fget(k, kqfd, false);
  if (f && f->ops != &kqueue_ops) {
    ks_fput(k, f);
    f = NULL;
  }
  return (ks_kqueue_t *)f;
}

int ks_kevent(ks_kernel_t *k, int kqfd, const ks_kevent_t *changes, int nchanges,
              ks_kevent_t *events, int nevents, int64_t timeout) {
  KS_SYSCALL(k, "kevent");
  if (nchanges < 0 || nevents < 0) return -EINVAL;
  if ((nchanges > 0 && !changes) || (nevents > 0 && !events)) return -EFAULT;
  ks_kqueue_t *kq = kqueue_get(k, kqfd);
  if (!kq) return -EBADF;
  int nerrors = 0, ret;
  for (int i = 0; i < nchanges; i++) {
    int err = apply_change(k, kq, &changes[i]);
    if (!err) continue;
    if (nerrors >= nevents) {
      ks_fput(k, &kq->file);
      return -err;
    }
    events[nerrors] = changes[i];
    events[nerrors].flags = KS_EV_ERROR;
    events[nerrors].data = err;
    nerrors++;
  }
  if (nerrors) {
    ks_fput(k, &kq->file);
    return nerrors;
  }
  bool sim = cf_in_sim();
  int64_t deadline = (sim && timeout > 0) ? cf_now() + timeout : 0;
  for (;;) {
    ret = nevents > 0 ? collect(k, kq, events, nevents) : 0;
    if (ret > 0 || nevents == 0 || timeout == 0 || !sim) break;
    int64_t left = -1;
    if (timeout > 0) {
      left = deadline - cf_now();
      if (left <= 0) break;
    }
    ks_block(&kq->file, left, CF_SITE("sys.kevent"));
  }
  ks_fput(k, &kq->file);
  return ret;
}

int ks_kqueue_knotes(ks_kernel_t *k, int kqfd, ks_kevent_t *out, int max) {
  ks_kqueue_t *kq = kqueue_get(k, kqfd);
  if (!kq) return -EBADF;
  int n = 0;
  for (ks_list_t *l = kq->knotes.next; l != &kq->knotes; l = l->next, n++) {
    ks_knote_t *kn = KS_CONTAINER(l, ks_knote_t, kq_link);
    if (n >= max) continue;
    memset(&out[n], 0, sizeof out[n]);
    out[n].ident = (uintptr_t)kn->ident;
    out[n].filter = kn->filter;
    out[n].flags = kn->flags | (kn->disabled ? KS_EV_DISABLE : 0);
    out[n].udata = kn->udata;
  }
  ks_fput(k, &kq->file);
  return n;
}

ks_knote_fate_t ks_kqueue_knote_fate(ks_kernel_t *k, int kqfd, int ident, int16_t filter) {
  ks_kqueue_t *kq = kqueue_get(k, kqfd);
  if (!kq) return KS_KNOTE_NEVER;
  ks_knote_fate_t fate = KS_KNOTE_NEVER;
  unsigned n = kq->nfates < KS_KNOTE_FATES ? kq->nfates : KS_KNOTE_FATES;
  for (unsigned back = 1; back <= n; back++) {
    unsigned i = (kq->nfates - back) % KS_KNOTE_FATES;
    if (kq->fates[i].ident == ident && kq->fates[i].filter == filter) {
      fate = (ks_knote_fate_t)kq->fates[i].fate;
      break;
    }
  }
  ks_fput(k, &kq->file);
  return fate;
}
