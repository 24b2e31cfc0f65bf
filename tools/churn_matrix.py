"""`churn bench matrix`: every bug toggle of every target against every search strategy.

For each toggle (its target and expected signature come from its committed repro in
repros/TARGET/index.json; the depth ladder's rungs from LADDER below) and each strategy, N runs
with seeds 1..N, each stopped at its first failure or at the cap:

  libfuzzer     libFuzzer as `churn fuzz` runs it, from corpus/TARGET/ minus the seeds that
                already fail with the toggle
  afl           AFL++ the same way
  nointerleave  libFuzzer with CHURN_NO_INTERLEAVING_COV=1: edge coverage only (the ablation)
  transitions   libFuzzer with yield-site transition features in place of the read features
                (CHURN_COV_READS=0 CHURN_COV_TRANSITIONS=1)
  random        seeded random simulation: fresh random inputs, no feedback (`--simulate random`)
  pct           PCT with random change points and a random workload, no feedback
                (`--simulate pct`)
  threads       the copy on pthreads in the shape of upstream's test, where one exists

A run counts only when its failure replays as the toggle's: with the expected signature, or
with another one that then passes with no toggle on (churn_matrix_runs._judge). Results (every run)
go to a JSON file next to the report, so the report and the plot can be rewritten from it
(`--from-json`).
"""

import concurrent.futures
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import textwrap
import threading
import time

from churn_common import (EXIT_FAIL, EXIT_OK, REPO, ChurnError, binary, ensure_built,
                          fmt_secs, load_bugs, note, out_dir, parse_bug_ids, read_json, rel, say,
                          warn)
import churn_matrix_report
import churn_matrix_runs as runs_mod

STRATEGIES = ["libfuzzer", "afl", "nointerleave", "transitions", "random", "pct", "threads"]
DEFAULT_RUNS = 5
DEFAULT_CAP = 8  # seconds per run
DEFAULT_JOBS = 2
# A cell whose first EARLY_STOP runs all hit the cap skips its other runs: it is >cap anyway.
EARLY_STOP = 3
# PCT's depth for the real toggles: two change points, as the input header allows (most real
# bugs need 1-3 preemptions, SCTBench); a ladder rung d needs depth d + 1.
PCT_DEPTH = 3
LADDER = {"toy-depth-%d" % d: d for d in range(1, 6)}
LADDER_TARGET, LADDER_SIGNATURE = "fuzz_depth_ladder", "depth-ladder@ladder.top"
QUICK_BUGS = "toy-lost-update,toy-depth-1,toy-depth-2,tls-27838-resurrect"
QUICK_RUNS, QUICK_CAP = 2, 4
# Executions per second are measured apart, with no toggle on (nothing stops the run early, so
# start-up does not dominate), one run of RATE_SECONDS per target and strategy.
RATE_SECONDS, QUICK_RATE_SECONDS = 6, 2
# Seconds each run costs beyond its search (engine start-up, AFL++ calibration, replays): only
# for the estimate printed at the start.
OVERHEAD = {"libfuzzer": 1.5, "nointerleave": 1.5, "transitions": 1.5, "afl": 4.0, "random": 0.5,
            "pct": 0.5, "threads": 0.5}

EPILOG = textwrap.fill(
    "matrix: every bug toggle with a committed repro (its expected signature) and the depth "
    "ladder's rungs, times the strategies libfuzzer, afl, nointerleave (libFuzzer with "
    "CHURN_NO_INTERLEAVING_COV=1), transitions (libFuzzer with site-transition features "
    "instead of read features), random (seeded random simulation), pct (PCT, random change "
    "points) and threads (real threads, where the copy has a stress test), --runs runs each "
    "(seeds 1..N), each capped at --cap seconds; a cell whose first %d runs all hit the cap "
    "stops there. A failure counts only when it replays as the toggle's: with the expected "
    "signature, or with another that passes with no toggle on. Writes "
    "--doc (default docs/BENCHMARKS.md; with --quick out/bench/matrix-quick.md), an SVG plot "
    "next to it and the raw runs as JSON. Measurements made while other work loads the "
    "machine are slower: the report records the load average." % EARLY_STOP, 90) + (
    "\nexit status 0 when the matrix ran, 1 when a failure did not replay as found or a "
    "strategy could not run, 2 on usage or setup errors.")


