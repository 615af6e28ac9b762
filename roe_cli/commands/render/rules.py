"""What `roe rules` prints: the rules table and a rule explained."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rich.text import Text

from ...shared.text import visible

if TYPE_CHECKING:
    from pathlib import Path

    from ...rulesfile import ParamSpec

from . import base
from .base import cell

# -- rules ---------------------------------------------------------------------------------------


def setting_text(value: Any) -> str:
    """A setting's value as TOML-ish text: ``[a, b]``, ``{k = v}``, ``true``."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(setting_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {setting_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def print_rules_table(rules_file: Path, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=cell(f"Rules in {rules_file}"))
    for column in ("code", "name", "severity", "enabled", "parameters"):
        table.add_column(column, no_wrap=column != "parameters")
    for row in rows:
        params = "\n".join(
            f"{name} = {setting_text(value)}{'' if name in row['set_in_file'] else '  (default)'}"
            for name, value in row["parameters"].items()
        )
        table.add_row(row["code"], row["name"], row["severity"], "yes" if row["enabled"] else "no",
                      Text(visible(params, lines=True)))
    base.console.print(table)
    base.console.print("`roe rules --explain CODE` tells what a rule flags and why.", markup=False)


def print_rule_explained(doc: str, where: str, specs: list[ParamSpec]) -> None:
    from rich.table import Table

    base.console.print(reflow(doc), markup=False)
    table = Table(title=cell(f"Settings ({where})"), title_justify="left")
    for column in ("setting", "takes", "default", "in force"):
        table.add_column(column)
    for s in specs:
        in_force = setting_text(s.value) + ("" if s.set_in_file else " (default)")
        table.add_row(cell(s.name), cell(s.kind), cell(setting_text(s.default)), cell(in_force))
    base.console.print()
    base.console.print(table)


def reflow(doc: str) -> str:
    """A docstring's wrapped lines joined into paragraphs, so the terminal can wrap them.

    A blank line, or a line opening with a label such as ``Why:`` or ``Fix:``, starts a new one.
    """
    paragraphs: list[str] = []
    joining = False
    for line in doc.splitlines():
        line = line.strip()
        if not line:
            paragraphs.append("")
            joining = False
        elif joining and not re.match(r"^[A-Z][\w -]{0,20}:\s", line):
            paragraphs[-1] += " " + line
        else:
            paragraphs.append(line)
            joining = True
    return "\n".join(paragraphs).replace("``", "`")


