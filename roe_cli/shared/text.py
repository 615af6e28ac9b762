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


def suggest_end(word: str, candidates: Iterable[str], *, list_all_up_to: int = 0) -> str:
    """The end of a sentence about ``word``: :func:`suggest`'s question, or a full stop."""
    return suggest(word, candidates, list_all_up_to=list_all_up_to) or "."


def excel_safe(value: object) -> str:
    """A cell value that a spreadsheet shows as text and never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


# Characters a terminal acts on instead of showing: C0 controls (ESC starts a sequence that can
# clear the screen or set the window title, BEL rings, CR rewrites the line), DEL, C1 controls
# (U+009B is a one-character CSI to some terminals), line/paragraph separators, and the
# bidirectional overrides and isolates that reorder what follows ("Trojan Source").
_ACTIVE = (
    {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}
    | {"\u061c", "\u200e", "\u200f", "\u2028", "\u2029"}
    | {chr(c) for c in range(0x202A, 0x202F)} | {chr(c) for c in range(0x2066, 0x206A)}
)
_VISIBLE = str.maketrans({ch: (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
                          for ch in _ACTIVE})
_VISIBLE_LINES = str.maketrans({k: v for k, v in _VISIBLE.items() if k not in (ord("\n"), ord("\t"))})
_JSON_ESCAPES = str.maketrans({ch: f"\\u{ord(ch):04x}" for ch in _ACTIVE if ord(ch) >= 0x7F})


def visible(value: object, *, lines: bool = False) -> str:
    """``value`` as text a terminal shows and never obeys: each control character (ESC, BEL, CR,
    the other C0 and C1 controls, DEL, bidi overrides) is written as an escape such as ``\\x1b``
    or ``\\u202e``. With ``lines`` newlines and tabs stay (messages of several lines).

    For what roe prints; files (CSV, XLSX, JSON exports) keep the data as it is.
    """
    text = "" if value is None else str(value)
    return text.translate(_VISIBLE_LINES if lines else _VISIBLE)


def visible_json(text: str) -> str:
    """JSON text for a terminal: the controls JSON leaves raw (DEL, C1, bidi, separators) as
    ``\\uXXXX`` escapes. Still valid JSON with the same data (C0 is escaped by ``json`` already,
    and these characters occur only inside strings)."""
    return text.translate(_JSON_ESCAPES)
