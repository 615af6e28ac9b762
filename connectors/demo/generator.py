"""The demo org: a realistic synthetic company that breaks every rule somewhere, on purpose.

``generate(accounts, seed, as_of)`` yields :class:`Chunk` objects of normalized mirror rows (the
roster first, then about a thousand accounts at a time with their contacts, opportunities,
activities and ownership history), so memory stays bounded whatever the size. Every chunk also
carries the findings it planted: ``(rule, object_type, object_id, related_user_id)``, exactly what a
correct audit of this org with the shipped ``rules.toml`` must report, no more and no less.

The background org obeys every rule: owners fit their account's territory and stage, activity
keeps up with open deals and handoffs, domains are unique. Each planted *scenario* breaks a rule on
a few accounts; *edge* scenarios sit just inside a rule (a waived window, a tie, a deleted record)
and must not be flagged. Every time keeps at least two days away from a rule's boundary, so an
audit on the day of generation (the default ``as_of`` is today, 00:00 UTC) sees exactly the plan.

Same ``(accounts, seed, as_of)``, same org: each chunk draws from its own seeded generator.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime

from roe_cli.shared.clock import utcnow

from .builder import DAY, Chunk, build_chunk
from .roster import PEOPLE
from .scenarios import SCENARIOS

__all__ = ["CHUNK", "SCENARIOS", "Chunk", "build_chunk", "default_as_of", "generate", "owner_rows"]

CHUNK = 1000


def default_as_of() -> datetime:
    """Today at 00:00 UTC, as naive UTC: the generator's "now" unless told otherwise."""
    today = utcnow().date()
    return datetime(today.year, today.month, today.day)


def owner_rows(as_of: datetime) -> list[dict]:
    return [
        {
            "id": p.id,
            "email": p.email,
            "name": p.name,
            "active": p.active,
            "role": p.crm_role,
            "team": p.team,
            "manager_id": p.manager_id,
            "updated_at": as_of - 30 * DAY,
        }
        for p in PEOPLE
    ]


def generate(
    accounts: int, seed: int = 42, as_of: datetime | None = None, workers: int = 1
) -> Generator[Chunk, None, None]:
    """Yield the demo org in chunks; see the module docstring.

    With ``workers > 1`` chunks are built in that many processes, a few at a time (memory stays
    bounded); the org is the same either way, since every chunk has its own seeded generator.
    """
    as_of = as_of or default_as_of()
    yield Chunk(rows={"owner": owner_rows(as_of)})
    starts = range(0, accounts, CHUNK)
    if workers <= 1 or len(starts) < 2:
        for start in starts:
            yield build_chunk(seed, as_of, start, min(CHUNK, accounts - start))
        return
    import multiprocessing
    from collections import deque

    # Workers ignore Ctrl-C (a terminal sends it to every process of the group): the parent
    # decides, and on any exit before the end (Ctrl-C, an error, the consumer closing this
    # generator) terminates them at once instead of waiting for the chunks they hold.
    pool = multiprocessing.get_context().Pool(workers, initializer=_ignore_sigint)
    try:
        pending: deque = deque()
        for start in starts:
            pending.append(pool.apply_async(build_chunk, (seed, as_of, start, min(CHUNK, accounts - start))))
            if len(pending) > workers * 2:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
