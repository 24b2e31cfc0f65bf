/* bugs.c: the toggle table and CHURN_BUGS parsing. */
#include "bugs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CF_BUG_COUNT <= 64, "toggles live in one 64-bit mask");

const cf_bug_info_t cf_bug_table[CF_BUG_COUNT] = {
#define CF_BUG(name, id, system, desc, ref) {id, system, desc, ref},
#include "bugs.def"
#undef CF_BUG
};

uint64_t cf_bugs_enabled;

int cf_bugs_parse(const char *spec, uint64_t *out, char *err, int errlen) {
  uint64_t mask = 0;
  const char *p = spec ? spec : "";
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (*p == ' ')) p++, len--;
    while (len && p[len - 1] == ' ') len--;
    if (len == 3 && !strncmp(p, "all", 3)) {
      mask = CF_BUG_COUNT == 64 ? ~0ull : ((1ull << CF_BUG_COUNT) - 1);
    } else if (len) {
      int found = -1;
      for (int i = 0; i < CF_BUG_COUNT; i++)
        if (strlen(cf_bug_table[i].id) == len && !strncmp(cf_bug_table[i].id, p, len)) found = i;
      if (found < 0) {
        snprintf(err, (size_t)errlen, "unknown bug toggle '%.*s' (see `churn bugs`)", (int)len, p);
        return -1;
      }
      mask |= 1ull << found;
    }
    if (!end) break;
    p = end + 1;
  }
  *out = mask;
  return 0;
}

void cf_bugs_from_env(void) {
  char err[256];
  uint64_t mask;
  if (cf_bugs_parse(getenv("CHURN_BUGS"), &mask, err, sizeof err) != 0) {
    fprintf(stderr, "churnfuzz: CHURN_BUGS: %s\n", err);
    exit(2);
  }
  cf_bugs_enabled = mask;
}
