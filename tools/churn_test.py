"""`churn test` (the whole test suite) and `churn bench`."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from churn_common import (EXIT_FAIL, EXIT_OK, REPO, ChurnError, binary, ensure_built,
                          tsan_tests_binary,
                          expected_outputs, fmt_secs, input_files, note, out_dir, rel, say,
                          run_captured, table, tail_text)
from churn_engines import (_na, collect_afl_crashes, libfuzzer_keep_going, prepare_work_corpus,
                           run_afl, run_libfuzzer, signature_of)
from churn_replay import Checks, replay_checks
from churn_repro import load_index_entries
import churn_serve
import churn_test_matrix
import churn_test_users

SELFTEST_TARGET = "fuzz_sim_selftest"
SELFTEST_BUG = "toy-lost-update"
SELFTEST_SIGNATURE = "lost-update@"
SELFTEST_FUZZ_TIME = 60  # seconds, per engine
SELFTEST_CLEAN_RUNS = 20000


def _clean_env():
    env = dict(os.environ)
    env["CHURN_BUGS"] = ""
    return env


def _status(rc):
    return "killed" if rc is None else ("signal %d" % -rc if rc < 0 else "exit status %d" % rc)


def _run(cmd, timeout):
    """Run cmd from the repo root; returns (rc or None on timeout, combined output)."""
    return run_captured(cmd, REPO, _clean_env(), timeout)


def check_unit_tests(checks, exe=None, label="churn-tests"):
    """Run a unit-test binary and count each TAP line as a check named '<label> <test>'."""
    exe = exe or binary("tests", "churn-tests")
    if not os.path.exists(exe):
        checks.fail(label, "%s does not exist" % rel(exe))
        return
    note("running %s" % rel(exe))
    rc, out = _run([exe], 600)
    plan, seen, pending = None, set(), []
    for line in out.splitlines():
        m = re.match(r"^1\.\.(\d+)\s*$", line)
        mo = re.match(r"^(not ok|ok)\s+(\d+)\s*-?\s*(.*?)\s*$", line)
        if m:
            plan = int(m.group(1))
        elif mo:
            num, name = int(mo.group(2)), mo.group(3) or "test %s" % mo.group(2)
            seen.add(num)
            if mo.group(1) == "ok":
                checks.ok(label + " " + name)
            else:
                checks.fail(label + " " + name, "\n".join(pending[-8:]) or "not ok")
            pending = []
        elif not re.match(r"^\d+ passed, \d+ failed", line):
            pending.append(line)
    missing = [n for n in range(1, (plan or 0) + 1) if n not in seen]
    if missing:
        checks.fail("%s %d of %d tests" % (label, len(missing), plan),
                    "never reported (runner ended with %s after test %s):\n%s"
                    % (_status(rc), max(seen) if seen else "none", tail_text(out, 8)))
    elif not seen:
        checks.fail(label, "no TAP lines (%s):\n%s" % (_status(rc), tail_text(out, 8)))
    elif rc != 0 and checks.failed == 0:
        checks.fail(label + " exit status", "%s although every test said ok" % _status(rc))


# Sources of nondeterminism that must never reach a simulated run: the clock, libc randomness,
# real threads, and addresses printed into traces. The real-threads backend, the benchmarks and
# the replay main (which runs outside any simulated run) are exempt.
# Every harness/ folder is simulated code except these (the same split build.sh makes).
NOT_SIMULATED = ("real", "entry", "bench")
SIMULATED_DIRS = tuple(["harness/" + d for d in sorted(os.listdir(os.path.join(REPO, "harness")))
                        if os.path.isdir(os.path.join(REPO, "harness", d))
                        and d not in NOT_SIMULATED] + ["fuzzers"])
BANNED_CALLS = [
    (re.compile(r"\b(s?rand|random|drand48|lrand48)\s*\("), "libc randomness"),
    (re.compile(r"\b(time|clock_gettime|gettimeofday|clock)\s*\("), "the wall clock"),
    (re.compile(r"\bpthread_(create|mutex_lock|cond_wait)\s*\("), "real threads"),
    (re.compile(r'"[^"\n]*%p[^"\n]*"'), "an address in a message (traces must not depend on it)"),
]


def check_determinism_lint(checks):
    found = []
    for d in SIMULATED_DIRS:
        for name in sorted(os.listdir(os.path.join(REPO, d))):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(d, name)
            with open(os.path.join(REPO, path), encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    code = line.split("//")[0]
                    if code.lstrip().startswith(("/*", "*")):
                        continue
                    for pattern, what in BANNED_CALLS:
                        if pattern.search(code):
                            found.append("%s:%d: %s: %s" % (path, lineno, what, line.strip()))
    if found:
        checks.fail("determinism lint", "\n".join(found))
    else:
        checks.ok("determinism lint (no clock, rand, real threads or %%p in %s)"
                  % ", ".join(SIMULATED_DIRS))


# The real-threads stress tests, run with every toggle off: fixed code must never fail there.
STRESS_RUNS = [("toy-stress", []), ("tls-stress", ["--seconds", "5"]),
               ("httpz-stress", ["--seconds", "5"]), ("btc-stress", ["--seconds", "5"]),
               ("kernel-real-check", [])]


# Targets whose scenario seeds are compiled from scenarios/<target>/*.txt, with their compiler.
SCENARIO_TOOLS = [("fuzz_epoll_shim", ["epoll_scenario.py"]),
                  ("fuzz_httpz_worker", ["http_scenario.py"]),
                  ("fuzz_btc_httpserver", ["http_scenario.py", "--target", "fuzz_btc_httpserver"]),
                  ("fuzz_bun_server", ["http_scenario.py", "--target", "fuzz_bun_server"])]


def check_scenario_seeds(checks):
    """Committed scenario seeds must be what their readable scenarios compile to."""
    for target, tool in SCENARIO_TOOLS:
        name = "scenario seeds match scenarios/%s/*.txt" % target
        rc, out = _run(["python3", os.path.join("tools", tool[0])] + tool[1:] + ["--check"], 60)
        if rc == 0:
            checks.ok(name)
        else:
            checks.fail(name, "%s:\n%s\nrecompile with tools/%s"
                        % (_status(rc), tail_text(out, 8), " ".join(tool)))


def check_stress(checks):
    for exe_name, args in STRESS_RUNS:
        exe = binary("stress", exe_name)
        name = "%s (real threads, no toggles)" % exe_name
        if not os.path.exists(exe):
            checks.fail(name, "%s does not exist" % rel(exe))
            continue
        note("running %s" % " ".join([rel(exe)] + args))
        t0 = time.time()
        rc, out = _run([exe] + args, 600)
        if rc == 0:
            checks.ok("%s in %s" % (name, fmt_secs(time.time() - t0)))
        else:
            checks.fail(name, "%s:\n%s" % (_status(rc), tail_text(out, 8)))


# The real-server checks: each copy on the real kernel, driven by real clients. The limits
# are the ones the shared HTTP checks expect (431 past a 2048-byte head, 413 past 8192 body
# bytes). httpz-serve gets 16 wrk connections over --max-conn 4.
SERVE_MAX_CONN = 4
WRK_ARGS = ["-t2", "-c16", "-d3s", "--timeout", "2s"]
SERVES = [("httpz-serve", ["--max-conn", str(SERVE_MAX_CONN), "--workers", "2"],
           "over --max-conn %d" % SERVE_MAX_CONN),
          ("btc-serve", ["--workers", "2", "--max-head", "2048", "--max-body", "8192"], ""),
          ("bun-serve", ["--max-head", "2048", "--max-body", "8192"], "")]


def check_serve(checks):
    for exe_name, args, load_note in SERVES:
        check_one_server(checks, exe_name, args, load_note)
    check_bun_lifecycle(checks)


BUN_STOP_AFTER = 3


def check_bun_lifecycle(checks):
    """bun-serve --stop-after 3: the three requests before the stop are answered (two on a
    keep-alive connection, one by curl), then new connections are refused, a request on the
    connection kept alive across the stop is answered 200, or 503 with close, or the connection
    is closed (App.close once the server is collected), never left hanging, and the process
    exits 0 by itself once drained, with nothing on stderr."""
    P = "bun-serve"
    sub = churn_serve.sub_check
    started = _start_server(checks, P, ["--stop-after", str(BUN_STOP_AFTER)], ("curl",),
                            "%s --stop-after %d" % (P, BUN_STOP_AFTER))
    if not started:
        return
    srv, port = started
    kept = None
    try:
        url = "http://127.0.0.1:%d" % port

        def before():
            nonlocal kept
            kept = churn_serve.Raw(port)
            got = []
            for i in range(BUN_STOP_AFTER - 1):
                kept.send(b"GET /before/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
                st, h, body = kept.response()
                got.append(st == 200 and churn_serve.names(body, "/before/%d" % i, "GET"))
            rc, res, err = churn_serve.curl([url + "/last"])
            got.append(rc == 0 and len(res) == 1 and res[0][0] == 200)
            ok = all(got)
            return ok, "" if ok else "answers %r, curl exit %s %r %s" % (got, rc, res, err)
        if not sub(checks, "%s --stop-after %d: requests before stop() answered 200 (keep-alive "
                   "and curl)" % (P, BUN_STOP_AFTER), before):
            return

        def refused():
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    c = socket.create_connection(("127.0.0.1", port), timeout=2)
                except ConnectionRefusedError:
                    return True, ""
                c.close()
                time.sleep(0.05)
            return False, "new connections still accepted 10 s after the stop"
        sub(checks, P + " after stop(): new connections refused", refused)

        def kept_alive():
            try:
                kept.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
                st, h, body = kept.response()
            except (EOFError, ConnectionResetError, BrokenPipeError):
                return True, "closed"
            except TimeoutError as e:
                return False, "the kept-alive connection neither answered nor closed: %s" % e
            ok = (st == 200 and churn_serve.names(body, "/after", "GET")) or \
                (st == 503 and h.get("connection", "").lower() == "close")
            return ok, "%d" % st if ok else "got %d %r %r" % (st, h, body)
        sub(checks, P + " after stop(): a kept-alive connection is answered, refused with 503 or "
            "closed, never left hanging", kept_alive)

        def exits():
            try:
                srv.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                return False, "still running 15 s after the stop"
            rc, out, err = srv.stop()
            clean = rc == 0 and "stopped after %d responses" % BUN_STOP_AFTER in out and \
                not err.strip()
            return clean, "" if clean else "%s, stdout %r, stderr:\n%s" % (
                _status(rc), out.strip(), tail_text(err, 12))
        sub(checks, P + " exits 0 by itself once drained, nothing on stderr", exits)
    finally:
        if kept:
            kept.close()
        if srv.proc.poll() is None or not srv.stderr.closed:
            srv.stop()


def _start_server(checks, P, args, clients, label):
    """out/stress/P started with --port 0 and args: (server, port), or None once a check named
    after label failed (the binary or the client tools missing, no listening line)."""
    exe = binary("stress", P)
    if not os.path.exists(exe):
        checks.fail(label, "%s does not exist" % rel(exe))
        return None
    why = churn_serve.need_clients(clients)
    if why:
        checks.fail(label + " clients", why)
        return None
    note("running %s --port 0 %s with %s" % (rel(exe), " ".join(args), " and ".join(clients)))
    srv = churn_serve.Server(exe, ["--port", "0"] + args, _clean_env())
    try:
        return srv, srv.wait_listening()
    except RuntimeError as e:
        checks.fail(label + " starts on --port 0", str(e))
        srv.stop()
        return None


def check_one_server(checks, P, args, load_note):
    """out/stress/P on a free loopback port, checked with curl (GET, POST, keep-alive reuse,
    Connection: close), raw sockets (HTTP/1.0, pipelining, malformed and oversized requests)
    and wrk (16 connections for 3 s): every response complete, the server still answering and
    holding no more descriptors than before, then stopped with SIGINT: exit 0 and nothing on
    stderr (no sanitizer report)."""
    sub = churn_serve.sub_check
    started = _start_server(checks, P, args, ("curl", "wrk"), P)
    if not started:
        return
    srv, port = started
    stopped = False
    tmp = tempfile.mkdtemp(prefix="serve-")
    try:
        checks.ok("%s starts on --port 0 (127.0.0.1:%d)" % (P, port))
        base_fds = srv.fd_count()
        url = "http://127.0.0.1:%d" % port
        churn_serve.http_checks(checks, P, port, url, tmp)
        sub(checks, "%s load: wrk %s%s" % (P, " ".join(WRK_ARGS), " " + load_note if load_note
                                           else ""),
            lambda: churn_serve.wrk_check(url, WRK_ARGS))

        def answers():
            rc, res, err = churn_serve.curl([url + "/after"])
            ok = rc == 0 and len(res) == 1 and res[0][0] == 200 and \
                churn_serve.names(res[0][2], "/after", "GET")
            return ok, "" if ok else "curl exit %s, %r %s" % (rc, res, err)
        sub(checks, P + " still answers after the load", answers)
        n = srv.settle_fds(base_fds)
        sub(checks, P + " holds no leaked descriptor once idle",
            lambda: (n == base_fds, "%s open, %d at the start" % (n, base_fds)))
        stopped = True
        rc, out, err = srv.stop()
        m = re.search(r"(\d+) requests served", out)
        clean = rc == 0 and m is not None and not err.strip()
        sub(checks, P + " stops on SIGINT with exit 0 and no sanitizer output",
            lambda: (clean, "%s requests served" % m.group(1) if clean else
                     "%s, stdout %r, stderr:\n%s" % (_status(rc), out.strip(), tail_text(err, 12))))
    finally:
        if not stopped:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _seed_copy(tmp, name, nonempty):
    d = os.path.join(tmp, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    prepare_work_corpus(SELFTEST_TARGET, d, need_nonempty=nonempty)
    return d


def _judge_crash(checks, name, crashes, bugs):
    if not crashes:
        checks.fail(name, "no crash found")
        return False
    sigs = []
    for c in crashes:
        sig, msg = signature_of(SELFTEST_TARGET, c, bugs)
        sigs.append("%s: %s" % (rel(c), sig or msg))
        if sig and sig.startswith(SELFTEST_SIGNATURE):
            checks.ok("%s (%s)" % (name, sig))
            return True
    checks.fail(name, "no crash replays with a %s... signature:\n%s"
                % (SELFTEST_SIGNATURE, "\n".join(sigs)))
    return False


# Targets whose repros must sign differently toggle by toggle (triage groups by signature).
DISTINCT_SIGNATURE_TARGETS = ("fuzz_epoll_shim",)
NOT_COPY_DIRS = ("runtime", "kernel", "real", "entry", "bench")  # build.sh's NOT_COPIES


def _defined_in_copy(func):
    """Is a C function of that name defined in a system copy (not the runtime or a kernel)?"""
    pat = re.compile(r"^[A-Za-z_][\w \t\*]*\b%s\s*\(" % re.escape(func), re.M)
    for d in sorted(os.listdir(os.path.join(REPO, "harness"))):
        if d in NOT_COPY_DIRS or not os.path.isdir(os.path.join(REPO, "harness", d)):
            continue
        for name in os.listdir(os.path.join(REPO, "harness", d)):
            if name.endswith(".c"):
                with open(os.path.join(REPO, "harness", d, name), errors="replace") as f:
                    if pat.search(f.read()):
                        return True
    return False


def check_signatures_tell_bugs_apart(checks):
    """Each toggle's repro, replayed with its toggle, fails with a signature no other toggle's
    repro of the target shares, and a sanitizer signature names a function of the copy (not a
    runtime helper such as a mutex or an atomic that every bug goes through)."""
    for target in DISTINCT_SIGNATURE_TARGETS:
        name = "signatures tell %s's toggles apart" % target
        entries = load_index_entries(os.path.join(REPO, "repros"), target)
        by_sig, problems = {}, []
        for e in entries:
            path = os.path.join(REPO, "repros", target, e["file"])
            sig, msg = signature_of(target, path, e["bugs"])
            if sig is None:
                problems.append("%s: %s" % (e["file"], msg))
                continue
            by_sig.setdefault(sig, set()).add(",".join(e["bugs"]))
            m = re.match(r"^(asan|ubsan):[^@]*@(.+)$", sig)
            if m and m.group(1) == "asan" and not _defined_in_copy(m.group(2)):
                problems.append("%s signs %s: not a function of a system copy" % (e["file"], sig))
        for sig, bugs in sorted(by_sig.items()):
            if len(bugs) > 1:
                problems.append("%s is the signature of %s" % (sig, ", ".join(sorted(bugs))))
        if len(by_sig) < 2:
            problems.append("fewer than two signatures to compare")
        if problems:
            checks.fail(name, "\n".join(problems))
        else:
            checks.ok(name + " (%d toggles, %d signatures)" % (len(entries), len(by_sig)))


def check_libfuzzer_selftest(checks, tmp):
    exe = binary("libfuzzer", SELFTEST_TARGET)
    name = "libFuzzer finds %s" % SELFTEST_BUG
    if not os.path.exists(exe):
        checks.fail(name, "%s does not exist" % rel(exe))
        return
    note("libFuzzer self-test: CHURN_BUGS=%s, up to %ds" % (SELFTEST_BUG, SELFTEST_FUZZ_TIME))
    env = dict(os.environ, CHURN_BUGS=SELFTEST_BUG)
    corpus = _seed_copy(tmp, "lf-corpus", False)
    res = run_libfuzzer(exe, [corpus], os.path.join(tmp, "lf-artifacts"), env,
                        max_time=SELFTEST_FUZZ_TIME, seed=1,
                        log_path=os.path.join(tmp, "lf-find.log"), label="libFuzzer self-test")
    if res.error and not res.crashes:
        checks.fail(name, res.error)
    else:
        _judge_crash(checks, name, res.crashes, [SELFTEST_BUG])
    name = "libFuzzer %d runs without toggles do not crash" % SELFTEST_CLEAN_RUNS
    corpus = _seed_copy(tmp, "lf-corpus-clean", False)
    res = run_libfuzzer(exe, [corpus], os.path.join(tmp, "lf-clean-artifacts"), _clean_env(),
                        runs=SELFTEST_CLEAN_RUNS, seed=1, log_path=os.path.join(tmp, "lf-clean.log"),
                        label="libFuzzer clean run")
    if res.crashes:
        sig, msg = signature_of(SELFTEST_TARGET, res.crashes[0], [])
        checks.fail(name, "crashed: %s (%s)" % (rel(res.crashes[0]), sig or msg))
    elif res.error:
        checks.fail(name, res.error)
    else:
        checks.ok("%s (%d execs in %s)" % (name, res.execs, fmt_secs(res.runtime)))


KEEP_GOING_BUGS = {"toy-lost-update": "lost-update@", "toy-lock-order": "deadlock@"}


def check_keep_going(checks, tmp):
    """Past the first crash, a keep-going run reaches a second toggle's bug as well."""
    exe = binary("libfuzzer", SELFTEST_TARGET)
    name = "libFuzzer keep-going finds both %s" % " and ".join(sorted(KEEP_GOING_BUGS))
    if not os.path.exists(exe):
        checks.fail(name, "%s does not exist" % rel(exe))
        return
    bugs = sorted(KEEP_GOING_BUGS)
    note("libFuzzer keep-going self-test: CHURN_BUGS=%s, 20s" % ",".join(bugs))
    res = run_libfuzzer(exe, [_seed_copy(tmp, "lf-keep-corpus", False)],
                        os.path.join(tmp, "lf-keep-artifacts"),
                        dict(os.environ, CHURN_BUGS=",".join(bugs)), max_time=20, seed=1,
                        extra=libfuzzer_keep_going(1),
                        log_path=os.path.join(tmp, "lf-keep.log"), label="libFuzzer keep-going")
    sigs = set()
    for c in res.crashes:
        sig, _ = signature_of(SELFTEST_TARGET, c, bugs)
        sigs.add(sig)
    missing = [b for b, prefix in sorted(KEEP_GOING_BUGS.items())
               if not any(s and s.startswith(prefix) for s in sigs)]
    if missing:
        checks.fail(name, "%d crashes, signatures %s; none for %s%s"
                    % (len(res.crashes), sorted(s for s in sigs if s) or "none",
                       ", ".join(missing), ("\n" + res.error) if res.error else ""))
    else:
        checks.ok("%s (%d crashes, %d signatures)" % (name, len(res.crashes), len(sigs)))


