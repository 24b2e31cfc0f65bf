#!/usr/bin/env python3
"""churn: build, fuzz, replay and test churnfuzz. Run it through ../churn.

Exit codes: 0 ok; 1 a check failed or a crash was found; 2 usage or environment error;
130 interrupted.
"""

import argparse
import os
import sys
import textwrap

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEFAULT_TARGET = "fuzz_sim_selftest"  # the self-test: `churn bench`'s default, never in `churn fuzz`'s all
DEFAULT_FUZZ_TIME = 60  # seconds
DEFAULT_REPEAT = 10  # replays per file in `churn replay` / `churn test`

from churn_common import (BUGS_DEF, EXIT_ENV, EXIT_OK, ChurnError, fuzzer_names,  # noqa: E402
                          load_bugs, rel, run_build, say, table)
import churn_bench  # noqa: E402
import churn_matrix  # noqa: E402
import churn_corpus  # noqa: E402
import churn_coverage  # noqa: E402
import churn_engines  # noqa: E402
import churn_explain  # noqa: E402
import churn_ossfuzz  # noqa: E402
import churn_replay  # noqa: E402
import churn_repro  # noqa: E402
import churn_serve  # noqa: E402
import churn_test  # noqa: E402
import churn_triage  # noqa: E402

MINIMIZE_TIME = churn_triage.DEFAULT_MINIMIZE_TIME  # seconds per crash minimized


def cmd_bugs(args):
    bugs = load_bugs()
    if args.tsv:
        for b in bugs:
            say("\t".join([b.id, b.system, b.description, b.upstream]))
        return EXIT_OK
    if not bugs:
        say("no bug toggles defined in %s" % rel(BUGS_DEF))
        return EXIT_OK
    say(table([[b.id, b.system, b.description, b.upstream] for b in bugs],
              ["id", "system", "description", "upstream"]))
    say("")
    say("%d toggles (from %s). Turn them on with CHURN_BUGS=id,id (or all), or --bugs."
        % (len(bugs), rel(BUGS_DEF)))
    return EXIT_OK


def cmd_build(args):
    afl_ok = run_build([] if args.engine == "all" else [args.engine], force=args.force)
    if args.engine == "all" and not afl_ok:
        say("note: AFL++ binaries were not built (afl-clang-fast missing)")
    return EXIT_OK


class Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % s)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % v)
    return v


