"""Fuzz engine drivers (libFuzzer and AFL++), crash collection and the `fuzz` command."""

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from churn_common import (EXIT_ENV, EXIT_FAIL, EXIT_OK, REPO, ChurnError, binary, check_target,
                          ensure_built, ensure_tools, fmt_secs, input_files, note, out_dir,
                          parse_bug_ids, rel, say, table, tail_text, warn)

PROGRESS_EVERY = 5  # seconds between progress lines
LIBFUZZER_ARTIFACTS = ("crash-", "leak-", "timeout-", "oom-")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class RunResult:
    def __init__(self, engine):
        self.engine = engine
        self.execs = 0
        self.runtime = 0.0
        self.cov = None  # libFuzzer cov / AFL edges found
        self.ft = None  # libFuzzer features / AFL total edges
        self.corpus = None
        self.stability = None
        self.crashes = []  # saved crash files
        self.seed_crashes = []  # seeds that already crash (AFL skips them)
        self.rc = None
        self.error = None  # set when the engine failed without a crash
        self.logs = []
        self.interrupted = False
        self.final = {}  # libFuzzer -print_final_stats values

    @property
    def exec_per_sec(self):
        return self.execs / self.runtime if self.runtime > 0 else 0.0


def _sha1(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def _wait_loop(procs, deadline, tick, stop_when=None):
    """Wait for procs, calling tick() about every 0.5 s; SIGINT all at deadline or stop_when().

    Returns True if interrupted by the user (Ctrl-C)."""
    interrupted = False
    stopping_since = None
    while any(p.poll() is None for p in procs):
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            interrupted = True
            stopping_since = stopping_since or time.time()
        tick()
        now = time.time()
        if stopping_since is None and (now > deadline or (stop_when and stop_when())):
            stopping_since = now
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
        if stopping_since is not None and now - stopping_since > 15:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    return interrupted


# ---------------------------------------------------------------------------------------------
# libFuzzer


def libfuzzer_keep_going(jobs):
    """libFuzzer flags to go on past a crash: only fork mode survives one (the crashed job
    restarts). run_libfuzzer adds -fork=N for N > 1 jobs; a single job needs -fork=1."""
    return ["-ignore_crashes=1"] + (["-fork=1"] if jobs == 1 else [])


def run_libfuzzer(fuzz_bin, dirs, artifact_dir, env, max_time=None, runs=None, seed=None, jobs=1,
                  extra=(), dict_path=None, log_path=None, progress=True, label="libFuzzer"):
    """Run a libFuzzer binary; crashes are saved under artifact_dir."""
    res = RunResult("libfuzzer")
    os.makedirs(artifact_dir, exist_ok=True)
    before = set(os.listdir(artifact_dir))
    cmd = [fuzz_bin, "-print_final_stats=1", "-artifact_prefix=" + artifact_dir.rstrip("/") + "/",
           "-timeout=25", "-rss_limit_mb=2560"]
    if max_time:
        cmd.append("-max_total_time=%d" % max_time)
    if runs is not None:
        cmd.append("-runs=%d" % runs)
    if seed is not None:
        cmd.append("-seed=%d" % seed)
    if jobs > 1:
        cmd.append("-fork=%d" % jobs)
    if dict_path:
        cmd.append("-dict=" + dict_path)
    cmd += list(extra) + list(dirs)
    log_path = log_path or os.path.join(artifact_dir, "libfuzzer.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    res.logs.append(log_path)
    st = {"execs": 0, "fork_execs": 0, "cov": None, "ft": None, "corp": None,
          "written": [], "lines": [], "final": {}}

    def on_line(line):
        st["lines"].append(line)
        if len(st["lines"]) > 60:
            del st["lines"][:20]
        m = re.match(r"^#(\d+)(:?)\s", line)
        if m:
            n = int(m.group(1))
            if m.group(2):
                st["fork_execs"] = n
            st["execs"] = max(st["execs"], n)
            for key, pat in (("cov", r"cov: (\d+)"), ("ft", r"ft: (\d+)"), ("corp", r"corp: (\d+)")):
                mm = re.search(pat, line)
                if mm:
                    st[key] = int(mm.group(1))
        m = re.search(r"Test unit written to (.+?)\s*$", line)
        if m:
            st["written"].append(m.group(1))
        m = re.match(r"^stat::(\w+):\s*(\d+)", line)
        if m:
            st["final"][m.group(1)] = int(m.group(2))

    t0 = time.time()
    with open(log_path, "w", encoding="utf-8", errors="replace") as logf:
        logf.write("$ " + " ".join(cmd) + "\n")
        logf.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, errors="replace")

        def pump():
            for line in proc.stdout:
                logf.write(line)
                on_line(line.rstrip("\n"))

        th = threading.Thread(target=pump, daemon=True)
        th.start()
        last = [t0]

        def tick():
            now = time.time()
            if progress and now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                el = now - t0
                n = st["fork_execs"] or st["execs"]
                say("[%6s] %s: execs %d  exec/s %d  cov %s  ft %s  corpus %s"
                    % (fmt_secs(el), label, n, n / el if el else 0, st["cov"], st["ft"],
                       st["corp"]))

        limit = (max_time or 1800) + 120
        res.interrupted = _wait_loop([proc], t0 + limit, tick)
        th.join(timeout=10)
    res.runtime = time.time() - t0
    res.rc = proc.returncode
    if jobs > 1 and st["fork_execs"]:
        res.execs = st["fork_execs"]
    else:
        res.execs = st["final"].get("number_of_executed_units", st["execs"])
    res.final = st["final"]
    res.cov, res.ft, res.corpus = st["cov"], st["ft"], st["corp"]
    found = []
    for w in st["written"]:
        p = w if os.path.isabs(w) else os.path.join(REPO, w)
        if os.path.basename(p).startswith(LIBFUZZER_ARTIFACTS) and os.path.exists(p):
            found.append(os.path.abspath(p))
    for f in sorted(set(os.listdir(artifact_dir)) - before):
        if f.startswith(LIBFUZZER_ARTIFACTS):
            found.append(os.path.abspath(os.path.join(artifact_dir, f)))
    res.crashes = sorted(set(found))
    if res.rc not in (0, None) and not res.crashes and not res.interrupted:
        res.error = ("%s exited with status %s and saved no crash; last lines of %s:\n%s"
                     % (rel(fuzz_bin), res.rc, rel(log_path), "\n".join(st["lines"][-15:])))
    return res


# ---------------------------------------------------------------------------------------------
# AFL++


def afl_env(env, until_crash):
    env = dict(env)
    env.update(AFL_NO_UI="1", AFL_SKIP_CPUFREQ="1", AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES="1",
               AFL_TRY_AFFINITY="1", AFL_FAST_CAL="1", AFL_IGNORE_UNKNOWN_ENVS="1")
    if until_crash:
        env["AFL_BENCH_UNTIL_CRASH"] = "1"
    else:
        env.pop("AFL_BENCH_UNTIL_CRASH", None)
    if env.get("ASAN_OPTIONS"):  # afl-fuzz insists on these when ASAN_OPTIONS is set
        env["ASAN_OPTIONS"] += ":abort_on_error=1:symbolize=0"
    return env


def _read_kv(path):
    d = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    d[k.strip()] = v.strip()
    except OSError:
        pass
    return d


def _plot_last(path):
    """Last row of an AFL++ plot_data file as a dict, or None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    if len(lines) < 2:
        return None
    keys = [k.strip() for k in lines[0].lstrip("#").split(",")]
    vals = [v.strip() for v in lines[-1].split(",")]
    return dict(zip(keys, vals))


def _num(s, default=0):
    try:
        return float(str(s).rstrip("%"))
    except (TypeError, ValueError):
        return default


def _afl_log_status(log_path):
    """(queue cycle, corpus size, estimated exec/s) from the last status lines of an afl-fuzz
    log written with AFL_NO_UI, or None."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            text = ANSI.sub("", f.read().decode("utf-8", "replace"))
    except OSError:
        return None
    m = None
    for m in re.finditer(r"Fuzzing test case #\d+ \((\d+) total, (\d+) crashes saved.*?"
                         r"exec_us=(\d+)", text):
        pass
    if not m:
        return None
    cycles = re.findall(r"Entering queue cycle (\d+)", text)
    us = max(int(m.group(3)), 1)
    return (int(cycles[-1]) if cycles else 1, int(m.group(1)), 1000000 // us)


def afl_crash_files(afl_out):
    return sorted(glob.glob(os.path.join(afl_out, "*", "crashes", "id:*")))


def collect_afl_crashes(afl_out, dest_dir, multi=False):
    """Copy crashes/id:* into dest_dir with ':' and ',' removed from the names."""
    os.makedirs(dest_dir, exist_ok=True)
    saved = []
    for src in afl_crash_files(afl_out):
        inst = os.path.basename(os.path.dirname(os.path.dirname(src)))
        name = os.path.basename(src).replace(":", "-").replace(",", "_")
        name = "afl-" + (inst + "-" if multi else "") + name
        dst = os.path.join(dest_dir, name)
        if os.path.exists(dst) and _sha1(dst) != _sha1(src):
            dst = "%s-%s" % (dst, _sha1(src)[:8])
        if not os.path.exists(dst):
            shutil.copyfile(src, dst)
        saved.append(os.path.abspath(dst))
    return saved


def run_afl(fuzz_bin, in_dir, afl_out, env, time_s, jobs=1, until_crash=True, seed=None,
            timeout_ms=2000, dict_path=None, log_path=None, progress=True, label="AFL++"):
    """Run afl-fuzz (jobs secondary instances when jobs > 1). afl-fuzz exits 0 even after a
    crash, so the result is read from <afl_out>/*/crashes/."""
    res = RunResult("afl")
    if os.path.exists(afl_out):
        shutil.rmtree(afl_out)
    os.makedirs(os.path.dirname(afl_out), exist_ok=True)
    env = afl_env(env, until_crash)
    names = ["default"] if jobs == 1 else ["s%d" % i for i in range(jobs)]
    log_path = log_path or os.path.join(os.path.dirname(afl_out), "afl.log")
    procs, logs = [], []
    t0 = time.time()
    try:
        for name in names:
            cmd = ["afl-fuzz", "-i", in_dir, "-o", afl_out, "-V", str(int(time_s)), "-m", "none",
                   "-t", "%d+" % timeout_ms]
            if jobs > 1:
                cmd += ["-S", name]
            if seed is not None:
                cmd += ["-s", str(seed)]
            if dict_path:
                cmd += ["-x", dict_path]
            cmd += ["--", fuzz_bin]
            lp = log_path if jobs == 1 else log_path.replace(".log", "-%s.log" % name)
            logf = open(lp, "w", encoding="utf-8", errors="replace")
            logf.write("$ " + " ".join(cmd) + "\n")
            logf.flush()
            logs.append((lp, logf))
            res.logs.append(lp)
            procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                          stdout=logf, stderr=subprocess.STDOUT))
        last = [t0]

        def snapshot():
            rows = [_plot_last(os.path.join(afl_out, n, "plot_data")) for n in names]
            rows = [r for r in rows if r]
            execs = sum(int(_num(r.get("total_execs"))) for r in rows)
            return rows, execs

        def tick():
            now = time.time()
            if progress and now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                rows, execs = snapshot()
                el = now - t0
                ncrash = len(afl_crash_files(afl_out))
                if rows:  # afl-fuzz writes plot_data from about 60 s on
                    say("[%6s] %s: execs %d  exec/s %d  edges %s  coverage %s  corpus %s  crashes %d"
                        % (fmt_secs(el), label, execs, sum(_num(r.get("execs_per_sec")) for r in rows),
                           max(int(_num(r.get("edges_found"))) for r in rows),
                           rows[0].get("map_size"), max(int(_num(r.get("corpus_count"))) for r in rows),
                           ncrash))
                    return
                logs_now = [_afl_log_status(lp) for lp, _ in logs]
                logs_now = [x for x in logs_now if x]
                if logs_now:
                    say("[%6s] %s: cycle %d  corpus %d  crashes %d  exec/s ~%d (from exec_us; "
                        "full stats after 60s)"
                        % (fmt_secs(el), label, max(x[0] for x in logs_now),
                           max(x[1] for x in logs_now), ncrash, sum(x[2] for x in logs_now)))
                else:
                    say("[%6s] %s: starting (calibrating seeds)" % (fmt_secs(el), label))

        stop = (lambda: bool(afl_crash_files(afl_out))) if until_crash and jobs > 1 else None
        res.interrupted = _wait_loop(procs, t0 + time_s + 120, tick, stop)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for _, f in logs:
            f.close()
    res.runtime = time.time() - t0
    res.rc = max(p.returncode for p in procs) if procs else None
    stats = [_read_kv(os.path.join(afl_out, n, "fuzzer_stats")) for n in names]
    stats = [s for s in stats if s]
    if stats:
        res.execs = sum(int(_num(s.get("execs_done"))) for s in stats)
        res.cov = max(int(_num(s.get("edges_found"))) for s in stats)
        res.ft = stats[0].get("total_edges")
        res.corpus = max(int(_num(s.get("corpus_count"))) for s in stats)
        res.stability = stats[0].get("stability")
    aborts = []
    for lp, _ in logs:
        with open(lp, encoding="utf-8", errors="replace") as f:
            text = ANSI.sub("", f.read())
        for m in re.finditer(r"Test case '([^']*)' results in a crash", text):
            orig = re.search(r"orig:(.*)$", m.group(1))
            p = os.path.join(in_dir, orig.group(1) if orig else m.group(1))
            if os.path.exists(p) and os.path.abspath(p) not in res.seed_crashes:
                res.seed_crashes.append(os.path.abspath(p))
        for m in re.finditer(r"PROGRAM ABORT : (.*)", text):
            aborts.append(m.group(1).strip())
        if res.rc and not res.error:
            res.error = ("afl-fuzz exited with status %d%s; last lines of %s:\n%s"
                         % (res.rc, (": " + aborts[0]) if aborts else "", rel(lp), tail_text(text)))
    if res.seed_crashes and res.error and "does not crash" in res.error:
        res.error = None  # every seed crashes: those seeds are the finding
    return res