class Cell:
    def __init__(self, target, bug, expected, strategy):
        self.target, self.bug, self.expected, self.strategy = target, bug, expected, strategy
        self.runs = []
        self.na = None  # why the strategy cannot run this bug

    def to_json(self):
        return {"target": self.target, "bug": self.bug, "expected": self.expected,
                "strategy": self.strategy, "na": self.na,
                "runs": [r.to_json() for r in self.runs]}

    @classmethod
    def from_json(cls, d):
        c = cls(d["target"], d["bug"], d["expected"], d["strategy"])
        c.na = d.get("na")
        c.runs = [runs_mod.MatrixRun.from_json(r) for r in d["runs"]]
        return c


def bug_catalogue():
    """[(target, bug, expected signature)] in bugs.def order, and the toggles left out."""
    expected = {}
    for target in sorted(os.listdir(os.path.join(REPO, "repros"))):
        index = os.path.join(REPO, "repros", target, "index.json")
        if not os.path.isfile(index):
            continue
        for e in read_json(index).get("repros", []):
            if len(e.get("bugs", [])) == 1 and e["bugs"][0] not in expected:
                expected[e["bugs"][0]] = (target, e["signature"])
    for bug in LADDER:
        expected.setdefault(bug, (LADDER_TARGET, LADDER_SIGNATURE))
    found, missing = [], []
    for b in load_bugs():
        if b.id in expected:
            found.append((expected[b.id][0], b.id, expected[b.id][1]))
        else:
            missing.append(b.id)
    return found, missing


def plan_cells(catalogue, strategies, afl_ok):
    cells = []
    for target, bug, expected in catalogue:
        for s in strategies:
            c = Cell(target, bug, expected, s)
            if s == "threads" and target not in runs_mod.STRESS_BINARY:
                c.na = runs_mod.NO_THREADS_REASON.get(target, "no real-threads harness")
            if s == "afl" and not afl_ok:
                c.na = "afl-fuzz / afl-clang-fast not installed"
            cells.append(c)
    return cells


def estimate(cells, nruns, cap, jobs):
    """Seconds if every run reached its cap (the bound the defaults are chosen against)."""
    live = [c for c in cells if not c.na]
    worst = sum(nruns * (cap + OVERHEAD[c.strategy]) for c in live) / jobs
    return worst


def _one_run(cell, seed, cap, seeds_by_bug, work):
    scratch = tempfile.mkdtemp(prefix="matrix-", dir=work)
    try:
        s, t, b, e = cell.strategy, cell.target, cell.bug, cell.expected
        if s in runs_mod.LIBFUZZER_ENV:
            return runs_mod.run_libfuzzer_strategy(s, t, b, e, seed, cap, scratch, seeds_by_bug[b])
        if s == "afl":
            return runs_mod.run_afl_strategy(t, b, e, seed, cap, scratch, seeds_by_bug[b])
        if s in ("random", "pct"):
            depth = LADDER[b] + 1 if b in LADDER else PCT_DEPTH
            return runs_mod.run_simulation_strategy(s, t, b, e, seed, cap, scratch, depth)
        return runs_mod.run_threads_strategy(t, b, e, seed, cap, scratch)
    except Exception as ex:  # one broken run must not lose the whole matrix
        r = runs_mod.MatrixRun(cell.strategy, seed)
        r.error = "%s: %s" % (type(ex).__name__, ex)
        return r
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure_rates(cells, seconds, jobs):
    """{target: {strategy: exec/s}} from one run per target and strategy with no toggle."""
    work = os.path.join(out_dir(), "work", "matrix")
    os.makedirs(work, exist_ok=True)
    pairs = sorted({(c.target, c.strategy) for c in cells if not c.na})
    rates = {}

    def one(pair):
        target, strategy = pair
        probe = Cell(target, "", None, strategy)
        seeds = runs_mod.seed_files_without_failing(target, []) \
            if strategy in runs_mod.CORPUS_STRATEGIES else None
        r = _one_run(probe, 1, seconds, {"": seeds}, work)
        say("         exec/s %s %s: %s" % (target, strategy, "%.0f" % r.exec_per_sec
                                           if r.exec_per_sec else r.error or "not measured"))
        return pair, r.exec_per_sec

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for (target, strategy), rate in pool.map(one, pairs):
            rates.setdefault(target, {})[strategy] = rate
    return rates


def save_results(path, meta, cells):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "cells": [c.to_json() for c in cells]}, f, indent=1)
    os.replace(tmp, path)


