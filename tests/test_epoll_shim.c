/* test_epoll_shim.c: the epoll shim copy (harness/epoll_shim/) against the rules of
 * specs/epoll-shim.md, one simulated run per test, and its scenario seeds both ways. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "run.h"
#include "shim.h"
#include "task.h"
#include "targets.h"
#include "tolerated.h"

/* Checks inside a run record the first failing line; the test asserts on it afterwards. */
static int failed_line;
static char failed_what[160];
#define CHECK_EQ(a, b)                                                                 \
  do {                                                                                 \
    long long a_ = (long long)(a), b_ = (long long)(b);                                \
    if (a_ != b_ && !failed_line) {                                                    \
      failed_line = __LINE__;                                                          \
      snprintf(failed_what, sizeof failed_what, "%s == %s (%lld vs %lld)", #a, #b, a_, b_); \
    }                                                                                  \
  } while (0)

typedef struct shim_world {
  ks_kernel_t *host;
  shim_t s;
  guest_thread_t t;
} shim_world_t;

static void world_free(void *arg) { ks_kernel_free(((shim_world_t *)arg)->host); }

static shim_world_t *world_new(void) {
  shim_world_t *w = cf_sim_alloc(sizeof *w);
  w->host = ks_kernel_new(NULL);
  cf_defer(world_free, w);
  shim_init(&w->s, w->host);
  w->t.shim = &w->s;
  return w;
}

static int run_in_sim(void (*main_fn)(void *), uint64_t bugs) {
  cf_target_t t = {.name = "epoll-shim-unit", .system = SHIM_SYSTEM, .main = main_fn};
  t.options.capture = true;
  uint64_t saved = cf_bugs_enabled;
  cf_bugs_enabled = bugs;
  failed_line = 0;
  cf_result_t res;
  cf_run(&t, NULL, 0, &res);
  cf_bugs_enabled = saved;
  if (res.failed) {
    fprintf(stderr, "  run failed: %s@%s: %s\n", res.oracle, res.site, res.detail);
    return 1;
  }
  if (failed_line) fprintf(stderr, "  check failed at line %d: %s\n", failed_line, failed_what);
  return failed_line ? 1 : 0;
}

static uint64_t bug_mask(cf_bug_t b) { return 1ull << b; }

static int knotes_on(shim_world_t *w, int epfd, int ident, int udata) {
  ks_kevent_t kn[32];
  int n = ks_kqueue_knotes(w->host, w->s.fd_table[epfd].host_fd, kn, 32), hits = 0;
  for (int i = 0; i < n && i < 32; i++)
    if ((int)kn[i].ident == ident && (int)udata_fd(kn[i].udata) == udata) hits++;
  return hits;
}

/* ---- fd table ------------------------------------------------------------------------------ */

static void fd_table_main(void *arg) {
  (void)arg;
  shim_world_t *w = world_new();
  shim_t *s = &w->s;
  guest_thread_t *t = &w->t;
  int fds[2];
  CHECK_EQ(sys_eventfd2(s, t, 0, EFD_NONBLOCK), 0);
  CHECK_EQ(sys_pipe2(s, t, fds, O_NONBLOCK), 0);
  CHECK_EQ(fds[0], 1);
  CHECK_EQ(fds[1], 2);
  uint64_t gen1 = s->fd_table[1].generation;
  CHECK_EQ(sys_close(s, t, 1), 0);
  CHECK_EQ(sys_close(s, t, 1), -EBADF);
  CHECK_EQ(sys_open_path(s, t, O_CLOEXEC), 1); /* lowest free: the closed number again */
  CHECK_EQ(s->fd_table[1].generation > gen1, 1);
  CHECK_EQ(s->fd_table[1].type, FD_PATH);
  CHECK_EQ((s->fd_table[1].linux_flags & LINUX_O_CLOEXEC) != 0, 1);
  /* dup: a new host fd, the same description, cloexec cleared; dup3 can set it. */
  CHECK_EQ(sys_dup(s, t, 1), 3);
  CHECK_EQ(s->fd_table[3].ofd_id, s->fd_table[1].ofd_id);
  CHECK_EQ(s->fd_table[3].host_fd != s->fd_table[1].host_fd, 1);
  CHECK_EQ(s->fd_table[3].linux_flags & LINUX_O_CLOEXEC, 0);
  CHECK_EQ(sys_dup3(s, t, 0, 2, LINUX_O_CLOEXEC, false), 2); /* replaces the write end */
  CHECK_EQ(s->fd_table[2].type, FD_EVENTFD);
  CHECK_EQ(s->fd_table[2].efd, s->fd_table[0].efd);
  CHECK_EQ(sys_dup3(s, t, 0, 0, 0, false), -EINVAL);
  CHECK_EQ(sys_dup3(s, t, 0, 0, 0, true), 0);
  CHECK_EQ(sys_dup(s, t, 9), -EBADF);
  /* the dup shares the eventfd counter */
  uint64_t v = 5, got = 0;
  CHECK_EQ(sys_write(s, t, 0, &v, 8), 8);
  CHECK_EQ(sys_read(s, t, 2, &got, 8), 8);
  CHECK_EQ(got, 5);
  CHECK_EQ(sys_read(s, t, 0, &got, 8), -EAGAIN);
}

TEST_IMPL(epoll_shim_fd_table_lowest_free_generation_dup) { return run_in_sim(fd_table_main, 0); }

/* ---- epoll_ctl rules -------------------------------------------------------------------- */

static void ctl_rules_main(void *arg) {
  (void)arg;
  shim_world_t *w = world_new();
  shim_t *s = &w->s;
  guest_thread_t *t = &w->t;
  int ep = sys_epoll_create1(s, t, 0), efd = sys_eventfd2(s, t, 0, EFD_NONBLOCK);
  int reg = sys_open_regular(s, t, 0), path = sys_open_path(s, t, 0);
  linux_epoll_event_t ev = {EPOLLIN, 7};
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, efd, &ev), 0);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, efd, &ev), -EEXIST);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_MOD, efd, &ev), 0);
  CHECK_EQ(knotes_on(w, ep, s->fd_table[efd].host_fd, efd), 1);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_DEL, efd, NULL), 0);
  CHECK_EQ(knotes_on(w, ep, s->fd_table[efd].host_fd, efd), 0);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_DEL, efd, NULL), -ENOENT);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_MOD, efd, &ev), -ENOENT);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, ep, &ev), -EINVAL);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, reg, &ev), -EPERM);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, path, &ev), -EBADF);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, 40, &ev), -EBADF);
  CHECK_EQ(sys_epoll_ctl(s, t, efd, EPOLL_CTL_ADD, ep, &ev), -EINVAL); /* epfd not an epoll */
  CHECK_EQ(sys_epoll_ctl(s, t, path, EPOLL_CTL_ADD, efd, &ev), -EBADF);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, 9, efd, &ev), -EINVAL);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, efd, NULL), -EFAULT);
}

