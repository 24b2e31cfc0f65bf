/* shim.h: a copy of elfuse's Linux-epoll emulation on a kqueue-only host (sysprog21/elfuse,
 * src/syscall/{fdtable.c,poll.c,fs.c,io.c,internal.h}; behaviour from
 * /work/shared/specs/epoll-shim.md part B). A Linux guest's syscalls run against a guest fd
 * table whose entries point at descriptors of a BSD-like host kernel (a ks_kernel_t with
 * kqueue semantics); epoll instances are kqueues plus a per-guest-fd registration table.
 *
 * Upstream keeps this state in globals; here it lives in one shim_t per run, passed to every
 * call together with the calling guest thread, so nothing survives a run. Names and the order
 * of operations follow upstream so the two can be read side by side; the places where a bug
 * toggle restores an older upstream behaviour say so with the toggle id.
 *
 * Calls return a value >= 0 or -errno (Linux values), like the guest's syscalls. */
#ifndef EPOLL_SHIM_H
#define EPOLL_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "cf.h"
#include "kernel.h"
#include "pool.h"

#define SHIM_SYSTEM "epoll-shim"

/* Upstream FD_TABLE_SIZE is 1024; the workload never uses more than a few dozen numbers, and a
 * small table keeps the per-run reset and the oracles' scans cheap. */
#define FD_TABLE_SIZE 64
#define SHIM_MAX_THREADS 3

/* fd_entry_t.type (abi.h numbering; the types this copy has no use for are left out). */
enum {
  FD_CLOSED = 0,
  FD_STDIO = 1,
  FD_REGULAR = 2,
  FD_DIR = 3,
  FD_PIPE = 4,
  FD_SOCKET = 5,
  FD_EPOLL = 6,
  FD_EVENTFD = 8,
  FD_PATH = 11,
};

/* The guest's O_CLOEXEC bit lives in linux_flags, as upstream (no separate field). */
#define LINUX_O_CLOEXEC 02000000
#define LINUX_O_NONBLOCK 04000

/* ioctl requests (Linux generic values). */
#define LINUX_FIONCLEX 0x5450
#define LINUX_FIOCLEX 0x5451
#define LINUX_FIONBIO 0x5421

typedef struct epoll_instance epoll_instance_t;
typedef struct eventfd_state eventfd_state_t;

/* A pin on a slot's host descriptor (PR #324, fd_lifetime_t): the slot holds one reference and
 * every in-flight borrower another; the last release closes the host fd. Made on the first
 * borrow. fd_lock guards refs. */
typedef struct fd_lifetime {
  cf_atomic_t refs;
  int host_fd;
  int type; /* FD_STDIO's host descriptor is not ours to close */
  struct fd_lifetime *live_next; /* shim_t.lifetimes: for the checkers, upstream has no list */
} fd_lifetime_t;

typedef struct fd_entry {
  int type;
  int host_fd;
  uint64_t generation;   /* fd_next_generation at allocation: one incarnation of the slot */
  int linux_flags;       /* LINUX_O_CLOEXEC, LINUX_O_NONBLOCK (eventfd only) */
  epoll_instance_t *dir; /* FD_EPOLL: the instance (upstream's `dir` field) */
  eventfd_state_t *efd;  /* FD_EVENTFD: the shared counter (upstream eventfd_state[slot]) */
  uint64_t ofd_id;       /* shared by dups (upstream 3011c6e) */
  fd_lifetime_t *lifetime; /* pinned by in-flight calls, or NULL (PR #324) */
} fd_entry_t;

/* One registration, indexed by guest fd number (poll.c epoll_reg_t). */
typedef struct epoll_reg {
  uint32_t events;
  uint64_t data;
  uint64_t generation;   /* fd_entry_t.generation when ADD/MOD stored it (PR #73) */
  uint64_t ofd_id;
  bool active;
  bool oneshot_armed;    /* EPOLLONESHOT fired: disarmed until MOD */
  uint64_t stored_at;    /* the stamp its knotes carry in udata (0: upstream's plain udata) */
} epoll_reg_t;

struct epoll_instance {
  int kq_hostfd;         /* the kqueue made by epoll_create1 (dups share the kqueue) */
  epoll_reg_t regs[FD_TABLE_SIZE];
  int refcount;          /* the table's reference + one per in-flight ctl/pwait (PR #146) */
  cf_mutex_t lock;       /* lock order: fd_lock -> inst->lock (PR #146) */
  uint64_t ctl_seq;      /* the last registration stamp handed out */
  epoll_instance_t *live_next; /* the live list the close hook walks */
};

/* eventfd emulated on a host pipe: the counter in software, the pipe for readiness. */
struct eventfd_state {
  uint64_t count;
  int pipe_rd;           /* what dups do not share: each guest fd has its own dup of it */
  int pipe_wr;
  int tokens;            /* bytes sitting in the pipe (one per write since the last read) */
  int refs;              /* guest fds sharing the state */
  cf_mutex_t lock;
};

