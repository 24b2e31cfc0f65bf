/* fdtable.c: the guest fd table (elfuse src/syscall/fdtable.c, internal.h host_fd_ref_*,
 * fs.c sys_close / duplicate_guest_fd).
 *
 * Every guest fd has its own host descriptor; dups of eventfds and epolls share their state
 * object. Allocation is lowest-free, so a closed number is the next one handed out (the ABA
 * the generation counter exists for). fd_lock guards the table; the close path snapshots and
 * marks the slot closed in one critical section and cleans up (instance release, host close)
 * outside it, so two concurrent closes never close one host descriptor twice. */
#include "shim.h"

/* An atomic count, as upstream: clone and exit change it while other threads read it. */
bool thread_is_single_active(shim_t *s) { return cf_atomic_load(&s->nthreads) == 1; }

void guest_thread_started(shim_t *s) { cf_atomic_fetch_add(&s->nthreads, 1); }
void guest_thread_exited(shim_t *s) { cf_atomic_fetch_sub(&s->nthreads, 1); }

static bool fd_in_range(int fd) { return fd >= 0 && fd < FD_TABLE_SIZE; }

bool fd_snapshot(shim_t *s, int fd, fd_entry_t *out) {
  if (!fd_in_range(fd)) return false;
  cf_mutex_lock(&s->fd_lock);
  *out = s->fd_table[fd];
  cf_mutex_unlock(&s->fd_lock);
  return out->type != FD_CLOSED;
}

/* Unlocked read: the source warns it is unsafe while another thread may close fd. Only the
 * single-threaded path of host_fd_ref_open uses it. */
int fd_to_host(shim_t *s, int fd) {
  if (!fd_in_range(fd) || s->fd_table[fd].type == FD_CLOSED) return -EBADF;
  return s->fd_table[fd].host_fd;
}

/* Pin the slot's host descriptor, fd_lock held and the slot open: the slot holds one
 * reference, made with the lifetime on its first borrow, and each borrower another.
 * `spare`: a lifetime allocated outside the lock, consumed if the slot has none yet; NULL
 * allocates here, under the lock (host_fd_ref_pin_locked; fd_lifetime_pin_spare upstream).
 * The add is a plain one: fd_lock is held and the caller's reference already keeps the
 * object reachable (upstream's relaxed atomic). */
static fd_lifetime_t *fd_lifetime_pin(shim_t *s, int fd, fd_lifetime_t **spare) {
  fd_entry_t *e = &s->fd_table[fd];
  if (!e->lifetime) {
    if (spare && *spare) {
      e->lifetime = *spare;
      *spare = NULL;
    } else {
      e->lifetime = cf_pool_alloc(&s->lifetime_pool);
    }
    e->lifetime->refs.v = 1; /* the slot's */
    e->lifetime->host_fd = e->host_fd;
    e->lifetime->type = e->type;
    e->lifetime->live_next = s->lifetimes;
    s->lifetimes = e->lifetime;
  }
  e->lifetime->refs.v++;
  return e->lifetime;
}

void host_fd_ref_pin_locked(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref,
                            fd_lifetime_t **spare) {
  ref->lifetime = fd_lifetime_pin(s, fd, spare);
  ref->holder = t;
  ref->guest_fd = fd;
}

/* One reference dropped, outside fd_lock (an atomic fetch_sub upstream); the last closes the
 * host descriptor. */
void fd_lifetime_release(shim_t *s, fd_lifetime_t *lt) {
  if (cf_atomic_fetch_sub(&lt->refs, 1) != 1) return;
  if (lt->type != FD_STDIO) ks_close(s->host, lt->host_fd);
  for (fd_lifetime_t **pp = &s->lifetimes; *pp; pp = &(*pp)->live_next)
    if (*pp == lt) {
      *pp = lt->live_next;
      break;
    }
  cf_pool_free(&s->lifetime_pool, lt);
}

/* fd_host_ref_acquire (PR #324): pin fd's host descriptor in an fd_lock section that also
 * checks the slot. A slot's first borrow allocates its lifetime outside the lock and comes
 * back for a second pass (the slot may have changed in between: the second pass decides
 * afresh). Returns the host fd or -EBADF; *ref gets the pin and the eventfd counter. */
