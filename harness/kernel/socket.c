/* socket.c: connected stream sockets: creation, send/recv, shutdown, close.
 *
 * The model is Linux's AF_UNIX SOCK_STREAM (net/unix/af_unix.c), whose readiness and wake-ups
 * epoll users observe:
 *  - each send chunk is a segment queued on the peer, and wakes the peer with
 *    EPOLLIN|EPOLLPRI|EPOLLRDNORM|EPOLLRDBAND (sock_def_readable);
 *  - a read that consumes a whole segment wakes the sender with EPOLLOUT|EPOLLWRNORM|EPOLLWRBAND
 *    (the segment's memory goes back to the sender, unix_write_space);
 *  - shutdown wakes this end, then the peer, with key 0 (sk_state_change), and sets the mirror
 *    bits on the peer: SHUT_WR here is "no more to receive" there;
 *  - closing wakes the peer with key 0 and shuts it down both ways; if unread data was left
 *    behind (or the socket was never accepted) the peer also gets ECONNRESET, reported by its
 *    next read once its own queue is empty;
 *  - poll: EPOLLERR for a pending error, EPOLLHUP when shut down both ways or not connected,
 *    EPOLLRDHUP|EPOLLIN when nothing more can arrive, EPOLLIN with queued data (or a non-empty
 *    accept queue), EPOLLOUT while the bytes in flight to the peer are under the buffer size
 *    (never on a listener);
 *  - send: ENOTCONN unconnected, EPIPE after our SHUT_WR or when the peer is gone or shut for
 *    reading; recv: EINVAL unless connected, data first, then a pending error, then 0 at EOF.
 * For kqueue, a read also re-evaluates the reader's own knotes (its byte count changed), as
 * for pipes.
 *
 * Faults, drawn only when the target enabled them: a connection reset on any send/recv of a
 * connected socket (both ends get ECONNRESET and are shut down; this call fails with it), a
 * short send (fewer bytes accepted, count chosen by the input), and a spurious EAGAIN from a
 * non-blocking send/recv. The spurious EAGAIN is followed by a wake-up of the caller's own
 * watchers, as if the resource came back right after, so an edge-triggered caller is not
 * stranded by an event no real kernel would withhold. */
#include "kernel_internal.h"

typedef struct ks_seg {
  ks_list_t link;
  size_t len, off;           /* unread bytes are data[off, len) */
  uint8_t data[];
} ks_seg_t;

#define KEY_READABLE (EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND)
#define KEY_WRITABLE (EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND)

static ks_sock_t *sock_of(ks_file_t *f) { return (ks_sock_t *)f; }

static bool sock_writable(ks_kernel_t *k, const ks_sock_t *s) {
  if (s->state == KS_SS_LISTENING) return false;
  return !s->peer || s->peer->rcv_bytes < k->cfg.sock_buf_bytes;
}

static void purge_rcvq(ks_sock_t *s) {
  while (!ks_list_empty(&s->rcvq)) {
    ks_seg_t *seg = KS_CONTAINER(s->rcvq.next, ks_seg_t, link);
    ks_list_del(&seg->link);
    free(seg);
  }
  s->rcv_bytes = 0;
}

static uint32_t sock_poll(ks_kernel_t *k, ks_file_t *f) {
  ks_sock_t *s = sock_of(f);
  uint32_t mask = 0;
  if (s->err) mask |= EPOLLERR;
  if (s->shut == KS_SHUT_BOTH) mask |= EPOLLHUP;
  if (s->shut & KS_SHUT_RCV) mask |= EPOLLRDHUP | EPOLLIN | EPOLLRDNORM;
  if (s->rcv_bytes > 0 || s->acceptq_len > 0) mask |= EPOLLIN | EPOLLRDNORM;
  if (s->state == KS_SS_UNCONNECTED) mask |= EPOLLHUP;
  if (sock_writable(k, s)) mask |= EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
  return mask;
}

/* The connection breaks: both ends are shut down with ECONNRESET pending and lose what they had
 * not read yet. */
