"""The raw load record schema (DESIGN contract 2): one CSV per record kind per process.

This module is the single source of the column lists, for the recorders that write
them (scenarios) and the checkers that read them (reports). See docs/architecture.md.
"""

from __future__ import annotations

HTTP_COLUMNS = ("ts", "name", "method", "status", "dur_ms", "ok", "instance", "error")
PUB_COLUMNS = (
    "key", "kind", "user", "ts_intended", "ts_sent", "ts_ack",
    "outcome", "status", "id", "instance", "error",
)
RECV_COLUMNS = ("ts", "sub", "user", "conn", "instance", "key", "id", "origin", "sent_ts", "replay")
CONN_COLUMNS = ("ts", "sub", "user", "conn", "event", "instance", "code", "detail")
USERS_COLUMNS = ("ts", "users", "sockets")

KINDS: dict[str, tuple[str, ...]] = {
    "http": HTTP_COLUMNS,
    "pub": PUB_COLUMNS,
    "recv": RECV_COLUMNS,
    "conn": CONN_COLUMNS,
    "users": USERS_COLUMNS,
}

PUBLISH_OUTCOMES = ("ok", "fail", "unknown")
CONN_EVENTS = ("connect", "disconnect", "connect_fail", "resume")
