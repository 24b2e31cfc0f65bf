/* epoll_vs_linux_ops.c: the operations of the differential test (test_epoll_vs_linux.c).
 * Each draws its arguments from the sequence's generator, applies the call to the real kernel
 * and to the simulated one, and compares the results. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "epoll_vs_linux.h"


int diff_op_create(world_t *w, int which) {
  char what[96];
  int r, e, s, rfd[2], sfd[2];
  if (which < 0 && w->prof->create_epoll && chance(w, (uint32_t)w->prof->create_epoll)) which = 5;
  switch (which >= 0 ? (uint32_t)which : below(w, 7)) {
  case 0: {
    int fl = (chance(w, 70) ? O_NONBLOCK : 0) | (chance(w, 30) ? O_CLOEXEC : 0);
    r = pipe2(rfd, fl);
    e = errno;
    s = ks_pipe2(w->k, sfd, fl);
    snprintf(what, sizeof what, "pipe2(%#x)", fl);
    if (diff_same(w, what, r, e, s)) return 1;
    if (r < 0) return 0;
    diff_note(w, "      = [%d %d] | [%d %d]\n", rfd[0], rfd[1], sfd[0], sfd[1]);
    if (rfd[0] != sfd[0] || rfd[1] != sfd[1]) return diff_diverged(w, "pipe2 numbers differ");
    w->kind[rfd[0]] = K_PIPE_R;
    w->kind[rfd[1]] = K_PIPE_W;
    return 0;
  }
  case 1: {
    unsigned init = chance(w, 60) ? 0 : (chance(w, 80) ? 1 + below(w, 5) : 0xffffffffu);
    int fl = (chance(w, 70) ? EFD_NONBLOCK : 0) | (chance(w, 30) ? EFD_CLOEXEC : 0) |
             (chance(w, 30) ? EFD_SEMAPHORE : 0);
    r = eventfd(init, fl);
    e = errno;
    s = ks_eventfd(w->k, init, fl);
    snprintf(what, sizeof what, "eventfd(%u, %#x)", init, fl);
    if (diff_same(w, what, r, e, s)) return 1;
    if (r >= 0) w->kind[r] = K_EVENTFD;
    return 0;
  }
  case 2: {
    int type = SOCK_STREAM | (chance(w, 70) ? SOCK_NONBLOCK : 0);
    type |= chance(w, 30) ? SOCK_CLOEXEC : 0;
    r = socketpair(AF_UNIX, type, 0, rfd);
    e = errno;
    s = ks_socketpair(w->k, AF_UNIX, type, 0, sfd);
    snprintf(what, sizeof what, "socketpair(AF_UNIX, %#x)", type);
    if (diff_same(w, what, r, e, s)) return 1;
    if (r < 0) return 0;
    diff_note(w, "      = [%d %d] | [%d %d]\n", rfd[0], rfd[1], sfd[0], sfd[1]);
    if (rfd[0] != sfd[0] || rfd[1] != sfd[1]) return diff_diverged(w, "socketpair numbers differ");
    w->kind[rfd[0]] = w->kind[rfd[1]] = K_SOCK;
    return 0;
  }
  case 3: {
    bool cloexec = chance(w, 30);
    r = memfd_create("churnfuzz", cloexec ? MFD_CLOEXEC : 0);
    e = errno;
    s = ks_open_regular(w->k, cloexec ? O_CLOEXEC : 0);
    if (diff_same(w, "memfd_create / open regular", r, e, s)) return 1;
    if (r >= 0) w->kind[r] = K_REG;
    return 0;
  }
  case 4: {
    bool cloexec = chance(w, 30);
    r = open("/", O_PATH | (cloexec ? O_CLOEXEC : 0));
    e = errno;
    s = ks_open_path(w->k, cloexec ? O_CLOEXEC : 0);
    if (diff_same(w, "open(O_PATH)", r, e, s)) return 1;
    if (r >= 0) w->kind[r] = K_PATH;
    return 0;
  }
  case 6: {
    int type = SOCK_STREAM | (chance(w, 60) ? SOCK_NONBLOCK : 0);
    type |= chance(w, 30) ? SOCK_CLOEXEC : 0;
    r = socket(AF_UNIX, type, 0);
    e = errno;
    s = ks_socket(w->k, AF_UNIX, type, 0);
    snprintf(what, sizeof what, "socket(AF_UNIX, %#x)", type);
    if (diff_same(w, what, r, e, s)) return 1;
    if (r >= 0) w->kind[r] = K_SOCK;
    return 0;
  }
  default: {
    int fl = chance(w, 3) ? 1 : (chance(w, 30) ? EPOLL_CLOEXEC : 0);
    r = epoll_create1(fl);
    e = errno;
    s = ks_epoll_create1(w->k, fl);
    snprintf(what, sizeof what, "epoll_create1(%#x)", fl);
    if (diff_same(w, what, r, e, s)) return 1;
    if (r >= 0) w->kind[r] = K_EPOLL;
    return 0;
  }
  }
}

int diff_op_dup(world_t *w) {
  char what[96];
  int old = diff_pick_fd(w), r, e, s;
  switch (below(w, 3)) {
  case 0:
    r = dup(old);
    e = errno;
    s = ks_dup(w->k, old);
    snprintf(what, sizeof what, "dup(%d)", old);
    break;
  case 1: {
    int nfd = chance(w, 10) ? old : chance(w, 40) ? diff_pick_open(w, -1) : diff_pick_free(w);
    if (nfd < 0) nfd = old;
    r = dup2(old, nfd);
    e = errno;
    s = ks_dup2(w->k, old, nfd);
    snprintf(what, sizeof what, "dup2(%d, %d)", old, nfd);
    break;
  }
  default: {
    int nfd = chance(w, 10) ? old : chance(w, 40) ? diff_pick_open(w, -1) : diff_pick_free(w);
    int fl = chance(w, 5) ? 1 : (chance(w, 40) ? O_CLOEXEC : 0);
    if (nfd < 0) nfd = old;
    r = dup3(old, nfd, fl);
    e = errno;
    s = ks_dup3(w->k, old, nfd, fl);
    snprintf(what, sizeof what, "dup3(%d, %d, %#x)", old, nfd, fl);
    break;
  }
  }
  if (diff_same(w, what, r, e, s)) return 1;
  if (r >= 0 && r != old) w->kind[r] = w->kind[old];
  return 0;
}

int diff_op_close(world_t *w) {
  char what[64];
  int fd = diff_pick_fd(w);
  int r = close(fd), e = errno;
  int s = ks_close(w->k, fd);
  snprintf(what, sizeof what, "close(%d)", fd);
  if (diff_same(w, what, r, e, s)) return 1;
  if (r == 0) w->kind[fd] = K_NONE;
  return 0;
}

int diff_op_fcntl(world_t *w) {
  char what[96];
  int fd = diff_pick_fd(w), r, e, s;
  switch (below(w, 4)) {
  case 0:
    r = fcntl(fd, F_GETFD);
    e = errno;
    s = ks_fcntl(w->k, fd, F_GETFD, 0);
    snprintf(what, sizeof what, "fcntl(%d, F_GETFD)", fd);
    return diff_same(w, what, r, e, s);
  case 1: {
    int v = chance(w, 50) ? FD_CLOEXEC : 0;
    r = fcntl(fd, F_SETFD, v);
    e = errno;
    s = ks_fcntl(w->k, fd, F_SETFD, v);
    snprintf(what, sizeof what, "fcntl(%d, F_SETFD, %d)", fd, v);
    return diff_same(w, what, r, e, s);
  }
  case 2: {
    const int mask = O_ACCMODE | O_NONBLOCK | O_PATH;
    r = fcntl(fd, F_GETFL);
    e = errno;
    s = ks_fcntl(w->k, fd, F_GETFL, 0);
    snprintf(what, sizeof what, "fcntl(%d, F_GETFL) & %#x", fd, mask);
    return diff_same(w, what, r < 0 ? r : (r & mask), e, s < 0 ? s : (s & mask));
  }
  default: {
    int v = chance(w, 50) ? O_NONBLOCK : 0;
    r = fcntl(fd, F_SETFL, v);
    e = errno;
    s = ks_fcntl(w->k, fd, F_SETFL, v);
    snprintf(what, sizeof what, "fcntl(%d, F_SETFL, %#x)", fd, v);
    return diff_same(w, what, r, e, s);
  }
  }
}

int diff_op_read(world_t *w) {
  char what[96];
  uint8_t rb[64], sb[64];
  int fd = diff_pick_fd(w);
  bool efd = fd >= 0 && fd < KS_NFD && w->kind[fd] == K_EVENTFD;
  size_t n = efd ? (chance(w, 85) ? 8 : (chance(w, 50) ? 4 : 16)) : 1 + below(w, 24);
  long r, s;
  int e;
  memset(rb, 0xaa, sizeof rb);
  memset(sb, 0xaa, sizeof sb);
  if (chance(w, 35)) {
    int fl = MSG_DONTWAIT | (chance(w, 30) ? MSG_PEEK : 0);
    r = recv(fd, rb, n, fl);
    e = errno;
    s = ks_recv(w->k, fd, sb, n, fl);
    snprintf(what, sizeof what, "recv(%d, %zu, %#x)", fd, n, fl);
  } else {
    REAL_NONBLOCKING(fd, read(fd, rb, n), r, e);
    s = ks_read(w->k, fd, sb, n);
    snprintf(what, sizeof what, "read(%d, %zu)", fd, n);
  }
  if (diff_same(w, what, r, e, s)) return 1;
  if (r > 0 && memcmp(rb, sb, (size_t)r) != 0) return diff_diverged(w, "%s: different bytes", what);
  return 0;
}

int diff_op_write(world_t *w) {
  char what[96];
  uint8_t buf[32];
  int fd = diff_pick_fd(w);
  bool efd = fd >= 0 && fd < KS_NFD && w->kind[fd] == K_EVENTFD;
  size_t n = efd ? (chance(w, 90) ? 8 : 4) : 1 + below(w, 24);
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)next64(w);
  if (efd) {
    static const uint64_t vals[] = {0, 1, 2, 3, 7, 0xfffffffffffffffeULL, 0xffffffffffffffffULL,
                                    0xfffffffffffffff0ULL, 1ULL << 62};
    uint64_t v = chance(w, 75) ? vals[below(w, 5)] : vals[5 + below(w, 4)];
    memcpy(buf, &v, sizeof v);
  }
  long r, s;
  int e;
  if (chance(w, 35)) {
    int fl = MSG_DONTWAIT | MSG_NOSIGNAL;
    r = send(fd, buf, n, fl);
    e = errno;
    s = ks_send(w->k, fd, buf, n, fl);
    snprintf(what, sizeof what, "send(%d, %zu)", fd, n);
  } else {
    REAL_NONBLOCKING(fd, write(fd, buf, n), r, e);
    s = ks_write(w->k, fd, buf, n);
    snprintf(what, sizeof what, "write(%d, %zu)", fd, n);
  }
  return diff_same(w, what, r, e, s);
}

int diff_op_shutdown(world_t *w) {
  char what[64];
  int fd = chance(w, 85) ? diff_pick_open(w, K_SOCK) : diff_pick_fd(w);
  if (fd < 0) fd = diff_pick_fd(w);
  int how = chance(w, 4) ? 3 : (int)below(w, 3);
  int r = shutdown(fd, how), e = errno;
  int s = ks_shutdown(w->k, fd, how);
  snprintf(what, sizeof what, "shutdown(%d, %d)", fd, how);
  return diff_same(w, what, r, e, s);
}

/* The real address of a simulated port: an abstract AF_UNIX name private to this sequence. */
static socklen_t real_addr(world_t *w, int port, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "churnfuzz-%d-%d-%d", (int)getpid(),
                   w->seq, port);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* bind, listen, accept4, connect, on ports 1..3 (real: abstract AF_UNIX names). */
