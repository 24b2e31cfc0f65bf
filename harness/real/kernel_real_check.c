/* kernel_real_check.c: a self-check of kernel_real.c on loopback (out/stress/kernel-real-check).
 *
 * Exercises the calls the copies make, with the results the simulated kernel gives for the
 * same sequence: a listener on port 0, connect and accept4, send/recv, epoll readiness, EOF,
 * EPIPE without SIGPIPE, peer ids pairing the two ends, ks_epoll_items while a dup keeps a
 * closed number's description registered, fork/exec holding a pipe open, the other
 * descriptor kinds, poll(2), ks_kernel_free closing what was left, and the bookkeeping under
 * threads.
 * Exit 0 when everything matches; 1 with a line naming the first mismatch. */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf.h"
#include "kernel.h"

static int checks;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kernel-real-check: FAIL ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  exit(1);
}

/* " (EBADF's text)" for a value that reads as -errno; ids use -1 for "none", so not that. */
static const char *errname(long long v) {
  static char buf[2][80]; /* two per failure line: got and want */
  static int i;
  if (v >= -1 || v < -4095) return "";
  i ^= 1;
  snprintf(buf[i], sizeof buf[i], " (%s)", strerror((int)-v));
  return buf[i];
}

/* want: the call's result equals the expected value. */
#define EXPECT(what, got, want)                                                        \
  do {                                                                                 \
    long long g_ = (long long)(got), w_ = (long long)(want);                           \
    if (g_ != w_)                                                                      \
      fail("%s: got %lld%s, want %lld%s", (what), g_, errname(g_), w_, errname(w_));   \
    checks++;                                                                          \
  } while (0)
#define EXPECT_TRUE(what, cond)                                                        \
  do {                                                                                 \
    if (!(cond)) fail("%s: %s is false", (what), #cond);                               \
    checks++;                                                                          \
  } while (0)

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) fail("cannot open /proc/self/fd");
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the DIR's own descriptor */
}

/* Wait (bounded) until epfd reports fd's item; returns its events, 0 on timeout. */
static uint32_t wait_ready(ks_kernel_t *k, int epfd, uint64_t data) {
  ks_epoll_event_t ev[8];
  for (int tries = 0; tries < 20; tries++) {
    int n = ks_epoll_wait(k, epfd, ev, 8, 100);
    for (int i = 0; i < n; i++)
      if (ev[i].data == data) return ev[i].events;
  }
  return 0;
}

