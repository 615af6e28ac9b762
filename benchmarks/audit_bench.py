"""The demo-org and rule-pass steps of ``make bench`` (``python -m benchmarks`` drives them).

* demo: ``load_demo_org`` generates the org in a child process; its wall time and peak RSS (the
  main process and its generator workers).
* audit: the floor (``benchmarks/audit_floor.py``: every rule as hand-written SQL on plain
  ``sqlite3``) and roe's ``run_audit`` on the same mirror, ``runs`` times each, alternating,
  each pass in a fresh process (``python -m benchmarks --child floor|roe``) so its peak RSS is
  its own. Per rule the median seconds and the ratio, then the whole pass. The two must find the
  same rows for every rule; if they do not, that is printed as an error and the run fails.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEMO_SECONDS_TARGET = 120.0
# The targets: about a minute at 1,000,000 accounts (growing linearly: 6 s at 100,000),
# under 2 GiB, within twice the floor.
SECONDS_PER_MILLION_TARGET = 60.0
PASS_RSS_TARGET_MIB = 2048.0
RATIO_TARGET = 2.0
# One audit pass (floor or roe) longer than this is stopped and fails the run: at 1,000,000
# accounts a pass takes a minute or two; a plan that flipped takes hours.
PASS_TIMEOUT = float(os.environ.get("BENCH_PASS_TIMEOUT", 900))


class PassTimeout(RuntimeError):
    """An audit pass ran past PASS_TIMEOUT."""


# -- small helpers -----------------------------------------------------------------------------


def maxrss_mib(value: int) -> float:
    """``ru_maxrss`` in MiB (KiB on Linux, bytes on macOS)."""
    return value / (1024 * 1024) if sys.platform == "darwin" else value / 1024


def _status_mib(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_rss_mib() -> float | None:
    """This process's resident set now (Linux), for the before-the-pass baseline."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """This process's own peak resident set: ``VmHWM`` (Linux), which starts afresh at exec.
    (``ru_maxrss`` does not: Linux carries the parent's high-water mark over into a child at exec,
    so a pass started by a bench process that had grown to 2.4 GiB while tiling the 1,000,000-
    account org reported 2.4 GiB whatever it used.)"""
    hwm = _status_mib("VmHWM")
    return hwm if hwm is not None else maxrss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def warm(db: Path) -> None:
    """Read the mirror (and its WAL) once, so every pass starts with it in the OS file cache:
    this VM drops cached pages on its own, and a cold first query would pass for slowness."""
    for path in (db, Path(f"{db}-wal")):
        try:
            with open(path, "rb", buffering=0) as f:
                while f.read(8 << 20):
                    pass
        except OSError:
            pass


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """``median (min-max)``."""
    if not values:
        return "-"
    return f"{fmt.format(med(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# -- the mirror --------------------------------------------------------------------------------


def default_db(accounts: int, seed: int) -> Path:
    return Path(tempfile.gettempdir()) / "roe-bench" / f"demo-{accounts}-seed{seed}.db"


def demo_in(db: Path) -> dict | None:
    """The demo org the mirror holds (seed, size, as-of, accounts actually loaded), or None."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT seed, accounts, as_of, created_at FROM demo_orgs WHERE source = 'demo'"
            ).fetchone()
            if row is None:
                return None
            loaded = conn.execute("SELECT count(*) FROM accounts WHERE source = 'demo'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return {"seed": row[0], "accounts": row[1], "as_of": row[2], "created_at": row[3], "loaded": loaded}


def org_sizes(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table} WHERE source = 'demo'").fetchone()[0]
            for table in ("accounts", "contacts", "opportunities", "activities", "ownership_changes")
        }
    finally:
        conn.close()


def remove_mirror(db: Path) -> None:
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)


# -- child processes ---------------------------------------------------------------------------


def run_child(kind: str, *args: str) -> tuple[dict, float, float]:
    """Run ``python -m benchmarks --child KIND ...``; return its JSON report, its wall time and
    its peak RSS in MiB as the kernel accounts it (``wait4``: the child, or its largest
    descendant if that was bigger)."""
    with tempfile.NamedTemporaryFile(prefix=f"roe-bench-{kind}-", suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    try:
        cmd = [sys.executable, "-m", "benchmarks", "--child", kind, "--out", str(out), *args]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT)
        limit = PASS_TIMEOUT if kind in ("floor", "roe") else None
        timer = threading.Timer(limit, proc.kill) if limit else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if limit and wall >= limit:
            raise PassTimeout(f"the {kind} pass took over {limit:.0f} s and was stopped: a query "
                              "plan off its intended shape? (python -m benchmarks.audit_floor "
                              "--explain CODE; BENCH_PASS_TIMEOUT to allow more)")
        if proc.returncode != 0:
            raise RuntimeError(f"the {kind} process failed (exit status {proc.returncode})")
        report = json.loads(out.read_text())
        # The child's own high-water mark; wait4's ru_maxrss would include this process's (see
        # peak_rss_mib), so it is only the fallback.
        return report, wall, report.get("rss_mib") or maxrss_mib(usage.ru_maxrss)
    finally:
        out.unlink(missing_ok=True)


