"""Reading the CSVs that people hand roe (``--csv`` decisions, ``revert``'s results file).

Every problem is reported with its row number (the header is row 1), all at once, through
:class:`PlanInputError`. Files are UTF-8, with or without the BOM Excel writes; a ``;`` or tab
separated file (Excel in some locales) is read as well. Cells that roe neutralized for Excel
(a leading ``'`` before ``=``, ``-``, ...) read back as their original text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

from ..shared.errors import ConfigError, UsageError
from ..shared.text import did_you_mean, excel_safe
from ..shared.vocab import ObjectType

CSV_COLUMNS = ("object_type", "object_id", "new_owner")

# What people type in a CSV's object_type column: roe's names, plurals, and the CRMs' own names.
OBJECT_ALIASES: dict[str, ObjectType] = {
    "account": ObjectType.ACCOUNT,
    "accounts": ObjectType.ACCOUNT,
    "company": ObjectType.ACCOUNT,
    "companies": ObjectType.ACCOUNT,
    "contact": ObjectType.CONTACT,
    "contacts": ObjectType.CONTACT,
    "opportunity": ObjectType.OPPORTUNITY,
    "opportunities": ObjectType.OPPORTUNITY,
    "deal": ObjectType.OPPORTUNITY,
    "deals": ObjectType.OPPORTUNITY,
}

# An id Excel turned into a number: 1.23E+11, 123.0
EXCEL_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?E\+\d+$|^\d+[.,]0+$", re.IGNORECASE)


class PlanInputError(ConfigError):
    """Input that cannot become a plan; ``problems`` lists each one (``row N: ...``)."""

    def __init__(self, what: str, problems: Sequence[str], todo: str | None = None):
        super().__init__(what, todo)
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [self.what, *(f"  {p}" for p in self.problems)]
        if self.todo:
            lines.append(self.todo)
        return "\n".join(lines)


Rows = list[tuple[int, list[str]]]


def read_csv_rows(path: str | Path) -> tuple[list[str], Rows]:
    """The header and the non-blank rows (with their row numbers; the header is row 1) of a CSV.

    Raises :class:`PlanInputError` for an unreadable, empty or non-UTF-8 file.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise UsageError(f"The file {path} does not exist.", "Check the path.")
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PlanInputError(f"{name} cannot be read:", [
            "row 1: the file is UTF-16, not UTF-8 (Excel: Save As 'CSV UTF-8')"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise PlanInputError(f"{name} cannot be read:", [
            f"row {row}: the file is not UTF-8 (Excel: Save As 'CSV UTF-8')"]) from None
    if not text.strip():
        raise PlanInputError(f"{name} cannot be read:", ["the file is empty"])
    first_line = text.splitlines()[0]
    delimiter = ","
    if "," not in first_line:
        for candidate in (";", "\t"):
            if candidate in first_line:
                delimiter = candidate
                break
    rows: Rows = []
    header: list[str] | None = None
    number = 0
    try:
        for number, values in enumerate(csv.reader(io.StringIO(text, newline=""),
                                                   delimiter=delimiter), start=1):
            if header is None:
                header = values
                continue
            if not any(v.strip() for v in values):
                continue
            rows.append((number, values))
    except csv.Error as exc:
        raise PlanInputError(f"{name} cannot be read:", [f"row {number}: {exc}"]) from None
    return header or [], rows


def header_problems(header: list[str], required: Sequence[str],
                    optional: Sequence[str] = ()) -> tuple[dict[str, int], list[str]]:
    """Column positions by name, and the header's problems (missing, unknown, repeated columns)."""
    problems = []
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    known = (*required, *optional)
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in positions:
            problems.append(f"row 1: the column {name!r} appears twice")
        elif name in known:
            positions[name] = index
        else:
            close = did_you_mean(name, known)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"row 1: unknown column {header[index].strip()!r}{hint}; "
                            f"the columns are {', '.join(known)}")
    missing = [c for c in required if c not in positions]
    if missing:
        problems.insert(0, f"row 1: missing column{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)} (the header must name {', '.join(required)})")
    return positions, problems


def cell(values: list[str], positions: dict[str, int], column: str) -> str:
    """The stripped value of ``column`` in a row ("" when absent), un-neutralized for Excel."""
    index = positions.get(column)
    if index is None or index >= len(values):
        return ""
    value = values[index].strip()
    # Undo the Excel neutralization roe writes into its own CSVs ('=..., '-..., ...).
    if value.startswith("'") and excel_safe(value[1:]) == value:
        value = value[1:]
    return value


def count(items: Sequence[object], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def by_row(problems: list[str]) -> list[str]:
    """``problems`` sorted by their row number (stable: a row's problems keep their order)."""
    def key(problem: str) -> int:
        if problem.startswith("row "):
            head = problem[4:].split(":", 1)[0]
            if head.isdigit():
                return int(head)
        return 0

    return sorted(problems, key=key)
