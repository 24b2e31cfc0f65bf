/* replay_main.c: the standalone main of out/replay/<fuzzer>.
 *
 * Runs each input file (directories are read one level deep, in name order) in a child process,
 * so a crash or an oracle's abort() ends only that input, with a per-input time limit. Prints
 * one line per failing input with its signature, and a closing `N passed, N failed`.
 *
 * Signatures: `<oracle>@<site>` for our oracles (from the `churnfuzz: ...` line),
 * `asan:<kind>@<function>` / `ubsan:<kind>@<file>` for sanitizer reports, `timeout`,
 * `signal:<n>` or `exit:<code>` otherwise. An ASan report is signed by the first frame of its
 * access stack that lies in a system copy (harness/<dir>/ other than the runtime, the kernels
 * and the entry points, as build.sh's NOT_COPIES): the top frame is often a runtime helper
 * (a mutex, an atomic) that every bug of every copy goes through. The report itself, with the
 * whole stack, is left as it is. */
#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf.h"
#include "run.h"
#include "simulate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct options {
  bool hash;
  bool show;
  int repeat;
  int timeout;
  bool planned; /* --pct-plan: every input runs under this PCT plan (simulate.c) */
  cf_pct_plan_t plan;
} options_t;

static options_t opts;

static void usage(FILE *to, const char *argv0) {
  fprintf(to,
          "usage: %s [--hash] [--repeat N] [--timeout SECONDS] [--show] PATH...\n"
          "       %s --list-bugs\n"
          "       %s --simulate random|pct --seed N ...   (see --simulate x --help)\n"
          "Replays each input file (directories: their files, one level deep) in a child\n"
          "process with the bug toggles named by CHURN_BUGS.\n"
          "  --hash         print `HASH <path> <trace hash>` for every input\n"
          "  --repeat N     run every input N times and fail it unless all runs agree: same\n"
          "                 trace hash, and for failing inputs the same signature (default 1)\n"
          "  --timeout S    per-input time limit in seconds (default 25)\n"
          "  --show         pass the child's stderr through (with CHURN_TRACE=1: the trace)\n"
          "  --list-bugs    print the bug toggles as TSV: id, system, description, upstream\n"
          "  --pct-plan SEED:CP,...  run every input as `--simulate pct` ran it: under that PCT\n"
          "                 plan, the whole file being workload and environment bytes\n"
          "Prints `FAIL <path>: <signature>` per failing input and ends with\n"
          "`N passed, N failed`. Exit 0: all passed; 1: some failed; 2: usage or unreadable path.\n",
          argv0, argv0, argv0);
}

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      cap *= 2;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  bool err = ferror(f);
  fclose(f);
  if (err || !buf) {
    free(buf);
    return NULL;
  }
  *size = n;
  return buf;
}

/* Child: run the input `runs` times, writing each trace hash to hash_fd. */
static void child_run(const char *path, int runs, int hash_fd, int timeout) {
  size_t size = 0;
  uint8_t *data = read_file(path, &size);
  if (!data) {
    fprintf(stderr, "churnfuzz: %s: %s\n", path, strerror(errno));
    _exit(3);
  }
  alarm((unsigned)timeout);
  int argc = 0;
  char **argv = NULL;
  LLVMFuzzerInitialize(&argc, &argv);
  cf_note_text = true; /* failure reports show what the copy noted */
  if (opts.planned) cf_fuzz_set_pct_plan(&opts.plan);
  for (int i = 0; i < runs; i++) {
    LLVMFuzzerTestOneInput(data, size);
    uint64_t h = cf_fuzz_last_hash;
    if (write(hash_fd, &h, sizeof h) != sizeof h) _exit(4);
  }
  free(data);
  exit(0); /* exit, not _exit: let LeakSanitizer look */
}

/* The harness folders that are not a system copy (build.sh's NOT_COPIES). */
static const char *const not_copies[] = {"runtime", "kernel", "real", "entry", "bench"};

/* Is `path` a source file of a system copy (or the toys): harness/<dir>/ with <dir> not one of
 * not_copies? */
static bool path_in_copy(const char *path) {
  const char *dir = strstr(path, "harness/");
  if (!dir) return false;
  dir += 8;
  const char *slash = strchr(dir, '/');
  if (!slash) return false;
  for (size_t i = 0; i < sizeof not_copies / sizeof *not_copies; i++)
    if ((size_t)(slash - dir) == strlen(not_copies[i]) &&
        !strncmp(dir, not_copies[i], (size_t)(slash - dir)))
      return false;
  return true;
}

/* The function of the first frame of the report's first stack (the faulting access) that is
 * in a copy, or false. Frames read `    #N 0xADDR in FUNC PATH:LINE:COL`; the stack ends at
 * the first line that is not a frame. */