def afl_queue_to_corpus(afl_out, corpus_dir):
    """Keep AFL's new queue entries (not the seeds) in the work corpus, named by sha1."""
    added = 0
    for p in glob.glob(os.path.join(afl_out, "*", "queue", "id:*")):
        if ",orig:" in os.path.basename(p) or not os.path.isfile(p):
            continue
        dst = os.path.join(corpus_dir, _sha1(p))
        if not os.path.exists(dst):
            shutil.copyfile(p, dst)
            added += 1
    return added


# ---------------------------------------------------------------------------------------------
# signatures


def signatures(target, paths, bugs, timeout=300):
    """Replay files with the given toggles in one run of out/replay/<target>.

    Returns {path: signature or None (it passed)} and a message when the replay itself failed."""
    rb = binary("replay", target)
    if not paths:
        return {}, None
    if not os.path.exists(rb):
        return {}, "no replay binary %s" % rel(rb)
    env = dict(os.environ, CHURN_BUGS=",".join(bugs))
    shown = {rel(p): p for p in paths}
    try:
        p = subprocess.run([rb, "--timeout", "30"] + list(shown), cwd=REPO, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, errors="replace",
                           timeout=timeout + 30 * len(paths))
    except subprocess.TimeoutExpired:
        return {}, "replay timed out"
    except OSError as e:
        return {}, "cannot run %s: %s" % (rel(rb), e.strerror or e)
    if p.returncode not in (0, 1):
        return {}, "replay exited with status %d: %s" % (p.returncode, tail_text(p.stderr, 3))
    sigs = {path: None for path in paths}
    for line in p.stdout.splitlines():
        for sp, path in shown.items():
            if line.startswith("FAIL %s: " % sp):
                sigs[path] = line[len(sp) + 7:].strip()
    return sigs, None


