"""``roe account``: the brief of one account, as short tables on one screen."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ...shared.text import visible
from . import base
from .base import SEVERITY_COLORS, cell


def _who(person: dict[str, Any] | None) -> str:
    if not person:
        return "-"
    name, email = person.get("name"), person.get("email")
    if name and email:
        return f"{name} <{email}>"
    return str(name or email or person["id"])


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_edge=False,
                  pad_edge=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_account_brief(brief: dict[str, Any]) -> None:
    """The brief as a header and one small table per part; every CRM text shown literally."""
    con = base.console
    acc, owner = brief["account"], brief["owner"]
    head = Text.assemble((visible(acc["name"] or acc["id"]), "bold"),
                         f"  {acc['source']}:{visible(acc['id'])}")
    if acc["deleted"]:
        head.append("  (deleted in the CRM)", "red")
    con.print(head)
    parent = acc["parent"]
    facts = [
        ("Domain", acc["domain"] or "-"),
        ("Stage", f"{acc['stage'] or '-'}" + (f" since {acc['stage_since'][:10]}" if acc["stage_since"] else "")),
        ("Parent", f"{parent['name'] or '-'} ({parent['id']})" if parent else "-"),
        ("Territory", acc["territory"] or "-"),
        ("Owner", _who(owner) + ("" if not owner or owner["active"] is not False else " (inactive)")),
        ("Owner's role", f"{(owner or {}).get('role') or '-'} (CRM: {(owner or {}).get('crm_role') or '-'})"),
        ("Owner's team", (owner or {}).get("team") or "-"),
    ]
    for label, value in facts:
        con.print(Text.assemble((f"{label}: ", "dim"), visible(value)))

    history = _table("Ownership history", "When", "From", "To", "Origin")
    for h in brief["ownership_history"]:
        history.add_row(cell(h["changed_at"][:16]), cell(_who(h["from"])), cell(_who(h["to"])),
                        cell(h["origin"]))
    if brief["ownership_history"]:
        con.print(history)

    c = brief["contacts"]
    contacts = _table(f"Contacts ({c['total']:,})", "Name", "Title", "E-mail", "Owner")
    for r in c["shown"]:
        contacts.add_row(cell(r["name"]), cell(r["title"] or "-"), cell(r["email"] or "-"),
                         cell(_who(r["owner"])))
    if c["total"]:
        con.print(contacts)
        if c["total"] > len(c["shown"]):
            con.print(f"and {c['total'] - len(c['shown']):,} more (--contacts N lists more)",
                      markup=False)

    deals = _table("Open opportunities", "Name", "Stage", "Amount", "Close", "Owner")
    for d in brief["open_opportunities"]:
        deals.add_row(cell(d["name"]), cell(d["stage"] or "-"), cell(_money(d["amount"])),
                      cell(d["close_date"] or "-"), cell(_who(d["owner"])))
    if brief["open_opportunities"]:
        con.print(deals)

    eng = _table(f"Engagement, last {brief['window_days']} days", "Who", "Activities", "By kind")
    for e in brief["engagement"]:
        kinds = ", ".join(f"{k} {n}" for k, n in e["by_kind"].items())
        eng.add_row(cell(_who(e["user"])), cell(e["activities"]), cell(kinds))
    if brief["engagement"]:
        con.print(eng)
    else:
        con.print(f"No engagement in the last {brief['window_days']} days.", markup=False)

    team = _table("Account team", "Who", "Team role", "Role", "From")
    for m in brief["team"]:
        team.add_row(cell(_who(m)), cell(m["team_role"] or ("owner" if m["is_owner"] else "-")),
                     cell(m["role"] or "-"), cell(m["origin"]))
    if brief["team"]:
        con.print(team)

    found = _table("Findings", "Id", "Rule", "Severity", "Status", "Record")
    for f in brief["findings"]:
        found.add_row(cell(f["id"]), cell(f["rule"]),
                      cell(f["severity"], SEVERITY_COLORS.get(f["severity"], "")),
                      cell(f["status"]), cell(f"{f['object_type']}:{f['object_id']}"))
    if brief["findings"]:
        con.print(found)
    else:
        con.print("No open or waived findings.", markup=False)
    waived = _table("Waivers in force", "Rule", "Record", "Until", "Approved by", "Reason")
    for w in brief["waivers"]:
        waived.add_row(cell(w["rule"]), cell(f"{w['object_type']}:{w['object_id']}"),
                       cell(w["expires"] or "no end"), cell(w["approved_by"]), cell(w["reason"]))
    if brief["waivers"]:
        con.print(waived)
