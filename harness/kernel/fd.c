/* fd.c: kernel instances, open file descriptions and the fd table.
 *
 * Numbers are allocated lowest-free, as POSIX requires, so a closed number is the next one
 * handed out: the close/reopen ABA that fuzz targets look for happens here exactly as on a real
 * kernel. A file (open file description) is shared by dups and freed when its last reference
 * goes; only then are its epoll items removed from every epoll (Linux eventpoll_release), while
 * kqueue knotes go as soon as their descriptor number closes (BSD knote_fdclose). */
#include <sys/stat.h>

#include "kernel_internal.h"

ks_kernel_t *ks_kernel_new(const ks_config_t *cfg) {
  ks_kernel_t *k = calloc(1, sizeof *k);
  if (!k) abort();
  if (cfg)
    k->cfg = *cfg;
  else
    ks_config_default(&k->cfg);
  if (k->cfg.sock_buf_bytes == 0) k->cfg.sock_buf_bytes = 64 * 1024;
  ks_list_init(&k->files);
  ks_list_init(&k->kqueues);
  ks_list_init(&k->bound);
  ks_list_init(&k->forks);
  ks_list_init(&k->pollers);
  k->next_id = 1;
  return k;
}

/* ---- files -------------------------------------------------------------------------------- */

ks_file_t *ks_file_new(ks_kernel_t *k, const ks_file_ops_t *ops, size_t size, int flags) {
  ks_file_t *f = ks_alloc(k, size);
  f->id = k->next_id++;
  f->ops = ops;
  f->refs = 1;
  f->flags = flags;
  ks_list_init(&f->watchers);
  ks_list_push_back(&k->files, &f->link);
  return f;
}

void ks_fget_ref(ks_file_t *f) { f->refs++; }

/* The description is gone: detach its watchers first (so the wake-ups its release sends to a
 * peer never reach items of the dying file, as in Linux's __fput), then the type's release. */
static void file_release(ks_kernel_t *k, ks_file_t *f) {
  while (!ks_list_empty(&f->watchers)) {
    ks_watch_t *w = KS_CONTAINER(f->watchers.next, ks_watch_t, link);
    w->drop(k, w);
  }
  if (f->ops->release) f->ops->release(k, f);
  ks_list_del(&f->link);
  ks_free(k, f);
}

void ks_fput(ks_kernel_t *k, ks_file_t *f) {
  if (--f->refs == 0) file_release(k, f);
}

void ks_wake(ks_kernel_t *k, ks_file_t *f, uint32_t key) {
  for (ks_list_t *l = f->watchers.next, *next; l != &f->watchers; l = next) {
    next = l->next;
    ks_watch_t *w = KS_CONTAINER(l, ks_watch_t, link);
    w->notify(k, w, key);
  }
  cf_wake_all(&f->waitq);
}

void ks_kq_touch(ks_kernel_t *k, ks_file_t *f) {
  for (ks_list_t *l = f->watchers.next, *next; l != &f->watchers; l = next) {
    next = l->next;
    ks_watch_t *w = KS_CONTAINER(l, ks_watch_t, link);
    if (w->knote) w->notify(k, w, 0);
  }
}

void ks_kq_touch_read(ks_kernel_t *k, ks_file_t *f) {
  for (ks_list_t *l = f->watchers.next, *next; l != &f->watchers; l = next) {
    next = l->next;
    ks_watch_t *w = KS_CONTAINER(l, ks_watch_t, link);
    if (w->knote && w->kq_filter == KS_EVFILT_READ) w->notify(k, w, 0);
  }
}

bool ks_nonblock(const ks_file_t *f, int msg_flags) {
  return (f->flags & O_NONBLOCK) || (msg_flags & MSG_DONTWAIT) || !cf_in_sim();
}

bool ks_block(ks_file_t *f, int64_t timeout, const cf_site_t *site) {
  return cf_wait_at(&f->waitq, CF_WAIT_IDLE, timeout, site);
}

/* ---- the table ------------------------------------------------------------------------------ */

static int lowest_free(ks_kernel_t *k, int from) {
  for (int fd = from < 0 ? 0 : from; fd < KS_NFD; fd++)
    if (!k->fdt[fd].file) return fd;
  return -1;
}

int ks_fd_install(ks_kernel_t *k, ks_file_t *f, bool cloexec) {
  int fd = lowest_free(k, 0);
  if (fd < 0) return -EMFILE;
  k->fdt[fd].file = f;
  k->fdt[fd].cloexec = cloexec;
  return fd;
}