def signature_of(target, path, bugs, timeout=60):
    """Replay one file with the given toggles; returns (signature or None, message)."""
    sigs, err = signatures(target, [path], bugs, timeout)
    if err:
        return None, err
    if sigs.get(path) is None:
        return None, "does not fail on replay (not reproducible)"
    return sigs[path], "ok"


# ---------------------------------------------------------------------------------------------
# churn fuzz


def prepare_work_corpus(target, work_corpus, need_nonempty, drop_failing=None):
    """Copy corpus/<target>/ into the work corpus (the committed corpus is never written).
    drop_failing: toggles (possibly none); the seeds that already fail with them on the current
    build are left out (and removed from the work corpus if an earlier run copied them there)."""
    os.makedirs(work_corpus, exist_ok=True)
    src = os.path.join(REPO, "corpus", target)
    seeds = input_files(src) if os.path.isdir(src) else []
    if not seeds:
        note("no seed corpus at corpus/%s/; starting from an empty corpus" % target)
    if drop_failing is not None and seeds:
        sigs, err = signatures(target, seeds, drop_failing)
        if err:
            raise ChurnError("cannot replay the seeds to leave out failing ones: %s" % err)
        failing = sorted(p for p in seeds if sigs.get(p))
        for p in failing:
            note("left out seed %s: fails with %s as %s"
                 % (rel(p), ",".join(drop_failing) or "no toggles", sigs[p]))
            stale = os.path.join(work_corpus, os.path.basename(p))
            if os.path.exists(stale):
                os.remove(stale)
        if not failing:
            note("all %d seeds pass with %s: none left out"
                 % (len(seeds), ",".join(drop_failing) or "no toggles"))
        seeds = [p for p in seeds if p not in failing]
    for s in seeds:
        shutil.copyfile(s, os.path.join(work_corpus, os.path.basename(s)))
    if need_nonempty and not any(os.path.getsize(p) for p in input_files(work_corpus)):
        with open(os.path.join(work_corpus, "churn-default-seed"), "wb") as f:
            f.write(bytes(16))
    return len(seeds)


