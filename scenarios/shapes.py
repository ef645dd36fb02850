"""Subscriber shapes that open races: slow readers, readers that stop reading for a
while, and clients that vanish without a close.

A socket whose reader is slow or stopped fills its TCP buffers; a server that writes
to every socket in one loop, or waits on one socket's send, then makes every other
subscriber wait too. A client that disappears without a close frame leaves the
server with a half-open socket until it notices. These subscribers record their shape
on each connect (conn.csv detail `shape=<name>`); the delivery check owes them their
messages eventually only, and the `isolation` check (reports/isolation.py) requires
that the other subscribers lost nothing and were not late because of them.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import gevent

from common.records import shape_detail
from scenarios.adapters.base import Delivery




def describe(shape: "Shape") -> str:
    """conn.csv's detail on a shaped subscriber's connect: `shape=stalled slack=3`."""
    return shape_detail(shape.name, shape.slack)
Receive = Callable[[], "Delivery | None"]


class Shape(Protocol):
    name: str

    @property
    def slack(self) -> float:
        """How long a frame may sit unread in this subscriber's socket: messages sent
        that close to the end of its last connection are not owed to it."""

    def wrap(self, receive: Receive) -> Receive:
        """The receive the subscriber's loop calls instead of the connection's own."""

    def watch(self, vanish: Callable[[], None]) -> None:
        """Runs in its own greenlet beside the subscriber while it lives (or returns at once)."""


@dataclass
class SlowReader:
    delay: float
    name: str = "slow"

    @property
    def slack(self) -> float:
        return 25 * self.delay  # a backlog of a few dozen frames

    def wrap(self, receive: Receive) -> Receive:
        delay = self.delay

        def slow() -> Delivery | None:
            gevent.sleep(delay)
            return receive()
        return slow

    def watch(self, vanish: Callable[[], None]) -> None:
        return None


@dataclass
class StalledReader:
    """Stops reading for `stall_for` about every `every` seconds (the first stall at a
    random phase, so stalled readers do not all stop together)."""

    every: float
    stall_for: float
    rng: random.Random
    name: str = "stalled"

    @property
    def slack(self) -> float:
        return self.stall_for

    def wrap(self, receive: Receive) -> Receive:
        next_stall = [time.monotonic() + self.rng.uniform(0.2, 1.0) * self.every]

        def stalling() -> Delivery | None:
            now = time.monotonic()
            if now >= next_stall[0]:
                gevent.sleep(self.stall_for)
                next_stall[0] = time.monotonic() + self.every - self.stall_for
            return receive()
        return stalling

    def watch(self, vanish: Callable[[], None]) -> None:
        return None


@dataclass
class VanishingClient:
    """Drops its socket without a close frame after an exponential lifetime of mean
    `every` seconds (as a phone losing its network does), then reconnects."""

    every: float
    rng: random.Random
    name: str = "vanishing"
    slack: float = 0.0

    def wrap(self, receive: Receive) -> Receive:
        return receive

    def watch(self, vanish: Callable[[], None]) -> None:
        while True:
            gevent.sleep(max(0.5, self.rng.expovariate(1.0 / self.every)))
            vanish()
