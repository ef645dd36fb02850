"""The seam between gauntlet's users and the protocol of the system under test.

An adapter answers four questions, and nothing else:

- how a client connects and subscribes as a user (`connect` -> `Connection`), and what
  the server said on connect (which replica, the latest id);
- how a message is published (`publish_request`) and what the ack returns
  (`parse_ack` -> id, instance);
- how the message key and send time are read back from a received frame
  (`Connection.receive` -> `Delivery`);
- optionally, how a client resumes after a reconnect (`Connection.resume`).

Transport to publish is HTTP through Locust's client, so every adapter gets the same
open-model scheduler, outcome rules (ok / fail / unknown) and statistics for free.

Which replica a socket or a publish landed on comes from the harness's load balancer:
it names the upstream that answered in the `X-Gauntlet-Replica` response header, the
WebSocket handshake included, so this works for any app. Where the app names its own
replica (a welcome frame's instance, an ack's instance), the app's name wins: it knows
which process holds the socket even behind further hops of its own.

Exceptions a connection raises:

    Disconnected        the connection ended (code and reason when the peer sent them)
    ConnectFailed       connect or welcome did not succeed (refused, bad token, timeout)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

from common.state import REPLICA_HEADER


class AdapterError(ValueError):
    """Bad adapter settings; the message names the setting."""


class Disconnected(Exception):
    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"disconnected code={code} {reason}".strip())
        self.code = code
        self.reason = reason


class ConnectFailed(Exception):
    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom: filled from the stack state or --host."""

    http_url: str
    ws_url: str
    secret: str = ""
    publisher_key: str = ""


@dataclass(slots=True)
class Delivery:
    """One message frame, decoded: the fields recv.csv needs."""

    key: str | None
    sent_ts: float | None
    id: int | None
    origin: str | None
    user: str | None
    replay: bool = False
    # Whether a padded payload arrived unchanged (scenarios/payload.py); None: not padded.
    intact: bool | None = None


@dataclass(frozen=True)
class Welcome:
    """What the server said when the connection opened."""

    instance: str = ""  # replica the socket landed on ("" when the protocol does not say)
    last_id: int | None = None  # newest message id at connect, the first resume point
    # Recent messages carried in the welcome itself. After a reconnect they are part of
    # what was missed (a server that sent them will not replay them again).
    backlog: tuple[Delivery, ...] = ()


def replica_from(headers: Any) -> str:
    """The replica the harness's load balancer named in a response ('' when it did not:
    another load balancer, or a response nginx made itself). Takes any header mapping
    (websockets', requests', or a plain dict with lower-case keys)."""
    if not headers:
        return ""
    try:
        value = headers.get(REPLICA_HEADER) or headers.get(REPLICA_HEADER.lower())
    except AttributeError:
        return ""
    return str(value).strip() if value else ""


def decode_backlog(frames: Any, decode: Callable[[Any], Delivery | None]) -> tuple[Delivery, ...]:
    """A welcome's recent messages, decoded and marked as replay (undecodable ones skipped)."""
    backlog = []
    for frame in frames or ():
        delivery = decode(frame)
        if delivery is not None:
            delivery.replay = True
            backlog.append(delivery)
    return tuple(backlog)


@dataclass(frozen=True)
class PublishRequest:
    method: str
    path: str  # absolute URL or a path under the target's http_url
    body: Any  # JSON-serialisable
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = ""  # Locust statistics entry name


@dataclass(frozen=True)
class Ack:
    ok: bool
    id: int | None = None
    instance: str = ""
    error: str = ""


@dataclass(frozen=True)
class ReadRequest:
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = ""


@runtime_checkable
class Connection(Protocol):
    welcome: Welcome

    def receive(self) -> Delivery | None:
        """Block for the next frame; None for frames that are not messages.
        Raises Disconnected when the connection ends."""

    def resume(self, after: int) -> bool:
        """Ask for what was missed after id `after`; False if the protocol cannot."""

    def close(self) -> None:
        """Close now; never raises, safe to call twice and from another greenlet."""

    def abort(self) -> None:
        """Drop the connection without a goodbye, as a network blip would; never raises."""


@runtime_checkable
class TargetAdapter(Protocol):
    name: str

    def connect(self, user: str, timeout: float) -> Connection:
        """Connect and subscribe as `user`; raises ConnectFailed."""

    def publish_request(self, user: str | None, data: dict) -> PublishRequest:
        """The HTTP call that publishes `data` to `user` (None = broadcast)."""

    def parse_ack(self, status: int, headers: Mapping[str, str], body: bytes) -> Ack:
        """Read the publish response: was it accepted, with which id, by which replica."""

    def read_requests(self, user: str, item: int, after: int = 0) -> list[ReadRequest]:
        """Plain reads a reader user makes (may be empty)."""

    def urls(self) -> list[str]:
        """Every URL the adapter will contact, for the loopback check."""
