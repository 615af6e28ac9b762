"""The demo org's "field mapping": none, since it lives in the mirror, already normalized.

What remains is which records carry an owner it can read and write, and how many ids one read
takes (the mirror's ``IN`` lists stay short).
"""

from __future__ import annotations

from roe_cli.shared.vocab import OBJECT_TYPES

OWNED_OBJECTS: tuple[str, ...] = OBJECT_TYPES
READ_CHUNK = 500
# The write-back's window: the demo has no batch limit of its own, so it takes the default one.
WRITE_BATCH_SIZE = 200
