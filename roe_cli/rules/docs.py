"""Each rule's settings in words, for `roe rules --explain`: what each takes, its default, the
value in force. Read from the rule's ``Params`` model, so the docs cannot drift from the rule."""

from __future__ import annotations

import datetime as dt
import inspect
import types
from collections.abc import Iterable
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

from .base import RuleParams, Takes
from .registry import REGISTRY


class ParamSpec(NamedTuple):
    """One setting of a rule, for `roe rules --explain`."""

    name: str
    kind: str  # what values it takes, in words
    default: Any
    value: Any  # the value in force
    set_in_file: bool



def _kind_text(annotation: Any, metadata: Iterable[Any] = ()) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _kind_text(args[0], [*metadata, *annotation.__metadata__])
    for meta in metadata:
        if isinstance(meta, Takes):  # the rule says it in words
            return meta.text
    bounds = ""
    for meta in metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(meta, attr, None) is not None:
                bounds += f" {sign} {getattr(meta, attr)}"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "whole number" + bounds
    if annotation is float:
        return "number" + bounds
    if annotation is str:
        return "text"
    if annotation is dt.date:
        return "date"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list, set, frozenset):
        return "list of " + _kind_text(args[0]) if args else "list"
    if origin is dict:
        return f"table of {_kind_text(args[0])} = {_kind_text(args[1])}"
    if origin is Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        return " or ".join(_kind_text(a) for a in rest) + (" (optional)" if len(rest) < len(args) else "")
    return getattr(annotation, "__name__", str(annotation))


def param_specs(code: str, params: RuleParams | None = None) -> list[ParamSpec]:
    """The settings of rule ``code``: what each takes, its default and the value in force."""
    cls = REGISTRY[code].params
    params = params if params is not None else cls()
    specs: list[ParamSpec] = []
    for name, info in cls.model_fields.items():
        kind = _kind_text(info.annotation, info.metadata)
        specs.append(ParamSpec(name, kind, info.get_default(call_default_factory=True),
                               getattr(params, name), name in params.model_fields_set))
    return specs


def rule_doc(code: str) -> str:
    """The rule's documentation: what it flags, why, and how to fix it."""
    return inspect.cleandoc(REGISTRY[code].doc)
