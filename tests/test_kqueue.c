/* test_kqueue.c: the simulated kernel's kqueue against the written BSD semantics
 * (specs/epoll-shim.md §B1; kqueue(2)), one test per rule. Linux has no kqueue, so these are
 * the reference. */
#include "kernel.h"
#include "task.h"

typedef struct kq_world {
  ks_kernel_t *k;
  int kq, rd, wr;
} kq_world_t;

static void kq_setup(kq_world_t *w) {
  w->k = ks_kernel_new(NULL);
  w->kq = ks_kqueue(w->k);
  int fds[2];
  ks_pipe2(w->k, fds, O_NONBLOCK);
  w->rd = fds[0];
  w->wr = fds[1];
}

static ks_kevent_t change(int ident, int16_t filter, uint16_t flags, uint64_t udata) {
  ks_kevent_t ev = {(uintptr_t)ident, filter, flags, 0, 0, udata};
  return ev;
}

/* Apply one change with no eventlist. */
static int apply(kq_world_t *w, int ident, int16_t filter, uint16_t flags, uint64_t udata) {
  ks_kevent_t ch = change(ident, filter, flags, udata);
  return ks_kevent(w->k, w->kq, &ch, 1, NULL, 0, 0);
}

static int poll_events(kq_world_t *w, ks_kevent_t *out, int max) {
  return ks_kevent(w->k, w->kq, NULL, 0, out, max, 0);
}

static void put(kq_world_t *w, const char *s) { ks_write(w->k, w->wr, s, strlen(s)); }