TEST_IMPL(epoll_shim_ctl_errors_in_linux_order) { return run_in_sim(ctl_rules_main, 0); }

/* Close + reuse of a number whose registration a dup kept (26de80c): the generation guard
 * makes DEL/MOD answer ENOENT and ADD start fresh; without it they act on the new file. */
static void aba_main(void *arg) {
  bool no_guard = arg != NULL;
  shim_world_t *w = world_new();
  shim_t *s = &w->s;
  guest_thread_t *t = &w->t;
  int a = sys_eventfd2(s, t, 0, EFD_NONBLOCK), ep = sys_epoll_create1(s, t, 0);
  linux_epoll_event_t ev = {EPOLLIN, 1};
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, a, &ev), 0);
  CHECK_EQ(sys_dup(s, t, a), 2);
  CHECK_EQ(sys_close(s, t, a), 0);
  CHECK_EQ(s->fd_table[ep].dir->regs[a].active, 1); /* kept: fd 2 shares the description */
  CHECK_EQ(sys_eventfd2(s, t, 0, EFD_NONBLOCK), a);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_DEL, a, NULL), no_guard ? 0 : -ENOENT);
}

static void aba_no_guard_main(void *arg) { aba_main((void *)1); (void)arg; }

TEST_IMPL(epoll_shim_generation_guard_after_reuse) {
  if (run_in_sim(aba_main, 0)) return 1;
  return run_in_sim(aba_no_guard_main, bug_mask(CF_BUG_EPOLL_73_NO_GENERATION));
}

/* PR #73: with a second guest thread the knote must sit on the persistent host fd. */
static void mt_knote_main(void *arg) {
  bool buggy = arg != NULL;
  shim_world_t *w = world_new();
  shim_t *s = &w->s;
  guest_thread_t *t = &w->t;
  int efd = sys_eventfd2(s, t, 0, EFD_NONBLOCK), ep = sys_epoll_create1(s, t, 0);
  guest_thread_started(s); /* a sibling exists: host_fd_ref_open now dups */
  linux_epoll_event_t ev = {EPOLLIN, 3};
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, efd, &ev), 0);
  CHECK_EQ(knotes_on(w, ep, s->fd_table[efd].host_fd, efd), buggy ? 0 : 1);
  uint64_t v = 1;
  sys_write(s, t, efd, &v, 8);
  linux_epoll_event_t out[4];
  CHECK_EQ(sys_epoll_pwait(s, t, ep, out, 4, 0), buggy ? 0 : 1);
}

