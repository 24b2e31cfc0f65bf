/* test_kernel.c: direct checks of the simulated kernel's fd table, pipes, eventfd, sockets and
 * plain files, outside any simulated run (nothing blocks: a call that would block fails with
 * EAGAIN). The differential test compares most of this with Linux at random; these tests pin
 * the rules down one by one, including what the differential test cannot reach (buffer
 * limits, listeners' backlog, kernel teardown). */
#include <sys/stat.h>
#include <poll.h>

#include "kernel.h"
#include "task.h"

TEST_IMPL(kernel_fd_lowest_free_reuse) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  ASSERT_EQ(ks_eventfd(k, 0, 0), 0);
  ASSERT_EQ(ks_eventfd(k, 0, 0), 1);
  ASSERT_EQ(ks_eventfd(k, 0, 0), 2);
  ASSERT_EQ(ks_close(k, 1), 0);
  ASSERT_EQ(ks_close(k, 1), -EBADF);
  ASSERT_EQ(ks_dup(k, 2), 1); /* the lowest free number, again */
  ASSERT_EQ(ks_dup2(k, 0, 10), 10);
  ASSERT_EQ(ks_fcntl(k, 0, F_DUPFD, 5), 5);
  ASSERT_EQ(ks_fcntl(k, 0, F_DUPFD_CLOEXEC, 5), 6);
  ASSERT_EQ(ks_fcntl(k, 6, F_GETFD, 0), FD_CLOEXEC);
  ASSERT_EQ(ks_eventfd(k, 0, 0), 3);
  /* Fill the table. */
  int last = -1;
  for (int i = 0; i < KS_NFD; i++) {
    int fd = ks_eventfd(k, 0, 0);
    if (fd < 0) {
      ASSERT_EQ(fd, -EMFILE);
      break;
    }
    last = fd;
  }
  ASSERT_EQ(last, KS_NFD - 1);
  int fds[2];
  ASSERT_EQ(ks_close(k, 100), 0);
  ASSERT_EQ(ks_pipe2(k, fds, 0), -EMFILE); /* needs two numbers: takes none */
  ASSERT_EQ(ks_dup(k, 0), 100);
  ks_kernel_free(k);
  return 0;
}

