"""Committing repros: `churn repro add` (verify, copy, index) and `churn repro list`.

A repro is accepted only if it is what `churn replay` will demand of it later: it fails with one
signature and one trace hash on every run with its toggles on, and passes with none.
"""

import json
import os
import shutil

from churn_common import (EXIT_FAIL, EXIT_OK, REPO, ChurnError, binary, check_target,
                          ensure_built, fuzzer_names, load_bugs, looks_like_afl_crash, note, rel,
                          resolve_context, sanitize_name, say, sha1_file, table)
from churn_replay import run_batch

VERIFY_RUNS = 10  # the same count `churn replay` uses by default
NONDETERMINISM = ("nondeterministic", "passed once", "failed once", "a different signature")


def repros_root(args_root=None):
    return os.path.abspath(args_root) if args_root else os.path.join(REPO, "repros")


def _index_path(root, fuzzer):
    return os.path.join(root, fuzzer, "index.json")


def load_index_entries(root, fuzzer):
    """The entries of <root>/<fuzzer>/index.json ([] when there is none yet)."""
    path = _index_path(root, fuzzer)
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ChurnError("%s: cannot read the repro index: %s" % (rel(path), e))
    if not isinstance(data, dict) or not isinstance(data.get("repros"), list):
        raise ChurnError('%s: expected an object {"repros": [...]}' % rel(path))
    return data["repros"]


def write_index(root, fuzzer, entries):
    """Entries in bugs.def order of their toggles. Python's sort is stable: entries that tie
    keep their place, so adding an entry moves nothing else and the diff is the new entry."""
    order = {b.id: i for i, b in enumerate(load_bugs())}

    def key(e):
        bugs = e.get("bugs") or []
        return (min((order.get(b, len(order)) for b in bugs), default=len(order)),)

    entries = sorted(entries, key=key)
    path = _index_path(root, fuzzer)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        # the committed format: two-space indent, no final newline
        json.dump({"repros": entries}, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)


def _verify(target, path, bugs):
    """Raise ChurnError (exit 1) with the reason unless path fails the same way VERIFY_RUNS
    times with bugs and passes VERIFY_RUNS times with none. Returns the signature."""
    shown = rel(path)
    res, rc, err = run_batch(target, [shown], bugs, VERIFY_RUNS, 25)
    if shown not in res:
        raise ChurnError("%s: the replay binary gave no result (exit status %s): %s"
                         % (shown, rc, (err or "").strip()[-400:]))
    h, sig = res[shown]
    if sig is None:
        raise ChurnError("%s: refused: passes with CHURN_BUGS=%s, so it reproduces nothing"
                         % (shown, ",".join(bugs)), EXIT_FAIL)
    if sig.startswith(NONDETERMINISM):
        raise ChurnError("%s: refused: not deterministic with CHURN_BUGS=%s over %d runs: %s"
                         % (shown, ",".join(bugs), VERIFY_RUNS, sig), EXIT_FAIL)
    res, rc, err = run_batch(target, [shown], [], VERIFY_RUNS, 25)
    if shown not in res:
        raise ChurnError("%s: the replay binary gave no result with CHURN_BUGS empty (exit "
                         "status %s)" % (shown, rc))
    h0, sig0 = res[shown]
    if sig0 is not None:
        raise ChurnError("%s: refused: also fails with CHURN_BUGS empty (%s), so it is not a "
                         "repro of %s" % (shown, sig0, ",".join(bugs)), EXIT_FAIL)
    return sig, h


def _default_note(meta, found_by):
    parts = []
    if meta.get("time_to_find") is not None:
        parts.append("found by churn fuzz (%s%s) in %.1fs" % (
            found_by, ", seed %s" % meta["seed"] if meta.get("seed") is not None else "",
            meta["time_to_find"]))
    if meta.get("minimized_by"):
        how = "afl-tmin" if meta["minimized_by"] == "afl" else "-minimize_crash=1"
        if meta.get("size") is not None and meta.get("size") == meta.get("original_size"):
            parts.append("%s found nothing smaller with the same signature" % how)
        else:
            parts.append("minimized with %s from %s bytes" % (how, meta.get("original_size", "?")))
    return ", ".join(parts) or "added with churn repro add"


