/* test_runtime.c: decision streams, determinism, checked pools and the fiber layer. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf.h"
#include "internal.h"
#include "pool.h"
#include "run.h"
#include "task.h"
#include "testutil.h"
#include "toys.h"
#include "targets.h"

/* ---- decision streams --------------------------------------------------------------------- */

TEST_IMPL(input_streams_read_from_both_ends) {
  static const uint8_t in[] = {0x00, 10, 11, 12, 13, 14};
  cf_input_t s;
  cf_input_init(&s, in, sizeof in);
  ASSERT_EQ(s.policy, CF_POLICY_DIRECT);
  uint8_t b;
  ASSERT_TRUE(cf_input_sched_byte(&s, &b));
  ASSERT_EQ(b, 14);
  ASSERT_TRUE(cf_input_sched_byte(&s, &b));
  ASSERT_EQ(b, 13);
  ASSERT_EQ(s.front, 1);
  ASSERT_EQ(in[s.front], 10);
  /* The streams meet: once the front has taken 10, 11 and 12, nothing is left for the back. */
  s.front = 4;
  ASSERT_FALSE(cf_input_sched_left(&s));
  ASSERT_FALSE(cf_input_sched_byte(&s, &b));
  return 0;
}

TEST_IMPL(input_pct_header) {
  static const uint8_t in[] = {(uint8_t)(0x03 | (5 << 2)), 0x34, 0x12, 0x07, 0x00, 99};
  cf_input_t s;
  cf_input_init(&s, in, sizeof in);
  ASSERT_EQ(s.policy, CF_POLICY_PCT);
  ASSERT_EQ(s.pct_seed, 5);
  ASSERT_EQ(s.pct_changes, 2);
  ASSERT_EQ(s.pct_change_at[0], 0x1234);
  ASSERT_EQ(s.pct_change_at[1], 7);
  ASSERT_EQ(s.front, 5);
  /* A header promising more change points than there are bytes reads what exists. */
  static const uint8_t short_in[] = {0x03, 0x01};
  cf_input_init(&s, short_in, sizeof short_in);
  ASSERT_EQ(s.pct_changes, 2);
  ASSERT_EQ(s.pct_change_at[0], 1);
  ASSERT_EQ(s.pct_change_at[1], 0);
  ASSERT_FALSE(cf_input_sched_left(&s));
  return 0;
}

TEST_IMPL(input_oversized_is_truncated) {
  size_t n = CF_INPUT_MAX + 1000;
  uint8_t *in = calloc(1, n);
  in[CF_INPUT_MAX - 1] = 0xab;
  in[n - 1] = 0xcd;
  cf_input_t s;
  cf_input_init(&s, in, n);
  uint8_t b;
  ASSERT_TRUE(cf_input_sched_byte(&s, &b));
  ASSERT_EQ(b, 0xab);
  /* And a whole run on an oversized input completes. */
  cf_target_t t = {.name = "toys", .system = TOY_SYSTEM, .main = toy_selftest_main};
  t.options.capture = true;
  cf_result_t r;
  ASSERT_EQ(cf_run(&t, in, n, &r), 0);
  free(in);
  return 0;
}

static uint32_t workload_seen[4];
static void workload_main(void *arg) {
  (void)arg;
  workload_seen[0] = cf_workload(3);
  workload_seen[1] = cf_workload(1000);
  workload_seen[2] = cf_workload_left();
  workload_seen[3] = cf_workload(7);
}

TEST_IMPL(input_workload_values_and_exhaustion) {
  static const uint8_t in[] = {0x00, 5, 0xe8, 0x03};
  cf_target_t t = {.name = "w", .system = "test", .main = workload_main};
  t.options.capture = true;
  cf_result_t r;
  ASSERT_EQ(cf_run(&t, in, sizeof in, &r), 0);
  ASSERT_EQ(workload_seen[0], 5 % 3);
  ASSERT_EQ(workload_seen[1], 0x03e8 % 1000);
  ASSERT_EQ(workload_seen[2], 0);
  ASSERT_EQ(workload_seen[3], 0); /* exhausted: the documented default */
  return 0;
}

/* ---- determinism -------------------------------------------------------------------------- */

/* Thousands of random inputs for every registered target, every one run twice in a row: the
 * two trace hashes (and verdicts) must agree, so nothing from one run leaks into the next. */
