"""``roe rules``: list the rules with the settings in force, check rules.toml, explain a rule;
``roe rules test``: run rule cases against rules.toml.

``rules`` is a group that runs its own options when no subcommand is given, so ``roe rules``,
``--check`` and ``--explain`` work as they always have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..shared.errors import UsageError
from . import options, render
from .options import Format

if TYPE_CHECKING:
    from ..rulesfile import Problem, RulesFileError


def rules(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Validate the rules file (and, when the mirror has owners, the e-mails it names); "
            "exit 2 listing every problem.",
        ),
    ] = False,
    explain: Annotated[
        str | None,
        typer.Option("--explain", metavar="CODE", help="Show what a rule flags, why, the fix, and its settings."),
    ] = None,
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="table, or json for scripts.")
    ] = Format.table,
) -> None:
    """List every rule with its severity, whether it is on, and the settings in force.

    `--check` validates the rules file: unknown keys, wrong types, unknown rule codes, teams and
    territories, exceptions, and (when the mirror has owners) that every e-mail it names is an
    owner. Each problem names the file, the line and the key. `--explain CODE` prints a rule's
    documentation and settings.

    Example: roe rules --check

    Example: roe --rules prod-rules.toml rules --explain OWN004

    Example: roe rules --format json

    Example: roe rules test rule_cases/
    """
    if ctx.invoked_subcommand is not None:
        return
    if check and explain:
        raise UsageError("--check and --explain do not go together.", "Use one of them.")
    as_json = output_format is Format.json
    if explain is not None:
        _explain(ctx, explain, as_json)
    elif check:
        _check(ctx, as_json)
    else:
        _list(ctx, as_json)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _list(ctx: typer.Context, as_json: bool) -> None:
    from ..rules import REGISTRY
    from ..rulesfile import param_specs

    config = options.workspace(ctx).config()
    rows = []
    for code, rule in REGISTRY.items():
        params = config.rules[code]
        settings = {s.name: s.value for s in param_specs(code, params) if s.name not in ("enabled", "severity")}
        rows.append({
            "code": code,
            "name": rule.name,
            "severity": params.severity,
            "enabled": params.enabled,
            "summary": rule.summary,
            "parameters": settings,
            "set_in_file": sorted(params.model_fields_set),
        })
    if as_json:
        payload = {"rules_file": str(config.path), "sha256": config.sha256, "rules": rows}
        render.print_json(json.dumps(_jsonable(payload)))
        return
    render.print_rules_table(config.path, rows)


def _explain(ctx: typer.Context, code: str, as_json: bool) -> None:
    from ..rules import REGISTRY
    from ..rulesfile import param_specs, rule_code, rule_doc

    wanted = rule_code(code)
    path = options.workspace(ctx).rules_file
    params = options.workspace(ctx).config().rules[wanted] if path.exists() else None
    rule = REGISTRY[wanted]
    specs = param_specs(wanted, params)
    if as_json:
        payload = {
            "code": wanted,
            "name": rule.name,
            "doc": rule_doc(wanted),
            "rules_file": str(path) if params is not None else None,
            "parameters": [
                {"name": s.name, "takes": s.kind, "default": s.default, "value": s.value,
                 "set_in_file": s.set_in_file}
                for s in specs
            ],
        }
        render.print_json(json.dumps(_jsonable(payload)))
        return

    where = f"[rules.{wanted}] in {path}" if params is not None else f"defaults: there is no {path}"
    render.print_rule_explained(rule_doc(wanted), where, specs)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _check(ctx: typer.Context, as_json: bool) -> None:
    from ..rulesfile import RulesFileError, check_people

    path = options.workspace(ctx).rules_file
    try:
        config = options.workspace(ctx).config()
        people = options.workspace(ctx).mirror_people()
        warnings = list(config.warnings)
        if people is not None:
            warnings += check_people(config, people[0], inactive_emails=people[1])
    except RulesFileError as exc:
        exc = _with_people_problems(ctx, exc)
        if not as_json:
            raise exc from None
        payload = {"rules_file": str(path), "valid": False,
                   "problems": [_problem_json(p) for p in exc.problems]}
        render.print_json(json.dumps(payload))
        raise typer.Exit(exc.exit_code) from None

    enabled = sum(1 for p in config.rules.values() if p.enabled)
    summary = (
        f"{path} is valid: {_plural(len(config.rules), 'rule')} ({enabled} enabled), "
        f"{_plural(len(config.teams), 'team')}, "
        f"{_plural(len(config.territories), 'territory', 'territories')}, "
        f"{_plural(len(config.exceptions), 'exception')}"
    )
    if as_json:
        payload = {
            "rules_file": str(path), "valid": True, "sha256": config.sha256,
            "rules": len(config.rules), "enabled": enabled, "teams": len(config.teams),
            "territories": len(config.territories), "exceptions": len(config.exceptions),
            "people_checked": people is not None,
            "warnings": [_problem_json(p) for p in warnings],
        }
        render.print_json(json.dumps(payload))
        return
    render.console.print(summary, markup=False, soft_wrap=True)
    if people is None:
        render.console.print("People not checked: the mirror has no owners yet (run `roe sync` or "
                             "`roe demo`, then check again).", markup=False)
    else:
        render.console.print(f"Every e-mail it names is an owner in the mirror "
                             f"({_plural(len(config.emails_named()), 'mention')}).", markup=False)
    for warning in warnings:
        render.err_console.print(f"warning: {warning}", markup=False, soft_wrap=True)


def _with_people_problems(ctx: typer.Context, exc: RulesFileError) -> RulesFileError:
    """The file's problems and, in the same pass, those of the e-mails it names (checked against
    the mirror when the loader could read the rest of the file)."""
    from ..rulesfile import RulesFileError, check_people

    people = options.workspace(ctx).mirror_people() if exc.config is not None else None
    if exc.config is None or people is None:
        return exc
    try:
        check_people(exc.config, people[0], inactive_emails=people[1])
    except RulesFileError as more:
        return RulesFileError(exc.file, [*exc.problems, *more.problems], exc.todo or "")
    return exc


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "column": problem.column,
            "key": problem.key, "message": problem.message}


def rules_test(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="A case file, or a folder of .toml case files.",
                           show_default=False)
    ],
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE", help="Also write a JUnit XML report to FILE, for CI."),
    ] = None,
) -> None:
    """Run rule cases against the rules file (--rules / ROE_RULES), the way `opa test` does.

    A case is a small org in TOML (owners, accounts, contacts, opportunities, activities,
    ownership changes), an as_of and the findings it expects (README: "Rule cases"). Each runs in
    a fresh in-memory mirror: the mirror (--db) is not used. Prints PASS or FAIL per case with
    what differed; exit 1 when a case fails, 2 when a case file or the rules file is wrong.

    Example: roe --rules rules.toml rules test rule_cases/ --junit rule-cases.xml
    """
    from ..rulecases import junit_xml
    from ..shared.files import atomic_write

    report = options.workspace(ctx).test_rule_cases(path)
    render.print_case_results(report)
    if junit is not None:
        atomic_write(junit, junit_xml(report).encode("utf-8"))
        render.console.print(f"JUnit report: {junit}", markup=False)
    if report.failed:
        raise typer.Exit(1)


rules_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)
rules_app.callback()(rules)
rules_app.command("test")(rules_test)