/* fstat's file type, as harness/real/kernel_real_check.c checks it on the real kernel. */
TEST_IMPL(kernel_fstat_mode) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int p[2], sv[2];
  ASSERT_EQ(ks_pipe2(k, p, 0), 0);
  ASSERT_EQ(ks_socketpair(k, AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int reg = ks_open_regular(k, 0), path = ks_open_path(k, 0), efd = ks_eventfd(k, 0, 0);
  int ep = ks_epoll_create1(k, 0);
  ASSERT_EQ(ks_fstat_mode(k, p[0]), S_IFIFO);
  ASSERT_EQ(ks_fstat_mode(k, p[1]), S_IFIFO);
  ASSERT_EQ(ks_fstat_mode(k, sv[0]), S_IFSOCK);
  ASSERT_EQ(ks_fstat_mode(k, reg), S_IFREG);
  ASSERT_EQ(ks_fstat_mode(k, path), S_IFREG);
  ASSERT_EQ(ks_fstat_mode(k, efd), 0);
  ASSERT_EQ(ks_fstat_mode(k, ep), 0);
  ASSERT_EQ(ks_close(k, reg), 0);
  ASSERT_EQ(ks_fstat_mode(k, reg), -EBADF);
  ASSERT_EQ(ks_fstat_mode(k, -1), -EBADF);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_fd_dup_shares_the_description) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int fds[2];
  ASSERT_EQ(ks_pipe2(k, fds, O_CLOEXEC), 0);
  int d = ks_dup(k, fds[1]);
  ASSERT_EQ(ks_fd_ofd_id(k, d), ks_fd_ofd_id(k, fds[1]));
  ASSERT_NE(ks_fd_ofd_id(k, fds[0]), ks_fd_ofd_id(k, fds[1]));
  /* Status flags belong to the description, FD_CLOEXEC to the number. */
  ASSERT_EQ(ks_fcntl(k, d, F_SETFL, O_NONBLOCK), 0);
  ASSERT_EQ(ks_fcntl(k, fds[1], F_GETFL, 0), O_WRONLY | O_NONBLOCK);
  ASSERT_EQ(ks_fcntl(k, fds[1], F_GETFD, 0), FD_CLOEXEC);
  ASSERT_EQ(ks_fcntl(k, d, F_GETFD, 0), 0);
  /* EOF only once every write descriptor is closed. */
  char c;
  ASSERT_EQ(ks_close(k, fds[1]), 0);
  ASSERT_EQ(ks_read(k, fds[0], &c, 1), -EAGAIN);
  ASSERT_EQ(ks_write(k, d, "q", 1), 1);
  ASSERT_EQ(ks_close(k, d), 0);
  ASSERT_EQ(ks_read(k, fds[0], &c, 1), 1);
  ASSERT_EQ(ks_read(k, fds[0], &c, 1), 0);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_fd_dup_errors) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int fd = ks_eventfd(k, 0, 0);
  ASSERT_EQ(ks_dup2(k, fd, fd), fd);
  ASSERT_EQ(ks_dup2(k, 7, 7), -EBADF);
  ASSERT_EQ(ks_dup3(k, fd, fd, 0), -EINVAL);
  ASSERT_EQ(ks_dup3(k, 7, 7, 0), -EINVAL);
  ASSERT_EQ(ks_dup3(k, fd, 3, 1), -EINVAL);
  ASSERT_EQ(ks_dup3(k, fd, KS_NFD, 0), -EBADF);
  ASSERT_EQ(ks_dup3(k, 7, 3, 0), -EBADF);
  ASSERT_EQ(ks_dup3(k, fd, 3, O_CLOEXEC), 3);
  ASSERT_EQ(ks_fcntl(k, 3, F_GETFD, 0), FD_CLOEXEC);
  ASSERT_EQ(ks_fcntl(k, 3, 12345, 0), -EINVAL);
  ks_kernel_free(k);
  return 0;
}