TEST_IMPL(kernel_kqueue_ev_add_overwrites_flags_and_udata) {
  kq_world_t w;
  ks_kevent_t ev[4];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 1), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD | KS_EV_CLEAR, 2), 0);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 4), 1); /* one knote per (ident, filter) */
  ASSERT_U64_EQ(ev[0].udata, 2);
  put(&w, "abc");
  ASSERT_EQ(poll_events(&w, ev, 4), 1);
  ASSERT_U64_EQ(ev[0].udata, 2);
  ASSERT_EQ(ev[0].data, 3);
  ASSERT_TRUE(ev[0].flags & KS_EV_CLEAR);
  /* The new EV_CLEAR took effect: no second report without a new activation. */
  ASSERT_EQ(poll_events(&w, ev, 4), 0);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_ev_delete_missing_is_enoent) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_DELETE, 0), -ENOENT);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 0), 0);
  /* The write filter of the same ident is a different knote. */
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_WRITE, KS_EV_DELETE, 0), -ENOENT);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_DELETE, 0), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_DELETE, 0), -ENOENT);
  /* EV_ENABLE of a missing knote is ENOENT too: only EV_ADD creates. */
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ENABLE, 0), -ENOENT);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 2), 0);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_close_drops_knotes_while_dup_survives) {
  kq_world_t w;
  ks_kevent_t ev[4];
  kq_setup(&w);
  int dup = ks_dup(w.k, w.rd);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 7), 0);
  ASSERT_EQ(ks_close(w.k, w.rd), 0);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 4), 0);
  put(&w, "x");
  ASSERT_EQ(poll_events(&w, ev, 4), 0); /* the file is readable through dup, but unwatched */
  char c;
  ASSERT_EQ(ks_read(w.k, dup, &c, 1), 1);
  /* dup2 over a watched number drops its knotes the same way. */
  ASSERT_EQ(apply(&w, dup, KS_EVFILT_READ, KS_EV_ADD, 8), 0);
  int other = ks_eventfd(w.k, 0, 0);
  ASSERT_EQ(ks_dup2(w.k, other, dup), dup);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 4), 0);
  /* Knotes on other numbers of the same kqueue stay. */
  ASSERT_EQ(apply(&w, w.wr, KS_EVFILT_WRITE, KS_EV_ADD, 9), 0);
  ASSERT_EQ(ks_close(w.k, other), 0);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 4), 1);
  ASSERT_U64_EQ(ev[0].udata, 9);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_close_drops_knotes_in_every_kqueue) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  int kq2 = ks_kqueue(w.k);
  ks_kevent_t ch = change(w.rd, KS_EVFILT_READ, KS_EV_ADD, 1);
  ASSERT_EQ(ks_kevent(w.k, kq2, &ch, 1, NULL, 0, 0), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 1), 0);
  ASSERT_EQ(ks_close(w.k, w.rd), 0);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 2), 0);
  ASSERT_EQ(ks_kqueue_knotes(w.k, kq2, ev, 2), 0);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_ev_clear_reports_new_activations_only) {
  kq_world_t w;
  ks_kevent_t ev[2];
  char buf[8];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD | KS_EV_CLEAR, 0), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 0);
  put(&w, "ab");
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(ev[0].data, 2);
  ASSERT_EQ(poll_events(&w, ev, 2), 0); /* still readable, but nothing new happened */
  put(&w, "c");
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(ev[0].data, 3);
  /* A read that leaves bytes behind changes the count: the knote fires again (the EV_CLEAR
   * re-arm that makes EPOLLET-over-kqueue diverge from Linux after a partial read). */
  ASSERT_EQ(ks_read(w.k, w.rd, buf, 1), 1);
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(ev[0].data, 2);
  /* A draining read does not. */
  ASSERT_EQ(ks_read(w.k, w.rd, buf, sizeof buf), 2);
  ASSERT_EQ(poll_events(&w, ev, 2), 0);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_level_triggered_by_default) {
  kq_world_t w;
  ks_kevent_t ev[2];
  char buf[8];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 0), 0);
  put(&w, "ab");
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(ks_read(w.k, w.rd, buf, sizeof buf), 2);
  ASSERT_EQ(poll_events(&w, ev, 2), 0);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_ev_oneshot_deletes_after_delivery) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD | KS_EV_ONESHOT, 5), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 0); /* not delivered yet: stays */
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 2), 1);
  put(&w, "a");
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_U64_EQ(ev[0].udata, 5);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 2), 0);
  put(&w, "b");
  ASSERT_EQ(poll_events(&w, ev, 2), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_DELETE, 0), -ENOENT);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_ev_dispatch_disables_until_enable) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD | KS_EV_DISPATCH, 3), 0);
  put(&w, "a");
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(poll_events(&w, ev, 2), 0); /* disabled after delivery */
  put(&w, "b");
  ASSERT_EQ(poll_events(&w, ev, 2), 0);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 2), 1); /* still registered */
  ASSERT_TRUE(ev[0].flags & KS_EV_DISABLE);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ENABLE, 0), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(ev[0].data, 2);
  ASSERT_U64_EQ(ev[0].udata, 3); /* EV_ENABLE alone keeps the udata */
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_ev_disable_and_enable) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 0), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_DISABLE, 0), 0);
  put(&w, "a");
  ASSERT_EQ(poll_events(&w, ev, 2), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ENABLE, 0), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  /* A knote added disabled waits for EV_ENABLE as well. */
  ASSERT_EQ(apply(&w, w.wr, KS_EVFILT_WRITE, KS_EV_ADD | KS_EV_DISABLE, 0), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_EQ(ev[0].filter, KS_EVFILT_READ);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_ev_eof_on_pipe_and_socket) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 0), 0);
  ASSERT_EQ(ks_close(w.k, w.wr), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_TRUE(ev[0].flags & KS_EV_EOF);
  ASSERT_EQ(ev[0].data, 0);
  /* The write end with its reader gone. */
  int fds[2];
  ks_pipe2(w.k, fds, O_NONBLOCK);
  ASSERT_EQ(apply(&w, fds[1], KS_EVFILT_WRITE, KS_EV_ADD | KS_EV_CLEAR, 0), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 2); /* writable from the start; the read EOF again */
  ASSERT_EQ(ks_close(w.k, fds[0]), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 2);
  ASSERT_EQ(ev[1].filter, KS_EVFILT_WRITE);
  ASSERT_TRUE(ev[1].flags & KS_EV_EOF);
  /* A socket whose peer shut down its sending side. */
  int sv[2];
  ASSERT_EQ(ks_socketpair(w.k, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_DELETE, 0), 0);
  ASSERT_EQ(apply(&w, fds[1], KS_EVFILT_WRITE, KS_EV_DELETE, 0), 0);
  ASSERT_EQ(apply(&w, sv[0], KS_EVFILT_READ, KS_EV_ADD, 0), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 0);
  ASSERT_EQ(ks_send(w.k, sv[1], "hi", 2, 0), 2);
  ASSERT_EQ(ks_shutdown(w.k, sv[1], SHUT_WR), 0);
  ASSERT_EQ(poll_events(&w, ev, 2), 1);
  ASSERT_TRUE(ev[0].flags & KS_EV_EOF);
  ASSERT_EQ(ev[0].data, 2); /* the bytes still to read */
  ks_kernel_free(w.k);
  return 0;
}