/* Knote udata: the guest fd (upstream's whole udata) and, above it, the stamp of the
 * registration that made the knote, so pwait can tell an event of a replaced registration. */
#define UDATA_STAMP_SHIFT 8
static inline uint64_t udata_fd(uint64_t udata) { return udata & 0xff; }
static inline uint64_t udata_stamp(uint64_t udata) { return udata >> UDATA_STAMP_SHIFT; }

typedef struct shim shim_t;
typedef struct guest_thread guest_thread_t;

/* Commit points: where an operation's outcome becomes visible to other guest threads. The
 * differential oracle drives its Linux reference model here (inside an oracle section), so
 * both see the same operations in the same order. The copy only announces them; with no
 * observer they cost a test of a NULL pointer. */
typedef enum shim_point {
  SHIM_AT_RESOLVE,  /* a guest fd was resolved for the call (arg: fd, result: 0 or -errno) */
  SHIM_AT_ALLOC,    /* new guest fd(s) installed, or allocation failed (result: fd or -errno) */
  SHIM_AT_CLOSE,    /* close decided under fd_lock (arg: fd, result: 0 or -EBADF) */
  SHIM_AT_DUP,      /* dup/dup2/dup3 decided under fd_lock (result: new fd or -errno) */
  SHIM_AT_CTL,      /* epoll_ctl's outcome decided, before its first kevent change (result:
                       the return value it decided); announced again with the errno when a
                       later kevent change fails and turns a decided 0 into an error */
  SHIM_AT_INSTANCE, /* pwait: the instance lookup failed (result: -errno) */
  SHIM_AT_KEVENT,   /* pwait: kevent returned (result: its return value) */
  SHIM_AT_MERGE,    /* pwait: events merged, inst->lock held (result: number of events) */
  SHIM_AT_IO,       /* read/write done on the host (result: its return value) */
  SHIM_AT_IOCTL,    /* ioctl decided (result: its return value) */
  SHIM_AT_UNPIN,    /* a multi-threaded call let go of its pin on fd's host descriptor (arg:
                       fd), after the host close when it was the last reference */
  SHIM_AT_RETIRED,  /* close or dup2 let go of the slot's reference to the file it removed
                       (arg: fd), after the host close when it was the last */
} shim_point_t;

typedef void (*shim_observer_fn)(void *ctx, guest_thread_t *t, shim_point_t at, int arg,
                                 int result);

struct guest_thread {
  int id;
  shim_t *shim;
  cf_thread_t thread;
  void *op;              /* the observer's record of the call in progress */
  bool in_kevent;        /* blocked (or about to block) in pwait's kevent */
  epoll_instance_t *pwait_inst; /* the instance an in-flight pwait holds */
  epoll_instance_t *ctl_inst;   /* the instance an in-flight ctl holds (its epfd number may
                                   refer to another file by its commit point) */
  int pwait_epfd;
  const ks_kevent_t *pwait_kev; /* what its kevent returned, until the merge consumed it */
  int pwait_nkev;
  bool in_syscall;
};

struct shim {
  ks_kernel_t *host;
  fd_entry_t fd_table[FD_TABLE_SIZE];
  cf_mutex_t fd_lock;
  uint64_t fd_next_generation;
  uint64_t next_ofd_id;
  cf_atomic_t nthreads;  /* live guest threads: thread_is_single_active() == (nthreads == 1) */
  epoll_instance_t *epoll_live;
  int epoll_live_count;
  cf_pool_t inst_pool;   /* checked: a freed instance is poisoned, so a use is reported */
  cf_pool_t efd_pool;
  cf_pool_t lifetime_pool;
  /* Every live fd_lifetime_t, so a checker can tell a knote on a closed slot's still-pinned
   * host descriptor (it goes when the last pin does) from a leaked one. Linked and unlinked
   * with no yield in between (simulated runs only; no stress harness runs this copy). */
  fd_lifetime_t *lifetimes;
  shim_observer_fn observer;
  void *observer_ctx;
};

/* Host-side reference to a guest fd's descriptor for the length of one call (internal.h). */
typedef struct host_fd_ref {
  int fd;
  fd_lifetime_t *lifetime; /* the pin a multi-threaded guest's call holds (PR #324), or NULL */
  guest_thread_t *holder;  /* the pin's: whose call, on which guest fd (for the observer) */
  int guest_fd;
  bool owned;            /* a transient dup that host_fd_ref_close() closes (before PR #324;
                            epoll-73-transient-dup's ident) */
  /* The eventfd counter of the same entry, pinned in the same step: looking it up again
   * later could find another file at the number. */
  eventfd_state_t *efd;
} host_fd_ref_t;