def check_afl_selftest(checks, tmp):
    name = "AFL++ finds %s" % SELFTEST_BUG
    if not shutil.which("afl-fuzz"):
        say("skip %s: afl-fuzz is not installed" % name)
        return
    exe = binary("afl", SELFTEST_TARGET)
    if not os.path.exists(exe):
        checks.fail(name, "afl-fuzz is installed but %s does not exist" % rel(exe))
        return
    note("AFL++ self-test: CHURN_BUGS=%s, up to %ds" % (SELFTEST_BUG, SELFTEST_FUZZ_TIME))
    env = dict(os.environ, CHURN_BUGS=SELFTEST_BUG)
    corpus = _seed_copy(tmp, "afl-corpus", True)
    afl_out = os.path.join(tmp, "afl")
    res = run_afl(exe, corpus, afl_out, env, SELFTEST_FUZZ_TIME, until_crash=True, seed=1,
                  log_path=os.path.join(tmp, "afl.log"), label="AFL++ self-test")
    crashes = collect_afl_crashes(afl_out, os.path.join(tmp, "afl-crashes")) + res.seed_crashes
    if res.error and not crashes:
        checks.fail(name, res.error)
    else:
        _judge_crash(checks, name, crashes, [SELFTEST_BUG])


def _churn(argv, timeout=300):
    """Run the churn CLI itself; returns (exit status, combined output)."""
    import sys
    return _run([sys.executable, os.path.join(REPO, "tools", "churn.py")] + argv, timeout)


