"""What the users of one load process share: settings, adapter, recorder, identities.

Users reach it through `current()`; the plugin builds it when a test starts. Naming:

- worker: `w<index>` (Locust's worker index; `w0` standalone), prefix of every key
- message key: `<worker>-<seq>`, unique per run without coordination
- subscriber slot j of worker w out of W workers is global subscriber i = j*W + w,
  and takes user `u{i % K}`: the pool u0..u{K-1} is covered densely from u0 up, on
  every process, with no messages between processes
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from scenarios.adapters.base import TargetAdapter
from scenarios.connect_pacing import FirstConnects
from scenarios.recorder import Recorder
from scenarios.settings import LoadSettings
from scenarios.target import Target

if TYPE_CHECKING:
    from locust.env import Environment


class OpenSubscription(Protocol):
    """What the process asks of a subscription it holds (scenarios/subscription.py,
    which builds on this module: the process does not import it)."""

    def storm(self, delay: float = 0.0) -> None: ...


class SlotPool:
    """Lowest-free slot numbers, so the users in use stay dense as subscribers come and go."""

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 0
        self.in_use = 0

    def take(self) -> int:
        self.in_use += 1
        if self._free:
            self._free.sort()
            return self._free.pop(0)
        slot = self._next
        self._next += 1
        return slot

    def give(self, slot: int) -> None:
        self.in_use -= 1
        self._free.append(slot)


@dataclass
class LoadProcess:
    environment: "Environment"
    settings: LoadSettings
    target: Target
    adapter: TargetAdapter
    recorder: Recorder
    worker: str
    worker_index: int
    workers: int
    seed: int
    sockets: int = 0
    global_subscribers: int = 0  # from the master when distributed; else counted here
    last_id: int = 0  # newest message id acknowledged in this process (readers' history window)
    subscriptions: set[OpenSubscription] = field(default_factory=set)
    slots: SlotPool = field(default_factory=SlotPool)
    first_connects: FirstConnects = field(default_factory=FirstConnects)
    _keys: itertools.count = field(default_factory=lambda: itertools.count(1))
    _subs: itertools.count = field(default_factory=lambda: itertools.count(1))
    _rngs: itertools.count = field(default_factory=lambda: itertools.count(1))

    def continue_from(self, previous: "LoadProcess") -> None:
        self._keys, self._subs, self._rngs = previous._keys, previous._subs, previous._rngs

    def next_key(self) -> str:
        return f"{self.worker}-{next(self._keys)}"

    def next_sub_id(self) -> str:
        return f"{self.worker}-s{next(self._subs)}"

    def rng(self) -> random.Random:
        """A generator per user, derived from the run seed: reproducible per process."""
        return random.Random(f"{self.seed}/{self.worker}/{next(self._rngs)}")

    def user_for_slot(self, slot: int) -> str:
        return f"u{(slot * self.workers + self.worker_index) % self.settings.user_pool}"

    def addressable_users(self) -> int:
        """How many of u0..u{K-1} have a subscriber (at least one; K when unknown)."""
        subscribers = self.global_subscribers or self.slots.in_use * self.workers
        if subscribers <= 0:
            return self.settings.user_pool
        return max(1, min(self.settings.user_pool, subscribers))


_current: LoadProcess | None = None


def current() -> LoadProcess:
    if _current is None:
        raise RuntimeError("gauntlet users run inside a gauntlet scenario (locust -f scenarios/<name>.py)")
    return _current


def set_current(process: LoadProcess | None) -> None:
    global _current
    _current = process
