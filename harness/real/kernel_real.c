/* kernel_real.c: the API of kernel/kernel.h on real Linux syscalls, so a copy written against
 * cf.h + kernel.h runs unchanged on pthreads (platform_real.c) and the real kernel, as a real
 * server (`churn serve`) or an upstream-style stress test.
 *
 * Calls return >= 0 or -errno as the simulated ones do. Where the real kernel cannot show what
 * the model shows, the choice made here, and why:
 *  - every stream socket is a TCP socket on 127.0.0.1, AF_UNIX included: the model's addresses
 *    are bare port numbers, which only TCP has. TCP_NODELAY is set because the model never
 *    delays a small write. A non-blocking connect waits (at most CONNECT_WAIT_MS) for the
 *    loopback handshake, since the model connects at once and copies do not expect
 *    EINPROGRESS. ks_socketpair is a connected loopback pair for the same reasons.
 *  - description identities: a connected TCP socket is named by its port pair, so within one
 *    process a client's ks_sock_peer_id equals the server socket's ks_fd_ofd_id; the id is
 *    remembered per descriptor from accept/connect on, so it stays the same once the
 *    connection is gone (getpeername then fails). Anything else is named by its inode: the two
 *    ends of a pipe share one, and all eventfds and epolls share the anon inode.
 *    ks_sock_peer_id follows getpeername, which still names the peer after the peer closed
 *    (until this end closes too), where the model already says -ENOTCONN.
 *  - ks_epoll_items lists what /proc/self/fdinfo lists, in the kernel's tree order rather than
 *    insertion order.
 *  - a child between fork and exec is modelled by close-on-exec dups (numbers >= 512) of the
 *    descriptors it would inherit, closed by ks_fork_exec: a real fork of a threaded process
 *    would be a process of its own, which an in-process oracle cannot see.
 *  - ks_poll fails with EINVAL above the process's RLIMIT_NOFILE entries, the model above
 *    KS_NFD; copies never pass that many.
 *  - sock_buf_bytes below the default becomes SO_SNDBUF/SO_RCVBUF, which Linux doubles and
 *    keeps above a floor: small buffers, not the model's exact byte count;
 *  - kqueue does not exist on Linux: -ENOSYS, so copies that need it stay simulation-only.
 *  - EINTR is retried (the model never returns it; epoll_wait and poll go on with what is left
 *    of their timeout, in milliseconds, the ticks of this backend), and sends never raise
 *    SIGPIPE.
 * Each instance records the numbers it opened so ks_kernel_free closes what is left (a stress
 * test makes many instances in one process). Its mutex guards that bookkeeping only and is
 * never held across a blocking call; a number is forgotten before it is closed, so a
 * concurrent open that reuses it records it afresh. */
#define _GNU_SOURCE
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernel.h"

/* How long a non-blocking connect may wait for the loopback handshake. */
#define CONNECT_WAIT_MS 2000
/* Child-held descriptors go above the numbers copies use (KS_NFD), out of their way. */
#define FORK_FD_BASE 512
/* Bit 40 marks port-pair ids, apart from inode numbers. */
#define PORT_PAIR_ID(local, remote) \
  ((int64_t)(((uint64_t)(local) << 16) | (uint64_t)(remote)) | (1LL << 40))

struct ks_fork {
  ks_fork_t *next;
  int n;
  int fds[];
};

struct ks_kernel {
  pthread_mutex_t mu;
  ks_config_t cfg;
  int nslots;        /* numbers 0 .. nslots-1 have room in open[] and id[] */
  uint64_t *open;    /* bitmap: numbers this instance opened and has not closed */
  int64_t *id;       /* remembered ks_fd_ofd_id per number, 0 when not known */
  ks_fork_t *forks;  /* children between fork and exec */
};

/* ---- bookkeeping -------------------------------------------------------------------------- */

static void lock(ks_kernel_t *k) { pthread_mutex_lock(&k->mu); }
static void unlock(ks_kernel_t *k) { pthread_mutex_unlock(&k->mu); }

static void grow_locked(ks_kernel_t *k, int fd) {
  if (fd < k->nslots) return;
  int n = k->nslots;
  while (n <= fd) n *= 2;
  uint64_t *open = realloc(k->open, (size_t)n / 64 * sizeof *open);
  int64_t *id = realloc(k->id, (size_t)n * sizeof *id);
  if (!open || !id) abort();
  memset(open + k->nslots / 64, 0, (size_t)(n - k->nslots) / 64 * sizeof *open);
  memset(id + k->nslots, 0, (size_t)(n - k->nslots) * sizeof *id);
  k->open = open, k->id = id, k->nslots = n;
}

