/* test_kernel_sim.c: the simulated kernel inside simulated runs: blocking calls park the
 * calling fiber until a state change wakes it (or its timeout passes in virtual time), and
 * faults are drawn from the input only for the classes a target enabled. */
#include <poll.h>

#include "cf.h"
#include "kernel.h"
#include "run.h"
#include "task.h"

/* Results of the current run, written by its fibers, checked by the test after cf_run. */
static struct {
  ks_kernel_t *k;
  int fds[2];
  long r[6];
  int64_t t[6];
  ks_epoll_event_t ev[4];
} S;

static void free_kernel(void *k) { ks_kernel_free(k); }

static void new_kernel(void) {
  memset(&S, 0, sizeof S);
  S.k = ks_kernel_new(NULL);
  cf_defer(free_kernel, S.k);
}

static int run(void (*main_fn)(void *), const uint8_t *in, size_t n) {
  cf_target_t t = {.name = "kernel", .system = "kernel", .main = main_fn};
  t.options.capture = true;
  cf_result_t r;
  int rc = cf_run(&t, in, n, &r);
  if (rc) fprintf(stderr, "  run failed: %s: %s: %s\n", r.oracle, r.site, r.detail);
  return rc;
}

/* ---- blocking ------------------------------------------------------------------------------ */

static void pipe_reader(void *arg) {
  (void)arg;
  char buf[8];
  S.r[0] = ks_read(S.k, S.fds[0], buf, sizeof buf);
  S.t[0] = cf_now();
  S.r[1] = ks_read(S.k, S.fds[0], buf, sizeof buf);
  S.t[1] = cf_now();
}

static void pipe_main(void *arg) {
  (void)arg;
  new_kernel();
  ks_pipe2(S.k, S.fds, 0);
  cf_thread_t t;
  cf_thread_spawn(&t, pipe_reader, NULL, "reader");
  cf_sleep(10);
  ks_write(S.k, S.fds[1], "abc", 3);
  cf_sleep(10);
  ks_close(S.k, S.fds[1]); /* EOF wakes the second read */
  cf_thread_join(&t);
}

TEST_IMPL(kernel_sim_blocking_pipe_read) {
  ASSERT_EQ(run(pipe_main, NULL, 0), 0);
  ASSERT_EQ(S.r[0], 3);
  ASSERT_EQ(S.t[0], 10);
  ASSERT_EQ(S.r[1], 0);
  ASSERT_EQ(S.t[1], 20);
  return 0;
}

static void efd_writer(void *arg) {
  (void)arg;
  uint64_t one = 1;
  cf_sleep(5);
  ks_write(S.k, S.fds[1], &one, 8);
}

static void epoll_main(void *arg) {
  (void)arg;
  new_kernel();
  int ep = ks_epoll_create1(S.k, 0);
  S.fds[1] = ks_eventfd(S.k, 0, EFD_NONBLOCK);
  ks_epoll_event_t ev = {EPOLLIN, 9};
  ks_epoll_ctl(S.k, ep, EPOLL_CTL_ADD, S.fds[1], &ev);
  S.r[0] = ks_epoll_wait(S.k, ep, S.ev, 4, 25); /* nothing happens: times out */
  S.t[0] = cf_now();
  cf_thread_t t;
  cf_thread_spawn(&t, efd_writer, NULL, "writer");
  S.r[1] = ks_epoll_wait(S.k, ep, S.ev, 4, -1);
  S.t[1] = cf_now();
  cf_thread_join(&t);
}

TEST_IMPL(kernel_sim_epoll_wait_blocks_and_times_out) {
  ASSERT_EQ(run(epoll_main, NULL, 0), 0);
  ASSERT_EQ(S.r[0], 0);
  ASSERT_EQ(S.t[0], 25);
  ASSERT_EQ(S.r[1], 1);
  ASSERT_EQ(S.t[1], 30);
  ASSERT_U64_EQ(S.ev[0].data, 9);
  return 0;
}