def check_repro_tools(checks, tmp_root):
    """Cheap checks that the crash tools refuse what they must and explain what they can."""
    empty = tempfile.mkdtemp(prefix="test-tools-", dir=tmp_root)
    try:
        rc, out = _churn(["triage", empty, "--target", SELFTEST_TARGET, "--bugs", ""])
        name = "churn triage refuses a folder without crash files"
        if rc == 2 and "no crash files" in out:
            checks.ok(name)
        else:
            checks.fail(name, "%s:\n%s" % (_status(rc), tail_text(out, 6)))
        seeds = input_files(os.path.join(REPO, "corpus", SELFTEST_TARGET))
        name = "churn repro add refuses an input that passes with its toggles"
        if not seeds:
            checks.fail(name, "no seed in corpus/%s/ to try it with" % SELFTEST_TARGET)
        else:
            rc, out = _churn(["repro", "add", seeds[0], "--name", "not-a-bug", "--bugs",
                              SELFTEST_BUG, "--repros-dir", empty])
            if rc == 1 and "refused: passes" in out and not os.listdir(empty):
                checks.ok(name)
            else:
                checks.fail(name, "%s, %s written:\n%s" % (_status(rc), os.listdir(empty) or
                                                            "nothing", tail_text(out, 6)))
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    d = os.path.join(REPO, "repros", SELFTEST_TARGET)
    repro = next((p for p in input_files(d) if os.path.basename(p).startswith(SELFTEST_BUG)),
                 None)
    name = "churn explain shows the %s repro by thread and ends with its signature" % SELFTEST_BUG
    if repro is None:
        checks.fail(name, "no %s-* repro in %s" % (SELFTEST_BUG, rel(d)))
        return
    rc, out = _churn(["explain", repro, "--width", "120"])
    if rc == 1 and "counter-worker" in out and re.search(
            r"^signature %s" % re.escape(SELFTEST_SIGNATURE), out, re.M):
        checks.ok(name)
    else:
        checks.fail(name, "%s:\n%s" % (_status(rc), tail_text(out, 8)))


