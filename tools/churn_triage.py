"""From crashes to minimized inputs: `churn triage`, `churn minimize`, and what `churn fuzz` does
after a crash (crash metadata, triage, minimization, the `churn repro add` line to run).

Every decision here is checked with the replay binary (out/replay/<fuzzer>): a crash belongs to
the signature it replays with, and a minimized input is accepted only if it replays with the
original's signature, whatever the engine's own minimizer thought.
"""

import os
import re
import shutil
import signal
import subprocess
import time

from churn_common import (EXIT_ENV, EXIT_FAIL, EXIT_OK, REPO, ChurnError, binary,
                          ensure_built, ensure_tools, fmt_secs, input_files, last_fuzz_path,
                          looks_like_afl_crash, minimized_dir, note, out_dir, read_sidecar, rel,
                          resolve_context, sanitize_name, say, table, warn, write_json,
                          write_sidecar, sidecar_path)
from churn_engines import afl_env, signatures, signature_of

DEFAULT_MINIMIZE_TIME = 60  # seconds per input
DEFAULT_MINIMIZE_RUNS = 10000  # libFuzzer -runs per minimization step
MAX_LIBFUZZER_ROUNDS = 6
NOT_REPRODUCIBLE = "(passes on replay: not reproducible)"


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


# ---------------------------------------------------------------------------------------------
# metadata written by `churn fuzz`


def _time_to_find(path, t_start):
    """Seconds from engine start to this crash: AFL++ names carry it (time:MS), else mtime."""
    m = re.search(r"time[:-](\d+)", os.path.basename(path))
    if m and looks_like_afl_crash(path):
        return round(int(m.group(1)) / 1000.0, 3)
    try:
        dt = os.stat(path).st_mtime - t_start
    except OSError:
        return None
    return round(dt, 3) if dt >= 0 else None


def _libfuzzer_seed(logs):
    for lp in logs:
        try:
            with open(lp, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = re.search(r"INFO: Seed: (\d+)", line)
                    if m:
                        return int(m.group(1))
        except OSError:
            pass
    return None


def record_fuzz_run(target, engine, bugs, seed, time_s, res, t_start):
    """Write out/crashes/<target>/.last-fuzz.json and a sidecar next to each new crash, so the
    later commands know the target, toggles and engine without flags."""
    if engine == "libfuzzer" and seed is None:
        seed = _libfuzzer_seed(res.logs)
    run = {"target": target, "bugs": list(bugs), "engine": engine, "seed": seed,
           "time_limit": time_s, "started": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                          time.localtime(t_start))}
    write_json(last_fuzz_path(target), run)
    for p in res.crashes:
        write_sidecar(p, dict(run, file=os.path.basename(p),
                              time_to_find=_time_to_find(p, t_start)))


# ---------------------------------------------------------------------------------------------
# triage


class Triage:
    def __init__(self):
        self.groups = {}  # (target, bugs tuple, signature) -> [paths], smallest first
        self.not_reproducible = []  # (path, target, bugs)
        self.contexts = {}  # path -> CrashContext

    def smallest(self):
        return [(key, paths[0]) for key, paths in sorted(self.groups.items())]


def _sort_key(p):
    return (os.path.getsize(p), os.path.basename(p))


def triage_files(files, target=None, bugs_spec=None):
    """Replay every file with its toggles and group the failing ones by signature."""
    tri = Triage()
    batches = {}
    for p in files:
        ctx = resolve_context(p, target, bugs_spec)
        tri.contexts[ctx.path] = ctx
        batches.setdefault((ctx.target, tuple(ctx.bugs)), []).append(ctx.path)
    for (tgt, bugs), paths in sorted(batches.items()):
        ensure_built([binary("replay", tgt)], ["replay"])
        note("replaying %s with %s, CHURN_BUGS=%s" % (_plural(len(paths), "file"), rel(
            binary("replay", tgt)), ",".join(bugs) or "''"))
        sigs, err = signatures(tgt, paths, list(bugs))
        if err:
            raise ChurnError("triage: %s" % err)
        for p in paths:
            if sigs.get(p):
                tri.groups.setdefault((tgt, bugs, sigs[p]), []).append(p)
            else:
                tri.not_reproducible.append((p, tgt, bugs))
    for paths in tri.groups.values():
        paths.sort(key=_sort_key)
    return tri