static void reset_connection(ks_kernel_t *k, ks_sock_t *s) {
  ks_sock_t *p = s->peer;
  ks_sock_t *ends[2] = {s, p};
  s->peer = NULL;
  if (p) p->peer = NULL;
  for (int i = 0; i < 2; i++) {
    if (!ends[i]) continue;
    ends[i]->err = ECONNRESET;
    ends[i]->shut = KS_SHUT_BOTH;
    purge_rcvq(ends[i]);
  }
  for (int i = 0; i < 2; i++)
    if (ends[i]) ks_wake(k, &ends[i]->file, 0);
}

/* Draw a reset for an operation on a live connection; true when it happened. */
static bool draw_reset(ks_kernel_t *k, ks_sock_t *s, const cf_site_t *site) {
  if (s->state != KS_SS_CONNECTED || !s->peer) return false;
  if (!cf_fault(site, CF_FAULT_RESET)) return false;
  reset_connection(k, s);
  s->err = 0; /* reported by this call */
  return true;
}

static ssize_t sock_recv(ks_kernel_t *k, ks_file_t *f, void *buf, size_t n, int msg_flags) {
  ks_sock_t *s = sock_of(f);
  if (s->state != KS_SS_CONNECTED) return -EINVAL;
  if (n == 0) return 0;
  if (draw_reset(k, s, CF_SITE("sys.recv reset"))) return -ECONNRESET;
  for (;;) {
    if (s->rcv_bytes > 0) {
      if (ks_nonblock(f, msg_flags) && cf_fault(CF_SITE("sys.recv eagain"), CF_FAULT_EAGAIN)) {
        ks_wake(k, f, KEY_READABLE);
        return -EAGAIN;
      }
      size_t got = 0;
      ks_list_t *l = s->rcvq.next;
      while (got < n && l != &s->rcvq) {
        ks_seg_t *seg = KS_CONTAINER(l, ks_seg_t, link);
        l = l->next;
        size_t chunk = seg->len - seg->off < n - got ? seg->len - seg->off : n - got;
        memcpy((uint8_t *)buf + got, seg->data + seg->off, chunk);
        got += chunk;
        if (msg_flags & MSG_PEEK) continue;
        seg->off += chunk;
        s->rcv_bytes -= chunk;
        if (seg->off < seg->len) break;
        ks_list_del(&seg->link);
        free(seg);
        if (s->peer && sock_writable(k, s->peer)) ks_wake(k, &s->peer->file, KEY_WRITABLE);
      }
      /* The read changed this end's receive buffer: its read knotes see it (the byte count,
       * as upstream's EPOLLET comment describes for a partial read). Its write knotes watch
       * its send side, which a read does not change: the room it frees is the peer's
       * (BSD uipc_rcvd wakes the peer's so_snd, sowwakeup(so2)), woken above. */
      if (!(msg_flags & MSG_PEEK)) ks_kq_touch_read(k, f);
      return (ssize_t)got;
    }
    if (s->err) {
      int e = s->err;
      s->err = 0;
      return -e;
    }
    if (s->shut & KS_SHUT_RCV) return 0;
    if (ks_nonblock(f, msg_flags)) return -EAGAIN;
    ks_block(f, -1, CF_SITE("sys.recv"));
  }
}

static ssize_t sock_send(ks_kernel_t *k, ks_file_t *f, const void *buf, size_t n, int msg_flags) {
  ks_sock_t *s = sock_of(f);
  if (s->state != KS_SS_CONNECTED) return -ENOTCONN;
  if (s->shut & KS_SHUT_SEND) return -EPIPE;
  if (n == 0) return 0;
  if (draw_reset(k, s, CF_SITE("sys.send reset"))) return -ECONNRESET;
  size_t limit = n;
  if (n > 1 && cf_fault(CF_SITE("sys.send short"), CF_FAULT_SHORT_WRITE))
    limit = 1 + cf_choose(CF_SITE("sys.send short length"),
                          n - 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(n - 1));
  size_t sent = 0;
  for (;;) {
    ks_sock_t *p = s->peer;
    if ((s->shut & KS_SHUT_SEND) || !p || (p->shut & KS_SHUT_RCV))
      return sent ? (ssize_t)sent : -EPIPE;
    size_t room = k->cfg.sock_buf_bytes > p->rcv_bytes ? k->cfg.sock_buf_bytes - p->rcv_bytes : 0;
    if (room > 0 && sent == 0 && ks_nonblock(f, msg_flags) &&
        cf_fault(CF_SITE("sys.send eagain"), CF_FAULT_EAGAIN)) {
      ks_wake(k, f, KEY_WRITABLE);
      return -EAGAIN;
    }
    if (room > 0) {
      size_t chunk = limit - sent < room ? limit - sent : room;
      ks_seg_t *seg = malloc(sizeof *seg + chunk);
      if (!seg) abort();
      seg->len = chunk;
      seg->off = 0;
      memcpy(seg->data, (const uint8_t *)buf + sent, chunk);
      ks_list_push_back(&p->rcvq, &seg->link);
      p->rcv_bytes += chunk;
      sent += chunk;
      ks_wake(k, &p->file, KEY_READABLE);
      if (sent == limit) return (ssize_t)sent;
      continue;
    }
    if (ks_nonblock(f, msg_flags)) return sent ? (ssize_t)sent : -EAGAIN;
    ks_block(f, -1, CF_SITE("sys.send"));
  }
}

