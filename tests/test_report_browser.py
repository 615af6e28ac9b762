"""The HTML report in a real headless browser (Debian's Chromium through Playwright; never
`playwright install`): it loads from file:// with no console or page error, draws every chart,
fetches nothing but itself, and shows hostile names as text. With ROE_UPDATE_SCREENSHOT=1 it saves
its screenshot as docs/report.png (the README's; a plain run never touches a tracked file). Skipped
only when Chromium is absent and CI is not set: in CI it must run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from roe_cli.models import findings, owners

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "report.png"
CHARTS = ("runs", "owners", "handoffs", "activity", "activity_reps")
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser_or_skip():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing is None and not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)
    return sync_playwright


def test_the_html_report_opens_offline_in_chromium_with_every_chart_drawn_and_hostile_names_as_text(
        roe, org, tmp_path):
    sync_playwright = _browser_or_skip()
    assert roe("audit", "--as-of", "2026-11-08", "--fail-on", "never").exit_code == 0
    with org.begin() as conn:
        busiest = conn.execute(select(findings.c.owner_id).where(findings.c.status == "open")
                               .group_by(findings.c.owner_id).order_by(func.count().desc())
                               .limit(1)).scalar_one()
        conn.execute(update(owners).where(owners.c.id == busiest).values(name=HOSTILE))
    out = tmp_path / "report.html"
    res = roe("report", "--html", str(out))
    assert res.exit_code == 0, res.output
    url = out.as_uri()

    requests: list[str] = []
    problems: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            # Anything but the page itself is refused (and recorded above all the same).
            page.route("**/*", lambda route: route.continue_() if route.request.url == url
                       else route.abort())
            page.goto(url, wait_until="load")
            page.wait_for_function("document.body.dataset.chartsDrawn !== undefined", timeout=20000)
            drawn_ms = float(page.evaluate("document.body.dataset.chartsDrawn"))
            sizes = {key: page.eval_on_selector(
                f"#chart-{key}", "el => {const s = el.querySelector('svg.main-svg');"
                " const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};"
                " return [r.width, r.height, el.querySelectorAll('.trace, .hm, image').length];}")
                for key in CHARTS}
            tables_text = page.eval_on_selector_all(  # collapsed under each chart, still there
                "table", "ts => ts.map(t => t.textContent).join('\\n')")
            owner_labels = page.text_content("#chart-owners") or ""
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()

    assert problems == []
    assert dialogs == []  # no alert ran
    assert requests == [url], f"the page fetched more than itself: {requests}"
    for key, (width, height, marks) in sizes.items():
        assert width > 0 and height > 0 and marks > 0, f"chart {key} not drawn: {sizes[key]}"
    assert HOSTILE in owner_labels  # shown as text in the chart's labels
    assert HOSTILE in tables_text  # and in the owners' table
    assert drawn_ms < 10000  # a 300-account org; the 100,000-account figure is in the report
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("ROE_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes((tmp_path / "report.png").read_bytes())
