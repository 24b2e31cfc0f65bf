/* tolerated.h: the one list of differences between the shim and Linux that fuzz_epoll_shim's
 * differential oracle tolerates (tolerated.c has each one's reason and upstream reference).
 * Every place in oracle.c that lets a difference pass asks tolerated(id) first, so removing an
 * entry (tolerances_removed, or CHURN_EPOLL_UNTOLERATE=id,... for a replay) makes the oracle
 * report that difference; the unit tests check that every entry is load-bearing that way. */
#ifndef EPOLL_SHIM_TOLERATED_H
#define EPOLL_SHIM_TOLERATED_H

#include <stdbool.h>
#include <stdint.h>

typedef enum tolerance_id {
  TOL_STALE_ITEM,         /* an item of an earlier incarnation of a number (dup then close) */
  TOL_CONCURRENT_CHANGE,  /* a registration changed between pwait's kevent and its merge */
  TOL_ONESHOT_SPLIT,      /* two pwaits racing for one EPOLLONESHOT report */
  TOL_UNSUPPORTED_FILTER, /* a kevent change the host refuses (EINVAL) */
  TOL_HANGUP_FLAVOUR,     /* EV_EOF mapped to EPOLLHUP (+RDHUP, +the filter's direction) */
  TOL_ET_REARM,           /* EV_CLEAR firing again where Linux EPOLLET stays silent */
  TOL_EPOLL_TARGET,       /* ctl whose target is the epoll's own file, told apart by number */
  TOL_NESTED_LOOP_CHECK,  /* nested ADD: XNU's nesting ceiling where Linux walks the graph */
  TOL_NESTED_READINESS,   /* a nested epoll's readiness is its kqueue's (filt_kqueue) */
  TOL_COUNT
} tolerance_id_t;

typedef struct tolerance {
  const char *id;
  const char *difference; /* what differs, as a Linux program sees it */
  const char *reason;     /* why it is not a bug of the copy (or not one we report here) */
  const char *upstream;   /* where upstream says or does so */
} tolerance_t;

extern const tolerance_t tolerances[TOL_COUNT];
/* Bit i set: tolerance i is off (the oracle reports the difference). */
extern uint32_t tolerances_removed;

static inline bool tolerated(tolerance_id_t id) { return !(tolerances_removed & (1u << id)); }
/* TOL_HANGUP_FLAVOUR's rule: may elfuse's EV_EOF/EV_ERROR mapping give `shim` for an item
 * Linux reports with `linux_events` (a hang-up on either side)? */
bool hangup_flavour_matches(uint32_t shim, uint32_t linux_events);
/* The tolerance of that id, or TOL_COUNT. */
tolerance_id_t tolerance_by_id(const char *id);
/* Read CHURN_EPOLL_UNTOLERATE (comma-separated ids) once per process. */
void tolerances_from_env(void);

#endif