TEST_IMPL(determinism_random_inputs_replay_identically) {
  uint8_t buf[512];
  int runs = 0;
  for (const cf_target_t *const *tp = cf_all_targets; *tp; tp++) {
    cf_target_t t = **tp;
    t.options.capture = true;
    for (uint64_t seed = 1; seed <= 3000; seed++) {
      uint64_t st = seed;
      size_t len = (size_t)(splitmix64(&st) % sizeof buf);
      fill_random(buf, len, seed * 7919);
      cf_result_t a, b;
      cf_run(&t, buf, len, &a);
      cf_run(&t, buf, len, &b);
      runs += 2;
      if (a.trace_hash != b.trace_hash || a.failed != b.failed || a.steps != b.steps)
        FAIL_MSG("%s seed %llu: hash %016llx vs %016llx, failed %d vs %d", t.name,
                 (unsigned long long)seed, (unsigned long long)a.trace_hash,
                 (unsigned long long)b.trace_hash, a.failed, b.failed);
    }
  }
  ASSERT_TRUE(runs >= 6000);
  return 0;
}

/* One run in a child process with every toggle on (a sanitizer report ends the process, so it
 * cannot run in this one). Returns the exit status (1: an oracle failed; a signal: a sanitizer
 * aborted); *hash gets the trace hash if the run finished. */
static int child_run_all_bugs(const cf_target_t *t, const uint8_t *buf, size_t len, uint64_t *hash) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    cf_bugs_enabled = ~0ull;
    cf_target_t c = *t;
    c.options.capture = true;
    cf_result_t r;
    cf_run(&c, buf, len, &r);
    uint64_t h = r.trace_hash;
    if (write(fds[1], &h, sizeof h) != sizeof h) _exit(3);
    _exit(r.failed ? 1 : 0);
  }
  close(fds[1]);
  *hash = 0;
  if (read(fds[0], hash, sizeof *hash) != (ssize_t)sizeof *hash) *hash = 0;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

/* The same with every toggle on, each run in a fresh process: same hash, or the same crash. */
TEST_IMPL(determinism_with_all_bugs_across_processes) {
  uint8_t buf[256];
  int crashes = 0;
  for (const cf_target_t *const *tp = cf_all_targets; *tp; tp++) {
    for (uint64_t seed = 1; seed <= 300; seed++) {
      uint64_t st = seed ^ 0xabcdef;
      size_t len = (size_t)(splitmix64(&st) % sizeof buf);
      fill_random(buf, len, seed * 104729);
      uint64_t ha, hb;
      int sa = child_run_all_bugs(*tp, buf, len, &ha);
      int sb = child_run_all_bugs(*tp, buf, len, &hb);
      if (sa != sb || ha != hb)
        FAIL_MSG("%s seed %llu: status %d vs %d, hash %016llx vs %016llx", (*tp)->name,
                 (unsigned long long)seed, sa, sb, (unsigned long long)ha, (unsigned long long)hb);
      if (sa != 0) crashes++;
    }
  }
  /* Random inputs with every toggle on do fail now and then; those failures must repeat too. */
  fprintf(stderr, "  %d of the inputs failed, identically in both processes\n", crashes);
  ASSERT_TRUE(crashes > 0);
  return 0;
}

/* A different schedule must be visible in the hash, or the hash would prove nothing. */
TEST_IMPL(determinism_hash_sees_schedule_changes) {
  cf_target_t t = {.name = "toys", .system = TOY_SYSTEM, .main = toy_selftest_main};
  t.options.capture = true;
  uint8_t a[] = {0x00, 0, 0, 2, 0x01}, b[] = {0x00, 0, 0, 2, 0x00};
  cf_result_t ra, rb;
  cf_run(&t, a, sizeof a, &ra);
  cf_run(&t, b, sizeof b, &rb);
  ASSERT_NE(ra.trace_hash, rb.trace_hash);
  return 0;
}

/* ---- checked pools ------------------------------------------------------------------------ */

typedef struct conn {
  uint64_t next_hint;
  uint64_t state;
  char name[16];
} conn_t;

