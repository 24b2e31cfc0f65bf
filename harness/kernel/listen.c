/* listen.c: addressing and connection set-up for stream sockets: bind, listen, accept, connect.
 *
 * An address is a bare port number in a per-kernel namespace. connect() to a listening port
 * completes at once, as on AF_UNIX: the server side is created as an "embryo" socket,
 * connected to the client and queued on the listener until accept() gives it a descriptor;
 * the client may send before that. The listener is readable while its queue is non-empty and
 * is woken like a receiving socket when a connection arrives; the client is not woken (Linux
 * does not wake it either: it was writable before and stays so). A queue holding more than
 * `backlog` embryos is full: connect() waits, or fails with EAGAIN on a non-blocking socket
 * (AF_UNIX behaviour; there is no EINPROGRESS). listen() needs a bound, unconnected socket;
 * connect() is refused (ECONNREFUSED) unless the port has a listener that is not shut down for
 * reading. Closing a listener resets the connections still queued on it. */
#include "kernel_internal.h"

#define EPHEMERAL_FIRST 49152
#define EPHEMERAL_LAST 65535
#define MAX_BACKLOG 4096

static ks_sock_t *bound_to(ks_kernel_t *k, int port) {
  for (ks_list_t *l = k->bound.next; l != &k->bound; l = l->next) {
    ks_sock_t *s = KS_CONTAINER(l, ks_sock_t, bound_link);
    if (s->port == port) return s;
  }
  return NULL;
}

static int do_bind(ks_kernel_t *k, ks_sock_t *s, int port) {
  if (s->port >= 0) return -EINVAL;
  if (port == 0) {
    for (port = EPHEMERAL_FIRST; port <= EPHEMERAL_LAST && bound_to(k, port); port++) {
    }
    if (port > EPHEMERAL_LAST) return -EADDRINUSE;
  } else if (bound_to(k, port)) {
    return -EADDRINUSE;
  }
  s->port = port;
  s->bound = true;
  ks_list_push_back(&k->bound, &s->bound_link);
  return 0;
}

int ks_bind(ks_kernel_t *k, int fd, uint16_t port) {
  KS_SYSCALL(k, "bind");
  int err;
  ks_sock_t *s = ks_sock_get(k, fd, &err);
  if (!s) return err;
  int ret = do_bind(k, s, port);
  ks_fput(k, &s->file);
  return ret;
}

int ks_getsockport(ks_kernel_t *k, int fd) {
  int err;
  ks_sock_t *s = ks_sock_get(k, fd, &err);
  if (!s) return err;
  int ret = s->port >= 0 ? s->port : -EINVAL;
  ks_fput(k, &s->file);
  return ret;
}

int ks_listen(ks_kernel_t *k, int fd, int backlog) {
  KS_SYSCALL(k, "listen");
  int err;
  ks_sock_t *s = ks_sock_get(k, fd, &err);
  if (!s) return err;
  int ret = 0;
  /* AF_UNIX refuses to listen on an unbound socket and on a connected one. */
  if (s->port < 0 || s->state == KS_SS_CONNECTED) {
    ret = -EINVAL;
  } else {
    /* As Linux: a negative backlog is taken as unsigned, so it means "the maximum". */
    s->backlog = (backlog < 0 || backlog > MAX_BACKLOG) ? MAX_BACKLOG : backlog;
    s->state = KS_SS_LISTENING;
    cf_wake_all(&k->connect_waitq); /* a larger backlog may admit waiting connects */
  }
  ks_fput(k, &s->file);
  return ret;
}

int ks_accept4(ks_kernel_t *k, int fd, int flags) {
  KS_SYSCALL(k, "accept4");
  /* Linux's order: EBADF, then EINVAL for unknown flags, then ENOTSOCK. */
  ks_file_t *f = ks_fget(k, fd, false);
  if (!f) return -EBADF;
  bool bad_flags = (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0;
  ks_fput(k, f);
  if (bad_flags) return -EINVAL;
  int err;
  ks_sock_t *l = ks_sock_get(k, fd, &err);
  if (!l) return err;
  int ret;
  for (;;) {
    if (l->state != KS_SS_LISTENING) {
      ret = -EINVAL;
      break;
    }
    if (l->acceptq_len > 0) {
      ks_sock_t *e = KS_CONTAINER(l->acceptq.next, ks_sock_t, accept_link);
      ret = ks_fd_install(k, &e->file, (flags & SOCK_CLOEXEC) != 0);
      if (ret < 0) break; /* table full: the connection stays queued */
      ks_list_del(&e->accept_link);
      l->acceptq_len--;
      e->listener = NULL;
      if (flags & SOCK_NONBLOCK) e->file.flags |= O_NONBLOCK;
      ks_kq_touch(k, &l->file);
      cf_wake_all(&k->connect_waitq);
      break;
    }
    if (ks_nonblock(&l->file, 0)) {
      ret = -EAGAIN;
      break;
    }
    ks_block(&l->file, -1, CF_SITE("sys.accept4"));
  }
  ks_fput(k, &l->file);
  return ret;
}

int ks_connect(ks_kernel_t *k, int fd, uint16_t port) {
  KS_SYSCALL(k, "connect");
  int err;
  ks_sock_t *c = ks_sock_get(k, fd, &err);
  if (!c) return err;
  int ret;
  for (;;) {
    /* Linux's order: the listener first (looked up again after every wait, as it may have
     * gone meanwhile), then room in its queue, then the state of the connecting socket. */
    ks_sock_t *l = bound_to(k, port);
    if (!l || l->state != KS_SS_LISTENING || (l->shut & KS_SHUT_RCV)) {
      ret = -ECONNREFUSED;
      break;
    }
    if (l->acceptq_len > l->backlog) {
      if (ks_nonblock(&c->file, 0)) {
        ret = -EAGAIN;
        break;
      }
      cf_wait_at(&k->connect_waitq, CF_WAIT_IDLE, -1, CF_SITE("sys.connect backlog"));
      continue;
    }
    if (c->state != KS_SS_UNCONNECTED) {
      ret = c->state == KS_SS_CONNECTED ? -EISCONN : -EINVAL;
      break;
    }
    ks_sock_t *e = ks_sock_new(k, 0); /* its one reference belongs to the queue */
    ks_sock_connect_pair(c, e);
    e->listener = l;
    e->port = l->port; /* the accepted socket has the listener's address (and cannot bind) */
    ks_list_push_back(&l->acceptq, &e->accept_link);
    l->acceptq_len++;
    ks_wake(k, &l->file, EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND);
    ks_kq_touch(k, &c->file);
    ret = 0;
    break;
  }
  ks_fput(k, &c->file);
  return ret;
}

void ks_sock_release_listener(ks_kernel_t *k, ks_sock_t *s) {
  if (s->bound) {
    ks_list_del(&s->bound_link);
    s->bound = false;
  }
  while (!ks_list_empty(&s->acceptq)) {
    ks_sock_t *e = KS_CONTAINER(s->acceptq.next, ks_sock_t, accept_link);
    ks_list_del(&e->accept_link);
    s->acceptq_len--;
    ks_fput(k, &e->file); /* e->listener stays set: its release knows it was never accepted */
  }
  cf_wake_all(&k->connect_waitq);
}
