"""The report of `churn bench matrix`: docs/BENCHMARKS.md (tables), its SVG plot and a text
summary, all computed from the cells' runs (churn_matrix.py), so `--from-json` can rewrite
them without measuring again."""

import os
import statistics

import churn_matrix_svg

LABEL = {"libfuzzer": "libFuzzer", "afl": "AFL++", "nointerleave": "libFuzzer, no interleaving",
         "transitions": "libFuzzer, transitions",
         "random": "random simulation", "pct": "PCT", "threads": "real threads"}
PCT_THREADS = 3  # the ladder's fibers: main and two workers (PCT's n)


def _beside(doc, ext):
    """docs/BENCHMARKS.md -> docs/benchmarks<ext>: only the file's own name is lowercased, so
    a report under a directory with capitals still gets its plot and results next to it."""
    folder, name = os.path.split(os.path.splitext(doc)[0])
    return os.path.join(folder, name.lower() + ext)


def svg_path(doc):
    return _beside(doc, ".svg")


def json_path(doc):
    return _beside(doc, ".json")


def cell_stats(cell):
    """Median and maximum seconds and executions to the toggle's failure, with runs that did
    not find it counted as infinite (so a median over them is `>cap`); None when nothing ran."""
    runs = [r for r in cell.runs if not r.error]
    if not runs:
        return None
    inf = float("inf")
    secs = [r.seconds if r.found else inf for r in runs]
    execs = [(r.execs if r.execs is not None else None) if r.found else inf for r in runs]
    known_execs = [e for e in execs if e is not None]
    rates = [r.exec_per_sec for r in runs if r.exec_per_sec]
    # A capped run's executions are a lower bound on what it needed, and a median is monotone
    # in every element, so the median over found counts and capped runs' counts bounds the
    # true median from below (None when a run counted nothing).
    bounds = [r.execs if r.found else r.searched for r in runs]
    return {"median_execs_at_least": statistics.median(bounds)
            if all(b is not None for b in bounds) else None,
            "n": len(runs), "found": sum(r.found for r in runs),
            "median_s": statistics.median(secs), "max_s": max(secs),
            "median_execs": statistics.median(known_execs) if known_execs and
            len(known_execs) == len(execs) else None,
            "exec_per_sec": statistics.median(rates) if rates else None,
            "other": sum(1 for r in runs if not r.found and r.signature),
            "alt": sum(1 for r in runs if r.found and r.signature and
                       r.signature != cell.expected),
            "longest": max((r.longest or 0) for r in runs) or None}


def _secs(s, cap):
    if s == float("inf"):
        return ">%d" % cap
    return "%.2f" % s if s < 10 else "%.0f" % s


def _count(n):
    if n is None:
        return "-"
    if n == float("inf"):
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return "%.1f%s" % (n / div, unit)
    return "%d" % n


def _ladder_count(v):
    """Median executions, or `>N` when the median run hit the cap after N executions."""
    if isinstance(v, tuple):
        return ">%s" % _count(v[1]) if v[1] else ">cap"
    return _count(v)


def cell_text(cell, cap):
    if cell.na:
        return "n/a"
    st = cell_stats(cell)
    if st is None:
        return "error" if cell.runs else "-"
    text = "%s s (max %s)" % (_secs(st["median_s"], cap), _secs(st["max_s"], cap))
    if st["median_s"] != float("inf") and st["median_execs"] is not None:
        text += ", %s ex" % _count(st["median_execs"])
    text += " [%d/%d]" % (st["found"], st["n"])
    if st["alt"]:
        text += " †"
    if st["other"]:
        text += " *"
    return text


def strategies_of(cells):
    seen = []
    for c in cells:
        if c.strategy not in seen:
            seen.append(c.strategy)
    return seen


