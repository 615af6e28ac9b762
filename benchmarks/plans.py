"""Are roe's and the floor's query plans on their pinned shapes, on a bench mirror as it stands?

After the audit of each org (whose ``ANALYZE`` left the statistics in the mirror), the bench
reads back the plan of every rule, roe's (``roe_cli.rules.plans_check.plan_shapes``) and the
floor's (``benchmarks.audit_floor.plan_shapes``), and lists the lines off their pinned shapes
(``off_pinned``; roe's against ``plans_check.PINNED``, the floor's against
``audit_floor.pinned_shapes()``). Any such line fails the run: a plan that flipped with the
statistics is the slowness the bench is there to catch, whether or not it was slow this time.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import audit_floor
from roe_cli.rules import plans_check


def off_pinned_plans(db: Path, rules: str, as_of: str) -> dict[str, dict[str, list[str]]]:
    """``{"roe": {code: [lines]}, "floor": {code: [lines]}}``: the plan lines off their pinned
    shapes on the mirror ``db`` with the statistics it holds now (empty dicts: all on shape)."""
    from roe_cli.db import open_database
    from roe_cli.rulesfile import load_rules
    from roe_cli.settings import database_url
    from roe_cli.shared.clock import parse_as_of

    config = load_rules(Path(rules))
    now = parse_as_of(as_of)
    engine = open_database(database_url(str(db)))
    try:
        with engine.connect() as conn:
            roe = plans_check.off_pinned(plans_check.plan_shapes(conn, config, now))
            conn.rollback()
    finally:
        engine.dispose()
    conn = audit_floor.connect(db)
    try:
        shapes = audit_floor.plan_shapes(conn, config, now)
    finally:
        conn.close()
    floor = plans_check.off_pinned(shapes, audit_floor.pinned_shapes())
    return {"roe": roe, "floor": floor}


def report(off: dict[str, dict[str, list[str]]], where: str) -> bool:
    """Print the plans off their shapes (to stderr); True when every plan is on its shape."""
    import sys

    ok = True
    for who, rules in off.items():
        for code, lines in rules.items():
            ok = False
            print(f"ERROR: {where}: {who}'s plan for {code} is off its pinned shape: "
                  f"{'; '.join(lines)} (python -m benchmarks.audit_floor --explain {code} for the "
                  "floor's plan)", file=sys.stderr)
    if ok:
        print(f"   query plans of roe and the floor on their pinned shapes ({where})")
    return ok
