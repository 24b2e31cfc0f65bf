/* epoll_vs_linux_nested.c: directed sequences of nested epoll (an epoll watched by another),
 * run on the real kernel and on the simulated one side by side, every result compared, and the
 * real kernel's answers at the decisive steps asserted, so that what the model encodes about
 * this machine's kernel is written down here: self-add EINVAL, loops ELOOP (before EEXIST),
 * at most EP_MAX_NESTS (4) links in any chain through a new link (counted down from the target
 * and, since 6.17's "eventpoll: Fix semi-unbounded recursion", up from the inserting epoll),
 * readiness EPOLLIN only, wake-ups across levels, level and edge triggering on the outer set.
 * The random sequences of test_epoll_vs_linux.c then mix nesting with everything else. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "epoll_vs_linux.h"

typedef struct pair {
  int real, sim;
} pair_t;

static bool nested_failed;

static void check_same_fd(const char *what, int r, int s) {
  if (r != s) {
    fprintf(stderr, "  nested: %s: real %d, sim %d\n", what, r, s);
    nested_failed = true;
  }
}

static pair_t new_epoll(ks_kernel_t *k) {
  pair_t p = {epoll_create1(0), ks_epoll_create1(k, 0)};
  check_same_fd("epoll_create1 number", p.real, p.sim);
  return p;
}

static pair_t new_pipe(ks_kernel_t *k, int *wr) {
  int rfd[2], sfd[2];
  if (pipe2(rfd, O_NONBLOCK) || ks_pipe2(k, sfd, O_NONBLOCK)) {
    nested_failed = true;
    return (pair_t){-1, -1};
  }
  check_same_fd("pipe2 read end", rfd[0], sfd[0]);
  check_same_fd("pipe2 write end", rfd[1], sfd[1]);
  *wr = rfd[1];
  return (pair_t){rfd[0], sfd[0]};
}

/* epoll_ctl on both kernels; the real answer (0 or -errno), reported when they differ. */
static int ctl(ks_kernel_t *k, pair_t ep, int op, pair_t fd, uint32_t events) {
  struct epoll_event rev = {.events = events, .data.u64 = (uint64_t)fd.real};
  ks_epoll_event_t sev = {.events = events, .data = (uint64_t)fd.sim};
  int r = epoll_ctl(ep.real, op, fd.real, &rev) ? -errno : 0;
  int s = ks_epoll_ctl(k, ep.sim, op, fd.sim, &sev);
  if (r != s) {
    fprintf(stderr, "  nested: epoll_ctl(%d, %d, %d, %#x): real %d, sim %d\n", ep.real, op,
            fd.real, events, r, s);
    nested_failed = true;
  }
  return r;
}

/* epoll_wait(timeout 0) on both; events compared in order. Returns the real count and fills
 * the first event's data (or -1) so the caller can assert which fd came back. */
static int wait0(ks_kernel_t *k, pair_t ep, int64_t *first_data) {
  struct epoll_event rev[8];
  ks_epoll_event_t sev[8];
  int r = epoll_wait(ep.real, rev, 8, 0);
  int s = ks_epoll_wait(k, ep.sim, sev, 8, 0);
  if (r != s) {
    fprintf(stderr, "  nested: epoll_wait(%d): real %d, sim %d\n", ep.real, r, s);
    nested_failed = true;
  }
  for (int i = 0; i < r && i < s; i++) {
    if (rev[i].events != sev[i].events || rev[i].data.u64 != sev[i].data) {
      fprintf(stderr, "  nested: epoll_wait(%d) event %d: real %#x %#llx, sim %#x %#llx\n",
              ep.real, i, rev[i].events, (unsigned long long)rev[i].data.u64, sev[i].events,
              (unsigned long long)sev[i].data);
      nested_failed = true;
    }
  }
  *first_data = r > 0 ? (int64_t)rev[0].data.u64 : -1;
  return r;
}

static void both_close(ks_kernel_t *k, pair_t p) {
  close(p.real);
  ks_close(k, p.sim);
}

#define EXPECT(cond)                                                                \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "  nested: %s:%d: real kernel: expected %s\n", __FILE__,       \
              __LINE__, #cond);                                                     \
      nested_failed = true;                                                         \
    }                                                                               \
  } while (0)

