/* io.c: the files a guest creates and their I/O (elfuse src/syscall/fd.c eventfd emulation,
 * fs.c pipe2/socketpair/open, io.c sys_read/sys_write/sys_ioctl).
 *
 * eventfd is emulated on a host pipe: the counter lives in software and the pipe carries
 * readiness (one byte per write that added something, drained by the read that takes the
 * count), so kqueue's EVFILT_READ on the read end fires exactly while the count is non-zero.
 * The emulation never blocks: a read of a zero count answers EAGAIN whatever the O_NONBLOCK
 * bit (the workload creates every eventfd with EFD_NONBLOCK). Semaphore mode is not modelled.
 * Pipes, socketpairs, O_PATH and regular files are host descriptors of the same kind. */
#include "shim.h"

/* ---- eventfd -------------------------------------------------------------------------------- */

void eventfd_dup_fd(shim_t *s, eventfd_state_t *efd) {
  (void)s;
  efd->refs++; /* under fd_lock, from the dup path */
}

void eventfd_release(shim_t *s, eventfd_state_t *efd) {
  cf_mutex_lock(&s->fd_lock);
  int left = --efd->refs;
  cf_mutex_unlock(&s->fd_lock);
  if (left > 0) return;
  ks_close(s->host, efd->pipe_wr);
  cf_pool_free(&s->efd_pool, efd);
}

int sys_eventfd2(shim_t *s, guest_thread_t *t, unsigned initval, int flags) {
  if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK)) return -EINVAL;
  int p[2];
  int ret = ks_pipe2(s->host, p, O_NONBLOCK);
  if (ret < 0) return ret;
  eventfd_state_t *efd = cf_pool_alloc(&s->efd_pool);
  efd->count = initval;
  efd->pipe_rd = p[0];
  efd->pipe_wr = p[1];
  efd->refs = 1;
  cf_mutex_init(&efd->lock, "efd->lock");
  if (initval > 0) {
    ks_write(s->host, efd->pipe_wr, "e", 1);
    efd->tokens = 1;
  }
  int lflags = ((flags & EFD_CLOEXEC) ? LINUX_O_CLOEXEC : 0) |
               ((flags & EFD_NONBLOCK) ? LINUX_O_NONBLOCK : 0);
  int fd = fd_alloc(s, t, FD_EVENTFD, p[0], lflags, NULL, efd);
  if (fd < 0) {
    ks_close(s->host, p[0]);
    eventfd_release(s, efd);
  }
  return fd;
}

static ssize_t eventfd_emul_read(shim_t *s, guest_thread_t *t, int fd, eventfd_state_t *efd,
                            int host_rd, void *buf, size_t n) {
  if (n < sizeof(uint64_t)) return -EINVAL;
  cf_mutex_lock(&efd->lock);
  ssize_t ret = -EAGAIN;
  if (efd->count > 0) {
    uint64_t v = efd->count;
    efd->count = 0;
    uint8_t drain[64];
    while (efd->tokens > 0) {
      int chunk = efd->tokens < (int)sizeof drain ? efd->tokens : (int)sizeof drain;
      ssize_t got = ks_read(s->host, host_rd, drain, (size_t)chunk);
      if (got <= 0) break;
      efd->tokens -= (int)got;
    }
    memcpy(buf, &v, sizeof v);
    ret = sizeof v;
  }
  shim_observe(s, t, SHIM_AT_IO, fd, (int)ret);
  cf_mutex_unlock(&efd->lock);
  return ret;
}

static ssize_t eventfd_emul_write(shim_t *s, guest_thread_t *t, int fd, eventfd_state_t *efd,
                             const void *buf, size_t n) {
  uint64_t v;
  if (n < sizeof v) return -EINVAL;
  memcpy(&v, buf, sizeof v);
  if (v == UINT64_MAX) return -EINVAL;
  cf_mutex_lock(&efd->lock);
  ssize_t ret = -EAGAIN;
  if (UINT64_MAX - 1 - efd->count >= v) {
    efd->count += v;
    /* Only a write that adds something makes the pipe readable: a zero count is not ready
     * on Linux either. */
    if (v > 0 && ks_write(s->host, efd->pipe_wr, "e", 1) == 1) efd->tokens++;
    ret = sizeof v;
  }
  shim_observe(s, t, SHIM_AT_IO, fd, (int)ret);
  cf_mutex_unlock(&efd->lock);
  return ret;
}

/* ---- pipes, sockets, files ------------------------------------------------------------------ */

int sys_pipe2(shim_t *s, guest_thread_t *t, int fds[2], int flags) {
  if (flags & ~(O_NONBLOCK | O_CLOEXEC)) return -EINVAL;
  int p[2];
  int ret = ks_pipe2(s->host, p, flags & O_NONBLOCK);
  if (ret < 0) return ret;
  int lflags = (flags & O_CLOEXEC) ? LINUX_O_CLOEXEC : 0;
  fd_entry_t tmpl[2] = {{.type = FD_PIPE, .host_fd = p[0], .linux_flags = lflags},
                        {.type = FD_PIPE, .host_fd = p[1], .linux_flags = lflags}};
  ret = fd_alloc_pair(s, t, tmpl, fds);
  if (ret < 0) {
    ks_close(s->host, p[0]);
    ks_close(s->host, p[1]);
  }
  return ret;
}

