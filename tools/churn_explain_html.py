"""`churn explain FILE --html OUT.html`: the timeline of one run as a self-contained web page.

One lane per thread (fiber), one row per event in step order, each operation and note in full
(the cells wrap, the table never needs sideways scrolling), the decision at each choice point
with preemptions marked, the objects that more than one thread touched listed and highlighted
in the rows, and the failing check (or the sanitizer report) highlighted at the row where the
run stopped and in the summary at the top.
"""

import html
import re

# The object an operation works on is the rest of its label after the operation's name:
# "lock &w->mu", "fetch_add &c->strong", "blocks: idle &w->queue_cv".
# Simulated system calls (sys.recv, ...) are operations, not objects.
OBJECT_RE = re.compile(r"(&[A-Za-z_][\w.\[\]>-]*(?:->[\w\[\]]+)*|\b(?!sys\.)[a-z_]+\.[a-z_.]+\b)")

CSS = """
body { font: 14px/1.35 system-ui, sans-serif; margin: 1em; color: #111; }
h1 { font-size: 1.3em; margin: 0 0 .4em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: 0 0 1em; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.verdict { padding: .5em .8em; margin: 0 0 1em; border-radius: 4px; }
.verdict.fail { background: #fde2e1; border: 2px solid #c62828; }
.verdict.pass { background: #e3f5e1; border: 2px solid #2e7d32; }
.verdict pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: .3em 0 0; font-size: 12px; }
table.timeline { border-collapse: collapse; table-layout: fixed; width: 100%; }
table.timeline th, table.timeline td { border: 1px solid #ddd; padding: 2px 4px;
  vertical-align: top; overflow-wrap: anywhere; word-break: break-word; }
table.timeline thead th { position: sticky; top: 0; background: #f3f3f3; z-index: 1; }
col.step { width: 3.5em; } col.decision { width: 9em; }
td.step { color: #666; text-align: right; font-variant-numeric: tabular-nums; }
td.ev { font-family: ui-monospace, monospace; font-size: 12px; }
tr.preempt td.decision { background: #fff3cd; font-weight: 700; }
tr.preempt td.decision::before { content: "\\26A1 "; }
tr.fail td { background: #fde2e1; }
tr.fail td.ev.active { border: 2px solid #c62828; font-weight: 700; }
tr.rule td { background: #eef; font-style: italic; text-align: center; }
tr.folded td.ev.active { color: #666; font-style: italic; }
tr.plain td.ev.active { color: #555; }
span.obj { background: #e8eefc; border-radius: 3px; padding: 0 2px; }
span.obj.shared { background: #ffe0b2; font-weight: 600; }
span.obj.culprit { background: #ffab91; outline: 1px solid #c62828; }
table.objects { border-collapse: collapse; margin: 0 0 1em; }
table.objects td, table.objects th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
.legend { color: #444; font-size: 12px; margin: 0 0 1em; }
"""


def shared_objects(rows, names):
    """{object: (set of fibers that touched it, number of events)} for objects in the rows."""
    seen = {}
    for r in rows:
        if r.fiber is None or r.rule or r.text.startswith("choose "):
            continue  # a "choose" row names a decision of the workload, not an object
        for obj in OBJECT_RE.findall(r.text):
            fibers, n = seen.get(obj, (set(), 0))
            fibers.add(r.fiber)
            seen[obj] = (fibers, n + 1)
    return seen


