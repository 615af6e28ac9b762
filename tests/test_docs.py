"""The README's tables are checked against the code, so they cannot drift.

- The rule table names every rule of the registry in order, with its name, default severity,
  whether it suggests an owner, and every parameter with its default (as TOML).
- The connector settings table lists every key of the ``[salesforce]`` and ``[hubspot]`` models
  with its default, and nothing else.
- The settings table lists every global option with its environment variable.
- The command table lists every command ``roe --help`` offers.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer

from connectors.registry import settings_model
from roe_cli.cli import app
from roe_cli.rules import REGISTRY

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
_PARAM = re.compile(r"`(\w+)` \(`([^`]+)`")


def _table(first_header: str) -> list[list[str]]:
    """The rows (cells stripped) of the README table whose header row starts with
    ``| first_header |``."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _toml_value(text: str) -> Any:
    return tomllib.loads(f"v = {text}")["v"]


def _plain(value: Any) -> Any:
    """Tuples as lists and mappings as dicts, as TOML reads them."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_the_rule_table_lists_every_rule_in_order() -> None:
    assert [row[0] for row in _table("code")] == list(REGISTRY)


@pytest.mark.parametrize("row", _table("code"), ids=lambda row: row[0])
def test_a_rule_row_says_what_the_rule_declares(row: list[str]) -> None:
    code, name, _flags, suggested, parameters, severity = row
    rule = REGISTRY[code]
    defaults = rule.params()
    assert name == rule.name
    assert severity == defaults.severity
    assert (suggested != "none") == rule.suggests_owner
    documented = {key: _toml_value(value) for key, value in _PARAM.findall(parameters)}
    own = {k: getattr(defaults, k) for k in type(defaults).model_fields
           if k not in ("enabled", "severity")}
    assert set(documented) == set(own), "every parameter is documented, and only those"
    for key, value in own.items():
        assert documented[key] == _plain(value), f"{code} {key}"
    if not own:
        assert parameters == "none"


def _settings_rows() -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    current = ""
    for table, key, default, _meaning in _table("table"):
        current = table.strip("`[]") or current
        tables.setdefault(current, {})[key.strip("`")] = default
    return tables


@pytest.mark.parametrize("source", ["salesforce", "hubspot"])
def test_the_connector_settings_table_equals_the_settings_model(source: str) -> None:
    model = settings_model(source)
    assert model is not None
    documented = _settings_rows()[source]
    assert list(documented) == list(model.model_fields)
    for key, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = documented[key]
        if default is None:
            assert shown == "unset", key
        else:
            assert _toml_value(shown.strip("`")) == _plain(default), key


def _root() -> Any:
    """The click group behind ``roe`` (typer ships its own click, so no isinstance checks)."""
    command = typer.main.get_command(app)
    assert hasattr(command, "commands")
    return command


def test_the_settings_table_lists_every_global_option_with_its_variable() -> None:
    documented = {row[0].strip("`"): row[1].strip("`") for row in _table("option")}
    options = {
        max(param.opts, key=len) if len(param.opts) == 1 else min(param.opts, key=len): (
            param.envvar or "")
        for param in _root().params if param.param_type_name == "option" and param.name != "help"
    }
    # "-v" is documented by its short form; every other option by its long one.
    options = {("-v" if opt in ("--verbose", "-v") else opt): env for opt, env in options.items()}
    assert documented == options


def test_the_command_table_names_every_command() -> None:
    documented = {
        word
        for row in _table("command")
        for word in re.findall(r"`roe ([a-z]+(?: [a-z]+)?)`", row[0])
    }
    root = _root()
    offered = set()
    for name, command in root.commands.items():
        if hasattr(command, "commands"):
            offered |= {f"{name} {sub}" for sub in command.commands}
            if getattr(command, "invoke_without_command", False):  # `roe rules` runs on its own too
                offered.add(name)
        else:
            offered.add(name)
    assert documented == offered
