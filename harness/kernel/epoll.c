/* epoll.c: Linux epoll, modelled the way fs/eventpoll.c works so that its observable state
 * (return codes, reported events and their order) matches the real kernel's.
 *
 * - An interest item is keyed by (file, fd number). It stays while the file lives, even after
 *   its fd number is closed (a dup keeps the file alive); it goes when the file is released.
 * - Items hook onto their file as watchers. A wake-up on the file queues an item at the tail
 *   of the ready list when the key is 0 or intersects the item's events and the item is armed
 *   (a fired EPOLLONESHOT item keeps only its private bits and ignores wake-ups).
 * - ADD and MOD poll the file once and queue the item if it is ready already.
 * - epoll_wait takes the whole ready list, then walks it: each item is polled again; an item
 *   that is no longer ready is dropped; a ready one is reported as (current mask & events,
 *   data), then a level-triggered item goes back to the tail of the ready list, an EPOLLET
 *   item does not, and an EPOLLONESHOT item is disarmed. When maxevents stops the walk, the
 *   unvisited items are put back in front of the ready list, ahead of the re-queued ones.
 * - epoll_wait fails with EBADF for a bad descriptor, then EINVAL for maxevents <= 0 or a
 *   descriptor that is not an epoll.
 * - epoll_ctl checks in Linux's order: EFAULT (no event for ADD/MOD), EBADF (epfd, then fd),
 *   EPERM (target cannot be polled), EINVAL (fd == epfd, epfd not an epoll), then the item
 *   lookup: EEXIST for ADD, ENOENT for MOD/DEL, EINVAL for an unknown op. ADD and MOD always
 *   add EPOLLERR|EPOLLHUP to the events.
 * - EPOLLEXCLUSIVE is accepted by ADD only, with Linux's checks (EINVAL with bits outside
 *   EPOLLIN|EPOLLOUT|EPOLLERR|EPOLLHUP|EPOLLWAKEUP|EPOLLET, on an epoll target, for MOD, and
 *   for a MOD of an exclusive item). Its wake-one-epoll-of-several effect is not modelled: an
 *   exclusive item is woken like any other, which is what a single waiting epoll sees.
 * - Nested epoll (Linux 6.18 fs/eventpoll.c): an epoll file can be the target of another
 *   epoll. It polls EPOLLIN|EPOLLRDNORM while an item on its ready list is really ready
 *   (ep_eventpoll_poll, which drops the items it finds not ready) and never EPOLLOUT. Queueing
 *   an item wakes the epoll file's own watchers with key EPOLLIN (ep_poll_safewake), every
 *   time, even for an item already on the ready list; re-queueing a level-triggered item
 *   inside epoll_wait wakes nobody (ep_done_scan wakes only ep->wq). An ADD whose target is
 *   an epoll runs the loop check first (ep_loop_check, before the item lookup, so it outranks
 *   EEXIST): ELOOP when the target reaches the inserting epoll, or when the longest chain of
 *   nested epolls through the new link would exceed EP_MAX_NESTS (4) links, counted down from
 *   the target and up from the inserting epoll (the upward count is 6.18's, from "eventpoll:
 *   Fix semi-unbounded recursion"). EPOLLEXCLUSIVE on an epoll target is EINVAL. Not
 *   modelled: reverse_path_check's limits on wake-up paths per file (1000/500/100/50/10 by
 *   depth), which a handful of epolls cannot reach.
 * Fault: CF_FAULT_EPOLL_NOMEM makes ADD fail with ENOMEM or ENOSPC. */
#include "kernel_internal.h"

/* Bits that configure an item rather than select events (Linux's EP_PRIVATE_BITS). */
/* Links of nested epolls a chain may hold (Linux's EP_MAX_NESTS). */
#define EP_MAX_NESTS 4
#define EP_PRIVATE_BITS (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)
/* What may accompany EPOLLEXCLUSIVE (Linux's EPOLLEXCLUSIVE_OK_BITS). */
#define EXCLUSIVE_OK_BITS \
  (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE)

typedef struct ks_epoll {
  ks_file_t file;
  ks_list_t items;           /* every item, in insertion order */
  ks_list_t ready;           /* ready list (FIFO) */
  uint64_t loop_gen;         /* the loop check that last visited it (Linux's ep->gen) */
  int loop_depth;            /* what that check found for it (ep->loop_check_depth) */
} ks_epoll_t;

typedef struct ks_epitem {
  ks_watch_t watch;          /* on the target file; watch.file is the target */
  ks_epoll_t *ep;
  ks_list_t ep_link;         /* in ep->items */
  ks_list_t rdllink;         /* in ep->ready, or self-linked */
  int fd;
  uint32_t events;
  uint64_t data;
} ks_epitem_t;