static void kevent_main(void *arg) {
  (void)arg;
  new_kernel();
  int kq = ks_kqueue(S.k);
  ks_pipe2(S.k, S.fds, O_NONBLOCK);
  ks_kevent_t ch = {(uintptr_t)S.fds[0], KS_EVFILT_READ, KS_EV_ADD, 0, 0, 77}, out[2];
  S.r[0] = ks_kevent(S.k, kq, &ch, 1, out, 2, 7);
  S.t[0] = cf_now();
  cf_thread_t t;
  cf_thread_spawn(&t, efd_writer, NULL, "writer"); /* writes 8 bytes into the pipe at +5 */
  S.r[1] = ks_kevent(S.k, kq, NULL, 0, out, 2, -1);
  S.t[1] = cf_now();
  S.r[2] = (long)out[0].udata;
  S.r[3] = (long)out[0].data;
  cf_thread_join(&t);
}

TEST_IMPL(kernel_sim_kevent_blocks_and_times_out) {
  ASSERT_EQ(run(kevent_main, NULL, 0), 0);
  ASSERT_EQ(S.r[0], 0);
  ASSERT_EQ(S.t[0], 7);
  ASSERT_EQ(S.r[1], 1);
  ASSERT_EQ(S.t[1], 12);
  ASSERT_EQ(S.r[2], 77);
  ASSERT_EQ(S.r[3], 8);
  return 0;
}

/* Accepts one connection and reads once; the first server (arg NULL) records when. */
static void server(void *arg) {
  char buf[8];
  int a = ks_accept4(S.k, S.fds[0], 0); /* blocks until a client connects */
  int64_t accepted = cf_now();
  long got = ks_recv(S.k, a, buf, sizeof buf, 0); /* blocks until data or EOF */
  if (!arg) {
    S.r[0] = a;
    S.t[0] = accepted;
    S.r[1] = got;
    S.t[1] = cf_now();
  }
  ks_close(S.k, a);
}

static void accept_main(void *arg) {
  (void)arg;
  new_kernel();
  int l = ks_socket(S.k, AF_UNIX, SOCK_STREAM, 0);
  ks_bind(S.k, l, 5);
  ks_listen(S.k, l, 0);
  S.fds[0] = l;
  cf_thread_t t;
  cf_thread_spawn(&t, server, NULL, "server");
  cf_sleep(3);
  int c = ks_socket(S.k, AF_UNIX, SOCK_STREAM, 0);
  S.r[2] = ks_connect(S.k, c, 5);
  cf_sleep(4);
  ks_send(S.k, c, "hey", 3, 0);
  char buf[4];
  S.r[3] = ks_recv(S.k, c, buf, sizeof buf, 0); /* EOF once the server closes */
  cf_thread_join(&t);
  /* A full backlog makes a blocking connect wait for an accept. */
  int c2 = ks_socket(S.k, AF_UNIX, SOCK_STREAM, 0), c3 = ks_socket(S.k, AF_UNIX, SOCK_STREAM, 0);
  ks_connect(S.k, c2, 5);
  cf_thread_spawn(&t, server, &t, "server2");
  S.r[4] = ks_connect(S.k, c3, 5);
  S.t[4] = cf_now();
  ks_close(S.k, c2);
  cf_thread_join(&t);
}

TEST_IMPL(kernel_sim_blocking_accept_recv_connect) {
  ASSERT_EQ(run(accept_main, NULL, 0), 0);
  ASSERT_TRUE(S.r[0] >= 0);
  ASSERT_EQ(S.t[0], 3);
  ASSERT_EQ(S.r[1], 3);
  ASSERT_EQ(S.t[1], 7);
  ASSERT_EQ(S.r[2], 0);
  ASSERT_EQ(S.r[3], 0);
  ASSERT_EQ(S.r[4], 0);
  return 0;
}

/* A fiber still blocked in the kernel when the run ends: the kernel is freed under it. */
static void stuck_reader(void *arg) {
  (void)arg;
  char c;
  ks_read(S.k, S.fds[0], &c, 1);
}