def target_dict(target):
    """fuzzers/TARGET.dict (libFuzzer -dict, afl-fuzz -x), or None when the target has none."""
    path = os.path.join(REPO, "fuzzers", target + ".dict")
    return path if os.path.isfile(path) else None


def fuzz_target(args, target, time_s, jobs, progress=True):
    """One bounded run of TARGET with the options of `churn fuzz`; crashes are recorded for the
    later commands. Returns (res, bugs, work_corpus, crash_dir)."""
    bugs = parse_bug_ids(args.bugs)
    engine = args.engine
    fuzz_bin = binary(engine, target)
    ensure_built([fuzz_bin, binary("replay", target)], [engine, "replay"])
    work = os.path.join(out_dir(), "work", target)
    work_corpus = os.path.join(work, "corpus")
    crash_dir = os.path.join(out_dir(), "crashes", target)
    nseeds = prepare_work_corpus(target, work_corpus, need_nonempty=(engine == "afl"),
                                 drop_failing=bugs if args.drop_failing_seeds else None)
    import churn_corpus
    churn_corpus.merge_if_grown(target)
    dict_path = target_dict(target)
    env = dict(os.environ, CHURN_BUGS=",".join(bugs))
    note("fuzzing %s with %s for %ds (%d job%s), toggles: %s, corpus: %s (%d seeds, %d files)"
         % (target, engine, time_s, jobs, "" if jobs == 1 else "s",
            ",".join(bugs) or "none", rel(work_corpus), nseeds, len(input_files(work_corpus))))
    keep_going = getattr(args, "keep_going", False)
    t_start = time.time()
    if engine == "libfuzzer":
        res = run_libfuzzer(fuzz_bin, [work_corpus], crash_dir, env, max_time=time_s,
                            seed=args.seed, jobs=jobs, dict_path=dict_path,
                            extra=libfuzzer_keep_going(jobs) if keep_going else [],
                            log_path=os.path.join(work, "libfuzzer.log"), progress=progress,
                            label=target if progress == "label" else "libFuzzer")
    else:
        afl_out = os.path.join(work, "afl")
        res = run_afl(fuzz_bin, work_corpus, afl_out, env, time_s, jobs=jobs,
                      until_crash=not keep_going, seed=args.seed, dict_path=dict_path,
                      log_path=os.path.join(work, "afl.log"), progress=progress,
                      label=target if progress == "label" else "AFL++")
        res.crashes = collect_afl_crashes(afl_out, crash_dir, multi=jobs > 1)
        afl_queue_to_corpus(afl_out, work_corpus)
    import churn_triage  # the crash pipeline builds on this module
    churn_triage.record_fuzz_run(target, engine, bugs, args.seed, time_s, res, t_start)
    return res, bugs, work_corpus, crash_dir