static void mt_knote_buggy_main(void *arg) { mt_knote_main((void *)1); (void)arg; }

TEST_IMPL(epoll_shim_mt_ctl_keys_the_persistent_host_fd) {
  if (run_in_sim(mt_knote_main, 0)) return 1;
  return run_in_sim(mt_knote_buggy_main, bug_mask(CF_BUG_EPOLL_73_TRANSIENT_DUP));
}

/* EPOLLONESHOT: one report per arm; ADD stays EEXIST, MOD re-arms, DEL succeeds. */
static void oneshot_main(void *arg) {
  (void)arg;
  shim_world_t *w = world_new();
  shim_t *s = &w->s;
  guest_thread_t *t = &w->t;
  int efd = sys_eventfd2(s, t, 0, EFD_NONBLOCK), ep = sys_epoll_create1(s, t, 0);
  linux_epoll_event_t ev = {EPOLLIN | EPOLLONESHOT, 9}, out[4];
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, efd, &ev), 0);
  uint64_t v = 1;
  sys_write(s, t, efd, &v, 8);
  CHECK_EQ(sys_epoll_pwait(s, t, ep, out, 4, 0), 1);
  CHECK_EQ(out[0].data, 9);
  CHECK_EQ(sys_epoll_pwait(s, t, ep, out, 4, 0), 0);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, efd, &ev), -EEXIST);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_MOD, efd, &ev), 0);
  CHECK_EQ(sys_epoll_pwait(s, t, ep, out, 4, 0), 1);
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_DEL, efd, NULL), 0);
}

TEST_IMPL(epoll_shim_oneshot_once_per_arm) { return run_in_sim(oneshot_main, 0); }

/* PR #146: close clears the number's registrations (unless a dup shares the description). */
static void close_hook_main(void *arg) {
  bool buggy = arg != NULL;
  shim_world_t *w = world_new();
  shim_t *s = &w->s;
  guest_thread_t *t = &w->t;
  int ep = sys_epoll_create1(s, t, 0), efd = sys_eventfd2(s, t, 0, EFD_NONBLOCK);
  linux_epoll_event_t ev = {EPOLLIN, 2};
  CHECK_EQ(sys_epoll_ctl(s, t, ep, EPOLL_CTL_ADD, efd, &ev), 0);
  CHECK_EQ(sys_close(s, t, efd), 0);
  CHECK_EQ(s->fd_table[ep].dir->regs[efd].active, buggy ? 1 : 0);
}

static void close_hook_buggy_main(void *arg) { close_hook_main((void *)1); (void)arg; }

TEST_IMPL(epoll_shim_close_clears_registrations) {
  if (run_in_sim(close_hook_main, 0)) return 1;
  return run_in_sim(close_hook_buggy_main, bug_mask(CF_BUG_EPOLL_146_NO_CLOSE_HOOK));
}

/* PR #73 ioctls: FIOCLEX/FIONCLEX on O_PATH, FIONBIO toggles O_NONBLOCK on the description. */
static void ioctl_main(void *arg) {
  (void)arg;
  shim_world_t *w = world_new();
  shim_t *s = &w->s;
  guest_thread_t *t = &w->t;
  bool opath_bug = cf_bug(CF_BUG_EPOLL_73_FIOCLEX_OPATH), nbio_bug = cf_bug(CF_BUG_EPOLL_73_FIONBIO_ENOTTY);
  int path = sys_open_path(s, t, 0), fds[2];
  CHECK_EQ(sys_ioctl(s, t, path, LINUX_FIOCLEX, 0), opath_bug ? -EBADF : 0);
  CHECK_EQ((s->fd_table[path].linux_flags & LINUX_O_CLOEXEC) != 0, !opath_bug);
  CHECK_EQ(sys_ioctl(s, t, path, LINUX_FIONCLEX, 0), opath_bug ? -EBADF : 0);
  CHECK_EQ(sys_pipe2(s, t, fds, 0), 0);
  CHECK_EQ(sys_ioctl(s, t, fds[0], LINUX_FIONBIO, 1), nbio_bug ? -ENOTTY : 0);
  char c;
  if (!nbio_bug) CHECK_EQ(sys_read(s, t, fds[0], &c, 1), -EAGAIN);
  CHECK_EQ(sys_ioctl(s, t, path, LINUX_FIONBIO, 1), -EBADF);
}