/* ---- world ---------------------------------------------------------------------------- */
/* The host kernel and the pools go with the run (ks_kernel_free, cf_defer): no teardown. */
void shim_init(shim_t *s, ks_kernel_t *host);
static inline void shim_observe(shim_t *s, guest_thread_t *t, shim_point_t at, int arg,
                                int result) {
  if (s->observer) s->observer(s->observer_ctx, t, at, arg, result);
}

/* ---- fd table (fdtable.c) --------------------------------------------------------------- */
bool thread_is_single_active(shim_t *s);
bool fd_snapshot(shim_t *s, int fd, fd_entry_t *out);
int fd_to_host(shim_t *s, int fd);
int host_fd_ref_open(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref);
/* As host_fd_ref_open, but FD_PATH descriptors (no I/O) fail with EBADF. */
int host_fd_ref_open_io(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref);
void host_fd_ref_close(shim_t *s, host_fd_ref_t *ref);
/* host_fd_ref_open as it was before PR #324: a transient host dup when multi-threaded. */
int host_fd_ref_open_dup(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref);
/* Pin fd_table[fd]'s host descriptor into *ref for t's call; fd_lock held, the slot open.
 * spare: a lifetime allocated outside the lock for a first borrow, or NULL (allocate here). */
void host_fd_ref_pin_locked(shim_t *s, guest_thread_t *t, int fd, host_fd_ref_t *ref,
                            fd_lifetime_t **spare);
void fd_lifetime_release(shim_t *s, fd_lifetime_t *lt);
/* Allocate the lowest free slot (fd_alloc_dir: type, host fd, dir and flags published in one
 * critical section). Returns the guest fd or -EMFILE. */
int fd_alloc(shim_t *s, guest_thread_t *t, int type, int host_fd, int linux_flags,
             epoll_instance_t *dir, eventfd_state_t *efd);
/* Both ends of a pipe or socketpair at the two lowest free slots, in one critical section. */
int fd_alloc_pair(shim_t *s, guest_thread_t *t, const fd_entry_t tmpl[2], int fds[2]);
void fd_cleanup_entry(shim_t *s, const fd_entry_t *snap);

/* ---- guest syscalls ---------------------------------------------------------------------- */
int sys_close(shim_t *s, guest_thread_t *t, int fd);
int sys_dup(shim_t *s, guest_thread_t *t, int oldfd);
int sys_dup3(shim_t *s, guest_thread_t *t, int oldfd, int newfd, int flags, bool dup2);
int sys_eventfd2(shim_t *s, guest_thread_t *t, unsigned initval, int flags);
int sys_pipe2(shim_t *s, guest_thread_t *t, int fds[2], int flags);
int sys_socketpair(shim_t *s, guest_thread_t *t, int fds[2], int flags);
int sys_open_path(shim_t *s, guest_thread_t *t, int flags);
int sys_open_regular(shim_t *s, guest_thread_t *t, int flags);
ssize_t sys_read(shim_t *s, guest_thread_t *t, int fd, void *buf, size_t n);
ssize_t sys_write(shim_t *s, guest_thread_t *t, int fd, const void *buf, size_t n);
int sys_ioctl(shim_t *s, guest_thread_t *t, int fd, unsigned long req, int arg);
/* clone(CLONE_THREAD) and exit: only the thread count matters to the emulation. */
void guest_thread_started(shim_t *s);
void guest_thread_exited(shim_t *s);

/* ---- epoll (poll.c) ------------------------------------------------------------------------ */
typedef struct linux_epoll_event {
  uint32_t events;
  uint64_t data;
} linux_epoll_event_t;

int sys_epoll_create1(shim_t *s, guest_thread_t *t, int flags);
int sys_epoll_ctl(shim_t *s, guest_thread_t *t, int epfd, int op, int fd,
                  const linux_epoll_event_t *ev);
/* timeout in virtual ticks: < 0 forever. */
int sys_epoll_pwait(shim_t *s, guest_thread_t *t, int epfd, linux_epoll_event_t *events,
                    int maxevents, int64_t timeout);
/* The close hook (PR #146): called with fd_lock held when guest fd `fd` stops referring to
 * the description `ofd_id`. */
void epoll_note_fd_closed(shim_t *s, int fd, uint64_t ofd_id);
epoll_instance_t *epoll_instance_acquire(shim_t *s, int epfd);
void epoll_instance_release(shim_t *s, epoll_instance_t *inst);
/* The dup of an epoll fd shares the instance (upstream epoll_dup_fd). */
void epoll_dup_fd(shim_t *s, epoll_instance_t *inst);
void eventfd_dup_fd(shim_t *s, eventfd_state_t *efd);
void eventfd_release(shim_t *s, eventfd_state_t *efd);

#endif
