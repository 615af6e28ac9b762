"""Where each key of a rules file is written: a scanner over TOML text, and dotted key paths.

``tomllib`` keeps no positions, so :func:`locate_keys` walks the text itself and maps every key
path to its line. It runs only on text ``tomllib`` accepted, and never fails a load: positions are
a help, a key it cannot place simply has no line.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Iterable, Mapping

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render_key(path: Iterable[str | int]) -> str:
    """``("territories", 2, "match", "country")`` -> ``territories[2].match.country``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE_KEY.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
            out += f".{text}" if out else text
    return out



class _Locator:
    """Maps every key path in a TOML document to the line it is written on.

    ``tomllib`` keeps no positions, so this walks the text itself: table headers (``[a.b]`` and
    ``[[a]]``, counting array-of-tables elements), ``key = value`` lines, dotted and quoted keys,
    inline tables and arrays (each element gets its own path, so a bad e-mail in a long
    ``members`` list is found on its own line). It runs only on text ``tomllib`` accepted.
    """

    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines: dict[KeyPath, int] = {}
        self.aot: dict[KeyPath, int] = {}  # array-of-tables path -> elements so far

    def run(self) -> dict[KeyPath, int]:
        try:
            self._document()
        except (IndexError, ValueError, AttributeError, tomllib.TOMLDecodeError):
            pass  # positions are a help; never fail a load over them
        return self.lines

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def _record(self, path: KeyPath, pos: int) -> None:
        line = self._line(pos)
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], line)

    def _skip(self, newlines: bool = False) -> None:
        while self.i < self.n:
            c = self.s[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = self.n if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip(newlines=True)
            if self.i >= self.n:
                return
            start = self.i
            if self.s[self.i] == "[":
                double = self.s.startswith("[[", self.i)
                self.i += 2 if double else 1
                parts = self._key()
                self._skip()
                self.i += 2 if double else 1
                table = self._resolve(parts, double)
                self._record(table, start)
            else:
                path = table + self._key()
                self._record(path, start)
                self._expect("=")
                self._value(path)

    def _resolve(self, parts: tuple[str, ...], double: bool) -> KeyPath:
        resolved: KeyPath = ()
        for k, part in enumerate(parts):
            resolved += (part,)
            if double and k == len(parts) - 1:
                index = self.aot.get(resolved, 0)
                self.aot[resolved] = index + 1
                resolved += (index,)
            elif resolved in self.aot:
                resolved += (self.aot[resolved] - 1,)
        return resolved

    def _expect(self, char: str) -> None:
        self._skip()
        if self.s[self.i] != char:
            raise ValueError(f"expected {char!r} at {self.i}")
        self.i += 1
        self._skip()

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip()
            c = self.s[self.i]
            if c in "\"'":
                start = self.i
                self._string()
                parts.append(tomllib.loads("k = " + self.s[start:self.i])["k"])
            else:
                m = _BARE_KEY.match(self.s, self.i)
                if not m:
                    raise ValueError(f"no key at {self.i}")
                parts.append(m.group())
                self.i = m.end()
            self._skip()
            if self.i < self.n and self.s[self.i] == ".":
                self.i += 1
                continue
            return tuple(parts)

    def _string(self) -> None:
        s, i = self.s, self.i
        for quote in ('"""', "'''"):
            if s.startswith(quote, i):
                i += 3
                while not s.startswith(quote, i):
                    i += 2 if (quote == '"""' and s[i] == "\\") else 1
                    if i >= self.n:
                        raise ValueError("unterminated string")
                i += 3
                while i < self.n and s[i] == quote[0]:  # up to two quotes may end the content
                    i += 1
                self.i = i
                return
        quote = s[i]
        i += 1
        while s[i] != quote:
            i += 2 if (quote == '"' and s[i] == "\\") else 1
        self.i = i + 1

    def _value(self, path: KeyPath) -> None:
        c = self.s[self.i]
        if c == "{":
            self.i += 1
            while True:
                self._skip(newlines=True)
                if self.s[self.i] == "}":
                    self.i += 1
                    return
                if self.s[self.i] == ",":
                    self.i += 1
                    continue
                start = self.i
                sub = path + self._key()
                self._record(sub, start)
                self._expect("=")
                self._value(sub)
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if self.s[self.i] == "]":
                    self.i += 1
                    return
                if self.s[self.i] == ",":
                    self.i += 1
                    index += 1
                    continue
                self._record(path + (index,), self.i)
                self._value(path + (index,))
        elif c in "\"'":
            self._string()
        else:
            while self.i < self.n and self.s[self.i] not in ",]}#\r\n":
                self.i += 1


def locate_keys(text: str) -> dict[KeyPath, int]:
    """Every key path of the TOML ``text`` (already known to parse) and its line number."""
    return _Locator(text).run()


def line_for(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, or of its nearest parent that the file writes down."""
    for k in range(len(path), 0, -1):
        if path[:k] in lines:
            return lines[path[:k]]
    return None