/* An epoll item lives as long as its file, not its number (Linux eventpoll_release). */
TEST_IMPL(kernel_epoll_item_outlives_its_number) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int ep = ks_epoll_create1(k, 0);
  int efd = ks_eventfd(k, 0, EFD_NONBLOCK);
  int d = ks_dup(k, efd);
  ks_epoll_event_t ev = {EPOLLIN, 42}, out[4];
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, efd, &ev), 0);
  ASSERT_EQ(ks_close(k, efd), 0);
  uint64_t one = 1;
  ASSERT_EQ(ks_write(k, d, &one, 8), 8);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 4, 0), 1);
  ASSERT_U64_EQ(out[0].data, 42); /* reported under the closed number's data */
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_DEL, efd, NULL), -EBADF);
  /* The same number reopened is a different (file, fd) key. */
  int again = ks_eventfd(k, 1, 0);
  ASSERT_EQ(again, efd);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_DEL, again, NULL), -ENOENT);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, again, &ev), 0);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 4, 0), 2);
  /* Closing the last number of the first file removes its item, queued or not. */
  ASSERT_EQ(ks_close(k, d), 0);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 4, 0), 1);
  ASSERT_EQ(ks_close(k, ep), 0);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_epoll_oneshot_stays_registered) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int ep = ks_epoll_create1(k, 0);
  int efd = ks_eventfd(k, 1, EFD_NONBLOCK);
  ks_epoll_event_t ev = {EPOLLIN | EPOLLONESHOT, 1}, out[2];
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, efd, &ev), 0);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 1);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 0);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, efd, &ev), -EEXIST);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_MOD, efd, &ev), 0);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 1);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_DEL, efd, NULL), 0);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_MOD, efd, &ev), -ENOENT);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, efd, NULL), -EFAULT);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_pipe_eof_epipe_and_masks) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int fds[2], ep = ks_epoll_create1(k, 0);
  ASSERT_EQ(ks_pipe2(k, fds, O_NONBLOCK), 0);
  ks_epoll_event_t ev = {EPOLLIN | EPOLLOUT, 0}, out[2];
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, fds[1], &ev), 0);
  ASSERT_EQ(ks_write(k, fds[0], "x", 1), -EBADF);
  ASSERT_EQ(ks_close(k, fds[0]), 0);
  ASSERT_EQ(ks_write(k, fds[1], "x", 1), -EPIPE);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 1);
  ASSERT_EQ(out[0].events, EPOLLOUT | EPOLLERR);
  ASSERT_EQ(ks_pipe2(k, fds, O_NONBLOCK), 0);
  ASSERT_EQ(ks_write(k, fds[1], "ab", 2), 2);
  ASSERT_EQ(ks_close(k, fds[1]), 0);
  ev.events = EPOLLIN | EPOLLRDHUP;
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, fds[0], &ev), 0);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 2);
  ASSERT_EQ(out[1].events, EPOLLIN | EPOLLHUP);
  char buf[4];
  ASSERT_EQ(ks_read(k, fds[0], buf, 4), 2);
  ASSERT_EQ(ks_read(k, fds[0], buf, 4), 0);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_pipe_capacity_and_atomic_writes) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int fds[2];
  ASSERT_EQ(ks_pipe2(k, fds, O_NONBLOCK), 0);
  static char big[KS_PIPE_CAPACITY + 100];
  memset(big, 'b', sizeof big);
  /* A long write takes what fits. */
  ASSERT_EQ(ks_write(k, fds[1], big, sizeof big), KS_PIPE_CAPACITY);
  ASSERT_EQ(ks_write(k, fds[1], big, 1), -EAGAIN);
  ASSERT_EQ(ks_read(k, fds[0], big, 100), 100);
  /* 100 bytes free: a 200-byte write is atomic (all or nothing), a long one is partial. */
  ASSERT_EQ(ks_write(k, fds[1], big, 200), -EAGAIN);
  ASSERT_EQ(ks_write(k, fds[1], big, KS_PIPE_BUF + 1), 100);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_eventfd_rules) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  ASSERT_EQ(ks_eventfd(k, 0, 0x40), -EINVAL);
  int e = ks_eventfd(k, 2, EFD_NONBLOCK | EFD_SEMAPHORE);
  uint64_t v = 0;
  ASSERT_EQ(ks_read(k, e, &v, 4), -EINVAL);
  ASSERT_EQ(ks_read(k, e, &v, 8), 8);
  ASSERT_U64_EQ(v, 1);
  ASSERT_EQ(ks_read(k, e, &v, 8), 8);
  ASSERT_EQ(ks_read(k, e, &v, 8), -EAGAIN);
  v = UINT64_MAX;
  ASSERT_EQ(ks_write(k, e, &v, 8), -EINVAL);
  v = UINT64_MAX - 1;
  ASSERT_EQ(ks_write(k, e, &v, 8), 8);
  v = 1;
  ASSERT_EQ(ks_write(k, e, &v, 8), -EAGAIN); /* would pass 0xfffffffffffffffe */
  ASSERT_EQ(ks_write(k, e, &v, 4), -EINVAL);
  int e2 = ks_eventfd(k, 0, EFD_NONBLOCK);
  v = 5;
  ASSERT_EQ(ks_write(k, e2, &v, 8), 8);
  ASSERT_EQ(ks_write(k, e2, &v, 8), 8);
  ASSERT_EQ(ks_read(k, e2, &v, 8), 8);
  ASSERT_U64_EQ(v, 10);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_socket_eof_epipe_reset) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int sv[2];
  char buf[8];
  ASSERT_EQ(ks_socketpair(k, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  ASSERT_EQ(ks_send(k, sv[0], "abc", 3, 0), 3);
  ASSERT_EQ(ks_shutdown(k, sv[0], SHUT_WR), 0);
  ASSERT_EQ(ks_send(k, sv[0], "d", 1, 0), -EPIPE);
  ASSERT_EQ(ks_recv(k, sv[1], buf, 2, MSG_PEEK), 2);
  ASSERT_EQ(ks_recv(k, sv[1], buf, 8, 0), 3);
  ASSERT_EQ(ks_recv(k, sv[1], buf, 8, 0), 0); /* EOF after the peer's SHUT_WR */
  ASSERT_EQ(ks_send(k, sv[1], "e", 1, 0), 1); /* the other direction still works */
  /* Closing with unread data resets the peer: ECONNRESET once, then EOF; sends EPIPE. */
  ASSERT_EQ(ks_close(k, sv[0]), 0);
  ASSERT_EQ(ks_send(k, sv[1], "f", 1, 0), -EPIPE);
  ASSERT_EQ(ks_recv(k, sv[1], buf, 8, 0), -ECONNRESET);
  ASSERT_EQ(ks_recv(k, sv[1], buf, 8, 0), 0);
  ASSERT_EQ(ks_recv(k, 99, buf, 8, 0), -EBADF);
  int e = ks_eventfd(k, 0, 0);
  ASSERT_EQ(ks_recv(k, e, buf, 8, 0), -ENOTSOCK);
  ASSERT_EQ(ks_shutdown(k, e, SHUT_RD), -ENOTSOCK);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_socket_bounded_buffer) {
  ks_config_t cfg;
  ks_config_default(&cfg);
  cfg.sock_buf_bytes = 100;
  ks_kernel_t *k = ks_kernel_new(&cfg);
  int sv[2], ep = ks_epoll_create1(k, 0);
  char buf[200] = {0};
  ASSERT_EQ(ks_socketpair(k, AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ks_epoll_event_t ev = {EPOLLOUT | EPOLLET, 0}, out[2];
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, sv[0], &ev), 0);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 1);
  ASSERT_EQ(ks_send(k, sv[0], buf, 150, 0), 100); /* outside a run: never blocks */
  ASSERT_EQ(ks_send(k, sv[0], buf, 1, 0), -EAGAIN);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 0);
  /* A partial read frees room (the model counts bytes) but wakes nobody: Linux gives a
   * segment's memory back to the sender, and wakes it, only once the segment is consumed... */
  ASSERT_EQ(ks_recv(k, sv[1], buf, 40, 0), 40);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 0);
  ASSERT_EQ(ks_send(k, sv[0], buf, 50, 0), 40);
  /* ...whole, which wakes the sender's EPOLLOUT watchers. */
  ASSERT_EQ(ks_recv(k, sv[1], buf, 60, 0), 60);
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 2, 0), 1);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_socket_listen_connect_accept) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int l = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int c = ks_socket(k, AF_INET, SOCK_STREAM, 0);
  char buf[8];
  ASSERT_EQ(ks_socket(k, AF_INET, SOCK_DGRAM, 0), -ESOCKTNOSUPPORT);
  ASSERT_EQ(ks_connect(k, c, 8080), -ECONNREFUSED);
  ASSERT_EQ(ks_listen(k, l, 1), -EINVAL); /* unbound */
  ASSERT_EQ(ks_bind(k, l, 8080), 0);
  ASSERT_EQ(ks_bind(k, l, 8081), -EINVAL);
  ASSERT_EQ(ks_bind(k, c, 8080), -EADDRINUSE);
  ASSERT_EQ(ks_connect(k, c, 8080), -ECONNREFUSED); /* bound, not listening */
  ASSERT_EQ(ks_accept4(k, l, 0), -EINVAL);
  ASSERT_EQ(ks_listen(k, l, 0), 0);
  ASSERT_EQ(ks_accept4(k, l, 0), -EAGAIN);
  ASSERT_EQ(ks_connect(k, c, 8080), 0);
  ASSERT_EQ(ks_send(k, c, "hi", 2, 0), 2); /* before accept */
  /* Backlog 0 admits one queued connection; a full queue is reported before the connecting
   * socket's own state, as Linux does. */
  int c2 = ks_socket(k, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_EQ(ks_connect(k, c2, 8080), -EAGAIN);
  ASSERT_EQ(ks_connect(k, c, 8080), -EAGAIN);
  int a = ks_accept4(k, l, SOCK_NONBLOCK);
  ASSERT_TRUE(a >= 0);
  ASSERT_EQ(ks_fcntl(k, a, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  ASSERT_EQ(ks_getsockport(k, a), 8080);
  ASSERT_EQ(ks_bind(k, a, 9000), -EINVAL);
  ASSERT_EQ(ks_recv(k, a, buf, 8, 0), 2);
  ASSERT_EQ(ks_connect(k, c, 8080), -EISCONN);
  ASSERT_EQ(ks_connect(k, c2, 8080), 0);
  /* Closing the listener resets what it had not accepted. */
  ASSERT_EQ(ks_close(k, l), 0);
  ASSERT_EQ(ks_recv(k, c2, buf, 8, 0), -ECONNRESET);
  ASSERT_EQ(ks_send(k, a, "ok", 2, 0), 2); /* accepted connections are unaffected */
  ASSERT_EQ(ks_recv(k, c, buf, 8, MSG_DONTWAIT), 2);
  /* The port is free again; port 0 picks an ephemeral one. */
  int l2 = ks_socket(k, AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(ks_bind(k, l2, 8080), 0);
  int l3 = ks_socket(k, AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(ks_bind(k, l3, 0), 0);
  ASSERT_TRUE(ks_getsockport(k, l3) >= 49152);
  ks_kernel_free(k);
  return 0;
}

TEST_IMPL(kernel_regular_and_path_files) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int ep = ks_epoll_create1(k, 0);
  int r = ks_open_regular(k, 0), p = ks_open_path(k, 0);
  char buf[8];
  ks_epoll_event_t ev = {EPOLLIN, 0};
  ASSERT_EQ(ks_write(k, r, "hello", 5), 5);
  ASSERT_EQ(ks_read(k, r, buf, 8), 0); /* the offset is at the end */
  int d = ks_dup(k, r);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, d, &ev), -EPERM);
  ASSERT_EQ(ks_read(k, p, buf, 8), -EBADF);
  ASSERT_EQ(ks_write(k, p, buf, 1), -EBADF);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, p, &ev), -EBADF);
  ASSERT_EQ(ks_epoll_ctl(k, p, EPOLL_CTL_ADD, r, &ev), -EBADF);
  ASSERT_EQ(ks_fcntl(k, p, F_SETFL, O_NONBLOCK), -EBADF);
  ASSERT_EQ(ks_fcntl(k, p, F_GETFL, 0), O_PATH);
  ASSERT_EQ(ks_read(k, ep, buf, 8), -EINVAL);
  ks_kernel_free(k);
  return 0;
}