def cmd_test(args):
    t0 = time.time()
    checks = Checks()
    afl_ok = bool(shutil.which("afl-clang-fast"))
    try:
        ensure_built(expected_outputs([], afl_ok), [])
        checks.ok("build")
    except ChurnError as e:
        checks.fail("build", str(e))
    check_unit_tests(checks)
    # The same tests under ThreadSanitizer: it exits 66 on any report, failing the run.
    check_unit_tests(checks, tsan_tests_binary(), "tsan churn-tests")
    check_determinism_lint(checks)
    check_scenario_seeds(checks)
    check_stress(checks)
    check_serve(checks)
    tmp = None
    if args.quick:
        say("skip fuzzing self-tests (--quick)")
    else:
        os.makedirs(os.path.join(out_dir(), "work"), exist_ok=True)
        # AFL++ tools refuse some work under /tmp, so the scratch folder lives in out/work/
        tmp = tempfile.mkdtemp(prefix="test-", dir=os.path.join(out_dir(), "work"))
        before = checks.failed
        check_libfuzzer_selftest(checks, tmp)
        check_keep_going(checks, tmp)
        check_afl_selftest(checks, tmp)
        churn_test_matrix.check_bench_matrix_quick(checks, _run)
        if checks.failed == before:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            note("self-test logs kept in %s" % rel(tmp))
    os.makedirs(os.path.join(out_dir(), "work"), exist_ok=True)
    check_repro_tools(checks, os.path.join(out_dir(), "work"))
    check_signatures_tell_bugs_apart(checks)
    churn_test_users.check_cli_units(checks)
    churn_test_users.check_workflows(checks)
    churn_test_users.check_explain_html(checks, os.path.join(out_dir(), "work"))
    if not args.quick:
        churn_test_users.check_coverage(checks)
    try:
        replay_checks(checks, repeat=args.repeat)
    except ChurnError as e:
        checks.fail("replay", str(e))
    note("tests took %s" % fmt_secs(time.time() - t0))
    return checks.summary()