static void stuck_main(void *arg) {
  (void)arg;
  new_kernel();
  ks_pipe2(S.k, S.fds, 0);
  cf_thread_t t;
  cf_thread_spawn(&t, stuck_reader, NULL, "reader");
  cf_sleep(1);
  ks_close(S.k, S.fds[0]); /* the blocked read still holds the read end */
}

TEST_IMPL(kernel_sim_blocked_call_at_end_of_run) {
  ASSERT_EQ(run(stuck_main, NULL, 0), 0);
  return 0;
}

/* ---- poll ---------------------------------------------------------------------------------- */

static void sock_writer(void *arg) {
  (void)arg;
  cf_sleep(10);
  ks_write(S.k, S.fds[1], "hi", 2);
}

static void poll_main(void *arg) {
  (void)arg;
  new_kernel();
  ks_socketpair(S.k, AF_UNIX, SOCK_STREAM, 0, S.fds);
  cf_thread_t t;
  cf_thread_spawn(&t, sock_writer, NULL, "writer");
  /* Writable already, but only POLLIN is asked: blocks until the peer writes. */
  struct pollfd p[2] = {{S.fds[0], POLLIN, 0}, {-1, POLLIN, 0x55}};
  S.r[0] = ks_poll(S.k, p, 2, -1);
  S.t[0] = cf_now();
  S.r[1] = p[0].revents | p[1].revents << 16;
  cf_thread_join(&t);
  char buf[4];
  ks_read(S.k, S.fds[0], buf, sizeof buf);
  /* Nothing comes: the timeout, in virtual ticks from the call. */
  S.t[2] = cf_now();
  p[0].events = POLLIN | POLLPRI;
  S.r[2] = ks_poll(S.k, p, 1, 25);
  S.t[3] = cf_now();
  S.r[3] = p[0].revents;
  S.r[4] = ks_poll(S.k, NULL, 0, 7); /* nothing to poll: a plain sleep */
  S.t[4] = cf_now();
  S.r[5] = ks_poll(S.k, p, 1, 0); /* timeout 0 never waits */
  S.t[5] = cf_now();
}

TEST_IMPL(kernel_sim_poll_blocks_and_times_out) {
  ASSERT_EQ(run(poll_main, NULL, 0), 0);
  ASSERT_EQ(S.r[0], 1);
  ASSERT_EQ(S.t[0], 10);
  ASSERT_EQ(S.r[1], POLLIN); /* the skipped entry's revents cleared */
  ASSERT_EQ(S.r[2], 0);
  ASSERT_EQ(S.t[3] - S.t[2], 25);
  ASSERT_EQ(S.r[3], 0);
  ASSERT_EQ(S.r[4], 0);
  ASSERT_EQ(S.t[4], S.t[3] + 7);
  ASSERT_EQ(S.r[5], 0);
  ASSERT_EQ(S.t[5], S.t[4]);
  return 0;
}

static void peer_closer(void *arg) {
  (void)arg;
  cf_sleep(5);
  ks_shutdown(S.k, S.fds[1], SHUT_WR);
  cf_sleep(5);
  ks_close(S.k, S.fds[1]);
}

static void poll_hup_main(void *arg) {
  (void)arg;
  new_kernel();
  ks_socketpair(S.k, AF_UNIX, SOCK_STREAM, 0, S.fds);
  cf_thread_t t;
  cf_thread_spawn(&t, peer_closer, NULL, "closer");
  /* The peer's SHUT_WR: nothing more can arrive (POLLRDHUP, and POLLIN for the EOF). */
  struct pollfd p[2] = {{S.fds[0], POLLRDHUP, 0}};
  S.r[0] = ks_poll(S.k, p, 1, -1);
  S.t[0] = cf_now();
  S.r[1] = p[0].revents;
  /* Asking for nothing (twice, through one number) still reports the hang-up of the close. */
  p[0] = (struct pollfd){S.fds[0], 0, 0};
  p[1] = (struct pollfd){S.fds[0], POLLPRI, 0};
  S.r[2] = ks_poll(S.k, p, 2, -1);
  S.t[2] = cf_now();
  S.r[3] = p[0].revents;
  S.r[4] = p[1].revents;
  p[0].events = POLLIN | POLLOUT | POLLRDHUP;
  S.r[5] = ks_poll(S.k, p, 1, 0) == 1 ? p[0].revents : -1;
  cf_thread_join(&t);
}

