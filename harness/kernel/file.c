/* file.c: descriptors that are not event sources.
 *
 * An O_PATH descriptor names a file without opening it for I/O: read, write, epoll_ctl,
 * recv/send and kevent all fail with EBADF on it, and poll reports POLLNVAL (Linux's fdget()
 * does not see O_PATH files), while dup, close and the fcntl subset Linux allows work.
 *
 * A regular file is an in-memory byte array with the offset in the open file description
 * (shared by dups). It cannot be polled: epoll_ctl answers EPERM, as for a file on disk (a
 * memfd on Linux), and poll(2) reports it always readable and writable. In
 * kqueue it behaves like a BSD vnode: readable while bytes remain past the offset, always
 * writable. */
#include "kernel_internal.h"

static const ks_file_ops_t path_ops = {
    .type = KS_FT_PATH,
};

int ks_open_path(ks_kernel_t *k, int flags) {
  KS_SYSCALL(k, "open O_PATH");
  if (flags & ~O_CLOEXEC) return -EINVAL;
  ks_file_t *f = ks_file_new(k, &path_ops, sizeof *f, O_PATH);
  int fd = ks_fd_install(k, f, (flags & O_CLOEXEC) != 0);
  if (fd < 0) ks_fput(k, f);
  return fd;
}

typedef struct ks_regular {
  ks_file_t file;
  uint8_t *data;
  size_t size, alloc;
  size_t off;
} ks_regular_t;

static ssize_t reg_read(ks_kernel_t *k, ks_file_t *f, void *buf, size_t n, int msg_flags) {
  (void)k;
  (void)msg_flags;
  ks_regular_t *r = (ks_regular_t *)f;
  if (r->off >= r->size) return 0;
  size_t got = r->size - r->off < n ? r->size - r->off : n;
  memcpy(buf, r->data + r->off, got);
  r->off += got;
  return (ssize_t)got;
}

static ssize_t reg_write(ks_kernel_t *k, ks_file_t *f, const void *buf, size_t n, int msg_flags) {
  (void)k;
  (void)msg_flags;
  ks_regular_t *r = (ks_regular_t *)f;
  if (n > (size_t)1 << 30) return -EFBIG;
  size_t end = r->off + n;
  if (end > r->alloc) {
    size_t want = r->alloc ? r->alloc : 64;
    while (want < end) want *= 2;
    r->data = realloc(r->data, want);
    if (!r->data) abort();
    r->alloc = want;
  }
  /* Writing past the end leaves a hole that reads as zeros. */
  if (r->off > r->size) memset(r->data + r->size, 0, r->off - r->size);
  memcpy(r->data + r->off, buf, n);
  r->off = end;
  if (end > r->size) r->size = end;
  return (ssize_t)n;
}

static int reg_kq_event(ks_kernel_t *k, ks_file_t *f, int16_t filter, ks_kevent_t *ev) {
  (void)k;
  ks_regular_t *r = (ks_regular_t *)f;
  if (filter == KS_EVFILT_READ) {
    ev->data = r->size > r->off ? (int64_t)(r->size - r->off) : 0;
    return ev->data != 0;
  }
  if (filter == KS_EVFILT_WRITE) {
    ev->data = 0;
    return 1;
  }
  return -EINVAL;
}

static void reg_release(ks_kernel_t *k, ks_file_t *f) {
  (void)k;
  free(((ks_regular_t *)f)->data);
}

static const ks_file_ops_t regular_ops = {
    .type = KS_FT_REGULAR,
    .read = reg_read,
    .write = reg_write,
    .kq_event = reg_kq_event,
    .release = reg_release,
};

int ks_open_regular(ks_kernel_t *k, int flags) {
  KS_SYSCALL(k, "open regular");
  if (flags & ~(O_NONBLOCK | O_CLOEXEC)) return -EINVAL;
  ks_file_t *f = ks_file_new(k, &regular_ops, sizeof(ks_regular_t), O_RDWR | (flags & O_NONBLOCK));
  int fd = ks_fd_install(k, f, (flags & O_CLOEXEC) != 0);
  if (fd < 0) ks_fput(k, f);
  return fd;
}