# ---------------------------------------------------------------------------------------------
# churn bench


def cmd_bench(args):
    what = args.what
    rows = []
    rc_all = EXIT_OK
    if what in ("runtime", "all"):
        exe = binary("bench", "bench-runtime")
        ensure_built([exe], ["bench"])
        say("== %s ==" % rel(exe))
        rc = subprocess.call([exe], cwd=REPO, env=_clean_env(), stdin=subprocess.DEVNULL)
        if rc != 0:
            say("FAIL %s: %s" % (rel(exe), _status(rc)))
            rc_all = EXIT_FAIL
        say("")
    if what in ("fuzz", "all"):
        target = args.target
        exe = binary("libfuzzer", target)
        ensure_built([exe], ["libfuzzer"])
        os.makedirs(os.path.join(out_dir(), "work"), exist_ok=True)
        runs = [(target, exe, True)]
        minimal = binary("bench", "fuzz-bench-minimal")  # the runtime alone, if build.sh made it
        if os.path.exists(minimal):
            runs.append(("minimal 2-fiber run", minimal, False))
        for label, fexe, seeds in runs:
            tmp = tempfile.mkdtemp(prefix="bench-", dir=os.path.join(out_dir(), "work"))
            try:
                corpus = os.path.join(tmp, "corpus")
                os.makedirs(corpus)
                if seeds:
                    prepare_work_corpus(target, corpus, need_nonempty=False)
                note("measuring libFuzzer exec/s: %s -runs=%d over %d seed files, CHURN_BUGS empty"
                     % (rel(fexe), args.runs, len(input_files(corpus))))
                res = run_libfuzzer(fexe, [corpus], os.path.join(tmp, "artifacts"), _clean_env(),
                                    runs=args.runs, seed=1, log_path=os.path.join(tmp, "bench.log"),
                                    label="libFuzzer bench")
                lf = res.final.get("average_exec_per_sec")
                if res.crashes or res.error:
                    say("FAIL libFuzzer bench %s: %s" % (label, res.error or "crashed: %s"
                                                         % rel(res.crashes[0])))
                    rc_all = EXIT_FAIL
                rows.append([label, "none", str(res.execs), "%.1fs" % res.runtime,
                             str(lf) if lf is not None else "?", "%d" % res.exec_per_sec])
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        say("")
        say(table(rows, ["target", "toggles", "execs", "time", "exec/s (libFuzzer)",
                         "exec/s (wall)"]))
    if what in ("coverage", "all"):
        if bench_interleaving_coverage(args.target, args.runs) != EXIT_OK:
            rc_all = EXIT_FAIL
    return rc_all