TEST_IMPL(kernel_sim_poll_wakes_on_peer_shutdown_and_close) {
  ASSERT_EQ(run(poll_hup_main, NULL, 0), 0);
  ASSERT_EQ(S.r[0], 1);
  ASSERT_EQ(S.t[0], 5);
  ASSERT_EQ(S.r[1], POLLRDHUP);
  ASSERT_EQ(S.r[2], 2);
  ASSERT_EQ(S.t[2], 10);
  ASSERT_EQ(S.r[3], POLLHUP);
  ASSERT_EQ(S.r[4], POLLHUP);
  /* As Linux's AF_UNIX: a socket whose peer is gone is still "writable". */
  ASSERT_EQ(S.r[5], POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  return 0;
}

/* An epoll file is readable while an item is ready. Linux wakes pollers of an epoll with key
 * POLLIN only, so a poll that asked for POLLRDNORM alone sleeps through the wake-up and sees
 * the readiness at its timeout (measured on Linux 6.18 too). */
static void poll_epoll_main(void *arg) {
  (void)arg;
  new_kernel();
  int ep = ks_epoll_create1(S.k, 0);
  S.fds[1] = ks_eventfd(S.k, 0, EFD_NONBLOCK);
  ks_epoll_event_t ev = {EPOLLIN, 1};
  ks_epoll_ctl(S.k, ep, EPOLL_CTL_ADD, S.fds[1], &ev);
  cf_thread_t t;
  cf_thread_spawn(&t, efd_writer, NULL, "writer");
  struct pollfd p = {ep, POLLIN | POLLOUT, 0};
  S.r[0] = ks_poll(S.k, &p, 1, -1);
  S.t[0] = cf_now();
  S.r[1] = p.revents;
  cf_thread_join(&t);
  uint64_t v;
  ks_read(S.k, S.fds[1], &v, 8); /* no longer ready: polling the epoll prunes its item */
  cf_thread_spawn(&t, efd_writer, NULL, "writer");
  p.events = POLLRDNORM;
  S.r[2] = ks_poll(S.k, &p, 1, 50);
  S.t[2] = cf_now();
  S.r[3] = p.revents;
  cf_thread_join(&t);
}

TEST_IMPL(kernel_sim_poll_epoll_file) {
  ASSERT_EQ(run(poll_epoll_main, NULL, 0), 0);
  ASSERT_EQ(S.r[0], 1);
  ASSERT_EQ(S.t[0], 5);
  ASSERT_EQ(S.r[1], POLLIN);
  ASSERT_EQ(S.r[2], 1);
  ASSERT_EQ(S.t[2], 55);
  ASSERT_EQ(S.r[3], POLLRDNORM);
  return 0;
}

/* A blocked poll holds the files it waits on, as Linux's poll table does: closing a number
 * neither wakes it nor releases the file, so a write to the pipe still succeeds, and its
 * wake-up makes the poll scan again and find the number gone (POLLNVAL). */
static void number_closer(void *arg) {
  (void)arg;
  cf_sleep(5);
  ks_close(S.k, S.fds[0]);
  cf_sleep(2);
  S.r[0] = ks_write(S.k, S.fds[1], "x", 1);
}

static void poll_holds_main(void *arg) {
  (void)arg;
  new_kernel();
  ks_pipe2(S.k, S.fds, O_NONBLOCK);
  int efd = ks_eventfd(S.k, 0, 0);
  cf_thread_t t;
  cf_thread_spawn(&t, number_closer, NULL, "closer");
  struct pollfd p[2] = {{S.fds[0], POLLIN, 0}, {efd, POLLIN, 0}};
  S.r[1] = ks_poll(S.k, p, 2, 100);
  S.t[1] = cf_now();
  S.r[2] = p[0].revents;
  S.r[3] = p[1].revents;
  cf_thread_join(&t);
  S.r[4] = ks_write(S.k, S.fds[1], "x", 1); /* the poll let go of the read end */
}

TEST_IMPL(kernel_sim_poll_holds_files_while_blocked) {
  ASSERT_EQ(run(poll_holds_main, NULL, 0), 0);
  ASSERT_EQ(S.r[0], 1);
  ASSERT_EQ(S.r[1], 1);
  ASSERT_EQ(S.t[1], 7);
  ASSERT_EQ(S.r[2], POLLNVAL);
  ASSERT_EQ(S.r[3], 0);
  ASSERT_EQ(S.r[4], -EPIPE);
  return 0;
}

/* Polls still blocked when the run ends, one holding the only reference to files whose
 * numbers were closed: the kernel's teardown frees it all (LSan reports any leak). */
static void stuck_poller(void *arg) {
  struct pollfd *p = arg;
  ks_poll(S.k, p, p[0].fd < 0 ? 0 : 4, -1);
}

static void poll_stuck_main(void *arg) {
  (void)arg;
  new_kernel();
  static struct pollfd p[4], none[1] = {{-1, 0, 0}};
  int sv[2], ep = ks_epoll_create1(S.k, 0);
  ks_pipe2(S.k, S.fds, 0);
  ks_socketpair(S.k, AF_UNIX, SOCK_STREAM, 0, sv);
  ks_epoll_event_t ev = {EPOLLIN, 1};
  ks_epoll_ctl(S.k, ep, EPOLL_CTL_ADD, sv[0], &ev);
  p[0] = (struct pollfd){S.fds[0], POLLIN, 0};
  p[1] = (struct pollfd){sv[0], POLLIN, 0};
  p[2] = (struct pollfd){ep, POLLIN, 0};
  p[3] = (struct pollfd){S.fds[0], POLLPRI, 0};
  cf_thread_t t1, t2;
  cf_thread_spawn(&t1, stuck_poller, p, "poller");
  cf_thread_spawn(&t2, stuck_poller, none, "sleeper");
  cf_sleep(1);
  ks_close(S.k, S.fds[0]);
  ks_close(S.k, sv[0]);
  ks_close(S.k, ep);
}

/* The bytes the sanitizer's allocator holds; absent without ASan or TSan. LSan alone would
 * miss a leaked poller: the abandoned fiber's pooled stack still points at it. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

TEST_IMPL(kernel_sim_poll_abandoned_at_end_of_run) {
  ASSERT_EQ(run(poll_stuck_main, NULL, 0), 0); /* the first run sets up the runtime's pools */
  if (!__sanitizer_get_current_allocated_bytes) return 0;
  size_t before = __sanitizer_get_current_allocated_bytes();
  ASSERT_EQ(run(poll_stuck_main, NULL, 0), 0);
  ASSERT_EQ(__sanitizer_get_current_allocated_bytes(), before);
  return 0;
}

