"""Text that roe shows or writes: "did you mean" suggestions and spreadsheet-safe cells."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def did_you_mean(word: str, candidates: Iterable[str]) -> list[str]:
    """The candidates that ``word`` is probably a typo of (best first; case-insensitive).

    Only the closest candidates are returned, and none when too many are equally close
    (``OWN007`` is as close to each of OWN001 to OWN006, so it suggests none of them).
    """
    folded: dict[str, str] = {}
    for cand in dict.fromkeys(c for c in candidates if isinstance(c, str) and c):
        folded.setdefault(cand.casefold(), cand)
    key = word.casefold()
    if key in folded:
        return [folded[key]] if folded[key] != word else []
    close = difflib.get_close_matches(key, list(folded), n=len(folded) or 1, cutoff=0.6)
    if not close:
        return []
    best = difflib.SequenceMatcher(None, key, close[0]).ratio()
    top = [c for c in close if difflib.SequenceMatcher(None, key, c).ratio() == best]
    return [folded[c] for c in top] if len(top) <= 3 else []


def or_list(values: Iterable[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    quoted = [f"'{v}'" for v in values]
    if not quoted:
        return ""
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def suggest(word: str, candidates: Iterable[str], *, list_all_up_to: int = 0) -> str:
    """``"; did you mean 'x'?"``, or ``"; use 'a' or 'b'"`` when nothing is close and the choice
    has at most ``list_all_up_to`` values, or ``""``."""
    candidates = list(candidates)
    matches = did_you_mean(word, candidates)
    if matches:
        return f"; did you mean {or_list(matches)}?"
    if candidates and len(candidates) <= list_all_up_to:
        return f"; use {or_list(candidates)}"
    return ""


def excel_safe(value: object) -> str:
    """A cell value that a spreadsheet shows as text and never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