def print_triage(tri, list_duplicates=True):
    rows = []
    for (tgt, bugs, sig), paths in sorted(tri.groups.items(), key=lambda kv: -len(kv[1])):
        rows.append([sig, str(len(paths)), rel(paths[0]), "%d B" % os.path.getsize(paths[0]),
                     ",".join(bugs) or "none"])
    if rows:
        say(table(rows, ["signature", "count", "smallest file", "size", "toggles"]))
    dups = [(p, paths[0]) for paths in tri.groups.values() for p in paths[1:]]
    if dups and not list_duplicates:
        say("%s of these (same signature, not the smallest)" % _plural(len(dups), "duplicate"))
    elif dups:
        say("")
        say("duplicates (same signature as a smaller file):")
        for p, keep in sorted(dups):
            say("  %s  (%d B, kept %s)" % (rel(p), os.path.getsize(p), rel(keep)))
    if tri.not_reproducible:
        say("")
        say("not reproducible (pass on replay with their toggles):")
        for p, _, bugs in tri.not_reproducible:
            say("  %s  (CHURN_BUGS=%s)" % (rel(p), ",".join(bugs) or "''"))
    return dups


def _crash_files(directory):
    # crash folders hold inputs plus our dotfile sidecars; logs and JSON are never inputs
    return [p for p in input_files(directory) if not p.endswith((".log", ".json"))]


def cmd_triage(args):
    d = args.dir
    if not os.path.exists(d):
        raise ChurnError("%s: no such directory" % d)
    files = _crash_files(d) if os.path.isdir(d) else [d]
    if not files:
        raise ChurnError("%s: no crash files to triage" % rel(d))
    tri = triage_files(files, args.target, args.bugs)
    say("")
    dups = print_triage(tri)
    if args.delete_duplicates and dups:
        for p, _ in dups:
            os.remove(p)
            if os.path.exists(sidecar_path(p)):
                os.remove(sidecar_path(p))
        say("deleted %s" % _plural(len(dups), "duplicate"))
    say("")
    say("%s: %s, %s, %s" % (rel(d), _plural(len(files), "file"),
                            _plural(len(tri.groups), "signature"),
                            "%d not reproducible" % len(tri.not_reproducible)))
    flags = "".join([" --target %s" % args.target if args.target else "",
                     " --bugs '%s'" % args.bugs if args.bugs is not None else ""])
    for (tgt, bugs, sig), keep in tri.smallest():
        say("next: ./churn minimize %s%s" % (rel(keep), flags))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# minimize


def _run_bounded(cmd, env, log_path, seconds):
    """Run cmd in its own process group (libFuzzer's minimizer spawns children through a shell),
    killing the whole group when the time is up. Returns (exit status or None, timed out)."""
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=max(1, seconds)), False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, True
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


class Minimized:
    def __init__(self, ctx, signature, original_size):
        self.ctx, self.signature = ctx, signature
        self.original_size = original_size
        self.best = ctx.path
        self.best_size = original_size
        self.tried = 0  # candidates verified
        self.rejected = {}  # signature -> count, for candidates that drifted to another bug
        self.output = None

    def consider(self, candidates):
        """Verify candidates with the replay binary; keep the smallest with our signature."""
        candidates = [c for c in candidates if os.path.isfile(c)]
        if not candidates:
            return False
        sigs, err = signatures(self.ctx.target, candidates, self.ctx.bugs)
        if err:
            raise ChurnError("verifying minimized candidates: %s" % err)
        improved = False
        for c in sorted(candidates, key=_sort_key):
            self.tried += 1
            sig = sigs.get(c)
            if sig != self.signature:
                key = sig or "passes"
                self.rejected[key] = self.rejected.get(key, 0) + 1
                continue
            if os.path.getsize(c) < self.best_size:
                self.best, self.best_size, improved = c, os.path.getsize(c), True
        return improved