/* ---- faults -------------------------------------------------------------------------------- */

/* Header 0 (direct scheduling), then bytes that make every fault draw fire. */
static uint8_t all_fire[256];
static void init_all_fire(void) {
  memset(all_fire, 0xff, sizeof all_fire);
  all_fire[0] = 0;
}

static int fault_class;

static void fault_main(void *arg) {
  (void)arg;
  new_kernel();
  char buf[100] = {0};
  int sv[2], ep = ks_epoll_create1(S.k, 0);
  ks_socketpair(S.k, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
  ks_epoll_event_t ev = {EPOLLOUT | EPOLLET, 1};
  ks_epoll_ctl(S.k, ep, EPOLL_CTL_ADD, sv[0], &ev);
  S.r[5] = ks_epoll_wait(S.k, ep, S.ev, 4, 0);
  if (fault_class >= 0) cf_fault_enable((cf_fault_class_t)fault_class, true);
  switch (fault_class) {
  case CF_FAULT_SHORT_WRITE:
  case -1:
    S.r[0] = ks_send(S.k, sv[0], buf, sizeof buf, 0);
    break;
  case CF_FAULT_EAGAIN:
    S.r[0] = ks_send(S.k, sv[0], buf, sizeof buf, 0);
    S.r[1] = ks_epoll_wait(S.k, ep, S.ev, 4, 0); /* the wake-up that follows the fault */
    break;
  case CF_FAULT_RESET:
    S.r[0] = ks_send(S.k, sv[0], buf, sizeof buf, 0);
    cf_fault_enable(CF_FAULT_RESET, false);
    ev = (ks_epoll_event_t){EPOLLIN, 2};
    ks_epoll_ctl(S.k, ep, EPOLL_CTL_ADD, sv[1], &ev);
    S.r[1] = ks_epoll_wait(S.k, ep, S.ev, 4, 0);
    S.r[2] = ks_recv(S.k, sv[1], buf, sizeof buf, 0);
    S.r[3] = ks_recv(S.k, sv[1], buf, sizeof buf, 0);
    S.r[4] = ks_send(S.k, sv[0], buf, sizeof buf, 0);
    break;
  case CF_FAULT_EPOLL_NOMEM:
    S.r[0] = ks_epoll_ctl(S.k, ep, EPOLL_CTL_ADD, sv[1], &ev);
    break;
  }
}

static int run_fault(int cls) {
  init_all_fire();
  fault_class = cls;
  return run(fault_main, all_fire, sizeof all_fire);
}

TEST_IMPL(kernel_sim_faults_only_when_enabled) {
  ASSERT_EQ(run_fault(-1), 0);
  ASSERT_EQ(S.r[0], 100);
  /* Outside a run no fault is ever drawn. */
  ks_kernel_t *k = ks_kernel_new(NULL);
  int sv[2];
  char buf[100] = {0};
  cf_fault_enable(CF_FAULT_SHORT_WRITE, true);
  ks_socketpair(k, AF_UNIX, SOCK_STREAM, 0, sv);
  ASSERT_EQ(ks_send(k, sv[0], buf, sizeof buf, 0), 100);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_sim_fault_short_write) {
  ASSERT_EQ(run_fault(CF_FAULT_SHORT_WRITE), 0);
  ASSERT_TRUE(S.r[0] >= 1 && S.r[0] < 100);
  return 0;
}

TEST_IMPL(kernel_sim_fault_spurious_eagain_wakes_watchers) {
  ASSERT_EQ(run_fault(CF_FAULT_EAGAIN), 0);
  ASSERT_EQ(S.r[5], 1);
  ASSERT_EQ(S.r[0], -EAGAIN);
  ASSERT_EQ(S.r[1], 1); /* an edge-triggered watcher sees a fresh EPOLLOUT */
  return 0;
}

TEST_IMPL(kernel_sim_fault_reset) {
  ASSERT_EQ(run_fault(CF_FAULT_RESET), 0);
  ASSERT_EQ(S.r[0], -ECONNRESET);
  /* Both ends were woken: the sender's edge-triggered item fires again (hung up, and its own
   * error already reported by the send), the peer shows the reset. */
  ASSERT_EQ(S.r[1], 2);
  ASSERT_EQ(S.ev[0].events, EPOLLOUT | EPOLLHUP);
  ASSERT_U64_EQ(S.ev[1].data, 2);
  ASSERT_EQ(S.ev[1].events, EPOLLIN | EPOLLERR | EPOLLHUP);
  ASSERT_EQ(S.r[2], -ECONNRESET);
  ASSERT_EQ(S.r[3], 0);
  ASSERT_EQ(S.r[4], -EPIPE);
  return 0;
}

TEST_IMPL(kernel_sim_fault_epoll_nomem) {
  ASSERT_EQ(run_fault(CF_FAULT_EPOLL_NOMEM), 0);
  ASSERT_TRUE(S.r[0] == -ENOMEM || S.r[0] == -ENOSPC);
  return 0;
}