static void check_sockets(void) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int l = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  EXPECT_TRUE("socket", l >= 0);
  EXPECT("listen before bind", ks_listen(k, l, 16), -EINVAL);
  EXPECT("getsockport before bind", ks_getsockport(k, l), -EINVAL);
  EXPECT("bind port 0", ks_bind(k, l, 0), 0);
  int port = ks_getsockport(k, l);
  EXPECT_TRUE("getsockport after bind", port > 0);
  EXPECT("listen", ks_listen(k, l, 16), 0);
  EXPECT("socket type check", ks_socket(k, AF_INET, SOCK_DGRAM, 0), -EINVAL);

  int other = ks_socket(k, AF_UNIX, SOCK_STREAM, 0);
  EXPECT("bind a port in use", ks_bind(k, other, (uint16_t)port), -EADDRINUSE);
  ks_close(k, other);

  int ep = ks_epoll_create1(k, EPOLL_CLOEXEC);
  EXPECT_TRUE("epoll_create1", ep >= 0);
  ks_epoll_event_t lev = {EPOLLIN, 1};
  EXPECT("epoll_ctl ADD listener", ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, l, &lev), 0);
  EXPECT("accept4 on an empty queue", ks_accept4(k, l, SOCK_NONBLOCK), -EAGAIN);

  /* A non-blocking client connects at once, as in the model (no EINPROGRESS). */
  int c = ks_socket(k, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  EXPECT("connect (non-blocking)", ks_connect(k, c, (uint16_t)port), 0);
  EXPECT_TRUE("listener readable after connect", wait_ready(k, ep, 1) & EPOLLIN);
  int s = ks_accept4(k, l, SOCK_NONBLOCK | SOCK_CLOEXEC);
  EXPECT_TRUE("accept4", s >= 0);
  EXPECT("accepted socket's port is the listener's", ks_getsockport(k, s), port);
  EXPECT("accepted socket is non-blocking", ks_fcntl(k, s, F_GETFL, 0) & O_NONBLOCK, O_NONBLOCK);
  EXPECT("accepted socket is close-on-exec", ks_fcntl(k, s, F_GETFD, 0), FD_CLOEXEC);

  /* Peer ids pair the two ends; ids are port pairs, apart from inodes. */
  int64_t sid = ks_fd_ofd_id(k, s), cid = ks_fd_ofd_id(k, c);
  EXPECT_TRUE("connected ids carry bit 40", (sid >> 40) == 1 && (cid >> 40) == 1);
  EXPECT_TRUE("the two ends differ", sid != cid);
  EXPECT("client's peer id is the server socket's id", ks_sock_peer_id(k, c), sid);
  EXPECT("server's peer id is the client socket's id", ks_sock_peer_id(k, s), cid);
  EXPECT("peer id of a listener", ks_sock_peer_id(k, l), -ENOTCONN);
  EXPECT("peer id of a bad number", ks_sock_peer_id(k, 4000), -EBADF);
  EXPECT_TRUE("listener's id is an inode", ks_fd_ofd_id(k, l) > 0 && (ks_fd_ofd_id(k, l) >> 40) == 0);
  EXPECT("id of a bad number", ks_fd_ofd_id(k, 4000), -EBADF);

  /* Readiness, data, EOF. */
  ks_epoll_event_t sev = {EPOLLIN | EPOLLRDHUP, 2};
  EXPECT("epoll_ctl ADD server socket", ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, s, &sev), 0);
  EXPECT("epoll_ctl ADD twice", ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, s, &sev), -EEXIST);
  char buf[64];
  EXPECT("recv with nothing sent", ks_recv(k, s, buf, sizeof buf, 0), -EAGAIN);
  EXPECT("send", ks_send(k, c, "hello", 5, 0), 5);
  EXPECT_TRUE("server socket readable", wait_ready(k, ep, 2) & EPOLLIN);
  EXPECT("recv MSG_PEEK", ks_recv(k, s, buf, sizeof buf, MSG_PEEK), 5);
  EXPECT("recv", ks_recv(k, s, buf, sizeof buf, 0), 5);
  EXPECT("recv'd bytes", memcmp(buf, "hello", 5), 0);
  EXPECT("write on a socket", ks_write(k, s, "abc", 3), 3);
  for (int i = 0; i < 50 && ks_read(k, c, buf, sizeof buf) == -EAGAIN; i++) usleep(2000);
  EXPECT("read on a socket got the bytes", memcmp(buf, "abc", 3), 0);
  EXPECT("shutdown SHUT_WR", ks_shutdown(k, c, SHUT_WR), 0);
  EXPECT_TRUE("EOF is readable with RDHUP", (wait_ready(k, ep, 2) & (EPOLLIN | EPOLLRDHUP)) ==
                                                (EPOLLIN | EPOLLRDHUP));
  EXPECT("recv at EOF", ks_recv(k, s, buf, sizeof buf, 0), 0);
  EXPECT("send after SHUT_WR", ks_send(k, c, "x", 1, 0), -EPIPE);

  /* The interest list: a dup keeps the description (and its item) after the number closes. */
  ks_epoll_item_t it[4];
  EXPECT("epoll_items count", ks_epoll_items(k, ep, it, 4), 2);
  int si = it[0].fd == s ? 0 : 1;
  EXPECT("item fd", it[si].fd, s);
  EXPECT("item events (ERR|HUP added)", it[si].events, EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP);
  EXPECT("item data", it[si].data, 2);
  EXPECT("item ofd_id", it[si].ofd_id, sid);
  int d = ks_dup(k, s);
  EXPECT_TRUE("dup", d >= 0);
  EXPECT("dup shares the id", ks_fd_ofd_id(k, d), sid);
  EXPECT("close the registered number", ks_close(k, s), 0);
  EXPECT("epoll_items after close, dup alive", ks_epoll_items(k, ep, it, 4), 2);
  si = it[0].fd == s ? 0 : 1;
  EXPECT("item keeps its closed number", it[si].fd, s);
  EXPECT("item's id is the dup's description", it[si].ofd_id, sid);
  EXPECT("epoll_ctl DEL by the closed number", ks_epoll_ctl(k, ep, EPOLL_CTL_DEL, s, NULL), -EBADF);
  EXPECT("close the dup", ks_close(k, d), 0);
  EXPECT("epoll_items after the last close", ks_epoll_items(k, ep, it, 4), 1);
  EXPECT("the listener's item is left", it[0].fd, l);
  EXPECT("epoll_items of a non-epoll", ks_epoll_items(k, l, it, 4), -EINVAL);
  EXPECT("epoll_items of a bad number", ks_epoll_items(k, 4000, it, 4), -EBADF);

  /* The peer is gone: EPIPE, and no SIGPIPE (the process would die). The id stays. */
  for (int i = 0; i < 50 && ks_send(k, c, "x", 1, 0) != -EPIPE; i++) usleep(2000);
  EXPECT("send to a closed peer", ks_send(k, c, "x", 1, 0), -EPIPE);
  EXPECT("write to a closed peer", ks_write(k, c, "x", 1), -EPIPE);
  EXPECT("id after the connection ended", ks_fd_ofd_id(k, c), cid);
  EXPECT("peer id after the connection ended", ks_sock_peer_id(k, c), -ENOTCONN);

  /* Connecting to nobody; a blocking socketpair. */
  int port2 = port;
  EXPECT("close the listener", ks_close(k, l), 0);
  int c2 = ks_socket(k, AF_INET, SOCK_STREAM, 0);
  EXPECT("connect to a closed port", ks_connect(k, c2, (uint16_t)port2), -ECONNREFUSED);
  int sv[2];
  EXPECT("socketpair", ks_socketpair(k, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  EXPECT("socketpair ends pair", ks_sock_peer_id(k, sv[0]), ks_fd_ofd_id(k, sv[1]));
  EXPECT("socketpair send", ks_send(k, sv[1], "pq", 2, 0), 2);
  for (int i = 0; i < 50 && ks_recv(k, sv[0], buf, 2, MSG_PEEK) == -EAGAIN; i++) usleep(2000);
  EXPECT("socketpair recv", ks_recv(k, sv[0], buf, sizeof buf, MSG_DONTWAIT), 2);
  ks_kernel_free(k); /* closes c, c2, ep, sv */
}

static void check_files(void) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int p[2];
  EXPECT("pipe2", ks_pipe2(k, p, O_NONBLOCK | O_CLOEXEC), 0);
  EXPECT("pipe write", ks_write(k, p[1], "ab", 2), 2);
  char buf[16];
  EXPECT("pipe read", ks_read(k, p[0], buf, sizeof buf), 2);
  EXPECT("empty pipe read", ks_read(k, p[0], buf, sizeof buf), -EAGAIN);

  /* A child between fork and exec holds the write end: no EOF until it execs. A child of a
   * process that does not own the write end (another process's number, by the mask) does
   * not hold it. */
  int q[2];
  EXPECT("second pipe2", ks_pipe2(k, q, O_NONBLOCK), 0);
  uint8_t mask[KS_NFD / 8] = {0};
  mask[q[0] / 8] |= 1u << (q[0] % 8);
  ks_fork_t *other = ks_fork(k, mask);
  EXPECT("close the second write end", ks_close(k, q[1]), 0);
  EXPECT("read when the child holds only the read end", ks_read(k, q[0], buf, sizeof buf), 0);
  ks_fork_exec(k, other);
  ks_fork_t *child = ks_fork(k, NULL);
  EXPECT("close the write end", ks_close(k, p[1]), 0);
  EXPECT("read while the child holds the write end", ks_read(k, p[0], buf, sizeof buf), -EAGAIN);
  ks_fork_exec(k, child);
  EXPECT("read after the child's exec", ks_read(k, p[0], buf, sizeof buf), 0);

  int e = ks_eventfd(k, 0, EFD_NONBLOCK);
  uint64_t v = 3;
  EXPECT("eventfd write", ks_write(k, e, &v, 8), 8);
  EXPECT("eventfd read", ks_read(k, e, &v, 8), 8);
  EXPECT("eventfd value", v, 3);
  EXPECT("eventfd read when zero", ks_read(k, e, &v, 8), -EAGAIN);

  int f = ks_open_regular(k, O_CLOEXEC);
  EXPECT_TRUE("open_regular", f >= 0);
  EXPECT("regular write", ks_write(k, f, "xyz", 3), 3);
  EXPECT("regular read at the end", ks_read(k, f, buf, sizeof buf), 0);
  int op = ks_open_path(k, O_CLOEXEC);
  EXPECT_TRUE("open_path", op >= 0);
  EXPECT("read on O_PATH", ks_read(k, op, buf, 1), -EBADF);
  EXPECT_TRUE("plain files have their own ids", ks_fd_ofd_id(k, f) != ks_fd_ofd_id(k, op));

  int d2 = ks_dup2(k, f, 100), d3 = ks_dup3(k, f, 101, O_CLOEXEC);
  int d4 = ks_fcntl(k, f, F_DUPFD_CLOEXEC, 200);
  EXPECT("dup2", d2, 100);
  EXPECT("dup3", d3, 101);
  EXPECT_TRUE("F_DUPFD_CLOEXEC", d4 >= 200);
  EXPECT("fcntl unknown command", ks_fcntl(k, f, F_GETLK, 0), -EINVAL);
  EXPECT("close a bad number", ks_close(k, -1), -EBADF);
  EXPECT("kqueue", ks_kqueue(k), -ENOSYS);
  EXPECT("kevent", ks_kevent(k, 0, NULL, 0, NULL, 0, 0), -ENOSYS);
  ks_fork(k, NULL); /* left between fork and exec: ks_kernel_free closes its copies too */
  ks_kernel_free(k);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ks_kernel_t *poll_k;
static int poll_efd;
static void poll_waker(void *arg) {
  (void)arg;
  usleep(20000);
  uint64_t one = 1;
  if (ks_write(poll_k, poll_efd, &one, 8) != 8) abort();
}

/* fstat's file type, as tests/test_kernel.c kernel_fstat_mode checks it on the model. */
static void check_fstat(void) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int p[2], sv[2];
  EXPECT("pipe2", ks_pipe2(k, p, 0), 0);
  EXPECT("socketpair", ks_socketpair(k, AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int reg = ks_open_regular(k, 0), path = ks_open_path(k, 0), efd = ks_eventfd(k, 0, 0);
  int ep = ks_epoll_create1(k, 0);
  EXPECT("fstat pipe read end", ks_fstat_mode(k, p[0]), S_IFIFO);
  EXPECT("fstat pipe write end", ks_fstat_mode(k, p[1]), S_IFIFO);
  EXPECT("fstat socket", ks_fstat_mode(k, sv[0]), S_IFSOCK);
  EXPECT("fstat regular file", ks_fstat_mode(k, reg), S_IFREG);
  EXPECT("fstat O_PATH of a regular file", ks_fstat_mode(k, path), S_IFREG);
  EXPECT("fstat eventfd (anonymous inode)", ks_fstat_mode(k, efd), 0);
  EXPECT("fstat epoll (anonymous inode)", ks_fstat_mode(k, ep), 0);
  EXPECT("close", ks_close(k, reg), 0);
  EXPECT("fstat closed number", ks_fstat_mode(k, reg), -EBADF);
  EXPECT("fstat -1", ks_fstat_mode(k, -1), -EBADF);
  ks_kernel_free(k);
}

/* poll(2): revents as the model computes them, POLLNVAL, the limits, a timeout in ms and a
 * wake-up from another thread. */
static void check_poll(void) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int p[2];
  EXPECT("pipe2", ks_pipe2(k, p, O_NONBLOCK), 0);
  int reg = ks_open_regular(k, 0), path = ks_open_path(k, 0), closed = ks_eventfd(k, 0, 0);
  EXPECT_TRUE("regular and O_PATH files", reg >= 0 && path >= 0 && closed >= 0);
  EXPECT("close", ks_close(k, closed), 0);
  const short all = POLLIN | POLLPRI | POLLOUT | POLLRDHUP | POLLRDNORM | POLLWRNORM;
  struct pollfd f[6] = {{p[0], all, 0}, {p[1], POLLOUT, 0}, {reg, all, 0},
                        {path, POLLIN, 0}, {closed, 0, 0}, {-1, all, 0x55}};
  EXPECT("poll", ks_poll(k, f, 6, 0), 4);
  EXPECT("empty pipe's read end", f[0].revents, 0);
  EXPECT("pipe's write end", f[1].revents, POLLOUT);
  EXPECT("a regular file is always ready", f[2].revents,
         POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
  EXPECT("O_PATH descriptor", f[3].revents, POLLNVAL);
  EXPECT("closed number", f[4].revents, POLLNVAL);
  EXPECT("negative fd is ignored", f[5].revents, 0);
  f[2].events = 0;
  EXPECT("regular file, no events asked", ks_poll(k, &f[2], 1, 0), 0);
  EXPECT("pipe write", ks_write(k, p[1], "x", 1), 1);
  EXPECT("poll after the write", ks_poll(k, f, 1, 0), 1);
  EXPECT("pipe's read end readable", f[0].revents, POLLIN | POLLRDNORM);
  EXPECT("close the write end", ks_close(k, p[1]), 0);
  f[0].events = 0;
  EXPECT("poll with no events asked", ks_poll(k, f, 1, 0), 1);
  EXPECT("POLLHUP is always reported", f[0].revents, POLLHUP);
  EXPECT("NULL array", ks_poll(k, NULL, 1, 0), -EFAULT);
  EXPECT("NULL array, nfds 0", ks_poll(k, NULL, 0, 0), 0);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20))
    EXPECT("nfds above RLIMIT_NOFILE", ks_poll(k, NULL, (nfds_t)rl.rlim_cur + 1, 0), -EINVAL);

  /* A timeout in milliseconds, then a wake-up from another thread. */
  poll_k = k;
  poll_efd = ks_eventfd(k, 0, EFD_NONBLOCK);
  struct pollfd e = {poll_efd, POLLIN, 0};
  int64_t t0 = mono_ms();
  EXPECT("poll times out", ks_poll(k, &e, 1, 30), 0);
  EXPECT_TRUE("after its timeout", mono_ms() - t0 >= 29);
  cf_thread_t t;
  cf_thread_spawn(&t, poll_waker, NULL, "waker");
  EXPECT("poll woken by an eventfd write", ks_poll(k, &e, 1, -1), 1);
  EXPECT("eventfd readable", e.revents, POLLIN);
  cf_thread_join(&t);

  /* An epoll file is readable while an item is ready; EOF reports POLLRDHUP. */
  int ep = ks_epoll_create1(k, 0);
  ks_epoll_event_t ev = {EPOLLIN, 7};
  EXPECT("epoll_ctl ADD eventfd", ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, poll_efd, &ev), 0);
  struct pollfd pe = {ep, POLLIN | POLLOUT, 0};
  EXPECT("poll an epoll", ks_poll(k, &pe, 1, 0), 1);
  EXPECT("epoll readable", pe.revents, POLLIN);
  int sv[2];
  EXPECT("socketpair", ks_socketpair(k, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  EXPECT("shutdown SHUT_WR", ks_shutdown(k, sv[1], SHUT_WR), 0);
  struct pollfd s = {sv[0], POLLIN | POLLRDHUP, 0};
  EXPECT("poll for EOF", ks_poll(k, &s, 1, 2000), 1);
  EXPECT("EOF", s.revents, POLLIN | POLLRDHUP);
  ks_kernel_free(k);
}

/* Many instances, each leaving descriptors open, in one process; a free closes only what its
 * instance still holds, not a number it closed that another instance now uses. */
static void check_free(void) {
  int base = count_fds();
  ks_kernel_t *a = ks_kernel_new(NULL), *b = ks_kernel_new(NULL);
  int x = ks_eventfd(a, 0, 0);
  EXPECT("close in one instance", ks_close(a, x), 0);
  EXPECT("another instance reuses the number", ks_eventfd(b, 0, 0), x);
  ks_kernel_free(a);
  EXPECT("the other instance's descriptor survives the free", ks_fcntl(b, x, F_GETFD, 0), 0);
  ks_kernel_free(b);
  for (int i = 0; i < 50; i++) {
    ks_kernel_t *k = ks_kernel_new(NULL);
    int p[2];
    ks_pipe2(k, p, 0);
    ks_eventfd(k, 0, 0);
    int l = ks_socket(k, AF_INET, SOCK_STREAM, 0);
    ks_bind(k, l, 0);
    ks_listen(k, l, 4);
    ks_dup2(k, p[0], 300 + i);
    ks_kernel_free(k);
  }
  EXPECT("descriptors left after 50 instances", count_fds(), base);
}

/* The bookkeeping under threads: open/dup/close loops on one instance at once. */
static ks_kernel_t *shared;
static void churn_fds(void *arg) {
  for (int i = 0; i < 2000; i++) {
    int p[2];
    if (ks_pipe2(shared, p, O_CLOEXEC) < 0) abort();
    int d = ks_dup(shared, p[0]);
    ks_close(shared, p[0]);
    if (i % 7 == 0) ks_fork_exec(shared, ks_fork(shared, NULL));
    if (i % 200) ks_close(shared, p[1]), ks_close(shared, d); /* else left for the free */
    ks_epoll_item_t it[1];
    ks_epoll_items(shared, d, it, 1);
  }
}

static void check_threads(void) {
  int base = count_fds();
  shared = ks_kernel_new(NULL);
  cf_thread_t t[4];
  for (int i = 0; i < 4; i++) cf_thread_spawn(&t[i], churn_fds, NULL, "churn");
  for (int i = 0; i < 4; i++) cf_thread_join(&t[i]);
  ks_kernel_free(shared);
  EXPECT("descriptors left after threads", count_fds(), base);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    printf("usage: %s\nChecks harness/real/kernel_real.c (kernel.h on real syscalls) on "
           "loopback.\nExit 0 when every check matches, 1 with the first mismatch.\n", argv[0]);
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  signal(SIGPIPE, SIG_DFL); /* a send that raised SIGPIPE must kill the check */
  check_sockets();
  check_files();
  check_fstat();
  check_poll();
  check_free();
  check_threads();
  printf("kernel-real-check: ok, %d checks passed\n", checks);
  return 0;
}