def parser():
    targets = ", ".join(fuzzer_names()) or "none yet"
    p = argparse.ArgumentParser(
        prog="churn", formatter_class=Formatter,
        description="churnfuzz command line: build the fuzzers, fuzz a target, triage and "
                    "minimize its crashes, commit them as repros, explain a run as a timeline, "
                    "replay the corpus and repros as tests, list the bug toggles, run the whole "
                    "test suite, measure speed and time-to-bug.",
        epilog="exit codes: 0 ok, 1 a check failed or a crash was found, 2 usage or environment "
               "error.\nrun `churn COMMAND --help` for each command's options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("build", formatter_class=Formatter, help="build everything with ./build.sh",
                       description="Check for the compilers (installing clang, llvm, afl++, zip "
                       "with apt-get when root on Debian), then run ./build.sh [PART], which "
                       "builds into out/ (or $OUT) and skips what is up to date.",
                       epilog="Without afl-clang-fast the AFL++ binaries are skipped with a note, "
                       "unless --engine afl.")
    s.add_argument("--engine", choices=["all", "libfuzzer", "afl", "replay", "tests", "tsan",
                                        "bench", "stress"], default="all", metavar="PART",
                   help="what to build: all (default), libfuzzer, afl, replay, or tests, tsan, "
                   "bench, stress")
    s.add_argument("--force", action="store_true", help="rebuild even if up to date (FORCE=1)")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("fuzz", formatter_class=Formatter,
                       help="fuzz every system copy, or one target",
                       description="Fuzz TARGET for a bounded time; with no TARGET, fuzz every "
                       "system copy (every target but %s and the bug-depth ladder), sharing --time and --jobs among "
                       "them (min(jobs, targets) at once, in waves of equal time) with a "
                       "progress line per target and one summary table. Seeds are copied from "
                       "corpus/TARGET/ into out/work/TARGET/corpus (the committed corpus is never "
                       "written), which is merged first when it has grown (see `churn corpus "
                       "merge`); crashes are saved in out/crashes/TARGET/ and replayed to print "
                       "their signatures. Stops at the first crash, unless --keep-going: then "
                       "the run lasts --time, every crash is saved, and the summary groups them "
                       "by signature (for a bug that only shows once another one has happened)."
                       % DEFAULT_TARGET,
                       epilog="targets: %s\nexit status 1 when a crash was found, 0 when none."
                       % targets)
    s.add_argument("target", nargs="?", default=None, metavar="TARGET",
                   help="fuzz target, listed in fuzzers/targets.def (default: every system "
                   "copy)")
    s.add_argument("--engine", choices=["libfuzzer", "afl"], default="libfuzzer",
                   help="fuzzing engine (default: libfuzzer)")
    s.add_argument("--time", type=positive_int, default=DEFAULT_FUZZ_TIME, metavar="S",
                   help="time limit in seconds (default: %d)" % DEFAULT_FUZZ_TIME)
    s.add_argument("--bugs", default="", metavar="IDS",
                   help="comma-separated bug toggles to turn on (CHURN_BUGS), or 'all'; "
                   "see `churn bugs` (default: none)")
    s.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="parallel fuzzing processes (libFuzzer -fork=N; AFL++ N -S instances)")
    s.add_argument("--seed", type=int, default=None, metavar="N",
                   help="random seed for the engine (libFuzzer -seed, afl-fuzz -s)")
    s.add_argument("--keep-going", action="store_true",
                   help="do not stop at a crash: libFuzzer -fork=N -ignore_crashes=1, afl-fuzz "
                   "without AFL_BENCH_UNTIL_CRASH; every signature is triaged and minimized")
    s.add_argument("--no-minimize", action="store_true",
                   help="after a crash, only report it: no triage, no minimization (with no "
                   "TARGET crashes are never minimized)")
    s.add_argument("--minimize-time", type=positive_int, default=MINIMIZE_TIME,
                   metavar="S", help="time limit per minimized signature (default: %d)"
                   % MINIMIZE_TIME)
    s.add_argument("--drop-failing-seeds", action="store_true",
                   help="leave out of the work corpus the committed seeds that already fail "
                   "with --bugs, or with no toggles on the current build (replayed first), so "
                   "a crash is the fuzzer's own finding")
    s.set_defaults(func=churn_engines.cmd_fuzz)

    add_repro_tool_parsers(sub)

    s = sub.add_parser("replay", formatter_class=Formatter,
                       help="replay corpus and repro files as tests",
                       description="Replay files with out/replay/FUZZER. With no PATHS: every file "
                       "under corpus/*/ and repros/*/ (index.json aside). Corpus files must pass "
                       "with no toggles. Repro files must be listed in repros/FUZZER/index.json, "
                       "fail with exactly their signature with their toggles on, and pass with "
                       "none. Every replay runs each file N times and requires the same trace hash "
                       "every time.",
                       epilog="Other files (e.g. out/crashes/FUZZER/crash-...) are replayed with "
                       "--bugs and must pass;\na failure prints its signature. The fuzzer is taken "
                       "from the path or from --target.\nEnds with `N passed, N failed`; exit "
                       "status 1 on any failure.")
    s.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to replay")
    s.add_argument("--repeat", type=positive_int, default=DEFAULT_REPEAT, metavar="N",
                   help="runs per file, all with the same trace hash (default: %d)"
                   % DEFAULT_REPEAT)
    s.add_argument("--target", default=None, metavar="FUZZER",
                   help="fuzzer for paths outside corpus/ and repros/")
    s.add_argument("--bugs", default="", metavar="IDS",
                   help="toggles for paths outside corpus/ and repros/ (default: none)")
    s.add_argument("--timeout", type=positive_int, default=25, metavar="S",
                   help="per-input timeout in seconds (default: 25)")
    s.set_defaults(func=churn_replay.cmd_replay)

    s = sub.add_parser("bugs", formatter_class=Formatter, help="list the bug toggles",
                       description="List the bug toggles from harness/runtime/bugs.def: id, "
                       "system, description and upstream reference. Turn them on with "
                       "CHURN_BUGS=id,id or `churn fuzz --bugs id,id`.")
    s.add_argument("--tsv", action="store_true", help="tab-separated output, no header")
    s.set_defaults(func=cmd_bugs)

    s = sub.add_parser("test", formatter_class=Formatter, help="run all the tests",
                       description="Build what is needed, then run: the unit tests and "
                       "self-tests (out/tests/churn-tests, then again under ThreadSanitizer: "
                       "out/tsan/tests/churn-tests), a determinism lint of the simulated code "
                       "paths, the real-threads stress tests (out/stress/toy-stress, tls-stress, "
                       "kernel-real-check), the http.zig copy as a real server "
                       "(out/stress/httpz-serve) checked with curl, raw sockets and wrk, "
                       "the fuzzing self-tests (libFuzzer, and AFL++ when "
                       "afl-fuzz is installed, must find %s) and `churn bench matrix --quick` "
                       "(every strategy must run and the report have its shape), checks that "
                       "`churn triage` and "
                       "`churn repro add` refuse bad input and that `churn explain` reads a repro, "
                       "the workflow files (validated offline with action-validator from npm), "
                       "`churn explain --html` of a repro of each target rendered in headless "
                       "Chromium, `churn coverage` (not with --quick), "
                       "and every `churn replay` check. "
                       "Prints one line per check and ends with `N passed, N failed`."
                       % churn_test.SELFTEST_BUG,
                       epilog="exit status 1 on any failure.")
    s.add_argument("--quick", action="store_true",
                   help="skip the fuzzing self-tests, the bench matrix smoke test and the "
                   "coverage check")
    s.add_argument("--repeat", type=positive_int, default=DEFAULT_REPEAT, metavar="N",
                   help="replays per corpus/repro file (default: %d)" % DEFAULT_REPEAT)
    s.set_defaults(func=churn_test.cmd_test)

    churn_serve.add_parser(sub, Formatter)
    churn_coverage.add_parser(sub, Formatter)
    churn_corpus.add_parser(sub, Formatter)
    churn_ossfuzz.add_parser(sub, Formatter)

    s = sub.add_parser("bench", formatter_class=Formatter,
                       help="runtime micro-benchmarks, libFuzzer exec/s, time-to-bug",
                       description="runtime: run out/bench/bench-runtime and show its numbers. "
                       "fuzz: run the libFuzzer binary of --target for --runs inputs over a copy "
                       "of its seed corpus with no toggles and report exec/s (and of "
                       "out/bench/fuzz-bench-minimal, the runtime alone, when it was built). "
                       "coverage: the same libFuzzer runs (3 seeds) with the interleaving "
                       "features on and off (CHURN_NO_INTERLEAVING_COV=1), showing the coverage "
                       "and features they add over plain edge coverage. Default: all three. "
                       "FUZZER (a fuzz target's name): time-to-bug, see below.",
                       epilog=churn_bench.EPILOG + "\n\n" + churn_matrix.EPILOG)
    s.add_argument("what", nargs="?", choices=["runtime", "fuzz", "coverage", "all", "matrix"]
                   + fuzzer_names(), default="all", metavar="WHAT",
                   help="runtime, fuzz, coverage, all (default), matrix (every toggle against "
                   "every strategy), or a fuzz target for time-to-bug")
    s.add_argument("--target", default=DEFAULT_TARGET, metavar="FUZZER",
                   help="fuzzer for the exec/s measurement (default: %s)" % DEFAULT_TARGET)
    s.add_argument("--runs", type=positive_int, default=None, metavar="N",
                   help="fuzz/coverage: libFuzzer -runs (default: 200000); time-to-bug: runs "
                   "per engine, seeds 1..N (default: %d)" % churn_bench.DEFAULT_RUNS)
    s.add_argument("--bugs", default=None, metavar="IDS",
                   help="time-to-bug: toggles, each benched on its own (default: the target's "
                   "entry in the tool's table)")
    s.add_argument("--engine", choices=["libfuzzer", "afl", "both"], default="both",
                   help="time-to-bug: engine(s), sequential, one core each (default: both)")
    s.add_argument("--limit", type=positive_int, default=churn_bench.DEFAULT_LIMIT, metavar="S",
                   help="time-to-bug: per-run time limit in seconds (default: %d)"
                   % churn_bench.DEFAULT_LIMIT)
    s.add_argument("--drop-failing-seeds", action="store_true",
                   help="time-to-bug: leave out of each scratch corpus the seeds that already "
                   "fail with the toggle (a seed scenario of the bug would make it 0 s)")
    churn_matrix.add_arguments(s)
    s.set_defaults(func=dispatch_bench)
    for q in [p] + list(sub.choices.values()):
        q.description = textwrap.fill(q.description, 90)
    return p


