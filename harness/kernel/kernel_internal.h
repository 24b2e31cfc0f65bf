/* kernel_internal.h: private declarations shared by the simulated kernel's files.
 *
 * The model follows the shape of the Linux VFS because the epoll semantics we reproduce
 * depend on it:
 *  - A file (ks_file_t) is an open file description: type, refcount, status flags, a poll
 *    function returning the current Linux readiness mask, a wait queue of blocked fibers and
 *    a list of watchers. The fd table maps numbers to files; dup shares the file.
 *  - A watcher is an epoll item, a kqueue knote or the wait entry of a blocked poll(2) call,
 *    hooked on a file. Every state change of the file "wakes" it with a key (a poll mask, 0
 *    meaning "anything may have changed"), exactly where Linux calls wake_up with a poll key.
 *    The key decides which epoll items join their ready list, as in Linux's ep_poll_callback,
 *    and which poll calls scan again, as in its pollwake. Knotes ignore the key and
 *    re-evaluate their filter, which is what BSD's KNOTE does; kqueue-only state changes that
 *    Linux does not wake for (a partial read changing the byte count) reach knotes alone
 *    through ks_kq_touch().
 *  - Watchers are kept newest first, because Linux adds poll wait entries at the head of the
 *    wait queue and wakes them in that order; two items of one epoll on the same file (an fd
 *    and its dup) therefore join the ready list newest first.
 * Files are allocated as "subclasses": each type's struct starts with a ks_file_t. */
#ifndef KS_KERNEL_INTERNAL_H
#define KS_KERNEL_INTERNAL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cf.h"
#include "tsan.h"
#include "kernel.h"

/* ---- intrusive doubly linked lists ---------------------------------------------------- */

typedef struct ks_list {
  struct ks_list *prev, *next;
} ks_list_t;

#define KS_CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void ks_list_init(ks_list_t *l) { l->prev = l->next = l; }
static inline bool ks_list_empty(const ks_list_t *l) { return l->next == l; }
/* Insert n right after pos. */
static inline void ks_list_insert_after(ks_list_t *pos, ks_list_t *n) {
  n->prev = pos;
  n->next = pos->next;
  pos->next->prev = n;
  pos->next = n;
}
static inline void ks_list_push_front(ks_list_t *head, ks_list_t *n) {
  ks_list_insert_after(head, n);
}
static inline void ks_list_push_back(ks_list_t *head, ks_list_t *n) {
  ks_list_insert_after(head->prev, n);
}
/* Unlink n and leave it self-linked, so "is it on a list" is !ks_list_empty(n). */
static inline void ks_list_del(ks_list_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  ks_list_init(n);
}

/* ---- files ---------------------------------------------------------------------------- */

typedef enum ks_ftype {
  KS_FT_PIPE,
  KS_FT_EVENTFD,
  KS_FT_SOCKET,
  KS_FT_EPOLL,
  KS_FT_KQUEUE,
  KS_FT_PATH,
  KS_FT_REGULAR
} ks_ftype_t;

typedef struct ks_file ks_file_t;
typedef struct ks_watch ks_watch_t;

typedef struct ks_file_ops {
  ks_ftype_t type;
  /* Current readiness as a Linux poll mask. NULL: the file does not support polling, so
   * epoll_ctl refuses it with EPERM and poll(2) reports it always ready (DEFAULT_POLLMASK). */
  uint32_t (*poll)(ks_kernel_t *k, ks_file_t *f);
  /* I/O; NULL makes read/write fail with EINVAL. msg_flags carries MSG_DONTWAIT / MSG_PEEK
   * from recv/send and is 0 for read/write. */
  ssize_t (*read)(ks_kernel_t *k, ks_file_t *f, void *buf, size_t n, int msg_flags);
  ssize_t (*write)(ks_kernel_t *k, ks_file_t *f, const void *buf, size_t n, int msg_flags);
  /* BSD filter evaluation for a knote: returns 1 when the filter fires, 0 when not, -errno
   * when the filter is not valid for this file. Fills ev->data, and EV_EOF in ev->flags and
   * an error in ev->fflags where BSD reports them. NULL: no kqueue support (EINVAL). */
  int (*kq_event)(ks_kernel_t *k, ks_file_t *f, int16_t filter, ks_kevent_t *ev);
  /* The last reference is gone: watchers are already detached; free type-specific state
   * (not the file itself) and notify whatever was connected to it. */
  void (*release)(ks_kernel_t *k, ks_file_t *f);
} ks_file_ops_t;

