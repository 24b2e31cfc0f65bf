/* kernel.h: the simulated kernel that system copies and fuzz targets call instead of real
 * syscalls.
 *
 * A kernel instance (ks_kernel_t) owns an fd table and every object reachable from it; several
 * instances can live side by side (a BSD-like "host" kernel next to a Linux reference kernel),
 * so nothing here is global. Calls look like their Linux counterparts with the kernel as first
 * argument: `int ks_<syscall>(ks_kernel_t *k, ...)` returns a value >= 0 or -errno, with Linux
 * errno values and Linux flag values (taken from the system headers, so O_NONBLOCK, EPOLLIN,
 * EFD_SEMAPHORE, SHUT_WR... mean what they mean on Linux). The kqueue constants have no Linux
 * counterpart and carry a KS_ prefix with the BSD values.
 *
 * Every call is a yield point of the simulation (site "sys.<name>"). Inside a simulated run a
 * call on a blocking descriptor, or a poll/epoll_wait/kevent with a non-zero timeout, blocks
 * the calling fiber; outside a run nothing ever blocks and such calls behave as if they would
 * block (-EAGAIN, or zero events). Faults (spurious EAGAIN, short writes, resets, epoll_ctl ENOMEM)
 * are drawn from the run's decisions, only for the classes the target enabled. */
#ifndef KS_KERNEL_H
#define KS_KERNEL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* <fcntl.h> shows O_PATH only with _GNU_SOURCE; the kernel uses Linux's value either way. */
#ifndef O_PATH
#define O_PATH 010000000
#endif
/* <poll.h> likewise shows POLLRDHUP only with _GNU_SOURCE. */
#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif

typedef struct ks_kernel ks_kernel_t;

/* Size of every kernel's fd table: descriptors are 0 .. KS_NFD-1. */
#define KS_NFD 256
/* Bytes a pipe holds before writers block (as Linux's default 16 pages). */
#define KS_PIPE_CAPACITY 65536
/* Writes up to this size are atomic on pipes; a pipe is writable while this much room is left. */
#define KS_PIPE_BUF 4096

typedef struct ks_config {
  /* Bytes in flight per direction of a stream connection before send blocks. */
  uint32_t sock_buf_bytes;
} ks_config_t;

/* The defaults: 64 KiB socket buffers. Inline, so the simulated kernel and the real-kernel
 * backend (harness/real/kernel_real.c) share one definition. */
static inline void ks_config_default(ks_config_t *cfg) {
  *cfg = (ks_config_t){.sock_buf_bytes = 64 * 1024};
}
/* A fresh kernel with an empty fd table; cfg NULL selects the defaults. Never NULL. */
ks_kernel_t *ks_kernel_new(const ks_config_t *cfg);
/* Close every descriptor and free every object, also those still held by calls that were
 * blocked when the run ended (the fibers must be gone by then). */
void ks_kernel_free(ks_kernel_t *k);

/* ---- descriptors (fd.c) ---------------------------------------------------------------- */

int ks_close(ks_kernel_t *k, int fd);
int ks_dup(ks_kernel_t *k, int fd);
int ks_dup2(ks_kernel_t *k, int oldfd, int newfd);
int ks_dup3(ks_kernel_t *k, int oldfd, int newfd, int flags);
/* F_GETFL, F_SETFL (O_NONBLOCK), F_GETFD, F_SETFD (FD_CLOEXEC), F_DUPFD, F_DUPFD_CLOEXEC. */
int ks_fcntl(ks_kernel_t *k, int fd, int cmd, int arg);
ssize_t ks_read(ks_kernel_t *k, int fd, void *buf, size_t n);
ssize_t ks_write(ks_kernel_t *k, int fd, const void *buf, size_t n);
/* Identity of the open file description behind fd (shared by dups, never reused within a
 * kernel), or -EBADF. For oracles that reason about descriptions, not numbers; not a yield
 * point. */
int64_t ks_fd_ofd_id(ks_kernel_t *k, int fd);
/* fstat(2)'s file type (st_mode & S_IFMT): S_IFIFO, S_IFSOCK, S_IFREG (a regular file, and an
 * O_PATH descriptor of one), 0 for anonymous inodes (eventfd, epoll, kqueue); -EBADF. */