static uint64_t pool_serials[3];
static void *pool_addrs[3];
static int pool_scenario;
static void pool_main(void *arg) {
  (void)arg;
  cf_pool_t *p = cf_sim_alloc(sizeof *p);
  if (pool_scenario == 0) {
    cf_pool_init(p, "test", "conn", sizeof(conn_t));
    conn_t *a = cf_pool_alloc(p);
    pool_addrs[0] = a;
    pool_serials[0] = cf_pool_serial(a);
    cf_pool_free(p, a);
    pool_serials[1] = cf_pool_serial(a);
    conn_t *b = cf_pool_alloc(p); /* LIFO: the same address, a new serial */
    pool_addrs[1] = b;
    pool_serials[2] = cf_pool_serial(b);
  } else if (pool_scenario == 1) {
    cf_pool_init(p, "test", "conn", sizeof(conn_t));
    conn_t *a = cf_pool_alloc(p);
    cf_pool_free(p, a);
    cf_pool_free(p, a);
  } else {
    cf_zpool_init(p, "test", "HTTPConn", sizeof(conn_t));
    conn_t *a = cf_zpool_create(p);
    conn_t *b = cf_zpool_create(p);
    cf_zpool_destroy(p, a);
    cf_zpool_destroy(p, b);
    /* Zig's free list: b's first word points at a; creation pops b, then a. */
    void *next;
    memcpy(&next, b, sizeof next); /* offset 0 stays readable, as in Zig */
    pool_addrs[0] = next;
    pool_addrs[1] = cf_zpool_create(p);
    pool_addrs[2] = cf_zpool_create(p);
    pool_serials[0] = (uint64_t)(uintptr_t)a;
    pool_serials[1] = (uint64_t)(uintptr_t)b;
  }
}

static int run_pool_scenario(int which, cf_result_t *r) {
  pool_scenario = which;
  cf_target_t t = {.name = "pool", .system = "test", .main = pool_main};
  t.options.capture = true;
  return cf_run(&t, NULL, 0, r);
}

TEST_IMPL(pool_lifo_reuse_with_new_serial) {
  cf_result_t r;
  ASSERT_EQ(run_pool_scenario(0, &r), 0);
  ASSERT_TRUE(pool_serials[0] != 0);
  ASSERT_EQ(pool_serials[1], 0);
  ASSERT_TRUE(pool_addrs[0] == pool_addrs[1]);
  ASSERT_TRUE(pool_serials[2] > pool_serials[0]);
  return 0;
}

TEST_IMPL(pool_double_free_is_reported) {
  cf_result_t r;
  ASSERT_EQ(run_pool_scenario(1, &r), 1);
  ASSERT_STR_EQ(r.oracle, "double-free");
  ASSERT_STR_EQ(r.site, "conn.free");
  return 0;
}

TEST_IMPL(pool_zig_layout_free_list_at_offset_zero) {
  cf_result_t r;
  ASSERT_EQ(run_pool_scenario(2, &r), 0);
  ASSERT_TRUE((uintptr_t)pool_addrs[0] == (uintptr_t)pool_serials[0]); /* b -> a */
  ASSERT_TRUE((uintptr_t)pool_addrs[1] == (uintptr_t)pool_serials[1]); /* pop b */
  ASSERT_TRUE((uintptr_t)pool_addrs[2] == (uintptr_t)pool_serials[0]); /* then a */
  return 0;
}

/* ---- bug toggles -------------------------------------------------------------------------- */

TEST_IMPL(bugs_parse_ids_all_and_unknown) {
  uint64_t m;
  char err[128];
  ASSERT_EQ(cf_bugs_parse("", &m, err, sizeof err), 0);
  ASSERT_U64_EQ(m, 0);
  ASSERT_EQ(cf_bugs_parse("toy-lock-order, toy-lost-update", &m, err, sizeof err), 0);
  ASSERT_U64_EQ(m, (1ull << CF_BUG_TOY_LOCK_ORDER) | (1ull << CF_BUG_TOY_LOST_UPDATE));
  ASSERT_EQ(cf_bugs_parse("all", &m, err, sizeof err), 0);
  ASSERT_U64_EQ(m, (1ull << CF_BUG_COUNT) - 1);
  ASSERT_EQ(cf_bugs_parse("toy-lost-update,nope", &m, err, sizeof err), -1);
  ASSERT_TRUE(strstr(err, "'nope'") != NULL);
  return 0;
}