def run_matrix(cells, nruns, cap, jobs, checkpoint=None):
    """Run every live cell's seeds, `jobs` at a time. A cell's seeds run in order so that the
    early stop only ever skips runs after EARLY_STOP capped ones. checkpoint() is called after
    every run, so that an interrupted matrix still leaves its results."""
    work = os.path.join(out_dir(), "work", "matrix")
    os.makedirs(work, exist_ok=True)
    live = [c for c in cells if not c.na]
    seeds_by_bug = {}
    for c in live:
        if c.strategy in runs_mod.CORPUS_STRATEGIES and c.bug not in seeds_by_bug:
            seeds_by_bug[c.bug] = runs_mod.seed_files_without_failing(c.target, [c.bug])
    lock = threading.Lock()
    total = len(live) * nruns
    state = {"done": 0, "t0": time.time(), "last": 0.0}

    def cell_worker(cell):
        for seed in range(1, nruns + 1):
            r = _one_run(cell, seed, cap, seeds_by_bug, work)
            with lock:
                cell.runs.append(r)
                state["done"] += 1
                el = time.time() - state["t0"]
                what = ("error: " + r.error) if r.error else (
                    "%s after %.2fs" % (cell.expected, r.seconds) if r.found else
                    ("%s (%s)" % ("no" if r.seconds is None else "not counted", r.note or
                                  ">%ds" % cap)))
                say("[%6s] %d/%d %s %s seed %d: %s" % (fmt_secs(el), state["done"], total,
                                                       cell.bug, cell.strategy, seed, what))
                if checkpoint:
                    checkpoint()
            capped = [x for x in cell.runs if not x.found and not x.error]
            if seed == EARLY_STOP and len(capped) == EARLY_STOP and nruns > EARLY_STOP:
                with lock:
                    state["done"] += nruns - EARLY_STOP
                    say("         %s %s: the first %d runs hit the cap; its other %d skipped"
                        % (cell.bug, cell.strategy, EARLY_STOP, nruns - EARLY_STOP))
                return

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for f in [pool.submit(cell_worker, c) for c in live]:
            f.result()
    return time.time() - state["t0"]


def _machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GB" % (int(f.readline().split()[1]) / 1e6)
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "python": platform.python_version()}