static int fd_host_ref_acquire(shim_t *s, guest_thread_t *t, int fd, bool io, host_fd_ref_t *ref) {
  fd_lifetime_t *spare = NULL;
  for (;;) {
    cf_mutex_lock(&s->fd_lock);
    const fd_entry_t *e = &s->fd_table[fd];
    if (e->type == FD_CLOSED || (io && e->type == FD_PATH)) {
      shim_observe(s, t, SHIM_AT_RESOLVE, fd, -EBADF);
      cf_mutex_unlock(&s->fd_lock);
      if (spare) cf_pool_free(&s->lifetime_pool, spare);
      return -EBADF;
    }
    if (e->lifetime || spare) {
      host_fd_ref_pin_locked(s, t, fd, ref, &spare);
      int h = e->host_fd;
      if ((ref->efd = e->efd) != NULL) ref->efd->refs++;
      shim_observe(s, t, SHIM_AT_RESOLVE, fd, 0);
      cf_mutex_unlock(&s->fd_lock);
      if (spare) cf_pool_free(&s->lifetime_pool, spare);
      return h;
    }
    cf_mutex_unlock(&s->fd_lock);
    spare = cf_pool_alloc(&s->lifetime_pool);
  }
}

/* Borrow the persistent host fd while the guest is single-threaded (nobody can close it under
 * us); otherwise pin it (PR #324), so that a sibling's close leaves the descriptor open, the
 * same descriptor, until the call releases it. `dup`: the pre-#324 transient host dup under
 * fd_lock instead of the pin. */
static int ref_open(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref, bool io, bool dup) {
  *ref = (host_fd_ref_t){.fd = -1};
  if (thread_is_single_active(s)) {
    int h = fd_to_host(s, fd);
    if (h >= 0 && io && s->fd_table[fd].type == FD_PATH) h = -EBADF;
    shim_observe(s, t, SHIM_AT_RESOLVE, fd, h < 0 ? h : 0);
    if (h < 0) return h;
    ref->fd = h;
    if ((ref->efd = s->fd_table[fd].efd) != NULL) ref->efd->refs++;
    return 0;
  }
  if (!fd_in_range(fd)) {
    shim_observe(s, t, SHIM_AT_RESOLVE, fd, -EBADF);
    return -EBADF;
  }
  int h;
  if (dup) {
    cf_mutex_lock(&s->fd_lock);
    const fd_entry_t *e = &s->fd_table[fd];
    h = e->type != FD_CLOSED && !(io && e->type == FD_PATH) ? ks_dup(s->host, e->host_fd) : -EBADF;
    ref->owned = h >= 0;
    if (h >= 0 && (ref->efd = e->efd) != NULL) ref->efd->refs++;
    shim_observe(s, t, SHIM_AT_RESOLVE, fd, h < 0 ? h : 0);
    cf_mutex_unlock(&s->fd_lock);
  } else {
    h = fd_host_ref_acquire(s, t, fd, io, ref);
  }
  if (h < 0) return h;
  ref->fd = h;
  return 0;
}

int host_fd_ref_open(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref) {
  return ref_open(s, t, fd, ref, false, false);
}

int host_fd_ref_open_io(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref) {
  return ref_open(s, t, fd, ref, true, false);
}

int host_fd_ref_open_dup(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref) {
  return ref_open(s, t, fd, ref, false, true);
}

/* Ends the call's hold on the descriptor. A pin's release is observed once it has taken
 * effect (after the host close when it was the last), which is when Linux's fdput would
 * have let the file go. */
void host_fd_ref_close(shim_t *s, host_fd_ref_t *ref) {
  if (ref->efd) eventfd_release(s, ref->efd);
  if (ref->lifetime) {
    fd_lifetime_release(s, ref->lifetime);
    shim_observe(s, ref->holder, SHIM_AT_UNPIN, ref->guest_fd, 0);
  }
  if (ref->owned) ks_close(s->host, ref->fd);
  *ref = (host_fd_ref_t){.fd = -1};
}

/* ---- allocation ---------------------------------------------------------------------------- */

static void fd_init_entry(shim_t *s, fd_entry_t *e, const fd_entry_t *tmpl, bool new_ofd) {
  *e = *tmpl;
  e->generation = s->fd_next_generation++;
  if (new_ofd) e->ofd_id = s->next_ofd_id++;
}

static int lowest_free(shim_t *s, int from) {
  for (int fd = from; fd < FD_TABLE_SIZE; fd++)
    if (s->fd_table[fd].type == FD_CLOSED) return fd;
  return -EMFILE;
}

