"""What a CRM (or whatever stood in its way) said, made short enough for an error message.

A maintenance window, a proxy or a captive portal answers with an HTML page, not the CRM's JSON;
quoting 300 characters of its markup tells the reader nothing. :func:`summarize_body` names such a
page by its title, and shortens any other text to one line.
"""

from __future__ import annotations

import html
import re

__all__ = ["is_html", "summarize_body"]

_HTML_START = re.compile(r"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b",
                         re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HEADING = re.compile(r"<h1[^>]*>(.*?)</h1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _plain(fragment: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", fragment))).strip()


def is_html(text: str) -> bool:
    """Whether ``text`` is an HTML page rather than an API's JSON or plain words."""
    return bool(_HTML_START.match(text)) or bool(_TITLE.search(text[:4096]) and "<body" in text.lower())


def summarize_body(body: str | bytes | None, limit: int = 300) -> str:
    """One line for an error answer's body: an HTML page as ``an HTML page titled '...'``, other
    text with its whitespace folded and cut to ``limit`` characters."""
    if body is None:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if is_html(body):
        match = _TITLE.search(body) or _HEADING.search(body)
        title = _plain(match.group(1))[:120] if match else ""
        return f"an HTML page titled {title!r}" if title else "an HTML page without a title"
    text = _SPACE.sub(" ", body).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