def cmd_matrix(args):
    strategies = STRATEGIES
    if args.strategies:
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        bad = [s for s in strategies if s not in STRATEGIES]
        if bad:
            raise ChurnError("bench matrix: unknown strategy %s (strategies: %s)"
                             % (", ".join(bad), ", ".join(STRATEGIES)))
    doc = args.doc or (os.path.join(out_dir(), "bench", "matrix-quick.md") if args.quick
                       else os.path.join(REPO, "docs", "BENCHMARKS.md"))
    if args.from_json:
        data = read_json(args.from_json)
        if not data or "cells" not in data:
            raise ChurnError("bench matrix --from-json %s: not a matrix results file"
                             % args.from_json)
        cells = [Cell.from_json(c) for c in data["cells"]]
        churn_matrix_report.write_report(doc, data["meta"], cells)
        say("wrote %s and %s from %s" % (rel(doc), rel(churn_matrix_report.svg_path(doc)),
                                         args.from_json))
        return EXIT_OK
    catalogue, missing = bug_catalogue()
    spec = args.bugs or (QUICK_BUGS if args.quick else None)
    if spec:
        wanted = parse_bug_ids(spec)
        known = {b for _, b, _ in catalogue}
        unknown = [b for b in wanted if b not in known]
        if unknown:
            raise ChurnError("bench matrix: no committed repro that needs only %s (so no "
                             "expected signature); add one with `churn repro add`"
                             % ", ".join(unknown))
        catalogue = [c for c in catalogue if c[1] in wanted]
    if args.targets:
        targets = set(t.strip() for t in args.targets.split(","))
        catalogue = [c for c in catalogue if c[0] in targets]
    if not catalogue:
        raise ChurnError("bench matrix: no bug toggle left to measure")
    nruns = args.runs or (QUICK_RUNS if args.quick else DEFAULT_RUNS)
    cap = args.cap or (QUICK_CAP if args.quick else DEFAULT_CAP)
    jobs = args.jobs or DEFAULT_JOBS
    afl_ok = bool(shutil.which("afl-fuzz") and shutil.which("afl-clang-fast"))
    cells = plan_cells(catalogue, strategies, afl_ok)
    targets = sorted({c.target for c in cells})
    need, parts = [], set()
    for c in cells:
        if c.na:
            continue
        kinds = ["libfuzzer"] if c.strategy in runs_mod.LIBFUZZER_ENV else \
            ["afl"] if c.strategy == "afl" else []
        for k in kinds + ["replay"]:
            need.append(binary(k, c.target))
            parts.add(k)
        if c.strategy == "threads":
            need.append(binary("stress", runs_mod.STRESS_BINARY[c.target]))
            parts.add("stress")
    ensure_built(sorted(set(need)), sorted(parts))
    if missing and not spec:
        note("left out (no committed repro that needs only that toggle, so no expected "
             "signature): %s" % ", ".join(missing))
    live = [c for c in cells if not c.na]
    rate_secs = QUICK_RATE_SECONDS if args.quick else RATE_SECONDS
    npairs = len({(c.target, c.strategy) for c in live})
    worst = estimate(cells, nruns, cap, jobs) + npairs * (rate_secs + 4) / jobs
    note("bench matrix: %d toggles of %d targets x %d strategies = %d cells (%d n/a), %d runs "
         "each, cap %ds, %d at a time" % (len(catalogue), len(targets), len(strategies),
                                          len(cells), len(cells) - len(live), nruns, cap, jobs))
    note("estimate: at most %s (every run reaching its cap; cells whose first %d runs all cap "
         "stop early, and most known bugs fall in seconds, so usually far less)"
         % (fmt_secs(worst), EARLY_STOP))
    started = datetime.datetime.utcnow()
    meta = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "seconds": 0,
            "command": "./churn bench matrix " + " ".join(args.argv_shown),
            "runs": nruns, "cap": cap, "jobs": jobs, "early_stop": EARLY_STOP,
            "pct_depth": PCT_DEPTH, "machine": _machine(), "rates": {},
            "rate_seconds": rate_secs, "load_before": list(os.getloadavg()),
            "left_out": missing if not spec else [], "quick": bool(args.quick),
            "partial": True}
    os.makedirs(os.path.dirname(doc) or ".", exist_ok=True)
    results = churn_matrix_report.json_path(doc)
    t0 = time.time()

    def checkpoint():
        meta["seconds"] = time.time() - t0
        meta["load_after"] = list(os.getloadavg())
        save_results(results, meta, cells)

    note("exec/s: one %d s run per target and strategy with no toggle" % rate_secs)
    meta["rates"] = measure_rates(cells, rate_secs, jobs)
    note("results are saved to %s after every run (`--from-json` reports a partial run)"
         % rel(results))
    run_matrix(cells, nruns, cap, jobs, checkpoint)
    took = time.time() - t0
    meta["partial"] = False
    checkpoint()
    churn_matrix_report.write_report(doc, meta, cells)
    say("")
    say(churn_matrix_report.summary_text(cells, cap))
    say("")
    say("took %s; wrote %s, %s and %s" % (fmt_secs(took), rel(doc),
                                          rel(churn_matrix_report.svg_path(doc)),
                                          rel(churn_matrix_report.json_path(doc))))
    errors = [(c, r) for c in cells for r in c.runs if r.error or r.note.startswith("not repro")]
    for c, r in errors:
        warn("%s %s seed %d: %s" % (c.bug, c.strategy, r.seed, r.error or r.note))
    return EXIT_FAIL if errors else EXIT_OK


def add_arguments(s):
    """The matrix's options on `churn bench` (shared with the other WHATs)."""
    s.add_argument("--quick", action="store_true",
                   help="matrix: %s, %d runs, cap %ds (a few minutes)"
                   % (QUICK_BUGS, QUICK_RUNS, QUICK_CAP))
    s.add_argument("--cap", type=int, default=None, metavar="S",
                   help="matrix: per-run cap in seconds (default %d)" % DEFAULT_CAP)
    s.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="matrix: runs at once (default %d)" % DEFAULT_JOBS)
    s.add_argument("--strategies", default=None, metavar="LIST",
                   help="matrix: a subset of %s" % ",".join(STRATEGIES))
    s.add_argument("--targets", default=None, metavar="LIST",
                   help="matrix: only these fuzz targets' toggles")
    s.add_argument("--doc", default=None, metavar="FILE",
                   help="matrix: the report to write (default docs/BENCHMARKS.md)")
    s.add_argument("--from-json", default=None, metavar="FILE",
                   help="matrix: rewrite the report and plot from a results file")


def shown_argv(argv):
    """The matrix's own arguments as typed, for the report's command line."""
    try:
        i = argv.index("matrix")
    except ValueError:
        return []
    return argv[i + 1:]


def main_entry(args):
    if args.cap is not None and args.cap < 1 or args.jobs is not None and args.jobs < 1:
        raise ChurnError("bench matrix: --cap and --jobs must be positive")
    args.argv_shown = shown_argv(sys.argv)
    return cmd_matrix(args)