TEST_IMPL(epoll_shim_ioctl_cloexec_and_fionbio) {
  if (run_in_sim(ioctl_main, 0)) return 1;
  if (run_in_sim(ioctl_main, bug_mask(CF_BUG_EPOLL_73_FIOCLEX_OPATH))) return 1;
  return run_in_sim(ioctl_main, bug_mask(CF_BUG_EPOLL_73_FIONBIO_ENOTTY));
}

/* ---- the scenario seeds ----------------------------------------------------------------------- */

static void run_input(const uint8_t *buf, size_t n, uint64_t bugs, cf_result_t *res) {
  cf_target_t t = fuzz_epoll_shim_target;
  t.options.capture = true;
  uint64_t saved = cf_bugs_enabled;
  cf_bugs_enabled = bugs;
  cf_run(&t, buf, n, res);
  cf_bugs_enabled = saved;
}

static int run_seed(const char *name, uint64_t bugs, cf_result_t *res) {
  char path[256];
  snprintf(path, sizeof path, "corpus/fuzz_epoll_shim/%s", name);
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  uint8_t buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  run_input(buf, n, bugs, res);
  return 0;
}

/* Every seed passes with the toggles off (the committed corpus is clean). */
TEST_IMPL(epoll_shim_seeds_pass_without_toggles) {
  DIR *d = opendir("corpus/fuzz_epoll_shim");
  ASSERT_TRUE(d != NULL);
  struct dirent *e;
  int seeds = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    cf_result_t res;
    ASSERT_EQ(run_seed(e->d_name, 0, &res), 0);
    if (res.failed) {
      char name[256];
      snprintf(name, sizeof name, "%s", e->d_name);
      closedir(d);
      FAIL_MSG("%s failed: %s@%s: %s", name, res.oracle, res.site, res.detail);
    }
    seeds++;
  }
  closedir(d);
  ASSERT_TRUE(seeds >= 8);
  return 0;
}

/* Each upstream test's seed fails under the toggle that restores the bug it guards, with the
 * signature of the oracle that catches it (the ASan one is left to the repro replay). */
