"""Client-side pacing, so roe stays under HubSpot's limits instead of learning them from 429s.

HubSpot counts calls per private app in a rolling window (100 or 190 in 10 seconds) and CRM
searches separately (about 5 a second). :class:`SlidingWindow` keeps the times of the last calls
and waits until the oldest one leaves the window; :class:`Pacer` combines the general window and
the search window. The clock and the sleep are injected, so tests run without waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` acquisitions in any ``period`` seconds."""

    def __init__(
        self,
        limit: int,
        period: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if limit < 1 or period <= 0:
            raise ValueError("a rate limit needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a free slot, take it, and return how long this waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.period:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return waited
                pause = self.period - (now - self._stamps[0])
                self._sleep(pause)
                waited += pause


class Pacer:
    """Every call takes a slot in the general window; searches also take one in theirs."""

    def __init__(
        self,
        requests_per_10s: int,
        searches_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.general = SlidingWindow(requests_per_10s, 10.0, clock, sleep)
        # 4.5 a second is 9 in 2 seconds: keep fractional rates exact over a longer window.
        limit, period = _as_window(searches_per_second)
        self.search = SlidingWindow(limit, period, clock, sleep)
        self.waited = 0.0

    def acquire(self, search: bool = False) -> None:
        if search:
            self.waited += self.search.acquire()
        self.waited += self.general.acquire()


def _as_window(per_second: float) -> tuple[int, float]:
    """A rate as (calls, seconds) with a whole number of calls: 4 -> (4, 1), 0.5 -> (1, 2)."""
    for seconds in (1, 2, 4, 5, 10, 20, 60):
        calls = per_second * seconds
        if calls >= 1 and abs(calls - round(calls)) < 1e-9:
            return int(round(calls)), float(seconds)
    return max(1, int(per_second)), 1.0
