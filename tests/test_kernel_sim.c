/* test_kernel_sim.c: the simulated kernel inside simulated runs: blocking calls park the
 * calling fiber until a state change wakes it (or its timeout passes in virtual time), and
 * faults are drawn from the input only for the classes a target enabled. */
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
