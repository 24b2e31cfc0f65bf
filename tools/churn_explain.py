"""`churn explain`: one run of an input as a per-thread timeline.

The input is replayed once with CHURN_TRACE=1 through out/replay/<fuzzer> --show, which streams
every trace event to stderr (harness/runtime/trace.c):

    T <step> <fiber> <kind> <site label> <file:line> <a> <b> [note]

Each fiber gets a column named after its thread (the spawn event's note). A row is one event of
the fiber that was running; the decision column shows which fiber the schedule picked at a
choice point. Runs of steps in which one fiber just kept going are collapsed unless --full.
"""

import os
import re
import shutil
import subprocess

from churn_common import (EXIT_FAIL, EXIT_OK, REPO, ChurnError, binary, ensure_built, rel,
                          resolve_context, say)
from churn_engines import signature_of

TRACE_RE = re.compile(r"^T (\d+) (-?\d+) (\w+) (.*?) (\S+:\d+) (\d+) (\d+)(?: (.*))?$")
ORACLE_RE = re.compile(r"^churnfuzz: ([^\s:]+): [^:\n]+: [^:\n]+: ")
NO_TIMEOUT = 2 ** 64 - 1  # a block's timeout of -1, printed unsigned
MAX_ROWS = 300  # without --full, longer timelines keep their start and their end
HEAD_ROWS = 80
KEEP_EDGE = 2  # rows kept at each end of a collapsed run
MIN_FOLD = 4  # fewer rows than this in the middle are shown, not folded
MIN_COL = 12


class Event:
    __slots__ = ("step", "fiber", "kind", "label", "loc", "a", "b", "note")

    def __init__(self, m):
        self.step, self.fiber, self.kind = int(m.group(1)), int(m.group(2)), m.group(3)
        self.label, self.loc = m.group(4), m.group(5)
        self.a, self.b, self.note = int(m.group(6)), int(m.group(7)), m.group(8) or ""


class Row:
    def __init__(self, step, fiber, text, decision="", plain=False, rule=False):
        self.step, self.fiber, self.text = step, fiber, text
        self.decision, self.plain, self.rule = decision, plain, rule


def run_traced(target, path, bugs, timeout):
    """Replay once with the trace streamed; returns (events, other stderr lines, stdout)."""
    exe = binary("replay", target)
    ensure_built([exe], ["replay"])
    env = dict(os.environ, CHURN_BUGS=",".join(bugs), CHURN_TRACE="1")
    cmd = [exe, "--show", "--hash", "--timeout", str(timeout), rel(path)]
    try:
        p = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, errors="replace", timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        raise ChurnError("%s: the traced replay did not finish in %ds" % (rel(path), timeout + 30))
    except OSError as e:
        raise ChurnError("cannot run %s: %s" % (rel(exe), e.strerror or e))
    if p.returncode not in (0, 1):
        raise ChurnError("%s: replay exited with status %d:\n%s"
                         % (rel(path), p.returncode, p.stderr.strip()[-600:]))
    events, other = [], []
    for line in p.stderr.splitlines():
        m = TRACE_RE.match(line)
        if m:
            events.append(Event(m))
        elif not line.startswith("  T "):  # the failure report repeats the trace tail
            other.append(line)
    return events, other, p.stdout


def fiber_names(events):
    names = {}
    for e in events:
        if e.kind == "spawn":
            names[e.a] = e.note or "fiber%d" % e.a
    count = {}
    for n in names.values():
        count[n] = count.get(n, 0) + 1
    return {f: (n if count[n] == 1 else "%s#%d" % (n, f)) for f, n in names.items()}


