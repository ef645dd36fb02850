"""A JSON-over-WebSocket connection on `websockets.sync` (gevent-friendly threads).

`websockets.sync` is used rather than websocket-client because it parses frames in
bulk: about five times fewer CPU seconds per received message in our measurements,
which is what decides how many messages one load generator can take.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Callable

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from scenarios.adapters.base import ConnectFailed, Delivery, Disconnected, Welcome

CLOSE_TIMEOUT = 2.0
MAX_FRAME = 4 * 1024 * 1024

Decoder = Callable[[Any], Delivery | None]


def open_ws(url: str, timeout: float) -> ClientConnection:
    """Open a WebSocket or raise ConnectFailed saying why (refused, HTTP status, timeout)."""
    try:
        return connect(
            url,
            open_timeout=timeout,
            close_timeout=CLOSE_TIMEOUT,
            compression=None,
            max_size=MAX_FRAME,
            ping_interval=None,  # the server's pings are answered; ours would only add load
            legacy=True,
        )
    except InvalidStatus as exc:
        raise ConnectFailed(f"handshake rejected: HTTP {exc.response.status_code}", exc.response.status_code) from None
    except InvalidURI as exc:
        raise ConnectFailed(f"bad WebSocket URL: {exc}") from None
    except (InvalidHandshake, TimeoutError, socket.timeout) as exc:
        raise ConnectFailed(f"handshake failed: {type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise ConnectFailed(f"connect failed: {exc.strerror or exc}") from None


def recv_json(ws: ClientConnection, timeout: float | None = None) -> Any:
    """Next frame as JSON; Disconnected when the connection ends, None if not JSON."""
    try:
        raw = ws.recv(timeout=timeout)
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        raise Disconnected(rcvd.code if rcvd else None, rcvd.reason if rcvd else "no close frame") from None
    except OSError as exc:
        raise Disconnected(None, f"socket error: {exc}") from None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class WsConnection:
    """One subscriber socket: frames in, decoded by the adapter's decoder."""

    def __init__(self, ws: ClientConnection, welcome: Welcome, decode: Decoder,
                 resume_frame: Callable[[int], Any] | None = None) -> None:
        self._ws = ws
        self.welcome = welcome
        self._decode = decode
        self._resume_frame = resume_frame

    def receive(self) -> Delivery | None:
        return self._decode(recv_json(self._ws))

    def resume(self, after: int) -> bool:
        if self._resume_frame is None:
            return False
        try:
            self._ws.send(json.dumps(self._resume_frame(after)))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise Disconnected(rcvd.code if rcvd else None, "closed while resuming") from None
        return True

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:  # closing must never fail the caller
            pass

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake (a network blip)."""
        try:
            self._ws.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()