int ks_fd_install2(ks_kernel_t *k, ks_file_t *f0, ks_file_t *f1, bool cloexec, int fds[2]) {
  int a = lowest_free(k, 0);
  int b = a < 0 ? -1 : lowest_free(k, a + 1);
  if (b < 0) return -EMFILE;
  k->fdt[a] = (ks_fdent_t){f0, cloexec};
  k->fdt[b] = (ks_fdent_t){f1, cloexec};
  fds[0] = a;
  fds[1] = b;
  return 0;
}

ks_file_t *ks_fget(ks_kernel_t *k, int fd, bool allow_path) {
  if (fd < 0 || fd >= KS_NFD) return NULL;
  ks_file_t *f = k->fdt[fd].file;
  if (!f || (!allow_path && (f->flags & O_PATH))) return NULL;
  f->refs++;
  return f;
}

/* Remove the number from the table, then drop the description's reference. */
static void close_slot(ks_kernel_t *k, int fd) {
  ks_file_t *f = k->fdt[fd].file;
  k->fdt[fd] = (ks_fdent_t){NULL, false};
  ks_kqueue_fd_closed(k, fd);
  ks_fput(k, f);
}

int ks_close(ks_kernel_t *k, int fd) {
  KS_SYSCALL(k, "close");
  if (fd < 0 || fd >= KS_NFD || !k->fdt[fd].file) return -EBADF;
  close_slot(k, fd);
  return 0;
}

int ks_dup(ks_kernel_t *k, int fd) {
  KS_SYSCALL(k, "dup");
  ks_file_t *f = ks_fget(k, fd, true);
  if (!f) return -EBADF;
  int nfd = ks_fd_install(k, f, false);
  if (nfd < 0) ks_fput(k, f);
  return nfd;
}

/* dup2/dup3 onto an open number: the new file is in place before the old one is closed, as in
 * Linux's do_dup2, so nobody can observe the number free in between. */
static int do_dup3(ks_kernel_t *k, int oldfd, int newfd, int flags) {
  if (flags & ~O_CLOEXEC) return -EINVAL;
  if (oldfd == newfd) return -EINVAL;
  if (newfd < 0 || newfd >= KS_NFD) return -EBADF;
  ks_file_t *f = ks_fget(k, oldfd, true);
  if (!f) return -EBADF;
  ks_file_t *old = k->fdt[newfd].file;
  k->fdt[newfd] = (ks_fdent_t){f, (flags & O_CLOEXEC) != 0};
  if (old) {
    ks_kqueue_fd_closed(k, newfd);
    ks_fput(k, old);
  }
  return newfd;
}

int ks_dup2(ks_kernel_t *k, int oldfd, int newfd) {
  KS_SYSCALL(k, "dup2");
  if (oldfd == newfd) {
    if (oldfd < 0 || oldfd >= KS_NFD || !k->fdt[oldfd].file) return -EBADF;
    return oldfd;
  }
  return do_dup3(k, oldfd, newfd, 0);
}

int ks_dup3(ks_kernel_t *k, int oldfd, int newfd, int flags) {
  KS_SYSCALL(k, "dup3");
  return do_dup3(k, oldfd, newfd, flags);
}

int ks_fcntl(ks_kernel_t *k, int fd, int cmd, int arg) {
  KS_SYSCALL(k, "fcntl");
  ks_file_t *f = ks_fget(k, fd, true);
  if (!f) return -EBADF;
  int ret;
  /* Linux allows only these on O_PATH descriptors and answers EBADF to everything else. */
  if ((f->flags & O_PATH) && cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC && cmd != F_GETFD &&
      cmd != F_SETFD && cmd != F_GETFL) {
    ks_fput(k, f);
    return -EBADF;
  }
  switch (cmd) {
  case F_GETFD:
    ret = k->fdt[fd].cloexec ? FD_CLOEXEC : 0;
    break;
  case F_SETFD:
    k->fdt[fd].cloexec = (arg & FD_CLOEXEC) != 0;
    ret = 0;
    break;
  case F_GETFL:
    ret = f->flags;
    break;
  case F_SETFL:
    /* Of the settable status flags only O_NONBLOCK means something here. */
    f->flags = (f->flags & ~O_NONBLOCK) | (arg & O_NONBLOCK);
    ret = 0;
    break;
  case F_DUPFD:
  case F_DUPFD_CLOEXEC:
    if (arg < 0 || arg >= KS_NFD) {
      ret = -EINVAL;
      break;
    }
    ret = lowest_free(k, arg);
    if (ret < 0) {
      ret = -EMFILE;
      break;
    }
    ks_fget_ref(f);
    k->fdt[ret] = (ks_fdent_t){f, cmd == F_DUPFD_CLOEXEC};
    break;
  default:
    ret = -EINVAL;
  }
  ks_fput(k, f);
  return ret;
}