static bool on_ready_list(const ks_epitem_t *it) { return !ks_list_empty(&it->rdllink); }

static uint32_t item_poll(ks_kernel_t *k, ks_epitem_t *it) {
  ks_file_t *f = it->watch.file;
  return f->ops->poll(k, f) & it->events;
}

/* Queue the item and wake whoever waits for the epoll: epoll_wait callers, and poll(2)
 * callers polling the epoll file itself, which Linux wakes with key EPOLLIN (a poll that asked
 * only for POLLRDNORM is not woken, there as here). */
static void queue_ready(ks_kernel_t *k, ks_epitem_t *it) {
  if (!on_ready_list(it)) ks_list_push_back(&it->ep->ready, &it->rdllink);
  ks_wake(k, &it->ep->file, EPOLLIN);
}

/* A wake-up on the item's file (Linux's ep_poll_callback). */
static void item_notify(ks_kernel_t *k, ks_watch_t *w, uint32_t key) {
  ks_epitem_t *it = (ks_epitem_t *)w;
  if (!(it->events & ~EP_PRIVATE_BITS)) return; /* disarmed EPOLLONESHOT */
  if (key && !(key & it->events)) return;
  queue_ready(k, it);
}

static void item_drop(ks_kernel_t *k, ks_watch_t *w) {
  ks_epitem_t *it = (ks_epitem_t *)w;
  ks_list_del(&it->watch.link);
  ks_list_del(&it->ep_link);
  ks_list_del(&it->rdllink);
  ks_free(k, it);
}

static ks_epitem_t *find_item(ks_epoll_t *ep, ks_file_t *tf, int fd) {
  for (ks_list_t *l = ep->items.next; l != &ep->items; l = l->next) {
    ks_epitem_t *it = KS_CONTAINER(l, ks_epitem_t, ep_link);
    if (it->watch.file == tf && it->fd == fd) return it;
  }
  return NULL;
}

static void ep_insert(ks_kernel_t *k, ks_epoll_t *ep, ks_file_t *tf, int fd,
                      const ks_epoll_event_t *ev) {
  ks_epitem_t *it = ks_alloc(k, sizeof *it);
  it->watch.file = tf;
  it->watch.knote = false;
  it->watch.notify = item_notify;
  it->watch.drop = item_drop;
  ks_list_push_front(&tf->watchers, &it->watch.link);
  it->ep = ep;
  ks_list_push_back(&ep->items, &it->ep_link);
  ks_list_init(&it->rdllink);
  it->fd = fd;
  it->events = ev->events | EPOLLERR | EPOLLHUP;
  it->data = ev->data;
  if (item_poll(k, it)) queue_ready(k, it);
}

static void ep_modify(ks_kernel_t *k, ks_epitem_t *it, const ks_epoll_event_t *ev) {
  it->events = ev->events | EPOLLERR | EPOLLHUP;
  it->data = ev->data;
  if (item_poll(k, it)) queue_ready(k, it);
}

static void epoll_release(ks_kernel_t *k, ks_file_t *f) {
  ks_epoll_t *ep = (ks_epoll_t *)f;
  while (!ks_list_empty(&ep->items)) {
    ks_epitem_t *it = KS_CONTAINER(ep->items.next, ks_epitem_t, ep_link);
    item_drop(k, &it->watch);
  }
}

/* An epoll file is readable while an item on its ready list is really ready. As Linux's
 * ep_eventpoll_poll does, the items found not ready on the way are taken off the list. poll(2)
 * reaches this, and so does an outer epoll's item on this one (through item_poll, one level
 * down per nesting; the loop check keeps that finite). */
static uint32_t epoll_poll(ks_kernel_t *k, ks_file_t *f) {
  ks_epoll_t *ep = (ks_epoll_t *)f;
  while (!ks_list_empty(&ep->ready)) {
    ks_epitem_t *it = KS_CONTAINER(ep->ready.next, ks_epitem_t, rdllink);
    if (item_poll(k, it)) return EPOLLIN | EPOLLRDNORM;
    ks_list_del(&it->rdllink);
  }
  return 0;
}

static const ks_file_ops_t epoll_ops = {
    .type = KS_FT_EPOLL,
    .poll = epoll_poll,
    .release = epoll_release,
};

