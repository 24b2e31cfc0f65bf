/* eventfd.c: eventfd counters, following Linux's fs/eventfd.c.
 *
 * Reads and writes move exactly 8 bytes (a host-endian uint64_t). A read takes the whole count
 * (or 1 with EFD_SEMAPHORE) and wakes watchers with EPOLLOUT; a write adds to the count and
 * wakes them with EPOLLIN, even when it adds 0. The count never exceeds 0xfffffffffffffffe: a
 * write that would pass it waits (or fails with EAGAIN), and writing 0xffffffffffffffff is
 * invalid. Readable while the count is non-zero, writable while another 1 fits. */
#include "kernel_internal.h"

typedef struct ks_eventfd {
  ks_file_t file;
  uint64_t count;
  bool semaphore;
} ks_eventfd_t;

static uint32_t efd_poll(ks_kernel_t *k, ks_file_t *f) {
  (void)k;
  uint64_t count = ((ks_eventfd_t *)f)->count;
  uint32_t mask = 0;
  if (count > 0) mask |= EPOLLIN;
  if (count == UINT64_MAX) mask |= EPOLLERR;
  if (UINT64_MAX - 1 > count) mask |= EPOLLOUT;
  return mask;
}

static ssize_t efd_read(ks_kernel_t *k, ks_file_t *f, void *buf, size_t n, int msg_flags) {
  ks_eventfd_t *e = (ks_eventfd_t *)f;
  if (n < sizeof(uint64_t)) return -EINVAL;
  for (;;) {
    if (e->count > 0) {
      uint64_t v = e->semaphore ? 1 : e->count;
      e->count -= v;
      memcpy(buf, &v, sizeof v);
      ks_wake(k, f, EPOLLOUT);
      return sizeof v;
    }
    if (ks_nonblock(f, msg_flags)) return -EAGAIN;
    ks_block(f, -1, CF_SITE("sys.read eventfd"));
  }
}

static ssize_t efd_write(ks_kernel_t *k, ks_file_t *f, const void *buf, size_t n, int msg_flags) {
  ks_eventfd_t *e = (ks_eventfd_t *)f;
  uint64_t v;
  if (n < sizeof v) return -EINVAL;
  memcpy(&v, buf, sizeof v);
  if (v == UINT64_MAX) return -EINVAL;
  for (;;) {
    if (UINT64_MAX - e->count > v) {
      e->count += v;
      ks_wake(k, f, EPOLLIN);
      return sizeof v;
    }
    if (ks_nonblock(f, msg_flags)) return -EAGAIN;
    ks_block(f, -1, CF_SITE("sys.write eventfd"));
  }
}

static int efd_kq_event(ks_kernel_t *k, ks_file_t *f, int16_t filter, ks_kevent_t *ev) {
  (void)k;
  uint64_t count = ((ks_eventfd_t *)f)->count;
  if (filter == KS_EVFILT_READ) {
    ev->data = (int64_t)count;
    return count > 0;
  }
  if (filter == KS_EVFILT_WRITE) {
    ev->data = (int64_t)(UINT64_MAX - 1 - count);
    return count < UINT64_MAX - 1;
  }
  return -EINVAL;
}

static const ks_file_ops_t efd_ops = {
    .type = KS_FT_EVENTFD,
    .poll = efd_poll,
    .read = efd_read,
    .write = efd_write,
    .kq_event = efd_kq_event,
};

int ks_eventfd(ks_kernel_t *k, unsigned int initval, int flags) {
  KS_SYSCALL(k, "eventfd");
  if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) return -EINVAL;
  ks_eventfd_t *e =
      (ks_eventfd_t *)ks_file_new(k, &efd_ops, sizeof *e, O_RDWR | (flags & EFD_NONBLOCK));
  e->count = initval;
  e->semaphore = (flags & EFD_SEMAPHORE) != 0;
  int fd = ks_fd_install(k, &e->file, (flags & EFD_CLOEXEC) != 0);
  if (fd < 0) ks_fput(k, &e->file);
  return fd;
}
