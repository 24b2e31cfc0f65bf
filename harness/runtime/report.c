/* report.c: the one place that writes a failure's first line. Tools parse it (the signature is
 * <oracle>@<site>), so both platform backends print it through here. */
#include <stdio.h>

#include "cf.h"

void cf_report_failure_line(const char *oracle, const char *system, const cf_site_t *site,
                            const char *detail) {
  fprintf(stderr, "churnfuzz: %s: %s: %s: %s\n", oracle, system, site ? site->label : "-", detail);
}
