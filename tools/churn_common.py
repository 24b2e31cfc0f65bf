"""Shared pieces of the churn CLI: paths, errors, output, bugs.def, tool checks and building.

Python 3 standard library only.
"""

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUGS_DEF = os.path.join(REPO, "harness", "runtime", "bugs.def")

EXIT_OK = 0
EXIT_FAIL = 1  # a failed check, or a crash found
EXIT_ENV = 2  # usage or environment error


class ChurnError(Exception):
    """An error that ends the command with a message and an exit code (2 unless told)."""

    def __init__(self, message, code=EXIT_ENV):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# output


def say(msg=""):
    print(msg, flush=True)


def note(msg):
    print("churn: " + msg, flush=True)


def warn(msg):
    print("churn: warning: " + msg, file=sys.stderr, flush=True)


def rel(path):
    """A path relative to the repo when it is inside it, else absolute (for messages)."""
    ap = os.path.abspath(path)
    try:
        r = os.path.relpath(ap, REPO)
    except ValueError:
        return ap
    return ap if r.startswith("..") else r


def fmt_secs(s):
    s = int(round(s))
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%dh%02dm" % (s // 3600, (s % 3600) // 60)


def tail_text(text, lines=15):
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def run_captured(cmd, cwd, env, timeout):
    """Run cmd with no input, stdout and stderr together: (exit status, or None on timeout,
    output); a command that cannot be started is status 127."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, errors="replace", timeout=timeout)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.output or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        return None, out + "\n(timed out after %ds)" % timeout
    except OSError as e:
        return 127, "cannot run %s: %s" % (cmd[0], e.strerror or e)


def table(rows, header=None):
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    allrows = ([header] if header else []) + rows
    if not allrows:
        return ""
    ncol = max(len(r) for r in allrows)
    widths = [0] * ncol
    for r in allrows:
        for i, c in enumerate(r[:-1] if len(r) == ncol else r):
            widths[i] = max(widths[i], len(str(c)))
    out = []
    for r in allrows:
        cells = [str(c).ljust(widths[i]) if i < len(r) - 1 else str(c) for i, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
        if header is not None and r is header:
            out.append("  ".join("-" * max(widths[i], len(str(c))) for i, c in enumerate(r)))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# layout


def out_dir():
    """Where build.sh puts everything: $OUT when set (the OSS-Fuzz convention), else out/."""
    return os.path.abspath(os.environ.get("OUT") or os.path.join(REPO, "out"))


def binary(kind, name):
    """kind: libfuzzer, afl, replay (per fuzzer) or tests, bench, stress."""
    return os.path.join(out_dir(), kind, name)


def tsan_tests_binary():
    """The unit tests built under ThreadSanitizer (./build.sh tsan)."""
    return os.path.join(out_dir(), "tsan", "tests", "churn-tests")


def fuzzer_names():
    """The fuzz targets: CF_TARGET(name) lines of fuzzers/targets.def (the registry build.sh
    reads), else every fuzzers/*.c."""
    d = os.path.join(REPO, "fuzzers")
    reg = os.path.join(d, "targets.def")
    if os.path.isfile(reg):
        with open(reg, encoding="utf-8", errors="replace") as f:
            text = _strip_comments(f.read())
        return re.findall(r"^\s*CF_TARGET\(\s*([A-Za-z0-9_]+)\s*\)", text, re.M)
    if not os.path.isdir(d):
        return []
    return sorted(f[:-2] for f in os.listdir(d) if f.endswith(".c") and not f.startswith("."))


def check_target(name):
    names = fuzzer_names()
    if name not in names:
        raise ChurnError(
            "unknown fuzz target %r: not in fuzzers/targets.def (targets: %s)"
            % (name, ", ".join(names) or "none yet"))
    return name


def input_files(directory, skip=("index.json",)):
    """Regular files under directory, sorted, skipping dotfiles and the names in skip."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or f in skip:
                continue
            p = os.path.join(root, f)
            if os.path.isfile(p):
                found.append(p)
    return found


# ---------------------------------------------------------------------------------------------
# bugs.def


def _strip_comments(text):
    """Blank out C comments, keeping string literals and line numbers intact."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


_STR = r'"((?:[^"\\\n]|\\.)*)"'
_BUG_RE = re.compile(r"^\s*CF_BUG\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*" +
                     r"\s*,\s*".join([_STR] * 4) + r"\s*\)\s*$")
_ESC = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unescape(s):
    return re.sub(r"\\(.)", lambda m: _ESC.get(m.group(1), m.group(1)), s)


class Bug:
    def __init__(self, enum, id, system, description, upstream, line):
        self.enum, self.id, self.system = enum, id, system
        self.description, self.upstream, self.line = description, upstream, line


def load_bugs(path=BUGS_DEF):
    """Parse bugs.def: lines CF_BUG(ENUM, "id", "system", "description", "upstream")."""
    shown = rel(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ChurnError("cannot read %s: %s" % (shown, e.strerror or e))
    bugs, seen = [], {}
    for lineno, line in enumerate(_strip_comments(text).splitlines(), 1):
        if not line.strip():
            continue
        m = _BUG_RE.match(line)
        if not m:
            if "CF_BUG" in line:
                raise ChurnError('%s:%d: cannot parse; expected CF_BUG(ENUM, "id", "system", '
                                 '"description", "upstream") on one line' % (shown, lineno))
            continue
        enum, bid, system, desc, up = m.group(1), *(_unescape(g) for g in m.groups()[1:])
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", bid):
            raise ChurnError("%s:%d: bad toggle id %r (letters, digits, '.', '_', '-' only)"
                             % (shown, lineno, bid))
        if bid in seen:
            raise ChurnError("%s:%d: toggle id %r already defined on line %d"
                             % (shown, lineno, bid, seen[bid]))
        seen[bid] = lineno
        bugs.append(Bug(enum, bid, system, desc, up, lineno))
    return bugs


def parse_bug_ids(spec, what="--bugs"):
    """'id,id' or 'all' or '' -> list of ids, checked against bugs.def."""
    spec = (spec or "").strip()
    if not spec:
        return []
    bugs = load_bugs()
    valid = [b.id for b in bugs]
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    if ids == ["all"]:
        return valid
    unknown = [i for i in ids if i not in valid]
    if unknown:
        raise ChurnError("%s: unknown bug toggle%s %s (from %s); valid ids: %s"
                         % (what, "s" if len(unknown) > 1 else "", ", ".join(map(repr, unknown)),
                            rel(BUGS_DEF), ", ".join(valid) or "none defined"))
    return ids


# ---------------------------------------------------------------------------------------------
# tools and packages

APT_BASE = ["clang", "libclang-rt-dev", "llvm", "zip", "libhttp-parser-dev"]


def _libfuzzer_runtime_ok():
    clang = shutil.which("clang")
    if not clang:
        return False
    arch = platform.machine() or "x86_64"
    try:
        p = subprocess.run([clang, "-print-file-name=libclang_rt.fuzzer-%s.a" % arch],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    path = p.stdout.strip()
    return os.path.isabs(path) and os.path.exists(path)


def _http_parser_ok():
    """The HTTP layer's parser (harness/http/): its header compiles and its static library links."""
    cc = shutil.which(os.environ.get("CC") or "clang")
    try:
        return cc is not None and subprocess.run(
            [cc, "-x", "c", "-", "-o", os.devnull, "-l:libhttp_parser.a"],
            input="#include <http_parser.h>\nint main(void) { return !http_parser_version(); }\n",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, universal_newlines=True,
            timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# name -> (how to check, Debian package that provides it)
TOOLS = {
    "clang": (lambda: bool(shutil.which("clang")), "clang"),
    "libFuzzer runtime": (_libfuzzer_runtime_ok, "libclang-rt-dev"),
    "llvm-symbolizer": (lambda: bool(shutil.which("llvm-symbolizer")), "llvm"),
    "zip": (lambda: bool(shutil.which("zip")), "zip"),
    "afl-clang-fast": (lambda: bool(shutil.which("afl-clang-fast") and shutil.which("afl-fuzz")),
                       "afl++"),
    "http_parser.h": (_http_parser_ok, "libhttp-parser-dev"),
    # Only the real-server check of `churn test` (churn_serve.py) uses these two.
    "curl": (lambda: bool(shutil.which("curl")), "curl"),
    "wrk": (lambda: bool(shutil.which("wrk")), "wrk"),
}
BASE_TOOLS = ["clang", "libFuzzer runtime", "llvm-symbolizer", "zip", "http_parser.h"]


def can_apt():
    return (hasattr(os, "geteuid") and os.geteuid() == 0 and os.path.exists("/etc/debian_version")
            and bool(shutil.which("apt-get")))


def apt_line(pkgs):
    prefix = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return prefix + "apt-get install -y --no-install-recommends " + " ".join(pkgs)


def apt_install(pkgs):
    """Install Debian packages (root on Debian only). Returns True on success."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    note("installing %s with apt-get" % " ".join(pkgs))
    for cmd in (["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends"] + list(pkgs)):
        note("running: " + " ".join(cmd))
        if subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL) != 0:
            warn("'%s' failed" % " ".join(cmd))
            return False
    return True


def ensure_tools(required, optional=()):
    """Make sure the named TOOLS exist, installing them with apt-get when root on Debian.

    A missing required tool raises ChurnError (exit 2) with the exact install line; a missing
    optional tool only gives a note. Returns the set of optional tools still missing."""
    missing = [t for t in list(required) + list(optional) if not TOOLS[t][0]()]
    if missing and can_apt():
        pkgs = []
        for t in missing:
            if TOOLS[t][1] not in pkgs:
                pkgs.append(TOOLS[t][1])
        apt_install(pkgs)
        missing = [t for t in missing if not TOOLS[t][0]()]
    req_missing = [t for t in missing if t in required]
    if req_missing:
        pkgs = []
        for t in missing:  # the optional ones too, so one line installs everything
            if TOOLS[t][1] not in pkgs:
                pkgs.append(TOOLS[t][1])
        raise ChurnError("missing %s; install with:\n  %s"
                         % (", ".join(missing), apt_line(pkgs)))
    opt_missing = {t for t in missing if t in optional}
    for t in sorted(opt_missing):
        note("%s not found (install: %s); skipping what needs it" % (t, apt_line([TOOLS[t][1]])))
    return opt_missing


# ---------------------------------------------------------------------------------------------
# building

SOURCE_DIRS = ("harness", "fuzzers", "tests")
SOURCE_FILES = ("build.sh",)


def newest_source():
    """(mtime, path) of the newest build input, or (0, None)."""
    best = (0.0, None)
    paths = [os.path.join(REPO, f) for f in SOURCE_FILES]
    for d in SOURCE_DIRS:
        for root, dirs, files in os.walk(os.path.join(REPO, d)):
            dirs[:] = [x for x in dirs if not x.startswith(".")]
            paths.extend(os.path.join(root, f) for f in files if not f.startswith("."))
    for p in paths:
        try:
            m = os.stat(p).st_mtime
        except OSError:
            continue
        if m > best[0]:
            best = (m, p)
    return best


def stale_reason(paths):
    """Why the given build outputs need (re)building, or None when they are up to date."""
    newest, src = newest_source()
    for p in paths:
        if not os.path.exists(p):
            return "%s is missing" % rel(p)
        if os.stat(p).st_mtime < newest:
            return "%s is newer than %s" % (rel(src), rel(p))
    return None


BUILD_PARTS = ("libfuzzer", "afl", "replay", "tests", "tsan", "bench", "stress")
# What ./build.sh stress makes (out/stress/).
STRESS_BINARIES = ("toy-stress", "tls-stress", "kernel-real-check", "httpz-serve", "httpz-stress",
                   "btc-serve", "btc-stress", "bun-serve")


def expected_outputs(parts, afl_ok):
    """What build.sh must produce for the given parts (build.sh targets; empty means all)."""
    parts = list(parts) or [p for p in BUILD_PARTS if p != "afl" or afl_ok]
    outs = []
    for part in parts:
        if part in ("libfuzzer", "afl", "replay"):
            outs += [binary(part, f) for f in fuzzer_names()]
        elif part == "tests":
            outs.append(binary("tests", "churn-tests"))
        elif part == "tsan":
            outs.append(tsan_tests_binary())
        elif part == "bench":
            outs.append(binary("bench", "bench-runtime"))
        elif part == "stress":
            outs += [binary("stress", n) for n in STRESS_BINARIES]
    return outs


def run_build(parts=(), force=False):
    """Check the tools, run ./build.sh [PARTS...], check its outputs. Raises ChurnError."""
    parts = list(parts)
    script = os.path.join(REPO, "build.sh")
    if not os.path.isfile(script):
        raise ChurnError("cannot build: %s does not exist" % rel(script))
    if "afl" in parts:
        ensure_tools(BASE_TOOLS + ["afl-clang-fast"])
        afl_ok = True
    else:
        afl_ok = not ensure_tools(BASE_TOOLS, ["afl-clang-fast"])
    cmd = (["./build.sh"] if os.access(script, os.X_OK) else ["bash", "build.sh"]) + parts
    env = dict(os.environ)
    if "OUT" in env:
        env["OUT"] = out_dir()  # absolute: build.sh runs from the repo root
    if force:
        env["FORCE"] = "1"
    note("building %s: %s%s (into %s)" % (" ".join(parts) or "everything", "FORCE=1 " if force
                                            else "", " ".join(cmd), rel(out_dir())))
    t0 = time.time()
    rc = subprocess.call(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    if rc != 0:
        raise ChurnError("build failed: %s exited with status %d" % (" ".join(cmd), rc), EXIT_FAIL)
    missing = [rel(p) for p in expected_outputs(parts, afl_ok) if not os.path.exists(p)]
    if missing:
        raise ChurnError("build.sh succeeded but did not produce: %s" % ", ".join(missing),
                         EXIT_FAIL)
    note("build done in %s" % fmt_secs(time.time() - t0))
    return afl_ok


def ensure_built(paths, parts=()):
    """Run build.sh PARTS when any of paths is missing or older than the sources."""
    why = stale_reason(paths)
    if why is None:
        return
    if not os.path.isfile(os.path.join(REPO, "build.sh")):
        missing = [rel(p) for p in paths if not os.path.exists(p)]
        if missing:
            raise ChurnError("%s missing and build.sh does not exist to build it"
                             % ", ".join(missing))
        return  # stale but nothing to rebuild with: use what is there
    note("build needed: " + why)
    run_build(parts)
    missing = [rel(p) for p in paths if not os.path.exists(p)]
    if missing:
        raise ChurnError("build.sh did not produce %s" % ", ".join(missing), EXIT_FAIL)


def bugs_env(ids):
    env = dict(os.environ)
    env["CHURN_BUGS"] = ",".join(ids)
    return env


# ---------------------------------------------------------------------------------------------
# crash metadata: which target and toggles a file belongs to


def sha1_file(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def sidecar_path(path):
    """Metadata of a saved crash sits next to it as a dotfile (.<name>.json), which the replay
    binary and input_files() skip, so a crash folder still replays as a folder of inputs."""
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, "." + name + ".json")


def read_json(path):
    """A JSON file as an object, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path, data):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def read_sidecar(path):
    return read_json(sidecar_path(path))


def write_sidecar(path, meta):
    write_json(sidecar_path(path), meta)


def crash_dir(target):
    return os.path.join(out_dir(), "crashes", target)


def minimized_dir(target):
    return os.path.join(out_dir(), "minimized", target)


def last_fuzz_path(target):
    """What the last `churn fuzz TARGET` ran with (target, toggles, engine, seed)."""
    return os.path.join(crash_dir(target), ".last-fuzz.json")


def looks_like_afl_crash(path):
    name = os.path.basename(path)
    return name.startswith(("id:", "afl-", "id-"))


def fuzzer_from_path(path):
    """The fuzzer a path belongs to by where it lies: corpus/F/, repros/F/, or out/crashes/F/,
    out/minimized/F/, out/work/F/; None otherwise."""
    ap = os.path.abspath(path)
    names = set(fuzzer_names())
    for top, depth in ((REPO, ("corpus", "repros")), (out_dir(), ("crashes", "minimized", "work"))):
        r = os.path.relpath(ap, top)
        parts = r.split(os.sep)
        if not r.startswith("..") and len(parts) >= 2 and parts[0] in depth and parts[1] in names:
            return parts[1]
    return None


def repro_entry(path):
    """The repros/F/index.json entry of a committed repro file, or None."""
    ap = os.path.abspath(path)
    d = os.path.dirname(ap)
    if os.path.dirname(d) != os.path.join(REPO, "repros"):
        return None
    data = read_json(os.path.join(d, "index.json")) or {}
    for e in data.get("repros") or []:
        if isinstance(e, dict) and e.get("file") == os.path.basename(ap):
            return e
    return None


class CrashContext:
    """Target and toggles of an input file, with where each was learnt (for messages)."""

    def __init__(self, path, target, bugs, target_from, bugs_from, meta):
        self.path, self.target, self.bugs = os.path.abspath(path), target, list(bugs)
        self.target_from, self.bugs_from, self.meta = target_from, bugs_from, meta or {}

    def describe(self):
        toggles = ",".join(self.bugs) or "none"
        if self.target_from == self.bugs_from:
            return "target %s, toggles %s (%s)" % (self.target, toggles, self.bugs_from)
        return "target %s (%s), toggles %s (%s)" % (self.target, self.target_from, toggles,
                                                    self.bugs_from)


def resolve_context(path, target=None, bugs_spec=None):
    """Work out the fuzz target and the toggles for an input file.

    Flags win; then the file's sidecar (written by `churn fuzz` / `churn minimize`); then where
    the file lies (repros/F/ takes the toggles from the index, corpus/F/ none, out/crashes/F/
    and out/minimized/F/ those of the last `churn fuzz F`). Raises ChurnError (exit 2) naming
    the file and the missing flag when neither can be told."""
    shown = rel(path)
    if not os.path.isfile(path):
        raise ChurnError("%s: no such file" % shown)
    meta = read_sidecar(path) or {}
    where = fuzzer_from_path(path)
    if target:
        target_from = "--target"
    elif meta.get("target"):
        target, target_from = meta["target"], "from " + rel(sidecar_path(path))
    elif where:
        target, target_from = where, "from the path"
    else:
        raise ChurnError("%s: cannot tell which fuzz target it belongs to (no sidecar, not under "
                         "corpus/F/, repros/F/ or out/crashes/F/); pass --target" % shown)
    check_target(target)
    if bugs_spec is not None:
        return CrashContext(path, target, parse_bug_ids(bugs_spec), target_from, "--bugs", meta)
    if isinstance(meta.get("bugs"), list):
        return CrashContext(path, target, parse_bug_ids(",".join(meta["bugs"])), target_from,
                            "from " + rel(sidecar_path(path)), meta)
    entry = repro_entry(path)
    if entry and isinstance(entry.get("bugs"), list):
        return CrashContext(path, target, parse_bug_ids(",".join(entry["bugs"])), target_from,
                            "from repros/%s/index.json" % target, meta)
    r = os.path.relpath(os.path.abspath(path), REPO).split(os.sep)
    if r[0] == "corpus":
        return CrashContext(path, target, [], target_from, "corpus files run with none", meta)
    last = read_json(last_fuzz_path(target))
    if last and isinstance(last.get("bugs"), list) and where == target:
        return CrashContext(path, target, parse_bug_ids(",".join(last["bugs"])), target_from,
                            "from the last `churn fuzz %s` (%s)" % (target,
                                                                    rel(last_fuzz_path(target))),
                            dict(last, from_last_fuzz=True))
    raise ChurnError("%s: no record of the toggles it was found with (no sidecar %s, no last "
                     "`churn fuzz %s` run); pass --bugs IDS" % (shown, rel(sidecar_path(path)),
                                                                 target))


def sanitize_name(name):
    """A repro name: letters, digits, '.', '_' and '-' only, no leading dot or dash."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip())
    s = re.sub(r"-{2,}", "-", s).strip("-.")
    return s[:80]
