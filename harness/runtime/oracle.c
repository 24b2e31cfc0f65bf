/* oracle.c: how a failure is reported.
 *
 * One line `churnfuzz: <oracle>: <system>: <site label>: <detail>` that tools parse (the
 * signature is <oracle>@<site label>), then the tail of the trace, then abort() so that
 * libFuzzer and AFL++ both keep the input. In capture mode the failure is recorded instead and
 * the run unwinds to cf_run(): from a fiber by switching to the host for good, from the host by
 * longjmp (the host's own stack). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define R cf_run_state

bool cf_trace_stream;

void cf_fail(const char *oracle, const char *system, const cf_site_t *site, const char *fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  const char *label = site ? site->label : "-";
  if (R.active) cf_trace_event(CF_EV_FAIL, site, 0, 0);

  if (R.active && R.opt && R.opt->capture && R.result) {
    cf_result_t *res = R.result;
    res->failed = true;
    snprintf(res->oracle, sizeof res->oracle, "%s", oracle);
    snprintf(res->system, sizeof res->system, "%s", system);
    snprintf(res->site, sizeof res->site, "%s", label);
    snprintf(res->detail, sizeof res->detail, "%s", detail);
    cf_sync_release(&R.host); /* the host reads the result after the switch */
    if (R.current == &R.host || !R.current) longjmp(R.unwind, 1);
    cf_fiber_t *self = R.current;
    self->state = CF_FIBER_EXITED;
    R.current = &R.host;
    cf_fiber_switch(self, &R.host, true);
    abort(); /* never resumed */
  }

  cf_report_failure_line(oracle, system, site, detail);
  if (R.active) {
    fprintf(stderr, "churnfuzz: step %llu, decision %llu, phase %s, fiber %d (%s)\n",
            (unsigned long long)R.steps, (unsigned long long)R.choice_points,
            cf_phase_name(R.phase),
            R.current ? R.current->id : -1, R.current && R.current->name ? R.current->name : "-");
    cf_trace_print_tail(32);
    /* The hash of everything up to the failure: replays compare it to prove the failure is
     * reached by the same path every time. */
    fprintf(stderr, "churnfuzz: trace hash %016llx at failure\n", (unsigned long long)cf_trace_hash());
  }
  fflush(stderr);
  abort();
}
