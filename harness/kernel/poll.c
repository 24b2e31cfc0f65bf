/* poll.c: Linux poll(2), modelled on how fs/select.c's do_sys_poll behaves, so that a copy
 * built on poll sees the readiness and the wake-ups the real kernel gives it.
 *
 * - Readiness is each file's ops->poll mask, the one epoll uses. A file without a poll
 *   operation (a regular file, and the kqueue, which has no Linux counterpart) reports
 *   DEFAULT_POLLMASK, as Linux's vfs_poll does for a file whose f_op has no ->poll.
 * - Each entry is looked up by number on every scan: fd < 0 is skipped (revents 0); a number
 *   that is not open, or is open with O_PATH (Linux's fdget does not see those), reports
 *   POLLNVAL. Otherwise revents = mask & (events | POLLERR | POLLHUP): POLLERR and POLLHUP are
 *   always reported, whatever was asked. events is 16 bits wide, as in struct pollfd.
 * - The result counts the entries with non-zero revents, POLLNVAL ones included. nfds above
 *   the descriptor limit (RLIMIT_NOFILE on Linux, the table size KS_NFD here) is EINVAL, before
 *   anything is read; a NULL array with nfds > 0 is EFAULT.
 * - Blocking (inside a simulated run, timeout != 0, nothing ready): Linux's first scan hooks a
 *   wait entry on every file it polls, holding a reference to the file, with the entry's
 *   (events | POLLERR | POLLHUP) as key; a wake-up whose key is 0 or intersects it makes the
 *   caller scan again, from the numbers. Here the same: a heap-allocated poller carries one
 *   watcher per polled entry (duplicates included) and a wait queue the watchers wake. The
 *   references keep a file alive while the call waits even if its number is closed meanwhile;
 *   and as on Linux a close does not wake the call (the next scan, after some other wake-up or
 *   the timeout, reports POLLNVAL for it).
 * - The timeout is in virtual ticks from the call's start; when it passes the call scans once
 *   more and returns what it finds (0 when nothing), as Linux's do_poll does.
 * - A fiber can be abandoned while blocked here when its run ends. Live pollers are listed in
 *   the kernel, so ks_kernel_free unhooks and frees them (ks_poll_teardown) before it
 *   releases the files they pin. */
#include <poll.h>

#include "kernel_internal.h"

/* What Linux's vfs_poll answers for a file without a poll operation. */
#define DEFAULT_POLLMASK (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)

typedef struct ks_poller ks_poller_t;

/* One wait entry: the watcher on the polled file of one pollfd entry. */
typedef struct ks_pollwait {
  ks_watch_t watch;          /* on the polled file; watch.file is NULL once unhooked */
  ks_poller_t *poller;
  uint32_t key;              /* the entry's events | POLLERR | POLLHUP */
} ks_pollwait_t;

/* The wait state of one blocked ks_poll call (Linux's poll_wqueues). */
struct ks_poller {
  ks_list_t link;            /* in k->pollers */
  cf_waitq_t waitq;          /* the blocked caller */
  nfds_t n;                  /* wait entries in use */
  ks_pollwait_t waits[];
};

/* The readiness of one entry, written to its revents (Linux's do_pollfd). */
static uint32_t poll_one(ks_kernel_t *k, struct pollfd *pfd) {
  uint32_t mask = 0;
  if (pfd->fd >= 0) {
    ks_file_t *f = ks_fget(k, pfd->fd, false);
    if (!f) {
      mask = POLLNVAL;
    } else {
      uint32_t filter = (uint16_t)pfd->events | POLLERR | POLLHUP;
      mask = (f->ops->poll ? f->ops->poll(k, f) : DEFAULT_POLLMASK) & filter;
      ks_fput(k, f);
    }
  }
  pfd->revents = (short)mask;
  return mask;
}

/* One pass over the array: the number of entries with non-zero revents. */
static int scan(ks_kernel_t *k, struct pollfd *fds, nfds_t nfds) {
  int count = 0;
  for (nfds_t i = 0; i < nfds; i++) count += poll_one(k, &fds[i]) != 0;
  return count;
}