TEST_IMPL(epoll_shim_seeds_catch_their_toggles) {
  static const struct {
    const char *seed;
    cf_bug_t bug;
    const char *oracle, *site;
  } cases[] = {
      {"test-epoll-mt", CF_BUG_EPOLL_73_TRANSIENT_DUP, "structural", "struct.registration-has-knote never-added"},
      {"test-epoll-aba-dup", CF_BUG_EPOLL_73_NO_GENERATION, "differential", "diff.epoll_ctl 0, Linux ENOENT"},
      {"test-epoll-close", CF_BUG_EPOLL_146_NO_CLOSE_HOOK, "structural", "struct.close-hygiene"},
      {"oneshot-two-filters-del", CF_BUG_EPOLL_332_BATCHED_DEL, "structural", "struct.knote-registered"},
      {"test-ioctl-cloexec", CF_BUG_EPOLL_73_FIOCLEX_OPATH, "differential", "diff.ioctl EBADF, Linux 0"},
      {"test-ioctl-cloexec", CF_BUG_EPOLL_73_FIONBIO_ENOTTY, "differential", "diff.ioctl ENOTTY, Linux 0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cf_result_t res;
    ASSERT_EQ(run_seed(cases[i].seed, 1ull << cases[i].bug, &res), 0);
    if (!res.failed) FAIL_MSG("%s passes with %s", cases[i].seed, cf_bug_table[cases[i].bug].id);
    ASSERT_STR_EQ(res.oracle, cases[i].oracle);
    ASSERT_STR_EQ(res.site, cases[i].site);
  }
  return 0;
}

/* PR #332's leak caught on the DEL call itself while a sibling sits inside a syscall (a
 * blocking read), where the quiet-point scan does not run. T1: a socketpair end that is
 * readable but not writable, EPOLLIN|EPOLLOUT|EPOLLONESHOT, a pwait that fires the read
 * knote, then DEL; T0 is blocked in read(0) throughout (tools/epoll_scenario.py format:
 * T0 pipe blocking; T0 socketpair; T0 epoll_create1; T0 clone; T0 read 0; T1 write 2 0;
 * T1 write 3 0; T1 ctl 4 ADD 2 IN|OUT|ONESHOT; T1 pwait 4 0; T1 ctl 4 DEL 2; T1 write 1 0). */
TEST_IMPL(epoll_shim_batched_del_caught_beside_a_busy_sibling) {
  static const uint8_t input[] = {0x00, 0x01, 0x02, 0x02, 0x00, 0x05, 0x00, 0x0e, 0x0b, 0x00, 0x4a,
                                  0x02, 0x00, 0x4a, 0x03, 0x00, 0x4c, 0x04, 0x00, 0x02, 0x13, 0x4d,
                                  0x04, 0x00, 0x4c, 0x04, 0x01, 0x02, 0x00, 0x4a, 0x01, 0x00};
  cf_result_t res;
  run_input(input, sizeof input, 0, &res);
  if (res.failed) FAIL_MSG("fails without toggles: %s@%s: %s", res.oracle, res.site, res.detail);
  run_input(input, sizeof input, 1ull << CF_BUG_EPOLL_332_BATCHED_DEL, &res);
  ASSERT_TRUE(res.failed);
  ASSERT_STR_EQ(res.oracle, "structural");
  ASSERT_STR_EQ(res.site, "struct.knote-registered");
  ASSERT_TRUE(strstr(res.detail, "epoll_ctl(DEL, 2)") != NULL);
  return 0;
}

/* Every entry of the tolerated-difference list (harness/epoll_shim/tolerated.c) is load-bearing:
 * with it removed, some committed seed fails with the differential or structural oracle, so a
 * tolerated difference is still caught once it is off the list (and an entry that excuses
 * nothing would show up here). With the list whole, those seeds pass (the test above). */
/* The hang-up flavour tolerance lets through elfuse's mapping of the sequences and
 * nothing that drops what Linux reports or invents an error. */
TEST_IMPL(epoll_shim_hangup_flavour_is_narrow) {
  /* pipe read end, writer gone; write end, reader gone; socket, peer shut for writing */
  ASSERT_TRUE(hangup_flavour_matches(EPOLLIN | EPOLLRDHUP | EPOLLHUP, EPOLLHUP));
  ASSERT_TRUE(hangup_flavour_matches(EPOLLOUT | EPOLLHUP, EPOLLOUT | EPOLLERR));
  ASSERT_TRUE(hangup_flavour_matches(EPOLLOUT | EPOLLHUP, EPOLLERR));
  ASSERT_TRUE(hangup_flavour_matches(EPOLLIN | EPOLLRDHUP | EPOLLHUP, EPOLLIN | EPOLLRDHUP));
  ASSERT_TRUE(!hangup_flavour_matches(EPOLLIN, EPOLLHUP));            /* no hang-up */
  ASSERT_TRUE(!hangup_flavour_matches(EPOLLHUP, EPOLLIN | EPOLLHUP)); /* data not reported */
  ASSERT_TRUE(!hangup_flavour_matches(EPOLLIN | EPOLLHUP, EPOLLOUT | EPOLLERR));
  ASSERT_TRUE(!hangup_flavour_matches(EPOLLIN | EPOLLHUP, EPOLLIN | EPOLLRDHUP)); /* RDHUP */
  ASSERT_TRUE(!hangup_flavour_matches(EPOLLIN | EPOLLERR, EPOLLIN | EPOLLHUP));  /* error */
  return 0;
}

TEST_IMPL(epoll_shim_each_tolerated_difference_is_caught_off_the_list) {
  for (int t = 0; t < TOL_COUNT; t++) {
    DIR *d = opendir("corpus/fuzz_epoll_shim");
    ASSERT_TRUE(d != NULL);
    struct dirent *e;
    int caught = 0;
    char first[160] = "";
    tolerances_removed = 1u << t;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      cf_result_t res;
      ASSERT_EQ(run_seed(e->d_name, 0, &res), 0);
      if (res.failed && (!strcmp(res.oracle, "differential") || !strcmp(res.oracle, "structural"))) {
        if (!caught++) snprintf(first, sizeof first, "%s: %s@%s", e->d_name, res.oracle, res.site);
      }
    }
    closedir(d);
    tolerances_removed = 0;
    if (!caught) FAIL_MSG("tolerance %s removed, yet every seed passes", tolerances[t].id);
    fprintf(stderr, "  # %s off the list: %d seed(s) fail, e.g. %s\n", tolerances[t].id, caught, first);
  }
  return 0;
}

/* ---- readiness as a Linux program sees it ---------------------------------------------------- */