int diff_op_net(world_t *w) {
  char what[96];
  struct sockaddr_un sa;
  int fd = chance(w, 90) ? diff_pick_open(w, K_SOCK) : diff_pick_fd(w);
  if (fd < 0) return diff_op_create(w, 6);
  int port = 1 + (int)below(w, 3), r, e, s;
  switch (below(w, 4)) {
  case 0:
    r = bind(fd, (struct sockaddr *)&sa, real_addr(w, port, &sa));
    e = errno;
    s = ks_bind(w->k, fd, (uint16_t)port);
    snprintf(what, sizeof what, "bind(%d, %d)", fd, port);
    return diff_same(w, what, r, e, s);
  case 1: {
    int backlog = chance(w, 10) ? -1 : (int)below(w, 3);
    r = listen(fd, backlog);
    e = errno;
    s = ks_listen(w->k, fd, backlog);
    snprintf(what, sizeof what, "listen(%d, %d)", fd, backlog);
    return diff_same(w, what, r, e, s);
  }
  case 2: {
    int fl = (chance(w, 50) ? SOCK_NONBLOCK : 0) | (chance(w, 30) ? SOCK_CLOEXEC : 0);
    if (chance(w, 3)) fl = 1; /* unknown flag */
    REAL_NONBLOCKING(fd, accept4(fd, NULL, NULL, fl), r, e);
    s = ks_accept4(w->k, fd, fl);
    snprintf(what, sizeof what, "accept4(%d, %#x)", fd, fl);
    if (diff_same(w, what, r, e, s)) return 1;
    if (r >= 0) w->kind[r] = K_SOCK;
    return 0;
  }
  default:
    REAL_NONBLOCKING(fd, connect(fd, (struct sockaddr *)&sa, real_addr(w, port, &sa)), r, e);
    s = ks_connect(w->k, fd, (uint16_t)port);
    snprintf(what, sizeof what, "connect(%d, %d)", fd, port);
    return diff_same(w, what, r, e, s);
  }
}

