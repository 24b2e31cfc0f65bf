/* runner.c: runs the registered tests in order and prints TAP-style lines, then one closing
 * line `N passed, N failed`. Usage: churn-tests [--list] [NAME-SUBSTRING...] */
#include <stdio.h>
#include <string.h>

#include "task.h"

#define TEST_ENTRY(name) int test_##name(void);
#include "test-list.h"
#undef TEST_ENTRY

typedef struct {
  const char *name;
  int (*fn)(void);
} test_entry_t;

static const test_entry_t tests[] = {
#define TEST_ENTRY(name) {#name, test_##name},
#include "test-list.h"
#undef TEST_ENTRY
    {NULL, NULL}};

static int selected(const char *name, int argc, char **argv) {
  if (argc <= 1) return 1;
  for (int i = 1; i < argc; i++)
    if (strstr(name, argv[i])) return 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: %s [--list] [NAME-SUBSTRING...]\n"
           "Runs the unit tests and self-tests whose names contain any given substring\n"
           "(all when none is given); ends with `N passed, N failed`; exits 1 on failure.\n",
           argv[0]);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--list")) {
    for (const test_entry_t *t = tests; t->name; t++) printf("%s\n", t->name);
    return 0;
  }
  int passed = 0, failed = 0, n = 0;
  for (const test_entry_t *t = tests; t->name; t++)
    if (selected(t->name, argc, argv)) n++;
  printf("1..%d\n", n);
  int i = 0;
  for (const test_entry_t *t = tests; t->name; t++) {
    if (!selected(t->name, argc, argv)) continue;
    fflush(stdout);
    int rc = t->fn();
    i++;
    if (rc == 0) {
      passed++;
      printf("ok %d %s\n", i, t->name);
    } else {
      failed++;
      printf("not ok %d %s\n", i, t->name);
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