/* The sequences of issue 14 §2, each run on the shim over the simulated BSD host and on the
 * Linux reference kernel, with the answer each gives. Where they differ, the difference is
 * upstream's own on a real macOS/BSD host (poll.c @3209f18 cited) and is either on the
 * tolerated list or reported by the oracle as a divergence of elfuse from Linux
 * (docs/findings/elfuse-epoll-readiness.md); the rest match Linux. */
typedef struct readiness {
  shim_world_t *w;
  ks_kernel_t *lin;
} readiness_t;

static void lin_free(void *arg) { ks_kernel_free(arg); }

/* The first event of a timeout-0 wait on each side (0 when none), and the counts. */
static uint32_t shim_wait0(readiness_t *r, int ep, int *n) {
  linux_epoll_event_t out[4];
  *n = sys_epoll_pwait(&r->w->s, &r->w->t, ep, out, 4, 0);
  return *n > 0 ? out[0].events : 0;
}
static uint32_t lin_wait0(readiness_t *r, int ep, int *n) {
  ks_epoll_event_t out[4];
  *n = ks_epoll_wait(r->lin, ep, out, 4, 0);
  return *n > 0 ? out[0].events : 0;
}
static int both_ctl(readiness_t *r, int ep, int op, int fd, uint32_t events, int *lin_ret) {
  ks_epoll_event_t lev = {events, (uint64_t)fd};
  linux_epoll_event_t sev = {events, (uint64_t)fd};
  *lin_ret = ks_epoll_ctl(r->lin, ep, op, fd, &lev);
  return sys_epoll_ctl(&r->w->s, &r->w->t, ep, op, fd, &sev);
}

static readiness_t readiness_new(void) {
  readiness_t r = {world_new(), ks_kernel_new(NULL)};
  cf_defer(lin_free, r.lin);
  return r;
}

/* Two pipes (or socketpairs) and an epoll at the same numbers on both sides: fds 0,1 and ep 2. */
static void both_pair(readiness_t *r, bool sock, int fds[2]) {
  int lf[2];
  if (sock) {
    CHECK_EQ(sys_socketpair(&r->w->s, &r->w->t, fds, O_NONBLOCK), 0);
    CHECK_EQ(ks_socketpair(r->lin, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, lf), 0);
  } else {
    CHECK_EQ(sys_pipe2(&r->w->s, &r->w->t, fds, O_NONBLOCK), 0);
    CHECK_EQ(ks_pipe2(r->lin, lf, O_NONBLOCK), 0);
  }
  CHECK_EQ(lf[0], fds[0]);
  CHECK_EQ(lf[1], fds[1]);
  CHECK_EQ(sys_epoll_create1(&r->w->s, &r->w->t, 0), 2);
  CHECK_EQ(ks_epoll_create1(r->lin, 0), 2);
}

static void both_close(readiness_t *r, int fd) {
  CHECK_EQ(sys_close(&r->w->s, &r->w->t, fd), 0);
  CHECK_EQ(ks_close(r->lin, fd), 0);
}

static void both_write(readiness_t *r, int fd) {
  uint8_t b[8] = {1};
  CHECK_EQ(sys_write(&r->w->s, &r->w->t, fd, b, sizeof b), 8);
  CHECK_EQ(ks_write(r->lin, fd, b, sizeof b), 8);
}

static void both_read(readiness_t *r, int fd, size_t want) {
  uint8_t b[64];
  CHECK_EQ(sys_read(&r->w->s, &r->w->t, fd, b, want), (long)want);
  CHECK_EQ(ks_read(r->lin, fd, b, want), (long)want);
}