/* A changelist whose second change fails: [ADD rd READ, DELETE wr WRITE (missing), ADD wr
 * WRITE]. */
static int failing_changelist(kq_world_t *w, ks_kevent_t *events, int nevents) {
  ks_kevent_t ch[3] = {change(w->rd, KS_EVFILT_READ, KS_EV_ADD, 1),
                       change(w->wr, KS_EVFILT_WRITE, KS_EV_DELETE, 2),
                       change(w->wr, KS_EVFILT_WRITE, KS_EV_ADD, 3)};
  return ks_kevent(w->k, w->kq, ch, 3, events, nevents, 0);
}

TEST_IMPL(kernel_kqueue_changelist_stops_at_error_without_room) {
  kq_world_t w;
  ks_kevent_t ev[4];
  kq_setup(&w);
  put(&w, "a");
  ASSERT_EQ(failing_changelist(&w, NULL, 0), -ENOENT);
  /* The first change was applied, the third never attempted. */
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 4), 1);
  ASSERT_EQ(ev[0].filter, KS_EVFILT_READ);
  ASSERT_U64_EQ(ev[0].udata, 1);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_changelist_errors_become_ev_error_entries) {
  kq_world_t w;
  ks_kevent_t ev[4];
  kq_setup(&w);
  put(&w, "a");
  /* With room: an EV_ERROR entry, processing goes on, no events are collected. */
  ASSERT_EQ(failing_changelist(&w, ev, 4), 1);
  ASSERT_EQ(ev[0].flags, KS_EV_ERROR);
  ASSERT_EQ(ev[0].data, ENOENT);
  ASSERT_EQ((int)ev[0].ident, w.wr);
  ASSERT_EQ(ev[0].filter, KS_EVFILT_WRITE);
  ASSERT_U64_EQ(ev[0].udata, 2);
  ASSERT_EQ(ks_kqueue_knotes(w.k, w.kq, ev, 4), 2);
  /* The events were left for the next call. */
  ASSERT_EQ(poll_events(&w, ev, 4), 2);
  /* Room for only the first of two errors: reported, then the second fails the call. */
  ks_kevent_t ch[2] = {change(90, KS_EVFILT_READ, KS_EV_ADD, 0),
                       change(91, KS_EVFILT_READ, KS_EV_ADD, 0)};
  ASSERT_EQ(ks_kevent(w.k, w.kq, ch, 2, ev, 1, 0), -EBADF);
  ASSERT_EQ(ev[0].flags, KS_EV_ERROR);
  ASSERT_EQ((int)ev[0].ident, 90);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_ebadf_ident) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  ASSERT_EQ(apply(&w, 77, KS_EVFILT_READ, KS_EV_ADD, 0), -EBADF);
  ASSERT_EQ(apply(&w, 100000, KS_EVFILT_READ, KS_EV_ADD, 0), -EBADF);
  int path = ks_open_path(w.k, 0);
  ASSERT_EQ(apply(&w, path, KS_EVFILT_READ, KS_EV_ADD, 0), -EBADF);
  ks_kevent_t ch = change(77, KS_EVFILT_READ, KS_EV_ADD, 0);
  ASSERT_EQ(ks_kevent(w.k, w.kq, &ch, 1, ev, 2, 0), 1);
  ASSERT_EQ(ev[0].data, EBADF);
  /* An unknown filter, and a filter the file does not have. */
  ASSERT_EQ(apply(&w, w.rd, -9, KS_EV_ADD, 0), -EINVAL);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_WRITE, KS_EV_ADD, 0), -EINVAL);
  /* kevent on something that is not a kqueue. */
  ASSERT_EQ(ks_kevent(w.k, w.rd, NULL, 0, ev, 2, 0), -EBADF);
  ASSERT_EQ(ks_kevent(w.k, 99, NULL, 0, ev, 2, 0), -EBADF);
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_dup_shares_and_last_close_frees) {
  kq_world_t w;
  ks_kevent_t ev[2];
  kq_setup(&w);
  int kq2 = ks_dup(w.k, w.kq);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 4), 0);
  ASSERT_EQ(ks_close(w.k, w.kq), 0);
  put(&w, "z");
  ASSERT_EQ(ks_kevent(w.k, kq2, NULL, 0, ev, 2, 0), 1);
  ASSERT_U64_EQ(ev[0].udata, 4);
  ASSERT_EQ(ks_close(w.k, kq2), 0); /* frees the kqueue and its knote (ASan checks) */
  put(&w, "z");
  ks_kernel_free(w.k);
  return 0;
}