def cmd_fuzz(args):
    if args.time <= 0:
        raise ChurnError("--time must be a positive number of seconds")
    if args.jobs < 1:
        raise ChurnError("--jobs must be at least 1")
    parse_bug_ids(args.bugs)
    if args.engine == "afl":
        ensure_tools(["afl-clang-fast"])  # afl-fuzz and afl-clang-fast, or exit 2
    if args.target is None:
        import churn_campaign
        return churn_campaign.cmd_fuzz_all(args)
    target = check_target(args.target)
    res, bugs, work_corpus, crash_dir = fuzz_target(args, target, args.time, args.jobs)
    rc = report_fuzz(target, args.engine, args.jobs, bugs, res, work_corpus, crash_dir)
    crashes = res.crashes + [p for p in res.seed_crashes if p not in res.crashes]
    if rc == EXIT_FAIL and crashes and not getattr(args, "no_minimize", True):
        import churn_triage
        churn_triage.after_fuzz(target, args.engine, bugs, crashes, args.minimize_time)
    return rc


def _na(v):
    return "n/a" if v is None else v


def report_fuzz(target, engine, jobs, bugs, res, work_corpus, crash_dir):
    say("")
    say("== churn fuzz summary ==")
    say("target    %s (%s, %d job%s)" % (target, engine, jobs, "" if jobs == 1 else "s"))
    say("toggles   %s" % (",".join(bugs) or "none (CHURN_BUGS empty)"))
    say("runtime   %s%s" % (fmt_secs(res.runtime), " (interrupted)" if res.interrupted else ""))
    say("execs     %d (%d exec/s)" % (res.execs, res.exec_per_sec))
    if engine == "libfuzzer":
        say("coverage  cov %s, features %s" % (_na(res.cov), _na(res.ft)))
    else:
        say("coverage  edges %s of %s, stability %s" % (_na(res.cov), _na(res.ft), _na(res.stability)))
    say("corpus    %s (%d files)" % (rel(work_corpus), len(input_files(work_corpus))))
    for lp in res.logs:
        say("log       %s" % rel(lp))
    crashes = res.crashes + [p for p in res.seed_crashes if p not in res.crashes]
    if crashes:
        parts = []
        if res.crashes:
            parts.append("%d saved in %s/" % (len(res.crashes), rel(crash_dir)))
        if res.seed_crashes:
            parts.append("%d work-corpus seed%s already crash with these toggles"
                         % (len(res.seed_crashes), "" if len(res.seed_crashes) == 1 else "s"))
        say("crashes   %d found: %s" % (len(crashes), "; ".join(parts)))
        sigs, err = signatures(target, crashes, bugs)
        if err:
            say("          (signatures unknown: %s)" % err)
        groups = {}
        for p in crashes:
            sig = sigs.get(p, "?") if not err else "?"
            groups.setdefault(sig or "(passes on replay: not reproducible)", []).append(p)
        if len(crashes) <= 8:
            for p in crashes:
                sig = sigs.get(p, "?") if not err else "?"
                say("  %s  %s" % (rel(p), sig or "(passes on replay: not reproducible)"))
        else:
            say("  %d distinct signature%s:" % (len(groups), "" if len(groups) == 1 else "s"))
            rows = [[sig, str(len(ps)), "e.g. " + rel(ps[0])]
                    for sig, ps in sorted(groups.items(), key=lambda kv: -len(kv[1]))]
            for line in table(rows).splitlines():
                say("  " + line)
        say("replay    ./churn replay --target %s%s PATH"
            % (target, (" --bugs " + ",".join(bugs)) if bugs else ""))
        return EXIT_FAIL
    say("crashes   none")
    if res.error:
        warn(res.error)
        return EXIT_ENV
    if res.interrupted:
        return 130
    return EXIT_OK