def child_demo(args) -> dict:
    from roe_cli.db import open_database
    from roe_cli.demo import load_demo_org
    from roe_cli.settings import database_url

    started = time.perf_counter()
    engine = open_database(database_url(args.db))
    migrated = time.perf_counter()
    done = 0
    halves = [0.0, 0.0]  # the largest RSS seen while loading the first and the second half

    def on_chunk(n: int) -> None:
        nonlocal done
        done += n
        rss = current_rss_mib() or 0.0
        half = 0 if done <= args.accounts / 2 else 1
        halves[half] = max(halves[half], rss)

    counts = load_demo_org(engine, args.accounts, args.seed, on_chunk=on_chunk)
    finished = time.perf_counter()
    engine.dispose()
    return {
        "counts": counts,
        "migrate_seconds": migrated - started,
        "seconds": finished - migrated,
        "main_rss_mib": peak_rss_mib(),
        "worker_rss_mib": maxrss_mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
        "first_half_rss_mib": halves[0],
        "second_half_rss_mib": halves[1],
    }


def child_floor(args) -> dict:
    from benchmarks.audit_floor import run_floor
    from roe_cli.rulesfile import load_rules
    from roe_cli.shared.clock import parse_as_of

    config = load_rules(Path(args.rules))
    before = current_rss_mib()
    r = run_floor(args.db, config, parse_as_of(args.as_of), with_digests=True)
    return {
        "rules": {code: {"seconds": r.seconds[code], "findings": r.counts[code]} for code in r.counts},
        "setup_seconds": r.setup_seconds,
        "seconds": r.total_seconds,
        "digests": r.digests,
        "rss_before_mib": before,
        "rss_mib": peak_rss_mib(),
    }


def child_roe(args) -> dict:
    from benchmarks.audit_floor import digest, roe_digests
    from roe_cli.audit import run_audit
    from roe_cli.db import open_database
    from roe_cli.rulesfile import load_rules
    from roe_cli.settings import database_url
    from roe_cli.shared.clock import parse_as_of

    engine = open_database(database_url(args.db))
    config = load_rules(Path(args.rules))
    before = current_rss_mib()
    result = run_audit(engine, config, parse_as_of(args.as_of))
    rss = peak_rss_mib()
    stored = roe_digests(engine, result.run_id)
    digests = {code: stored.get(code, digest([])) for code in result.rules}  # none found: empty
    engine.dispose()
    return {
        "rules": {
            code: {"seconds": r.seconds, "findings": r.open + r.waived, "name": r.name,
                   "new": r.new, "resolved": r.resolved}
            for code, r in result.rules.items()
        },
        "setup_seconds": result.setup_seconds,
        "seconds": result.seconds,
        "digests": digests,
        "rss_before_mib": before,
        "rss_mib": rss,
    }


CHILDREN = {"demo": child_demo, "floor": child_floor, "roe": child_roe}


# -- the benchmarks ----------------------------------------------------------------------------


def bench_demo(db: Path, accounts: int, seed: int) -> dict:
    print(f"\n== Demo org: {accounts:,} accounts (seed {seed}) into {db}")
    data, wall, _ = run_child("demo", "--db", str(db), "--accounts", str(accounts),
                                     "--seed", str(seed))
    c = data["counts"]
    print(f"   {c['account']:,} accounts, {c['contact']:,} contacts, {c['opportunity']:,} "
          f"opportunities, {c['activity']:,} activities, {c['ownership_change']:,} ownership changes")
    print(f"   load_demo_org: {data['seconds']:.1f} s  (process wall time {wall:.1f} s, of which "
          f"schema migrations {data['migrate_seconds']:.1f} s)   target < {DEMO_SECONDS_TARGET:.0f} s: "
          f"{verdict(data['seconds'] < DEMO_SECONDS_TARGET)}")
    main, worker = data["main_rss_mib"], data["worker_rss_mib"]
    print(f"   peak RSS: main process {main:,.0f} MiB, largest generator worker {worker:,.0f} MiB "
          f"(2 workers from 20,000 accounts; all together at most {main + 2 * worker:,.0f} MiB)")
    first, second = data["first_half_rss_mib"], data["second_half_rss_mib"]
    if first and second:
        grew = second - first
        print(f"   bounded memory: main RSS peaked at {first:,.0f} MiB in the first half of the "
              f"accounts and {second:,.0f} MiB in the second ({grew:+,.0f} MiB): "
              f"{'flat, it does not grow with the org' if grew <= max(32.0, 0.1 * first) else 'GROWS with the org'}")
    return {"accounts": accounts, "seconds": round(data["seconds"], 1), "counts": c,
            "main_rss_mib": round(main), "worker_rss_mib": round(worker)}


