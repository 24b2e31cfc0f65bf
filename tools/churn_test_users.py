"""Checks of `churn test` for what users run and look at: the CI workflow files (validated
offline), the HTML timeline of a committed repro of each target rendered in headless Chromium,
and `churn coverage`."""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

from churn_common import REPO, fuzzer_names, out_dir, read_json, rel, say, tail_text

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
VIEW_WIDTH = 1280  # the page must fit this width: no sideways scrolling

# Appended to a copy of the page: measures what the check needs after layout.
MEASURE_JS = """
<script>
(function () {
  var d = document.documentElement, t = document.querySelector("table.timeline");
  var pre = document.createElement("pre");
  pre.id = "churn-measure";
  pre.textContent = JSON.stringify({
    scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
    tableWidth: t ? Math.round(t.getBoundingClientRect().width) : -1,
    rows: document.querySelectorAll("table.timeline tbody tr").length,
    lanes: document.querySelectorAll("table.timeline thead th").length - 2,
    failRows: document.querySelectorAll("table.timeline tr.fail").length,
    verdictFail: document.querySelectorAll(".verdict.fail").length,
    preemptions: document.querySelectorAll("table.timeline tr.preempt").length,
    shared: document.querySelectorAll("table.objects tr").length - 1
  });
  document.body.appendChild(pre);
})();
</script>
"""


def _run(cmd, timeout, env=None):
    try:
        p = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, errors="replace", timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", "timed out after %ds" % timeout


def check_workflows(checks):
    """.github/workflows/*.yml through action-validator (npm), plus the CFLite/OSS-Fuzz files."""
    t0 = time.time()
    rc, out, err = _run(["bash", os.path.join(REPO, "tools", "validate-workflows.sh")], 300)
    if rc == 2:
        say("skip workflow validation: the validator cannot be installed here (%s)"
            % (err.strip().splitlines() or ["?"])[-1])
        return
    n = len(re.findall(r"^valid: ", out, re.M))
    if rc == 0 and n:
        checks.ok("workflows valid (action-validator: %d files, %.0fs)" % (n, time.time() - t0))
    else:
        checks.fail("workflows", tail_text(out + err, 20) or "exit %s" % rc)


def chromium():
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def _first_repro(target):
    """The first repro of target listed in its index (the committed order), or None."""
    idx = read_json(os.path.join(REPO, "repros", target, "index.json"))
    entries = idx.get("repros", idx) if isinstance(idx, dict) else idx
    for e in entries or []:
        if isinstance(e, dict) and e.get("file"):
            path = os.path.join(REPO, "repros", target, e["file"])
            if os.path.isfile(path):
                return path
    return None


def check_explain_html(checks, tmp):
    """One committed repro of each target: `churn explain --html`, then headless Chromium
    lays the page out (it must fit VIEW_WIDTH, mark the failing row) and takes a screenshot."""
    browser = chromium()
    out = os.path.join(tmp, "explain-html")
    os.makedirs(out, exist_ok=True)
    profile = os.path.join(out, "chromium-profile")
    for target in fuzzer_names():
        repro = _first_repro(target)
        if not repro:
            checks.fail("explain --html %s" % target, "no repro listed in repros/%s/index.json"
                        % target)
            continue
        page = os.path.join(out, target + ".html")
        t0 = time.time()
        rc, sout, serr = _run([sys.executable, os.path.join(REPO, "tools", "churn.py"), "explain",
                               repro, "--html", page], 300)
        name = "explain --html %s" % rel(repro)
        if rc != 1 or not os.path.isfile(page):
            checks.fail(name, "expected exit 1 (the repro fails with its toggles) and %s; got "
                        "exit %s\n%s" % (rel(page), rc, tail_text(sout + serr, 6)))
            continue
        if not browser:
            checks.ok(name + " (page written; chromium not installed: not rendered)")
            continue
        measured = page[:-5] + ".measure.html"
        with open(page, encoding="utf-8") as f:
            html_text = f.read()
        with open(measured, "w", encoding="utf-8") as f:
            f.write(html_text.replace("</body>", MEASURE_JS + "</body>"))
        base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--user-data-dir=" + profile, "--window-size=%d,900" % VIEW_WIDTH]
        rc, dom, err = _run(base + ["--dump-dom", "file://" + measured], 120)
        m = re.search(r'<pre id="churn-measure">([^<]*)</pre>', dom or "")
        if rc != 0 or not m:
            checks.fail(name, "chromium --dump-dom gave no measurement (exit %s)\n%s"
                        % (rc, tail_text(err, 4)))
            continue
        g = json.loads(m.group(1).replace("&quot;", '"'))
        shot = page[:-5] + ".png"
        rc, _, err = _run(base[:-1] + ["--window-size=%d,2000" % VIEW_WIDTH,
                                       "--screenshot=" + shot, "file://" + page], 120)
        size = _png_size(shot) if os.path.isfile(shot) else None
        problems = []
        if g["scrollWidth"] > g["clientWidth"]:
            problems.append("page is %dpx wide in a %dpx window (scrolls sideways)"
                            % (g["scrollWidth"], g["clientWidth"]))
        if g["lanes"] < 1 or g["rows"] < 5:
            problems.append("%d lanes and %d rows: not a timeline" % (g["lanes"], g["rows"]))
        if not g["verdictFail"] or not g["failRows"]:
            problems.append("the failure is not highlighted (verdict %d, failing rows %d)"
                            % (g["verdictFail"], g["failRows"]))
        if not size or size[0] != VIEW_WIDTH or os.path.getsize(shot) < 10000:
            problems.append("no screenshot %s (exit %s) %s" % (rel(shot), rc, tail_text(err, 2)))
        if problems:
            checks.fail(name, "; ".join(problems))
        else:
            checks.ok("%s: %d lanes, %d rows, %d preemptions, fits %dpx, screenshot %s (%.0fs)"
                      % (name, g["lanes"], g["rows"], g["preemptions"], VIEW_WIDTH, rel(shot),
                         time.time() - t0))
    shutil.rmtree(profile, ignore_errors=True)


