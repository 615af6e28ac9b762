"""The CLI frame: help everywhere, errors as 'what went wrong / what to do' with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from roe_cli.cli import app


def _commands():
    root = typer.main.get_command(app)
    stack = [((), root)]
    while stack:
        path, cmd = stack.pop()
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                stack.append(((*path, name), sub))
        else:
            yield path


@pytest.mark.parametrize("path", sorted(_commands()), ids=" ".join)
def test_every_command_has_help_with_an_example(roe, path):
    result = roe(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout, f"`roe {' '.join(path)} --help` shows no example"


def test_unknown_command_is_a_usage_error(roe):
    result = roe("frobnicate")
    assert result.exit_code == 2


def test_bad_as_of_says_what_to_do(roe):
    result = roe("demo", "--accounts", "5", "--as-of", "last tuesday")
    assert result.exit_code == 2
    assert "Cannot read the time 'last tuesday'" in result.stderr
    assert "ISO 8601" in result.stderr
    assert "Traceback" not in result.output


def test_missing_database_folder_is_a_configuration_error(roe, tmp_path):
    result = roe("db", "status", db=str(tmp_path / "nowhere" / "roe.db"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_unusable_database_url_is_a_configuration_error(roe):
    result = roe("db", "status", db="nosuchdialect://x/y")
    assert result.exit_code == 2
    assert "SQLAlchemy URL" in result.stderr


ROOT = Path(__file__).resolve().parents[1]


def _imports(path):
    """Every module a file imports, absolute (relative imports resolved against its package)."""
    import ast

    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


COMMANDS = sorted((ROOT / "roe_cli" / "commands").rglob("*.py"))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.name)
def test_commands_import_downward_only(path):
    imported = _imports(path)
    assert not {m for m in imported if m == "roe_cli.cli" or m.startswith("roe_cli.cli.")}, \
        "commands never import the entry point; cli.py registers them"
    siblings = {m.split(".")[2] for m in imported if m.startswith("roe_cli.commands.")}
    assert siblings <= {"options", "render"}, "a command imports no other command module"
    assert not {m for m in imported if m.split(".")[0] == "sqlalchemy"}
    assert not {m for m in imported if m.startswith("roe_cli.models")}


def test_only_the_cli_layer_imports_typer_and_rich():
    cli_layer = {ROOT / "roe_cli" / "cli.py", *COMMANDS}
    offenders = [
        str(path.relative_to(ROOT))
        for top in ("roe_cli", "connectors")
        for path in (ROOT / top).rglob("*.py")
        if path not in cli_layer
        and {m.split(".")[0] for m in _imports(path)} & {"typer", "rich", "click"}
    ]
    assert offenders == []


def test_a_workspace_opens_nothing_until_asked(tmp_path):
    from roe_cli.workspace import Workspace

    ws = Workspace(db=str(tmp_path / "mirror.db"), rules=str(tmp_path / "rules.toml"))
    assert ws.db_url.endswith("/mirror.db") and ws.rules_file.name == "rules.toml"
    assert ws.config_if_present() is None and ws.connector_settings("salesforce") is None
    assert not (tmp_path / "mirror.db").exists()
    ws.open(create=True)
    assert (tmp_path / "mirror.db").exists()


def test_input_problems_print_one_a_line_under_the_error(roe, org, tmp_path):
    bad = tmp_path / "owners.csv"
    bad.write_text("object_type,object_id\naccount,001\n", encoding="utf-8")
    result = roe("reassign", "--csv", str(bad))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: owners.csv has 1 problem")
    assert lines[1].startswith("  ") and "new_owner" in lines[1]
    assert lines[-1].startswith("  Fix the file and run the command again.")
    assert "Traceback" not in result.output