def bugs_of(cells):
    seen = []
    for c in cells:
        if (c.target, c.bug) not in seen:
            seen.append((c.target, c.bug))
    return seen


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def ladder_rows(cells):
    """[(d, k, {strategy: median execs or inf}, pct bound runs)] for the rungs measured."""
    from churn_matrix import LADDER
    rows = []
    for bug, d in sorted(LADDER.items(), key=lambda kv: kv[1]):
        rung = [c for c in cells if c.bug == bug]
        if not rung:
            continue
        per, k = {}, None
        for c in rung:
            st = cell_stats(c) if not c.na else None
            if st is None:
                continue
            per[c.strategy] = st["median_execs"] if st["median_s"] != float("inf") else \
                ("at_least", st["median_execs_at_least"])
            if c.strategy in ("pct", "random") and st["longest"]:
                k = max(k or 0, st["longest"])
        bound = PCT_THREADS * k ** d if k else None
        rows.append((d, k, per, bound))
    return rows


def summary_text(cells, cap):
    strategies = strategies_of(cells)
    lines = ["time to bug, median (max) seconds, median executions, [found/runs]:"]
    width = max(len(b) for _, b in bugs_of(cells))
    for target, bug in bugs_of(cells):
        row = [c for c in cells if c.bug == bug]
        parts = ["%s: %s" % (LABEL[c.strategy], cell_text(c, cap)) for c in row
                 if c.strategy in strategies]
        lines.append("  %-*s  %s" % (width, bug, "; ".join(parts)))
    return "\n".join(lines)