int ks_fstat_mode(ks_kernel_t *k, int fd);

/* A child process between fork and exec. fork copies the process's fd table, so the child
 * holds a reference to every description the process had open: a number the parent closes
 * meanwhile stays open underneath (its epoll items stay registered) until ks_fork_exec drops
 * the child's references, as exec does for O_CLOEXEC descriptors and exit for the rest.
 * Several simulated processes share one kernel table (a server and its clients), so `fds`
 * marks the forking process's descriptors (bit fd % 8 of byte fd / 8; NULL: all of them).
 * A yield point. */
typedef struct ks_fork ks_fork_t;
ks_fork_t *ks_fork(ks_kernel_t *k, const uint8_t *fds);
void ks_fork_exec(ks_kernel_t *k, ks_fork_t *child);

/* ---- pipes (pipe.c), eventfd (eventfd.c), plain files (file.c) ------------------------- */

/* flags: O_NONBLOCK, O_CLOEXEC. fds[0] is the read end. */
int ks_pipe2(ks_kernel_t *k, int fds[2], int flags);
/* flags: EFD_NONBLOCK, EFD_CLOEXEC, EFD_SEMAPHORE. */
int ks_eventfd(ks_kernel_t *k, unsigned int initval, int flags);
/* A descriptor opened with O_PATH: no I/O, no polling (poll reports POLLNVAL). flags:
 * O_CLOEXEC. */
int ks_open_path(ks_kernel_t *k, int flags);
/* An empty in-memory regular file opened O_RDWR: I/O at the file offset; epoll refuses it
 * (EPERM), poll reports it always ready. flags: O_NONBLOCK, O_CLOEXEC. */
int ks_open_regular(ks_kernel_t *k, int flags);

/* ---- stream sockets (socket.c, listen.c) ----------------------------------------------- */

/* Stream sockets behave like AF_UNIX SOCK_STREAM on Linux. domain: AF_UNIX or AF_INET (the same
 * model); type: SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC; protocol: 0. */
int ks_socket(ks_kernel_t *k, int domain, int type, int protocol);
int ks_socketpair(ks_kernel_t *k, int domain, int type, int protocol, int sv[2]);
/* Addresses are bare port numbers; port 0 picks a free ephemeral port. */
int ks_bind(ks_kernel_t *k, int fd, uint16_t port);
/* The socket's local port (an accepted socket has its listener's), or -EINVAL when it has
 * none. Not a yield point. */
int ks_getsockport(ks_kernel_t *k, int fd);
/* As AF_UNIX: the socket must be bound (EINVAL otherwise) and not connected. */
int ks_listen(ks_kernel_t *k, int fd, int backlog);
/* flags: SOCK_NONBLOCK, SOCK_CLOEXEC. */
int ks_accept4(ks_kernel_t *k, int fd, int flags);
/* Connects to the socket listening on port (-ECONNREFUSED if none). The connection is
 * established at once and queued for accept; a full backlog blocks, or fails with -EAGAIN on
 * a non-blocking socket, as AF_UNIX does (no EINPROGRESS). */
int ks_connect(ks_kernel_t *k, int fd, uint16_t port);
/* flags: MSG_DONTWAIT, MSG_NOSIGNAL (no signals are ever raised), and MSG_PEEK for recv. */
ssize_t ks_send(ks_kernel_t *k, int fd, const void *buf, size_t n, int flags);
ssize_t ks_recv(ks_kernel_t *k, int fd, void *buf, size_t n, int flags);
int ks_shutdown(ks_kernel_t *k, int fd, int how);
/* ks_fd_ofd_id of the connected peer's description (which lives in the same kernel), or
 * -ENOTCONN / -EBADF / -ENOTSOCK. Lets an oracle pair a client's socket with the server's
 * accepted one; not a yield point. */
int64_t ks_sock_peer_id(ks_kernel_t *k, int fd);

/* ---- Linux epoll (epoll.c) ------------------------------------------------------------- */

typedef struct ks_epoll_event {
  uint32_t events;
  uint64_t data;
} ks_epoll_event_t;

