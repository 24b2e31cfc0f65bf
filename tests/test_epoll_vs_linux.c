/* test_epoll_vs_linux.c: the simulated kernel against the real Linux kernel.
 *
 * Random operation sequences (fixed-seed splitmix64, so every run is the same) are applied to
 * the real kernel and to a fresh simulated kernel side by side: pipes, eventfds, AF_UNIX stream
 * socketpairs, memfds (regular files: epoll_ctl EPERM, poll always ready), O_PATH descriptors
 * (EBADF, POLLNVAL), dup, dup2, dup3, close, fcntl, read/write and recv/send, shutdown, AF_UNIX
 * stream listeners (socket, bind to an abstract name standing for a port, listen, accept4,
 * connect), epoll_create1, epoll_ctl and epoll_wait (timeout 0), poll (timeout 0). Every
 * result must match: return values, errno values, bytes read, the (events, data) lists of
 * epoll_wait in order, and every revents of poll. Now and then a probe compares the full
 * readiness of every pollable descriptor (epolls included, as nested items) through an epoll,
 * then of every descriptor through poll. Nested epoll is part of every profile (an ADD whose
 * target happens to be an epoll) and the focus of the "nested" one (chains, loops, the depth
 * limit, wake-ups across levels); directed nested sequences with the real kernel's answers
 * asserted run first (epoll_vs_linux_nested.c). This file drives the sequences; the
 * operations are in epoll_vs_linux_ops.c and poll_vs_linux_ops.c.
 *
 * Descriptor numbers are compared exactly. Before each sequence the numbers the test process
 * already has open are occupied in the simulated kernel too, and the sequence never touches
 * them, so both kernels allocate lowest-free over the same free set.
 *
 * Real calls never block: a read or write on a blocking descriptor runs with O_NONBLOCK set for
 * the duration of the call, because the simulated kernel outside a run answers a call that
 * would block with EAGAIN, which is what the non-blocking real call returns.
 *
 * Whitelisted divergences (the generator avoids them; each is covered by a direct check):
 *  - EPOLLEXCLUSIVE is never generated (its checks are tested directly below).
 *  - F_GETFL is compared on O_ACCMODE | O_NONBLOCK | O_PATH only: Linux also reports bits such
 *    as O_LARGEFILE that mean nothing to the model. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "epoll_vs_linux.h"
#include "task.h"

#define SEQUENCES 3000
#define STEPS 60
#define SEED 0x63686e66757a7aULL

diff_stats_t diff_stats;

static const profile_t profiles[] = {
    {"mixed", 12, 4, 5, 4, 13, 14, 4, 24, 20, 4, 14, 8, 30, 20, 25, 44, 0, 0},
    {"dups", 5, 12, 6, 2, 12, 18, 3, 22, 20, 0, 12, 2, 60, 15, 15, 12, 0, 0},
    {"edge", 6, 6, 4, 2, 18, 22, 4, 18, 20, 0, 10, 2, 85, 25, 40, 16, 0, 0},
    {"churn", 14, 10, 14, 3, 10, 12, 4, 18, 15, 4, 10, 4, 40, 20, 25, 24, 0, 0},
    {"server", 6, 3, 6, 2, 12, 12, 4, 16, 16, 24, 12, 3, 40, 15, 25, 24, 0, 0},
    /* Nested epoll: epolls watching epolls (chains, loops, the depth limit, wake-ups across
     * levels) next to pipes and sockets to make them ready. */
    {"nested", 12, 4, 4, 2, 12, 14, 3, 26, 20, 0, 8, 2, 30, 20, 20, 20, 45, 40},
};
#define NPROFILES (int)(sizeof profiles / sizeof profiles[0])

static const char *const kind_name[] = {"-",    "pipe-r", "pipe-w", "eventfd",
                                        "sock", "memfd",  "path",   "epoll"};

/* ---- logging and comparison -------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) void diff_note(world_t *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(w->log + w->loglen, LOG_SIZE - w->loglen, fmt, ap);
  va_end(ap);
  if (n > 0) w->loglen += (size_t)n < LOG_SIZE - w->loglen ? (size_t)n : LOG_SIZE - w->loglen - 1;
}

__attribute__((format(printf, 2, 3))) int diff_diverged(world_t *w, const char *fmt, ...) {
  fprintf(stderr, "  divergence in sequence %d at step %d: ", w->seq, w->step);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  operations so far (real result | sim result):\n%s", w->log);
  return 1;
}

/* Compare a real result (ret, errno) with a simulated one (value or -errno). */
int diff_same(world_t *w, const char *what, long real, int real_errno, long sim) {
  long r = real < 0 ? -real_errno : real;
  if (r < 0)
    diff_stats.errors++;
  else
    diff_stats.ok++;
  diff_note(w, "    %-44s -> %ld | %ld\n", what, r, sim);
  if (r != sim) return diff_diverged(w, "%s: real %ld, sim %ld", what, r, sim);
  return 0;
}