int ks_epoll_create1(ks_kernel_t *k, int flags) {
  KS_SYSCALL(k, "epoll_create1");
  if (flags & ~EPOLL_CLOEXEC) return -EINVAL;
  ks_epoll_t *ep = (ks_epoll_t *)ks_file_new(k, &epoll_ops, sizeof *ep, O_RDWR);
  ks_list_init(&ep->items);
  ks_list_init(&ep->ready);
  int fd = ks_fd_install(k, &ep->file, (flags & EPOLL_CLOEXEC) != 0);
  if (fd < 0) ks_fput(k, &ep->file);
  return fd;
}

/* ---- nested epoll: Linux 6.18's ep_loop_check -------------------------------------------- */

static bool is_epoll_item(const ks_watch_t *w) { return w->notify == item_notify; }

/* How many links of nested epolls lie below ep (ep_loop_check_proc): more than EP_MAX_NESTS
 * when `inserting` is reachable from ep (the new link would close a loop) or the chain is too
 * long. An epoll reached twice in one check answers what it answered the first time. */
static int loop_depth_down(ks_kernel_t *k, ks_epoll_t *ep, ks_epoll_t *inserting, int depth) {
  if (ep->loop_gen == k->epoll_loop_gen) return ep->loop_depth;
  ep->loop_gen = k->epoll_loop_gen;
  int result = 0;
  for (ks_list_t *l = ep->items.next; l != &ep->items; l = l->next) {
    ks_epitem_t *it = KS_CONTAINER(l, ks_epitem_t, ep_link);
    if (it->watch.file->ops != &epoll_ops) continue;
    ks_epoll_t *child = (ks_epoll_t *)it->watch.file;
    if (child == inserting || depth > EP_MAX_NESTS) {
      result = EP_MAX_NESTS + 1;
    } else {
      int d = loop_depth_down(k, child, inserting, depth + 1) + 1;
      if (d > result) result = d;
    }
    if (result > EP_MAX_NESTS) break;
  }
  ep->loop_depth = result;
  return result;
}

/* How many links of nested epolls lie above ep: the items other epolls hold on its file
 * (ep_get_upwards_depth_proc, walking ep->refs). As in Linux, the visit mark is shared with
 * the downward walk. */
static int loop_depth_up(ks_kernel_t *k, ks_epoll_t *ep) {
  if (ep->loop_gen == k->epoll_loop_gen) return ep->loop_depth;
  int result = 0;
  for (ks_list_t *l = ep->file.watchers.next; l != &ep->file.watchers; l = l->next) {
    ks_watch_t *w = KS_CONTAINER(l, ks_watch_t, link);
    if (!is_epoll_item(w)) continue;
    int d = loop_depth_up(k, ((ks_epitem_t *)w)->ep) + 1;
    if (d > result) result = d;
  }
  ep->loop_gen = k->epoll_loop_gen;
  ep->loop_depth = result;
  return result;
}

/* Would adding `to` to `ep` close a loop or make a chain longer than EP_MAX_NESTS links? */
static bool loop_check(ks_kernel_t *k, ks_epoll_t *ep, ks_epoll_t *to) {
  k->epoll_loop_gen++;
  int depth = loop_depth_down(k, to, ep, 0);
  if (depth > EP_MAX_NESTS) return true;
  return depth + 1 + loop_depth_up(k, ep) > EP_MAX_NESTS;
}

static int ctl_locked(ks_kernel_t *k, ks_file_t *ef, ks_file_t *tf, int op, int fd,
                      const ks_epoll_event_t *ev) {
  if (!tf->ops->poll) return -EPERM;
  if (ef == tf || ef->ops != &epoll_ops) return -EINVAL;
  if (op != EPOLL_CTL_DEL && (ev->events & EPOLLEXCLUSIVE)) {
    if (op == EPOLL_CTL_MOD || (ev->events & ~EXCLUSIVE_OK_BITS)) return -EINVAL;
  }
  if (op == EPOLL_CTL_ADD && (ev->events & EPOLLEXCLUSIVE) && tf->ops == &epoll_ops)
    return -EINVAL; /* no nested exclusive wake-ups */
  ks_epoll_t *ep = (ks_epoll_t *)ef;
  if (op == EPOLL_CTL_ADD && tf->ops == &epoll_ops && loop_check(k, ep, (ks_epoll_t *)tf))
    return -ELOOP;
  ks_epitem_t *it = find_item(ep, tf, fd);
  if (op == EPOLL_CTL_MOD && it && (it->events & EPOLLEXCLUSIVE)) return -EINVAL;
  switch (op) {
  case EPOLL_CTL_ADD:
    if (it) return -EEXIST;
    if (cf_fault(CF_SITE("sys.epoll_ctl nomem"), CF_FAULT_EPOLL_NOMEM))
      return cf_choose(CF_SITE("sys.epoll_ctl nomem errno"), 2) ? -ENOSPC : -ENOMEM;
    ep_insert(k, ep, tf, fd, ev);
    return 0;
  case EPOLL_CTL_DEL:
    if (!it) return -ENOENT;
    item_drop(k, &it->watch);
    return 0;
  case EPOLL_CTL_MOD:
    if (!it) return -ENOENT;
    ep_modify(k, it, ev);
    return 0;
  default:
    return -EINVAL;
  }
}

