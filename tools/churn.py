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

DEFAULT_TARGET = "fuzz_sim_selftest"  # what `churn fuzz` fuzzes when no target is named
DEFAULT_FUZZ_TIME = 60  # seconds
DEFAULT_REPEAT = 10  # replays per file in `churn replay` / `churn test`

from churn_common import (BUGS_DEF, EXIT_ENV, EXIT_OK, ChurnError, fuzzer_names,  # noqa: E402
                          load_bugs, rel, run_build, say, table)
import churn_engines  # noqa: E402
import churn_replay  # noqa: E402
import churn_test  # noqa: E402


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
        description="churnfuzz command line: build the fuzzers, fuzz a target, replay the corpus "
                    "and repros as tests, list the bug toggles, run the whole test suite.",
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

    s = sub.add_parser("fuzz", formatter_class=Formatter, help="fuzz one target",
                       description="Fuzz TARGET for a bounded time. Seeds are copied from "
                       "corpus/TARGET/ into out/work/TARGET/corpus (the committed corpus is never "
                       "written); crashes are saved in out/crashes/TARGET/ and replayed to print "
                       "their signatures. Stops at the first crash.",
                       epilog="targets: %s\nexit status 1 when a crash was found, 0 when none."
                       % targets)
    s.add_argument("target", nargs="?", default=DEFAULT_TARGET, metavar="TARGET",
                   help="fuzz target, listed in fuzzers/targets.def (default: %s)" % DEFAULT_TARGET)
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
    s.set_defaults(func=churn_engines.cmd_fuzz)

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
                       "paths, the real-threads stress test "
                       "(out/stress/toy-stress), the fuzzing self-tests (libFuzzer, and AFL++ when "
                       "afl-fuzz is installed, must find %s) and every `churn replay` check. "
                       "Prints one line per check and ends with `N passed, N failed`."
                       % churn_test.SELFTEST_BUG,
                       epilog="exit status 1 on any failure.")
    s.add_argument("--quick", action="store_true", help="skip the fuzzing self-tests")
    s.add_argument("--repeat", type=positive_int, default=DEFAULT_REPEAT, metavar="N",
                   help="replays per corpus/repro file (default: %d)" % DEFAULT_REPEAT)
    s.set_defaults(func=churn_test.cmd_test)

    s = sub.add_parser("bench", formatter_class=Formatter,
                       help="runtime micro-benchmarks and libFuzzer exec/s",
                       description="runtime: run out/bench/bench-runtime and show its numbers. "
                       "fuzz: run the libFuzzer binary of --target for --runs inputs over a copy "
                       "of its seed corpus with no toggles and report exec/s (and of "
                       "out/bench/fuzz-bench-minimal, the runtime alone, when it was built). "
                       "coverage: the same libFuzzer runs (3 seeds) with the interleaving "
                       "features on and off (CHURN_NO_INTERLEAVING_COV=1), showing the coverage "
                       "and features they add over plain edge coverage. Default: all three.")
    s.add_argument("what", nargs="?", choices=["runtime", "fuzz", "coverage", "all"],
                   default="all", help="which benchmark (default: all)")
    s.add_argument("--target", default=DEFAULT_TARGET, metavar="FUZZER",
                   help="fuzzer for the exec/s measurement (default: %s)" % DEFAULT_TARGET)
    s.add_argument("--runs", type=positive_int, default=200000, metavar="N",
                   help="libFuzzer -runs (default: 200000)")
    s.set_defaults(func=churn_test.cmd_bench)
    for q in [p] + list(sub.choices.values()):
        q.description = textwrap.fill(q.description, 90)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help()
        return EXIT_ENV
    if getattr(args, "target", None) and args.command == "bench" and args.what != "runtime":
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