struct ks_file {
  ks_list_t link;            /* in k->files, for teardown */
  int64_t id;                /* never reused within a kernel */
  const ks_file_ops_t *ops;
  int refs;                  /* fd table entries + calls in flight + kernel-internal owners */
  int flags;                 /* O_ACCMODE bits, O_NONBLOCK, O_PATH */
  cf_waitq_t waitq;          /* fibers blocked on this file */
  ks_list_t watchers;        /* ks_watch_t, newest first */
};

struct ks_watch {
  ks_list_t link;            /* in file->watchers */
  ks_file_t *file;
  bool knote;                /* kqueue knote (sees every state change) or epoll item */
  int16_t kq_filter;         /* a knote's filter (ks_kq_touch_read touches read ones only) */
  void (*notify)(ks_kernel_t *k, ks_watch_t *w, uint32_t key);
  /* Detach from the file and from the owner, and free. Called when the file is released. */
  void (*drop)(ks_kernel_t *k, ks_watch_t *w);
};

static inline bool ks_readable(const ks_file_t *f) {
  return (f->flags & O_ACCMODE) == O_RDONLY || (f->flags & O_ACCMODE) == O_RDWR;
}
static inline bool ks_writable(const ks_file_t *f) {
  return (f->flags & O_ACCMODE) == O_WRONLY || (f->flags & O_ACCMODE) == O_RDWR;
}

/* ---- the kernel ------------------------------------------------------------------------- */

typedef struct ks_fdent {
  ks_file_t *file;
  bool cloexec;
} ks_fdent_t;

typedef struct ks_chunk ks_chunk_t;

struct ks_kernel {
  ks_config_t cfg;
  ks_chunk_t *arena;         /* where its objects live (arena.c) */
  ks_fdent_t fdt[KS_NFD];
  ks_list_t files;           /* every live file */
  ks_list_t kqueues;         /* every live kqueue (close drops knotes by number in all) */
  ks_list_t bound;           /* sockets bound to a port */
  cf_waitq_t connect_waitq;  /* connect() waiting for room in a full accept queue */
  ks_list_t forks;           /* children between fork and exec (ks_fork) */
  ks_list_t pollers;         /* wait state of poll(2) calls blocked right now (poll.c) */
  uint64_t epoll_loop_gen;   /* epoll.c: the current nested-epoll loop check (loop_check_gen) */
  int64_t next_id;
};

/* arena.c: a zeroed object of `size` bytes that lives as long as the kernel at most; ks_free
 * poisons it (under ASan) and it is never handed out again; ks_arena_release gives the
 * kernel's chunks back to the cache once every object is gone. */
void *ks_alloc(ks_kernel_t *k, size_t size);
void ks_free(ks_kernel_t *k, void *p);
void ks_arena_release(ks_kernel_t *k);

/* fd.c */
/* A new file of `size` bytes (a type struct starting with ks_file_t), zeroed, refs = 1. */
ks_file_t *ks_file_new(ks_kernel_t *k, const ks_file_ops_t *ops, size_t size, int flags);
/* Put f at the lowest free number, taking over one reference. -EMFILE when the table is full
 * (the caller still owns its reference then). */
int ks_fd_install(ks_kernel_t *k, ks_file_t *f, bool cloexec);
/* Install two files at the two lowest free numbers, or neither (-EMFILE). */
int ks_fd_install2(ks_kernel_t *k, ks_file_t *f0, ks_file_t *f1, bool cloexec, int fds[2]);
/* The file at fd with a reference taken, or NULL. O_PATH files count only with allow_path, as
 * Linux's fdget() skips them and fdget_raw() does not. */
ks_file_t *ks_fget(ks_kernel_t *k, int fd, bool allow_path);
void ks_fget_ref(ks_file_t *f);
void ks_fput(ks_kernel_t *k, ks_file_t *f);
/* A Linux wake_up with poll key `key` on f: every watcher (newest first), then blocked fibers. */
void ks_wake(ks_kernel_t *k, ks_file_t *f, uint32_t key);
/* A state change only kqueue observes: re-evaluate f's knotes. */
void ks_kq_touch(ks_kernel_t *k, ks_file_t *f);
/* The same for f's EVFILT_READ knotes only: a change of f's receive side (BSD knotes hang on
 * the socket buffer they watch: read filters on so_rcv, write filters on so_snd). */