TEST_IMPL(kernel_kqueue_filter_data) {
  ks_config_t cfg;
  ks_config_default(&cfg);
  cfg.sock_buf_bytes = 1000;
  ks_kernel_t *k = ks_kernel_new(&cfg);
  int kq = ks_kqueue(k);
  int l = ks_socket(k, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_EQ(ks_bind(k, l, 80), 0);
  ASSERT_EQ(ks_listen(k, l, 8), 0);
  ks_kevent_t ch[2] = {{(uintptr_t)l, KS_EVFILT_READ, KS_EV_ADD, 0, 0, 0}};
  ASSERT_EQ(ks_kevent(k, kq, ch, 1, NULL, 0, 0), 0);
  int c1 = ks_socket(k, AF_UNIX, SOCK_STREAM, 0), c2 = ks_socket(k, AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(ks_connect(k, c1, 80), 0);
  ASSERT_EQ(ks_connect(k, c2, 80), 0);
  ks_kevent_t ev[2];
  ASSERT_EQ(ks_kevent(k, kq, NULL, 0, ev, 2, 0), 1);
  ASSERT_EQ(ev[0].data, 2); /* accept queue length */
  /* Write filter: the room left in the peer's buffer. */
  ch[0] = (ks_kevent_t){(uintptr_t)l, KS_EVFILT_READ, KS_EV_DELETE, 0, 0, 0};
  ch[1] = (ks_kevent_t){(uintptr_t)c1, KS_EVFILT_WRITE, KS_EV_ADD, 0, 0, 0};
  ASSERT_EQ(ks_kevent(k, kq, ch, 2, NULL, 0, 0), 0);
  ASSERT_EQ(ks_send(k, c1, "0123456789", 10, MSG_DONTWAIT), 10);
  ASSERT_EQ(ks_kevent(k, kq, NULL, 0, ev, 2, 0), 1);
  ASSERT_EQ(ev[0].data, 990);
  ks_kernel_free(k);
  return 0;
}

/* A kqueue watching a kqueue (XNU filt_kqueue): EVFILT_READ only, data = knotes waiting on
 * the inner active queue, fires while that is > 0; the count is not re-validated, so a drained
 * pipe's activation keeps the inner kqueue readable until someone collects it. */
TEST_IMPL(kernel_kqueue_watches_a_kqueue) {
  kq_world_t w;
  ks_kevent_t ev[4];
  kq_setup(&w);
  int outer = ks_kqueue(w.k);
  ks_kevent_t ch = change(w.kq, KS_EVFILT_WRITE, KS_EV_ADD, 9);
  ASSERT_EQ(ks_kevent(w.k, outer, &ch, 1, NULL, 0, 0), -EINVAL);
  ch = change(outer, KS_EVFILT_READ, KS_EV_ADD, 9);
  ASSERT_EQ(ks_kevent(w.k, outer, &ch, 1, NULL, 0, 0), -EINVAL); /* itself */
  ch = change(w.kq, KS_EVFILT_READ, KS_EV_ADD, 9);
  ASSERT_EQ(ks_kevent(w.k, outer, &ch, 1, NULL, 0, 0), 0);
  ASSERT_EQ(ks_kevent(w.k, outer, NULL, 0, ev, 4, 0), 0); /* nothing pending inside */
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 1), 0);
  put(&w, "ab");
  ASSERT_EQ(ks_kevent(w.k, outer, NULL, 0, ev, 4, 0), 1); /* the inner activation woke it */
  ASSERT_EQ((int)ev[0].ident, w.kq);
  ASSERT_EQ(ev[0].data, 1);
  ASSERT_U64_EQ(ev[0].udata, 9);
  /* Drained without collecting from the inner kqueue: its knote is still queued, so it still
   * reads as ready (level-triggered outer knote). */
  char buf[4];
  ASSERT_EQ(ks_read(w.k, w.rd, buf, sizeof buf), 2);
  ASSERT_EQ(ks_kevent(w.k, outer, NULL, 0, ev, 4, 0), 1);
  /* Collecting from the inner kqueue drops the stale activation; then the outer is quiet. */
  ASSERT_EQ(poll_events(&w, ev, 4), 0);
  ASSERT_EQ(ks_kevent(w.k, outer, NULL, 0, ev, 4, 0), 0);
  ks_kernel_free(w.k);
  return 0;
}

