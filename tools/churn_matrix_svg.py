"""The SVG plot of `churn bench matrix`, written with the standard library only.

Top panel: seconds to bug (log scale) for every toggle, one column per toggle and one marker per
strategy: filled at the median, a line up to the maximum, hollow on the `>cap` line when the
median run did not find it. Bottom panel: the depth ladder, median executions to bug (log) against
d for each strategy, with PCT's bound n k^d dashed."""

import math
from xml.sax.saxutils import escape

COLORS = {"libfuzzer": "#1f77b4", "afl": "#ff7f0e", "nointerleave": "#17becf",
          "transitions": "#9467bd",
          "random": "#d62728", "pct": "#2ca02c", "threads": "#7f7f7f"}
WIDTH, TOP_H, LADDER_H = 1200, 540, 330
LEFT, RIGHT = 70, 20


def _log_y(v, lo, hi, y0, y1):
    """Map v in [lo, hi] (log) to pixels y1 (bottom) .. y0 (top)."""
    v = min(max(v, lo), hi)
    return y1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (y1 - y0)


def _axis(out, lo, hi, y0, y1, unit):
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        v = 10 ** e
        if v >= lo:
            y = _log_y(v, lo, hi, y0, y1)
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                       % (LEFT, WIDTH - RIGHT, y, y))
            label = ("%g" % v) if unit == "s" else ("1e%d" % e if e >= 4 else "%g" % v)
            out.append('<text x="%d" y="%.1f" text-anchor="end" font-size="11">%s</text>'
                       % (LEFT - 6, y + 4, label))
        e += 1


def _legend(out, strategies, label, y):
    x = LEFT
    for s in strategies:
        out.append('<circle cx="%d" cy="%d" r="5" fill="%s"/>' % (x, y, COLORS[s]))
        out.append('<text x="%d" y="%d" font-size="12">%s</text>' % (x + 9, y + 4,
                                                                    escape(label[s])))
        x += 30 + 7 * len(label[s])


def _time_panel(out, cells, cap, label, stats, bugs, strategies):
    y0, y1 = 95, TOP_H - 215  # room below for the toggle names, written at 60 degrees
    lo, hi = 0.01, float(cap)
    out.append('<text x="%d" y="20" font-size="16" font-weight="bold">Seconds to the first '
               'failure that is the toggle&#39;s (log scale)</text>' % LEFT)
    out.append('<text x="%d" y="38" font-size="12">dot: median of the runs; line: up to the '
               'slowest; hollow on the dashed line: the median run did not find it within '
               '%d s</text>' % (LEFT, cap))
    _legend(out, strategies, label, 60)
    _axis(out, lo, hi, y0, y1, "s")
    top = y0 - 8
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#999" stroke-dasharray="4 3"/>'
               % (LEFT, WIDTH - RIGHT, top, top))
    out.append('<text x="%d" y="%d" text-anchor="end" font-size="11">&gt;cap</text>'
               % (LEFT - 6, top + 4))
    col = (WIDTH - LEFT - RIGHT) / max(1, len(bugs))
    for i, (target, bug) in enumerate(bugs):
        x_mid = LEFT + col * (i + 0.5)
        if i % 2 == 0:
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f6f6f6"/>'
                       % (LEFT + col * i, top - 6, col, y1 - top + 6))
        out.append('<text transform="translate(%.1f,%d) rotate(-60)" font-size="10" '
                   'text-anchor="end">%s</text>' % (x_mid + 3, y1 + 12, escape(bug)))
        for j, s in enumerate(strategies):
            c = next((c for c in cells if c.bug == bug and c.strategy == s), None)
            st = stats(c) if c is not None and not c.na else None
            if st is None:
                continue
            x = x_mid + (j - (len(strategies) - 1) / 2) * min(6.0, col / (len(strategies) + 1))
            if st["median_s"] == float("inf"):
                out.append('<circle cx="%.1f" cy="%d" r="3.5" fill="white" stroke="%s" '
                           'stroke-width="1.5"><title>%s %s: &gt;%ds</title></circle>'
                           % (x, top, COLORS[s], escape(bug), escape(label[s]), cap))
                continue
            ym = _log_y(max(st["median_s"], lo), lo, hi, y0, y1)
            ymax = top if st["max_s"] == float("inf") else _log_y(max(st["max_s"], lo), lo, hi,
                                                                  y0, y1)
            out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>'
                       % (x, x, ym, ymax, COLORS[s]))
            out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %s: median '
                       '%.2fs</title></circle>' % (x, ym, COLORS[s], escape(bug),
                                                   escape(label[s]), st["median_s"]))


def _ladder_panel(out, rows, label, strategies, base):
    y0, y1 = base + 65, base + LADDER_H - 40
    # A value is a median count, or ("at_least", N) when the median run hit the cap after N
    # executions (N None when the strategy could not count them).
    values = [v[1] if isinstance(v, tuple) else v for _, _, per, _ in rows
              for v in per.values()]
    values = [v for v in values if v]
    values += [b for _, _, _, b in rows if b]
    if not values:
        return
    lo = 10 ** math.floor(math.log10(max(1, min(values))))
    hi = 10 ** math.ceil(math.log10(max(values) * 1.01))
    out.append('<text x="%d" y="%d" font-size="16" font-weight="bold">Depth ladder: median '
               'executions to bug against d preemptions (log scale)</text>' % (LEFT, base + 20))
    out.append('<text x="%d" y="%d" font-size="12">dashed: PCT bound n k^d; hollow: the median '
               'run did not find it within the cap, drawn at the executions it had run (a lower '
               'bound; on the top line when not counted)</text>' % (LEFT, base + 38))
    _axis(out, lo, hi, y0, y1, "execs")
    top = y0 - 8
    ds = [d for d, _, _, _ in rows]
    span = WIDTH - LEFT - RIGHT - 80

    def xd(d):
        return LEFT + 40 + (span * (d - min(ds)) / max(1, max(ds) - min(ds)))
    for d in ds:
        out.append('<text x="%.1f" y="%d" text-anchor="middle" font-size="12">d = %d</text>'
                   % (xd(d), y1 + 20, d))
    bound = [(xd(d), _log_y(b, lo, hi, y0, y1)) for d, _, _, b in rows if b]
    if len(bound) > 1:
        out.append('<polyline fill="none" stroke="#000" stroke-dasharray="6 4" points="%s"/>'
                   % " ".join("%.1f,%.1f" % p for p in bound))
    for s in strategies:
        pts = []
        for d, _, per, _ in rows:
            v = per.get(s)
            if v is None:
                continue
            if isinstance(v, tuple):
                y = _log_y(v[1], lo, hi, y0, y1) if v[1] else top
                out.append('<circle cx="%.1f" cy="%.1f" r="4" fill="white" stroke="%s" '
                           'stroke-width="1.5"/>' % (xd(d), y, COLORS[s]))
                continue
            pts.append((xd(d), _log_y(v, lo, hi, y0, y1)))
        if len(pts) > 1:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (COLORS[s], " ".join("%.1f,%.1f" % p for p in pts)))
        for x, y in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>' % (x, y, COLORS[s]))


def write_svg(path, cells, cap, ladder_rows, label, stats, bugs, strategies):
    height = TOP_H + (LADDER_H if ladder_rows else 0)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif">' % (WIDTH, height),
           '<rect width="100%" height="100%" fill="white"/>']
    _time_panel(out, cells, cap, label, stats, bugs, strategies)
    if ladder_rows:
        _ladder_panel(out, ladder_rows, label, strategies, TOP_H)
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
