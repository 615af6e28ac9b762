"""Writing files so that a crash, a full disk or Ctrl-C never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` in one step: a temporary file beside it, fsync'd, then renamed.

    ``mode`` sets the new file's permission bits (e.g. ``0o600`` for files holding CRM data);
    otherwise the file keeps the mode it had, or gets the process's default.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if mode is None and path.exists():
        mode = path.stat().st_mode & 0o777
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if mode is None else mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif hasattr(os, "umask"):
            current = os.umask(0)
            os.umask(current)
            os.chmod(tmp, 0o666 & ~current)
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
