"""One run of one strategy against one bug toggle, for `churn bench matrix` (churn_matrix.py).

Every strategy returns a MatrixRun: whether it found the toggle's expected signature, after how
many seconds and executions, and its executions per second. A failure counts only after it has
been replayed with the replay binary and failed there with the expected signature; real
threads cannot be replayed, so there the signature read from the failing process's own report
must match instead (and the run says so).
"""

import os
import re
import shutil
import subprocess
import time

from churn_common import REPO, binary, input_files, out_dir, rel, tail_text
from churn_engines import afl_crash_files, run_afl, run_libfuzzer, signatures, target_dict

# The real-threads harnesses (harness/real/, built by `./build.sh stress`) shaped like the
# upstream project's own test, per target; the other targets have none and show n/a with the
# reason below.
STRESS_BINARY = {
    "fuzz_tls_intern": "tls-stress",
    "fuzz_httpz_worker": "httpz-stress",
    "fuzz_btc_httpserver": "btc-stress",
}
# Seconds a stress test may overrun --seconds (finishing its last round) before it counts as hung.
THREADS_GRACE = 10
NO_THREADS_REASON = {
    "fuzz_sim_selftest": "toy-stress reports a failure rate for toy-lost-update only, not a "
                         "time to first failure",
    "fuzz_depth_ladder": "no real-threads harness: exact preemption points are a property of "
                         "the simulated scheduler",
    "fuzz_epoll_shim": "the shim emulates Linux epoll on a kqueue host; Linux has no kqueue to "
                       "run it on",
    "fuzz_bun_server": "bun-serve is a server, with no stress test in the shape of upstream's",
}


class MatrixRun:
    def __init__(self, strategy, seed):
        self.strategy, self.seed = strategy, seed
        self.found = False        # failed with the expected signature (replayed)
        self.seconds = None       # to that failure
        self.execs = None         # to that failure (None: the strategy cannot count them)
        self.exec_per_sec = None  # over the whole run
        self.signature = None     # what it failed with, expected or not
        self.note = ""            # why it does not count, or how it was checked
        self.error = None         # the strategy could not run
        self.longest = None       # PCT/random: choice points of the longest run (PCT's k)
        self.searched = None      # executions run without finding it (a run that hit the cap)

    def to_json(self):
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d):
        r = cls(d["strategy"], d["seed"])
        r.__dict__.update(d)
        return r


def _replay(target, path, bugs, pct_plan=None):
    """Replay one file; returns its signature, None when it passes, or raises RuntimeError."""
    if not pct_plan:
        sigs, err = signatures(target, [path], bugs)
        if err:
            raise RuntimeError(err)
        return sigs.get(path)
    rb = binary("replay", target)
    p = subprocess.run([rb, "--timeout", "30", "--pct-plan", pct_plan, path], cwd=REPO,
                       env=dict(os.environ, CHURN_BUGS=",".join(bugs)), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       errors="replace", timeout=120)
    if p.returncode not in (0, 1):
        raise RuntimeError("replay exited with status %d: %s" % (p.returncode,
                                                                tail_text(p.stderr, 3)))
    m = re.search(r"^FAIL .*?: (.+)$", p.stdout, re.M)
    return m.group(1).strip() if m else None


def _judge(run, target, path, bugs, expected, pct_plan=None):
    """Replay the failing input and count the run only if the failure is the toggle's: it
    fails with the expected signature, or with another one and then passes with no toggle on
    (what a committed repro must do: fail on the buggy code, pass on the fix). A toggle can
    show in more than one oracle (a liveness spin is signed where the watchdog fired), and a
    run stops at its first failure, so the expected signature alone would score a run that
    found the bug another way as a miss."""
    try:
        sig = _replay(target, path, bugs, pct_plan)
        fixed = _replay(target, path, [], pct_plan) if sig and sig != expected else None
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        run.error = "replay of %s: %s" % (rel(path), e)
        return
    run.signature = sig
    if sig is None:
        run.note = "not reproducible: %s passed on replay" % os.path.basename(path)
    elif sig == expected:
        run.found = True
    elif fixed is None:
        run.found = True
        run.note = "the toggle's, another signature: %s (passes with no toggle)" % sig
    else:
        run.note = "another bug: %s (fails with no toggle too: %s)" % (sig, fixed)


def seed_files_without_failing(target, bugs):
    """corpus/TARGET/ minus the seeds that already fail with the toggle (churn fuzz
    --drop-failing-seeds): what the engines start from, computed once per bug."""
    src = os.path.join(REPO, "corpus", target)
    seeds = input_files(src) if os.path.isdir(src) else []
    if not seeds:
        return []
    sigs, err = signatures(target, seeds, bugs)
    if err:
        raise RuntimeError("cannot replay the seeds of corpus/%s/: %s" % (target, err))
    return [p for p in seeds if not sigs.get(p)]


