"""The rules file, ``rules.toml``: teams, territories, rule settings, exceptions.

:func:`load_rules` reads and validates a file and returns an immutable :class:`RulesConfig`; every
problem in the file is reported at once, each naming the file, the line and the key (see
:mod:`.load`). :func:`check_people` checks the e-mails the file names against the owners in the
mirror, which :func:`mirror_people` reads; the audit calls it once the mirror has owners.

Modules: :mod:`.schema` (the models), :mod:`.locate` (where each key is written),
:mod:`.problems` (problems in English), :mod:`.load` (the loader), :mod:`.people`. This module
only re-exports; the rules' parameter docs live with the rules (:mod:`roe_cli.rules.docs`).
"""

from __future__ import annotations

from ..rules import rule_code, rule_codes
from ..rules.docs import ParamSpec, param_specs, rule_doc
from ..shared.text import did_you_mean
from .load import load_rules, parse_rules
from .locate import KeyPath, locate_keys, render_key
from .people import check_people, mirror_people
from .problems import FIX_TODO, MISSING_FILE_TODO, Problem, RulesFileError
from .schema import (
    DEFAULT_FREE_EMAIL_DOMAINS,
    ExceptionRule,
    Match,
    NamedEmail,
    RulesConfig,
    Team,
    Territory,
)

__all__ = [
    "DEFAULT_FREE_EMAIL_DOMAINS",
    "FIX_TODO",
    "MISSING_FILE_TODO",
    "ExceptionRule",
    "KeyPath",
    "Match",
    "NamedEmail",
    "ParamSpec",
    "Problem",
    "RulesConfig",
    "RulesFileError",
    "Team",
    "Territory",
    "check_people",
    "did_you_mean",
    "load_rules",
    "locate_keys",
    "mirror_people",
    "param_specs",
    "parse_rules",
    "render_key",
    "rule_code",
    "rule_codes",
    "rule_doc",
]