def cmd_repro_add(args):
    ctx = resolve_context(args.file, args.target, args.bugs)
    if not ctx.bugs:
        raise ChurnError("%s: a repro needs at least one toggle (%s); pass --bugs IDS"
                         % (rel(ctx.path), ctx.bugs_from))
    name = sanitize_name(args.name)
    if not name:
        raise ChurnError("--name %r has nothing left after keeping letters, digits, '.', '_' "
                         "and '-'" % args.name)
    ensure_built([binary("replay", ctx.target)], ["replay"])
    note("verifying %s: %s; must fail alike %dx with its toggles and pass %dx without"
         % (rel(ctx.path), ctx.describe(), VERIFY_RUNS, VERIFY_RUNS))
    sig, trace_hash = _verify(ctx.target, ctx.path, ctx.bugs)
    digest = sha1_file(ctx.path)
    root = repros_root(args.repros_dir)
    fname = "%s-%s" % (name, digest[:12])
    entries = load_index_entries(root, ctx.target)
    for e in entries:
        other = e.get("file", "")
        if other != fname and other.endswith("-" + digest[:12]):
            raise ChurnError("%s: refused: the same input is already committed as %s"
                             % (rel(ctx.path), rel(os.path.join(root, ctx.target, other))),
                             EXIT_FAIL)
    meta = ctx.meta
    found_by = args.found_by or (meta.get("engine") if meta.get("engine") in ("libfuzzer", "afl")
                                 else None)
    if not found_by:
        found_by = "afl" if looks_like_afl_crash(ctx.path) else "libfuzzer"
        note("found_by: %s (guessed from the file name; pass --found-by to say)" % found_by)
    upstream = args.upstream
    if upstream is None:
        ups = {b.id: b.upstream for b in load_bugs()}
        upstream = "; ".join(dict.fromkeys(ups[b] for b in ctx.bugs))
    entry = {"file": fname, "bugs": list(ctx.bugs), "signature": sig, "upstream": upstream,
             "found_by": found_by, "size": os.path.getsize(ctx.path),
             "note": args.note if args.note is not None else _default_note(meta, found_by)}
    dest_dir = os.path.join(root, ctx.target)
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, fname)
    shutil.copyfile(ctx.path, dest)
    replaced = any(e.get("file") == fname for e in entries)
    if replaced:
        entries = [entry if e.get("file") == fname else e for e in entries]
    else:
        entries.append(entry)
    write_index(root, ctx.target, entries)
    say("")
    say("== churn repro add ==")
    say("repro     %s (%d B)" % (rel(dest), entry["size"]))
    if trace_hash and trace_hash.strip("0"):
        say("signature %s (trace hash %s, same over %d runs)" % (sig, trace_hash, VERIFY_RUNS))
    else:  # sanitizer reports come without the runtime's hash at the failure
        say("signature %s (same over %d runs)" % (sig, VERIFY_RUNS))
    say("toggles   %s; passes %dx with CHURN_BUGS empty" % (",".join(ctx.bugs), VERIFY_RUNS))
    say("index     %s (%s entry)" % (rel(_index_path(root, ctx.target)),
                                     "replaced its" if replaced else "added an"))
    if root == repros_root():
        say("check     ./churn replay %s" % rel(dest))
    return EXIT_OK


def cmd_repro_list(args):
    root = repros_root(args.repros_dir)
    if args.target:
        fuzzers = [check_target(args.target)]
    else:
        fuzzers = [f for f in fuzzer_names() if os.path.exists(_index_path(root, f))]
    rows = []
    for f in fuzzers:
        for e in load_index_entries(root, f):
            rows.append([f, e.get("file", "?"), ",".join(e.get("bugs") or []),
                         e.get("signature", "?"), str(e.get("size", "?")),
                         e.get("found_by", "?"), e.get("upstream", "")])
    if not rows:
        say("no repros under %s" % rel(root))
        return EXIT_OK
    say(table(rows, ["fuzzer", "file", "toggles", "signature", "size", "found by", "upstream"]))
    say("")
    say("%d repro%s in %s" % (len(rows), "" if len(rows) == 1 else "s", rel(root)))
    return EXIT_OK


def cmd_repro(args):
    if args.repro_command == "add":
        return cmd_repro_add(args)
    return cmd_repro_list(args)

