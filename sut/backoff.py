"""Capped exponential backoff with jitter, shared by every reconnect loop.

Jitter matters here: after a Postgres or Redis restart every replica reconnects at
once, and without it they would retry in lock-step and hit the server together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.1
    cap: float = 5.0
    factor: float = 2.0
    _current: float = field(default=0.0, init=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)

    def next_delay(self) -> float:
        """The next wait: doubles up to `cap`, then a random point in [50 %, 100 %] of it."""
        self._current = self.initial if self._current == 0.0 else min(self.cap, self._current * self.factor)
        return self._current * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self._current = 0.0
