/* bugs.h: run-time bug toggles. Included through cf.h. */
#ifndef CF_BUGS_H
#define CF_BUGS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum cf_bug {
#define CF_BUG(name, id, system, desc, ref) CF_BUG_##name,
#include "bugs.def"
#undef CF_BUG
  CF_BUG_COUNT
} cf_bug_t;

typedef struct cf_bug_info {
  const char *id;
  const char *system;
  const char *description;
  const char *upstream;
} cf_bug_info_t;

extern const cf_bug_info_t cf_bug_table[CF_BUG_COUNT];

/* The toggles in force, parsed once from CHURN_BUGS. A read-only process-wide setting, like the
 * build's sanitizer: it does not change between inputs. */
extern uint64_t cf_bugs_enabled;

static inline bool cf_bug(cf_bug_t b) { return (cf_bugs_enabled >> b) & 1u; }

/* Parse a comma-separated list ("", "all", "id,id"). On an unknown id writes a message naming
 * it to err and returns -1. */
int cf_bugs_parse(const char *spec, uint64_t *out, char *err, int errlen);
/* Parse CHURN_BUGS; print the error and exit(2) when it names an unknown toggle. */
void cf_bugs_from_env(void);

#endif