static bool is_open_locked(ks_kernel_t *k, int fd) {
  return fd >= 0 && fd < k->nslots && (k->open[fd / 64] >> (fd % 64) & 1);
}

/* Record a number a call returned (ret < 0 passes through); id is its description's
 * identity when known (0: not known). */
static int track_id(ks_kernel_t *k, int ret, int64_t id) {
  if (ret < 0) return ret;
  lock(k);
  grow_locked(k, ret);
  k->open[ret / 64] |= 1ull << (ret % 64);
  k->id[ret] = id;
  unlock(k);
  return ret;
}
static int track(ks_kernel_t *k, int ret) { return track_id(k, ret, 0); }

/* A dup: the new number names the same description, so it inherits the remembered id. */
static int track_dup(ks_kernel_t *k, int oldfd, int ret) {
  if (ret < 0) return ret;
  lock(k);
  int64_t id = oldfd >= 0 && oldfd < k->nslots ? k->id[oldfd] : 0;
  unlock(k);
  return track_id(k, ret, id);
}

static void untrack(ks_kernel_t *k, int fd) {
  lock(k);
  if (fd >= 0 && fd < k->nslots) {
    k->open[fd / 64] &= ~(1ull << (fd % 64));
    k->id[fd] = 0;
  }
  unlock(k);
}

static int neg(long r) { return r < 0 ? -errno : (int)r; }
static ssize_t negz(ssize_t r) { return r < 0 ? -(ssize_t)errno : r; }
#define NOINTR(call)                                \
  (__extension__({                                  \
    ssize_t r_;                                     \
    while ((r_ = (call)) < 0 && errno == EINTR) {}  \
    r_;                                             \
  }))

ks_kernel_t *ks_kernel_new(const ks_config_t *cfg) {
  ks_kernel_t *k = calloc(1, sizeof *k);
  if (!k) abort();
  if (cfg)
    k->cfg = *cfg;
  else
    ks_config_default(&k->cfg);
  pthread_mutex_init(&k->mu, NULL);
  k->nslots = 1024;
  k->open = calloc((size_t)k->nslots / 64, sizeof *k->open);
  k->id = calloc((size_t)k->nslots, sizeof *k->id);
  if (!k->open || !k->id) abort();
  return k;
}

static void fork_close(ks_fork_t *child) {
  for (int i = 0; i < child->n; i++) close(child->fds[i]);
  free(child);
}

void ks_kernel_free(ks_kernel_t *k) {
  if (!k) return;
  while (k->forks) {
    ks_fork_t *c = k->forks;
    k->forks = c->next;
    fork_close(c);
  }
  for (int fd = 0; fd < k->nslots; fd++)
    if (is_open_locked(k, fd)) close(fd);
  pthread_mutex_destroy(&k->mu);
  free(k->open);
  free(k->id);
  free(k);
}

/* ---- descriptors -------------------------------------------------------------------------- */

int ks_close(ks_kernel_t *k, int fd) {
  if (fd < 0) return -EBADF;
  untrack(k, fd);
  /* Linux releases the number even when close reports EINTR: never retry. */
  if (close(fd) < 0 && errno != EINTR) return -errno;
  return 0;
}

int ks_dup(ks_kernel_t *k, int fd) { return track_dup(k, fd, neg(dup(fd))); }
int ks_dup2(ks_kernel_t *k, int oldfd, int newfd) {
  return track_dup(k, oldfd, neg(NOINTR(dup2(oldfd, newfd))));
}
int ks_dup3(ks_kernel_t *k, int oldfd, int newfd, int flags) {
  return track_dup(k, oldfd, neg(NOINTR(dup3(oldfd, newfd, flags))));
}

int ks_fstat_mode(ks_kernel_t *k, int fd) {
  (void)k;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  return (int)(st.st_mode & S_IFMT);
}

int ks_fcntl(ks_kernel_t *k, int fd, int cmd, int arg) {
  switch (cmd) {
    case F_GETFL: case F_GETFD: return neg(fcntl(fd, cmd));
    case F_SETFL: case F_SETFD: return neg(fcntl(fd, cmd, arg));
    case F_DUPFD: case F_DUPFD_CLOEXEC: return track_dup(k, fd, neg(fcntl(fd, cmd, arg)));
    default: return -EINVAL; /* the model knows no other command */
  }
}