def bench_audit(db: Path, runs: int, rules: str, as_of: str) -> tuple[bool, dict]:
    """Returns whether the floor and roe agree on every rule in every run, and the figures."""
    sizes = org_sizes(db)
    print(f"\n== Rule pass: {sizes['accounts']:,} accounts, {sizes['contacts']:,} contacts, "
          f"{sizes['opportunities']:,} opportunities, {sizes['activities']:,} activities, "
          f"as of {as_of[:16]} UTC")
    print(f"   {runs} run(s) each of the floor (hand-written SQL, plain sqlite3) and roe "
          "(run_audit, storing findings), alternating and in fresh processes; the mirror is read "
          "into the OS file cache before each pass")
    floors: list[dict] = []
    roes: list[dict] = []
    agree = True
    for i in range(runs):
        order = ("floor", "roe") if i % 2 == 0 else ("roe", "floor")
        line = []
        for kind in order:
            warm(db)
            data, _, rss = run_child(kind, "--db", str(db), "--rules", rules, "--as-of", as_of)
            data["peak_rss_mib"] = rss
            (floors if kind == "floor" else roes).append(data)
            line.append(f"{kind} {data['seconds']:.2f} s, {rss:,.0f} MiB")
        print(f"   run {i + 1}/{runs}: " + " | ".join(line), flush=True)
        f, r = floors[-1], roes[-1]
        for code, fr in f["rules"].items():
            theirs = r["rules"].get(code, {}).get("findings")
            if fr["findings"] != theirs or f["digests"][code] != r["digests"].get(code):
                agree = False
                print(f"   ERROR: {code}: the floor found {fr['findings']:,} rows, roe {theirs} "
                      "(or not the same rows): the floor is not the same rule!", file=sys.stderr)

    codes = list(roes[0]["rules"])
    print(f"\n   {'rule':<7} {'name':<27} {'findings':>8}   {'floor s, median (min-max)':<26} "
          f"{'roe s, median (min-max)':<26} {'roe/floor':>9}")
    over = []
    for code in codes:
        fs = [d["rules"][code]["seconds"] for d in floors]
        rs = [d["rules"][code]["seconds"] for d in roes]
        rate = med(rs) / med(fs) if med(fs) > 0 else 0.0
        flag = ""
        if rate > RATIO_TARGET:
            slow = med(rs) - med(fs) > 0.1
            if slow:
                over.append(code)
            flag = "  <- over 2x" + ("" if slow else " (by under 0.1 s)")
        print(f"   {code:<7} {roes[0]['rules'][code]['name']:<27} "
              f"{roes[0]['rules'][code]['findings']:>8,}   {spread(fs):<26} {spread(rs):<26} "
              f"{ratio(med(rs), med(fs)):>9}{flag}")
    f_rules = [sum(r["seconds"] for r in d["rules"].values()) for d in floors]
    r_rules = [sum(r["seconds"] for r in d["rules"].values()) for d in roes]
    f_rest = [d["seconds"] - s for d, s in zip(floors, f_rules, strict=True)]
    r_rest = [d["seconds"] - s for d, s in zip(roes, r_rules, strict=True)]
    f_total = [d["seconds"] for d in floors]
    r_total = [d["seconds"] for d in roes]
    total_findings = sum(r["findings"] for r in roes[0]["rules"].values())
    print(f"   {'':<7} {'all the rules':<27} {total_findings:>8,}   {spread(f_rules):<26} "
          f"{spread(r_rules):<26} {ratio(med(r_rules), med(f_rules)):>9}")
    print(f"   {'':<7} {'rest of the pass (1)':<27} {'':>8}   {spread(f_rest):<26} "
          f"{spread(r_rest):<26}")
    print(f"   {'':<7} {'WHOLE PASS':<27} {'':>8}   {spread(f_total):<26} {spread(r_total):<26} "
          f"{ratio(med(r_total), med(f_total)):>9}")
    f_rss = [d["peak_rss_mib"] for d in floors]
    r_rss = [d["peak_rss_mib"] for d in roes]
    f_base = [d["rss_before_mib"] or 0 for d in floors]
    r_base = [d["rss_before_mib"] or 0 for d in roes]
    print(f"   {'':<7} {'peak RSS, MiB':<27} {'':>8}   {spread(f_rss, '{:,.0f}'):<26} "
          f"{spread(r_rss, '{:,.0f}'):<26}")
    print(f"   {'':<7} {'  of which before the pass':<27} {'':>8}   {spread(f_base, '{:,.0f}'):<26} "
          f"{spread(r_base, '{:,.0f}'):<26}")
    print("   (1) floor: ANALYZE and the lookup tables; roe: ANALYZE, lookup tables, waivers, "
          "storing the findings with their history, the run record")
    print("   Per-rule ratios of a few tenths of a second are mostly noise: this machine has "
          f"{os.cpu_count()} cores shared with other jobs; compare medians, and mind the min-max.")

    ok_ratio = med(r_total) <= RATIO_TARGET * med(f_total)
    print(f"\n   targets: roe within {RATIO_TARGET:.0f}x the floor: {med(r_total):.2f} s vs "
          f"{RATIO_TARGET:.0f} x {med(f_total):.2f} s = {RATIO_TARGET * med(f_total):.2f} s: {verdict(ok_ratio)}; "
          + (f"about {SECONDS_PER_MILLION_TARGET:.0f} s per 1,000,000 accounts: "
             f"{med(r_total) * 1e6 / sizes['accounts']:.0f} s projected linearly, "
             f"{verdict(med(r_total) * 1e6 / sizes['accounts'] <= SECONDS_PER_MILLION_TARGET)}; "
             if sizes["accounts"] >= 100_000 else "")
          + f"peak RSS under {PASS_RSS_TARGET_MIB:,.0f} MiB: {max(r_rss):,.0f} MiB, "
          f"{verdict(max(r_rss) < PASS_RSS_TARGET_MIB)}")
    if over:
        print(f"   rules over {RATIO_TARGET:.0f}x their floor by more than 0.1 s: {', '.join(over)}; "
              "roe's query plans (the floor's: python -m benchmarks.audit_floor --explain CODE):")
        for code in over:
            print(f"\n   -- {code} (roe), EXPLAIN QUERY PLAN")
            try:
                for line in roe_plan(db, rules, as_of, code):
                    print("   " + line)
            except Exception as exc:  # a plan is a diagnostic; never lose the figures over it
                print(f"   (no plan: {exc})")
    if not agree:
        print("\nERROR: the floor and roe found different rows (see above): the timings compare "
              "different work.", file=sys.stderr)
    figures = {
        "org": sizes, "as_of": as_of, "runs": runs, "agree": agree,
        "rules": {code: {"findings": roes[0]["rules"][code]["findings"],
                         "floor_seconds": round(med([d["rules"][code]["seconds"] for d in floors]), 3),
                         "roe_seconds": round(med([d["rules"][code]["seconds"] for d in roes]), 3)}
                  for code in codes},
        "findings": total_findings,
        "floor_seconds": round(med(f_total), 2), "roe_seconds": round(med(r_total), 2),
        "roe_seconds_min_max": [round(min(r_total), 2), round(max(r_total), 2)],
        "ratio": round(med(r_total) / med(f_total), 2) if med(f_total) > 0 else None,
        "floor_peak_rss_mib": round(max(f_rss)), "roe_peak_rss_mib": round(max(r_rss)),
        "rules_over_2x_floor": over,
    }
    return agree, figures


def roe_plan(db: Path, rules: str, as_of: str, code: str) -> list[str]:
    """roe's ``EXPLAIN QUERY PLAN`` for one rule, with its lookup tables built (not stored)."""
    from roe_cli.db import open_database
    from roe_cli.rules.context import RuleContext
    from roe_cli.rulesfile import load_rules
    from roe_cli.settings import database_url
    from roe_cli.shared.clock import parse_as_of

    engine = open_database(database_url(str(db)))
    config = load_rules(Path(rules))
    lines: list[str] = []
    try:
        with engine.connect() as conn:
            ctx = RuleContext(conn=conn, now=parse_as_of(as_of), config=config)
            for rule, params in config.enabled_rules([code]):
                queries = rule.query(ctx, params)
                for q in queries if isinstance(queries, list) else [queries]:
                    sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
                    for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql):
                        lines.append(f"{row[0]:>4} {row[1]:>4}  {row[3]}")
            conn.rollback()
    finally:
        engine.dispose()
    return lines
