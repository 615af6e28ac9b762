"""The demo org has no ``rules.toml`` table: ``roe demo`` takes its size, seed and date as
options, and the connector needs nothing but the mirror. The factory's ``settings_model`` is
therefore None, and a ``[demo]`` table is not read."""

from __future__ import annotations

SETTINGS_TABLE: str | None = None