ssize_t ks_read(ks_kernel_t *k, int fd, void *buf, size_t n) {
  KS_SYSCALL(k, "read");
  ks_file_t *f = ks_fget(k, fd, false);
  if (!f) return -EBADF;
  ssize_t ret;
  if (!ks_readable(f))
    ret = -EBADF;
  else if (!f->ops->read)
    ret = -EINVAL;
  else
    ret = f->ops->read(k, f, buf, n, 0);
  ks_fput(k, f);
  return ret;
}

ssize_t ks_write(ks_kernel_t *k, int fd, const void *buf, size_t n) {
  KS_SYSCALL(k, "write");
  ks_file_t *f = ks_fget(k, fd, false);
  if (!f) return -EBADF;
  ssize_t ret;
  if (!ks_writable(f))
    ret = -EBADF;
  else if (!f->ops->write)
    ret = -EINVAL;
  else
    ret = f->ops->write(k, f, buf, n, 0);
  ks_fput(k, f);
  return ret;
}

int64_t ks_fd_ofd_id(ks_kernel_t *k, int fd) {
  if (fd < 0 || fd >= KS_NFD || !k->fdt[fd].file) return -EBADF;
  return k->fdt[fd].file->id;
}

int ks_fstat_mode(ks_kernel_t *k, int fd) {
  KS_SYSCALL(k, "fstat");
  if (fd < 0 || fd >= KS_NFD || !k->fdt[fd].file) return -EBADF;
  switch (k->fdt[fd].file->ops->type) {
  case KS_FT_PIPE: return S_IFIFO;
  case KS_FT_SOCKET: return S_IFSOCK;
  case KS_FT_PATH: /* the model's O_PATH descriptors name a regular file */
  case KS_FT_REGULAR: return S_IFREG;
  default: return 0;
  }
}

/* ---- teardown ------------------------------------------------------------------------------- */

/* ---- fork and exec -------------------------------------------------------------------------- */

struct ks_fork {
  ks_list_t link;            /* in k->forks */
  int n;
  ks_file_t *files[KS_NFD];
};

ks_fork_t *ks_fork(ks_kernel_t *k, const uint8_t *fds) {
  KS_SYSCALL(k, "fork");
  ks_fork_t *child = calloc(1, sizeof *child);
  if (!child) abort();
  for (int fd = 0; fd < KS_NFD; fd++) {
    ks_file_t *f = k->fdt[fd].file;
    if (!f || (fds && !(fds[fd / 8] & (1u << (fd % 8))))) continue;
    ks_fget_ref(f);
    child->files[child->n++] = f;
  }
  ks_list_push_back(&k->forks, &child->link);
  return child;
}

void ks_fork_exec(ks_kernel_t *k, ks_fork_t *child) {
  KS_SYSCALL(k, "execve");
  ks_list_del(&child->link);
  for (int i = 0; i < child->n; i++) ks_fput(k, child->files[i]);
  free(child);
}

void ks_kernel_free(ks_kernel_t *k) {
  if (!k) return;
  /* poll calls abandoned while blocked: their wait entries are unhooked and freed first,
   * dropping the references they held, so the files they pinned go like any other. */
  ks_poll_teardown(k);
  /* Children still between fork and exec when the run ended: their references go with the
   * files below. */
  while (!ks_list_empty(&k->forks)) {
    ks_fork_t *child = KS_CONTAINER(k->forks.next, ks_fork_t, link);
    ks_list_del(&child->link);
    free(child);
  }
  for (int fd = 0; fd < KS_NFD; fd++)
    if (k->fdt[fd].file) close_slot(k, fd);
  /* What is left was pinned by calls that never returned (their fibers were discarded with the
   * run) or by such files' own references: release it regardless of the count. A release may
   * free other files of the list, so start over from the head each time. */
  while (!ks_list_empty(&k->files)) {
    ks_file_t *f = KS_CONTAINER(k->files.next, ks_file_t, link);
    f->refs = 0;
    file_release(k, f);
  }
  ks_arena_release(k);
  free(k);
}