/* ---- choosing descriptors ------------------------------------------------------------------ */

int diff_count_open(world_t *w) {
  int n = 0;
  for (int fd = 0; fd < KS_NFD; fd++) n += w->kind[fd] != K_NONE;
  return n;
}

/* A random open descriptor of the sequence, optionally only of one kind; -1 if none. */
int diff_pick_open(world_t *w, int want) {
  int c = 0, cand[KS_NFD];
  for (int fd = 0; fd < KS_NFD; fd++)
    if (w->kind[fd] != K_NONE && (want < 0 || w->kind[fd] == want)) cand[c++] = fd;
  return c ? cand[below(w, (uint32_t)c)] : -1;
}

/* A number that is not open (and not the baseline's): for EBADF paths and dup2 targets. */
int diff_pick_free(world_t *w) {
  for (int tries = 0; tries < 64; tries++) {
    int fd = w->lo + (int)below(w, NUM_SPAN);
    if (!w->baseline[fd] && w->kind[fd] == K_NONE) return fd;
  }
  return -1;
}

/* Mostly an open descriptor, sometimes a bad one. */
int diff_pick_fd(world_t *w) {
  if (!chance(w, (uint32_t)w->prof->bad_fd)) {
    int fd = diff_pick_open(w, -1);
    if (fd >= 0) return fd;
  }
  switch (below(w, 3)) {
  case 0: return -1;
  case 1: return 300;
  default: return diff_pick_free(w);
  }
}

/* ---- sequences ---------------------------------------------------------------------------- */

static void setup(world_t *w, int seq) {
  memset(w->kind, 0, sizeof w->kind);
  w->seq = seq;
  w->loglen = 0;
  w->log[0] = 0;
  w->k = ks_kernel_new(NULL);
  int top = -1;
  for (int fd = 0; fd < KS_NFD; fd++) {
    w->baseline[fd] = fcntl(fd, F_GETFD) >= 0;
    if (w->baseline[fd]) top = fd;
  }
  /* Occupy the same numbers in the simulated kernel. */
  for (int fd = 0; fd <= top; fd++) ks_open_path(w->k, 0);
  for (int fd = 0; fd <= top; fd++)
    if (!w->baseline[fd]) ks_close(w->k, fd);
  w->lo = 0;
  while (w->baseline[w->lo]) w->lo++;
}

static void teardown(world_t *w) {
  for (int fd = 0; fd < KS_NFD; fd++)
    if (w->kind[fd] != K_NONE) close(fd);
  ks_kernel_free(w->k);
  w->k = NULL;
}

static int probe(world_t *w) {
  struct epoll_event rev[KS_NFD];
  ks_epoll_event_t sev[KS_NFD];
  int rp = epoll_create1(0), sp = ks_epoll_create1(w->k, 0);
  if (rp != sp) return diff_diverged(w, "probe epoll numbers differ: %d vs %d", rp, sp);
  diff_note(w, "    probe\n");
  for (int fd = 0; fd < KS_NFD; fd++) {
    int kd = w->kind[fd];
    if (kd == K_NONE || kd == K_REG || kd == K_PATH) continue;
    const uint32_t all = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND |
                         EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP;
    struct epoll_event ev = {.events = all, .data.u64 = (uint64_t)fd};
    ks_epoll_event_t sv = {.events = all, .data = (uint64_t)fd};
    int r = epoll_ctl(rp, EPOLL_CTL_ADD, fd, &ev), e = errno;
    int s = ks_epoll_ctl(w->k, sp, EPOLL_CTL_ADD, fd, &sv);
    if (r != 0 || s != 0) {
      char what[64];
      snprintf(what, sizeof what, "probe add %d (%s)", fd, kind_name[kd]);
      if (diff_same(w, what, r, e, s)) return 1;
    }
  }
  int r = epoll_wait(rp, rev, KS_NFD, 0), e = errno;
  int s = ks_epoll_wait(w->k, sp, sev, KS_NFD, 0);
  int bad = diff_compare_events(w, "probe wait", r, e, s, rev, sev);
  close(rp);
  ks_close(w->k, sp);
  /* Then every descriptor through poll: memfds, O_PATH ones and epolls included. */
  return bad || diff_probe_poll(w);
}