def build_rows(events, names):
    """Turn events into rows; returns (rows, stats)."""
    rows = []
    pending = ""  # the decision that put the next running fiber in place
    last_kind = {}  # fiber -> kind of its last own event, to tell preemptions from hand-offs
    stats = {"steps": 0, "choices": 0, "preemptions": 0, "workload": []}
    running = None
    for i, e in enumerate(events):
        stats["steps"] = max(stats["steps"], e.step)
        if e.kind == "pick":
            if e.b >= 2:
                stats["choices"] += 1
                preempt = (running is not None and e.a != running
                           and last_kind.get(running) == "yield")
                stats["preemptions"] += preempt
                pending = "%s%s (%d)" % (names.get(e.a, e.a), "!" if preempt else "", e.b)
                if e.a == running:
                    pending = ""  # the running fiber went on: no news
            running = e.a
            continue
        if e.kind == "workload":
            stats["workload"].append("%d/%d" % (e.a, e.b) if e.b else "0/-")
            continue
        if e.fiber >= 0:
            last_kind[e.fiber] = e.kind
        text, plain = None, False
        if e.kind == "yield":
            text = "at " + e.label
            nxt = next((x for x in events[i + 1:] if x.kind == "pick"), None)
            plain = not pending and (nxt is None or nxt.a == e.fiber)
        elif e.kind == "block":
            text = "blocks: " + e.label + (" (idle)" if e.a == 1 else "")
            if e.b != NO_TIMEOUT:
                text += " timeout %d" % e.b
        elif e.kind == "wake":
            text = "wakes " + names.get(e.a, str(e.a))
        elif e.kind == "spawn":
            if e.fiber < 0:
                continue  # the runtime starting the target's main fiber
            text = "spawns " + names.get(e.a, str(e.a))
        elif e.kind == "exit":
            text = "exits"
        elif e.kind == "choose":
            text = "choose %s = %d of %d" % (e.label, e.a, e.b)
        elif e.kind == "fault":
            text = "fault %s: %s" % (e.label, "FIRED" if e.b else "not fired")
            plain = not e.b
        elif e.kind == "time":
            rows.append(Row(e.step, None, "", decision="time -> %d" % e.a))
            continue
        elif e.kind == "phase":
            rows.append(Row(e.step, None, {1: "liveness phase (round-robin, no faults)",
                                           2: "quiescent: checks run"}.get(e.a, "phase %d" % e.a),
                            rule=True))
            continue
        elif e.kind == "note":
            text = e.note or e.label
        elif e.kind == "fail":
            text = "FAIL " + e.label
        else:
            text = "%s %s %d %d" % (e.kind, e.label, e.a, e.b)
        rows.append(Row(e.step, e.fiber, text, pending, plain))
        pending = ""
    stats["pending"] = pending  # a decision no event followed (the run crashed right after)
    return rows, stats


def collapse(rows):
    """Fold the middle of each long run of plain rows (one fiber going on alone, no decision)
    into one row; the first and last KEEP_EDGE rows of the run stay, as they show how the fiber
    got going and where it stopped."""
    out, i = [], 0
    while i < len(rows):
        j = i
        while j < len(rows) and rows[j].plain and rows[j].fiber == rows[i].fiber:
            j += 1
        if j - i >= 2 * KEEP_EDGE + MIN_FOLD:
            middle = rows[i + KEEP_EDGE:j - KEEP_EDGE]
            labels = list(dict.fromkeys(r.text[3:] for r in middle))
            shown = ", ".join(labels[:3]) + (", ..." if len(labels) > 3 else "")
            out += rows[i:i + KEEP_EDGE]
            out.append(Row(middle[0].step, rows[i].fiber, "... %d steps: %s" % (len(middle),
                                                                               shown)))
            out += rows[j - KEEP_EDGE:j]
            i = j
        else:
            out.append(rows[i])
            i += 1
    if len(out) > MAX_ROWS:
        cut = len(out) - MAX_ROWS
        out = out[:HEAD_ROWS] + [Row(out[HEAD_ROWS].step, None, "%d rows omitted (--full shows "
                                     "them)" % cut, rule=True)] + out[HEAD_ROWS + cut:]
    return out


def _fit(text, width):
    return text if len(text) <= width else text[:max(0, width - 1)] + "~"