/* Install `n` (1 or 2) new entries at the lowest free slots in one critical section (pipe2 and
 * socketpair publish both ends together). Returns 0 or -EMFILE (nothing installed). */
static int fd_alloc_n(shim_t *s, guest_thread_t *t, int n, const fd_entry_t *tmpl, int *fds) {
  cf_mutex_lock(&s->fd_lock);
  int a = lowest_free(s, 0);
  int b = (n == 2 && a >= 0) ? lowest_free(s, a + 1) : a;
  if (a < 0 || b < 0) {
    shim_observe(s, t, SHIM_AT_ALLOC, n, -EMFILE);
    cf_mutex_unlock(&s->fd_lock);
    return -EMFILE;
  }
  fds[0] = a;
  fd_init_entry(s, &s->fd_table[a], &tmpl[0], true);
  if (n == 2) {
    fds[1] = b;
    fd_init_entry(s, &s->fd_table[b], &tmpl[1], true);
  }
  shim_observe(s, t, SHIM_AT_ALLOC, n, a);
  cf_mutex_unlock(&s->fd_lock);
  return 0;
}

int fd_alloc(shim_t *s, guest_thread_t *t, int type, int host_fd, int linux_flags,
             epoll_instance_t *dir, eventfd_state_t *efd) {
  fd_entry_t e = {.type = type, .host_fd = host_fd, .linux_flags = linux_flags, .dir = dir,
                  .efd = efd};
  int fd;
  int ret = fd_alloc_n(s, t, 1, &e, &fd);
  return ret < 0 ? ret : fd;
}

int fd_alloc_pair(shim_t *s, guest_thread_t *t, const fd_entry_t tmpl[2], int fds[2]) {
  return fd_alloc_n(s, t, 2, tmpl, fds);
}

/* ---- close ------------------------------------------------------------------------------- */

/* Clear the slot before it becomes free, so a concurrent alloc never sees half an entry. Since
 * PR #146 this is also where epoll registrations of the number are dropped: every close path
 * (close, dup2 over an open slot) comes through here. */
static void fd_mark_closed_unlocked(shim_t *s, int fd) {
  fd_entry_t *e = &s->fd_table[fd];
  /* epoll-146-no-close-hook: before c711243 (PR #146) close never touched registrations. */
  if (!cf_bug(CF_BUG_EPOLL_146_NO_CLOSE_HOOK) && s->epoll_live_count > 0)
    epoll_note_fd_closed(s, fd, e->ofd_id);
  e->host_fd = -1;
  e->lifetime = NULL; /* the slot's reference goes with the caller's snapshot */
  e->dir = NULL;
  e->efd = NULL;
  e->linux_flags = 0;
  e->type = FD_CLOSED;
}

static bool fd_snapshot_and_close(shim_t *s, guest_thread_t *t, int fd, fd_entry_t *out) {
  cf_mutex_lock(&s->fd_lock);
  *out = s->fd_table[fd];
  bool open = out->type != FD_CLOSED;
  if (open) fd_mark_closed_unlocked(s, fd);
  shim_observe(s, t, SHIM_AT_CLOSE, fd, open ? 0 : -EBADF);
  cf_mutex_unlock(&s->fd_lock);
  return open;
}

void fd_cleanup_entry(shim_t *s, const fd_entry_t *snap) {
  if (snap->type == FD_EPOLL && snap->dir) epoll_instance_release(s, snap->dir);
  if (snap->type == FD_EVENTFD && snap->efd) eventfd_release(s, snap->efd);
  /* The slot's pin reference: the host fd closes now, or when the last call holding it
   * returns (PR #324). */
  if (snap->lifetime) fd_lifetime_release(s, snap->lifetime);
  else if (snap->type != FD_STDIO) ks_close(s->host, snap->host_fd);
}

int sys_close(shim_t *s, guest_thread_t *t, int fd) {
  if (!fd_in_range(fd)) return -EBADF;
  fd_entry_t snap;
  if (!fd_snapshot_and_close(s, t, fd, &snap)) return -EBADF;
  fd_cleanup_entry(s, &snap);
  shim_observe(s, t, SHIM_AT_RETIRED, fd, 0);
  return 0;
}

/* ---- dup --------------------------------------------------------------------------------- */

