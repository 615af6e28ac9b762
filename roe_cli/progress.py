"""Progress as the core reports it: plain callbacks, so the core never imports rich.

A command passes :func:`roe_cli.commands.render.progress_bar` (a bar on a terminal, nothing in cron)
as a :data:`Progress`; tests and unattended runs pass :func:`no_progress`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Advance = Callable[[int], None]
# ``progress(description, total)`` is a context manager yielding ``advance(n)``.
Progress = Callable[[str, "int | None"], contextlib.AbstractContextManager[Advance]]


def ignore_advance(n: int = 1) -> None:
    """An :data:`Advance` that counts nothing."""


@contextlib.contextmanager
def no_progress(description: str, total: int | None) -> Iterator[Advance]:
    """The :data:`Progress` that reports nothing (cron, CI, tests)."""
    yield ignore_advance
