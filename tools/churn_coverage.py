"""`churn coverage [TARGET]`: clang source-based coverage of a target's corpus and repros.

The fuzzers are built as OSS-Fuzz's coverage configuration builds them (build.sh with
-fprofile-instr-generate -fcoverage-mapping) into out/coverage/build/, each target's inputs are
run once with LLVM_PROFILE_FILE set, and llvm-profdata / llvm-cov turn the profiles into an
HTML report (out/coverage/TARGET/html/index.html) and a one-line summary per source file.
"""

import json
import os
import shutil
import subprocess
import time

from churn_common import (EXIT_ENV, EXIT_FAIL, EXIT_OK, REPO, ChurnError, check_target,
                          fmt_secs, fuzzer_names, input_files, note, out_dir, rel, say,
                          stale_reason, table, tail_text)

SELFTEST = "fuzz_sim_selftest"


def _run(cmd, env=None, timeout=900):
    p = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, errors="replace",
                       timeout=timeout)
    return p.returncode, p.stdout


def profile(binary, dirs, profdir):
    """Run binary once over every input in dirs (libFuzzer -runs=0) writing raw profiles into
    profdir, then merge them. Returns (exit status, output, path of the .profdata or None)."""
    shutil.rmtree(profdir, ignore_errors=True)
    os.makedirs(profdir)
    env = dict(os.environ, LLVM_PROFILE_FILE=os.path.join(profdir, "%p-%m.profraw"))
    env.pop("CHURN_BUGS", None)
    dirs = [d for d in dirs if os.path.isdir(d) and os.listdir(d)]
    if not dirs:
        return 1, "no inputs to run", None
    rc, out = _run([binary, "-runs=0", "-timeout=25", "-rss_limit_mb=2560"] + dirs, env)
    raws = [os.path.join(profdir, n) for n in os.listdir(profdir) if n.endswith(".profraw")]
    if not raws:
        return rc, out + "\nno .profraw written", None
    data = os.path.join(profdir, "merged.profdata")
    mrc, mout = _run(["llvm-profdata", "merge", "-sparse", "-o", data] + raws)
    if mrc != 0:
        return mrc, out + "\nllvm-profdata: " + mout, None
    return rc, out, data


def summarize(binary, data):
    """Per-file line totals of the project's own sources, from llvm-cov export."""
    rc, out = _run(["llvm-cov", "export", "-summary-only", "-instr-profile=" + data, binary])
    if rc != 0:
        raise ChurnError("llvm-cov export failed for %s: %s" % (rel(binary), tail_text(out, 3)))
    files = []
    for d in json.loads(out).get("data", []):
        for f in d.get("files", []):
            name = f["filename"]
            if not os.path.isabs(name):
                name = os.path.join(REPO, name)
            if not name.startswith(REPO + os.sep):
                continue  # system headers
            ln = f["summary"]["lines"]
            files.append((os.path.relpath(name, REPO), ln["count"], ln["covered"]))
    files.sort()
    return {"files": files, "lines": sum(f[1] for f in files),
            "covered": sum(f[2] for f in files)}


def profile_and_summarize(binary, dirs, profdir):
    rc, out, data = profile(binary, dirs, profdir)
    return rc, out, summarize(binary, data) if data else None


