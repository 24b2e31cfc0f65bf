/* simulate.c: `out/replay/<fuzzer> --simulate random|pct`, the two feedback-free baselines
 * that `churn bench matrix` measures the fuzzers against, in the same binary with the same
 * oracles as the replay runner.
 *
 *   random  seeded random simulation, the way TigerBeetle's VOPR and FoundationDB's simulator
 *           test: every run is a fresh input of random bytes (direct policy: random picks, each
 *           followed by a random run of default choice points; random workload; random faults).
 *   pct     randomized priority scheduling with change points, the way Shuttle and Coyote test
 *           (PCT, Burckhardt et al. 2010): random workload and environment bytes, random
 *           priorities, and D-1 change points drawn uniformly among the choice points of the
 *           longest run so far, no per-step overrides (cf_pct_plan_t).
 *
 * Nothing is learned from one run for the next but PCT's step count. All randomness comes from
 * a splitmix64 generator seeded by --seed, so a seed names the whole sequence of runs. The
 * first failing run ends the process as a fuzz engine would: its input is written to --save
 * (the PCT plan, which is not part of the input, is printed so that `--pct-plan` replays it),
 * then the report and the abort go on as usual. Wall-clock time is read here, outside the
 * simulated runs, only to stop after --seconds and to say when the failure came. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf.h"
#include "run.h"
#include "simulate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ASan's and UBSan's hook, called after a report and before the process dies. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

#define SIM_INPUT_MAX 4096

static struct {
  uint8_t input[SIM_INPUT_MAX];
  size_t len;
  int save_fd;
  unsigned long long run; /* 1-based index of the run in progress */
  unsigned long long longest; /* choice points of the longest run so far (PCT's k) */
  double t0;
  char plan_text[160];    /* "SEED:CP,CP" for pct runs, "" otherwise */
  volatile sig_atomic_t reported;
} sim;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Called once as the process dies of a failed run (oracle abort, sanitizer report, signal):
 * keep its input and say which run it was. */
static void on_failure(void) {
  if (sim.reported) return;
  sim.reported = 1;
  if (sim.save_fd >= 0) {
    ssize_t w = write(sim.save_fd, sim.input, sim.len);
    (void)w;
    close(sim.save_fd);
  }
  char line[320];
  int n = snprintf(line, sizeof line, "simulate: FAILED run=%llu seconds=%.3f longest=%llu%s%s\n",
                   sim.run, now_seconds() - sim.t0, sim.longest,
                   sim.plan_text[0] ? " pct-plan=" : "", sim.plan_text);
  if (n > 0) {
    ssize_t w = write(1, line, (size_t)n);
    (void)w;
  }
}

static void on_signal(int sig) {
  on_failure();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void usage(FILE *to, const char *argv0) {
  fprintf(to,
          "usage: %s --simulate random|pct --seed N [--seconds S] [--runs N] [--save FILE]\n"
          "          [--pct-depth D] [--max-len L]\n"
          "Runs fresh random inputs, no feedback, until a run fails or the limit is reached\n"
          "(toggles from CHURN_BUGS).\n"
          "  random       random bytes, direct policy (seeded random simulation)\n"
          "  pct          random workload bytes under PCT with D-1 random change points\n"
          "  --seed N     the generator's seed: the same seed gives the same runs\n"
          "  --seconds S  stop after S seconds (default 10; 0: no time limit)\n"
          "  --runs N     stop after N runs (default 0: no limit)\n"
          "  --save FILE  where the failing run's input is written\n"
          "  --pct-depth D  PCT bug depth D, 1..%d (default 3: two change points)\n"
          "  --max-len L  inputs are 1..L bytes (default 256, at most %d)\n"
          "Prints `simulate: FAILED run=N seconds=T longest=K [pct-plan=SEED:CP,...]` and dies as\n"
          "the run did (exit non-zero), or `simulate: passed runs=N seconds=T longest=K` and\n"
          "exits 0 (K: choice points of the longest run); 2 on usage.\n"
          "Replay a pct failure with: %s --pct-plan SEED:CP,... FILE\n",
          argv0, CF_PCT_PLAN_MAX + 1, SIM_INPUT_MAX, argv0);
}

static bool parse_u64(const char *s, unsigned long long *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end) return false;
  *out = v;
  return true;
}

bool cf_parse_pct_plan(const char *text, cf_pct_plan_t *plan) {
  memset(plan, 0, sizeof *plan);
  char *end;
  errno = 0;
  unsigned long seed = strtoul(text, &end, 10);
  if (errno || end == text || *end != ':') return false;
  plan->seed = (uint32_t)seed;
  const char *p = end + 1;
  while (*p) {
    if (plan->changes == CF_PCT_PLAN_MAX) return false;
    unsigned long v = strtoul(p, &end, 10);
    if (end == p || (*end && *end != ',')) return false;
    plan->change_at[plan->changes++] = (uint32_t)v;
    p = *end ? end + 1 : end;
  }
  return true;
}