static uint32_t random_events(world_t *w) {
  uint32_t ev = 0;
  if (chance(w, 60)) ev |= EPOLLIN;
  if (chance(w, 45)) ev |= EPOLLOUT;
  if (chance(w, 30)) ev |= EPOLLRDHUP;
  if (chance(w, (uint32_t)w->prof->et)) ev |= EPOLLET;
  if (chance(w, (uint32_t)w->prof->oneshot)) ev |= EPOLLONESHOT;
  if (chance(w, 8)) ev |= EPOLLPRI;
  if (chance(w, 8)) ev |= EPOLLRDNORM;
  if (chance(w, 8)) ev |= EPOLLWRNORM;
  if (chance(w, 5)) ev |= EPOLLERR | EPOLLHUP;
  return ev;
}

int diff_op_epoll_ctl(world_t *w) {
  char what[128];
  int epfd = chance(w, 90) ? diff_pick_open(w, K_EPOLL) : diff_pick_fd(w);
  if (epfd < 0) epfd = diff_pick_fd(w);
  int fd = chance(w, 5) ? epfd : diff_pick_fd(w);
  /* Nested epoll: some profiles favour an epoll as the target. */
  if (w->prof->nested && chance(w, (uint32_t)w->prof->nested)) {
    int inner = diff_pick_open(w, K_EPOLL);
    if (inner >= 0) fd = inner;
  }
  uint32_t p = below(w, 100);
  int op = p < 45   ? EPOLL_CTL_ADD
           : p < 75 ? EPOLL_CTL_MOD
           : p < 96 ? EPOLL_CTL_DEL
                    : (p & 1) ? 0 : 4; /* an unknown op */
  struct epoll_event rev = {.events = random_events(w), .data.u64 = next64(w)};
  ks_epoll_event_t sev = {.events = rev.events, .data = rev.data.u64};
  snprintf(what, sizeof what, "epoll_ctl(%d, %d, %d, {%#x, %#llx})", epfd, op, fd, rev.events,
           (unsigned long long)rev.data.u64);
  int r = epoll_ctl(epfd, op, fd, &rev), e = errno;
  int s = ks_epoll_ctl(w->k, epfd, op, fd, &sev);
  if (op == EPOLL_CTL_ADD && fd >= 0 && fd < KS_NFD && w->kind[fd] == K_EPOLL && fd != epfd) {
    diff_stats.nested_adds++;
    diff_stats.nested_eloop += r < 0 && e == ELOOP;
  }
  return diff_same(w, what, r, e, s);
}