/* poll outside a run never blocks; the per-entry rules the differential test compares with
 * Linux at random, one by one, and the limits. */
TEST_IMPL(kernel_poll_outside_a_run) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int fds[2], ep = ks_epoll_create1(k, 0);
  ASSERT_EQ(ks_pipe2(k, fds, 0), 0);
  int reg = ks_open_regular(k, 0), path = ks_open_path(k, 0), kq = ks_kqueue(k);
  const short all = POLLIN | POLLPRI | POLLOUT | POLLRDHUP | POLLRDNORM | POLLWRNORM |
                    POLLRDBAND | POLLWRBAND;
  struct pollfd p[8] = {{fds[0], all, 1}, {fds[1], all, 1}, {reg, all, 1}, {path, all, 1},
                        {-1, all, 1},     {200, 0, 1},      {300, all, 1}, {ep, all, 1}};
  ASSERT_EQ(ks_poll(k, p, 8, -1), 5); /* timeout -1, but nothing blocks outside a run */
  ASSERT_EQ(p[0].revents, 0);
  ASSERT_EQ(p[1].revents, POLLOUT | POLLWRNORM);
  ASSERT_EQ(p[2].revents, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM); /* DEFAULT_POLLMASK */
  ASSERT_EQ(p[3].revents, POLLNVAL);
  ASSERT_EQ(p[4].revents, 0);
  ASSERT_EQ(p[5].revents, POLLNVAL);
  ASSERT_EQ(p[6].revents, POLLNVAL);
  ASSERT_EQ(p[7].revents, 0);
  /* Only what was asked, plus POLLERR and POLLHUP whatever was asked. */
  struct pollfd q = {reg, POLLOUT, 0};
  ASSERT_EQ(ks_poll(k, &q, 1, 0), 1);
  ASSERT_EQ(q.revents, POLLOUT);
  q = (struct pollfd){kq, POLLIN, 0}; /* no Linux counterpart: as a file without ->poll */
  ASSERT_EQ(ks_poll(k, &q, 1, 0), 1);
  ASSERT_EQ(q.revents, POLLIN);
  ASSERT_EQ(ks_close(k, fds[0]), 0);
  q = (struct pollfd){fds[1], 0, 0};
  ASSERT_EQ(ks_poll(k, &q, 1, 0), 1);
  ASSERT_EQ(q.revents, POLLERR); /* no reader left */
  ASSERT_EQ(ks_poll(k, NULL, 0, -1), 0);
  ASSERT_EQ(ks_poll(k, NULL, 1, 0), -EFAULT);
  static struct pollfd many[KS_NFD + 1];
  for (int i = 0; i <= KS_NFD; i++) many[i] = (struct pollfd){-1, POLLIN, 0};
  ASSERT_EQ(ks_poll(k, many, KS_NFD, 0), 0);
  ASSERT_EQ(ks_poll(k, many, KS_NFD + 1, 0), -EINVAL); /* Linux: nfds above RLIMIT_NOFILE */
  ks_kernel_free(k);
  return 0;
}

