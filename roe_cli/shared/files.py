"""Writing files so that a crash, a full disk or Ctrl-C never leaves half a file behind.

Every file roe writes goes through :func:`atomic_path`: it is written under a temporary name
beside its target, flushed to disk, then renamed onto the target in one step. Until the rename the
target keeps its old content; on any error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_mode(target: Path) -> int:
    """The mode the target has, else what a plain ``open()`` would give under the umask."""
    if target.exists():
        return target.stat().st_mode & 0o777
    current = os.umask(0)
    os.umask(current)
    return 0o666 & ~current


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsync'd
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path, *, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; renamed onto ``target`` when the block
    ends without an error.

    ``mode`` sets the file's permission bits (``0o600`` for files holding CRM data); by default
    the target keeps the mode it had, or gets the umask's default. Raises ``OSError`` when the
    folder cannot take the temporary file.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, _default_mode(target) if mode is None else mode)
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` in one step (see :func:`atomic_path`)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)
