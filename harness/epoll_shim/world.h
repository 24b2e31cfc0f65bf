/* world.h: the fuzz target's world around the copy: guest threads running a decoded workload
 * against the shim on a BSD-like host kernel, and the oracles that watch them (a Linux
 * reference kernel driven at the shim's commit points, structural checks of shim and host
 * state, and liveness at quiescence). Private to harness/epoll_shim/. */
#ifndef EPOLL_SHIM_WORLD_H
#define EPOLL_SHIM_WORLD_H

#include "shim.h"

/* Workload operations (the byte format is in workload.c and docs/INPUT_FORMAT.md). */
typedef enum op_kind {
  OP_EVENTFD,
  OP_PIPE,
  OP_SOCKETPAIR,
  OP_OPEN_PATH,
  OP_OPEN_REGULAR,
  OP_EPOLL_CREATE,
  OP_CLOSE,
  OP_DUP,
  OP_DUP2,
  OP_DUP3,
  OP_WRITE,
  OP_READ,
  OP_CTL,
  OP_PWAIT,
  OP_CLONE,
  OP_EXIT,
  OP_IOCTL,
  OP_COUNT
} op_kind_t;

#define MAX_OPS 48
#define MAX_EVENTS FD_TABLE_SIZE
/* Reference-kernel descriptors the oracle holds for in-flight calls live at or above this
 * number, far from the guest's numbers, so they never disturb lowest-free allocation. */
#define PIN_BASE 200
/* Socket buffers that one 8-byte write fills (a readable but not writable
 * socket is what EPOLLONESHOT with two filters needs). Both kernels use it. */
#define SOCK_BUF_BYTES 8

typedef struct op {
  op_kind_t kind;
  int thread;
  int a, b, c;           /* operands as decoded: fds, ctl op, flags... */
  uint8_t ev_bits;       /* CTL: the workload's event selector (see workload.c) */
} op_t;

/* One call in flight: the operation plus what the reference said about it. */
typedef struct op_rec {
  const op_t *op;
  long ret;              /* the shim's return value, at the end */
  int fds[2];            /* pipe/socketpair results */
  linux_epoll_event_t ev;
  uint8_t wbuf[8];
  uint8_t rbuf[8];
  linux_epoll_event_t *out; /* pwait's output buffer */
  /* reference side */
  bool applied;          /* the reference has run the operation */
  long ref_ret;
  int ref_fds[2];
  uint8_t ref_rbuf[8];
  int pin_epfd, pin_fd;  /* reference descriptors held for the call, or -1 */
  int pin_old;           /* close/dup2: the removed file, held until the call returns */
  int resolves;
  int target_type;       /* ctl: the shim's type of the target at the commit point */
  bool target_own_epoll; /* ctl: the target is the ctl's own epoll (its number or a dup) */
  uint64_t seq_at_kevent;
  int ref_nevents;
  bool merged;           /* pwait: events were compared at a merge */
  int64_t started_at;    /* pwait: cf_now() when the call started */
  bool sampled;          /* pwait: the reference was sampled at its kevent, not merged yet */
  bool stale_item;       /* ctl: the reference held an item from an earlier incarnation */
  bool stale_resynced;   /* ctl: ... and was brought to the shim's answer at the commit point */
  bool ctl_counted;      /* ctl: counted in ctl_inflight */
  uint64_t commit_change; /* ctl: last_change[fd] as its commit point left it */
  bool undisturbed;      /* ctl: no other change to its number from commit to return */
  bool quarantined;      /* ctl: its number was quarantined at its commit point */
  bool close_shared;     /* close: another guest fd shared the description when it decided */
  uint64_t close_generation; /* close: the incarnation it removed */
  uint64_t close_ofd;    /* close: that incarnation's open file description */
  ks_epoll_event_t ref_events[MAX_EVENTS]; /* last: run_op clears only what precedes it */
} op_rec_t;

typedef struct oneshot_track {
  const epoll_instance_t *inst;
  uint64_t serial;
  bool reported[FD_TABLE_SIZE]; /* reported since the last ADD/MOD armed it */
} oneshot_track_t;

/* An EPOLLONESHOT item a reference pwait sample used up while a ctl on its number was in
 * flight (see oracle.c, settle_rearm). */
typedef struct rearm {
  const epoll_instance_t *inst; /* the shim instance the pwait waited on */
  uint64_t inst_serial;
  int fd;
  uint64_t serial;              /* the item's ctl serial */
} rearm_t;

