/* epoll_vs_linux.h: what the differential test's driver (test_epoll_vs_linux.c) and its
 * operation generators (epoll_vs_linux_ops.c, poll_vs_linux_ops.c) share: the world of one
 * sequence, deterministic randomness, logging and comparison. All three files define
 * _GNU_SOURCE before any include. */
#ifndef CF_EPOLL_VS_LINUX_H
#define CF_EPOLL_VS_LINUX_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel.h"
#include "testutil.h"

#define NUM_SPAN 56     /* free numbers considered for dup2 targets and bad fds */
#define LOG_SIZE 16384

/* Sequences rotate through profiles: the mixed one reaches every path, the focused ones keep
 * few files in one epoll so that orderings (dups woken together, truncated ready lists,
 * edge-triggered re-queueing) come up often. Weights are relative. */
typedef struct profile {
  const char *name;
  int w_create, w_dup, w_close, w_fcntl, w_read, w_write, w_shutdown, w_ctl, w_wait, w_net,
      w_poll;
  int bad_fd;                /* percent of descriptor picks that are not open */
  int et, oneshot;           /* percent of epoll_ctl events with EPOLLET / EPOLLONESHOT */
  int small_max;             /* percent of epoll_waits with maxevents 1..3 */
  int max_open;              /* descriptors a sequence keeps open at most */
  int nested;                /* percent of epoll_ctls whose target is (made) an epoll */
  int create_epoll;          /* percent of creations that are epolls (otherwise 1 in 7) */
} profile_t;

enum kind { K_NONE, K_PIPE_R, K_PIPE_W, K_EVENTFD, K_SOCK, K_REG, K_PATH, K_EPOLL };

typedef struct world {
  const profile_t *prof;
  ks_kernel_t *k;
  bool baseline[KS_NFD];     /* real descriptors open before the sequence: never touched */
  uint8_t kind[KS_NFD];      /* what each number opened by the sequence refers to */
  int lo;                    /* lowest number not in the baseline */
  int seq, step;
  uint64_t rng;
  char log[LOG_SIZE];
  size_t loglen;
} world_t;

/* What the run covered, printed at the end so a weakened generator shows. */
typedef struct diff_stats {
  long ok, errors, waits_with_events, events;
  long polls, polls_with_events, poll_ready; /* poll calls, those reporting, entries reported */
  long nested_adds, nested_eloop;            /* ADDs of an epoll to an epoll, and their ELOOPs */
} diff_stats_t;
extern diff_stats_t diff_stats;

static inline uint32_t below(world_t *w, uint32_t n) {
  return (uint32_t)(splitmix64(&w->rng) % n);
}
static inline bool chance(world_t *w, uint32_t percent) {
  return below(w, 100) < percent;
}
static inline uint64_t next64(world_t *w) { return splitmix64(&w->rng); }

/* Run a read/write-like call on a real descriptor without ever blocking: O_NONBLOCK is set for
 * the duration of the call, since the simulated kernel outside a run answers a call that would
 * block with EAGAIN, which is what the non-blocking real call returns. */
#define REAL_NONBLOCKING(fd, call, ret, err)                                 \
  do {                                                                       \
    int fl_ = fcntl((fd), F_GETFL);                                          \
    bool set_ = fl_ >= 0 && !(fl_ & O_NONBLOCK) && !(fl_ & O_PATH) &&        \
                fcntl((fd), F_SETFL, fl_ | O_NONBLOCK) == 0;                 \
    (ret) = (call);                                                          \
    (err) = errno;                                                           \
    if (set_) fcntl((fd), F_SETFL, fl_);                                     \
  } while (0)

/* Logging and comparison (test_epoll_vs_linux.c). */
__attribute__((format(printf, 2, 3))) void diff_note(world_t *w, const char *fmt, ...);
__attribute__((format(printf, 2, 3))) int diff_diverged(world_t *w, const char *fmt, ...);
/* Compare a real result (ret, errno) with a simulated one (value or -errno); 1 on mismatch. */
int diff_same(world_t *w, const char *what, long real, int real_errno, long sim);

/* Choosing descriptors (test_epoll_vs_linux.c). */
int diff_count_open(world_t *w);
/* A random open descriptor of the sequence, optionally only of one kind; -1 if none. */
int diff_pick_open(world_t *w, int want);
/* A number that is not open (and not the baseline's): for EBADF paths and dup2 targets. */
int diff_pick_free(world_t *w);
/* Mostly an open descriptor, sometimes a bad one. */
int diff_pick_fd(world_t *w);

/* Operations (epoll_vs_linux_ops.c): each applies one random call to both kernels and returns
 * 1 on a divergence. */
/* Create one object: 0 pipe, 1 eventfd, 2 socketpair, 3 memfd, 4 O_PATH, 5 epoll, 6 socket;
 * -1 any. */
int diff_op_create(world_t *w, int which);
int diff_op_dup(world_t *w);
int diff_op_close(world_t *w);
int diff_op_fcntl(world_t *w);
int diff_op_read(world_t *w);
int diff_op_write(world_t *w);
int diff_op_shutdown(world_t *w);
/* bind, listen, accept4, connect. */
int diff_op_net(world_t *w);
int diff_op_epoll_ctl(world_t *w);
int diff_op_epoll_wait(world_t *w);
struct epoll_event;
/* Compare epoll_wait results, events in order. */
int diff_compare_events(world_t *w, const char *what, int r, int e, int s,
                        const struct epoll_event *rev, const ks_epoll_event_t *sev);
/* epoll_vs_linux_nested.c: directed nested-epoll sequences on both kernels; 1 on a
 * divergence or an unexpected real answer. */
int diff_nested_directed(void);
/* poll_vs_linux_ops.c: a random array of 1..8 entries, timeout 0; every revents compared. */
int diff_op_poll(world_t *w);
/* poll every open descriptor of the sequence (and a bad number) for every event. */
int diff_probe_poll(world_t *w);

#endif
