/* trace.c: every decision and yield of a run, hashed and kept in a short ring.
 *
 * The hash covers kind, fiber, site id and both arguments of every event, so two runs of the
 * same input must produce the same hash; a difference means nondeterminism leaked in. The ring
 * keeps the last events for the report that follows a failure. With CHURN_TRACE=1 every event
 * is also streamed to stderr as one line (the raw material of `churn explain`):
 *   T <step> <fiber> <kind> <site label> <file:line> <a> <b> [note text]
 * (a spawn's note is the new fiber's thread name).                                   */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define CF_RING 256
#define CF_NOTE_LEN 112

typedef struct cf_event {
  uint64_t step;
  int fiber;
  cf_event_kind_t kind;
  const cf_site_t *site;
  uint64_t a, b;
  char note[CF_NOTE_LEN];
} cf_event_t;

static cf_event_t ring[CF_RING];
static uint64_t nevents;
static uint64_t hash;

static const char *const kind_names[] = {"pick",  "yield",    "block", "wake", "spawn",
                                         "exit",  "choose",   "fault", "workload", "time",
                                         "phase", "note",     "fail"};

static uint32_t site_hash(const cf_site_t *site) {
  uint32_t h = 2166136261u;
  for (const char *p = site->label; p && *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
  for (const char *p = site->file; p && *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
  h = (h ^ (uint32_t)site->line) * 16777619u;
  return h ? h : 1;
}

uint32_t cf_site_id(const cf_site_t *site) {
  if (!site) return 0;
  if (!site->id) ((cf_site_t *)site)->id = site_hash(site);
  return site->id;
}

extern cf_site_t __start_cf_sites[] __attribute__((weak));
extern cf_site_t __stop_cf_sites[] __attribute__((weak));

void cf_sites_init(void) {
  if (!__start_cf_sites) return;
  for (cf_site_t *s = __start_cf_sites; s < __stop_cf_sites; s++) cf_site_id(s);
}

void cf_trace_reset(void) {
  nevents = 0;
  hash = 0xcbf29ce484222325ull;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static void stream(const cf_event_t *e) {
  const cf_site_t *s = e->site;
  fprintf(stderr, "T %llu %d %s %s %s:%d %llu %llu%s%s\n", (unsigned long long)e->step, e->fiber,
          kind_names[e->kind], s ? s->label : "-", s ? s->file : "-", s ? s->line : 0,
          (unsigned long long)e->a, (unsigned long long)e->b, e->note[0] ? " " : "", e->note);
}

static cf_event_t *record(cf_event_kind_t kind, const cf_site_t *site, uint64_t a, uint64_t b) {
  cf_event_t *e = &ring[nevents % CF_RING];
  e->step = cf_run_state.steps;
  e->fiber = cf_run_state.current ? cf_run_state.current->id : -1;
  e->kind = kind;
  e->site = site;
  e->a = a;
  e->b = b;
  e->note[0] = 0;
  nevents++;
  uint64_t x = ((uint64_t)kind << 56) ^ ((uint64_t)(uint32_t)e->fiber << 32) ^ cf_site_id(site);
  hash = mix64(hash ^ x) ^ mix64(a + 0x9e3779b97f4a7c15ull * (b + 1));
  return e;
}

void cf_trace_event(cf_event_kind_t kind, const cf_site_t *site, uint64_t a, uint64_t b) {
  cf_event_t *e = record(kind, site, a, b);
  /* A spawn names its fiber, so a trace reader can label fibers by thread name. The note is
   * not hashed: naming threads never changes a trace hash. */
  if (kind == CF_EV_SPAWN && a < CF_MAX_FIBERS && cf_run_state.fibers[a].name)
    snprintf(e->note, sizeof e->note, "%s", cf_run_state.fibers[a].name);
  if (cf_trace_stream) {
    cf_tsan_ignore_begin();
    stream(e);
    cf_tsan_ignore_end();
  }
}

void cf_trace_note_text(const cf_site_t *site, const char *text) {
  cf_tsan_ignore_begin();
  cf_event_t *e = record(CF_EV_NOTE, site, 0, 0);
  if (text[0]) snprintf(e->note, sizeof e->note, "%s", text);
  if (cf_trace_stream) stream(e);
  cf_tsan_ignore_end();
}

bool cf_note_text = true;

void cf_note(const cf_site_t *site, const char *fmt, ...) {
  if (!cf_run_state.active) return;
  if (!cf_note_text) {
    cf_trace_note_text(site, "");
    return;
  }
  char buf[CF_NOTE_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  cf_trace_note_text(site, buf);
}

uint64_t cf_trace_hash(void) { return mix64(hash ^ nevents); }

void cf_trace_print_tail(int n) {
  uint64_t first = nevents > (uint64_t)n ? nevents - (uint64_t)n : 0;
  if (nevents > CF_RING && first < nevents - CF_RING) first = nevents - CF_RING;
  fprintf(stderr, "churnfuzz: last %llu of %llu trace events (step fiber event site a b):\n",
          (unsigned long long)(nevents - first), (unsigned long long)nevents);
  for (uint64_t i = first; i < nevents; i++) {
    const cf_event_t *e = &ring[i % CF_RING];
    fprintf(stderr, "  ");
    stream(e);
  }
}