def _minimize_libfuzzer(m, work, deadline, runs, progress):
    exe = binary("libfuzzer", m.ctx.target)
    ensure_built([exe], ["libfuzzer"])
    env = dict(os.environ, CHURN_BUGS=",".join(m.ctx.bugs))
    for rnd in range(1, MAX_LIBFUZZER_ROUNDS + 1):
        left = deadline - time.time()
        if left < 1 or m.best_size == 0:
            break
        rdir = os.path.join(work, "round-%d" % rnd)
        os.makedirs(rdir)
        cmd = [exe, "-minimize_crash=1", "-runs=%d" % runs, "-seed=%d" % rnd,
               "-artifact_prefix=" + rel(rdir) + "/", "-timeout=25", "-rss_limit_mb=2560", m.best]
        progress("libFuzzer round %d from %d B (%s left): %s" % (
            rnd, m.best_size, fmt_secs(left), " ".join([rel(exe)] + cmd[1:-1] + [rel(m.best)])))
        _, timed_out = _run_bounded(cmd, env, os.path.join(work, "round-%d.log" % rnd), left)
        # every step of libFuzzer's minimizer leaves a minimized-from-<sha1> file: all are
        # candidates, so a chain that drifted to another bug still yields its good prefix
        if not m.consider([os.path.join(rdir, f) for f in os.listdir(rdir)]) or timed_out:
            break


def _minimize_afl(m, work, deadline, progress):
    ensure_tools(["afl-clang-fast"])
    exe = binary("afl", m.ctx.target)
    ensure_built([exe], ["afl"])
    out = os.path.join(work, "afl-tmin.out")
    env = afl_env(dict(os.environ, CHURN_BUGS=",".join(m.ctx.bugs)), until_crash=False)
    cmd = ["afl-tmin", "-i", m.best, "-o", out, "-m", "none", "-t", "2000", "--", exe]
    left = deadline - time.time()
    progress("afl-tmin from %d B (%s left): %s" % (m.best_size, fmt_secs(left), " ".join(
        ["afl-tmin", "-i", rel(m.best), "-o", rel(out)] + cmd[5:-1] + [rel(exe)])))
    rc, timed_out = _run_bounded(cmd, env, os.path.join(work, "afl-tmin.log"), left)
    if timed_out:
        warn("afl-tmin did not finish in time; log: %s" % rel(os.path.join(work, "afl-tmin.log")))
    elif rc != 0 or not os.path.isfile(out):
        raise ChurnError("afl-tmin failed (exit status %s) on %s; log: %s"
                         % (rc, rel(m.ctx.path), rel(os.path.join(work, "afl-tmin.log"))))
    m.consider([out])


def minimize_file(ctx, engine=None, time_s=DEFAULT_MINIMIZE_TIME, runs=DEFAULT_MINIMIZE_RUNS,
                  quiet=False):
    """Minimize one crash, keeping its signature. Returns a Minimized (output set) or raises
    ChurnError: exit 1 when the file does not fail on replay, 2 on environment errors."""
    progress = (lambda s: None) if quiet else note
    if engine is None:
        engine = "afl" if looks_like_afl_crash(ctx.path) and shutil.which("afl-tmin") \
            else "libfuzzer"
    ensure_built([binary("replay", ctx.target)], ["replay"])
    sig, why = signature_of(ctx.target, ctx.path, ctx.bugs)
    if sig is None:
        raise ChurnError("%s: %s with CHURN_BUGS=%s; nothing to minimize"
                         % (rel(ctx.path), why, ",".join(ctx.bugs) or "''"),
                         EXIT_FAIL if why.startswith("does not fail") else EXIT_ENV)
    m = Minimized(ctx, sig, os.path.getsize(ctx.path))
    progress("minimizing %s (%d B, %s) with %s, keeping %s"
             % (rel(ctx.path), m.original_size, ctx.describe(), engine, sig))
    base = os.path.basename(ctx.path)
    work = os.path.join(out_dir(), "work", ctx.target, "minimize",
                        "%s-%d" % (sanitize_name(base) or "input", os.getpid()))
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    deadline = time.time() + time_s
    if engine == "libfuzzer":
        _minimize_libfuzzer(m, work, deadline, runs, progress)
    else:
        _minimize_afl(m, work, deadline, progress)
        if m.best_size == m.original_size and deadline - time.time() >= 5:
            # inputs do not depend on the engine; libFuzzer keeps every intermediate step, so
            # it often finds a smaller input where afl-tmin's one answer drifted to another bug
            progress("afl-tmin gave nothing smaller with the same signature; trying libFuzzer's "
                     "minimizer")
            _minimize_libfuzzer(m, work, deadline, runs, progress)
            if m.best_size < m.original_size:
                engine = "libfuzzer"
    dest_dir = minimized_dir(ctx.target)
    os.makedirs(dest_dir, exist_ok=True)
    stem = base[:-4] if base.endswith("-min") else base
    m.output = os.path.join(dest_dir, stem + "-min")
    if os.path.abspath(m.best) != os.path.abspath(m.output):
        shutil.copyfile(m.best, m.output)
    meta = dict(read_sidecar(ctx.path) or ctx.meta or {})
    meta.pop("from_last_fuzz", None)
    meta.update(target=ctx.target, bugs=ctx.bugs, signature=sig, file=os.path.basename(m.output),
                minimized_from=rel(ctx.path), original_size=m.original_size,
                minimized_by=engine, size=m.best_size)
    if not meta.get("engine") and looks_like_afl_crash(ctx.path):
        meta["engine"] = "afl"
    write_sidecar(m.output, meta)
    shutil.rmtree(work, ignore_errors=True)
    return m