/* Polling an epoll file drops the items on its ready list that are no longer ready, as Linux's
 * ep_eventpoll_poll does, which shows in the order of the next epoll_wait (measured on Linux
 * 6.18: A B without the poll, B A with it). */
static int epoll_order_after(int poll_first, uint64_t out[2]) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int ep = ks_epoll_create1(k, 0);
  int a = ks_eventfd(k, 0, EFD_NONBLOCK), b = ks_eventfd(k, 0, EFD_NONBLOCK);
  ks_epoll_event_t ev = {EPOLLIN, 'A'};
  ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, a, &ev);
  ev.data = 'B';
  ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, b, &ev);
  uint64_t one = 1, v;
  ks_write(k, a, &one, 8); /* A queued */
  ks_read(k, a, &v, 8);    /* not ready, still queued: the read's wake-up is EPOLLOUT */
  ks_write(k, b, &one, 8); /* B queued behind it */
  struct pollfd p = {ep, POLLIN, 0};
  int n = -1;
  if (!poll_first || (ks_poll(k, &p, 1, 0) == 1 && p.revents == POLLIN)) {
    ks_write(k, a, &one, 8); /* A queued again, unless it still is */
    ks_epoll_event_t got[4];
    n = ks_epoll_wait(k, ep, got, 4, 0);
    out[0] = got[0].data;
    out[1] = got[1].data;
  }
  ks_kernel_free(k);
  return n;
}