void ks_kq_touch_read(ks_kernel_t *k, ks_file_t *f);
/* True when an operation that cannot proceed must fail with EAGAIN instead of blocking:
 * non-blocking file or call, or not inside a simulated run. */
bool ks_nonblock(const ks_file_t *f, int msg_flags);
/* Block the calling fiber on f's wait queue (timeout in ticks, < 0 forever). */
bool ks_block(ks_file_t *f, int64_t timeout, const cf_site_t *site);

/* kqueue.c: descriptor number fd was closed; drop every knote with that ident. */
void ks_kqueue_fd_closed(ks_kernel_t *k, int fd);
/* poll.c: free the wait state of poll calls whose fibers were abandoned blocked, unhooking
 * their watchers and dropping the file references they held. */
void ks_poll_teardown(ks_kernel_t *k);

/* ---- sockets (socket.c, listen.c) --------------------------------------------------------- */

#define KS_SHUT_RCV 1
#define KS_SHUT_SEND 2
#define KS_SHUT_BOTH 3

typedef enum ks_sock_state { KS_SS_UNCONNECTED, KS_SS_LISTENING, KS_SS_CONNECTED } ks_sock_state_t;

typedef struct ks_sock ks_sock_t;
struct ks_sock {
  ks_file_t file;
  ks_sock_state_t state;
  int shut;                  /* KS_SHUT_* bits of this end */
  int err;                   /* pending error (ECONNRESET), reported by the next read */
  ks_sock_t *peer;           /* the other end while it exists */
  ks_list_t rcvq;            /* ks_seg_t sent to this end, oldest first */
  size_t rcv_bytes;
  /* Binding and listening. */
  int port;                  /* local address: the bound port (the listener's when accepted) */
  bool bound;                /* owns `port` (is on k->bound); accepted sockets only share it */
  ks_list_t bound_link;      /* in k->bound */
  int backlog;
  ks_list_t acceptq;         /* embryos (connected, not yet accepted), oldest first */
  int acceptq_len;
  /* As an embryo: the listener whose queue holds it (and one reference to it). */
  ks_sock_t *listener;
  ks_list_t accept_link;
};

extern const ks_file_ops_t ks_sock_ops;
/* A new unconnected socket file (refs = 1); flags holds O_NONBLOCK. */
ks_sock_t *ks_sock_new(ks_kernel_t *k, int flags);
/* Connect two sockets to each other and wake the client (state change). */
void ks_sock_connect_pair(ks_sock_t *a, ks_sock_t *b);
/* The socket behind fd with a reference taken, or NULL with *err = -EBADF / -ENOTSOCK. */
ks_sock_t *ks_sock_get(ks_kernel_t *k, int fd, int *err);
/* listen.c: unbind and flush the accept queue of a socket being released. */
void ks_sock_release_listener(ks_kernel_t *k, ks_sock_t *s);


/* Every simulated syscall starts here: it is a yield point of the simulation. In TSan builds
 * (see runtime/tsan.h) the kernel's own memory traffic inside the call (buffers, malloc) is
 * hidden from TSan, and syscalls are ordered as if one kernel lock guarded them, so data passed
 * through the kernel carries happens-before as it does on a real kernel. */
#ifdef CF_TSAN
static inline ks_kernel_t *ks_syscall_enter(ks_kernel_t *k) {
  cf_sync_acquire(k);
  cf_tsan_ignore_begin();
  return k;
}
static inline void ks_syscall_exit(ks_kernel_t **k) {
  cf_tsan_ignore_end();
  cf_sync_release(*k);
}
#define KS_SYSCALL(k, name)                                                                \
  cf_yield_at(CF_SITE("sys." name));                                                       \
  __attribute__((cleanup(ks_syscall_exit), unused)) ks_kernel_t *ks_syscall_scope_ =       \
      ks_syscall_enter(k)
#else
#define KS_SYSCALL(k, name) cf_yield_at(CF_SITE("sys." name))
#endif

#endif /* KS_KERNEL_INTERNAL_H */
