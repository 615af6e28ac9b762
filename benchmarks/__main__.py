"""roe's benchmarks (``make bench``): the audit at three sizes against its floor, and the rest.

    .venv/bin/python -m benchmarks [--sizes 10000,100000,1000000] [--runs 3] [--seed 42]
                                   [--only all|audit|demo] [--skip ingest,skew,api,export]
                                   [--fresh] [--results bench/results.json]

``BENCH_SIZES`` (or ``--sizes``; ``--accounts N`` for one size) chooses the sizes; for each, in
increasing order:

* the org: a demo org of that size (``benchmarks/orgs.py``: above 100,000 accounts a demo org of
  ``size / k`` accounts copied ``k`` times inside SQLite, same ratios; the smaller size's mirror
  is reused as the first copy). A mirror in the temp folder holding the org is reused between
  runs unless ``--fresh``; the time to build it is in the results when it was built;
* the audit: floor and roe, ``--runs`` passes each in fresh processes (``audit_bench.py``): seconds
  per rule and in all, peak RSS, the ratio; a rule where they find different rows fails the run.

Then, once: the growth per tenfold; the skewed org at 100,000 accounts (``orgs.skew``) against
the balanced one, per record; ingest through ``write_page`` vs raw ``executemany``
(``ingest.py``; PostgreSQL too with ``BENCH_POSTGRES_URL``); the API-call scripts (``*_calls.py``
on the emulators); the exports of the largest org's findings. Everything goes to
``bench/results.json`` (with the date, the machine and the versions) and a summary table.
The exit status is 1 when roe and the floor disagreed on any rule of any org, when any of
roe's or the floor's query plans is off its pinned shape after an org's audit (``plans.py``), or
when an audit pass ran past ``BENCH_PASS_TIMEOUT`` seconds (default 900: a plan that flipped; the figures of
the sizes done so far are still written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import audit_bench as ab  # noqa: E402
from benchmarks import extras, ingest, orgs, plans  # noqa: E402

DEFAULT_SIZES = "10000,100000,1000000"
SKEW_SIZE = 100_000
SKEW_TARGET = 1.5
INGEST_ACCOUNTS = 10_000
STEPS = ("ingest", "skew", "api", "export")


def sizes_from(text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"BENCH_SIZES / --sizes: {text!r} is not a list of account counts "
                         "(e.g. 10000,100000)") from None
    if not sizes or sizes[0] < 1:
        raise SystemExit("BENCH_SIZES / --sizes: give at least one size, each at least 1")
    return sizes


def ensure_org(size: int, seed: int, fresh: bool, built: dict[int, Path]) -> tuple[Path, dict | None]:
    """The mirror holding the bench org of ``size`` accounts; how it was built (None: reused)."""
    db = ab.default_db(size, seed)
    db.parent.mkdir(parents=True, exist_ok=True)
    base, copies = orgs.tiles_for(size)
    total = base * copies
    have = ab.demo_in(db)
    if not fresh and have and have["seed"] == seed and have["accounts"] == total == have["loaded"]:
        print(f"\nReusing {db}: it holds the bench org of {total:,} accounts (built "
              f"{have['created_at'][:19]}); --fresh to rebuild it.")
        return db, None
    ab.remove_mirror(db)
    started = time.perf_counter()
    figures: dict = {"tiles": copies, "accounts_per_tile": base}
    source = built.get(base)
    if copies > 1 and source is not None:
        shutil.copyfile(source, db)  # this run's smaller org is the first tile
        figures["first_tile"] = f"copied from the {base:,}-account org"
    else:
        figures["demo"] = ab.bench_demo(db, base, seed)
    if copies > 1:
        print(f"   copying it {copies - 1} more times for {total:,} accounts ...", flush=True)
        figures["tile_seconds"] = round(orgs.tile(db, copies, total), 1)
        print(f"   copied in {figures['tile_seconds']:.0f} s")
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return db, figures


def records(org: dict[str, int]) -> int:
    return sum(org[t] for t in ("accounts", "contacts", "opportunities", "activities"))


def growth(audits: dict[int, dict]) -> list[dict]:
    """Per step between sizes: roe's and the floor's seconds ratio, and per tenfold."""
    import math

    out = []
    sizes = sorted(audits)
    for small, big in zip(sizes, sizes[1:], strict=False):
        a, b = audits[small], audits[big]
        factor = big / small
        entry = {"from": small, "to": big}
        for who in ("roe", "floor"):
            if a[f"{who}_seconds"] > 0:
                r = b[f"{who}_seconds"] / a[f"{who}_seconds"]
                entry[f"{who}_ratio"] = round(r, 2)
                entry[f"{who}_per_tenfold"] = round(r ** (1 / math.log10(factor)), 2)
        entry["linear_or_better"] = entry.get("roe_per_tenfold", 0) <= 10.0 * 1.1
        out.append(entry)
    return out


def bench_skew(audits: dict[int, dict], built: dict[int, Path], runs: int, rules: str) -> dict:
    """The skewed copy of the audited org nearest 100,000 accounts, audited like the others."""
    done = sorted(audits)
    size = max([s for s in done if s <= SKEW_SIZE] or [done[0]])
    skewed = built[size].with_name(f"skewed-{built[size].name}")
    print(f"\n== Skewed org ({size:,} accounts): {skewed}")
    moved = orgs.skew(built[size], skewed)
    try:
        ok, figures = ab.bench_audit(skewed, runs, rules, ab.demo_in(skewed)["as_of"])
        off = plans.off_pinned_plans(skewed, rules, ab.demo_in(skewed)["as_of"])
        ok &= plans.report(off, "the skewed org")
    except ab.PassTimeout as exc:
        print(f"ERROR on the skewed org: {exc}", file=sys.stderr)
        return {"accounts": size, "skew": moved, "error": str(exc), "agree": False, "met": False}
    finally:
        ab.remove_mirror(skewed)
    per = figures["roe_seconds"] / records(figures["org"])
    balanced = audits[size]
    per_balanced = balanced["roe_seconds"] / records(balanced["org"])
    return {"accounts": size, "skew": moved, "audit": figures, "agree": ok, "plans": off,
            "per_record_ratio": round(per / per_balanced, 2), "target": SKEW_TARGET,
            "met": per <= SKEW_TARGET * per_balanced}


def summary(results: dict) -> None:
    print("\n== Summary")
    print(f"   {'accounts':>10} {'records':>11} {'findings':>9} {'floor s':>8} {'roe s':>7} "
          f"{'roe/floor':>9} {'roe RSS MiB':>11}")
    for size, a in sorted(results["audit"].items(), key=lambda kv: int(kv[0])):
        print(f"   {int(size):>10,} {records(a['org']):>11,} {a['findings']:>9,} "
              f"{a['floor_seconds']:>8.2f} {a['roe_seconds']:>7.2f} {a['ratio'] or 0:>8.2f}x "
              f"{a['roe_peak_rss_mib']:>11,}")
    for g in results.get("growth", []):
        print(f"   growth {g['from']:,} -> {g['to']:,}: roe x{g.get('roe_ratio')}, floor "
              f"x{g.get('floor_ratio')} (per tenfold: roe x{g.get('roe_per_tenfold')})")
    sk = results.get("skew")
    if sk and "error" in sk:
        print(f"   skewed org: {sk['error']}")
    elif sk:
        print(f"   skewed org: {sk['per_record_ratio']:.2f}x the balanced org's seconds per record "
              f"(target <= {SKEW_TARGET}): {ab.verdict(sk['met'])}")
    ing = results.get("ingest")
    if ing:
        for line in ingest.describe(ing):
            print("   ingest: " + line)
    ex = results.get("export")
    if ex:
        html = ex["report_html"]
        print(f"   export of {ex['findings']:,} findings: CSV {ex['csv']['seconds']} s, Parquet "
              f"{ex['parquet']['seconds']} s, report --html {html['seconds']} s "
              f"({html['bytes'] / 2**20:.1f} MiB)")


def save(results: dict, path: str) -> Path:
    """Write the figures so far (after every step: a run stopped later keeps them)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", DEFAULT_SIZES))
    parser.add_argument("--accounts", type=int, help="one size (instead of --sizes)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)),
                        help="passes of each, floor and roe (default 3)")
    parser.add_argument("--only", choices=("audit", "demo", "all"), default="all")
    parser.add_argument("--skip", default="", help=f"steps to leave out: {','.join(STEPS)}")
    parser.add_argument("--fresh", action="store_true", help="rebuild the orgs even if a mirror holds them")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--rules", default=str(ROOT / "rules.toml"), help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(ab.CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        Path(args.out).write_text(json.dumps(ab.CHILDREN[args.child](args)))
        return 0
    sizes = [args.accounts] if args.accounts else sizes_from(args.sizes)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.runs < 1 or skip - set(STEPS):
        parser.error(f"--runs must be at least 1; --skip takes {', '.join(STEPS)}")

    started = time.perf_counter()
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                     "machine": extras.machine(), "sizes": sizes, "seed": args.seed,
                     "runs": args.runs, "orgs": {}, "audit": {}}
    m = results["machine"]
    print(f"roe benchmarks at {', '.join(f'{s:,}' for s in sizes)} accounts: {m['cpu']}, "
          f"{m['cores']} cores, {m['ram_gib']} GiB, Python {m['python']}, SQLite {m['sqlite']}, "
          f"SQLAlchemy {m['sqlalchemy']}")
    agree = True
    built: dict[int, Path] = {}
    for size in sizes:
        db, how = ensure_org(size, args.seed, args.fresh or args.only == "demo", built)
        built[size] = db
        results["orgs"][size] = how or {"reused": True}
        if args.only in ("audit", "all"):
            try:
                ok, figures = ab.bench_audit(db, args.runs, args.rules, ab.demo_in(db)["as_of"])
            except ab.PassTimeout as exc:
                print(f"ERROR at {size:,} accounts: {exc}", file=sys.stderr)
                results["audit_failed"] = {"accounts": size, "error": str(exc)}
                agree = False
                break
            agree &= ok
            results["audit"][size] = figures
            results.setdefault("plans", {})[size] = plans.off_pinned_plans(
                db, args.rules, ab.demo_in(db)["as_of"])
            on_shape = plans.report(results["plans"][size], f"{size:,} accounts")
            results["plans_on_shape"] = results.get("plans_on_shape", True) and on_shape
            agree &= on_shape
            save(results, args.results)
    results["growth"] = growth(results["audit"])

    if args.only == "all":
        if "skew" not in skip and results["audit"]:
            results["skew"] = bench_skew(results["audit"], built, args.runs, args.rules)
            agree &= results["skew"]["agree"]
        if "ingest" not in skip:
            n = min(INGEST_ACCOUNTS, sizes[0])
            print(f"\n== Ingest: {n:,} accounts' records through write_page vs raw executemany",
                  flush=True)
            results["ingest"] = ingest.measure(n, args.seed, os.environ.get("BENCH_POSTGRES_URL"))
            for line in ingest.describe(results["ingest"]):
                print("   " + line)
        if "api" not in skip:
            results["api"] = {}
            for script in ("salesforce_calls.py", "hubspot_calls.py", "writeback_calls.py"):
                print(f"\n== benchmarks/{script}", flush=True)
                results["api"][script.removesuffix(".py")] = extras.run_script(script)
        if "export" not in skip and results["audit"]:
            largest = max(results["audit"])
            print(f"\n== Export of the {largest:,}-account org's findings", flush=True)
            results["export"] = extras.bench_exports(built[largest])

    results["agree"] = agree
    results["seconds"] = round(time.perf_counter() - started, 1)
    summary(results)
    out = save(results, args.results)
    print(f"\n   {results['seconds']:.0f} s in all; figures in {out}")
    if not agree:
        print("ERROR: roe and its floor found different rows on some rule, a query plan was off its "
              "pinned shape, or a pass timed out (see above).", file=sys.stderr)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