def _fill_corpus(seeds, corpus, need_nonempty):
    os.makedirs(corpus, exist_ok=True)
    for s in seeds:
        shutil.copyfile(s, os.path.join(corpus, os.path.basename(s)))
    if need_nonempty and not any(os.path.getsize(s) for s in seeds):
        with open(os.path.join(corpus, "churn-default-seed"), "wb") as f:
            f.write(bytes(16))


# The libFuzzer strategies differ only in which interleaving features are on
# (harness/runtime/coverage.c): as shipped (reads and states), none, or site transitions in
# place of reads.
LIBFUZZER_ENV = {
    "libfuzzer": {},
    "nointerleave": {"CHURN_NO_INTERLEAVING_COV": "1"},
    "transitions": {"CHURN_COV_READS": "0", "CHURN_COV_TRANSITIONS": "1"},
}
CORPUS_STRATEGIES = tuple(LIBFUZZER_ENV) + ("afl",)


def run_libfuzzer_strategy(strategy, target, bug, expected, seed, cap, scratch, seeds):
    """libfuzzer, nointerleave or transitions: libFuzzer with LIBFUZZER_ENV[strategy]."""
    run = MatrixRun(strategy, seed)
    corpus = os.path.join(scratch, "corpus")
    _fill_corpus(seeds, corpus, need_nonempty=False)
    env = dict(os.environ, CHURN_BUGS=bug)
    for k in ("CHURN_NO_INTERLEAVING_COV", "CHURN_COV_READS", "CHURN_COV_STATES",
              "CHURN_COV_TRANSITIONS", "CHURN_COV_PREEMPTIONS"):
        env.pop(k, None)
    env.update(LIBFUZZER_ENV[strategy])
    t0 = time.time()
    res = run_libfuzzer(binary("libfuzzer", target), [corpus], os.path.join(scratch, "crashes"),
                        env, max_time=cap, seed=seed, dict_path=target_dict(target),
                        log_path=os.path.join(scratch, "libfuzzer.log"), progress=False)
    run.exec_per_sec = res.final.get("average_exec_per_sec") or res.exec_per_sec or None
    if res.crashes:
        first = min(res.crashes, key=lambda p: os.stat(p).st_mtime)
        run.seconds = max(0.0, os.stat(first).st_mtime - t0)
        run.execs = res.execs  # libFuzzer prints its final stats from the crash handler
        _judge(run, target, first, [bug], expected)
    elif res.error:
        run.error = res.error.splitlines()[0][:200]
    else:
        run.searched = res.execs or None
    return run


def _afl_stats(afl_out):
    stats = {}
    try:
        with open(os.path.join(afl_out, "default", "fuzzer_stats"), encoding="utf-8",
                  errors="replace") as f:
            for line in f:
                k, _, v = line.partition(":")
                stats[k.strip()] = v.strip()
    except OSError:
        pass
    return stats


def run_afl_strategy(target, bug, expected, seed, cap, scratch, seeds):
    run = MatrixRun("afl", seed)
    corpus = os.path.join(scratch, "corpus")
    _fill_corpus(seeds, corpus, need_nonempty=True)
    afl_out = os.path.join(scratch, "afl")
    t0 = time.time()
    res = run_afl(binary("afl", target), corpus, afl_out, dict(os.environ, CHURN_BUGS=bug), cap,
                  until_crash=True, seed=seed, dict_path=target_dict(target),
                  log_path=os.path.join(scratch, "afl.log"), progress=False)
    stats = _afl_stats(afl_out)
    try:
        run.exec_per_sec = float(stats.get("execs_per_sec", "")) or None
    except ValueError:
        pass
    crashes = afl_crash_files(afl_out)
    if crashes:
        first = min(crashes, key=lambda p: os.stat(p).st_mtime)
        run.seconds = max(0.0, os.stat(first).st_mtime - t0)
        m = re.search(r"execs[:-](\d+)", os.path.basename(first))
        run.execs = int(m.group(1)) if m else int(stats.get("execs_done", 0) or 0) or None
        _judge(run, target, first, [bug], expected)
    elif res.seed_crashes:
        run.error = "a seed crashes under AFL++ although it passed on replay: %s" % \
            os.path.basename(res.seed_crashes[0])
    elif res.error:
        run.error = res.error.splitlines()[0][:200]
    return run