def print_minimized(m):
    if m.best_size < m.original_size:
        say("size      %d B -> %d B (signature %s kept; %s verified)"
            % (m.original_size, m.best_size, m.signature, _plural(m.tried, "candidate")))
    else:
        say("size      %d B (could not be reduced with the same signature; %s verified)"
            % (m.original_size, _plural(m.tried, "candidate")))
    if m.rejected:
        say("rejected  %s" % ", ".join("%d x %s" % (n, s) for s, n in sorted(m.rejected.items())))
    say("minimized %s" % rel(m.output))


def repro_add_command(m, name):
    ctx = m.ctx
    meta = read_sidecar(m.output) or {}
    parts = ["./churn repro add", rel(m.output), "--name", name, "--target", ctx.target]
    if ctx.bugs:
        parts += ["--bugs", ",".join(ctx.bugs)]
    if meta.get("engine") in ("libfuzzer", "afl"):
        parts += ["--found-by", meta["engine"]]
    return " ".join(parts)


def cmd_minimize(args):
    ctx = resolve_context(args.file, args.target, args.bugs)
    t0 = time.time()
    m = minimize_file(ctx, args.engine, args.time, args.runs)
    say("")
    say("== churn minimize ==")
    say("input     %s (%s)" % (rel(ctx.path), ctx.describe()))
    print_minimized(m)
    say("took      %s" % fmt_secs(time.time() - t0))
    say("next      %s" % repro_add_command(m, suggested_name(ctx.bugs, m.signature)))
    return EXIT_OK


def suggested_name(bugs, signature, several=False):
    """A repro name: the toggle id, plus the oracle when one run found several signatures."""
    base = "-".join(bugs) if bugs else "repro"
    if several or not bugs:
        base += "-" + signature.replace("@", "-at-")
    return sanitize_name(base)


# ---------------------------------------------------------------------------------------------
# after `churn fuzz` found crashes


def after_fuzz(target, engine, bugs, crashes, time_s):
    """Triage the crashes of a fuzzing run and minimize the smallest of each signature."""
    say("")
    say("== triage ==")
    tri = triage_files(crashes, target, ",".join(bugs))
    for ctx in tri.contexts.values():
        ctx.target_from = ctx.bugs_from = "this run"
    print_triage(tri, list_duplicates=False)
    if not tri.groups:
        say("nothing to minimize: no crash reproduces on replay")
        return
    several = len(tri.groups) > 1
    commands, names = [], set()
    for (tgt, gbugs, sig), keep in tri.smallest():
        say("")
        say("== minimize %s (%s) ==" % (sig, rel(keep)))
        ctx = tri.contexts[os.path.abspath(keep)]
        try:
            m = minimize_file(ctx, engine if engine == "afl" and looks_like_afl_crash(keep)
                              else "libfuzzer", time_s)
        except ChurnError as e:
            warn(str(e))
            continue
        print_minimized(m)
        name = base = suggested_name(list(gbugs), sig, several)
        n = 2
        while name in names:
            name, n = "%s-%d" % (base, n), n + 1
        names.add(name)
        commands.append(repro_add_command(m, name))
    if commands:
        say("")
        say("to commit %s:" % ("it" if len(commands) == 1 else "them"))
        for c in commands:
            say("  " + c)