static int step(world_t *w) {
  const profile_t *pr = w->prof;
  bool full = diff_count_open(w) >= pr->max_open;
  if (full && chance(w, 30)) return diff_op_close(w);
  int total = pr->w_create + pr->w_dup + pr->w_close + pr->w_fcntl + pr->w_read + pr->w_write +
              pr->w_shutdown + pr->w_ctl + pr->w_wait + pr->w_net + pr->w_poll;
  int p = (int)below(w, (uint32_t)total);
  if ((p -= pr->w_create) < 0) return full ? diff_op_close(w) : diff_op_create(w, -1);
  if ((p -= pr->w_dup) < 0) return full ? diff_op_close(w) : diff_op_dup(w);
  if ((p -= pr->w_close) < 0) return diff_op_close(w);
  if ((p -= pr->w_fcntl) < 0) return diff_op_fcntl(w);
  if ((p -= pr->w_read) < 0) return diff_op_read(w);
  if ((p -= pr->w_write) < 0) return diff_op_write(w);
  if ((p -= pr->w_shutdown) < 0) return diff_op_shutdown(w);
  if ((p -= pr->w_ctl) < 0) return diff_op_epoll_ctl(w);
  if ((p -= pr->w_wait) < 0) return diff_op_epoll_wait(w);
  if ((p -= pr->w_net) < 0) return full ? diff_op_close(w) : diff_op_net(w);
  return diff_op_poll(w);
}

/* Direct checks of the whitelisted behaviour. */
static int check_whitelist(void) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int ep1 = ks_epoll_create1(k, 0);
  ks_epoll_event_t ev = {EPOLLIN, 1};
  int efd = ks_eventfd(k, 0, 0);
  /* EPOLLEXCLUSIVE: ADD only, with Linux's checks (its wake-one effect is not modelled). */
  ev.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT;
  ASSERT_EQ(ks_epoll_ctl(k, ep1, EPOLL_CTL_ADD, efd, &ev), -EINVAL);
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ASSERT_EQ(ks_epoll_ctl(k, ep1, EPOLL_CTL_MOD, efd, &ev), -EINVAL);
  ASSERT_EQ(ks_epoll_ctl(k, ep1, EPOLL_CTL_ADD, efd, &ev), 0);
  ASSERT_EQ(ks_epoll_ctl(k, ep1, EPOLL_CTL_MOD, efd, &ev), -EINVAL);
  ev.events = EPOLLIN;
  ASSERT_EQ(ks_epoll_ctl(k, ep1, EPOLL_CTL_MOD, efd, &ev), -EINVAL);
  ASSERT_EQ(ks_epoll_ctl(k, ep1, EPOLL_CTL_DEL, efd, NULL), 0);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_epoll_vs_linux) {
  if (check_whitelist()) return 1;
  if (diff_nested_directed()) return 1;
  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  sigaction(SIGPIPE, &ign, &old);
  static world_t w;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int failed = 0;
  long ops = 0;
  for (int seq = 0; seq < SEQUENCES && !failed; seq++) {
    setup(&w, seq);
    w.prof = &profiles[seq % NPROFILES];
    w.rng = SEED ^ ((uint64_t)seq * 0x2545f4914f6cdd1dULL);
    diff_note(&w, "  profile %s\n", w.prof->name);
    /* The focused profiles start with an epoll and something to watch. */
    w.step = -1;
    if (w.prof != &profiles[0]) failed = diff_op_create(&w, 5) || diff_op_create(&w, -1);
    for (w.step = 0; w.step < STEPS && !failed; w.step++, ops++) {
      diff_note(&w, "  %2d:\n", w.step);
      failed = step(&w);
      if (!failed && chance(&w, 12)) failed = probe(&w);
    }
    if (!failed) failed = probe(&w);
    teardown(&w);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  sigaction(SIGPIPE, &old, NULL);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  fprintf(stderr,
          "  # %d sequences, %ld operations (%ld succeeded, %ld failed alike), %ld epoll_waits "
          "reporting %ld events, %ld polls (%ld reporting %ld ready entries), %ld nested-epoll "
          "ADDs (%ld ELOOP), %.2f s\n",
          SEQUENCES, ops, diff_stats.ok, diff_stats.errors, diff_stats.waits_with_events,
          diff_stats.events, diff_stats.polls, diff_stats.polls_with_events,
          diff_stats.poll_ready, diff_stats.nested_adds, diff_stats.nested_eloop, secs);
  return failed;
}