def _mark(text, objects, shared, culprits):
    if text.startswith("choose "):
        return html.escape(text)
    out, last = [], 0
    for m in OBJECT_RE.finditer(text):
        obj = m.group(1)
        out.append(html.escape(text[last:m.start()]))
        cls = "obj" + (" shared" if obj in shared else "") + (" culprit" if obj in culprits else "")
        out.append('<span class="%s" title="%s">%s</span>'
                   % (cls, html.escape(objects.get(obj, "")), html.escape(obj)))
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def render_html(title, meta, rows, names, stats, failed, failure_lines, signature):
    """The page as a string. meta: [(label, text)]; rows: churn_explain.Row list."""
    fibers = sorted(f for f in names if any(r.fiber == f for r in rows))
    names = dict(names)
    if any(r.fiber == -1 for r in rows):
        fibers = [-1] + fibers
        names[-1] = "runtime"
    seen = shared_objects(rows, names)
    shared = {o for o, (fs, _) in seen.items() if len(fs) > 1}
    fail_text = " ".join(failure_lines)
    culprits = {o for o in seen if o in fail_text or o.lstrip("&") in fail_text}
    tips = {o: "touched by " + ", ".join(names.get(f, str(f)) for f in sorted(fs))
            for o, (fs, _) in seen.items()}
    p = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         '<title>%s</title><style>%s</style></head><body>' % (html.escape(title), CSS),
         '<h1>%s</h1>' % html.escape(title), '<dl class="meta">']
    for label, text in meta:
        p.append('<dt>%s</dt><dd>%s</dd>' % (html.escape(label), html.escape(text)))
    p.append('<dt>run</dt><dd>%d steps, %d choice points, %d preemption%s</dd></dl>'
             % (stats["steps"], stats["choices"], stats["preemptions"],
                "" if stats["preemptions"] == 1 else "s"))
    if failed:
        p.append('<div class="verdict fail" id="verdict"><strong>FAILED</strong>: signature '
                 '<code>%s</code><pre>%s</pre></div>'
                 % (html.escape(signature or "?"), html.escape("\n".join(failure_lines))))
    else:
        p.append('<div class="verdict pass" id="verdict"><strong>passed</strong>: every check '
                 'held</div>')
    if shared:
        p.append('<table class="objects"><caption>objects touched by more than one thread'
                 '</caption><tr><th>object</th><th>threads</th><th>events</th></tr>')
        for o in sorted(shared, key=lambda o: (o not in culprits, o)):
            fs, n = seen[o]
            p.append('<tr><td>%s</td><td>%s</td><td>%d</td></tr>'
                     % (_mark(o, tips, shared, culprits),
                        html.escape(", ".join(names.get(f, str(f)) for f in sorted(fs))), n))
        p.append('</table>')
    p.append('<p class="legend">A lane per thread; a row per event. <em>at L</em>: the thread '
             'reached yield point L. Decision <em>F (n)</em>: the schedule picked F of n '
             'runnable threads; a highlighted decision marked &#9889; is a preemption (the '
             'running thread could have gone on). Orange objects are touched by more than one '
             'thread; red ones are named by the failing check.</p>')
    p.append('<table class="timeline"><colgroup><col class="step"><col class="decision">')
    p.extend('<col>' for _ in fibers)
    p.append('</colgroup><thead><tr><th>step</th><th>decision</th>%s</tr></thead><tbody>'
             % "".join('<th>%s</th>' % html.escape(names[f]) for f in fibers))
    last_step = None
    for r in rows:
        step = "" if r.step == last_step else str(r.step)
        last_step = r.step
        if r.rule:
            p.append('<tr class="rule"><td class="step">%s</td><td colspan="%d">%s</td></tr>'
                     % (step, len(fibers) + 1, html.escape(r.text)))
            continue
        cls = []
        if "!" in r.decision:
            cls.append("preempt")
        if r.text.startswith(("FAIL ", "CRASH")):
            cls.append("fail")
        if r.text.startswith("... "):
            cls.append("folded")
        elif r.plain:
            cls.append("plain")
        cells = []
        for f in fibers:
            if f == r.fiber:
                cells.append('<td class="ev active">%s</td>' % _mark(r.text, tips, shared, culprits))
            else:
                cells.append('<td class="ev"></td>')
        p.append('<tr%s><td class="step">%s</td><td class="decision">%s</td>%s</tr>'
                 % (' class="%s"' % " ".join(cls) if cls else "", step,
                    html.escape(r.decision), "".join(cells)))
    p.append('</tbody></table></body></html>')
    return "\n".join(p) + "\n"
