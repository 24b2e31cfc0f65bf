/* httpz.h: http.zig's NonBlocking worker (karlseguin/http.zig src/worker.zig, epoll path), as
 * of the #120 fix (86a44b6) with the wisp#181 and wisp#184 fixes; each upstream bug comes back
 * behind its toggle at the line where upstream had it (harness/runtime/bugs.def, httpz-* and
 * wisp-*). Names follow upstream: Worker, Conn, HTTPConn, the request / keepalive / active /
 * handover lists, swapList, processHTTPData, processSignal, disown, the thread pool.
 *
 *  worker.c      the loop thread: run, accept, swapList, processSignal, disown, timeouts, the
 *                lists, the EPoll wrapper (epoll fd, signal and shutdown eventfds)
 *  conn.c        HTTPConn and its pool, processHTTPData on the pool threads, the request
 *                handler (server.handleRequest), HTTPConn.disown, writeAll
 *  thread_pool.c the thread pool: a local batch flushed round-robin into per-thread queues,
 *                idle threads stealing from a peer
 *  checker.c     the oracles (spec H1-H6), kept apart from the copy
 *  httpz_world.c one simulated run: the server, the churn clients, the forking app thread
 *
 * The copy runs unchanged on the real kernel and pthreads (harness/real/): `churn serve httpz`
 * and out/stress/httpz-stress. */
#ifndef CF_HTTPZ_H
#define CF_HTTPZ_H

#include <stdbool.h>
#include <stdint.h>

#include "cf.h"
#include "http.h"
#include "kernel.h"
#include "pool.h"

#define HTTPZ_SYSTEM "httpz-worker"

/* ---- the public face: configuration, start, stop ------------------------------------------ */

typedef struct httpz_config {
  int thread_pool_count;        /* pool threads (config.threadPoolCount()) */
  uint32_t max_conn;            /* config.workers.max_conn */
  uint32_t min_conn;            /* HTTPConns preallocated (config.workers.min_conn) */
  uint32_t timeout_request;     /* seconds (config.timeout.request) */
  uint32_t timeout_keepalive;   /* seconds (config.timeout.keepalive) */
  uint32_t max_request_per_connection;
  uint32_t buffer_size;         /* request head buffer: 431 past it (config.request.buffer_size) */
  uint32_t max_body_size;       /* 413 past it (config.request.max_body_size) */
  /* One line per connection event (accept, request, close), or NULL. */
  void (*log)(void *arg, const char *line);
  void *log_arg;
  /* The churn clients of a simulated run, told about connections dropped unanswered; NULL
   * otherwise. */
  http_clients_t *clients;
} httpz_config_t;

void httpz_config_default(httpz_config_t *cfg);

typedef struct Worker Worker;

/* Start a worker on `listener` (bound, listening, non-blocking): its loop thread and its pool
 * threads. cfg must outlive the worker. */
Worker *httpz_server_start(ks_kernel_t *k, const httpz_config_t *cfg, int listener);
/* Worker.stop (the shutdown eventfd), join the loop and pool threads, close every connection,
 * free the worker. */
void httpz_server_stop(Worker *w);
/* Live connections (Worker.len) and requests served so far. */
uint32_t httpz_server_len(const Worker *w);
uint64_t httpz_server_requests(const Worker *w);

/* ---- the copy's state --------------------------------------------------------------------- */

/* HTTPConn.State (worker.zig:1617) */
typedef enum httpz_state { STATE_REQUEST, STATE_KEEPALIVE, STATE_ACTIVE, STATE_HANDOVER } httpz_state_t;
/* HTTPConn.Handover (the websocket upgrade is not modelled: no copy's client speaks it) */
typedef enum httpz_handover { HANDOVER_UNKNOWN, HANDOVER_KEEPALIVE, HANDOVER_CLOSE, HANDOVER_DISOWN } httpz_handover_t;

typedef struct Conn Conn;

typedef struct HTTPConn {
  cf_mutex_t _mut;
  cf_atomic_t _state;           /* httpz_state_t; getState() is an atomic load */
  httpz_handover_t handover;
  int socket;                   /* stream.socket.handle */
  int socket_flags;
  bool _io_mode_blocking;       /* _io_mode */
  uint32_t timeout;             /* seconds, for the request / keepalive lists */
  uint32_t request_count;
  http_req_t req_state;
  uint8_t buf[2048];            /* req_state's buffer */
} HTTPConn;

/* Conn(WSH) (worker.zig:1513). protocol comes first: std.heap.MemoryPool writes its free-list
 * next pointer at offset 0 of a destroyed Conn, so a stale Conn reads that pointer as
 * protocol.http, as in the #120 crash. */
struct Conn {
  union {
    HTTPConn *http;
  } protocol;
  uint8_t protocol_tag;         /* .http; the tag a stale read finds poisoned */
  Conn *next, *prev;
};

typedef struct List {
  Conn *head, *tail;
} List;

typedef struct ConcurrentList {
  List inner;
  cf_mutex_t mut;
} ConcurrentList;

/* HTTPConnPool: preallocated HTTPConns used by the loop thread only (its lock() is a no-op in
 * nonblocking mode); overflow ones from http_mem_pool, really destroyed on release when the
 * array is full. */
typedef struct HTTPConnPool {
  HTTPConn **conns;
  uint32_t len, available;
  cf_zpool_t http_mem_pool;
  cf_mutex_t http_mem_pool_mut;
} HTTPConnPool;

/* The thread pool (thread_pool.zig): a job is (worker, now, conn). */
typedef struct httpz_job {
  Worker *worker;
  uint32_t now;
  Conn *conn;
} httpz_job_t;

#define TP_BATCH_SIZE 16
#define TP_QUEUE_LEN 8
#define TP_MAX_THREADS 4

