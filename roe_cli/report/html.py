"""The report as one self-contained HTML page: plotly's JavaScript inlined (no network at all:
no external script, style sheet or font), one chart per section and a table under each.

Every name from the CRM is passed through ``visible`` (escape codes shown, not obeyed) and
HTML-escaped, in the tables and in the chart labels; the charts' JSON is embedded with ``<``,
``>`` and ``&`` as JSON escapes, so an account or owner named ``<script>alert(1)</script>`` is
shown as text and never run. When every chart is drawn the page sets
``document.body.dataset.chartsDrawn`` to the milliseconds since navigation started.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..export.kpi import ACTIVITY_KINDS
from ..shared.files import atomic_write
from ..shared.text import visible
from . import SEVERITIES, Report

CHART_REPS = 25  # reps drawn in the per-rep charts (the tables list every one)
KINDS = (*ACTIVITY_KINDS, "other")
SEVERITY_COLORS = {"high": "#d62728", "medium": "#ff7f0e", "low": "#1f77b4"}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
.chart{width:100%;height:420px}
table{border-collapse:collapse;font-size:.85em;margin:1em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
td.n,th.n{text-align:right}
details{margin:.5em 0}.note{color:#666;font-size:.9em}
"""


def _t(value: object) -> str:
    """CRM text for the page: control characters shown as escapes, then HTML-escaped."""
    return html.escape(visible(value), quote=True)