#define MAX_REARMS 8

typedef struct world {
  shim_t shim;
  ks_kernel_t *host;
  ks_kernel_t *lin;      /* the Linux reference kernel, fed the same guest operations */
  op_t ops[MAX_OPS];
  int nops;
  guest_thread_t threads[SHIM_MAX_THREADS];
  op_rec_t recs[SHIM_MAX_THREADS];
  bool started[SHIM_MAX_THREADS];
  int next_thread;
  uint64_t ctl_serial;
  /* Oracle state. */
  uint64_t change_seq;                 /* bumped whenever a number's file or registration changes */
  uint64_t last_change[FD_TABLE_SIZE];
  bool quarantined[FD_TABLE_SIZE];     /* see oracle.c: unsupported host filter */
  int ctl_inflight[FD_TABLE_SIZE];     /* ctls past their commit point, not yet returned */
  uint64_t install_seq[FD_TABLE_SIZE]; /* incarnation of each number (change_seq at install) */
  /* The reference's interest items, by ctl serial (data >> 6): Linux keys them by (file, fd),
   * so one number can have several, from different incarnations. */
  uint64_t data_inc[MAX_OPS];          /* the incarnation of the number it registered */
  int64_t data_ofd[MAX_OPS];           /* the reference file it registered */
  int data_fd[MAX_OPS];                /* the number it registered */
  int64_t data_ep[MAX_OPS];            /* the reference epoll file it is in */
  uint32_t data_events[MAX_OPS];       /* the events it asked for */
  bool data_live[MAX_OPS];             /* not modified or deleted since */
  bool data_nested[MAX_OPS];           /* its target was an epoll (nested epoll) */
  rearm_t rearms[MAX_REARMS];
  int nrearms;
  uint64_t max_generation;
  oneshot_track_t oneshot[8];
} world_t;

/* oracle.c */
void oracle_observe(void *ctx, guest_thread_t *t, shim_point_t at, int arg, int result);
/* Called by the thread after the shim returned: compare what is left to compare, drop pins. */
void oracle_op_done(world_t *w, guest_thread_t *t);
/* Reference events for pwait, filtered as the whitelist says (writes the kept ones to out). */
int oracle_filter_reference(world_t *w, const ks_epoll_event_t *in, int n, ks_epoll_event_t *out);
/* Compare a shim pwait result with the reference's; `skip_since` excludes numbers changed
 * after that change_seq (UINT64_MAX: none). On a difference fails as `oracle` at site
 * "<base> <what>", what saying which side is wrong as far as it can tell: shim-missed (Linux
 * reports the fd, the shim does not), shim-extra, reference-missed (the shim's extra report is
 * of a level-triggered item whose reference file is ready: the reference model is wrong), data
 * or events (both report it, differently). ref_ep: the reference epoll file (for the window
 * check of numbers changed since skip_since). */
void oracle_compare_events(world_t *w, epoll_instance_t *inst, const linux_epoll_event_t *shim,
                           int nshim, const ks_epoll_event_t *ref, int nref, uint64_t skip_since,
                           int64_t ref_ep, const char *base, const char *oracle);

/* sites.c: "<base> <what>" (pwait and liveness differences) and "diff.<call> <shim answer>,
 * Linux <answer>" (return values), as failure sites kept for the process. */
const cf_site_t *events_site(const char *base, const char *what);
const cf_site_t *diff_site(op_kind_t kind, long shim, long ref);

/* checks.c */
/* True when no other guest thread is inside a syscall (except parked in pwait's kevent). */
bool world_quiet(world_t *w, guest_thread_t *self);
void check_structure(world_t *w);
bool shares_description(world_t *w, int fd);
bool host_takes_filter(world_t *w, int fd, int16_t filter);
void check_close_hygiene(world_t *w, int fd, const op_rec_t *close);
void check_del_left_no_knote(world_t *w, int fd);
void check_oneshot_report(world_t *w, epoll_instance_t *inst, int fd);
void check_oneshot_armed(world_t *w, epoll_instance_t *inst, int fd);
void check_generation(world_t *w, int fd);
void check_liveness_at_quiescence(void *arg);

/* workload.c */
void epoll_shim_main(void *arg);
const char *op_name(op_kind_t kind);
/* The timeout in ticks of a pwait operand selector (< 0: forever). */
int64_t pwait_timeout(int selector);

#endif