int sys_socketpair(shim_t *s, guest_thread_t *t, int fds[2], int flags) {
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return -EINVAL;
  int sv[2];
  int ret = ks_socketpair(s->host, AF_UNIX, SOCK_STREAM | (flags & SOCK_NONBLOCK), 0, sv);
  if (ret < 0) return ret;
  int lflags = (flags & SOCK_CLOEXEC) ? LINUX_O_CLOEXEC : 0;
  fd_entry_t tmpl[2] = {{.type = FD_SOCKET, .host_fd = sv[0], .linux_flags = lflags},
                        {.type = FD_SOCKET, .host_fd = sv[1], .linux_flags = lflags}};
  ret = fd_alloc_pair(s, t, tmpl, fds);
  if (ret < 0) {
    ks_close(s->host, sv[0]);
    ks_close(s->host, sv[1]);
  }
  return ret;
}

static int open_kind(shim_t *s, guest_thread_t *t, int type, int host_fd, int flags) {
  if (host_fd < 0) return host_fd;
  int fd = fd_alloc(s, t, type, host_fd, (flags & O_CLOEXEC) ? LINUX_O_CLOEXEC : 0, NULL, NULL);
  if (fd < 0) ks_close(s->host, host_fd);
  return fd;
}

int sys_open_path(shim_t *s, guest_thread_t *t, int flags) {
  return open_kind(s, t, FD_PATH, ks_open_path(s->host, flags & O_CLOEXEC), flags);
}

int sys_open_regular(shim_t *s, guest_thread_t *t, int flags) {
  return open_kind(s, t, FD_REGULAR, ks_open_regular(s->host, flags & O_CLOEXEC), flags);
}

ssize_t sys_read(shim_t *s, guest_thread_t *t, int fd, void *buf, size_t n) {
  host_fd_ref_t ref;
  int ret = host_fd_ref_open_io(s, t, fd, &ref);
  if (ret < 0) return ret;
  ssize_t got;
  if (ref.efd) {
    got = eventfd_emul_read(s, t, fd, ref.efd, ref.fd, buf, n);
  } else {
    got = ks_read(s->host, ref.fd, buf, n);
    shim_observe(s, t, SHIM_AT_IO, fd, (int)got);
  }
  host_fd_ref_close(s, &ref);
  return got;
}

ssize_t sys_write(shim_t *s, guest_thread_t *t, int fd, const void *buf, size_t n) {
  host_fd_ref_t ref;
  int ret = host_fd_ref_open_io(s, t, fd, &ref);
  if (ret < 0) return ret;
  ssize_t put;
  if (ref.efd) {
    put = eventfd_emul_write(s, t, fd, ref.efd, buf, n);
  } else {
    put = ks_write(s->host, ref.fd, buf, n);
    shim_observe(s, t, SHIM_AT_IO, fd, (int)put);
  }
  host_fd_ref_close(s, &ref);
  return put;
}

/* ---- ioctl (PR #73) --------------------------------------------------------------------------- */

/* FIOCLEX/FIONCLEX flip the guest's cloexec bit, validated and changed in one fd_lock section
 * so a concurrent close+reuse cannot flip it on another file; they need no host fd, so they
 * come before host_fd_ref_open_io, which would refuse O_PATH (Linux allows them there). */
static int ioctl_cloexec(shim_t *s, guest_thread_t *t, int fd, bool set) {
  if (fd < 0 || fd >= FD_TABLE_SIZE) return -EBADF;
  cf_mutex_lock(&s->fd_lock);
  fd_entry_t *e = &s->fd_table[fd];
  int ret = 0;
  if (e->type == FD_CLOSED)
    ret = -EBADF;
  else if (set)
    e->linux_flags |= LINUX_O_CLOEXEC;
  else
    e->linux_flags &= ~LINUX_O_CLOEXEC;
  shim_observe(s, t, SHIM_AT_IOCTL, fd, ret);
  cf_mutex_unlock(&s->fd_lock);
  return ret;
}

int sys_ioctl(shim_t *s, guest_thread_t *t, int fd, unsigned long req, int arg) {
  bool cloexec_req = req == LINUX_FIOCLEX || req == LINUX_FIONCLEX;
  /* epoll-73-fioclex-opath: the first version of PR #73 dispatched them after the ref. */
  if (cloexec_req && !cf_bug(CF_BUG_EPOLL_73_FIOCLEX_OPATH))
    return ioctl_cloexec(s, t, fd, req == LINUX_FIOCLEX);
  host_fd_ref_t ref;
  int ret = host_fd_ref_open_io(s, t, fd, &ref);
  if (ret < 0) return ret;
  if (cloexec_req) {
    ret = ioctl_cloexec(s, t, fd, req == LINUX_FIOCLEX);
  } else if (req == LINUX_FIONBIO && !cf_bug(CF_BUG_EPOLL_73_FIONBIO_ENOTTY)) {
    /* O_NONBLOCK is a status flag of the description, so setting it on a transient dup
     * reaches the persistent descriptor too. */
    int fl = ks_fcntl(s->host, ref.fd, F_GETFL, 0);
    ret = fl < 0 ? fl : ks_fcntl(s->host, ref.fd, F_SETFL, arg ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
    shim_observe(s, t, SHIM_AT_IOCTL, fd, ret);
  } else {
    /* epoll-73-fionbio-enotty: before PR #73 FIONBIO fell through to here. */
    ret = -ENOTTY;
    shim_observe(s, t, SHIM_AT_IOCTL, fd, ret);
  }
  host_fd_ref_close(s, &ref);
  return ret;
}