def check_coverage(checks, target="fuzz_tls_intern"):
    """`churn coverage TARGET --committed-only` writes its HTML report and per-file lines."""
    t0 = time.time()
    rc, sout, serr = _run([sys.executable, os.path.join(REPO, "tools", "churn.py"), "coverage",
                           target, "--committed-only"], 900)
    index = os.path.join(out_dir(), "coverage", target, "html", "index.html")
    m = re.search(r"^%s: (\d+) of (\d+) lines" % target, sout, re.M)
    files = re.findall(r"^harness/\S+\.c\s+\d+/\d+", sout, re.M)
    if rc == 0 and m and int(m.group(1)) > 0 and files and os.path.isfile(index):
        checks.ok("coverage %s: %s of %s lines, %d files listed, report %s (%.0fs)"
                  % (target, m.group(1), m.group(2), len(files), rel(index), time.time() - t0))
    else:
        checks.fail("coverage %s" % target, "exit %s, report %s\n%s"
                    % (rc, "written" if os.path.isfile(index) else "missing",
                       tail_text(sout + serr, 8)))


def check_cli_units(checks):
    """The arithmetic of the new commands on fixed inputs: how `churn fuzz` with no target
    shares time and jobs, how explain sizes its lanes, and that every fuzzer's .options names
    a dictionary that exists and parses as libFuzzer reads it."""
    import churn_campaign
    import churn_explain
    import churn_ossfuzz
    problems = []
    five = ["a", "b", "c", "d", "e"]
    for jobs, total, want_waves, want_secs, want_jobs in (
            (1, 60, 5, 12, [1] * 5), (2, 60, 3, 20, [1, 1, 1, 1, 2]),
            (8, 60, 1, 60, [2, 2, 2, 1, 1]), (5, 10, 1, 10, [1] * 5)):
        waves, secs = churn_campaign.plan(five, total, jobs)
        got_jobs = [j for w in waves for _, j in w]
        got_targets = [t for w in waves for t, _ in w]
        if (len(waves), secs, got_jobs, got_targets) != (want_waves, want_secs, want_jobs, five):
            problems.append("plan(5 targets, %ds, %d jobs) = %r, %ds" % (total, jobs, waves, secs))
        if any(sum(j for _, j in w) > max(jobs, len(w)) for w in waves):
            problems.append("plan(%d jobs) runs more jobs than asked: %r" % (jobs, waves))
    for need, total, want in (([10, 30, 5], 100, [10, 30, 5]), ([50, 50], 60, [30, 30]),
                              ([5, 80, 80], 105, [5, 50, 50]), ([40], 10, [12])):
        got = churn_explain._share(need, total)
        if got != want:
            problems.append("explain lane widths for %r in %d: %r, want %r" % (need, total, got, want))
    dict_line = re.compile(r'^\s*(#.*)?$|^\s*\w*\s*=\s*"(?:[^"\\]|\\\\|\\"|\\x[0-9a-fA-F]{2})*"\s*$')
    checked = set()
    for t in fuzzer_names():
        opt = os.path.join(REPO, "fuzzers", t + ".options")
        flags = churn_ossfuzz.read_options(opt)
        dicts = [f[6:] for f in flags if f.startswith("-dict=")]
        if not dicts:
            problems.append("%s names no dictionary" % rel(opt))
        for d in dicts:
            path = os.path.join(REPO, "fuzzers", d)
            if not os.path.isfile(path):
                problems.append("%s names %s, which does not exist" % (rel(opt), rel(path)))
                continue
            if path in checked:
                continue
            checked.add(path)
            with open(path, encoding="utf-8") as f:
                bad = [n for n, ln in enumerate(f, 1) if not dict_line.match(ln.rstrip("\n"))]
            if bad:
                problems.append("%s: lines %s are not libFuzzer dictionary entries"
                                % (rel(path), bad))
    if problems:
        checks.fail("cli arithmetic and OSS-Fuzz options", "\n".join(problems))
    else:
        checks.ok("cli arithmetic (fuzz time/jobs sharing, explain lane widths) and OSS-Fuzz "
                  ".options/dictionary of %d fuzzers" % len(fuzzer_names()))
