"""The access paths SQLite picks for each rule's query, and the paths they are pinned to.

A rule is written for a plan: seeks on the mirror's composite indexes from each account, never a
scan of activities or contacts where a seek is meant. SQLite's planner chooses from statistics
(``ANALYZE``, sampled by ``analysis_limit``); on a skewed org the sampled figures may tell it that
another index is cheaper, and a 0.1 s query becomes a 20-minute one. The rules therefore pin the
paths that matter (``+column`` to keep an index out, ``INDEXED BY``, ``CROSS JOIN`` order); this
module reads the plans back so a test, or the benchmark, can check that they hold.

:func:`plan_shapes` gives, per rule, the *shape* of its plan: each table the query reads (by its
name in the mirror, not its alias) with how it is read, e.g. ``activities SEARCH
ix_activities_source_contact_id_owner_id_occurred_at`` or ``accounts SCAN``, sorted and
de-duplicated (temporary tables, subquery results and automatic indexes are left out: they are
roe's own small working tables). :data:`PINNED` says what no rule may do, on any statistics;
:func:`off_pinned` lists the lines of a plan that break it.

Only SQLite has a plan to pin: on PostgreSQL the functions return nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement, Executable, Select
from sqlalchemy.sql.compiler import SQLCompiler

from ..models import (
    account_team_members,
    accounts,
    activities,
    contacts,
    opportunities,
    ownership_changes,
)
from ..rulesfile.schema import RulesConfig
from .context import RuleContext

_TABLES = {t.name: t for t in (accounts, contacts, opportunities, activities, ownership_changes,
                                account_team_members)}
MIRROR_TABLES = frozenset(_TABLES)

# What each rule's plan may read each big table by. A rule's plan is off its pinned shape when a
# table is read in a way not listed here for it. Activities are never read by the time index
# alone (the plan the issue found: a range of the whole window per account, 20+ minutes), nor
# scanned except where the rule reads one whole window in one pass (OWN004's activity_totals).
_ACT = {"account": "ix_activities_source_account_id_owner_id_occurred_at",
        "contact": "ix_activities_source_contact_id_owner_id_occurred_at",
        "opportunity": "ix_activities_source_opportunity_id_owner_id_occurred_at"}


def _search(table: str, *indexes: str) -> set[str]:
    return {f"{table} SEARCH {index}" for index in indexes}


_CONTACT_OF_ACCOUNT = _search("contacts", "ix_contacts_source_account_id")
_DEAL_OF_ACCOUNT = _search("opportunities", "ix_opportunities_source_account_id")
_BY_PK = {f"{t} SEARCH PRIMARY KEY" for t in ("accounts", "contacts", "opportunities")}
# Activity that counts for an account, from the account: one seek per path (context.py).
_ACCOUNT_ACTIVITY = _search("activities", *_ACT.values()) | _CONTACT_OF_ACCOUNT | _DEAL_OF_ACCOUNT

_MEMBERS = frozenset({"accounts SCAN", "account_team_members SCAN", "accounts SEARCH PRIMARY KEY"})

PINNED: dict[str, frozenset[str]] = {
    # Contacts (deals) scanned once, each joined to its account by primary key.
    "OWN001": frozenset({"contacts SCAN", "accounts SEARCH PRIMARY KEY"}),
    "OWN006": frozenset({"opportunities SCAN", "accounts SEARCH PRIMARY KEY"}),
    # Each record type scanned once (inactive owners are few, but the records are read whole),
    # its account by primary key.
    "OWN002": frozenset({"accounts SCAN", "contacts SCAN", "opportunities SCAN"})
    | frozenset(_BY_PK),
    # Accounts scanned for their domains, contacts of website-less accounts by the account index;
    # the clustered accounts' activity by the three per-account seeks.
    # (``exclusive`` counting looks an activity's contact up by primary key.)
    "OWN003": frozenset({"accounts SCAN", "accounts SEARCH PRIMARY KEY", "contacts SCAN",
                         "contacts SEARCH PRIMARY KEY"}) | _ACCOUNT_ACTIVITY,
    # One pass over the window's activities, each one's contact/deal/account by primary key.
    "OWN004": frozenset({"activities SCAN"}) | frozenset(_BY_PK),
    "OWN005": frozenset({"accounts SCAN"}),
    # Ownership changes grouped by account (one scan), the account by primary key, the change
    # that gave it by the unique key, then the owner's activity since by the per-account seeks.
    "HND001": frozenset({"ownership_changes SCAN", "ownership_changes SEARCH UNIQUE KEY",
                         "accounts SEARCH PRIMARY KEY"}) | _ACCOUNT_ACTIVITY,
    "HND002": frozenset({"accounts SCAN"}),
    "HND003": frozenset({"accounts SCAN"}) | _ACCOUNT_ACTIVITY,
    # The coverage rules' members (teams.py): accounts read once for their owners, team rows read
    # once, each one's account by primary key; never the team indexes by (source) alone, nor an
    # automatic index on ``deleted`` (a full read and a sort of the table where one pass does).
    "COV002": _MEMBERS,
    "COV003": _MEMBERS,
    # The members, and one pass over the window's activities as OWN004 reads it.
    "COV001": _MEMBERS | frozenset({"activities SCAN"}) | frozenset(_BY_PK),
}

_LINE = re.compile(r"^(?P<op>SCAN|SEARCH) (?P<name>\S+)(?P<rest>.*)$")
_INDEX = re.compile(r"\bINDEX (\S+)")


def shape_of(plan: Iterable[str], aliases: dict[str, str] | None = None) -> list[str]:
    """The access lines of an ``EXPLAIN QUERY PLAN`` detail column, as ``table OP [how]``.

    ``SEARCH act_contact USING INDEX ix_... (source=? AND contact_id=?)`` becomes ``activities
    SEARCH ix_...``; a seek on the index SQLite makes for a composite primary key is ``SEARCH
    PRIMARY KEY`` (for a unique constraint, ``SEARCH UNIQUE KEY``); an index SQLite builds for the
    one statement is ``SEARCH AUTOMATIC INDEX`` (it reads the whole table to build it); a scan, with
    or without a covering index, is ``SCAN`` (reading every row either way). The table comes from
    the index's name when there is one, else from ``aliases`` (alias -> table, see
    :func:`aliases_in`). Tables that are not the mirror's big tables (roe's temporary tables, CTEs,
    subqueries) are dropped."""
    shapes: set[str] = set()
    for detail in plan:
        m = _LINE.match(detail.strip())
        if not m:
            continue
        rest = m["rest"]
        index = _INDEX.search(rest)
        table = _table_of_index(index.group(1)) if index else None
        table = table or (aliases or {}).get(m["name"], m["name"])
        if table not in MIRROR_TABLES:
            continue
        if m["op"] == "SCAN":
            shapes.add(f"{table} SCAN")
        elif "AUTOMATIC" in rest:
            shapes.add(f"{table} SEARCH AUTOMATIC INDEX")
        elif index and index.group(1).startswith("sqlite_autoindex_"):
            shapes.add(f"{table} SEARCH {_key_kind(table)}")
        elif index:
            shapes.add(f"{table} SEARCH {index.group(1)}")
        else:  # the rowid (INTEGER PRIMARY KEY)
            shapes.add(f"{table} SEARCH ROWID")
    return sorted(shapes)


def _table_of_index(name: str) -> str | None:
    """The mirror table an index belongs to, by the schema's naming (``ix_<table>_...``,
    ``sqlite_autoindex_<table>_N``); None for others (automatic or temporary indexes)."""
    for table in MIRROR_TABLES:
        if name.startswith((f"ix_{table}_", f"sqlite_autoindex_{table}_")):
            return table
    return None


def _key_kind(table: str) -> str:
    """What SQLite's automatic index on ``table`` is: its composite primary key, or (when the
    primary key is the rowid) its unique constraint."""
    t = _TABLES[table]
    return "PRIMARY KEY" if len(t.primary_key.columns) > 1 else "UNIQUE KEY"


class _ExplainQueryPlan(Executable, ClauseElement):
    """``EXPLAIN QUERY PLAN <select>``, executed as the select itself would be (same binds)."""

    inherit_cache = False

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt


@compiles(_ExplainQueryPlan)
def _explain_sql(element: _ExplainQueryPlan, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN QUERY PLAN " + compiler.process(element.stmt, **kw)


def explain(conn: Connection, stmt: Select[Any]) -> tuple[list[str], dict[str, str]]:
    """SQLite's ``EXPLAIN QUERY PLAN`` of ``stmt`` (the detail column of each line), and the
    aliases the statement gives the mirror's tables (alias -> table)."""
    rows = conn.execute(_ExplainQueryPlan(stmt)).all()
    return [str(row[3]) for row in rows], aliases_in(str(stmt.compile(dialect=conn.dialect)))


