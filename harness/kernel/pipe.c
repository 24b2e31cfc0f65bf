/* pipe.c: anonymous pipes.
 *
 * Readiness and wake-ups follow Linux's fs/pipe.c, since epoll items react to exactly those:
 *  - every write wakes the read end with EPOLLIN (Linux does so whenever the pipe has been
 *    polled, and any epoll registration polls it);
 *  - a read wakes the write end with EPOLLOUT only if the pipe was full before it;
 *  - when the last reader or the last writer goes while the other side remains, both ends are
 *    woken with key 0;
 *  - the read end reports EPOLLHUP once no writer is left, the write end EPOLLERR once no
 *    reader is left; a write then fails with EPIPE (no signal is raised).
 * Capacity is counted in bytes (KS_PIPE_CAPACITY); Linux counts page slots, which only matters
 * for a nearly full pipe. The write end is writable while KS_PIPE_BUF bytes fit, writes of up
 * to KS_PIPE_BUF bytes are atomic, longer ones may be partial on a non-blocking descriptor.
 * For kqueue, every read or write re-evaluates the knotes of both ends, as BSD's pipe code
 * signals one shared note list on both. */
#include "kernel_internal.h"

typedef struct ks_pipe_end ks_pipe_end_t;

typedef struct ks_pipe {
  uint8_t *buf;              /* bytes [head, head + len) */
  size_t head, len, alloc;
  int readers, writers;      /* open ends (0 or 1 each: pipe2 makes one of each) */
  ks_pipe_end_t *rd, *wr;    /* the end files while they exist */
} ks_pipe_t;

struct ks_pipe_end {
  ks_file_t file;
  ks_pipe_t *pipe;
};

static ks_pipe_t *pipe_of(ks_file_t *f) { return ((ks_pipe_end_t *)f)->pipe; }
static bool is_read_end(ks_file_t *f) { return (f->flags & O_ACCMODE) == O_RDONLY; }
static size_t space(const ks_pipe_t *p) { return KS_PIPE_CAPACITY - p->len; }

static void append(ks_pipe_t *p, const uint8_t *src, size_t n) {
  if (p->head + p->len + n > p->alloc) {
    if (p->len) memmove(p->buf, p->buf + p->head, p->len);
    p->head = 0;
    if (p->len + n > p->alloc) {
      size_t want = p->alloc ? p->alloc : 256;
      while (want < p->len + n) want *= 2;
      if (want > KS_PIPE_CAPACITY) want = KS_PIPE_CAPACITY;
      p->buf = realloc(p->buf, want);
      if (!p->buf) abort();
      p->alloc = want;
    }
  }
  memcpy(p->buf + p->head + p->len, src, n);
  p->len += n;
}

/* Both ends' knotes see every change of the buffer. */
static void touch_knotes(ks_kernel_t *k, ks_pipe_t *p) {
  if (p->rd) ks_kq_touch(k, &p->rd->file);
  if (p->wr) ks_kq_touch(k, &p->wr->file);
}

static uint32_t pipe_poll(ks_kernel_t *k, ks_file_t *f) {
  (void)k;
  ks_pipe_t *p = pipe_of(f);
  uint32_t mask = 0;
  if (is_read_end(f)) {
    if (p->len > 0) mask |= EPOLLIN | EPOLLRDNORM;
    if (!p->writers) mask |= EPOLLHUP;
  } else {
    if (space(p) >= KS_PIPE_BUF) mask |= EPOLLOUT | EPOLLWRNORM;
    if (!p->readers) mask |= EPOLLERR;
  }
  return mask;
}

static ssize_t pipe_read(ks_kernel_t *k, ks_file_t *f, void *buf, size_t n, int msg_flags) {
  ks_pipe_t *p = pipe_of(f);
  if (n == 0) return 0;
  for (;;) {
    if (p->len > 0) {
      bool was_full = space(p) < KS_PIPE_BUF;
      size_t got = n < p->len ? n : p->len;
      memcpy(buf, p->buf + p->head, got);
      p->head += got;
      p->len -= got;
      if (p->len == 0) p->head = 0;
      if (was_full && p->wr) ks_wake(k, &p->wr->file, EPOLLOUT | EPOLLWRNORM);
      touch_knotes(k, p);
      return (ssize_t)got;
    }
    if (!p->writers) return 0;
    if (ks_nonblock(f, msg_flags)) return -EAGAIN;
    ks_block(f, -1, CF_SITE("sys.read pipe"));
  }
}

