"""`churn oss-fuzz check`: build.sh under OSS-Fuzz's build configurations, then a check of every
fuzzer in $OUT in the manner of OSS-Fuzz's check_build (base-runner's bad_build_check).

Each configuration sets the variables OSS-Fuzz's `compile` sets (CC CXX CFLAGS CXXFLAGS
LIB_FUZZING_ENGINE SANITIZER FUZZING_ENGINE OUT SRC WORK), with the flags of base-builder on
Debian's clang 14 (no libc++: CXXFLAGS has no -stdlib=libc++). Every fuzzer it builds must:
  - ship <fuzzer>_seed_corpus.zip with the committed seeds and repros, its .options and the
    dictionary those name (libFuzzer loads it, so a malformed entry fails the check);
  - carry the configuration's instrumentation and no other sanitizer's (counted call sites);
  - run its whole seed corpus with no toggles without a failure (the repros are regression
    inputs there: they fail only with their toggles, which OSS-Fuzz never sets);
  - have coverage: libFuzzer's INITED line reports at least MIN_EDGES edges, AFL++ says "All set
    and ready to roll", the coverage build's profile covers lines of the copies;
  - find nothing when fuzzed briefly with no toggles.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile

from churn_common import (EXIT_ENV, EXIT_FAIL, EXIT_OK, REPO, ChurnError, fmt_secs, out_dir,
                          run_captured, say, tail_text)

MIN_EDGES = 100  # bad_build_check's threshold for "the target is instrumented"
MIN_SAN_CALLS = 1000  # bad_build_check wants this many ASan call sites in an ASan build

_COMMON = "-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
_ASAN = "-fsanitize=address -fsanitize-address-use-after-scope"
_UBSAN_LIST = ("array-bounds,bool,builtin,enum,float-divide-by-zero,function,"
               "integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,"
               "signed-integer-overflow,unsigned-integer-overflow,unreachable,vla-bound,vptr")
_UBSAN_NORECOVER = _UBSAN_LIST.replace("unsigned-integer-overflow,", "")
# base-builder's UBSan flags; C code also gets -fno-sanitize=function.
_UBSAN = ("-fsanitize=%s -fno-sanitize-recover=%s -fno-sanitize=function"
          % (_UBSAN_LIST, _UBSAN_NORECOVER))
_COVERAGE = ("-fprofile-instr-generate -fcoverage-mapping -pthread -Wl,--no-as-needed -Wl,-ldl "
             "-Wl,-lm -Wno-unused-command-line-argument")
AFL_DRIVER = "/usr/lib/afl/libAFLDriver.a"

# name: (FUZZING_ENGINE, SANITIZER, CC, CXX, sanitizer flags, coverage flags, LIB_FUZZING_ENGINE)
CONFIGS = {
    "libfuzzer-address": ("libfuzzer", "address", "clang", "clang++", _ASAN,
                          "-fsanitize=fuzzer-no-link", "-fsanitize=fuzzer"),
    "libfuzzer-undefined": ("libfuzzer", "undefined", "clang", "clang++", _UBSAN,
                            "-fsanitize=fuzzer-no-link", "-fsanitize=fuzzer"),
    "afl-address": ("afl", "address", "afl-clang-fast", "afl-clang-fast++", _ASAN, "",
                    AFL_DRIVER),
    "coverage": ("libfuzzer", "coverage", "clang", "clang++", _COVERAGE, "",
                 "-fsanitize=fuzzer"),
}

# Runtime options as base-runner sets them (abridged to what changes a verdict).
RUNTIME_ENV = {
    "ASAN_OPTIONS": "alloc_dealloc_mismatch=0:allocator_may_return_null=1:"
                    "allocator_release_to_os_interval_ms=500:check_malloc_usable_size=0:"
                    "detect_container_overflow=1:detect_odr_violation=0:detect_leaks=1:"
                    "detect_stack_use_after_return=1:fast_unwind_on_fatal=0:handle_abort=1:"
                    "handle_segv=1:handle_sigill=1:max_uar_stack_size_log=16:print_scariness=1:"
                    "quarantine_size_mb=10:strict_memcmp=1:symbolize=1:use_sigaltstack=1:"
                    "dedup_token_length=3",
    "UBSAN_OPTIONS": "print_stacktrace=1:print_summary=1:silence_unsigned_overflow=1:"
                     "symbolize=1:dedup_token_length=3:halt_on_error=1",
}


def config_env(name, out, work):
    engine, san, cc, cxx, san_flags, cov_flags, lib = CONFIGS[name]
    cflags = " ".join(x for x in (_COMMON, san_flags, cov_flags) if x)
    env = dict(os.environ)
    for k in ("CHURN_BUGS", "CFLAGS", "CXXFLAGS"):
        env.pop(k, None)
    env.update(CC=cc, CXX=cxx, CFLAGS=cflags, CXXFLAGS=cflags, LIB_FUZZING_ENGINE=lib,
               SANITIZER=san, FUZZING_ENGINE=engine, ARCHITECTURE="x86_64", OUT=out, SRC=REPO,
               WORK=work, JOBS=env.get("JOBS", "2"))
    if engine == "afl":
        env.update(AFL_QUIET="1", AFL_IGNORE_PROBLEMS="1",
                   ASAN_OPTIONS="detect_leaks=0:symbolize=0:detect_odr_violation=0:abort_on_error=1")
    return env


def fuzzer_binaries(out):
    """Executables in $OUT whose names have no extension, as OSS-Fuzz finds fuzz targets."""
    names = []
    for n in sorted(os.listdir(out)):
        p = os.path.join(out, n)
        if os.path.isfile(p) and os.access(p, os.X_OK) and re.fullmatch(r"[A-Za-z0-9_-]+", n):
            names.append(n)
    return names


RUNTIME_FN = re.compile(r"__(?:asan|ubsan|sanitizer|lsan|interception)|\d__(?:asan|ubsan)")


def count_calls(path, pattern):
    """Call sites in the disassembly of path whose target matches pattern, outside the
    sanitizer runtimes themselves (which call each other in every build)."""
    p = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, universal_newlines=True, errors="replace")
    rx = re.compile(r"\scall\w*\s.*<(%s)" % pattern)
    fn_rx = re.compile(r"^[0-9a-f]+ <(.*)>:$")
    n, in_runtime = 0, False
    for line in p.stdout.splitlines():
        m = fn_rx.match(line)
        if m:
            in_runtime = bool(RUNTIME_FN.search(m.group(1)))
        elif not in_runtime and rx.search(line):
            n += 1
    return n


def has_symbol(path, name):
    p = subprocess.run(["nm", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       universal_newlines=True, errors="replace")
    return any(line.split()[-1:] == [name] for line in p.stdout.splitlines())


def runtime_env(extra=None):
    env = dict(os.environ)
    env.pop("CHURN_BUGS", None)
    env.update(RUNTIME_ENV)
    env.update(extra or {})
    return env


def read_options(path):
    """[libfuzzer] keys of an .options file as -key=value flags."""
    flags, section = [], None
    if not os.path.isfile(path):
        return flags
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.fullmatch(r"\[(\w+)\]", line)
            if m:
                section = m.group(1)
                continue
            if section == "libfuzzer" and "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                flags.append("-%s=%s" % (k, v))
    return flags


class Checker:
    def __init__(self, config, out, scratch, fuzz_time):
        self.config = config
        self.engine, self.san = CONFIGS[config][0], CONFIGS[config][1]
        self.out, self.scratch, self.fuzz_time = out, scratch, fuzz_time
        self.failed = []

    def result(self, fuzzer, what, ok, detail):
        say("  %-4s %-22s %-13s %s" % ("ok" if ok else "FAIL", fuzzer, what, detail))
        if not ok:
            self.failed.append("%s %s %s: %s" % (self.config, fuzzer, what, detail))
        return ok

    def run(self, cmd, env, timeout):
        return run_captured(cmd, self.scratch, env, timeout)

    def seeds(self, fz):
        zpath = os.path.join(self.out, fz + "_seed_corpus.zip")
        if not os.path.isfile(zpath):
            self.result(fz, "seed corpus", False, "no %s" % os.path.basename(zpath))
            return None
        dest = os.path.join(self.scratch, fz, "seeds")
        os.makedirs(dest, exist_ok=True)
        with zipfile.ZipFile(zpath) as z:
            z.extractall(dest)
        n = len(os.listdir(dest))
        expected = sum(len([x for x in os.listdir(d) if x != "index.json" and not x.startswith(".")])
                       for d in (os.path.join(REPO, "corpus", fz), os.path.join(REPO, "repros", fz))
                       if os.path.isdir(d))
        self.result(fz, "seed corpus", n == expected and n > 0,
                    "%d files in the zip, %d in corpus/%s and repros/%s" % (n, expected, fz, fz))
        return dest if n else None

    def options(self, fz):
        opt = os.path.join(self.out, fz + ".options")
        flags = read_options(opt)
        dicts = [f.split("=", 1)[1] for f in flags if f.startswith("-dict=")]
        missing = [d for d in dicts if not os.path.isfile(os.path.join(self.out, d))]
        ok = os.path.isfile(opt) and not missing
        self.result(fz, "options", ok, "%s%s" % (" ".join(flags) or "no .options",
                                                  "; missing " + ", ".join(missing) if missing else ""))
        return [f if not f.startswith("-dict=") else "-dict=" + os.path.join(self.out, f[6:])
                for f in flags]

    def instrumentation(self, fz):
        path = os.path.join(self.out, fz)
        asan = count_calls(path, r"__asan_report|__asan_load|__asan_store")
        ubsan = count_calls(path, r"__ubsan_handle")
        prof = has_symbol(path, "__llvm_profile_runtime") or has_symbol(path, "__llvm_profile_write_file")
        if self.san == "address":
            ok, d = asan >= MIN_SAN_CALLS and ubsan == 0, "%d ASan call sites, %d UBSan" % (asan, ubsan)
        elif self.san == "undefined":
            ok, d = ubsan > 0 and asan == 0, "%d UBSan call sites, %d ASan" % (ubsan, asan)
        else:
            ok, d = prof and asan == 0 and ubsan == 0, "profile runtime %s, %d ASan, %d UBSan" % (
                "linked" if prof else "missing", asan, ubsan)
        if self.engine == "afl":
            afl = has_symbol(path, "__afl_area_ptr")
            ok, d = ok and afl, d + ", AFL++ map %s" % ("present" if afl else "missing")
        return self.result(fz, "sanitizer", ok, d)

    def check_libfuzzer(self, fz, seeds, flags):
        path = os.path.join(self.out, fz)
        env = runtime_env()
        rc, out = self.run([path, "-runs=0"] + [f for f in flags if not f.startswith("-dict=")]
                           + [seeds], env, 600)
        m = re.search(r"INITED cov: (\d+)", out)
        edges = int(m.group(1)) if m else 0
        self.result(fz, "seed run", rc == 0, "exit %s over %d inputs%s"
                    % (rc, len(os.listdir(seeds)), "" if rc == 0 else ": " + tail_text(out, 4)))
        self.result(fz, "coverage", edges >= MIN_EDGES and "no interesting inputs" not in out,
                    "%d edges at INITED (at least %d)" % (edges, MIN_EDGES))
        work = os.path.join(self.scratch, fz, "work")
        shutil.copytree(seeds, work, dirs_exist_ok=True)
        arts = os.path.join(self.scratch, fz, "artifacts") + "/"
        os.makedirs(arts, exist_ok=True)
        rc, out = self.run([path, "-seed=1337", "-max_total_time=%d" % self.fuzz_time,
                            "-timeout=25", "-rss_limit_mb=2560", "-artifact_prefix=" + arts]
                           + flags + [work], env, self.fuzz_time + 120)
        if "ParseDictionaryFile" in out:
            self.result(fz, "dictionary", False, tail_text(out, 2))
        m = re.search(r"^#(\d+)\s+DONE", out, re.M)
        found = os.listdir(arts)
        self.result(fz, "fuzz %ds" % self.fuzz_time, rc == 0 and not found,
                    "%s execs, exit %s%s" % (m.group(1) if m else "?", rc,
                                             "; found " + ", ".join(found) if found else ""))

    def check_afl(self, fz, seeds, flags):
        path = os.path.join(self.out, fz)
        env = runtime_env({"ASAN_OPTIONS": RUNTIME_ENV["ASAN_OPTIONS"] + ":abort_on_error=1:symbolize=0"})
        files = sorted(os.path.join(seeds, n) for n in os.listdir(seeds))
        rc, out = self.run([path] + files, env, 600)
        self.result(fz, "seed run", rc == 0, "exit %s over %d inputs (libAFLDriver, one by one)%s"
                    % (rc, len(files), "" if rc == 0 else ": " + tail_text(out, 4)))
        afl_out = os.path.join(self.scratch, fz, "afl")
        env.update(AFL_NO_UI="1", AFL_SKIP_CPUFREQ="1", AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES="1",
                   AFL_FAST_CAL="1", AFL_IGNORE_UNKNOWN_ENVS="1", AFL_TRY_AFFINITY="1")
        dicts = [f[6:] for f in flags if f.startswith("-dict=")]
        cmd = ["afl-fuzz", "-V", str(self.fuzz_time), "-m", "none", "-t", "25000", "-i", seeds,
               "-o", afl_out] + (["-x", dicts[0]] if dicts else []) + ["--", path]
        rc, out = self.run(cmd, env, self.fuzz_time + 180)
        ready = "All set and ready to roll" in out
        crashes = [n for n in os.listdir(os.path.join(afl_out, "default", "crashes"))
                   if n.startswith("id:")] if os.path.isdir(os.path.join(afl_out, "default", "crashes")) else []
        stats = {}
        sp = os.path.join(afl_out, "default", "fuzzer_stats")
        if os.path.isfile(sp):
            with open(sp) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    stats[k.strip()] = v.strip()
        edges = int(stats.get("edges_found", "0") or 0)
        self.result(fz, "coverage", ready and edges >= MIN_EDGES,
                    "%s; %d edges found (at least %d)"
                    % ("All set and ready to roll" if ready else
                       "afl-fuzz did not start: " + tail_text(out, 4), edges, MIN_EDGES))
        self.result(fz, "fuzz %ds" % self.fuzz_time, rc == 0 and ready and not crashes,
                    "%s execs, exit %s%s" % (stats.get("execs_done", "?"), rc,
                                             "; crashes " + ", ".join(crashes) if crashes else ""))

    def check_coverage(self, fz, seeds):
        import churn_coverage
        path = os.path.join(self.out, fz)
        profdir = os.path.join(self.scratch, fz, "profraw")
        rc, out, summary = churn_coverage.profile_and_summarize(path, [seeds], profdir)
        self.result(fz, "seed run", rc == 0, "exit %s over %d inputs%s"
                    % (rc, len(os.listdir(seeds)), "" if rc == 0 else ": " + tail_text(out, 4)))
        lines_cov = summary.get("covered", 0) if summary else 0
        self.result(fz, "coverage", lines_cov > 0,
                    "%s of %s lines covered in the copies and the core"
                    % (lines_cov, summary.get("lines", "?") if summary else "?"))

    def check(self, fz):
        seeds = self.seeds(fz)
        flags = self.options(fz)
        self.instrumentation(fz)
        if seeds is None:
            return
        if self.san == "coverage":
            self.check_coverage(fz, seeds)
        elif self.engine == "afl":
            self.check_afl(fz, seeds, flags)
        else:
            self.check_libfuzzer(fz, seeds, flags)


def build(config, out, work, log):
    env = config_env(config, out, work)
    t0 = time.time()
    with open(log, "w") as lf:
        lf.write("# %s\n" % " ".join("%s=%r" % (k, env[k]) for k in (
            "CC", "CXX", "CFLAGS", "CXXFLAGS", "LIB_FUZZING_ENGINE", "SANITIZER", "FUZZING_ENGINE",
            "OUT", "SRC", "WORK")))
        lf.flush()
        p = subprocess.run(["bash", os.path.join(REPO, "build.sh")], cwd=REPO, env=env,
                           stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
    return p.returncode, time.time() - t0


def cmd_oss_fuzz(args):
    if args.fuzz_time < 1:
        raise ChurnError("--fuzz-time must be at least 1 second, got %d" % args.fuzz_time)
    configs = list(dict.fromkeys(args.config or CONFIGS))
    need = ["objdump", "nm", "clang", "clang++"]
    if any(CONFIGS[c][0] == "afl" for c in configs):
        need += ["afl-clang-fast", "afl-fuzz"]
    if "coverage" in configs:
        need += ["llvm-profdata", "llvm-cov"]
    missing = [t for t in need if not shutil.which(t)]
    if any(CONFIGS[c][0] == "afl" for c in configs) and not os.path.isfile(AFL_DRIVER):
        missing.append(AFL_DRIVER)
    if missing:
        raise ChurnError("oss-fuzz check needs %s (apt-get install -y clang llvm binutils afl++)"
                         % ", ".join(missing), EXIT_ENV)
    keep = os.path.abspath(args.keep) if args.keep else None
    # Under out/work/ rather than /tmp, which some AFL++ tools refuse.
    os.makedirs(os.path.join(out_dir(), "work"), exist_ok=True)
    base = keep or tempfile.mkdtemp(prefix="ossfuzz-", dir=os.path.join(out_dir(), "work"))
    failed, t_all = [], time.time()
    try:
        for config in configs:
            out, work = os.path.join(base, config, "out"), os.path.join(base, config, "work")
            scratch = os.path.join(base, config, "check")
            for d in (out, work, scratch):
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
            log = os.path.join(base, config, "build.log")
            rc, secs = build(config, out, work, log)
            if rc != 0:
                with open(log, errors="replace") as f:
                    tail = tail_text(f.read(), 12)
                say("FAIL %s: build.sh exited %d after %s (log %s)\n%s"
                    % (config, rc, fmt_secs(secs), log, tail))
                failed.append("%s: build.sh exited %d" % (config, rc))
                continue
            fuzzers = fuzzer_binaries(out)
            say("%s: build.sh built %d fuzzers in %s: %s" % (config, len(fuzzers), fmt_secs(secs),
                                                            " ".join(fuzzers)))
            if not fuzzers:
                failed.append("%s: no fuzzer in $OUT" % config)
                continue
            t0 = time.time()
            ck = Checker(config, out, scratch, args.fuzz_time)
            for fz in fuzzers:
                ck.check(fz)
            failed += ck.failed
            say("%s: checked in %s" % (config, fmt_secs(time.time() - t0)))
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    say("")
    say("oss-fuzz check: %d configuration%s in %s; %s"
        % (len(configs), "" if len(configs) == 1 else "s", fmt_secs(time.time() - t_all),
           "%d failure%s" % (len(failed), "" if len(failed) == 1 else "s") if failed else "all passed"))
    for f in failed:
        say("  " + f)
    return EXIT_FAIL if failed else EXIT_OK


def add_parser(sub, formatter):
    s = sub.add_parser("oss-fuzz", formatter_class=formatter,
                       help="build.sh under OSS-Fuzz's configurations, checked like check_build",
                       description=__doc__.split("\n", 2)[2].replace("\n", " "),
                       epilog="configurations: %s.\nexit status 0 when every check passed, 1 on "
                       "any failure, 2 when a tool is missing." % ", ".join(CONFIGS))
    ssub = s.add_subparsers(dest="oss_fuzz_command", metavar="check")
    ssub.required = True
    c = ssub.add_parser("check", formatter_class=formatter,
                        help="build and check every fuzzer for each configuration",
                        description="Run build.sh with OSS-Fuzz's environment for each "
                        "configuration into a scratch $OUT, then check every fuzzer there.")
    c.add_argument("--config", action="append", choices=list(CONFIGS), default=None,
                   help="configuration to check (repeatable; default: all)")
    c.add_argument("--fuzz-time", type=int, default=10, metavar="S",
                   help="seconds of fuzzing per fuzzer with no toggles (default: 10)")
    c.add_argument("--keep", default=None, metavar="DIR",
                   help="build into DIR/CONFIG/{out,work,check} and keep it (default: a "
                   "temporary folder under out/work/, removed afterwards)")
    c.set_defaults(func=cmd_oss_fuzz)