static void readiness_main(void *arg) {
  (void)arg;
  int fds[2], lr, ns, nl;
  /* 1. Pipe read end, writer closed, empty, EPOLLIN|EPOLLRDHUP. Upstream behaviour:
   *    epoll_merge_event gives the read filter's EPOLLIN whatever the byte count and maps
   *    EV_EOF to EPOLLHUP (+EPOLLRDHUP when asked). Tolerated: hangup-flavour. */
  readiness_t r = readiness_new();
  both_pair(&r, false, fds);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLIN | EPOLLRDHUP, &lr), 0);
  CHECK_EQ(lr, 0);
  both_close(&r, 1);
  CHECK_EQ(lin_wait0(&r, 2, &nl), EPOLLHUP);
  CHECK_EQ(shim_wait0(&r, 2, &ns), EPOLLIN | EPOLLRDHUP | EPOLLHUP);
  /* 2. Pipe write end, reader closed, EPOLLOUT. Upstream behaviour: the write filter fires
   *    with EV_EOF, EPOLLOUT|EPOLLHUP; Linux says EPOLLOUT|EPOLLERR. Tolerated: hangup-flavour. */
  r = readiness_new();
  both_pair(&r, false, fds);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 1, EPOLLOUT, &lr), 0);
  both_close(&r, 0);
  CHECK_EQ(lin_wait0(&r, 2, &nl), EPOLLOUT | EPOLLERR);
  CHECK_EQ(shim_wait0(&r, 2, &ns), EPOLLOUT | EPOLLHUP);
  /* 3. A registration with neither EPOLLIN nor EPOLLOUT (EPOLLET alone). Upstream behaviour:
   *    sys_epoll_ctl arms no filter for such a mask, so the hang-up Linux always reports
   *    never arrives. Not tolerated: the oracle reports it (shim-missed). */
  r = readiness_new();
  both_pair(&r, false, fds);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLET, &lr), 0);
  both_close(&r, 1);
  CHECK_EQ(lin_wait0(&r, 2, &nl), EPOLLHUP);
  CHECK_EQ(shim_wait0(&r, 2, &ns), 0);
  CHECK_EQ(ns, 0);
  /* 4. Socketpair end, EPOLLRDHUP, peer shut for writing only. Upstream behaviour: EV_EOF on
   *    the read filter is EPOLLHUP as well. Tolerated: hangup-flavour. (shutdown goes to the
   *    host unchanged, so the host's is called.) */
  r = readiness_new();
  both_pair(&r, true, fds);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLRDHUP, &lr), 0);
  CHECK_EQ(ks_shutdown(r.lin, 1, SHUT_WR), 0);
  CHECK_EQ(ks_shutdown(r.w->host, r.w->s.fd_table[1].host_fd, SHUT_WR), 0);
  CHECK_EQ(lin_wait0(&r, 2, &nl), EPOLLRDHUP);
  CHECK_EQ(shim_wait0(&r, 2, &ns), EPOLLRDHUP | EPOLLHUP);
  /* 5. Edge-triggered socketpair end, EPOLLIN|EPOLLOUT|EPOLLET, its receive queue read dry:
   *    no new edge on either side. It was the simulated kqueue's bug: a read notified the
   *    reader's write knote, which watches the send side the read does not change. */
  r = readiness_new();
  both_pair(&r, true, fds);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLIN | EPOLLOUT | EPOLLET, &lr), 0);
  both_write(&r, 1);
  CHECK_EQ(lin_wait0(&r, 2, &nl), EPOLLIN | EPOLLOUT);
  CHECK_EQ(shim_wait0(&r, 2, &ns), EPOLLIN | EPOLLOUT);
  both_read(&r, 0, 8);
  CHECK_EQ(lin_wait0(&r, 2, &nl), 0);
  CHECK_EQ(shim_wait0(&r, 2, &ns), 0);
  /* 6. Edge-triggered pipe read end, a partial read: upstream behaviour, documented in
   *    sys_epoll_ctl's EPOLLET comment (EV_CLEAR re-armed by the byte count). Tolerated:
   *    et-rearm. */
  r = readiness_new();
  both_pair(&r, false, fds);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLIN | EPOLLET, &lr), 0);
  both_write(&r, 1);
  both_write(&r, 1);
  CHECK_EQ(lin_wait0(&r, 2, &nl), EPOLLIN);
  CHECK_EQ(shim_wait0(&r, 2, &ns), EPOLLIN);
  both_read(&r, 0, 8);
  CHECK_EQ(lin_wait0(&r, 2, &nl), 0);
  CHECK_EQ(shim_wait0(&r, 2, &ns), EPOLLIN);
  /* 7. Any direction is accepted on a pollable file. The copy answered EINVAL: it was behind
   *    PR #332, which drops a write filter the host refuses. A read filter the host refuses
   *    (a pipe's write end) is upstream's EPERM, a divergence. */
  r = readiness_new();
  both_pair(&r, false, fds);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLIN | EPOLLOUT, &lr), 0);
  CHECK_EQ(lr, 0);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 1, EPOLLIN | EPOLLOUT, &lr), -EPERM);
  CHECK_EQ(lr, 0);
  /*    MOD of an eventfd to EPOLLOUT: 0 on both, but the eventfd's host pipe takes no write
   *    filter, so the shim never reports the EPOLLOUT Linux reports (the oracle's
   *    unsupported-filter tolerance covers it only when a number is reused under a ctl). */
  r = readiness_new();
  CHECK_EQ(sys_eventfd2(&r.w->s, &r.w->t, 0, EFD_NONBLOCK), 0);
  CHECK_EQ(ks_eventfd(r.lin, 0, EFD_NONBLOCK), 0);
  CHECK_EQ(sys_epoll_create1(&r.w->s, &r.w->t, 0), 1);
  CHECK_EQ(ks_epoll_create1(r.lin, 0), 1);
  CHECK_EQ(both_ctl(&r, 1, EPOLL_CTL_ADD, 0, EPOLLIN, &lr), 0);
  CHECK_EQ(both_ctl(&r, 1, EPOLL_CTL_MOD, 0, EPOLLOUT, &lr), 0);
  CHECK_EQ(lr, 0);
  CHECK_EQ(lin_wait0(&r, 1, &nl), EPOLLOUT);
  CHECK_EQ(shim_wait0(&r, 1, &ns), 0);
  /* 8. Nested epoll (issue 14 §3): ep 2 holds the pipe's read end, ep 3 holds ep 2. Both sides
   *    accept the nesting and report ep 2 EPOLLIN (never EPOLLOUT) once the pipe is written;
   *    upstream registers EVFILT_READ on ep 2's kqueue and drops the write filter (PR #332). */
  r = readiness_new();
  both_pair(&r, false, fds);
  CHECK_EQ(sys_epoll_create1(&r.w->s, &r.w->t, 0), 3);
  CHECK_EQ(ks_epoll_create1(r.lin, 0), 3);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLIN, &lr), 0);
  CHECK_EQ(both_ctl(&r, 3, EPOLL_CTL_ADD, 2, EPOLLIN | EPOLLOUT, &lr), 0);
  CHECK_EQ(lr, 0);
  CHECK_EQ(lin_wait0(&r, 3, &nl), 0);
  CHECK_EQ(shim_wait0(&r, 3, &ns), 0);
  both_write(&r, 1);
  CHECK_EQ(lin_wait0(&r, 3, &nl), EPOLLIN);
  CHECK_EQ(shim_wait0(&r, 3, &ns), EPOLLIN);
  /*    A loop: Linux ELOOP; upstream EPERM, XNU's nesting ceiling refusing the read filter.
   *    Tolerated: nested-loop-check. */
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 3, EPOLLIN, &lr), -EPERM);
  CHECK_EQ(lr, -ELOOP);
  /*    Drained without collecting from ep 2: Linux re-polls ep 2's items and reports nothing;
   *    ep 2's kqueue still holds the activation, so upstream reports it. Tolerated:
   *    nested-readiness. */
  both_read(&r, 0, 8);
  CHECK_EQ(lin_wait0(&r, 3, &nl), 0);
  CHECK_EQ(shim_wait0(&r, 3, &ns), EPOLLIN);
  CHECK_EQ(shim_wait0(&r, 2, &ns), 0); /* collecting from ep 2 drops the stale activation */
  CHECK_EQ(shim_wait0(&r, 3, &ns), 0);
  /* 9. EPOLLET registration of an epoll, an inner item already ready woken again: Linux's
   *    ep_poll_callback wakes ep 2's watchers on every wake-up, a new edge; XNU wakes a
   *    kqueue's watchers only when a knote newly joins its active queue, so upstream stays
   *    silent. Tolerated: nested-readiness (EPOLLET registrations of an epoll not compared). */
  r = readiness_new();
  both_pair(&r, false, fds);
  CHECK_EQ(sys_epoll_create1(&r.w->s, &r.w->t, 0), 3);
  CHECK_EQ(ks_epoll_create1(r.lin, 0), 3);
  CHECK_EQ(both_ctl(&r, 2, EPOLL_CTL_ADD, 0, EPOLLIN, &lr), 0);
  CHECK_EQ(both_ctl(&r, 3, EPOLL_CTL_ADD, 2, EPOLLIN | EPOLLET, &lr), 0);
  both_write(&r, 1);
  CHECK_EQ(lin_wait0(&r, 3, &nl), EPOLLIN);
  CHECK_EQ(shim_wait0(&r, 3, &ns), EPOLLIN);
  both_write(&r, 1);
  CHECK_EQ(lin_wait0(&r, 3, &nl), EPOLLIN);
  CHECK_EQ(shim_wait0(&r, 3, &ns), 0);
}

TEST_IMPL(epoll_shim_readiness_sequences_against_linux) { return run_in_sim(readiness_main, 0); }