_ALIAS = re.compile(r"\b(" + "|".join(sorted(MIRROR_TABLES)) + r")\s+(?:AS\s+)?(\w+)\b", re.IGNORECASE)


def aliases_in(sql: str) -> dict[str, str]:
    """The aliases ``sql`` gives the mirror's tables (``activities AS x`` or ``activities x``),
    alias -> table, for reading its plan (which names tables by alias)."""
    return {alias: table.lower() for table, alias in _ALIAS.findall(sql)}


def plan_shapes(conn: Connection, config: RulesConfig, now: datetime,
                only: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Per enabled rule (or ``only`` those codes), the shape of its plan on ``conn``'s mirror with
    the statistics it has now (see :func:`shape_of`). Builds and drops the rules' lookup tables.
    Empty on a database other than SQLite."""
    if conn.dialect.name != "sqlite":
        return {}
    ctx = RuleContext(conn=conn, now=now, config=config)
    out: dict[str, list[str]] = {}
    try:
        for rule, params in config.enabled_rules(only):
            queries = rule.query(ctx, params)
            shape: set[str] = set()
            for q in queries if isinstance(queries, list) else [queries]:
                lines, aliases = explain(conn, q)
                shape.update(shape_of(lines, aliases))
            out[rule.code] = sorted(shape)
    finally:
        ctx.drop_tables()
    return out


def off_pinned(shapes: dict[str, list[str]],
               pinned: dict[str, frozenset[str]] | None = None) -> dict[str, list[str]]:
    """Per rule, the plan lines its pinned shape (``pinned``, by default :data:`PINNED`) does not
    allow; rules with no pinned shape are not checked. Empty when every plan is on its shape."""
    bad: dict[str, list[str]] = {}
    for code, shape in shapes.items():
        allowed = (PINNED if pinned is None else pinned).get(code)
        if allowed is None:
            continue
        extra = [line for line in shape if line not in allowed]
        if extra:
            bad[code] = extra
    return bad