TEST_IMPL(kernel_poll_of_an_epoll_prunes_its_ready_list) {
  uint64_t order[2];
  ASSERT_EQ(epoll_order_after(0, order), 2);
  ASSERT_U64_EQ(order[0], 'A');
  ASSERT_U64_EQ(order[1], 'B');
  ASSERT_EQ(epoll_order_after(1, order), 2);
  ASSERT_U64_EQ(order[0], 'B');
  ASSERT_U64_EQ(order[1], 'A');
  return 0;
}

/* Teardown with everything still connected and registered; ASan reports any leak. */
TEST_IMPL(kernel_free_releases_everything) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int ep = ks_epoll_create1(k, 0), kq = ks_kqueue(k);
  int l = ks_socket(k, AF_UNIX, SOCK_STREAM, 0);
  ks_bind(k, l, 1);
  ks_listen(k, l, 8);
  for (int i = 0; i < 3; i++) {
    int c = ks_socket(k, AF_UNIX, SOCK_STREAM, 0);
    ks_connect(k, c, 1);
    ks_send(k, c, "data", 4, 0);
    ks_epoll_event_t ev = {EPOLLIN | EPOLLOUT, (uint64_t)i};
    ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, c, &ev);
    ks_kevent_t ch = {(uintptr_t)c, KS_EVFILT_WRITE, KS_EV_ADD, 0, 0, 0};
    ks_kevent(k, kq, &ch, 1, NULL, 0, 0);
  }
  int fds[2];
  ks_pipe2(k, fds, 0);
  ks_write(k, fds[1], "zz", 2);
  ks_open_regular(k, 0);
  ks_write(k, ks_open_regular(k, 0), "abc", 3);
  ks_kernel_free(k);
  return 0;
}