def write_report(doc, meta, cells):
    cap = meta["cap"]
    strategies = strategies_of(cells)
    m = meta["machine"]
    out = ["# Benchmarks: time to bug by strategy", "",
           "Generated by `churn bench matrix` (tools/churn_matrix.py); do not edit by hand, run "
           "it again.", "",
           "- command: `%s`" % meta["command"].strip(),
           "- date: %s; took %.0f s" % (meta["date"], meta["seconds"]),
           "- machine: %s, %s cores, %s RAM, Linux %s" % (m["cpu"], m["cores"], m["memory"],
                                                          m["kernel"]),
           "- load average (1, 5, 15 min) before: %s; at the end: %s. Other work on the "
           "machine inflates the seconds and lowers exec/s; the executions are unaffected."
           % (" ".join("%.2f" % x for x in meta["load_before"]),
              " ".join("%.2f" % x for x in meta.get("load_after", meta["load_before"]))),
           "- %d runs per cell (seeds 1..%d), each capped at %d s, %d at a time; a cell whose "
           "first %d runs all hit the cap stops there" % (meta["runs"], meta["runs"], cap,
                                                          meta["jobs"], meta["early_stop"]),
           ""]
    if meta.get("partial"):
        out += ["**Partial:** the run was stopped before every cell had run; cells marked `-` "
                "did not run.", ""]
    if meta.get("quick"):
        out += ["This is a `--quick` run: a subset, too few runs to compare strategies.", ""]
    out += ["![time to bug by strategy](%s)" % os.path.basename(svg_path(doc)), "",
            "## Time to bug", "",
            "Each cell: median seconds to the first failure that is the toggle's (max in "
            "brackets), the median executions to it, and [runs that found it / runs]. A "
            "failure is the toggle's when its replay fails with the expected signature, or "
            "with another one and then passes with no toggle on, as a committed repro must "
            "(`†`: some runs found it under another signature). Runs that did not find it "
            "count as infinite: a median or max over them reads `>cap`. `*`: some runs "
            "stopped on a failure that is not the toggle's (they count as not found). "
            "Executions are libFuzzer's and AFL++'s own counts and the simulated runs of "
            "`random` and `pct`; real threads do not count theirs.", ""]
    rows = [[target, "`%s`" % bug] + [cell_text(c, cap) for s in strategies
                                      for c in cells if c.bug == bug and c.strategy == s]
            for target, bug in bugs_of(cells)]
    out += [_md_table(["target", "toggle"] + [LABEL[s] for s in strategies], rows), ""]
    out += ["## Executions per second", "",
            "One %d s run per target and strategy with no toggle on, so that no failure ends "
            "it early (libFuzzer's own average; AFL++'s `execs_per_sec`; simulated runs per "
            "second; real-thread rounds per second, each round a whole upstream-shaped "
            "scenario)." % meta.get("rate_seconds", 0), ""]
    rows = []
    rates = meta.get("rates", {})
    for target in sorted({c.target for c in cells}):
        row = [target]
        for s in strategies:
            na = all(c.na for c in cells if c.target == target and c.strategy == s)
            rate = rates.get(target, {}).get(s)
            row.append("n/a" if na else ("%.0f" % rate if rate else "-"))
        rows.append(row)
    out += [_md_table(["target"] + [LABEL[s] for s in strategies], rows), ""]
    lrows = ladder_rows(cells)
    if lrows:
        out += ["## The bug-depth ladder", "",
                "`toy-depth-d` (harness/toys/depth_ladder.c) fails only when the schedule makes d "
                "preemptions, each at one exact choice point; PCT finds such a bug (depth d + 1) "
                "with probability at least 1/(n k^d) per run, so its expected runs are at most "
                "n k^d (n = %d threads, k = the choice points of the longest run, measured). "
                "Median executions to the bug:" % PCT_THREADS, ""]
        rows = []
        for d, k, per, bound in lrows:
            rows.append([str(d), str(k or "-")] +
                        [_ladder_count(per[s]) if s in per else "n/a" for s in strategies] +
                        [_count(bound)])
        out += [_md_table(["d", "k"] + [LABEL[s] for s in strategies] + ["PCT bound n k^d"],
                          rows), ""]
    out += ["## How to read it", "",
            "- **libFuzzer**, **AFL++**: as `churn fuzz` runs them, from `corpus/TARGET/` "
            "minus the seeds that already fail with the toggle, stopping at the first crash.",
            "- **libFuzzer, no interleaving**: the same with `CHURN_NO_INTERLEAVING_COV=1`, "
            "so only edge coverage guides it.",
            "- **libFuzzer, transitions**: the same with `CHURN_COV_READS=0 "
            "CHURN_COV_TRANSITIONS=1`: yield-site transition features (previous site, this "
            "site, switched) in place of the read features (docs/INTERLEAVING_FEATURES.md).",
            "- **random simulation**: `out/replay/TARGET --simulate random --seed N`: fresh "
            "random inputs from a seeded generator, no feedback, no corpus; same binary and "
            "oracles as replay.",
            "- **PCT**: `--simulate pct`: random workload bytes, random priorities and d-1 "
            "random change points among the choice points of the longest run so far, no "
            "feedback; depth %d for the real toggles, d + 1 for ladder rung d." %
            meta["pct_depth"],
            "- **real threads**: the copy on pthreads in the shape of upstream's test "
            "(`out/stress/*-stress --seconds CAP`); the OS picks the interleaving, so its "
            "failures cannot be replayed and are judged by the signature of their own report.",
            "- Every other failure counts only after `out/replay/TARGET` (with `--pct-plan` for "
            "PCT) has replayed it and it failed with the expected signature, the one recorded "
            "for the toggle's repro in `repros/TARGET/index.json`, or failed with another "
            "signature and then passed with no toggle on.", ""]
    na = sorted({(c.target, c.na) for c in cells if c.na})
    if na:
        out += ["Cells marked n/a:", ""] + ["- %s: %s" % (t, why) for t, why in na] + [""]
    if meta.get("left_out"):
        out += ["Toggles left out (no committed repro that needs only that toggle, so no "
                "expected signature): %s."
                % ", ".join("`%s`" % b for b in meta["left_out"]), ""]
    for line in meta.get("reruns", []):
        out += ["- re-run: " + line]
    if meta.get("reruns"):
        out += [""]
    others = [(c, r) for c in cells for r in c.runs if not r.found and (r.note or r.error)]
    if others:
        out += ["Runs that stopped without counting:", ""]
        out += ["- `%s` %s seed %d: %s" % (c.bug, LABEL[c.strategy], r.seed, r.error or r.note)
                for c, r in others] + [""]
    with open(doc, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    churn_matrix_svg.write_svg(svg_path(doc), cells, cap, lrows, LABEL, cell_stats,
                               bugs_of(cells), strategies)

