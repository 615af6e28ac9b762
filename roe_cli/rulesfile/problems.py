"""What is wrong in a rules file, in English: :class:`Problem`, :class:`RulesFileError`, and the
translation of pydantic's validation errors and tomllib's syntax errors into problems.

Every problem names the file, the line and the key as a dotted path, with a "did you mean" where a
close match exists. A misspelt key is reported once (not also as its right spelling missing), and
credentials are never echoed: a secret table's values are described, not shown.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, ValidationError

from ..shared.errors import ConfigError
from ..shared.text import did_you_mean, or_list, suggest
from .locate import KeyPath, render_key

if TYPE_CHECKING:
    from .schema import RulesConfig

MISSING_FILE_TODO = "Copy the example rules.toml from the roe repository, or pass --rules / ROE_RULES."
FIX_TODO = "Fix the file, then check it with `roe rules --check`."
_CREDENTIAL_WORDS = ("token", "password", "secret", "client_id", "api_key", "apikey")


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in a rules file, where it is and what it is."""

    file: str
    line: int | None
    key: str  # the dotted key path; '' when the problem is not about one key
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class RulesFileError(ConfigError):
    """Problems in a rules file, all of them; :attr:`problems` holds them one by one."""

    def __init__(self, file: str, problems: Iterable[Problem], todo: str = FIX_TODO, *,
                 config: RulesConfig | None = None) -> None:
        self.file = file
        self.config = config  # what the loader could read despite the problems, if anything
        self.problems = tuple(sorted(problems, key=lambda p: (p.line or 0, p.key)))
        if len(self.problems) == 1:
            what = str(self.problems[0])
        else:
            what = f"{file} has {len(self.problems)} problems:\n" + "\n".join(
                f"  {p}" for p in self.problems
            )
        super().__init__(what, todo)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel] | None, parent: tuple) -> list[str] | None:
    """The keys allowed at ``parent`` (a loc inside ``model``), or None when unknown."""
    for part in parent:
        if model is None:
            return None
        if isinstance(part, int) or part == "[key]":
            continue
        info = model.model_fields.get(part)
        model = _model_in(info.annotation) if info else None
    if model is None:
        return None
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(info.alias if isinstance(info.alias, str) else name)
    return keys


_KINDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text in quotes",
    "tuple_type": "a list",
    "list_type": "a list",
    "set_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "date_type": "a date like 2027-03-31",
    "datetime_type": "a date and time like 2027-03-31T09:00:00Z",
}


def _describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text \"{value}\""
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.datetime):
        return f"the date and time {value.isoformat()}"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return type(value).__name__


def _error_message(err: Mapping[str, Any], model: type[BaseModel] | None, loc: tuple,
                   secret: bool = False) -> str:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if any(w in key.lower() for w in _CREDENTIAL_WORDS):
            # (worded so that redact() does not take it for a "password: ..." pair)
            return (f"unknown key '{key}'; credentials are read only from the environment, "
                    "never from the rules file (see the README)")
        allowed = _allowed_keys(model, loc[:-1]) or []
        return f"unknown key '{key}'{suggest(key, allowed, list_all_up_to=12)}"
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        shown = f"'{value}'" if isinstance(value, str) else _describe_value(value)
        hint = did_you_mean(value, expected) if isinstance(value, str) else []
        text = f"{shown} is not allowed; use {or_list(expected)}" if expected else err["msg"]
        return text + (f"; did you mean {or_list(hint)}?" if hint else "")
    if kind in _KINDS:
        text = f"expected {_KINDS[kind]}, got {'a value' if secret else _describe_value(value)}"
        if kind in ("tuple_type", "list_type") and isinstance(value, str) and not secret:
            text += f": write [\"{value}\"]"
        return text
    if kind == "string_pattern_mismatch":
        shown = "the value" if secret else _describe_value(value)
        return f"{shown} does not have the required form {ctx.get('pattern')}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
    return err["msg"][:1].lower() + err["msg"][1:]



def validation_problems(
    exc: ValidationError, model: type[BaseModel] | None, *, secret: bool = False
) -> list[tuple[KeyPath, str]]:
    """The key paths (inside the validated value) and messages of a pydantic validation error."""
    errors = exc.errors(include_url=False)
    locs = [tuple(e["loc"]) for e in errors]
    # A misspelt key also leaves its right spelling missing: report the misspelling only.
    misspelt = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc = tuple(err["loc"])
            for key in did_you_mean(str(loc[-1]), _allowed_keys(model, loc[:-1]) or []):
                misspelt.add(loc[:-1] + (key,))
    found: list[tuple[KeyPath, str]] = []
    for err in errors:
        loc = tuple(p for p in err["loc"] if p != "[key]")
        if err["type"] == "too_short" and any(
            other[: len(err["loc"])] == tuple(err["loc"]) and other != tuple(err["loc"])
            for other in locs
        ):
            continue  # an empty list left by its own bad items: those are reported
        if err["type"] == "missing" and tuple(err["loc"]) in misspelt:
            continue
        found.append((loc, _error_message(err, model, loc, secret)))
    return found


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?")
_LINE_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def syntax_problem(file: str, text: str, message: str) -> Problem:
    """A tomllib error as a Problem, with the key guessed from the text around it."""
    what = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)$", "", message)
    m = re.search(r"at line (\d+), column (\d+)", message)
    lines = text.splitlines()
    if m:
        line, column = int(m.group(1)), int(m.group(2))
    else:  # at the end of the document
        line, column = max(len(lines), 1), None
    table: list[str | int] = []
    counts: dict[str, int] = {}
    for source_line in lines[: line - 1]:
        header = _HEADER.match(source_line)
        if header:
            name = header.group(2)
            table = [p.strip().strip("\"'") for p in name.split(".")]
            if header.group(1) == "[[":
                counts[name] = counts.get(name, 0) + 1
                table.append(counts[name] - 1)
    key = ""
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    key_match = _LINE_KEY.match(current)
    if key_match and not _HEADER.match(current):
        key = render_key([*table, *(p.strip().strip("\"'") for p in key_match.group(1).split("."))])
    elif table and not _HEADER.match(current):
        key = render_key(table)
    return Problem(file, line, key, f"TOML syntax error: {what[:1].lower() + what[1:]}", column)
