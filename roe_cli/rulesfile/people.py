"""The people a rules file names, checked against the owners in the mirror.

:func:`check_people` is pure: it takes the mirror's owner e-mails and raises for any e-mail the
file names that no owner has. :func:`mirror_people` reads those e-mails from a mirror, and never
creates a table: `roe rules --check` must leave no trace in a database it only looks at.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..models import owners
from ..shared.errors import ConfigError
from ..shared.text import suggest
from .problems import Problem, RulesFileError
from .schema import RulesConfig


def check_people(
    config: RulesConfig,
    known_emails: Iterable[str],
    *,
    inactive_emails: Iterable[str] = (),
) -> list[Problem]:
    """Check every e-mail the file names against the owners in the mirror.

    Raises :class:`RulesFileError` listing each team member, default owner or e-mail fallback that
    is no owner's e-mail, with a "did you mean" from ``known_emails``. Returns warnings: default
    owners and fallbacks that are inactive (they can be suggested to no one).
    """
    known = {e.strip().lower() for e in known_emails if e}
    inactive = {e.strip().lower() for e in inactive_emails if e}
    file = str(config.path)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for named in config.emails_named():
        if named.email not in known:
            hint = suggest(named.email, sorted(known))
            problems.append(Problem(
                file, named.line, named.key,
                f"unknown {named.kind} '{named.email}': no owner in the mirror has this e-mail{hint}",
            ))
        elif named.email in inactive and named.kind != "team member":
            warnings.append(Problem(
                file, named.line, named.key,
                f"{named.kind} '{named.email}' is inactive in the CRM: nothing will be suggested "
                "through it",
            ))
    if problems:
        raise RulesFileError(
            file, problems,
            "Fix the e-mails in the rules file; if someone is new, sync the CRM first (`roe sync`).",
        )
    return warnings


def mirror_people(engine: Engine) -> tuple[set[str], set[str]] | None:
    """The mirror's owner e-mails and the inactive ones; None when it has no owners table or no
    owner with an e-mail. An e-mail is inactive when no active owner has it in any source.

    Raises :class:`ConfigError` when the mirror cannot be read.
    """
    try:
        if not inspect(engine).has_table("owners"):
            return None
        with engine.connect() as conn:
            rows = conn.execute(
                select(owners.c.email, owners.c.active).where(owners.c.email.is_not(None))
            ).all()
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"Cannot read the owners from the mirror: {exc.__class__.__name__}.",
            "Check --db / ROE_DB, or point it at no mirror to check the rules file alone.",
        ) from None
    if not rows:
        return None
    known = {email.strip().lower() for email, _ in rows}
    active = {email.strip().lower() for email, is_active in rows if is_active}
    return known, known - active
