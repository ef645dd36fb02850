"""Target adapters: how the load talks to a system under test (see base.py).

Built in: `reference` (the reference SUT), `jsonws` (plain JSON over WebSocket, from
settings), `socketio` (Socket.IO). Chosen by `--adapter` or `[load].adapter`.
"""

from __future__ import annotations

from typing import Any, Mapping

from scenarios.adapters.base import (
    Ack, AdapterError, ConnectFailed, Connection, Delivery, Disconnected, Endpoint, PublishRequest,
    ReadRequest, TargetAdapter, Welcome,
)

ADAPTERS = ("reference", "jsonws", "socketio")


def make_adapter(name: str, endpoint: Endpoint, settings: Mapping[str, Any] | None = None) -> TargetAdapter:
    """Build the named adapter; AdapterError with the known names for an unknown one."""
    if name == "reference":
        from scenarios.adapters.reference import ReferenceAdapter

        return ReferenceAdapter(endpoint, settings)
    if name == "jsonws":
        from scenarios.adapters.jsonws import JsonWsAdapter

        return JsonWsAdapter(endpoint, settings)
    if name in ("socketio", "socket.io"):
        from scenarios.adapters.socket_io import SocketIoAdapter

        return SocketIoAdapter(endpoint, settings)
    raise AdapterError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")


__all__ = [
    "ADAPTERS", "Ack", "AdapterError", "ConnectFailed", "Connection", "Delivery", "Disconnected", "Endpoint",
    "PublishRequest", "ReadRequest", "TargetAdapter", "Welcome", "make_adapter",
]