static bool first_copy_frame(const char *report, char *fn, size_t fnlen) {
  for (const char *p = strstr(report, "    #0 "); p && !strncmp(p, "    #", 5);) {
    char func[128], path[512];
    if (sscanf(p, " #%*d %*s in %127s %511s", func, path) == 2 && path_in_copy(path)) {
      snprintf(fn, fnlen, "%s", func);
      return true;
    }
    const char *eol = strchr(p, '\n');
    p = eol ? eol + 1 : NULL;
  }
  return false;
}

/* The signature of a failed child from its stderr, exit status and whether it timed out. */
static void signature_of(const char *err, int status, char *sig, size_t len) {
  const char *p = err;
  while ((p = strstr(p, "churnfuzz: ")) != NULL) {
    char oracle[64], system[64], site[128];
    if (sscanf(p, "churnfuzz: %63[^:\n]: %63[^:\n]: %127[^:\n]:", oracle, system, site) == 3 &&
        !strchr(oracle, ' ')) {
      snprintf(sig, len, "%s@%s", oracle, site);
      return;
    }
    p += 11;
  }
  if ((p = strstr(err, "SUMMARY: AddressSanitizer: ")) != NULL) {
    char kind[64] = "", fn[128] = "?";
    sscanf(p, "SUMMARY: AddressSanitizer: %63s", kind);
    const char *in = strstr(p, " in ");
    const char *eol = strchr(p, '\n');
    if (in && (!eol || in < eol)) sscanf(in, " in %127s", fn);
    const char *report = strstr(err, "ERROR: AddressSanitizer");
    if (report && report < p) first_copy_frame(report, fn, sizeof fn);
    if (strstr(kind, "byte(s)")) snprintf(sig, len, "asan:leak");
    else if (isdigit((unsigned char)kind[0])) snprintf(sig, len, "asan:leak");
    else snprintf(sig, len, "asan:%s@%s", kind, fn);
    return;
  }
  if ((p = strstr(err, "SUMMARY: UndefinedBehaviorSanitizer: ")) != NULL) {
    char kind[64] = "", loc[256] = "?";
    sscanf(p, "SUMMARY: UndefinedBehaviorSanitizer: %63s %255s", kind, loc);
    const char *base = strrchr(loc, '/');
    base = base ? base + 1 : loc;
    char file[128];
    snprintf(file, sizeof file, "%s", base);
    char *colon = strchr(file, ':');
    if (colon) *colon = 0;
    snprintf(sig, len, "ubsan:%s@%s", kind, file);
    return;
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) snprintf(sig, len, "timeout");
  else if (WIFSIGNALED(status)) snprintf(sig, len, "signal:%d", WTERMSIG(status));
  else snprintf(sig, len, "exit:%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The trace hash a failed run printed at the failure (our oracles only), or 0. */
static uint64_t failure_hash_of(const char *err) {
  const char *p = strstr(err, "churnfuzz: trace hash ");
  unsigned long long h = 0;
  if (p) sscanf(p, "churnfuzz: trace hash %llx", &h);
  return h;
}

/* Run one child; returns 0 on pass. Fills hashes (up to runs) and the signature on failure;
 * a failed run's hash is the one printed at the failure. */
static int spawn_child(const char *path, int runs, const options_t *o, uint64_t *hashes,
                       int *nhashes, char *sig, size_t siglen) {
  int errp[2], hashp[2];
  if (pipe(errp) || pipe(hashp)) {
    perror("churnfuzz: pipe");
    exit(2);
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("churnfuzz: fork");
    exit(2);
  }
  if (pid == 0) {
    close(errp[0]);
    close(hashp[0]);
    if (!o->show) dup2(errp[1], 2);
    close(errp[1]);
    child_run(path, runs, hashp[1], o->timeout);
  }
  close(errp[1]);
  close(hashp[1]);
  size_t cap = 1 << 16, n = 0;
  char *err = malloc(cap + 1);
  ssize_t got;
  char drain[4096];
  while ((got = read(errp[0], n < cap ? err + n : drain, n < cap ? cap - n : sizeof drain)) > 0)
    if (n < cap) n += (size_t)got;
  err[n] = 0;
  *nhashes = 0;
  uint64_t h;
  while (*nhashes < runs && read(hashp[0], &h, sizeof h) == (ssize_t)sizeof h) hashes[(*nhashes)++] = h;
  close(errp[0]);
  close(hashp[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  int failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
    fprintf(stderr, "%s", err);
    free(err);
    exit(2);
  }
  if (failed) {
    signature_of(err, status, sig, siglen);
    hashes[0] = failure_hash_of(err);
    *nhashes = 1;
  }
  free(err);
  return failed;
}

/* Run an input `repeat` times and check every run agrees. A passing input runs once in a fresh
 * process and repeat-1 times in a second one (as the engines run it, one input after another);
 * a failing input runs in a fresh process each time and must fail with the same signature and,
 * for our oracles, the same trace hash at the failure. */
static int replay_one(const char *path, const options_t *o, int *passed, int *failed) {
  static uint64_t hashes[256];
  uint64_t first_hash;
  int nh = 0;
  char sig[256] = "", again[256] = "";
  int runs = o->repeat < 1 ? 1 : (o->repeat > 256 ? 256 : o->repeat);
  int bad = spawn_child(path, 1, o, hashes, &nh, sig, sizeof sig);
  first_hash = nh > 0 ? hashes[0] : 0;
  const char *why = NULL;
  if (!bad && runs > 1) {
    if (spawn_child(path, runs - 1, o, hashes, &nh, again, sizeof again)) {
      bad = 1;
      why = "passed once, then failed";
      snprintf(sig, sizeof sig, "%s", again);
    }
    for (int i = 0; !bad && i < nh; i++)
      if (hashes[i] != first_hash) bad = 1, why = "nondeterministic trace hash";
  } else if (bad) {
    for (int r = 1; r < runs && !why; r++) {
      int again_bad = spawn_child(path, 1, o, hashes, &nh, again, sizeof again);
      if (!again_bad) why = "failed once, then passed";
      else if (strcmp(again, sig) != 0) why = "a different signature on replay";
      else if ((nh > 0 ? hashes[0] : 0) != first_hash) why = "nondeterministic trace hash";
    }
  }
  if (o->hash) printf("HASH %s %016llx\n", path, (unsigned long long)first_hash);
  if (why) {
    printf("FAIL %s: %s (%s)\n", path, why, sig);
    (*failed)++;
  } else if (bad) {
    printf("FAIL %s: %s\n", path, sig);
    (*failed)++;
  } else {
    (*passed)++;
  }
  fflush(stdout);
  return bad || why;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *path, const options_t *o, int *passed, int *failed) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "churnfuzz: %s: %s\n", path, strerror(errno));
    exit(2);
  }
  if (!S_ISDIR(st.st_mode)) {
    replay_one(path, o, passed, failed);
    return;
  }
  DIR *d = opendir(path);
  if (!d) {
    fprintf(stderr, "churnfuzz: %s: %s\n", path, strerror(errno));
    exit(2);
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) names = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
    size_t len = strlen(path) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    bool slash = path[0] && path[strlen(path) - 1] == '/';
    snprintf(names[n], len, "%s%s%s", path, slash ? "" : "/", e->d_name);
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) && !strstr(names[i], "index.json"))
      replay_one(names[i], o, passed, failed);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  options_t o = {false, false, 1, 25, false, {0}};
  int first_path = argc;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--simulate")) return cf_simulate_main(argc, argv);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--pct-plan") && i + 1 < argc) {
      if (!cf_parse_pct_plan(argv[++i], &o.plan)) {
        fprintf(stderr, "churnfuzz: --pct-plan takes SEED:CP,CP,... (at most %d), got '%s'\n",
                CF_PCT_PLAN_MAX, argv[i]);
        return 2;
      }
      o.planned = true;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout, argv[0]);
      return 0;
    } else if (!strcmp(a, "--list-bugs")) {
      for (int b = 0; b < CF_BUG_COUNT; b++)
        printf("%s\t%s\t%s\t%s\n", cf_bug_table[b].id, cf_bug_table[b].system,
               cf_bug_table[b].description, cf_bug_table[b].upstream);
      return 0;
    } else if (!strcmp(a, "--hash")) {
      o.hash = true;
    } else if (!strcmp(a, "--show")) {
      o.show = true;
    } else if ((!strcmp(a, "--repeat") || !strcmp(a, "--timeout")) && i + 1 < argc) {
      int v = atoi(argv[++i]);
      if (v < 1) {
        fprintf(stderr, "churnfuzz: %s needs a positive number, got '%s'\n", a, argv[i]);
        return 2;
      }
      if (!strcmp(a, "--repeat")) o.repeat = v;
      else o.timeout = v;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "churnfuzz: unknown option '%s'\n", a);
      usage(stderr, argv[0]);
      return 2;
    } else {
      first_path = i;
      break;
    }
  }
  if (first_path >= argc) {
    usage(stderr, argv[0]);
    return 2;
  }
  /* Validate the toggles once, before any child: an unknown id is a usage error. */
  cf_bugs_from_env();
  opts = o;
  int passed = 0, failed = 0;
  for (int i = first_path; i < argc; i++) replay_path(argv[i], &o, &passed, &failed);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