def run_simulation_strategy(strategy, target, bug, expected, seed, cap, scratch, pct_depth):
    """random or pct: the replay binary's --simulate mode (harness/entry/simulate.c)."""
    run = MatrixRun(strategy, seed)
    save = os.path.join(scratch, "failing-input")
    cmd = [binary("replay", target), "--simulate", strategy, "--seed", str(seed), "--seconds",
           str(cap), "--save", save]
    if strategy == "pct":
        cmd += ["--pct-depth", str(pct_depth)]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, CHURN_BUGS=bug),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, errors="replace",
                           timeout=cap + 120)
    except subprocess.TimeoutExpired:
        run.error = "%s did not stop after --seconds %d" % (rel(cmd[0]), cap)
        return run
    m = re.search(r"^simulate: (FAILED|passed) runs?=(\d+) seconds=([\d.]+) longest=(\d+)"
                  r"(?: pct-plan=(\S+))?", p.stdout, re.M)
    if not m:
        run.error = "no result line from %s (status %d): %s" % (
            rel(cmd[0]), p.returncode, tail_text(p.stderr or p.stdout, 3))
        return run
    n, secs, run.longest = int(m.group(2)), float(m.group(3)), int(m.group(4))
    if m.group(1) == "passed":
        run.exec_per_sec = n / secs if secs > 0 else None
        run.searched = n
        return run
    # Wall time of the whole process, start-up included, as the engines' seconds are measured.
    run.seconds, run.execs = time.time() - t0, n
    run.exec_per_sec = n / secs if secs > 0 else None
    _judge(run, target, save, [bug], expected, pct_plan=m.group(5))
    return run


def _copy_frame_function(report):
    """The function of the access stack's first frame in a system copy (as the replay
    runner signs ASan reports)."""
    for m in re.finditer(r"^\s+#\d+ \S+ in (\S+) (\S+)", report, re.M):
        path = m.group(2)
        d = re.search(r"harness/([^/]+)/", path)
        if d and d.group(1) not in ("runtime", "kernel", "real", "entry", "bench"):
            return m.group(1)
    return None


def report_signature(text):
    """The signature of a failing process's stderr, the way out/replay/<fuzzer> derives it."""
    m = re.search(r"churnfuzz: ([^: \n]+): [^:\n]+: ([^:\n]+):", text)
    if m:
        return "%s@%s" % (m.group(1), m.group(2))
    m = re.search(r"SUMMARY: AddressSanitizer: (\S+)(?:.* in (\S+))?", text)
    if m:
        if "byte(s)" in text[m.start():m.start() + 200] or m.group(1)[0].isdigit():
            return "asan:leak"
        report = text[text.find("ERROR: AddressSanitizer"):]
        return "asan:%s@%s" % (m.group(1), _copy_frame_function(report) or m.group(2) or "?")
    m = re.search(r"SUMMARY: UndefinedBehaviorSanitizer: (\S+) (\S+)", text)
    if m:
        return "ubsan:%s@%s" % (m.group(1), os.path.basename(m.group(2)).split(":")[0])
    return None


def run_threads_strategy(target, bug, expected, seed, cap, scratch):
    """The copy on pthreads in the shape of upstream's test; the OS picks the interleaving, so
    the seed is only a label and nothing can be replayed."""
    run = MatrixRun("threads", seed)
    exe = binary("stress", STRESS_BINARY[target])
    t0 = time.time()
    try:
        p = subprocess.run([exe, "--seconds", str(cap)], cwd=REPO,
                           env=dict(os.environ, CHURN_BUGS=bug), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, errors="replace",
                           timeout=cap + THREADS_GRACE)
    except subprocess.TimeoutExpired:
        # A round that never ends (a deadlock on real threads, where nothing detects it) is
        # what an upstream test run would see as a hang: no signature to compare.
        run.signature = "hang"
        run.note = "hung: still running %d s after its --seconds %d, killed" % (THREADS_GRACE,
                                                                              cap)
        return run
    took = time.time() - t0
    m = re.search(r"(\d+) rounds .* in ([\d.]+)s, no failure", p.stdout)
    if p.returncode == 0:
        if m and float(m.group(2)) > 0:
            run.exec_per_sec = int(m.group(1)) / float(m.group(2))
        return run
    run.seconds = took
    run.signature = report_signature(p.stderr) or ("exit:%d" % p.returncode)
    if p.returncode == 3:
        run.signature = "hang (a round over its time limit)"
    if run.signature == expected:
        run.found = True
        run.note = "signature read from the process's own report (real threads cannot be replayed)"
    else:
        run.note = "another failure: %s" % run.signature
    with open(os.path.join(out_dir(), "work", "matrix-threads-%s.log" % bug), "w") as f:
        f.write(p.stdout + p.stderr)
    return run
