"""Socket.IO (the python-socketio client), as many apps with a Redis adapter run it.

```toml
[load]
adapter = "socketio"
[load.socketio]
url = "{http_url}"                   # {http_url} {user} {token}; add ?query=... if the app wants it
socketio_path = "socket.io"
namespace = "/"
auth = { token = "{token}" }         # the CONNECT packet's auth payload
transports = ["websocket"]           # no polling: behind a load balancer it needs sticky sessions
event = "notification"               # the event that carries messages
welcome_event = ""                   # optional event the server sends on connect (instance, newest id)
resume_event = ""                    # optional event to emit after a reconnect ...
resume_body = { after = "{after}" }  # ... with this payload
on_connect = [{ emit = "subscribe", args = ["{user}"], ack = true }]  # see on_connect.py
# message fields (JSON paths into the event's first argument) and HTTP publishing:
# the same keys as [load.jsonws]: key_path, sent_ts_path, id_path, origin_path, ...,
# publish_url, publish_body, broadcast_url, headers, ack_id_path, read_paths, ...
```

The replica a connection landed on is the welcome event's instance when one is
configured, else the one the load balancer named on the response that carried the
socket: the WebSocket 101 (straight to websocket, or the upgrade after polling), or,
for a connection that stays on long-polling, the engine.io handshake's response.
"""

from __future__ import annotations

import queue
import socket
from typing import Any, Mapping
from urllib.parse import quote

import socketio

from scenarios.adapters.base import (
    AdapterError, ConnectFailed, Delivery, Disconnected, Endpoint, Welcome, replica_from,
)
from scenarios.adapters.declarative import FRAME_DEFAULTS, PUBLISH_DEFAULTS, FrameFields, HttpPublishing, merge_settings
from scenarios.adapters.on_connect import Emit, socketio_actions
from scenarios.adapters.templates import check_json_template, check_template, render_json

DEFAULTS: dict[str, Any] = {
    "url": "{http_url}",
    "socketio_path": "socket.io",
    "namespace": "/",
    "auth": {"token": "{token}"},
    "transports": ["websocket"],
    "event": "notification",
    "welcome_event": "",
    "resume_event": "",
    "resume_body": {"after": "{after}"},
    "on_connect": [],
    **FRAME_DEFAULTS,
    **PUBLISH_DEFAULTS,
}
# The queue's end-of-stream marker; socket.io events are never this object.
_CLOSED = object()


