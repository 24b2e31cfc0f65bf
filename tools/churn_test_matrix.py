"""The `churn test` smoke test of `churn bench matrix --quick`: it must run every strategy and
write a report of the right shape. It checks the shape, never the numbers, which depend on the
machine and its load."""

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET

from churn_common import REPO, out_dir, read_json, rel, tail_text
import churn_matrix

MATRIX_TIMEOUT = 900  # seconds; --quick takes a minute or two on an idle 2-core machine


def _table(md, heading):
    """The rows (lists of cells) of the first Markdown table after `## heading`."""
    at = md.find("## " + heading)
    if at < 0:
        return None
    rows = []
    for line in md[at:].splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows


def _problems(doc, data):
    problems = []
    quick_bugs = churn_matrix.QUICK_BUGS.split(",")
    labels = [churn_matrix.churn_matrix_report.LABEL[s] for s in churn_matrix.STRATEGIES]
    cells = data.get("cells", [])
    # Every strategy ran: at least one of its cells has a run that did not error.
    for s in churn_matrix.STRATEGIES:
        ran = [r for c in cells if c["strategy"] == s and not c["na"] for r in c["runs"]
               if not r.get("error")]
        if not ran:
            problems.append("strategy %s has no run that ran" % s)
    for c in cells:
        for r in c["runs"]:
            if r.get("error"):
                problems.append("%s %s seed %s: %s" % (c["bug"], c["strategy"], r["seed"],
                                                      r["error"]))
            if r.get("found") and (r.get("seconds") is None or r.get("signature") !=
                                   c["expected"]):
                problems.append("%s %s seed %s counts as found without a time or with "
                                "signature %s" % (c["bug"], c["strategy"], r["seed"],
                                                  r.get("signature")))
    with open(doc, encoding="utf-8") as f:
        md = f.read()
    ttb = _table(md, "Time to bug")
    if not ttb:
        problems.append("%s has no time-to-bug table" % rel(doc))
    else:
        if ttb[0] != ["target", "toggle"] + labels:
            problems.append("time-to-bug header is %s" % ttb[0])
        rows = ttb[2:]
        if sorted(r[1].strip("`") for r in rows) != sorted(quick_bugs):
            problems.append("time-to-bug rows are %s, not %s" % ([r[1] for r in rows],
                                                                 quick_bugs))
        cell_re = re.compile(r"^(n/a|(>\d+|[\d.]+) s \(max (>\d+|[\d.]+)\).* \[\d+/\d+\]( \*)?)$")
        for r in rows:
            if len(r) != len(labels) + 2:
                problems.append("row %s has %d cells" % (r[1], len(r)))
            problems += ["cell %s / %s reads %r" % (r[1], labels[i], v)
                         for i, v in enumerate(r[2:]) if not cell_re.match(v)]
    rates = _table(md, "Executions per second")
    if not rates or len(rates) < 3 or any(len(r) != len(labels) + 1 for r in rates):
        problems.append("the exec/s table is missing or misshapen")
    ladder = _table(md, "The bug-depth ladder")
    if not ladder or [r[0] for r in ladder[2:]] != ["1", "2"]:
        problems.append("the ladder table does not have the rows d = 1, 2")
    svg = churn_matrix.churn_matrix_report.svg_path(doc)
    try:
        root = ET.parse(svg).getroot()
        points = root.findall(".//{http://www.w3.org/2000/svg}circle")
        if not root.tag.endswith("svg") or not points:
            problems.append("%s has no plotted point" % rel(svg))
    except (OSError, ET.ParseError) as e:
        problems.append("%s: %s" % (rel(svg), e))
    return problems


def check_bench_matrix_quick(checks, run):
    """run(argv, timeout) -> (status, output): how churn_test runs the CLI."""
    name = "bench matrix --quick (every strategy ran, report shape)"
    work = os.path.join(out_dir(), "work", "test-matrix")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    doc = os.path.join(work, "matrix.md")
    rc, out = run([sys.executable, os.path.join(REPO, "tools", "churn.py"), "bench", "matrix",
                   "--quick", "--doc", doc], MATRIX_TIMEOUT)
    if rc not in (0, 1) or not os.path.exists(doc):
        checks.fail(name, "status %s, no report:\n%s" % (rc, tail_text(out, 8)))
        return
    data = read_json(churn_matrix.churn_matrix_report.json_path(doc)) or {}
    problems = _problems(doc, data)
    if rc != 0:
        problems.append("exit status %d:\n%s" % (rc, tail_text(out, 6)))
    if problems:
        checks.fail(name, "\n".join(problems[:12]))
    else:
        runs = sum(len(c["runs"]) for c in data["cells"])
        checks.ok("%s: %d runs, %s" % (name, runs, rel(doc)))