def _share(need, total):
    """Column widths for lanes that need `need` characters within `total`: every lane gets
    what it needs when that fits; otherwise the narrow lanes get theirs and the others share
    the rest equally (never below MIN_COL), so labels are cut only when the width is short."""
    widths = [0] * len(need)
    left = list(range(len(need)))
    while left:
        share = max(MIN_COL, total // len(left))
        small = [i for i in left if need[i] <= share]
        if not small:
            for i in left:
                widths[i] = share
            break
        for i in small:
            widths[i] = need[i]
            total -= need[i]
        left = [i for i in left if i not in small]
    return widths


def render(rows, names, width):
    fibers = sorted(f for f in names if any(r.fiber == f for r in rows))
    if any(r.fiber == -1 for r in rows):
        fibers = [-1] + fibers
        names = dict(names)
        names[-1] = "runtime"  # the run's own context: quiescence checks run there
    dec_w = max([len("decision")] + [len(r.decision) for r in rows])
    need = [max([len(names[f])] + [len(r.text) for r in rows if r.fiber == f and not r.rule])
            for f in fibers]
    fixed = 6 + 2 + dec_w + 2
    if fixed + sum(n + 2 for n in need) > width:
        dec_w = min(dec_w, 22)
        fixed = 6 + 2 + dec_w + 2
    widths = _share(need, max(0, width - fixed) - 2 * len(fibers))
    lines = []
    head = "%5s  %-*s  " % ("step", dec_w, "decision") + "  ".join(
        _fit(names[f], w).ljust(w) for f, w in zip(fibers, widths))
    index = {f: k for k, f in enumerate(fibers)}
    lines.append(head.rstrip())
    lines.append("-" * min(len(head), width))
    last_step = None
    for r in rows:
        step = "" if r.step == last_step else str(r.step)
        last_step = r.step
        if r.rule:
            lines.append("%5s  %s" % (step, ("-- %s --" % r.text)))
            continue
        cells = [""] * len(fibers)
        if r.fiber in index:
            cells[index[r.fiber]] = _fit(r.text, widths[index[r.fiber]])
        line = "%5s  %-*s  " % (step, dec_w, _fit(r.decision, dec_w)) + "  ".join(
            c.ljust(w) for c, w in zip(cells, widths))
        lines.append(line.rstrip())
    return "\n".join(lines)


def describe_header(data):
    """The scheduling policy from the input's first byte (docs/INPUT_FORMAT.md)."""
    if not data:
        return "empty input: direct policy, every stream exhausted (default schedule)"
    h = data[0]
    if h & 3 == 0:
        return "header 0x%02x: direct policy" % h
    return "header 0x%02x: PCT with %d change point%s, seed %d" % (
        h, (h & 3) - 1, "" if (h & 3) == 2 else "s", h >> 2)


def cmd_explain(args):
    ctx = resolve_context(args.file, args.target, args.bugs)
    width = args.width or shutil.get_terminal_size((120, 40)).columns
    events, other, stdout = run_traced(ctx.target, ctx.path, ctx.bugs, args.timeout)
    if not events:
        raise ChurnError("%s: the replay printed no trace lines (is %s built from this tree?)"
                         % (rel(ctx.path), rel(binary("replay", ctx.target))))
    names = fiber_names(events)
    rows, stats = build_rows(events, names)
    failed = bool(re.search(r"^FAIL ", stdout, re.M))
    if failed and not any(e.kind == "fail" for e in events):
        # a sanitizer (or a signal) ended the run inside the last fiber to run, between two
        # trace events: mark where, the report follows the timeline
        last = events[-1]
        running = last.a if last.kind == "pick" else last.fiber
        rows.append(Row(last.step, running, "CRASH: see the report below",
                        stats["pending"]))
    if not args.full:
        rows = collapse(rows)
    with open(ctx.path, "rb") as f:
        data = f.read()
    say("explain   %s (%d B): %s" % (rel(ctx.path), len(data), ctx.describe()))
    say("schedule  %s" % describe_header(data))
    if stats["workload"]:
        say("workload  %s (value/range of each cf_workload call; '-': stream exhausted)"
            % " ".join(stats["workload"]))
    say("fibers    %s" % ", ".join("%d %s" % (f, n) for f, n in sorted(names.items())))
    say("legend    'at L': reached the yield point L; decision 'F (n)': the schedule picked F "
        "of n runnable fibers; '!': a preemption")
    say("")
    say(render(rows, names, width))
    say("")
    say("%d steps, %d choice points, %d preemption%s"
        % (stats["steps"], stats["choices"], stats["preemptions"],
           "" if stats["preemptions"] == 1 else "s"))
    failure = [ln for ln in other if ORACLE_RE.match(ln) or "ERROR: AddressSanitizer" in ln
               or ln.startswith("SUMMARY: ") or "runtime error:" in ln]
    hashes = re.findall(r"^HASH \S+ ([0-9a-f]+)$", stdout, re.M)
    at_failure = [ln for ln in other if ln.startswith("churnfuzz: trace hash ")]
    sig = None
    if not failed:
        say("passed (trace hash %s, CHURN_BUGS=%s)"
            % (hashes[0] if hashes else "?", ",".join(ctx.bugs) or "''"))
    else:
        for ln in failure[:3]:
            say(ln)
        if at_failure:
            say(at_failure[0])
        sig, why = signature_of(ctx.target, ctx.path, ctx.bugs)
        say("signature %s" % (sig or "? (%s)" % why))
    if getattr(args, "html", None):
        write_html(args.html, ctx, data, names, rows, stats, failed, failure + at_failure[:1], sig)
    return EXIT_FAIL if failed else EXIT_OK


def write_html(path, ctx, data, names, rows, stats, failed, failure_lines, sig):
    import churn_explain_html
    meta = [("input", "%s (%d B)" % (rel(ctx.path), len(data))), ("context", ctx.describe()),
            ("schedule", describe_header(data)),
            ("threads", ", ".join("%d %s" % (f, n) for f, n in sorted(names.items())))]
    if stats["workload"]:
        meta.append(("workload", " ".join(stats["workload"])))
    page = churn_explain_html.render_html("churn explain: " + rel(ctx.path), meta, rows, names,
                                          stats, failed, failure_lines, sig)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        raise ChurnError("cannot write %s: %s" % (path, e.strerror or e))
    say("html      %s" % rel(os.path.abspath(path)))