static ssize_t pipe_write(ks_kernel_t *k, ks_file_t *f, const void *buf, size_t n, int msg_flags) {
  ks_pipe_t *p = pipe_of(f);
  const uint8_t *src = buf;
  size_t done = 0;
  if (n == 0) return 0;
  for (;;) {
    if (!p->readers) return done ? (ssize_t)done : -EPIPE;
    /* A write of up to KS_PIPE_BUF bytes goes in whole or waits; a longer one takes what fits. */
    size_t need = (done == 0 && n <= KS_PIPE_BUF) ? n : 1;
    if (space(p) >= need) {
      size_t chunk = n - done < space(p) ? n - done : space(p);
      append(p, src + done, chunk);
      done += chunk;
      if (p->rd) ks_wake(k, &p->rd->file, EPOLLIN | EPOLLRDNORM);
      touch_knotes(k, p);
      if (done == n) return (ssize_t)done;
      continue;
    }
    if (ks_nonblock(f, msg_flags)) return done ? (ssize_t)done : -EAGAIN;
    ks_block(f, -1, CF_SITE("sys.write pipe"));
  }
}

static int pipe_kq_event(ks_kernel_t *k, ks_file_t *f, int16_t filter, ks_kevent_t *ev) {
  (void)k;
  ks_pipe_t *p = pipe_of(f);
  if (filter == KS_EVFILT_READ && is_read_end(f)) {
    ev->data = (int64_t)p->len;
    if (!p->writers) {
      ev->flags |= KS_EV_EOF;
      return 1;
    }
    return p->len > 0;
  }
  if (filter == KS_EVFILT_WRITE && !is_read_end(f)) {
    if (!p->readers) {
      ev->data = 0;
      ev->flags |= KS_EV_EOF;
      return 1;
    }
    ev->data = (int64_t)space(p);
    return space(p) >= KS_PIPE_BUF;
  }
  return -EINVAL;
}

static void pipe_release(ks_kernel_t *k, ks_file_t *f) {
  ks_pipe_t *p = pipe_of(f);
  if (is_read_end(f)) {
    p->readers--;
    p->rd = NULL;
  } else {
    p->writers--;
    p->wr = NULL;
  }
  if (!p->readers != !p->writers) {
    if (p->rd) ks_wake(k, &p->rd->file, 0);
    if (p->wr) ks_wake(k, &p->wr->file, 0);
  }
  if (!p->readers && !p->writers) {
    free(p->buf);
    ks_free(k, p);
  }
}

static const ks_file_ops_t pipe_ops = {
    .type = KS_FT_PIPE,
    .poll = pipe_poll,
    .read = pipe_read,
    .write = pipe_write,
    .kq_event = pipe_kq_event,
    .release = pipe_release,
};

int ks_pipe2(ks_kernel_t *k, int fds[2], int flags) {
  KS_SYSCALL(k, "pipe2");
  if (flags & ~(O_NONBLOCK | O_CLOEXEC)) return -EINVAL;
  ks_pipe_t *p = ks_alloc(k, sizeof *p);
  int nb = flags & O_NONBLOCK;
  ks_pipe_end_t *rd = (ks_pipe_end_t *)ks_file_new(k, &pipe_ops, sizeof *rd, O_RDONLY | nb);
  ks_pipe_end_t *wr = (ks_pipe_end_t *)ks_file_new(k, &pipe_ops, sizeof *wr, O_WRONLY | nb);
  rd->pipe = wr->pipe = p;
  p->rd = rd;
  p->wr = wr;
  p->readers = p->writers = 1;
  int ret = ks_fd_install2(k, &rd->file, &wr->file, (flags & O_CLOEXEC) != 0, fds);
  if (ret < 0) {
    ks_fput(k, &rd->file);
    ks_fput(k, &wr->file);
  }
  return ret;
}