/* flags: EPOLL_CLOEXEC. */
int ks_epoll_create1(ks_kernel_t *k, int flags);
/* op: EPOLL_CTL_ADD/MOD/DEL; ev may be NULL for DEL. */
int ks_epoll_ctl(ks_kernel_t *k, int epfd, int op, int fd, const ks_epoll_event_t *ev);
/* timeout in virtual ticks: < 0 waits forever, 0 never waits. */
int ks_epoll_wait(ks_kernel_t *k, int epfd, ks_epoll_event_t *events, int maxevents,
                  int64_t timeout);

/* One interest item of an epoll, as /proc/self/fdinfo shows it. */
typedef struct ks_epoll_item {
  int fd;            /* the number it was added with (it outlives that number's close while a
                        dup or another holder keeps the description open) */
  uint32_t events;
  uint64_t data;
  int64_t ofd_id;    /* ks_fd_ofd_id of the target description */
} ks_epoll_item_t;
/* The interest list of epfd in insertion order; returns how many items there are (writing at
 * most max), or -EBADF / -EINVAL. For oracles; not a yield point. */
int ks_epoll_items(ks_kernel_t *k, int epfd, ks_epoll_item_t *out, int max);

/* ---- Linux poll (poll.c) --------------------------------------------------------------- */

/* Linux poll(2). fds[i].fd < 0 is ignored (revents 0); a number that is not open (or an O_PATH
 * one) reports POLLNVAL; otherwise revents = current readiness & (events | POLLERR | POLLHUP),
 * where a file that cannot be polled (a regular file) is always ready for reading and writing
 * (POLLIN|POLLOUT|POLLRDNORM|POLLWRNORM, as Linux answers for it). timeout in virtual ticks:
 * < 0 waits forever, 0 never waits; a wait ends at a wake-up on a polled file that concerns
 * its entry, then the array is scanned again. Returns how many entries have non-zero revents,
 * or -errno: EINVAL for nfds > KS_NFD (Linux: above RLIMIT_NOFILE), EFAULT for fds NULL with
 * nfds > 0. */
int ks_poll(ks_kernel_t *k, struct pollfd *fds, nfds_t nfds, int64_t timeout);

/* ---- BSD kqueue (kqueue.c) ------------------------------------------------------------- */

#define KS_EVFILT_READ (-1)
#define KS_EVFILT_WRITE (-2)

#define KS_EV_ADD 0x0001
#define KS_EV_DELETE 0x0002
#define KS_EV_ENABLE 0x0004
#define KS_EV_DISABLE 0x0008
#define KS_EV_ONESHOT 0x0010
#define KS_EV_CLEAR 0x0020
#define KS_EV_DISPATCH 0x0080
#define KS_EV_ERROR 0x4000
#define KS_EV_EOF 0x8000

typedef struct ks_kevent {
  uintptr_t ident;
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  int64_t data;
  uint64_t udata;
} ks_kevent_t;

int ks_kqueue(ks_kernel_t *k);
/* Applies the changelist in order, then (unless a change failed with its error reported in
 * the eventlist) collects up to nevents events. timeout in virtual ticks: < 0 waits forever. */
int ks_kevent(ks_kernel_t *k, int kq, const ks_kevent_t *changes, int nchanges,
              ks_kevent_t *events, int nevents, int64_t timeout);
/* The knotes registered in kq (ident, filter, flags with KS_EV_DISABLE for disabled ones,
 * udata), in registration order; returns how many there are (writing at most max). For
 * oracles that check registrations; not a yield point. */
int ks_kqueue_knotes(ks_kernel_t *k, int kq, ks_kevent_t *out, int max);
/* How the latest knote (ident, filter) of kq went away, among its last KS_KNOTE_FATES
 * removals: so that an oracle that finds a knote missing can say what removed it. For
 * oracles; not a yield point. */
typedef enum ks_knote_fate {
  KS_KNOTE_NEVER = 0, /* no removal on record: the knote was never added (or long ago) */
  KS_KNOTE_DELETED,   /* EV_DELETE */
  KS_KNOTE_CLOSED,    /* its ident was closed (or replaced by dup2) */
  KS_KNOTE_ONESHOT,   /* delivered with EV_ONESHOT */
} ks_knote_fate_t;
#define KS_KNOTE_FATES 16
ks_knote_fate_t ks_kqueue_knote_fate(ks_kernel_t *k, int kq, int ident, int16_t filter);

#ifdef __cplusplus
}
#endif
#endif /* KS_KERNEL_H */