typedef struct tp_worker {
  size_t tail, head;
  httpz_job_t queue[TP_QUEUE_LEN];
  bool stopped;
  cf_mutex_t mutex;
  cf_cond_t read_cond, write_cond;
  struct tp_worker *peer;
  cf_thread_t thread;
} tp_worker_t;

typedef struct ThreadPool {
  httpz_job_t batch[TP_BATCH_SIZE];
  size_t batch_size;
  unsigned worker_index;
  int nworkers;
  tp_worker_t workers[TP_MAX_THREADS];
} ThreadPool;

/* EPoll(WSH): the loop's epoll fd; data 0 = listener, 1 = signal, 2 = shutdown, else a Conn. */
#define EVENT_LIST_LEN 128
typedef struct EPoll {
  int fd;
  int event_fd;                 /* signal: EPOLLIN|EPOLLET, never drained */
  int close_fd;                 /* shutdown */
  ks_epoll_event_t event_list[EVENT_LIST_LEN];
  /* The harvested batch, modelled explicitly: events [next, count) are not dispatched yet. */
  int count, next;
} EPoll;

struct Worker {
  ks_kernel_t *k;
  const httpz_config_t *cfg;
  int listener;
  EPoll loop;
  uint32_t max_conn, len;
  bool full;
  ThreadPool thread_pool;
  List request_list;
  ConcurrentList keepalive_list, active_list, handover_list;
  HTTPConnPool http_conn_pool;
  cf_zpool_t conn_mem_pool;
  uint32_t timeout_request, timeout_keepalive;
  cf_atomic_t request_total;
  cf_thread_t loop_thread;
  /* ready_sem: run() posts it once the loop is started and the listener monitored. */
  cf_mutex_t ready_mu;
  cf_cond_t ready_cv;
  bool ready;
  /* Disowned sockets waiting for their new owner (the app's streaming thread). */
  cf_mutex_t handoff_mu;
  cf_cond_t handoff_cv;
  int handoff_fd[16];
  char handoff_body[16][HTTP_URL_MAX + 64];
  int handoff_count;
  bool stopping;
  cf_thread_t handoff_thread;
};

/* Virtual time: timestamp(io) in seconds (one second = 1000 ticks; on the real backend a
 * tick is a millisecond). */
#define HTTPZ_TICKS_PER_SECOND 1000
static inline uint32_t httpz_timestamp(void) { return (uint32_t)(cf_now() / HTTPZ_TICKS_PER_SECOND); }

/* httpz_world.c: one simulated run (the fuzz target's main). */
void httpz_world_main(void *arg);
/* The server process's descriptors (listener, epoll, eventfds, accepted sockets), as the
 * bitmap ks_fork takes: what a child forked by the app holds. */
void httpz_server_fds(Worker *w, uint8_t *set);

/* worker.c */
void httpz_list_insert(List *l, Conn *c);
void httpz_list_remove(List *l, Conn *c);
void httpz_swapList(Worker *w, Conn *conn, httpz_state_t new_state);
void httpz_loop_signal(Worker *w);
void httpz_loop_remove(Worker *w, Conn *conn);
static inline httpz_state_t httpz_getState(HTTPConn *h) {
  return (httpz_state_t)cf_atomic_load(&h->_state);
}
/* A connection event: a trace note at its own site (for explain and failure reports) and, when
 * the server was given a log, one line there. */
void httpz_log_line(Worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define httpz_event(w, label, ...)                  \
  do {                                              \
    cf_note(CF_SITE(label), __VA_ARGS__);           \
    if ((w)->cfg->log) httpz_log_line((w), __VA_ARGS__); \
  } while (0)

/* conn.c */
void httpz_conn_pool_init(Worker *w);
HTTPConn *httpz_conn_pool_acquire(Worker *w);
void httpz_conn_pool_release(Worker *w, HTTPConn *h);
void httpz_conn_pool_deinit(Worker *w);
void httpz_conn_close(Worker *w, Conn *conn);       /* Conn.close(): close the socket */
void httpz_processData(Worker *w, uint32_t now, Conn *conn);
void httpz_requestError(Worker *w, HTTPConn *h);
/* The app's streaming thread, new owner of sockets its handler disowned (res.disown()). */
void httpz_handoff_start(Worker *w);
void httpz_handoff_stop(Worker *w);

/* thread_pool.c */
void httpz_thread_pool_init(Worker *w, int count);
void httpz_thread_pool_spawn(Worker *w, httpz_job_t job);
void httpz_thread_pool_flush(Worker *w, size_t batch_size);
void httpz_thread_pool_stop(Worker *w);

/* checker.c: the oracles (spec §1.9), called at the copy's commit points. */
void chk_httpz_init(Worker *w);
void chk_httpz_created(Worker *w, Conn *c);
void chk_httpz_destroying(Worker *w, Conn *c);      /* H2, H4: before conn_mem_pool.destroy */
void chk_httpz_dispatch(Worker *w, Conn *c);        /* H1: a .recv names a live Conn */
void chk_httpz_lists(Worker *w, const char *where); /* H3, H5: on the loop thread */
void chk_httpz_fd_opened(Worker *w, int fd);       /* accept4 gave the copy this number */
void chk_httpz_closing(Worker *w, int fd);          /* H4: no double close */
void chk_httpz_handed_over(Worker *w, Conn *c);     /* H6: opened on signal */
void chk_httpz_signal_processed(Worker *w, Conn *c);/* H6: closed by processSignal */
void chk_httpz_quiescent(Worker *w);                /* leaks at the end of a run */
bool chk_httpz_holds_fd(Worker *w, int fd);         /* a socket the copy accepted, not closed */

#endif
