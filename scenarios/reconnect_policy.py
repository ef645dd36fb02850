"""When a subscriber may try to connect again: capped exponential backoff with full
jitter, and a hard budget of attempts per minute.

Full jitter spreads a thousand sockets dropped by one replica over the whole window
instead of hammering the survivors in lockstep; the per-minute budget bounds the
loop even when the server accepts and immediately closes.
"""

from __future__ import annotations

import random
import time
from collections import deque

BASE_DELAY = 0.25
# A connection that stayed up this long was healthy: the next failure starts over.
HEALTHY_AFTER = 5.0


class ReconnectPolicy:
    def __init__(self, cap: float, per_minute: int, rng: random.Random, base: float = BASE_DELAY,
                 clock=time.monotonic) -> None:
        self.cap = cap
        self.per_minute = per_minute
        self.base = base
        self._rng = rng
        self._clock = clock
        self._attempt = 0
        self._recent: deque[float] = deque()

    def connected_for(self, seconds: float) -> None:
        if seconds >= HEALTHY_AFTER:
            self._attempt = 0

    def delay(self) -> float:
        """Seconds to wait before the next attempt (backoff, then the budget)."""
        ceiling = min(self.cap, self.base * (2 ** min(self._attempt, 30)))
        self._attempt += 1
        wait = self._rng.uniform(0, ceiling)
        now = self._clock()
        while self._recent and self._recent[0] <= now - 60.0:
            self._recent.popleft()
        if len(self._recent) >= self.per_minute:
            wait = max(wait, self._recent[0] + 60.0 - now)
        return wait

    def attempted(self) -> None:
        """Count an attempt against the per-minute budget."""
        self._recent.append(self._clock())