def dispatch_bench(args):
    if args.what == "matrix":
        return churn_matrix.main_entry(args)
    if args.what in fuzzer_names():
        return churn_bench.cmd_bench_bugs(args)
    if args.runs is None:
        args.runs = 200000
    return churn_test.cmd_bench(args)


def add_repro_tool_parsers(sub):
    """triage, minimize, repro, explain: from a crash to a committed, understood repro."""
    ctx_help = ("The target and toggles come from --target/--bugs, else from the file's sidecar "
                "(.NAME.json, written by churn fuzz and churn minimize), else from where it lies "
                "(repros/F/ uses the index, corpus/F/ no toggles, out/crashes/F/ the last "
                "`churn fuzz F`).")

    def ctx_args(s):
        s.add_argument("--target", default=None, metavar="FUZZER",
                       help="fuzz target (default: inferred, see above)")
        s.add_argument("--bugs", default=None, metavar="IDS",
                       help="toggles to replay with, comma-separated ('' for none; default: "
                       "inferred)")

    s = sub.add_parser("triage", formatter_class=Formatter, help="group crashes by signature",
                       description="Replay every crash file in DIR (recursively; sidecars, "
                       ".log and .json files aside) with its toggles, group them by signature and "
                       "keep the smallest of each group; the others are listed as duplicates, "
                       "files that pass on replay as not reproducible. " + ctx_help,
                       epilog="exit status 0 when every file was replayed, 2 on usage errors "
                       "(no such DIR, no files, unknown toggles).")
    s.add_argument("dir", metavar="DIR", help="folder of crash files (or one file)")
    ctx_args(s)
    s.add_argument("--delete-duplicates", action="store_true",
                   help="delete every duplicate (and its sidecar), keeping the smallest file")
    s.set_defaults(func=churn_triage.cmd_triage)

    s = sub.add_parser("minimize", formatter_class=Formatter,
                       help="shrink a crash, keeping its signature",
                       description="Shrink a crash input with libFuzzer (-minimize_crash=1, "
                       "every intermediate step kept as a candidate) or afl-tmin, then replay "
                       "each candidate with out/replay/FUZZER: only candidates that fail with the "
                       "original's signature count, and the smallest wins. The result goes to "
                       "out/minimized/FUZZER/NAME-min with a sidecar. " + ctx_help,
                       epilog="exit status 0 when done (even if nothing smaller was found), 1 when "
                       "FILE does not fail on replay, 2 on usage or environment errors.")
    s.add_argument("file", metavar="FILE", help="the crash input")
    ctx_args(s)
    s.add_argument("--engine", choices=["libfuzzer", "afl"], default=None,
                   help="minimizer (default: afl-tmin for AFL++ crash names id:.../afl-..., "
                   "else libFuzzer)")
    s.add_argument("--time", type=positive_int, default=MINIMIZE_TIME, metavar="S",
                   help="time limit in seconds (default: %d)" % MINIMIZE_TIME)
    s.add_argument("--runs", type=positive_int, default=churn_triage.DEFAULT_MINIMIZE_RUNS,
                   metavar="N", help="libFuzzer -runs per minimization step (default: %d)"
                   % churn_triage.DEFAULT_MINIMIZE_RUNS)
    s.set_defaults(func=churn_triage.cmd_minimize)

    s = sub.add_parser("repro", formatter_class=Formatter, help="commit or list repros",
                       description="add: verify a crash and commit it as a repro. list: print the "
                       "repro index.")
    rsub = s.add_subparsers(dest="repro_command", metavar="add|list")
    rsub.required = True
    a = rsub.add_parser("add", formatter_class=Formatter, help="verify and commit a repro",
                        description="Verify FILE: with its toggles it must fail %d times with "
                        "the same signature and trace hash, and with CHURN_BUGS empty pass %d "
                        "times; otherwise it is refused with the reason. Then copy it to "
                        "repros/FUZZER/NAME-<first 12 hex of its sha1> and add (or replace) its "
                        "entry in repros/FUZZER/index.json. " % (churn_repro.VERIFY_RUNS,
                                                                 churn_repro.VERIFY_RUNS)
                        + ctx_help,
                        epilog="exit status 0 when committed, 1 when refused, 2 on usage errors.")
    a.add_argument("file", metavar="FILE", help="the (minimized) crash input")
    a.add_argument("--name", required=True, help="repro name, e.g. the toggle id (letters, "
                   "digits, '.', '_', '-'; anything else becomes '-')")
    ctx_args(a)
    a.add_argument("--upstream", default=None, metavar="REF",
                   help="upstream reference (default: the toggles' upstream column in bugs.def)")
    a.add_argument("--found-by", choices=["libfuzzer", "afl", "random-simulation", "pct"],
                   default=None, help="engine or strategy that found it (random-simulation, "
                   "pct: `out/replay/F --simulate`; default: from the sidecar)")
    a.add_argument("--note", default=None, metavar="TEXT",
                   help="how it was found and minimized (default: from the sidecar)")
    a.add_argument("--repros-dir", default=None, metavar="DIR",
                   help="write into DIR/FUZZER/ instead of repros/FUZZER/ (to try it out)")
    a.set_defaults(func=churn_repro.cmd_repro)
    ls = rsub.add_parser("list", formatter_class=Formatter, help="print the repro index",
                         description="Print every repro of TARGET (default: all targets) as a "
                         "table: file, toggles, signature, size, engine, upstream reference.")
    ls.add_argument("target", nargs="?", default=None, metavar="TARGET")
    ls.add_argument("--repros-dir", default=None, metavar="DIR",
                    help="read DIR/FUZZER/index.json instead of repros/")
    ls.set_defaults(func=churn_repro.cmd_repro)

    s = sub.add_parser("explain", formatter_class=Formatter,
                       help="show one run as a per-thread timeline",
                       description="Replay FILE once with CHURN_TRACE=1 and print a timeline: "
                       "one column per fiber, named by its thread, one row per event in step "
                       "order (yield points reached, spawns, blocks, wake-ups, copy-level notes), "
                       "with the fiber the schedule picked at each choice point. Runs of steps in "
                       "which one fiber just went on alone are collapsed. Ends with the failing "
                       "check line and the signature, or with 'passed'. " + ctx_help,
                       epilog="exit status 0 when the input passes, 1 when it fails, 2 on "
                       "usage or environment errors.")
    s.add_argument("file", metavar="FILE", help="the input to explain")
    ctx_args(s)
    s.add_argument("--full", action="store_true", help="show every event: no collapsing")
    s.add_argument("--width", type=positive_int, default=None, metavar="N",
                   help="output width in columns (default: the terminal's, else 120); lanes "
                   "are as wide as their longest label when that fits")
    s.add_argument("--html", default=None, metavar="OUT.html",
                   help="also write the timeline as a web page: a lane per thread, every "
                   "operation in full, shared objects and preemptions marked, the failing check "
                   "highlighted (with --full: no rows folded)")
    s.add_argument("--timeout", type=positive_int, default=60, metavar="S",
                   help="replay time limit in seconds (default: 60)")
    s.set_defaults(func=churn_explain.cmd_explain)


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help()
        return EXIT_ENV
    if args.command == "bench" and args.what in ("fuzz", "coverage", "all"):
        if args.target not in fuzzer_names():
            p.error("--target: unknown fuzzer %r (not in fuzzers/targets.def)"
                    % args.target)
    try:
        return args.func(args)
    except ChurnError as e:
        print("churn: error: %s" % e, file=sys.stderr, flush=True)
        return e.code
    except KeyboardInterrupt:
        print("churn: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