def coverage_build():
    """The coverage build of every fuzzer in out/coverage/build/, rebuilt when stale."""
    import churn_ossfuzz
    base = os.path.join(out_dir(), "coverage")
    build_out, work = os.path.join(base, "build"), os.path.join(base, "build-work")
    targets = [os.path.join(build_out, t) for t in fuzzer_names()]
    why = stale_reason(targets)
    if why is None:
        return build_out
    for tool in ("clang", "clang++", "llvm-profdata", "llvm-cov"):
        if not shutil.which(tool):
            raise ChurnError("%s not found; install it with: apt-get install -y clang llvm"
                             % tool, EXIT_ENV)
    note("coverage build (build.sh, OSS-Fuzz's coverage flags) into %s: %s"
         % (rel(build_out), why))
    os.makedirs(build_out, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    log = os.path.join(base, "build.log")
    rc, secs = churn_ossfuzz.build("coverage", build_out, work, log)
    if rc != 0:
        with open(log, errors="replace") as f:
            raise ChurnError("coverage build failed (exit %d, log %s):\n%s"
                             % (rc, rel(log), tail_text(f.read(), 10)))
    return build_out


def cmd_coverage(args):
    targets = [check_target(args.target)] if args.target else \
        [t for t in fuzzer_names() if t != SELFTEST]
    build_out = coverage_build()
    t0 = time.time()
    worst = EXIT_OK
    for t in targets:
        dirs = [os.path.join(REPO, "corpus", t), os.path.join(REPO, "repros", t)]
        work = os.path.join(out_dir(), "work", t, "corpus")
        if os.path.isdir(work) and not args.committed_only:
            dirs.append(work)
        # index.json is not an input: run the repros through a copy without it.
        staged = os.path.join(out_dir(), "coverage", t, "inputs")
        shutil.rmtree(staged, ignore_errors=True)
        os.makedirs(staged)
        n = 0
        for d in dirs:
            for p in (input_files(d) if os.path.isdir(d) else []):
                shutil.copyfile(p, os.path.join(staged, "%d-%s" % (n, os.path.basename(p))))
                n += 1
        binary = os.path.join(build_out, t)
        profdir = os.path.join(out_dir(), "coverage", t, "profile")
        rc, out, data = profile(binary, [staged], profdir)
        if data is None:
            raise ChurnError("no coverage profile for %s: %s" % (t, tail_text(out, 5)))
        if rc != 0:
            say("%s: warning: the coverage run exited %d (an input failed with no toggles):\n%s"
                % (t, rc, tail_text(out, 5)))
            worst = EXIT_FAIL
        s = summarize(binary, data)
        # Every copy is linked into every fuzzer: the report shows the folders the target
        # reaches (its copy, the runtime, the kernel), all of their files.
        folders = sorted({os.path.join(REPO, os.path.dirname(f)) for f, _, c in s["files"] if c})
        html = os.path.join(out_dir(), "coverage", t, "html")
        shutil.rmtree(html, ignore_errors=True)
        hrc, hout = _run(["llvm-cov", "show", "-format=html", "-show-line-counts-or-regions",
                          "-output-dir=" + html, "-instr-profile=" + data, binary]
                         + (folders or [os.path.join(REPO, "harness")]))
        if hrc != 0 or not os.path.isfile(os.path.join(html, "index.html")):
            raise ChurnError("llvm-cov show failed for %s: %s" % (t, tail_text(hout, 3)))
        # Files outside those folders are other targets' copies, linked but never called.
        rows = [[f, "%d/%d" % (c, n_), "%5.1f%%" % (100.0 * c / n_ if n_ else 0.0)]
                for f, n_, c in s["files"]
                if c or (not args.touched_only and os.path.join(REPO, os.path.dirname(f))
                         in folders)]
        say("== %s: %d inputs (%s) ==" % (t, n, ", ".join(rel(d) for d in dirs if os.path.isdir(d))))
        say(table(rows, ["file", "lines", "covered"]))
        reached = [f for f in s["files"] if f[2]]
        r_lines = sum(f[1] for f in reached)
        say("%s: %d of %d lines (%.1f%%) in %d files; in the %d files it reaches, %d of %d "
            "(%.1f%%); report %s"
            % (t, s["covered"], s["lines"], 100.0 * s["covered"] / max(1, s["lines"]),
               len(s["files"]), len(reached), s["covered"], r_lines,
               100.0 * s["covered"] / max(1, r_lines), rel(os.path.join(html, "index.html"))))
        say("")
    say("coverage of %d target%s in %s" % (len(targets), "" if len(targets) == 1 else "s",
                                           fmt_secs(time.time() - t0)))
    return worst


def add_parser(sub, formatter):
    s = sub.add_parser("coverage", formatter_class=formatter,
                       help="source-based coverage report of a target's corpus and repros",
                       description=__doc__.split("\n", 2)[2].replace("\n", " ") +
                       " Inputs: corpus/TARGET/, repros/TARGET/ and out/work/TARGET/corpus/ (the "
                       "corpus `churn fuzz` grew), all run with no toggles.",
                       epilog="TARGET defaults to every system copy's fuzzer (not %s).\nexit "
                       "status 0 when the reports were written, 1 when an input failed with no "
                       "toggles (the report is still written), 2 when clang or llvm is missing."
                       % SELFTEST)
    s.add_argument("target", nargs="?", default=None, metavar="TARGET",
                   help="fuzz target (default: all but the self-test)")
    s.add_argument("--committed-only", action="store_true",
                   help="leave out out/work/TARGET/corpus/: only the committed seeds and repros")
    s.add_argument("--touched-only", action="store_true",
                   help="list only the files the inputs reached (at least one line covered); "
                   "by default every file of the folders they reach is listed")
    s.set_defaults(func=cmd_coverage)