int diff_compare_events(world_t *w, const char *what, int r, int e, int s,
                          const struct epoll_event *rev, const ks_epoll_event_t *sev) {
  if (diff_same(w, what, r, e, s)) return 1;
  if (r > 0) {
    diff_stats.waits_with_events++;
    diff_stats.events += r;
  }
  for (int i = 0; i < r; i++) {
    diff_note(w, "      [%d] %#x %#llx | %#x %#llx\n", i, rev[i].events,
         (unsigned long long)rev[i].data.u64, sev[i].events, (unsigned long long)sev[i].data);
    if (rev[i].events != sev[i].events || rev[i].data.u64 != sev[i].data)
      return diff_diverged(w, "%s: event %d differs", what, i);
  }
  return 0;
}

int diff_op_epoll_wait(world_t *w) {
  char what[64];
  struct epoll_event rev[64];
  ks_epoll_event_t sev[64];
  int epfd = chance(w, 95) ? diff_pick_open(w, K_EPOLL) : diff_pick_fd(w);
  if (epfd < 0) epfd = diff_pick_fd(w);
  uint32_t p = below(w, 100);
  int small = w->prof->small_max;
  int max = p < 97 - (uint32_t)small ? 64 : p < 97 ? 1 + (int)below(w, 3) : (p & 1) ? 0 : -1;
  int r = epoll_wait(epfd, rev, max, 0), e = errno;
  int s = ks_epoll_wait(w->k, epfd, sev, max, 0);
  snprintf(what, sizeof what, "epoll_wait(%d, %d, 0)", epfd, max);
  return diff_compare_events(w, what, r, e, s, rev, sev);
}

/* Compare the readiness of every pollable descriptor through a fresh level-triggered epoll
 * holding all of them. Adding items to another epoll leaves the existing ones untouched. */
