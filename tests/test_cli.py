"""The CLI frame: help everywhere, errors as 'what went wrong / what to do' with exit code 2."""

from __future__ import annotations

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