static int sock_kq_event(ks_kernel_t *k, ks_file_t *f, int16_t filter, ks_kevent_t *ev) {
  ks_sock_t *s = sock_of(f);
  if (filter == KS_EVFILT_READ) {
    if (s->state == KS_SS_LISTENING) {
      ev->data = s->acceptq_len;
      return s->acceptq_len > 0;
    }
    ev->data = (int64_t)s->rcv_bytes;
    if (s->shut & KS_SHUT_RCV) {
      ev->flags |= KS_EV_EOF;
      ev->fflags = (uint32_t)s->err;
      return 1;
    }
    return s->rcv_bytes > 0 || s->err;
  }
  if (filter == KS_EVFILT_WRITE) {
    if (s->state == KS_SS_LISTENING) return 0;
    if (s->shut & KS_SHUT_SEND) {
      ev->data = 0;
      ev->flags |= KS_EV_EOF;
      ev->fflags = (uint32_t)s->err;
      return 1;
    }
    if (s->err) return 1;
    if (s->state != KS_SS_CONNECTED) return 0;
    size_t inflight = s->peer ? s->peer->rcv_bytes : 0;
    ev->data = (int64_t)(k->cfg.sock_buf_bytes - inflight);
    return sock_writable(k, s);
  }
  return -EINVAL;
}

static void sock_release(ks_kernel_t *k, ks_file_t *f) {
  ks_sock_t *s = sock_of(f);
  bool embryo = false;
  if (s->listener) {
    /* Released before accept: normally by the listener flushing its queue (which already
     * unlinked it), or at kernel teardown while still queued. */
    embryo = true;
    if (!ks_list_empty(&s->accept_link)) {
      ks_list_del(&s->accept_link);
      s->listener->acceptq_len--;
    }
    s->listener = NULL;
  }
  ks_sock_release_listener(k, s);
  ks_sock_t *p = s->peer;
  if (p) {
    s->peer = NULL;
    p->peer = NULL;
    p->shut = KS_SHUT_BOTH;
    if (s->rcv_bytes > 0 || embryo) p->err = ECONNRESET;
    ks_wake(k, &p->file, 0);
  }
  purge_rcvq(s);
}

const ks_file_ops_t ks_sock_ops = {
    .type = KS_FT_SOCKET,
    .poll = sock_poll,
    .read = sock_recv,
    .write = sock_send,
    .kq_event = sock_kq_event,
    .release = sock_release,
};

ks_sock_t *ks_sock_new(ks_kernel_t *k, int flags) {
  ks_sock_t *s =
      (ks_sock_t *)ks_file_new(k, &ks_sock_ops, sizeof *s, O_RDWR | (flags & O_NONBLOCK));
  s->state = KS_SS_UNCONNECTED;
  s->port = -1;
  ks_list_init(&s->rcvq);
  ks_list_init(&s->bound_link);
  ks_list_init(&s->acceptq);
  ks_list_init(&s->accept_link);
  return s;
}

void ks_sock_connect_pair(ks_sock_t *a, ks_sock_t *b) {
  a->peer = b;
  b->peer = a;
  a->state = b->state = KS_SS_CONNECTED;
}