ssize_t ks_read(ks_kernel_t *k, int fd, void *buf, size_t n) {
  return negz(NOINTR(read(fd, buf, n)));
}

ssize_t ks_write(ks_kernel_t *k, int fd, const void *buf, size_t n) {
  /* send first so a socket whose peer is gone gives EPIPE, never SIGPIPE. */
  ssize_t r = NOINTR(send(fd, buf, n, MSG_NOSIGNAL));
  if (r < 0 && errno == ENOTSOCK) r = NOINTR(write(fd, buf, n));
  return negz(r);
}

/* Local and remote port of a connected AF_INET socket; false otherwise (errno set). */
static bool tcp_ports(int fd, uint16_t *local, uint16_t *remote) {
  struct sockaddr_in me, peer;
  socklen_t ml = sizeof me, pl = sizeof peer;
  if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0) return false;
  if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) return false;
  if (me.sin_family != AF_INET || peer.sin_family != AF_INET) {
    errno = ENOTCONN;
    return false;
  }
  *local = ntohs(me.sin_port), *remote = ntohs(peer.sin_port);
  return true;
}

static int64_t live_ofd_id(int fd) {
  uint16_t l, r;
  if (tcp_ports(fd, &l, &r)) return PORT_PAIR_ID(l, r);
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  return (int64_t)st.st_ino;
}

int64_t ks_fd_ofd_id(ks_kernel_t *k, int fd) {
  if (fd < 0) return -EBADF;
  lock(k);
  int64_t id = is_open_locked(k, fd) ? k->id[fd] : 0;
  unlock(k);
  return id ? id : live_ofd_id(fd);
}

/* fds marks the forking process's numbers as in the model (bit fd % 8 of byte fd / 8), which
 * covers 0 .. KS_NFD-1 only: with a mask, higher numbers are not the process's. */
static bool forked(const uint8_t *fds, int fd) {
  return !fds || (fd < KS_NFD && (fds[fd / 8] >> (fd % 8) & 1));
}

ks_fork_t *ks_fork(ks_kernel_t *k, const uint8_t *fds) {
  /* Under the mutex every recorded number is still open (ks_close forgets a number before
   * closing it), so the child's copy is of one moment's table, as fork's is. F_DUPFD is not
   * a blocking call. */
  lock(k);
  int n = 0;
  for (int fd = 0; fd < k->nslots; fd++) n += is_open_locked(k, fd) && forked(fds, fd);
  ks_fork_t *child = malloc(sizeof *child + (size_t)n * sizeof(int));
  if (!child) abort();
  child->n = 0;
  for (int fd = 0; fd < k->nslots && child->n < n; fd++) {
    if (!is_open_locked(k, fd) || !forked(fds, fd)) continue;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, FORK_FD_BASE);
    if (d >= 0) child->fds[child->n++] = d;
  }
  child->next = k->forks;
  k->forks = child;
  unlock(k);
  return child;
}

void ks_fork_exec(ks_kernel_t *k, ks_fork_t *child) {
  lock(k);
  for (ks_fork_t **p = &k->forks; *p; p = &(*p)->next) {
    if (*p == child) {
      *p = child->next;
      break;
    }
  }
  unlock(k);
  fork_close(child);
}

/* ---- pipes, eventfd, plain files ---------------------------------------------------------- */

int ks_pipe2(ks_kernel_t *k, int fds[2], int flags) {
  int p[2];
  if (pipe2(p, flags) < 0) return -errno;
  fds[0] = track(k, p[0]);
  fds[1] = track(k, p[1]);
  return 0;
}

int ks_eventfd(ks_kernel_t *k, unsigned int initval, int flags) {
  return track(k, neg(eventfd(initval, flags)));
}

/* A memfd gives each open its own inode (so its own id); O_PATH reopens it through /proc. */
int ks_open_path(ks_kernel_t *k, int flags) {
  if (flags & ~O_CLOEXEC) return -EINVAL;
  int m = memfd_create("ks-path", MFD_CLOEXEC);
  if (m < 0) return -errno;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", m);
  int fd = neg(open(path, O_PATH | flags));
  close(m);
  return track(k, fd);
}

