"""The reference SUT's protocol (docs: DESIGN.md, "Reference SUT protocol").

- subscribe: `GET /ws?token=<user>.<hex HMAC-SHA256(secret, user)>`, first frame
  `{"type":"init","instance","user","items","last_id"}`, close 4401 on a bad token
- messages: `{"type":"notification","id","user","origin","data"}`, `"replay": true`
  on frames answering `{"type":"resume","after":N}`
- publish: `POST /api/notifications {"user","data"}` or `POST /api/broadcast {"data"}`
  with `Authorization: Bearer <publisher key>` -> 201 `{"id","user","instance"}`;
  every response carries `X-Instance`
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Mapping
from urllib.parse import quote

from scenarios.adapters.base import (
    Ack, AdapterError, ConnectFailed, Delivery, Disconnected, Endpoint, PublishRequest, ReadRequest, Welcome,
    decode_backlog, replica_from,
)
from scenarios.payload import intact as payload_intact
from scenarios.adapters.wsconn import WsConnection, open_ws, recv_json

BAD_TOKEN = 4401


def user_token(secret: str, user: str) -> str:
    return f"{user}.{hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()}"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def decode_notification(frame: Any) -> Delivery | None:
    # Runs for every received frame: exact type checks and positional construction
    # keep it near a microsecond.
    if type(frame) is not dict or frame.get("type") != "notification":
        return None
    data = frame.get("data")
    key = sent = whole = None
    if type(data) is dict:
        whole = payload_intact(data)
        key = data.get("key")
        if type(key) is not str:
            key = None
        sent = data.get("sent_ts")
        if type(sent) is not float:
            sent = float(sent) if isinstance(sent, int) and not isinstance(sent, bool) else None
    msg_id = frame.get("id")
    if type(msg_id) is not int:
        msg_id = _int_or_none(msg_id)
    return Delivery(key, sent, msg_id, frame.get("origin"), frame.get("user"), frame.get("replay") is True, whole)


class ReferenceAdapter:
    name = "reference"
    # A socket that got its init frame was let in: the welcome itself carries the user's data.
    welcome_confirms = True

    def __init__(self, endpoint: Endpoint, settings: Mapping[str, Any] | None = None) -> None:
        settings = dict(settings or {})
        unknown = set(settings) - {"ws_path"}
        if unknown:
            raise AdapterError(f"[load.reference]: unknown setting {sorted(unknown)[0]!r}; known: ws_path")
        if not endpoint.secret:
            raise AdapterError(
                "reference adapter needs the stack secret: start the stack with `gauntlet up` "
                "(state file), or set GAUNTLET_SECRET / load.secret"
            )
        self.endpoint = endpoint
        self._auth = {"Authorization": f"Bearer {endpoint.publisher_key}"}

    def urls(self) -> list[str]:
        return [self.endpoint.http_url, self.endpoint.ws_url]

    def user_token(self, user: str) -> str:
        return user_token(self.endpoint.secret, user)

    def connect(self, user: str, timeout: float) -> WsConnection:
        return self.connect_with_token(user, user_token(self.endpoint.secret, user), timeout)

    def connect_with_token(self, user: str, token: str, timeout: float) -> WsConnection:
        """Subscribe presenting `token` (the hostile user's way in); ConnectFailed when refused."""
        ws = open_ws(f"{self.endpoint.ws_url}?token={quote(token)}", timeout)
        try:
            init = recv_json(ws, timeout=timeout)
        except Disconnected as exc:
            ws.close()
            reason = "bad token" if exc.code == BAD_TOKEN else f"closed before init: {exc.reason}"
            raise ConnectFailed(reason, exc.code) from None
        except TimeoutError:
            ws.close()
            raise ConnectFailed(f"no init frame within {timeout:g}s") from None
        if not isinstance(init, dict) or init.get("type") != "init":
            ws.close()
            raise ConnectFailed(f"first frame is not init: {str(init)[:80]}")
        # The init frame's instance wins; the load balancer's header names it otherwise.
        welcome = Welcome(instance=str(init.get("instance") or "") or ws.replica,
                          last_id=_int_or_none(init.get("last_id")),
                          backlog=decode_backlog(init.get("items"), decode_notification))
        return WsConnection(ws, welcome, decode_notification, lambda after: {"type": "resume", "after": after})

    def publish_request(self, user: str | None, data: dict) -> PublishRequest:
        if user is None:
            return PublishRequest("POST", "/api/broadcast", {"data": data}, self._auth, "POST /api/broadcast")
        return PublishRequest("POST", "/api/notifications", {"user": user, "data": data}, self._auth,
                              "POST /api/notifications")

    def parse_ack(self, status: int, headers: Mapping[str, str], body: bytes) -> Ack:
        instance = headers.get("X-Instance") or headers.get("x-instance") or replica_from(headers)
        if not 200 <= status < 300:
            return Ack(False, None, instance, f"HTTP {status}")
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return Ack(True, None, instance, "ack body is not JSON")
        if not isinstance(doc, dict):
            return Ack(True, None, instance, "")
        return Ack(True, _int_or_none(doc.get("id")), str(doc.get("instance") or instance), "")

    def read_requests(self, user: str, item: int, after: int = 0) -> list[ReadRequest]:
        token = user_token(self.endpoint.secret, user)
        return [
            ReadRequest("GET", f"/api/items/{item}", name="GET /api/items/{id}"),
            # The token goes in a header, not the URL: URLs end up in access logs.
            ReadRequest("GET", f"/api/notifications?user={quote(user)}&after={after}",
                        {"Authorization": f"Bearer {token}"}, name="GET /api/notifications"),
        ]