/* A wake-up on a polled file (Linux's pollwake): only a key that may concern the entry. */
static void pollwait_notify(ks_kernel_t *k, ks_watch_t *w, uint32_t key) {
  (void)k;
  ks_pollwait_t *pw = (ks_pollwait_t *)w;
  if (key && !(key & pw->key)) return;
  cf_wake_all(&pw->poller->waitq);
}

/* Unhook from the file without touching its references (the caller deals with those). */
static void pollwait_unhook(ks_pollwait_t *pw) {
  if (!pw->watch.file) return;
  ks_list_del(&pw->watch.link);
  pw->watch.file = NULL;
}

/* The file is being released under us. Our reference makes that impossible while the call
 * is alive; only a kernel teardown that forces files out could get here. The wait entry
 * itself belongs to the poller. */
static void pollwait_drop(ks_kernel_t *k, ks_watch_t *w) {
  (void)k;
  pollwait_unhook((ks_pollwait_t *)w);
}

/* The scan found nothing: hook a wait entry on the file of every entry that has one, as
 * Linux's first pass does while it polls. Nothing can have changed since the scan (no yield
 * in between), so the files are the ones just polled. */
static ks_poller_t *poller_new(ks_kernel_t *k, const struct pollfd *fds, nfds_t nfds) {
  ks_poller_t *p = ks_alloc(k, sizeof *p + nfds * sizeof p->waits[0]);
  for (nfds_t i = 0; i < nfds; i++) {
    ks_file_t *f = ks_fget(k, fds[i].fd, false); /* NULL for fd < 0 too */
    if (!f) continue;
    ks_pollwait_t *pw = &p->waits[p->n++];
    pw->watch.file = f; /* holding the reference just taken */
    pw->watch.knote = false;
    pw->watch.notify = pollwait_notify;
    pw->watch.drop = pollwait_drop;
    pw->poller = p;
    pw->key = (uint16_t)fds[i].events | POLLERR | POLLHUP;
    /* At the head, as Linux's add_wait_queue does (see kernel_internal.h). */
    ks_list_push_front(&f->watchers, &pw->watch.link);
  }
  ks_list_push_back(&k->pollers, &p->link);
  return p;
}

/* Unhook each wait entry and drop its reference. A release that follows may wake files we
 * still watch: that only marks our queue, which nobody waits on any more or which the
 * caller is about to leave. */
static void poller_free(ks_kernel_t *k, ks_poller_t *p) {
  ks_list_del(&p->link);
  for (nfds_t i = 0; i < p->n; i++) {
    ks_file_t *f = p->waits[i].watch.file;
    pollwait_unhook(&p->waits[i]);
    if (f) ks_fput(k, f);
  }
  ks_free(k, p);
}

void ks_poll_teardown(ks_kernel_t *k) {
  /* The blocked callers were discarded with their run: they will never scan again. */
  while (!ks_list_empty(&k->pollers))
    poller_free(k, KS_CONTAINER(k->pollers.next, ks_poller_t, link));
}

int ks_poll(ks_kernel_t *k, struct pollfd *fds, nfds_t nfds, int64_t timeout) {
  KS_SYSCALL(k, "poll");
  if (nfds > KS_NFD) return -EINVAL;
  if (nfds > 0 && !fds) return -EFAULT;
  bool sim = cf_in_sim();
  int64_t deadline = (sim && timeout > 0) ? cf_now() + timeout : 0;
  ks_poller_t *p = NULL;
  int count;
  for (;;) {
    count = scan(k, fds, nfds);
    if (count > 0 || timeout == 0 || !sim) break;
    int64_t left = -1;
    if (timeout > 0) {
      left = deadline - cf_now();
      if (left <= 0) break;
    }
    if (!p) p = poller_new(k, fds, nfds);
    cf_wait_at(&p->waitq, CF_WAIT_IDLE, left, CF_SITE("sys.poll"));
  }
  if (p) poller_free(k, p);
  return count;
}