class SocketIoConnection:
    def __init__(self, sio: socketio.Client, inbox: "queue.Queue[Any]", welcome: Welcome, fields: FrameFields,
                 namespace: str, resume_event: str, resume_body: Any) -> None:
        self._sio = sio
        self._inbox = inbox
        self.welcome = welcome
        self._fields = fields
        self._ns = namespace
        self._resume_event = resume_event
        self._resume_body = resume_body

    def receive(self) -> Delivery | None:
        item = self._inbox.get()
        if isinstance(item, tuple) and item and item[0] is _CLOSED:
            raise Disconnected(None, str(item[1]))
        return self._fields.decode(item)

    def resume(self, after: int) -> bool:
        if not self._resume_event:
            return False
        try:
            self._sio.emit(self._resume_event, render_json(self._resume_body, {"after": after}), namespace=self._ns)
        except socketio.exceptions.SocketIOError as exc:
            raise Disconnected(None, f"resume failed: {exc}") from None
        return True

    def close(self) -> None:
        try:
            self._sio.disconnect()
        except Exception:  # closing must never fail the caller
            pass
        finally:
            self._inbox.put((_CLOSED, "closed by client"))

    def abort(self) -> None:
        ws = getattr(getattr(self._sio, "eio", None), "ws", None)
        sock = getattr(ws, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()


class SocketIoAdapter:
    name = "socketio"

    def __init__(self, endpoint: Endpoint, settings: Mapping[str, Any] | None = None) -> None:
        s = merge_settings("socketio", settings, DEFAULTS)
        for key in ("url", "socketio_path", "namespace", "event", "welcome_event", "resume_event"):
            if not isinstance(s[key], str):
                raise AdapterError(f"[load.socketio] {key} must be a string")
        if not s["event"]:
            raise AdapterError("[load.socketio] event must name the event that carries messages")
        check_template(s["url"], ("http_url", "user", "token"), "[load.socketio] url")
        check_json_template(s["auth"], ("user", "token"), "[load.socketio] auth")
        check_json_template(s["resume_body"], ("after",), "[load.socketio] resume_body")
        transports = s["transports"]
        if isinstance(transports, str):
            transports = [transports]
        if not transports or any(t not in ("websocket", "polling") for t in transports):
            raise AdapterError("[load.socketio] transports must list websocket and/or polling")
        self.transports = list(transports)
        self.endpoint = endpoint
        self.s = s
        self.fields = FrameFields(s, "socketio")
        self.http = HttpPublishing(endpoint, s, "socketio")
        self.actions = socketio_actions(s["on_connect"])
        self.publish_request = self.http.publish_request
        self.parse_ack = self.http.parse_ack
        self.read_requests = self.http.read_requests

    def url(self, user: str) -> str:
        return self.s["url"].format(http_url=self.endpoint.http_url, user=quote(user),
                                    token=quote(self.http.token(user)))

    def user_token(self, user: str) -> str:
        return self.http.token(user) if self.endpoint.secret else ""

    def urls(self) -> list[str]:
        return [self.endpoint.http_url, self.url("u0"), *self.http.absolute_urls()]

    def connect(self, user: str, timeout: float) -> SocketIoConnection:
        s = self.s
        ns = s["namespace"]
        inbox: queue.Queue[Any] = queue.Queue()
        welcomes: queue.Queue[Any] = queue.Queue()
        polled: list[str] = []  # the load balancer's replica on the first polling response
        # A factory, not a session: engine.io then owns the session as it would its own
        # (with a session handed in, its polling disconnect waits out a whole long-poll).
        http = {"http_session": lambda: _recording_session(polled)} if "polling" in self.transports else {}
        sio = socketio.Client(reconnection=False, request_timeout=timeout, **http)
        sio.on(s["event"], lambda *args: inbox.put(args[0] if args else None), namespace=ns)
        sio.on("disconnect", lambda *args: inbox.put((_CLOSED, args[0] if args else "server disconnect")),
               namespace=ns)
        if s["welcome_event"]:
            sio.on(s["welcome_event"], lambda *args: welcomes.put(args[0] if args else None), namespace=ns)
        auth = render_json(s["auth"], {"user": user, "token": self.http.token(user)})
        try:
            sio.connect(self.url(user), auth=auth, transports=self.transports, namespaces=[ns],
                        socketio_path=s["socketio_path"], wait=True, wait_timeout=timeout)
        except socketio.exceptions.ConnectionError as exc:
            _quiet_disconnect(sio)
            raise ConnectFailed(f"socket.io connect failed: {exc}") from None
        except (OSError, ValueError) as exc:
            _quiet_disconnect(sio)
            raise ConnectFailed(f"socket.io connect failed: {type(exc).__name__}: {exc}") from None
        replica = socket_replica(sio, polled)
        values = {"user": user, "token": self.http.token(user)}
        for action in self.actions:
            try:
                _run_action(sio, action, values, ns, timeout)
            except ConnectFailed:
                _quiet_disconnect(sio)
                raise
        welcome = Welcome(instance=replica)
        if s["welcome_event"]:
            try:
                frame = welcomes.get(timeout=timeout)
            except queue.Empty:
                _quiet_disconnect(sio)
                raise ConnectFailed(f"no {s['welcome_event']!r} event within {timeout:g}s") from None
            welcome = self.fields.welcome(frame, replica)
        return SocketIoConnection(sio, inbox, welcome, self.fields, ns, s["resume_event"], s["resume_body"])


def socket_replica(sio: socketio.Client, polled: list[str]) -> str:
    """The load balancer's replica for the response that carried the socket: the
    WebSocket 101 once the connection is on websocket (directly or upgraded), else the
    polling handshake's (a polling session lives on the replica that opened it)."""
    eio = sio.eio
    ws = getattr(eio, "ws", None)
    if getattr(eio, "current_transport", None) == "websocket" and ws is not None:
        try:
            return replica_from(ws.getheaders())
        except Exception:  # a socket closed under us has no handshake to read
            return ""
    return polled[0] if polled else ""


def _recording_session(polled: list[str]) -> Any:
    """A requests session that keeps the replica named on its first response (the
    engine.io open packet), for a client that starts on long-polling."""
    import requests

    session = requests.Session()

    def record(response: Any, *args: Any, **kwargs: Any) -> None:
        if not polled:
            polled.append(replica_from(response.headers))

    session.hooks["response"].append(record)
    return session


def _run_action(sio: socketio.Client, action: Emit, values: dict[str, str], ns: str, timeout: float) -> None:
    """Emit, and with `ack` wait for it: a missing or negative ack is a connect failure."""
    data = action.arguments(values)
    wait = action.timeout or timeout
    try:
        if not action.ack:
            sio.emit(action.event, data, namespace=ns)
            return
        reply = sio.call(action.event, data, namespace=ns, timeout=wait)
    except socketio.exceptions.TimeoutError:
        raise ConnectFailed(f"no ack to {action.event!r} within {wait:g}s") from None
    except socketio.exceptions.SocketIOError as exc:
        raise ConnectFailed(f"emit {action.event!r} failed: {type(exc).__name__}: {exc}") from None
    refusal = action.refusal(reply)
    if refusal:
        raise ConnectFailed(refusal)


def _quiet_disconnect(sio: socketio.Client) -> None:
    try:
        sio.disconnect()
    except Exception:
        pass
