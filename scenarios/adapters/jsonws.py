"""Plain JSON over WebSocket, described by settings instead of code (`[load.jsonws]`).

```toml
[load]
adapter = "jsonws"
[load.jsonws]
ws_url = "{ws_base}/stream?token={token}"        # {ws_url} {ws_base} {http_url} {user} {token}
welcome_match = "type=hello"                     # optional first frame: which replica, newest id
welcome_instance_path = "server"
welcome_last_id_path = "seq"
welcome_backlog_path = "recent"                  # optional: messages carried in the welcome
message_match = "type=event"                     # frames that are messages (default: all)
key_path = "payload.key"                         # where the publisher's data landed
sent_ts_path = "payload.sent_ts"
id_path = "seq"
origin_path = "from"
user_path = "to"
replay_path = "replayed"
resume = { op = "resume", since = "{after}" }    # optional: frame sent after a reconnect
on_connect = [{ send = { op = "sub", to = "{user}" }, reply_match = "op=subbed" }]  # see on_connect.py
publish_url = "/publish"                         # {user}; a path under the target, or a URL
publish_body = { to = "{user}", payload = "{data}" }
broadcast_url = "/publish-all"                   # optional
broadcast_body = { payload = "{data}" }
headers = { Authorization = "Bearer {publisher_key}" }
ack_id_path = "seq"
ack_instance_path = "server"                     # else the header below
ack_instance_header = "X-Instance"
read_paths = ["/items/{item}"]                   # {user} {item} {after} {token}
```
`{token}` is `<user>.<hex HMAC-SHA256(secret, user)>` when a secret is known, else the user.
"""

from __future__ import annotations

import json
from typing import Any, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

from scenarios.adapters.base import AdapterError, ConnectFailed, Disconnected, Endpoint, Welcome
from scenarios.adapters.declarative import (
    FRAME_DEFAULTS, PUBLISH_DEFAULTS, FrameFields, HttpPublishing, matches, merge_settings, parse_match,
)
from scenarios.adapters.on_connect import await_reply, jsonws_actions
from scenarios.adapters.templates import check_json_template, check_template, render_json
from scenarios.adapters.wsconn import WsClient, WsConnection, open_ws, recv_json

URL_VARS = ("ws_url", "ws_base", "http_url", "user", "token")
DEFAULTS: dict[str, Any] = {
    "ws_url": "{ws_url}?token={token}",
    "welcome_match": "",
    "resume": None,
    "on_connect": [],
    **FRAME_DEFAULTS,
    **PUBLISH_DEFAULTS,
}


class JsonWsAdapter:
    name = "jsonws"

    def __init__(self, endpoint: Endpoint, settings: Mapping[str, Any] | None = None) -> None:
        s = merge_settings("jsonws", settings, DEFAULTS)
        if not isinstance(s["ws_url"], str):
            raise AdapterError("[load.jsonws] ws_url must be a string")
        check_template(s["ws_url"], URL_VARS, "[load.jsonws] ws_url")
        if s["resume"] is not None:
            check_json_template(s["resume"], ("after",), "[load.jsonws] resume")
        self.endpoint = endpoint
        self.s = s
        self.fields = FrameFields(s, "jsonws")
        self.http = HttpPublishing(endpoint, s, "jsonws")
        self._welcome = parse_match(s["welcome_match"], "[load.jsonws] welcome_match")
        # With a welcome frame, a socket that got it was let in; without one, only a
        # socket the server does not close soon after the handshake was.
        self.welcome_confirms = self._welcome is not None
        self.actions = jsonws_actions(s["on_connect"])
        self.publish_request = self.http.publish_request
        self.parse_ack = self.http.parse_ack
        self.read_requests = self.http.read_requests

    def user_token(self, user: str) -> str:
        return self.http.token(user) if self.endpoint.secret else ""

    def ws_url(self, user: str, token: str | None = None) -> str:
        parts = urlsplit(self.endpoint.ws_url)
        base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        return self.s["ws_url"].format(
            ws_url=self.endpoint.ws_url, ws_base=base, http_url=self.endpoint.http_url,
            user=quote(user), token=quote(self.http.token(user) if token is None else token, safe=""),
        )

    def urls(self) -> list[str]:
        return [self.endpoint.http_url, self.ws_url("u0"), *self.http.absolute_urls()]

    def connect(self, user: str, timeout: float) -> WsConnection:
        return self.connect_with_token(user, None, timeout)

    def connect_with_token(self, user: str, token: str | None, timeout: float) -> WsConnection:
        """Subscribe presenting `token` (None: the user's own); ConnectFailed when refused."""
        ws = open_ws(self.ws_url(user, token), timeout)
        welcome = Welcome(instance=ws.replica)
        if self._welcome is not None:
            try:
                frame = recv_json(ws, timeout=timeout)
            except Disconnected as exc:
                ws.close()
                raise ConnectFailed(f"closed before the welcome frame: {exc.reason}", exc.code) from None
            except TimeoutError:
                ws.close()
                raise ConnectFailed(f"no welcome frame within {timeout:g}s") from None
            if not matches(frame, self._welcome):
                ws.close()
                raise ConnectFailed(f"first frame does not match welcome_match: {str(frame)[:80]}")
            welcome = self.fields.welcome(frame, ws.replica)
        if self.actions:
            self._on_connect(ws, user, timeout)
        resume = self.s["resume"]
        resume_frame = (lambda after: render_json(resume, {"after": after})) if resume is not None else None
        return WsConnection(ws, welcome, self.fields.decode, resume_frame)

    def _on_connect(self, ws: WsClient, user: str, timeout: float) -> None:
        """Send each on-connect frame and wait for its reply; frames that come in
        meanwhile stay queued for the subscriber, in order."""
        values = {"user": user, "token": self.http.token(user)}
        held: list[bytes] = []

        def next_frame(left: float):
            raw = ws.recv(left)
            try:
                return json.loads(raw), raw
            except ValueError:
                return None, raw

        try:
            for action in self.actions:
                ws.send_text(action.render(values))
                await_reply(action, next_frame, held.append, action.timeout or timeout)
        except Disconnected as exc:
            ws.close()
            raise ConnectFailed(f"closed during the on-connect actions: {exc.reason}", exc.code) from None
        except ConnectFailed:
            ws.close()
            raise
        ws.messages.extendleft(reversed(held))
