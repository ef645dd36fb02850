"""What a dependency fault looks like to the app: the one contract every backend keeps.

A dependency fault is only worth its verdict if a replica's client library (redis-py,
asyncpg, ioredis, ...) sees what it would see in the real failure; a client that
behaves well against a real crash and badly against the fault (or the other way round)
makes the check blame the wrong thing. So each fault states what the app sees, in
three words, and tests/faults/test_client_view.py measures those words with real
client libraries against a real `kill -9` of the server. A backend that implements a
fault (local processes, Docker) must produce the same view; that test's probes are how
to check it.

    fault       new connections    open connections           data afterwards
    down        refused            closed (EOF)               kept
    crash       refused            closed (EOF)               kept or lost (`data=`)
    partition   refused | hang      closed (EOF) | hang        kept
    blackhole   hang               hang                       kept
    flush       accepted           open                       emptied at once

- refused: the connect fails at once with ECONNREFUSED (nothing listens), as against
  a port whose server process is dead. Never accept-then-close: a client that gets a
  connection, then EOF, may flush its offline queue into it and lose it.
- closed (EOF): what a process kill does to its sockets: the kernel closes them with
  a FIN; the next read sees end of stream, a write after that gets a reset.
- hang: packets vanish, as in a network partition; only timeouts notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Connect(str, Enum):
    """What a new connection attempt sees while the fault holds."""

    REFUSED = "refused"  # ECONNREFUSED at once
    HANGS = "hang"  # no answer; the client's connect or first-read timeout fires
    ACCEPTED = "accepted"  # connects and works


class OpenConnections(str, Enum):
    """What a connection that was open when the fault began sees."""

    CLOSED = "closed"  # end of stream (FIN); a later write is reset
    HANG = "hang"  # stays open, nothing comes back
    OPEN = "open"  # unaffected


class Data(str, Enum):
    """What the dependency holds once the fault is over."""

    KEPT = "kept"
    LOST = "lost"  # a restart without its data (no persistence, or a lost volume)
    EMPTIED = "emptied"  # emptied under the running app, no restart


@dataclass(frozen=True)
class AppView:
    """What a replica's client library sees during and after a dependency fault."""

    connect: Connect
    open_connections: OpenConnections
    data: Data

    def describe(self) -> str:
        return (f"new connections {self.connect.value}, open connections {self.open_connections.value}, "
                f"data {self.data.value}")


DOWN = AppView(Connect.REFUSED, OpenConnections.CLOSED, Data.KEPT)
CRASH_KEPT = AppView(Connect.REFUSED, OpenConnections.CLOSED, Data.KEPT)
CRASH_LOST = AppView(Connect.REFUSED, OpenConnections.CLOSED, Data.LOST)
BLACKHOLE = AppView(Connect.HANGS, OpenConnections.HANG, Data.KEPT)
FLUSH = AppView(Connect.ACCEPTED, OpenConnections.OPEN, Data.EMPTIED)


__all__ = ["AppView", "BLACKHOLE", "CRASH_KEPT", "CRASH_LOST", "Connect", "DOWN", "Data", "FLUSH",
           "OpenConnections"]