/* A fork holds the process's descriptions: a socket closed meanwhile keeps its epoll item
 * (reported with its old data once the peer writes) until the child execs; a descriptor not
 * in the forking process's set is not held. Also the peer and interest-list accessors. */
TEST_IMPL(kernel_fork_keeps_closed_socket_registered) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int ep = ks_epoll_create1(k, 0);
  int sv[2];
  ASSERT_EQ(ks_socketpair(k, AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_EQ(ks_sock_peer_id(k, sv[0]), ks_fd_ofd_id(k, sv[1]));
  ks_epoll_event_t ev = {EPOLLIN, 42};
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, sv[0], &ev), 0);
  uint8_t set[KS_NFD / 8] = {0};
  set[sv[0] / 8] |= 1u << (sv[0] % 8);
  ks_fork_t *child = ks_fork(k, set);
  ASSERT_EQ(ks_close(k, sv[0]), 0);
  ks_epoll_item_t items[4];
  ASSERT_EQ(ks_epoll_items(k, ep, items, 4), 1);
  ASSERT_EQ(items[0].data, 42);
  ASSERT_EQ(ks_send(k, sv[1], "x", 1, 0), 1);
  ks_epoll_event_t out[4];
  ASSERT_EQ(ks_epoll_wait(k, ep, out, 4, 0), 1);
  ASSERT_EQ(out[0].data, 42);
  ks_fork_exec(k, child);
  ASSERT_EQ(ks_epoll_items(k, ep, items, 4), 0);
  ASSERT_EQ(ks_sock_peer_id(k, sv[1]), -ENOTCONN);
  /* Not in the set: the close releases it at once. */
  ASSERT_EQ(ks_socketpair(k, AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_EQ(ks_epoll_ctl(k, ep, EPOLL_CTL_ADD, sv[0], &ev), 0);
  child = ks_fork(k, set[0] ? (uint8_t[KS_NFD / 8]){0} : set);
  ASSERT_EQ(ks_close(k, sv[0]), 0);
  ASSERT_EQ(ks_epoll_items(k, ep, items, 4), 0);
  ks_kernel_free(k); /* with the child still between fork and exec */
  return 0;
}