/* Validate socket()/socketpair() arguments; returns the O_NONBLOCK|O_CLOEXEC flags or -errno. */
static int check_socket_args(int domain, int type, int protocol) {
  int flags = type & ~0xf;
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return -EINVAL;
  if (domain != AF_UNIX && domain != AF_INET) return -EAFNOSUPPORT;
  if ((type & 0xf) != SOCK_STREAM) return -ESOCKTNOSUPPORT;
  if (protocol != 0) return -EPROTONOSUPPORT;
  return ((flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0) | ((flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0);
}

int ks_socket(ks_kernel_t *k, int domain, int type, int protocol) {
  KS_SYSCALL(k, "socket");
  int flags = check_socket_args(domain, type, protocol);
  if (flags < 0) return flags;
  ks_sock_t *s = ks_sock_new(k, flags);
  int fd = ks_fd_install(k, &s->file, (flags & O_CLOEXEC) != 0);
  if (fd < 0) ks_fput(k, &s->file);
  return fd;
}

int ks_socketpair(ks_kernel_t *k, int domain, int type, int protocol, int sv[2]) {
  KS_SYSCALL(k, "socketpair");
  int flags = check_socket_args(domain, type, protocol);
  if (flags < 0) return flags;
  ks_sock_t *a = ks_sock_new(k, flags), *b = ks_sock_new(k, flags);
  ks_sock_connect_pair(a, b);
  int ret = ks_fd_install2(k, &a->file, &b->file, (flags & O_CLOEXEC) != 0, sv);
  if (ret < 0) {
    ks_fput(k, &a->file);
    ks_fput(k, &b->file);
  }
  return ret;
}

ks_sock_t *ks_sock_get(ks_kernel_t *k, int fd, int *err) {
  ks_file_t *f = ks_fget(k, fd, false);
  if (!f) {
    *err = -EBADF;
    return NULL;
  }
  if (f->ops != &ks_sock_ops) {
    ks_fput(k, f);
    *err = -ENOTSOCK;
    return NULL;
  }
  return sock_of(f);
}

ssize_t ks_send(ks_kernel_t *k, int fd, const void *buf, size_t n, int flags) {
  KS_SYSCALL(k, "send");
  int err;
  ks_sock_t *s = ks_sock_get(k, fd, &err);
  if (!s) return err;
  ssize_t ret = (flags & MSG_OOB) ? -EOPNOTSUPP : sock_send(k, &s->file, buf, n, flags);
  ks_fput(k, &s->file);
  return ret;
}

ssize_t ks_recv(ks_kernel_t *k, int fd, void *buf, size_t n, int flags) {
  KS_SYSCALL(k, "recv");
  int err;
  ks_sock_t *s = ks_sock_get(k, fd, &err);
  if (!s) return err;
  ssize_t ret = (flags & MSG_OOB) ? -EINVAL : sock_recv(k, &s->file, buf, n, flags);
  ks_fput(k, &s->file);
  return ret;
}

int ks_shutdown(ks_kernel_t *k, int fd, int how) {
  KS_SYSCALL(k, "shutdown");
  int err;
  ks_sock_t *s = ks_sock_get(k, fd, &err);
  if (!s) return err;
  if (how < SHUT_RD || how > SHUT_RDWR) {
    ks_fput(k, &s->file);
    return -EINVAL;
  }
  int mode = how + 1; /* SHUT_RD -> RCV, SHUT_WR -> SEND, SHUT_RDWR -> both */
  s->shut |= mode;
  ks_wake(k, &s->file, 0);
  ks_sock_t *p = s->peer;
  if (p) {
    /* Our SHUT_RD means the peer may send no more, our SHUT_WR that it receives no more. */
    p->shut |= (mode & KS_SHUT_RCV) ? KS_SHUT_SEND : 0;
    p->shut |= (mode & KS_SHUT_SEND) ? KS_SHUT_RCV : 0;
    ks_wake(k, &p->file, 0);
  }
  ks_fput(k, &s->file);
  return 0;
}

int64_t ks_sock_peer_id(ks_kernel_t *k, int fd) {
  int err;
  ks_sock_t *s = ks_sock_get(k, fd, &err);
  if (!s) return err;
  int64_t id = s->peer ? s->peer->file.id : -ENOTCONN;
  ks_fput(k, &s->file);
  return id;
}
