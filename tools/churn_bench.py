"""`churn bench FUZZER`: time-to-bug, the number that says whether a target is worth its keep.

Each run starts from a fresh copy of the committed seed corpus (corpus/FUZZER/) with one toggle
set on and a fixed engine seed, and stops at the first crash or at --limit seconds. Runs are
sequential and use one core each, so runs of different engines are comparable.
"""

import os
import re
import shutil
import statistics
import tempfile
import textwrap
import time

from churn_common import (EXIT_ENV, EXIT_OK, ChurnError, binary, check_target, ensure_built,
                          ensure_tools, fmt_secs, note, out_dir, parse_bug_ids, rel, say, table,
                          warn)
from churn_engines import (afl_crash_files, afl_env, prepare_work_corpus, run_afl, run_libfuzzer,
                           signature_of, target_dict)

DEFAULT_RUNS = 5
DEFAULT_LIMIT = 300  # seconds per run
# What each target is benched against when --bugs is not given: the toggle(s) that say whether
# the target still finds its headline bug quickly. Several ids are benched one at a time.
DEFAULT_BUGS = {
    "fuzz_sim_selftest": "toy-lost-update",
    "fuzz_tls_intern": "tls-27838-resurrect",
    "fuzz_epoll_shim": "epoll-73-transient-dup,epoll-73-no-generation",
    "fuzz_httpz_worker": "httpz-120-disown-no-del",
    "fuzz_btc_httpserver": "btc-35614-send-ready-unlocked,btc-35182-eagain-no-flag",
    "fuzz_bun_server": "bun-22809-assert-alive",
}
EPILOG = textwrap.fill(
    "time-to-bug (WHAT is a fuzz target): for each toggle in --bugs (default: the target's "
    "entry in churn_bench.DEFAULT_BUGS) and each engine, --runs runs with seeds 1..N, each from "
    "a scratch copy of corpus/FUZZER/, stopping at the first crash or at --limit seconds. "
    "Reports per run the wall seconds from engine start to the first crash file, the execs at "
    "that point and the crash's replayed signature, then the median and the maximum; runs that "
    "hit the limit show as >LIMIT and make the median a lower bound. A seed that already fails "
    "with the toggle makes a run 0 s; --drop-failing-seeds leaves such seeds out.", 90) + (
    "\nexit status 0 when the measurement ran (whatever it found), 2 on setup errors.")


class BenchRun:
    def __init__(self, engine, seed):
        self.engine, self.seed = engine, seed
        self.seconds = None  # None: hit the limit without a crash
        self.execs = None
        self.signature = None
        self.command = None
        self.error = None


def _first_line_command(log_path):
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            line = f.readline().rstrip("\n")
    except OSError:
        return None
    return line[2:] if line.startswith("$ ") else None


def _shown_command(cmd, bugs):
    """The command as one could paste it: CHURN_BUGS first, repo paths relative."""
    if not cmd:
        return "?"
    words = []
    for w in cmd.split(" "):
        flag, eq, value = w.rpartition("=") if w.startswith("-") else ("", "", w)
        shown = rel(value) + ("/" if value.endswith("/") else "") if os.path.isabs(value) \
            else value  # libFuzzer's -artifact_prefix needs its trailing slash
        words.append(flag + eq + shown)
    return "CHURN_BUGS=%s %s" % (",".join(bugs), " ".join(words))


def _bench_libfuzzer(target, bugs, seed, limit, scratch, drop):
    run = BenchRun("libfuzzer", seed)
    corpus = os.path.join(scratch, "corpus")
    prepare_work_corpus(target, corpus, need_nonempty=False, drop_failing=bugs if drop else None)
    log = os.path.join(scratch, "libfuzzer.log")
    env = dict(os.environ, CHURN_BUGS=",".join(bugs))
    t0 = time.time()
    res = run_libfuzzer(binary("libfuzzer", target), [corpus], os.path.join(scratch, "crashes"),
                        env, max_time=limit, seed=seed, log_path=log,
                        dict_path=target_dict(target),
                        label="libFuzzer seed %d" % seed)
    run.command = _shown_command(_first_line_command(log), bugs)
    if res.crashes:
        first = min(res.crashes, key=lambda p: os.stat(p).st_mtime)
        run.seconds = max(0.0, os.stat(first).st_mtime - t0)
        run.execs = res.execs  # libFuzzer prints its final stats from the crash handler
        run.signature = signature_of(target, first, bugs)[0] or "(not reproducible)"
    elif res.error:
        run.error = res.error
    return run