int ks_open_regular(ks_kernel_t *k, int flags) {
  if (flags & ~(O_NONBLOCK | O_CLOEXEC)) return -EINVAL;
  int fd = memfd_create("ks-regular", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
  if (fd < 0) return -errno;
  if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return track(k, fd);
}

/* ---- stream sockets ----------------------------------------------------------------------- */

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in loopback(uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/* A configured socket buffer below the default asks for small kernel buffers (SO_SNDBUF and
 * SO_RCVBUF; Linux doubles the value and keeps a floor of a few kilobytes), so that replies go
 * out in pieces as over a slow link. Accepted sockets inherit the listener's. */
static void set_buffers(ks_kernel_t *k, int fd) {
  ks_config_t def;
  ks_config_default(&def);
  if (k->cfg.sock_buf_bytes >= def.sock_buf_bytes) return;
  int n = (int)k->cfg.sock_buf_bytes;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
}

int ks_socket(ks_kernel_t *k, int domain, int type, int protocol) {
  if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM) return -EINVAL;
  if (domain != AF_UNIX && domain != AF_INET) return -EAFNOSUPPORT;
  if (protocol != 0) return -EPROTONOSUPPORT;
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return -errno;
  set_nodelay(fd);
  set_buffers(k, fd);
  return track(k, fd);
}

int ks_bind(ks_kernel_t *k, int fd, uint16_t port) {
  /* SO_REUSEADDR: a server restarted on its port must not wait out TIME_WAIT. */
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(port);
  return neg(bind(fd, (struct sockaddr *)&a, sizeof a));
}

int ks_getsockport(ks_kernel_t *k, int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) return -errno;
  if (a.sin_family != AF_INET || a.sin_port == 0) return -EINVAL;
  return ntohs(a.sin_port);
}

int ks_listen(ks_kernel_t *k, int fd, int backlog) {
  /* As the model (AF_UNIX): listening needs an address; TCP would pick one by itself. */
  int port = ks_getsockport(k, fd);
  if (port < 0) return port;
  return neg(listen(fd, backlog));
}

static int64_t connected_id(int fd) {
  uint16_t l, r;
  return tcp_ports(fd, &l, &r) ? PORT_PAIR_ID(l, r) : 0;
}

int ks_accept4(ks_kernel_t *k, int fd, int flags) {
  int c = neg(NOINTR(accept4(fd, NULL, NULL, flags)));
  if (c < 0) return c;
  set_nodelay(c);
  return track_id(k, c, connected_id(c));
}

/* Wait for a non-blocking connect to finish; 0 or -errno. */
static int connect_wait(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  int r = NOINTR(poll(&p, 1, CONNECT_WAIT_MS));
  if (r < 0) return -errno;
  if (r == 0) return -EINPROGRESS;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  return -err;
}

int ks_connect(ks_kernel_t *k, int fd, uint16_t port) {
  struct sockaddr_in a = loopback(port);
  int r = connect(fd, (struct sockaddr *)&a, sizeof a);
  if (r < 0 && (errno == EINPROGRESS || errno == EINTR)) r = connect_wait(fd);
  else if (r < 0) r = -errno;
  if (r < 0) return r;
  int64_t id = connected_id(fd);
  lock(k);
  if (is_open_locked(k, fd)) k->id[fd] = id;
  unlock(k);
  return 0;
}

int ks_socketpair(ks_kernel_t *k, int domain, int type, int protocol, int sv[2]) {
  int l = ks_socket(k, domain, SOCK_STREAM | SOCK_CLOEXEC, protocol);
  if (l < 0) return l;
  int a = -1, r;
  if ((r = ks_bind(k, l, 0)) < 0 || (r = ks_listen(k, l, 1)) < 0) goto out;
  if ((a = r = ks_socket(k, domain, type, protocol)) < 0) goto out;
  if ((r = ks_connect(k, a, (uint16_t)ks_getsockport(k, l))) < 0) goto out;
  if ((r = ks_accept4(k, l, type & (SOCK_NONBLOCK | SOCK_CLOEXEC))) < 0) goto out;
  sv[0] = a, sv[1] = r, r = 0;
out:
  if (r < 0 && a >= 0) ks_close(k, a);
  ks_close(k, l);
  return r;
}

ssize_t ks_send(ks_kernel_t *k, int fd, const void *buf, size_t n, int flags) {
  return negz(NOINTR(send(fd, buf, n, flags | MSG_NOSIGNAL)));
}

ssize_t ks_recv(ks_kernel_t *k, int fd, void *buf, size_t n, int flags) {
  return negz(NOINTR(recv(fd, buf, n, flags)));
}

int ks_shutdown(ks_kernel_t *k, int fd, int how) { return neg(shutdown(fd, how)); }

int64_t ks_sock_peer_id(ks_kernel_t *k, int fd) {
  uint16_t l, r;
  if (!tcp_ports(fd, &l, &r)) return -errno;
  return PORT_PAIR_ID(r, l);
}