int ks_epoll_ctl(ks_kernel_t *k, int epfd, int op, int fd, const ks_epoll_event_t *ev) {
  KS_SYSCALL(k, "epoll_ctl");
  if (op != EPOLL_CTL_DEL && !ev) return -EFAULT;
  ks_file_t *ef = ks_fget(k, epfd, false);
  if (!ef) return -EBADF;
  ks_file_t *tf = ks_fget(k, fd, false);
  if (!tf) {
    ks_fput(k, ef);
    return -EBADF;
  }
  int ret = ctl_locked(k, ef, tf, op, fd, ev);
  ks_fput(k, tf);
  ks_fput(k, ef);
  return ret;
}

/* One pass over the ready list (Linux's ep_send_events). */
static int send_events(ks_kernel_t *k, ks_epoll_t *ep, ks_epoll_event_t *events, int maxevents) {
  ks_list_t tx;
  if (ks_list_empty(&ep->ready)) return 0;
  /* Take the whole ready list: re-queued items land on the (now empty) ready list. */
  tx.next = ep->ready.next;
  tx.prev = ep->ready.prev;
  tx.next->prev = tx.prev->next = &tx;
  ks_list_init(&ep->ready);
  int res = 0;
  while (!ks_list_empty(&tx) && res < maxevents) {
    ks_epitem_t *it = KS_CONTAINER(tx.next, ks_epitem_t, rdllink);
    ks_list_del(&it->rdllink);
    uint32_t revents = item_poll(k, it);
    if (!revents) continue;
    events[res].events = revents;
    events[res].data = it->data;
    res++;
    if (it->events & EPOLLONESHOT)
      it->events &= EP_PRIVATE_BITS;
    else if (!(it->events & EPOLLET))
      ks_list_push_back(&ep->ready, &it->rdllink);
  }
  /* Items not visited go back in front of the ready list. */
  if (!ks_list_empty(&tx)) {
    ks_list_t *first = tx.next, *last = tx.prev, *head = &ep->ready;
    last->next = head->next;
    head->next->prev = last;
    head->next = first;
    first->prev = head;
  }
  return res;
}

int ks_epoll_wait(ks_kernel_t *k, int epfd, ks_epoll_event_t *events, int maxevents,
                  int64_t timeout) {
  KS_SYSCALL(k, "epoll_wait");
  /* Linux (6.18) looks the descriptor up before it checks maxevents. */
  ks_file_t *ef = ks_fget(k, epfd, false);
  if (!ef) return -EBADF;
  if (maxevents <= 0 || ef->ops != &epoll_ops) {
    ks_fput(k, ef);
    return -EINVAL;
  }
  ks_epoll_t *ep = (ks_epoll_t *)ef;
  bool sim = cf_in_sim();
  int64_t deadline = (sim && timeout > 0) ? cf_now() + timeout : 0;
  int res;
  for (;;) {
    res = send_events(k, ep, events, maxevents);
    if (res > 0 || timeout == 0 || !sim) break;
    int64_t left = -1;
    if (timeout > 0) {
      left = deadline - cf_now();
      if (left <= 0) break;
    }
    ks_block(ef, left, CF_SITE("sys.epoll_wait"));
  }
  ks_fput(k, ef);
  return res;
}

int ks_epoll_items(ks_kernel_t *k, int epfd, ks_epoll_item_t *out, int max) {
  ks_file_t *ef = ks_fget(k, epfd, false);
  if (!ef) return -EBADF;
  int n = -EINVAL;
  if (ef->ops == &epoll_ops) {
    ks_epoll_t *ep = (ks_epoll_t *)ef;
    n = 0;
    for (ks_list_t *l = ep->items.next; l != &ep->items; l = l->next, n++) {
      ks_epitem_t *it = KS_CONTAINER(l, ks_epitem_t, ep_link);
      if (n < max)
        out[n] = (ks_epoll_item_t){.fd = it->fd, .events = it->events, .data = it->data,
                                   .ofd_id = it->watch.file->id};
    }
  }
  ks_fput(k, ef);
  return n;
}