def _afl_execs_at(crash, afl_out):
    m = re.search(r"execs[:-](\d+)", os.path.basename(crash))
    if m:
        return int(m.group(1))
    stats = os.path.join(afl_out, "default", "fuzzer_stats")
    try:
        with open(stats, encoding="utf-8", errors="replace") as f:
            m = re.search(r"^execs_done\s*:\s*(\d+)", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _bench_afl(target, bugs, seed, limit, scratch, drop):
    run = BenchRun("afl", seed)
    corpus = os.path.join(scratch, "corpus")
    prepare_work_corpus(target, corpus, need_nonempty=True, drop_failing=bugs if drop else None)
    afl_out = os.path.join(scratch, "afl")
    log = os.path.join(scratch, "afl.log")
    env = dict(os.environ, CHURN_BUGS=",".join(bugs))
    t0 = time.time()
    res = run_afl(binary("afl", target), corpus, afl_out, env, limit, until_crash=True, seed=seed,
                  dict_path=target_dict(target), log_path=log, label="AFL++ seed %d" % seed)
    run.command = " ".join("%s=%s" % kv for kv in sorted(afl_env({}, True).items())) + " " + \
        _shown_command(_first_line_command(log), bugs)
    crashes = afl_crash_files(afl_out)
    if crashes:
        first = min(crashes, key=lambda p: os.stat(p).st_mtime)
        run.seconds = max(0.0, os.stat(first).st_mtime - t0)
        run.execs = _afl_execs_at(first, afl_out)
        run.signature = signature_of(target, first, bugs)[0] or "(not reproducible)"
    elif res.seed_crashes:  # a committed seed already crashes: found before fuzzing began
        run.seconds, run.execs = 0.0, 0
        run.signature = "%s (seed %s)" % (signature_of(target, res.seed_crashes[0], bugs)[0],
                                          os.path.basename(res.seed_crashes[0]))
    elif res.error:
        run.error = res.error
    return run


def _secs(s):
    return "%.2f" % s if s < 10 else "%.1f" % s


def _report(engine, bugs, runs, limit):
    rows = []
    for i, r in enumerate(runs, 1):
        secs = ("error" if r.error else ">%d" % limit if r.seconds is None
                else _secs(r.seconds))
        rows.append([str(i), str(r.seed), secs, "-" if r.execs is None else str(r.execs),
                     r.signature or ("-" if not r.error else r.error.splitlines()[0][:60])])
    say("")
    say("time-to-bug: %s, CHURN_BUGS=%s, %d run%s, limit %ds"
        % (engine, ",".join(bugs), len(runs), "" if len(runs) == 1 else "s", limit))
    say(table(rows, ["run", "seed", "seconds", "execs", "signature"]))
    measured = [r for r in runs if not r.error]
    if not measured:
        say("no measurement (every run failed to start)")
        return
    censored = [r for r in measured if r.seconds is None]
    secs = [limit if r.seconds is None else r.seconds for r in measured]
    med = statistics.median(secs)
    med_s = (">%d" % limit) if med >= limit and censored else _secs(med)
    max_s = (">%d" % limit) if censored else _secs(max(secs))
    say("median %ss, max %ss%s" % (med_s, max_s, (
        "  (lower bound: %d of %d runs hit the %ds limit and count as %ds)"
        % (len(censored), len(measured), limit, limit)) if censored else ""))


def cmd_bench_bugs(args):
    target = check_target(args.what)
    spec = args.bugs if args.bugs is not None else DEFAULT_BUGS.get(target)
    if not spec:
        raise ChurnError("bench %s: no default toggle for this target in churn_bench.DEFAULT_BUGS;"
                         " pass --bugs IDS" % target)
    bug_ids = parse_bug_ids(spec)
    if not bug_ids:
        raise ChurnError("bench %s: --bugs names no toggle; time-to-bug needs one" % target)
    nruns = args.runs or DEFAULT_RUNS
    engines = ["libfuzzer", "afl"] if args.engine == "both" else [args.engine]
    if "afl" in engines:
        if args.engine == "afl":
            ensure_tools(["afl-clang-fast"])
        elif not shutil.which("afl-fuzz") or not shutil.which("afl-clang-fast"):
            note("afl-fuzz not installed: benching libFuzzer only")
            engines.remove("afl")
    ensure_built([binary(e, target) for e in engines] + [binary("replay", target)],
                 engines + ["replay"])
    work = os.path.join(out_dir(), "work", target)
    os.makedirs(work, exist_ok=True)
    total = len(bug_ids) * len(engines) * nruns
    note("time-to-bug on %s: toggles %s, engines %s, %d runs each (seeds 1..%d), limit %ds; "
         "at most %s" % (target, " and ".join(bug_ids), ", ".join(engines), nruns, nruns,
                         args.limit, fmt_secs(total * (args.limit + 15))))
    results, errors = [], 0
    k = 0
    for bug in bug_ids:
        for engine in engines:
            runs = []
            for seed in range(1, nruns + 1):
                k += 1
                note("run %d/%d: %s, CHURN_BUGS=%s, seed %d" % (k, total, engine, bug, seed))
                scratch = tempfile.mkdtemp(prefix="bench-ttb-", dir=work)
                try:
                    fn = _bench_libfuzzer if engine == "libfuzzer" else _bench_afl
                    r = fn(target, [bug], seed, args.limit, scratch, args.drop_failing_seeds)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
                if r.error:
                    errors += 1
                    warn("%s seed %d: %s" % (engine, seed, r.error))
                note("  -> %s" % ("error" if r.error else "no crash within %ds" % args.limit
                                   if r.seconds is None else "%s after %ss, %s execs"
                                   % (r.signature, _secs(r.seconds), r.execs)))
                runs.append(r)
            results.append((engine, [bug], runs))
    say("")
    say("== churn bench %s: time-to-bug ==" % target)
    for engine, bugs, runs in results:
        _report(engine, bugs, runs, args.limit)
    say("")
    say("commands (each run in its own scratch folder under %s, holding a copy of corpus/%s/%s; "
        "removed afterwards):" % (rel(work), target, " minus the seeds that already fail with "
                                  "the toggle" if args.drop_failing_seeds else ""))
    for engine, bugs, runs in results:
        for r in runs:
            say("  " + (r.command or "?"))
    return EXIT_ENV if errors else EXIT_OK
