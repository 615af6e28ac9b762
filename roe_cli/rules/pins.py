"""Pinned access paths: SQL constructs that tell SQLite which index to use, or not to use.

SQLite's planner chooses from the statistics ``ANALYZE`` gathers, and the audit's ``ANALYZE`` is
sampled (``analysis_limit``). On a skewed org (one account with 50,000 contacts, one owner with
half the activities, most activity on one day) the sample can make a bad path look cheap: the
issue that led here was a range of the time index over most of activities, per account, where a
seek on the composite (source, link, owner, time) index was meant; 0.1 s became 20 minutes. The
rules are written for one plan each, so they say it:

* :class:`unindexed` renders a column ``+col`` on SQLite (SQLite's documented way to keep an index
  out of a term) and plain elsewhere;
* :func:`indexed_alias` makes an alias of a mirror table that SQLite reads ``INDEXED BY`` the
  index on the given columns (the statement fails to prepare, rather than run slowly, if that index
  cannot serve it); elsewhere it is a plain alias.

PostgreSQL gets plain SQL from both (its planner is not sampled the same way and has no hints);
tests/test_query_plans.py checks the plans they give on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.selectable import Alias

Col = ColumnElement[Any]


class unindexed(ColumnElement[Any]):
    """A column that SQLite must not pick an index for (rendered ``+col``, its documented no-op).

    In the per-account activity lookups the rule is written for a seek on (source, link, owner,
    time); SQLite's planner, working from sampled statistics, may instead range-scan the time
    index over most of the table, turning 0.1 s into minutes. Other databases get the plain column.
    """

    inherit_cache = True

    def __init__(self, column: Col) -> None:
        self.column = column
        self.type = column.type


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


class IndexedAlias(Alias):
    """An alias of a table that SQLite reads through one named index (``INDEXED BY``).

    Made by :func:`indexed_alias`. The index is part of the alias's identity in roe's rules (each
    alias name is always used with the same index), so the statement cache keyed on the alias
    stays right."""

    inherit_cache = True
    indexed_by: str = ""


@compiles(IndexedAlias)
def _indexed_alias_default(element: IndexedAlias, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.visit_alias(element, **kw)


@compiles(IndexedAlias, "sqlite")
def _indexed_alias_sqlite(element: IndexedAlias, compiler: SQLCompiler, **kw: Any) -> str:
    text = compiler.visit_alias(element, **kw)
    if kw.get("asfrom"):  # in a FROM clause (a column reference names the alias alone)
        text += f" INDEXED BY {element.indexed_by}"
    return text


def index_on(table: Table, *columns: str) -> str:
    """The name of ``table``'s index on exactly ``columns``, in order (the mirror's schema)."""
    for index in table.indexes:
        if tuple(c.name for c in index.columns) == columns and index.name:
            return str(index.name)
    raise LookupError(f"{table.name} has no index on ({', '.join(columns)})")


def indexed_alias(table: Table, name: str, *columns: str) -> IndexedAlias:
    """An alias ``name`` of ``table`` that SQLite reads by its index on ``columns``."""
    alias = IndexedAlias._construct(table, name=name)
    alias.indexed_by = index_on(table, *columns)
    return alias
