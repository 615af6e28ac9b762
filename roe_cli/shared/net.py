"""Network failures, told apart the same way for every connector."""

from __future__ import annotations


def unreachable(exc: BaseException) -> str | None:
    """Why nothing answered at all ("connection refused", "the host name does not resolve",
    "no connection"), or None when something did or the failure is of another kind (a timeout, a
    reset connection, an HTTP error). Follows ``reason``, ``args`` and the exception chain, as
    urllib3 and requests wrap the socket's error two or three deep."""
    import urllib3

    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        err = todo.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, urllib3.exceptions.NameResolutionError):
            return "the host name does not resolve"
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, urllib3.exceptions.NewConnectionError):
            return "connection refused" if "refused" in str(err).lower() else "no connection"
        todo.extend([getattr(err, "reason", None), err.__cause__, err.__context__,
                     *(a for a in getattr(err, "args", ()) if isinstance(a, BaseException))])
    return None
