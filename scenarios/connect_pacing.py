"""Connect-storm pacing: the first connects of a stage tick's users, laid out over the tick.

Locust's dispatcher adds a ramp's users in steps of floor(rate) once a second, and a
process starts each step's users in one loop: at 10,000 users over 60 s that is 167
handshakes in the same instant, once a second, and connect times measure that burst
(median 220 ms, p99 1.6 s here) rather than the app. A process lets the first
`AT_ONCE` subscribers of a burst connect at once (a test's handful of users keeps its
timing; a `0s` jump of the stages arrives within one tick) and gives each later one a random delay within the spread,
so a big step arrives as the even ramp the stages describe. Reconnects are paced by
their own backoff (reconnect_policy.py), reconnect storms by --storm-jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

# Subscribers of one burst that connect without a delay, per load process.
AT_ONCE = 10


class FirstConnects:
    """Counts the subscribers that start within one window (`spread` long) and says how
    long each should wait before its first connect."""

    def __init__(self, at_once: int = AT_ONCE, clock: Callable[[], float] = time.monotonic) -> None:
        self.at_once = at_once
        self.clock = clock
        self._window_start = float("-inf")
        self._started = 0

    def delay(self, spread: float, rng: random.Random) -> float:
        if spread <= 0:
            return 0.0
        now = self.clock()
        if now - self._window_start >= spread:
            self._window_start, self._started = now, 0
        self._started += 1
        if self._started <= self.at_once:
            return 0.0
        return rng.uniform(0.0, spread)
