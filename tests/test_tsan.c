/* test_tsan.c: in ThreadSanitizer builds only (SANITIZER=thread ./build.sh tests), check that
 * fibers look like threads to TSan: a plain data race between two fibers is reported even
 * though the scheduler ran the accesses one after the other, and the same accesses under a
 * mutex are not. Each world runs in a child process whose stderr the test reads. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf.h"
#include "run.h"
#include "task.h"

static long counter;
static cf_mutex_t counter_mu;
static bool use_mutex;

static void racy_increment(void *arg) {
  (void)arg;
  cf_yield("tsan.before");
  if (use_mutex) cf_mutex_lock(&counter_mu);
  counter++;
  if (use_mutex) cf_mutex_unlock(&counter_mu);
}

static void two_writers(void *arg) {
  (void)arg;
  cf_mutex_init(&counter_mu, "counter_mu");
  cf_thread_t a, b;
  cf_thread_spawn(&a, racy_increment, NULL, "a");
  cf_thread_spawn(&b, racy_increment, NULL, "b");
  cf_thread_join(&a);
  cf_thread_join(&b);
}

/* Runs the world in a child; returns what the child wrote to stderr. */
static char *run_child(bool mutex) {
  int p[2];
  if (pipe(p) != 0) return NULL;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 2);
    use_mutex = mutex;
    cf_target_t t = {.name = "tsan", .system = "test", .main = two_writers};
    t.options.capture = true;
    cf_result_t r;
    cf_run(&t, NULL, 0, &r);
    _exit(0);
  }
  close(p[1]);
  size_t cap = 1 << 16, n = 0;
  char *buf = calloc(1, cap + 1);
  ssize_t got;
  while ((got = read(p[0], buf + n, cap - n)) > 0 && (n += (size_t)got) < cap) {
  }
  close(p[0]);
  waitpid(pid, NULL, 0);
  return buf;
}

TEST_IMPL(tsan_reports_plain_race_between_fibers) {
  char *racy = run_child(false);
  char *locked = run_child(true);
  ASSERT_TRUE(racy && locked);
  ASSERT_TRUE(strstr(racy, "WARNING: ThreadSanitizer: data race") != NULL);
  ASSERT_TRUE(strstr(racy, "racy_increment") != NULL);
  ASSERT_TRUE(strstr(locked, "ThreadSanitizer") == NULL);
  free(racy);
  free(locked);
  return 0;
}
#endif
#endif