def bench_interleaving_coverage(target, runs, seeds=(1, 2, 3)):
    """What the interleaving features add: the same libFuzzer runs (same seeds, same -runs,
    same seed corpus, no toggles) with the features on and with CHURN_NO_INTERLEAVING_COV=1.
    'cov' counts covered code points (the feature functions among them), 'ft' libFuzzer's
    features; the difference is what plain edge coverage cannot see."""
    exe = binary("libfuzzer", target)
    ensure_built([exe], ["libfuzzer"])
    os.makedirs(os.path.join(out_dir(), "work"), exist_ok=True)
    rows, rc = [], EXIT_OK
    for mode in ("on", "off"):
        for seed in seeds:
            tmp = tempfile.mkdtemp(prefix="bench-cov-", dir=os.path.join(out_dir(), "work"))
            try:
                corpus = os.path.join(tmp, "corpus")
                os.makedirs(corpus)
                prepare_work_corpus(target, corpus, need_nonempty=False)
                env = _clean_env()
                if mode == "off":
                    env["CHURN_NO_INTERLEAVING_COV"] = "1"
                note("interleaving features %s: %s -runs=%d -seed=%d" % (mode, rel(exe), runs, seed))
                res = run_libfuzzer(exe, [corpus], os.path.join(tmp, "artifacts"), env, runs=runs,
                                    seed=seed, log_path=os.path.join(tmp, "bench.log"),
                                    label="libFuzzer coverage bench")
                if res.crashes or res.error:
                    say("FAIL coverage bench (%s, seed %d): %s" % (mode, seed, res.error or "crash"))
                    rc = EXIT_FAIL
                rows.append([mode, str(seed), str(runs), _na(res.cov), _na(res.ft), _na(res.corpus)])
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    say("")
    say("interleaving features on %s (CHURN_BUGS empty):" % target)
    say(table(rows, ["features", "seed", "runs", "cov", "ft", "corpus"]))
    return rc