/* ---- Linux epoll -------------------------------------------------------------------------- */

int ks_epoll_create1(ks_kernel_t *k, int flags) { return track(k, neg(epoll_create1(flags))); }

int ks_epoll_ctl(ks_kernel_t *k, int epfd, int op, int fd, const ks_epoll_event_t *ev) {
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  if (ev) e.events = ev->events, e.data.u64 = ev->data;
  return neg(epoll_ctl(epfd, op, fd, ev ? &e : NULL));
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ks_epoll_wait(ks_kernel_t *k, int epfd, ks_epoll_event_t *events, int maxevents,
                  int64_t timeout) {
  enum { CHUNK = 256 }; /* fewer events than are ready is a correct answer */
  struct epoll_event ev[CHUNK];
  if (maxevents <= 0) return -EINVAL;
  if (maxevents > CHUNK) maxevents = CHUNK;
  int64_t deadline = timeout > 0 ? now_ms() + timeout : 0;
  int n;
  for (;;) {
    int t = timeout < 0 ? -1 : timeout > INT_MAX ? INT_MAX : (int)timeout;
    n = epoll_wait(epfd, ev, maxevents, t);
    if (n >= 0 || errno != EINTR) break;
    if (timeout > 0 && (timeout = deadline - now_ms()) < 0) timeout = 0;
  }
  if (n < 0) return -errno;
  for (int i = 0; i < n; i++) events[i] = (ks_epoll_event_t){ev[i].events, ev[i].data.u64};
  return n;
}

/* The id of the description an item watches. The item's number may be closed, or reused by
 * another file: the inode in fdinfo tells. When the number no longer names it, another number
 * of this instance that does (a dup keeping it open) gives the id, for sockets and memfds
 * only, whose inode is theirs alone. */
static int64_t item_ofd_id(ks_kernel_t *k, int tfd, uint64_t ino) {
  struct stat st;
  if (fstat(tfd, &st) == 0 && (uint64_t)st.st_ino == ino) return ks_fd_ofd_id(k, tfd);
  int other = -1;
  lock(k);
  for (int fd = 0; fd < k->nslots && other < 0; fd++) {
    if (!is_open_locked(k, fd) || fstat(fd, &st) < 0 || (uint64_t)st.st_ino != ino) continue;
    if (S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode)) other = fd;
  }
  unlock(k);
  return other >= 0 ? ks_fd_ofd_id(k, other) : -1;
}

int ks_epoll_items(ks_kernel_t *k, int epfd, ks_epoll_item_t *out, int max) {
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", epfd);
  ssize_t ll = epfd < 0 ? -1 : readlink(path, link, sizeof link - 1);
  if (ll < 0) return -EBADF;
  link[ll] = 0;
  if (strcmp(link, "anon_inode:[eventpoll]") != 0) return -EINVAL;
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
  FILE *f = fopen(path, "re");
  if (!f) return -EBADF;
  /* Lines: "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x" */
  char line[256];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    int tfd;
    unsigned events;
    unsigned long long data, ino;
    char *p = strstr(line, "ino:");
    if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3 || !p ||
        sscanf(p, "ino:%llx", &ino) != 1)
      continue;
    if (n < max)
      out[n] = (ks_epoll_item_t){.fd = tfd, .events = events, .data = data,
                                 .ofd_id = item_ofd_id(k, tfd, ino)};
    n++;
  }
  fclose(f);
  return n;
}

/* ---- Linux poll --------------------------------------------------------------------------- */

int ks_poll(ks_kernel_t *k, struct pollfd *fds, nfds_t nfds, int64_t timeout) {
  int64_t deadline = timeout > 0 ? now_ms() + timeout : 0;
  for (;;) {
    int t = timeout < 0 ? -1 : timeout > INT_MAX ? INT_MAX : (int)timeout;
    int n = poll(fds, nfds, t);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
    /* Interrupted: wait out what is left of the timeout, not all of it again. */
    if (timeout > 0 && (timeout = deadline - now_ms()) < 0) timeout = 0;
  }
}

/* ---- BSD kqueue: not on Linux ------------------------------------------------------------- */

int ks_kqueue(ks_kernel_t *k) { return -ENOSYS; }
int ks_kevent(ks_kernel_t *k, int kq, const ks_kevent_t *changes, int nchanges,
              ks_kevent_t *events, int nevents, int64_t timeout) {
  return -ENOSYS;
}
int ks_kqueue_knotes(ks_kernel_t *k, int kq, ks_kevent_t *out, int max) { return -ENOSYS; }