/* Loops, self-add and the depth limit. */
static void nested_limits(ks_kernel_t *k) {
  pair_t e[7];
  for (int i = 0; i < 7; i++) e[i] = new_epoll(k);
  EXPECT(ctl(k, e[0], EPOLL_CTL_ADD, e[0], EPOLLIN) == -EINVAL);
  /* A chain e0 > e1 > e2 > e3 > e4: four links, the most a chain may have. */
  for (int i = 0; i < 4; i++) EXPECT(ctl(k, e[i], EPOLL_CTL_ADD, e[i + 1], EPOLLIN) == 0);
  EXPECT(ctl(k, e[4], EPOLL_CTL_ADD, e[5], EPOLLIN) == -ELOOP); /* a fifth link below */
  EXPECT(ctl(k, e[5], EPOLL_CTL_ADD, e[0], EPOLLIN) == -ELOOP); /* a fifth link above */
  EXPECT(ctl(k, e[4], EPOLL_CTL_ADD, e[0], EPOLLIN) == -ELOOP); /* a loop */
  EXPECT(ctl(k, e[1], EPOLL_CTL_ADD, e[0], EPOLLIN) == -ELOOP); /* a loop of two */
  /* The loop check comes before the item lookup; re-adding an existing link passes it (the
   * chain through it is no longer than before), so the answer is EEXIST. */
  EXPECT(ctl(k, e[0], EPOLL_CTL_ADD, e[1], EPOLLIN) == -EEXIST);
  /* EPOLLEXCLUSIVE is refused on an epoll target; MOD and DEL of a nested link work. */
  EXPECT(ctl(k, e[5], EPOLL_CTL_ADD, e[6], EPOLLIN | EPOLLEXCLUSIVE) == -EINVAL);
  EXPECT(ctl(k, e[0], EPOLL_CTL_MOD, e[1], EPOLLIN | EPOLLOUT) == 0);
  EXPECT(ctl(k, e[3], EPOLL_CTL_DEL, e[4], 0) == 0);
  EXPECT(ctl(k, e[4], EPOLL_CTL_ADD, e[5], EPOLLIN) == 0); /* e4 is now a chain of its own */
  /* A diamond: e5 under e4 and under e6; e6 added to e3 makes e0>e1>e2>e3>e6>e5: five. */
  EXPECT(ctl(k, e[6], EPOLL_CTL_ADD, e[5], EPOLLIN) == 0);
  EXPECT(ctl(k, e[3], EPOLL_CTL_ADD, e[6], EPOLLIN) == -ELOOP);
  EXPECT(ctl(k, e[2], EPOLL_CTL_ADD, e[6], EPOLLIN) == 0); /* e0>e1>e2>e6>e5: four */
  /* Closing the middle of a chain removes its links: e2's items and its item in e1. */
  both_close(k, e[2]);
  EXPECT(ctl(k, e[4], EPOLL_CTL_ADD, e[0], EPOLLIN) == 0);
  for (int i = 0; i < 7; i++)
    if (i != 2) both_close(k, e[i]);
}

/* Readiness across levels: LT and ET on the outer set, EPOLLOUT never, draining. */
static void nested_readiness(ks_kernel_t *k) {
  int wr;
  int64_t data;
  pair_t outer = new_epoll(k), inner = new_epoll(k), et = new_epoll(k), out_only = new_epoll(k);
  pair_t rd = new_pipe(k, &wr);
  EXPECT(ctl(k, outer, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLOUT) == 0);
  EXPECT(ctl(k, et, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLET) == 0);
  EXPECT(ctl(k, out_only, EPOLL_CTL_ADD, inner, EPOLLOUT) == 0);
  EXPECT(wait0(k, outer, &data) == 0); /* an empty epoll is not readable, never writable */
  EXPECT(ctl(k, inner, EPOLL_CTL_ADD, rd, EPOLLIN) == 0);
  EXPECT(wait0(k, outer, &data) == 0); /* registered, nothing ready yet */
  if (write(wr, "x", 1) != 1 || ks_write(k, wr, "x", 1) != 1) nested_failed = true;
  EXPECT(wait0(k, outer, &data) == 1 && data == inner.real); /* EPOLLIN, level-triggered */
  EXPECT(wait0(k, outer, &data) == 1);
  EXPECT(wait0(k, et, &data) == 1 && data == inner.real); /* the edge */
  EXPECT(wait0(k, et, &data) == 0);
  EXPECT(wait0(k, out_only, &data) == 0);
  /* Another write wakes the inner item again, already on its ready list: the inner epoll
   * wakes its watchers anyway, so the edge-triggered outer sees a new edge. */
  if (write(wr, "y", 1) != 1 || ks_write(k, wr, "y", 1) != 1) nested_failed = true;
  EXPECT(wait0(k, et, &data) == 1);
  /* Collecting from the inner epoll re-queues its level-triggered item without waking. */
  EXPECT(wait0(k, inner, &data) == 1 && data == rd.real);
  EXPECT(wait0(k, et, &data) == 0);
  /* Drained: the inner epoll is no longer readable, at any level. */
  char buf[8];
  if (read(rd.real, buf, sizeof buf) != 2 || ks_read(k, rd.sim, buf, sizeof buf) != 2)
    nested_failed = true;
  EXPECT(wait0(k, outer, &data) == 0);
  /* Two levels: top > outer > inner; a write reaches the top. */
  pair_t top = new_epoll(k);
  EXPECT(ctl(k, top, EPOLL_CTL_ADD, outer, EPOLLIN | EPOLLONESHOT) == 0);
  EXPECT(wait0(k, top, &data) == 0);
  if (write(wr, "z", 1) != 1 || ks_write(k, wr, "z", 1) != 1) nested_failed = true;
  EXPECT(wait0(k, top, &data) == 1 && data == outer.real);
  EXPECT(wait0(k, top, &data) == 0); /* EPOLLONESHOT */
  EXPECT(ctl(k, top, EPOLL_CTL_MOD, outer, EPOLLIN) == 0);
  EXPECT(wait0(k, top, &data) == 1);
  /* Closing the inner epoll's only descriptor removes it from the sets watching it. */
  both_close(k, inner);
  EXPECT(wait0(k, outer, &data) == 0);
  EXPECT(wait0(k, top, &data) == 0);
  close(wr);
  ks_close(k, wr);
  both_close(k, rd);
  both_close(k, outer);
  both_close(k, et);
  both_close(k, out_only);
  both_close(k, top);
}

int diff_nested_directed(void) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  /* Occupy the real process's open numbers in the simulated kernel, as setup() does. */
  int top = -1;
  for (int fd = 0; fd < KS_NFD; fd++)
    if (fcntl(fd, F_GETFD) >= 0) top = fd;
  for (int fd = 0; fd <= top; fd++) ks_open_path(k, 0);
  for (int fd = 0; fd <= top; fd++)
    if (fcntl(fd, F_GETFD) < 0) ks_close(k, fd);
  nested_failed = false;
  nested_limits(k);
  nested_readiness(k);
  ks_kernel_free(k);
  return nested_failed;
}
