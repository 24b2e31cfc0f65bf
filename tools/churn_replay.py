"""Replaying corpus and repro files as tests (`churn replay`), with the repro index checks."""

import json
import os
import subprocess

from churn_common import (EXIT_FAIL, EXIT_OK, REPO, ChurnError, binary, ensure_built,
                          fuzzer_names, input_files, load_bugs, note, out_dir, parse_bug_ids, rel,
                          say, tail_text)

BATCH = 64  # files per replay-binary invocation


class Checks:
    """Counts checks and prints one line per check: `ok NAME` or `FAIL NAME: REASON`."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        self.passed += 1
        say("ok " + name)

    def fail(self, name, reason):
        self.failed += 1
        lines = str(reason).rstrip("\n").splitlines() or [""]
        say("FAIL %s: %s" % (name, lines[0]))
        for extra in lines[1:]:
            say("    " + extra)

    def summary(self):
        say("%d passed, %d failed" % (self.passed, self.failed))
        return EXIT_FAIL if self.failed else EXIT_OK


class Item:
    """One file to replay, with what is expected of it."""

    def __init__(self, kind, fuzzer, path, entry=None, bugs=()):
        self.kind = kind  # corpus | repro | other
        self.fuzzer = fuzzer
        self.path = os.path.abspath(path)
        self.shown = rel(path)
        self.entry = entry
        self.bugs = tuple(bugs)  # for "other" files: the toggles to replay with


# ---------------------------------------------------------------------------------------------
# repro index


def load_index(fuzzer, checks):
    """Read repros/<fuzzer>/index.json; report problems as failed checks.

    Returns {file name: entry} for the entries that are well formed."""
    d = os.path.join(REPO, "repros", fuzzer)
    ipath = os.path.join(d, "index.json")
    shown = rel(ipath)
    files = [os.path.relpath(p, d) for p in input_files(d)]
    if not os.path.exists(ipath):
        for f in files:
            checks.fail(rel(os.path.join(d, f)), "not listed: %s does not exist" % shown)
        return {}
    try:
        with open(ipath, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as e:
        checks.fail(shown, "cannot read: %s" % (e.strerror or e))
        return {}
    except ValueError as e:
        checks.fail(shown, "invalid JSON: %s" % e)
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("repros"), list):
        checks.fail(shown, 'expected an object {"repros": [...]}')
        return {}
    valid_ids = {b.id for b in load_bugs()}
    entries = {}
    for n, e in enumerate(data["repros"]):
        where = "%s entry %d" % (shown, n)
        if not isinstance(e, dict):
            checks.fail(where, "not an object")
            continue
        name = e.get("file")
        if not isinstance(name, str) or not name or name.startswith("/") or ".." in name.split("/"):
            checks.fail(where, '"file" must be a file name inside %s' % rel(d))
            continue
        where = "%s (%s)" % (shown, name)
        bugs, sig = e.get("bugs"), e.get("signature")
        problems = []
        if not isinstance(bugs, list) or not bugs or not all(isinstance(b, str) for b in bugs):
            problems.append('"bugs" must be a non-empty list of toggle ids')
        else:
            unknown = [b for b in bugs if b not in valid_ids]
            if unknown:
                problems.append("unknown toggle%s %s (valid: %s)" % (
                    "s" if len(unknown) > 1 else "", ", ".join(unknown),
                    ", ".join(sorted(valid_ids))))
        if not isinstance(sig, str) or not sig.strip():
            problems.append('"signature" must be a non-empty string')
        if name in entries:
            problems.append("listed twice")
        fpath = os.path.join(d, name)
        if not os.path.isfile(fpath):
            problems.append("listed in %s but the file is missing" % shown)
        elif "size" in e and e["size"] != os.path.getsize(fpath):
            problems.append("index says size %s, the file has %d bytes"
                            % (e["size"], os.path.getsize(fpath)))
        if problems:
            checks.fail(where if os.path.isfile(fpath) else rel(fpath), "; ".join(problems))
            entries.setdefault(name, None)
            continue
        entries[name] = e
    for f in files:
        if f not in entries:
            checks.fail(rel(os.path.join(d, f)), "not listed in %s" % shown)
    return {k: v for k, v in entries.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# planning: which files, which fuzzer, what is expected


def _dirs(top):
    d = os.path.join(REPO, top)
    if not os.path.isdir(d):
        return []
    return sorted(x for x in os.listdir(d) if os.path.isdir(os.path.join(d, x))
                  and not x.startswith("."))


def _repro_items(fuzzer, checks, only=None):
    entries = load_index(fuzzer, checks)
    d = os.path.join(REPO, "repros", fuzzer)
    items = []
    for name, e in sorted(entries.items()):
        p = os.path.join(d, name)
        if only is None or os.path.abspath(p) in only:
            items.append(Item("repro", fuzzer, p, entry=e))
    return items


def plan(paths, target, bugs, checks):
    """Turn command-line paths (or none: everything) into Items."""
    items = []
    if not paths:
        for f in _dirs("corpus"):
            items += [Item("corpus", f, p) for p in input_files(os.path.join(REPO, "corpus", f))]
        for f in _dirs("repros"):
            items += _repro_items(f, checks)
        return items
    repro_sel = {}  # fuzzer -> set of files, or None for the whole folder
    for arg in paths:
        ap = os.path.abspath(arg)
        if not os.path.exists(ap):
            raise ChurnError("%s: no such file or directory" % arg)
        r = os.path.relpath(ap, REPO)
        parts = [] if r.startswith("..") else r.split(os.sep)
        ro = os.path.relpath(ap, out_dir()).split(os.sep)
        if parts and parts[0] == "corpus":
            fuzzers = [parts[1]] if len(parts) > 1 else _dirs("corpus")
            for f in fuzzers:
                if len(parts) > 2 and os.path.isfile(ap):
                    items.append(Item("corpus", f, ap))
                else:
                    top = ap if len(parts) > 1 else os.path.join(REPO, "corpus", f)
                    items += [Item("corpus", f, p) for p in input_files(top)]
        elif parts and parts[0] == "repros":
            fuzzers = [parts[1]] if len(parts) > 1 else _dirs("repros")
            for f in fuzzers:
                if len(parts) <= 2 or os.path.basename(ap) == "index.json":
                    repro_sel[f] = None  # the whole folder
                elif repro_sel.get(f, set()) is not None:
                    sel = input_files(ap) if os.path.isdir(ap) else [ap]
                    repro_sel.setdefault(f, set()).update(os.path.abspath(p) for p in sel)
        else:
            fuzzer = target
            if not fuzzer and ro[0] == "crashes" and len(ro) >= 2:
                fuzzer = ro[1]
            if not fuzzer:
                raise ChurnError("%s: cannot tell which fuzzer it belongs to (not under "
                                 "corpus/<fuzzer>/ or repros/<fuzzer>/); pass --target" % arg)
            files = input_files(ap, skip=()) if os.path.isdir(ap) else [ap]
            items += [Item("other", fuzzer, p, bugs=bugs) for p in files]
    for f, sel in sorted(repro_sel.items()):
        # files named here but missing from the index are reported by load_index
        items += _repro_items(f, checks, only=sel)
    seen, unique = set(), []
    for it in items:
        key = (it.kind, it.path)
        if key not in seen:
            seen.add(key)
            unique.append(it)
    return unique


# ---------------------------------------------------------------------------------------------
# running the replay binary


def run_batch(fuzzer, shown_paths, bugs, repeat, timeout):
    """Run out/replay/<fuzzer> --hash --repeat N on files; returns ({path: (hash, fail)}, rc, err)."""
    rb = binary("replay", fuzzer)
    cmd = [rb, "--hash", "--repeat", str(repeat), "--timeout", str(timeout)] + list(shown_paths)
    env = dict(os.environ, CHURN_BUGS=",".join(bugs))
    limit = timeout * repeat * len(shown_paths) + 120
    try:
        p = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, errors="replace", timeout=limit)
    except subprocess.TimeoutExpired:
        return {}, None, "replay binary still running after %ds; killed" % limit
    except OSError as e:
        return {}, None, "cannot run %s: %s" % (rel(rb), e.strerror or e)
    res = {}
    for line in p.stdout.splitlines():
        for sp in shown_paths:
            if line.startswith("HASH %s " % sp):
                h = line[len(sp) + 6:].strip()
                res.setdefault(sp, [None, None])[0] = h
            elif line.startswith("FAIL %s: " % sp):
                res.setdefault(sp, [None, None])[1] = line[len(sp) + 7:].strip()
    return res, p.returncode, p.stderr


def replay_group(fuzzer, shown_paths, bugs, repeat, timeout, progress_label):
    """Batches, with a per-file retry for files the batch gave no result for."""
    results, errors = {}, {}
    for i in range(0, len(shown_paths), BATCH):
        chunk = shown_paths[i:i + BATCH]
        if len(shown_paths) > BATCH:
            note("%s: files %d-%d of %d" % (progress_label, i + 1, i + len(chunk),
                                             len(shown_paths)))
        res, rc, err = run_batch(fuzzer, chunk, bugs, repeat, timeout)
        results.update(res)
        missing = [sp for sp in chunk if sp not in res]
        if missing and len(chunk) > 1:
            for sp in missing:
                r1, rc1, err1 = run_batch(fuzzer, [sp], bugs, repeat, timeout)
                results.update(r1)
                if sp not in r1:
                    errors[sp] = (rc1, err1)
        else:
            for sp in missing:
                errors[sp] = (rc, err)
    return results, errors


def _no_result(rc, err):
    status = "killed" if rc is None else ("signal %d" % -rc if rc < 0 else "exit status %d" % rc)
    return "no result from the replay binary (%s)%s" % (
        status, (":\n" + tail_text(err, 6)) if err and err.strip() else "")


def replay_checks(checks, paths=(), target=None, bugs=(), repeat=10, timeout=25):
    """Run every replay check, counting into checks."""
    items = plan(list(paths), target, list(bugs), checks)
    known = set(fuzzer_names())
    by_fuzzer = {}
    for it in items:
        by_fuzzer.setdefault(it.fuzzer, []).append(it)
    for fuzzer, its in sorted(by_fuzzer.items()):
        if fuzzer not in known:
            for it in its:
                checks.fail(it.shown, "no fuzz target named %s in fuzzers/targets.def" % fuzzer)
            continue
        ensure_built([binary("replay", fuzzer)], ["replay"])
        # (bugs, expected signature or None) -> items
        groups = {}
        for it in its:
            if it.kind == "repro":
                groups.setdefault(tuple(it.entry["bugs"]), []).append((it, it.entry["signature"]))
                groups.setdefault((), []).append((it, None))
            elif it.kind == "corpus":
                groups.setdefault((), []).append((it, None))
            else:
                groups.setdefault(it.bugs, []).append((it, "any"))
        for bugset, pairs in sorted(groups.items()):
            label = "replay %s with CHURN_BUGS=%s (%d file%s x%d)" % (
                fuzzer, ",".join(bugset) or "''", len(pairs), "" if len(pairs) == 1 else "s",
                repeat)
            note(label)
            shown = sorted({it.shown for it, _ in pairs})
            results, errors = replay_group(fuzzer, shown, bugset, repeat, timeout, label)
            toggles = ",".join(bugset) or "no toggles"
            for it, want in pairs:
                if it.kind == "other":
                    name = "%s passes (%s, x%d)" % (it.shown, toggles, repeat)
                elif want is None:
                    name = "%s passes (%s, x%d)" % (it.shown, toggles, repeat)
                else:
                    name = "%s fails as %s (%s, x%d)" % (it.shown, want, toggles, repeat)
                if it.shown in errors:
                    checks.fail(name, _no_result(*errors[it.shown]))
                    continue
                h, sig = results[it.shown]
                if want in (None, "any"):
                    if sig is None and h:
                        checks.ok(name)
                    elif sig is None:
                        checks.fail(name, "the replay binary printed no HASH line for it")
                    elif sig.startswith("nondeterministic"):
                        checks.fail(name, "%s over %d runs" % (sig, repeat))
                    else:
                        checks.fail(name, "fails with CHURN_BUGS=%s: %s"
                                    % (",".join(bugset) or "''", sig))
                else:
                    if sig == want:
                        checks.ok(name)
                    elif sig is None:
                        checks.fail(name, "passes with CHURN_BUGS=%s; expected FAIL with %s"
                                    % (",".join(bugset), want))
                    elif sig.startswith("nondeterministic"):
                        checks.fail(name, "%s over %d runs" % (sig, repeat))
                    else:
                        checks.fail(name, "fails with %s; expected %s" % (sig, want))
    return checks


def cmd_replay(args):
    if args.repeat < 1:
        raise ChurnError("--repeat must be at least 1")
    bugs = parse_bug_ids(args.bugs)
    if args.target and args.target not in fuzzer_names():
        raise ChurnError("--target: unknown fuzzer %r (not in fuzzers/targets.def; targets: %s)"
                         % (args.target, ", ".join(fuzzer_names()) or "none"))
    checks = Checks()
    replay_checks(checks, args.paths, args.target, bugs, args.repeat, args.timeout)
    if checks.passed + checks.failed == 0:
        note("nothing to replay (corpus/*/ and repros/*/ hold no files)" if not args.paths
             else "nothing to replay")
    return checks.summary()