def _json_for_script(value: str) -> str:
    return value.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric_from: int = 1) -> str:
    head = "".join(f'<th class="{"n" if i >= numeric_from else ""}">{_t(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if i >= numeric_from else ""}">{_t(c)}</td>'
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(report: Report) -> dict[str, Any]:
    import plotly.graph_objects as go

    figs: dict[str, Any] = {}
    label = lambda s, i: _t(report.label(s, i))  # noqa: E731  (plotly reads labels as HTML)
    # 1. the feedback loop
    run_ids = report.run_ids()
    x = [f"run {r}" for r in run_ids]
    by_rule: dict[str, dict[int, Any]] = defaultdict(dict)
    for rr in report.run_rules:
        by_rule[rr.rule][rr.run_id] = rr
    fig = go.Figure()
    for rule, per_run in sorted(by_rule.items()):
        fig.add_bar(name=_t(f"{rule} open"), x=x, y=[getattr(per_run.get(r), "open", 0) for r in run_ids])
    for what, dash in (("new", "solid"), ("resolved", "dot")):
        fig.add_scatter(name=f"{what} (all rules)", x=x, mode="lines+markers", line={"dash": dash},
                        y=[sum(getattr(p.get(r), what, 0) for p in by_rule.values()) for r in run_ids])
    fig.update_layout(barmode="stack", title="Open findings per run, by rule; new and resolved")
    figs["runs"] = fig
    # 2. owners with the most open findings
    fig = go.Figure()
    ylabels = [label(o.source, o.owner_id) for o in report.owners][::-1]
    for sev in SEVERITIES:
        fig.add_bar(name=sev, orientation="h", y=ylabels, marker_color=SEVERITY_COLORS[sev],
                    x=[o.by_severity.get(sev, 0) for o in report.owners][::-1])
    fig.update_layout(barmode="stack", title="Owners with the most open findings",
                      margin={"l": 260}, yaxis={"dtick": 1},  # every name, none skipped
                      height=max(420, 24 * len(ylabels) + 160))
    figs["owners"] = fig
    # 3. the handoff SLA
    top = report.handoffs[:CHART_REPS]
    xl = [label(h.source, h.rep_id) for h in top]
    fig = go.Figure()
    fig.add_bar(name="handoffs received", x=xl, y=[h.received for h in top])
    fig.add_bar(name=f"touched within {report.sla_days} days", x=xl, y=[h.within_sla for h in top])
    fig.add_scatter(name="median days to first touch", x=xl, yaxis="y2", mode="markers",
                    marker={"size": 10, "symbol": "diamond"}, y=[h.median_days for h in top])
    fig.update_layout(barmode="group", title="Handoff SLA per receiving rep", xaxis={"dtick": 1},
                      yaxis2={"overlaying": "y", "side": "right", "title": "days",
                                                 "rangemode": "tozero"})
    figs["handoffs"] = fig
    # 4. activity per week by kind, then per rep per week
    weeks = sorted({a.week_start for a in report.activity})
    wx = [f"{w:%Y-%m-%d}" for w in weeks]
    fig = go.Figure()
    for kind in KINDS:
        per_week: dict[Any, int] = defaultdict(int)
        for a in report.activity:
            per_week[a.week_start] += a.by_kind[kind]
        if any(per_week.values()):
            fig.add_bar(name=kind, x=wx, y=[per_week[w] for w in weeks])
    fig.update_layout(barmode="stack", title="Activity per week by kind (all reps)",
                      xaxis={"type": "category"})
    figs["activity"] = fig
    totals: dict[tuple[str, str], int] = defaultdict(int)
    cells: dict[tuple[str, str], dict[Any, int]] = defaultdict(dict)
    for a in report.activity:
        totals[(a.source, a.rep_id)] += a.total
        cells[(a.source, a.rep_id)][a.week_start] = a.total
    reps = sorted(totals, key=lambda k: (-totals[k], k))[:CHART_REPS]
    fig = go.Figure(go.Heatmap(x=wx, y=[label(*k) for k in reps], colorscale="Blues",
                               z=[[cells[k].get(w, 0) for w in weeks] for k in reps]))
    fig.update_layout(title=f"Activities per rep per week (the {len(reps)} busiest reps)",
                      margin={"l": 260}, yaxis={"dtick": 1}, xaxis={"type": "category"},
                      height=max(420, 24 * len(reps) + 160))
    figs["activity_reps"] = fig
    return figs


def _sections(report: Report) -> dict[str, tuple[str, str]]:
    """Per chart: its heading and the table under it."""
    lab = report.label
    runs = _table(["run", "as of (UTC)", "rule", "open", "new", "resolved"],
                  [(r.run_id, f"{r.as_of:%Y-%m-%d %H:%M}", r.rule, r.open, r.new, r.resolved)
                   for r in report.run_rules], numeric_from=3)
    owners = _table(["owner", "source", *SEVERITIES, "open"],
                    [(o.label, o.source, *(o.by_severity.get(s, 0) for s in SEVERITIES), o.total)
                     for o in report.owners], numeric_from=2)
    hand = _table(["rep", "source", "handoffs received", "touched",
                   f"touched within {report.sla_days} days", "median days to first touch"],
                  [(lab(h.source, h.rep_id), h.source, h.received, h.touched, h.within_sla,
                    "" if h.median_days is None else h.median_days) for h in report.handoffs],
                  numeric_from=2)
    act = _table(["week of", "rep", "source", *KINDS, "all"],
                 [(f"{a.week_start:%Y-%m-%d}", lab(a.source, a.rep_id), a.source,
                   *(a.by_kind[k] for k in KINDS), a.total) for a in report.activity],
                 numeric_from=3)
    since = f"{report.since:%Y-%m-%d}" if report.since else ""
    return {
        "runs": (f"Findings over the last {len(report.run_ids())} run(s)", runs),
        "owners": ("Owners with the most open findings", owners),
        "handoffs": (f"Handoff SLA since {since} (HND001: first touch within "
                     f"{report.sla_days} days)", hand),
        "activity": (f"Activity since {since}", ""),
        "activity_reps": ("Activity per rep per week by kind", act),
    }


def report_html(report: Report) -> str:
    """The whole page, as text."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    figs = _figures(report)
    parts, calls = [], []
    for key, (heading, table) in _sections(report).items():
        parts.append(f"<h2>{_t(heading)}</h2>")
        parts.append(f'<div id="chart-{key}" class="chart" data-chart="{key}"></div>')
        if table:
            parts.append(f"<details><summary>Table</summary>{table}</details>")
        fig_json = _json_for_script(pio.to_json(figs[key], validate=False))
        calls.append(f"draw('chart-{key}', {fig_json})")
    script = (
        "function draw(id, fig){var el=document.getElementById(id);"
        "if(fig.layout.height){el.style.height=fig.layout.height+'px';}"
        "return Plotly.newPlot(el, fig.data, fig.layout, {displaylogo:false,responsive:true});}"
        f"Promise.all([{','.join(calls)}]).then(function(){{"
        "document.body.dataset.chartsDrawn=String(performance.now());});"
    )
    title = f"roe report, as of {report.as_of:%Y-%m-%d %H:%M} UTC"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_t(title)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{_t(title)}</h1>"
        '<p class="note">Made by roe from the mirror; opens with no network.</p>'
        + "".join(parts) + f"<script>{script}</script></body></html>"
    )


def check_target(path: Path, *, force: bool = False) -> None:
    """Refuse a folder, a missing folder, and an existing file unless ``force``."""
    from ..shared.errors import UsageError

    if path.is_dir():
        raise UsageError(f"{path} is a folder.", "Give a file name, e.g. report.html.")
    if not path.parent.is_dir():
        raise UsageError(f"The folder {path.parent} does not exist.",
                         "Create it first, or write the report somewhere else.")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists.",
                         "Pass --force to replace it, or choose another file name.")


def write_report_html(report: Report, path: Path, *, force: bool = False) -> int:
    """Write the page to ``path`` atomically (an existing file only with ``force``); its size."""
    check_target(path, force=force)
    data = report_html(report).encode("utf-8")
    atomic_write(path, data)
    return len(data)
