"""`churn corpus merge TARGET`: shrink a target's work corpus (out/work/TARGET/corpus) to the
inputs that keep its coverage, with libFuzzer's -merge=1 into a fresh folder that then replaces
the old one. `churn fuzz` does it before a run when the corpus has grown (at least MERGE_MIN
files and twice as many as after the last merge), so that AFL++ does not spend minutes
calibrating thousands of files before its time starts.
"""

import os
import shutil
import subprocess
import time

from churn_common import (EXIT_OK, REPO, ChurnError, binary, check_target, ensure_built,
                          fmt_secs, input_files, note, out_dir, read_json, rel, say, tail_text,
                          write_json)

MERGE_MIN = 300  # files in the work corpus before a merge is worth its time


def _paths(target):
    work = os.path.join(out_dir(), "work", target)
    return os.path.join(work, "corpus"), os.path.join(work, ".corpus-merge.json")


def merge(target, timeout=1800):
    """Merge the work corpus in place; returns (files before, files after, seconds)."""
    corpus, state = _paths(target)
    files = input_files(corpus) if os.path.isdir(corpus) else []
    if not files:
        raise ChurnError("%s: no work corpus to merge (run `churn fuzz %s` first)"
                         % (rel(corpus), target))
    exe = binary("libfuzzer", target)
    ensure_built([exe], ["libfuzzer"])
    merged = corpus + ".merging"
    shutil.rmtree(merged, ignore_errors=True)
    os.makedirs(merged)
    env = dict(os.environ, CHURN_BUGS="")  # coverage of the copies as built, no toggles
    t0 = time.time()
    log = os.path.join(os.path.dirname(corpus), "merge.log")
    with open(log, "w") as lf:
        try:
            p = subprocess.run([exe, "-merge=1", "-timeout=25", "-rss_limit_mb=2560",
                                "-merge_control_file=" + os.path.join(os.path.dirname(corpus),
                                                                      "merge.control"),
                                merged, corpus], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                               stdout=lf, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            shutil.rmtree(merged, ignore_errors=True)
            raise ChurnError("%s: merge did not finish in %ds (log %s)"
                             % (target, timeout, rel(log)))
    after = input_files(merged)
    if p.returncode != 0 or not after:
        with open(log, errors="replace") as f:
            tail = tail_text(f.read(), 8)
        shutil.rmtree(merged, ignore_errors=True)
        raise ChurnError("%s: libFuzzer -merge=1 exited %d with %d files kept; the corpus is "
                         "left as it was (log %s):\n%s"
                         % (target, p.returncode, len(after), rel(log), tail))
    old = corpus + ".old"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(corpus, old)
    os.rename(merged, corpus)
    shutil.rmtree(old, ignore_errors=True)
    write_json(state, {"files": len(after), "merged_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return len(files), len(after), time.time() - t0


def merge_if_grown(target):
    """Before a run: merge when the work corpus has MERGE_MIN files and twice the size it had
    after the last merge."""
    corpus, state = _paths(target)
    n = len(input_files(corpus)) if os.path.isdir(corpus) else 0
    last = (read_json(state) or {}).get("files", 0)
    if n < MERGE_MIN or n < 2 * last:
        return
    before, after, secs = merge(target)
    note("merged the work corpus of %s: %d -> %d files in %s (libFuzzer -merge=1)"
         % (target, before, after, fmt_secs(secs)))


def cmd_corpus(args):
    target = check_target(args.target)
    before, after, secs = merge(target)
    say("%s: %s merged, %d -> %d files in %s" % (target, rel(_paths(target)[0]), before, after,
                                                  fmt_secs(secs)))
    return EXIT_OK


def add_parser(sub, formatter):
    s = sub.add_parser("corpus", formatter_class=formatter, help="merge a work corpus",
                       description=__doc__.split("\n", 1)[1].replace("\n", " ").strip())
    csub = s.add_subparsers(dest="corpus_command", metavar="merge")
    csub.required = True
    m = csub.add_parser("merge", formatter_class=formatter,
                        help="keep only the inputs that add coverage",
                        description="Merge out/work/TARGET/corpus with libFuzzer -merge=1 (no "
                        "toggles) and replace it with the result; the committed corpus/TARGET/ "
                        "is never written.",
                        epilog="exit status 0 when merged, 2 when there is no work corpus or "
                        "the merge failed (the corpus is then left as it was).")
    m.add_argument("target", metavar="TARGET", help="fuzz target")
    m.set_defaults(func=cmd_corpus)