/* EV_CLEAR on a kqueue knote fires when a knote newly joins the inner active queue, not when
 * one already queued is activated again (KNOTE on kq_sel comes from knote_enqueue only). */
TEST_IMPL(kernel_kqueue_nested_clear_fires_on_new_enqueue_only) {
  kq_world_t w;
  ks_kevent_t ev[4];
  kq_setup(&w);
  int outer = ks_kqueue(w.k);
  ks_kevent_t ch = change(w.kq, KS_EVFILT_READ, KS_EV_ADD | KS_EV_CLEAR, 9);
  ASSERT_EQ(ks_kevent(w.k, outer, &ch, 1, NULL, 0, 0), 0);
  ASSERT_EQ(apply(&w, w.rd, KS_EVFILT_READ, KS_EV_ADD, 1), 0);
  put(&w, "a");
  ASSERT_EQ(ks_kevent(w.k, outer, NULL, 0, ev, 4, 0), 1);
  put(&w, "b"); /* the inner knote is queued already: no new enqueue, no wake */
  ASSERT_EQ(ks_kevent(w.k, outer, NULL, 0, ev, 4, 0), 0);
  ks_kernel_free(w.k);
  return 0;
}

/* XNU's ceiling protocol (kqueue_kqfilter): B in A sets A's level 2 and B's 1, so A in B
 * (a loop) is EINVAL; a kqueue nested under a parent at level 1 leaves the parent at 1, so
 * the protocol lets the loop C in B, B in C through. A probe knote added disabled still nests. */
TEST_IMPL(kernel_kqueue_nesting_ceiling) {
  ks_kernel_t *k = ks_kernel_new(NULL);
  int a = ks_kqueue(k), b = ks_kqueue(k), c = ks_kqueue(k);
  ks_kevent_t ch = {(uintptr_t)b, KS_EVFILT_READ, KS_EV_ADD | KS_EV_DISABLE, 0, 0, 0};
  ASSERT_EQ(ks_kevent(k, a, &ch, 1, NULL, 0, 0), 0); /* A: 2, B: 1 */
  ch.ident = (uintptr_t)a;
  ASSERT_EQ(ks_kevent(k, b, &ch, 1, NULL, 0, 0), -EINVAL);
  ch.ident = (uintptr_t)c;
  ASSERT_EQ(ks_kevent(k, b, &ch, 1, NULL, 0, 0), 0); /* B stays 1, C: 1 */
  ch.ident = (uintptr_t)b;
  ASSERT_EQ(ks_kevent(k, c, &ch, 1, NULL, 0, 0), 0); /* C: 2, a loop B <-> C */
  /* A wake-up goes round the loop once: enable both and make C's inner queue non-empty. */
  ch.flags = KS_EV_ENABLE;
  ASSERT_EQ(ks_kevent(k, c, &ch, 1, NULL, 0, 0), 0);
  ch.ident = (uintptr_t)c;
  ASSERT_EQ(ks_kevent(k, b, &ch, 1, NULL, 0, 0), 0);
  int fds[2];
  ks_pipe2(k, fds, O_NONBLOCK);
  ks_kevent_t rd = {(uintptr_t)fds[0], KS_EVFILT_READ, KS_EV_ADD, 0, 0, 7};
  ASSERT_EQ(ks_kevent(k, c, &rd, 1, NULL, 0, 0), 0);
  ks_write(k, fds[1], "x", 1);
  ks_kevent_t ev[4];
  ASSERT_EQ(ks_kevent(k, b, NULL, 0, ev, 4, 0), 1);
  ASSERT_EQ((int)ev[0].ident, c);
  ks_kernel_free(k);
  return 0;
}
