"""``roe account ID``: the one-screen brief of an account, by id, name or domain."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from . import options, render
from .options import Format, SourceOpt


def account_command(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(
        metavar="ID", help="The account's CRM id, or its name or domain (ignoring case).")],
    source: SourceOpt = None,
    contacts: Annotated[int, typer.Option(
        "--contacts", min=0, help="How many contacts to list, by name (the rest are counted).")] = 20,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The time the brief is for (engagement: the 90 days before it); default now.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json (stable keys: see the README).")] = Format.table,
) -> None:
    """Show an account's brief: owner, stage, history, contacts, deals, engagement, findings, team.

    The owner with roe role, team and territory from rules.toml; the stage and since when; the
    parent; who owned it before (when, and how the change came); contacts with title and owner;
    open opportunities; who engaged with it in the last 90 days and how much, by kind (the
    account's own activities and those of its live contacts and deals, each once); open and
    waived findings on it and its records, the waivers in force; the account team. When a name
    or domain matches several accounts, they are listed and roe asks for the id (exit 2).

    Example: roe account "Acme Corp" --contacts 10
    """
    from ..shared.clock import parse_as_of

    when = parse_as_of(as_of) if as_of else None
    brief = options.workspace(ctx).account_brief(key, source=source, contacts=contacts, as_of=when)
    if fmt is Format.json:
        render.print_json_document(json.dumps(brief, indent=2, ensure_ascii=False))
        return
    render.print_account_brief(brief)