/* Snapshot the source and dup its host fd in one fd_lock section; shared state (eventfd
 * counter, epoll instance) gains its reference there too, so it cannot go away in between. */
static int fd_snapshot_and_dup(shim_t *s, guest_thread_t *t, int fd, fd_entry_t *out) {
  if (!fd_in_range(fd)) {
    shim_observe(s, t, SHIM_AT_RESOLVE, fd, -EBADF);
    return -EBADF;
  }
  cf_mutex_lock(&s->fd_lock);
  *out = s->fd_table[fd];
  int ret = -EBADF;
  if (out->type != FD_CLOSED) {
    ret = ks_dup(s->host, out->host_fd);
    out->lifetime = NULL; /* the source's pin is not the new descriptor's */
    if (ret >= 0) {
      out->host_fd = ret;
      if (out->type == FD_EVENTFD) eventfd_dup_fd(s, out->efd);
      if (out->type == FD_EPOLL) epoll_dup_fd(s, out->dir);
    }
  }
  shim_observe(s, t, SHIM_AT_RESOLVE, fd, ret < 0 ? ret : 0);
  cf_mutex_unlock(&s->fd_lock);
  return ret < 0 ? ret : 0;
}

/* newfd < 0: lowest free. Otherwise install at newfd, replacing whatever is open there (the
 * close hook runs for the old entry, its cleanup after the lock). */
static int duplicate_guest_fd(shim_t *s, guest_thread_t *t, int oldfd, int newfd, int flags) {
  fd_entry_t src;
  int ret = fd_snapshot_and_dup(s, t, oldfd, &src);
  if (ret < 0) return ret;
  src.linux_flags = (src.linux_flags & ~LINUX_O_CLOEXEC) | (flags & LINUX_O_CLOEXEC);
  fd_entry_t old = {.type = FD_CLOSED};
  cf_mutex_lock(&s->fd_lock);
  ret = newfd < 0 ? lowest_free(s, 0) : newfd;
  if (ret >= 0) {
    old = s->fd_table[ret];
    if (old.type != FD_CLOSED) fd_mark_closed_unlocked(s, ret);
    fd_init_entry(s, &s->fd_table[ret], &src, false);
  }
  shim_observe(s, t, SHIM_AT_DUP, oldfd, ret);
  cf_mutex_unlock(&s->fd_lock);
  if (ret < 0) fd_cleanup_entry(s, &src);
  if (old.type != FD_CLOSED) {
    fd_cleanup_entry(s, &old);
    shim_observe(s, t, SHIM_AT_RETIRED, ret, 0);
  }
  return ret;
}

int sys_dup(shim_t *s, guest_thread_t *t, int oldfd) {
  return duplicate_guest_fd(s, t, oldfd, -1, 0);
}

int sys_dup3(shim_t *s, guest_thread_t *t, int oldfd, int newfd, int flags, bool dup2) {
  if (!dup2 && (flags & ~LINUX_O_CLOEXEC)) return -EINVAL;
  if (oldfd == newfd) {
    if (!dup2) return -EINVAL;
    /* dup2(fd, fd) only validates fd. */
    cf_mutex_lock(&s->fd_lock);
    int ret = fd_in_range(oldfd) && s->fd_table[oldfd].type != FD_CLOSED ? oldfd : -EBADF;
    shim_observe(s, t, SHIM_AT_DUP, oldfd, ret);
    cf_mutex_unlock(&s->fd_lock);
    return ret;
  }
  if (!fd_in_range(newfd)) return -EBADF;
  return duplicate_guest_fd(s, t, oldfd, newfd, flags);
}

/* ---- the world ------------------------------------------------------------------------------ */

void shim_init(shim_t *s, ks_kernel_t *host) {
  memset(s, 0, sizeof *s);
  s->host = host;
  cf_mutex_init(&s->fd_lock, "fd_lock");
  s->fd_next_generation = 1;
  s->next_ofd_id = 1;
  s->nthreads.v = 1;
  cf_pool_init(&s->inst_pool, SHIM_SYSTEM, "epoll_instance", sizeof(epoll_instance_t));
  cf_pool_init(&s->efd_pool, SHIM_SYSTEM, "eventfd_state", sizeof(eventfd_state_t));
  cf_pool_init(&s->lifetime_pool, SHIM_SYSTEM, "fd_lifetime", sizeof(fd_lifetime_t));
}