int cf_simulate_main(int argc, char **argv) {
  const char *mode = NULL, *save = NULL;
  unsigned long long seed = 0, runs = 0, depth = 3, max_len = 256;
  double seconds = 10;
  bool have_seed = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long long n = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout, argv[0]);
      return 0;
    } else if (!strcmp(a, "--simulate") && v) {
      mode = argv[++i];
    } else if (!strcmp(a, "--save") && v) {
      save = argv[++i];
    } else if (!strcmp(a, "--seconds") && v) {
      char *end;
      seconds = strtod(argv[++i], &end);
      if (*end || seconds < 0) goto bad_number;
    } else if ((!strcmp(a, "--seed") || !strcmp(a, "--runs") || !strcmp(a, "--pct-depth") ||
                !strcmp(a, "--max-len")) && v) {
      if (!parse_u64(argv[++i], &n)) goto bad_number;
      if (!strcmp(a, "--seed")) seed = n, have_seed = true;
      else if (!strcmp(a, "--runs")) runs = n;
      else if (!strcmp(a, "--pct-depth")) depth = n;
      else max_len = n;
    } else {
      fprintf(stderr, "churnfuzz: --simulate: unknown or incomplete option '%s'\n", a);
      usage(stderr, argv[0]);
      return 2;
    }
    continue;
  bad_number:
    fprintf(stderr, "churnfuzz: %s needs a non-negative number, got '%s'\n", a, argv[i]);
    return 2;
  }
  bool pct = mode && !strcmp(mode, "pct");
  if (!mode || (!pct && strcmp(mode, "random"))) {
    fprintf(stderr, "churnfuzz: --simulate takes random or pct, got '%s'\n", mode ? mode : "");
    return 2;
  }
  if (!have_seed) {
    fprintf(stderr, "churnfuzz: --simulate needs --seed N (runs are reproducible by seed)\n");
    return 2;
  }
  if (depth < 1 || depth > CF_PCT_PLAN_MAX + 1 || max_len < 1 || max_len > SIM_INPUT_MAX) {
    fprintf(stderr, "churnfuzz: --pct-depth must be 1..%d and --max-len 1..%d\n",
            CF_PCT_PLAN_MAX + 1, SIM_INPUT_MAX);
    return 2;
  }
  sim.save_fd = -1;
  if (save && (sim.save_fd = open(save, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
    fprintf(stderr, "churnfuzz: --save %s: %s\n", save, strerror(errno));
    return 2;
  }
  int fargc = 0;
  char **fargv = NULL;
  LLVMFuzzerInitialize(&fargc, &fargv);
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on_failure);
  signal(SIGABRT, on_signal);
  signal(SIGSEGV, on_signal);
  signal(SIGBUS, on_signal);
  signal(SIGILL, on_signal);

  uint64_t rng = seed;
  sim.longest = 1;
  sim.t0 = now_seconds();
  double deadline = seconds > 0 ? sim.t0 + seconds : 0;
  for (sim.run = 1; runs == 0 || sim.run <= runs; sim.run++) {
    sim.len = 1 + (size_t)(splitmix64(&rng) % max_len);
    for (size_t i = 0; i < sim.len; i += 8) {
      uint64_t r = splitmix64(&rng);
      for (size_t b = 0; b < 8 && i + b < sim.len; b++) sim.input[i + b] = (uint8_t)(r >> (8 * b));
    }
    if (pct) {
      cf_pct_plan_t plan = {.seed = (uint32_t)splitmix64(&rng), .changes = (int)depth - 1};
      int n = snprintf(sim.plan_text, sizeof sim.plan_text, "%u:", plan.seed);
      for (int j = 0; j < plan.changes; j++) {
        plan.change_at[j] = (uint32_t)(splitmix64(&rng) % sim.longest);
        n += snprintf(sim.plan_text + n, sizeof sim.plan_text - (size_t)n, "%s%u", j ? "," : "",
                      plan.change_at[j]);
      }
      cf_fuzz_set_pct_plan(&plan);
    } else {
      sim.input[0] &= (uint8_t)~3u; /* header: the direct policy */
    }
    cf_result_t res;
    cf_run(cf_fuzz_target, sim.input, sim.len, &res);
    if (res.choice_points > sim.longest) sim.longest = res.choice_points;
    if (deadline && (sim.run & 63) == 0 && now_seconds() >= deadline) break;
  }
  unsigned long long done = runs && sim.run > runs ? runs : sim.run;
  double took = now_seconds() - sim.t0;
  printf("simulate: passed runs=%llu seconds=%.3f longest=%llu runs_per_second=%.0f\n", done,
         took, sim.longest, took > 0 ? (double)done / took : 0.0);
  if (sim.save_fd >= 0) close(sim.save_fd);
  if (save) unlink(save); /* nothing failed: no input to keep */
  return 0;
}
