"""The settings-driven parts shared by the jsonws and socketio adapters: where the
fields of a message frame are (JSON paths) and how to publish over HTTP (templates)."""

from __future__ import annotations

import json
from typing import Any, Mapping
from urllib.parse import quote

from scenarios.adapters.base import (
    Ack, AdapterError, Delivery, Endpoint, PublishRequest, ReadRequest, Welcome, decode_backlog, replica_from,
)
from scenarios.adapters.jsonpath import compile_path, get_path
from scenarios.adapters.reference import user_token
from scenarios.payload import intact as payload_intact
from scenarios.adapters.templates import check_json_template, check_template, render_json

FRAME_DEFAULTS: dict[str, Any] = {
    "message_match": "",
    "key_path": "data.key",
    "sent_ts_path": "data.sent_ts",
    "id_path": "id",
    "origin_path": "origin",
    "user_path": "user",
    "replay_path": "replay",
    "welcome_instance_path": "instance",
    "welcome_last_id_path": "last_id",
    "welcome_backlog_path": "",  # optional: a list of message frames inside the welcome
}

PUBLISH_DEFAULTS: dict[str, Any] = {
    "publish_url": "/api/notifications",
    "publish_method": "POST",
    "publish_body": {"user": "{user}", "data": "{data}"},
    "broadcast_url": "",
    "broadcast_body": {"data": "{data}"},
    "headers": {"Authorization": "Bearer {publisher_key}"},
    "ack_id_path": "id",
    "ack_instance_path": "instance",
    "ack_instance_header": "X-Instance",
    "read_paths": [],
}

BODY_VARS = ("user", "data", "publisher_key")
HEADER_VARS = ("publisher_key", "user")
READ_VARS = ("user", "item", "after", "token")


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def merge_settings(section: str, raw: Mapping[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    raw = dict(raw or {})
    unknown = set(raw) - set(defaults)
    if unknown:
        raise AdapterError(f"[load.{section}]: unknown setting {sorted(unknown)[0]!r}; known: {', '.join(defaults)}")
    return {**defaults, **raw}


def parse_match(text: str, setting: str) -> tuple[tuple[str | int, ...], str] | None:
    """`path=value` -> (compiled path, value as text); '' -> None (match everything)."""
    if not text:
        return None
    if not isinstance(text, str) or "=" not in text:
        raise AdapterError(f"{setting}: expected <json path>=<value>, e.g. type=notification, got {text!r}")
    path, value = text.split("=", 1)
    return compile_path(path, setting), value


def matches(frame: Any, match: tuple[tuple[str | int, ...], str] | None) -> bool:
    if match is None:
        return True
    value = get_path(frame, match[0])
    if value is None:
        return False
    # As written in JSON: `ok=true` matches the boolean true (Python spells it True).
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text == match[1]


class FrameFields:
    """Reads a Delivery (and a welcome's instance / newest id) out of a JSON frame."""

    def __init__(self, s: Mapping[str, Any], section: str) -> None:
        self._message = parse_match(s["message_match"], f"[load.{section}] message_match")
        self._p = {k: compile_path(s[k], f"[load.{section}] {k}") for k in (
            "key_path", "sent_ts_path", "id_path", "origin_path", "user_path", "replay_path",
            "welcome_instance_path", "welcome_last_id_path")}
        # The payload's pad and digest sit beside its key (scenarios/payload.py).
        self._payload = self._p["key_path"][:-1]
        backlog = s["welcome_backlog_path"]
        self._backlog = compile_path(backlog, f"[load.{section}] welcome_backlog_path") if backlog else None

    def decode(self, frame: Any) -> Delivery | None:
        if not isinstance(frame, (dict, list)) or not matches(frame, self._message):
            return None
        p = self._p
        key = get_path(frame, p["key_path"])
        sent = get_path(frame, p["sent_ts_path"])
        origin = get_path(frame, p["origin_path"])
        user = get_path(frame, p["user_path"])
        return Delivery(
            key=key if isinstance(key, str) else None,
            sent_ts=float(sent) if isinstance(sent, (int, float)) and not isinstance(sent, bool) else None,
            id=as_int(get_path(frame, p["id_path"])),
            origin=str(origin) if origin is not None else None,
            user=str(user) if user is not None else None,
            replay=bool(get_path(frame, p["replay_path"], False)),
            intact=payload_intact(get_path(frame, self._payload)),
        )

    def welcome(self, frame: Any, replica: str = "") -> Welcome:
        """The welcome frame's fields; its instance wins over `replica` (the load balancer's)."""
        instance = get_path(frame, self._p["welcome_instance_path"])
        backlog = decode_backlog(get_path(frame, self._backlog), self.decode) if self._backlog is not None else ()
        return Welcome(str(instance) if instance not in (None, "") else replica,
                       as_int(get_path(frame, self._p["welcome_last_id_path"])), backlog)


class HttpPublishing:
    """Publish, ack and read over HTTP, from templates."""

    def __init__(self, endpoint: Endpoint, s: Mapping[str, Any], section: str) -> None:
        where = f"[load.{section}]"
        for key in ("publish_url", "broadcast_url", "publish_method", "ack_instance_header"):
            if not isinstance(s[key], str):
                raise AdapterError(f"{where} {key} must be a string")
        check_template(s["publish_url"], ("user",), f"{where} publish_url")
        check_template(s["broadcast_url"], (), f"{where} broadcast_url")
        check_json_template(s["publish_body"], BODY_VARS, f"{where} publish_body")
        check_json_template(s["broadcast_body"], BODY_VARS, f"{where} broadcast_body")
        if not isinstance(s["headers"], dict) or not all(isinstance(v, str) for v in s["headers"].values()):
            raise AdapterError(f"{where} headers must be a table of strings")
        check_json_template(s["headers"], HEADER_VARS, f"{where} headers")
        if not isinstance(s["read_paths"], list) or not all(isinstance(p, str) for p in s["read_paths"]):
            raise AdapterError(f"{where} read_paths must be a list of paths")
        for i, path in enumerate(s["read_paths"]):
            check_template(path, READ_VARS, f"{where} read_paths[{i}]")
        self.endpoint = endpoint
        self.s = s
        self.section = section
        self._method = s["publish_method"].upper()
        self._ack_id = compile_path(s["ack_id_path"], f"{where} ack_id_path")
        self._ack_instance = compile_path(s["ack_instance_path"], f"{where} ack_instance_path")

    def token(self, user: str) -> str:
        return user_token(self.endpoint.secret, user) if self.endpoint.secret else user

    def absolute_urls(self) -> list[str]:
        return [self.s[k] for k in ("publish_url", "broadcast_url") if self.s[k].startswith(("http://", "https://"))]

    def publish_request(self, user: str | None, data: dict) -> PublishRequest:
        values = {"user": user or "", "data": data, "publisher_key": self.endpoint.publisher_key}
        headers = {k: v.format_map({"publisher_key": self.endpoint.publisher_key, "user": user or ""})
                   for k, v in self.s["headers"].items()}
        if user is None:
            if not self.s["broadcast_url"]:
                raise AdapterError(f"[load.{self.section}] has no broadcast_url; run with --broadcast-ratio 0")
            return PublishRequest(self._method, self.s["broadcast_url"],
                                  render_json(self.s["broadcast_body"], values), headers,
                                  f"{self._method} {self.s['broadcast_url']}")
        return PublishRequest(self._method, self.s["publish_url"].format(user=quote(user)),
                              render_json(self.s["publish_body"], values), headers,
                              f"{self._method} {self.s['publish_url']}")

    def parse_ack(self, status: int, headers: Mapping[str, str], body: bytes) -> Ack:
        header = self.s["ack_instance_header"]
        # The app's own naming (ack body, then its header) wins over the load balancer's.
        instance = ((headers.get(header) or headers.get(header.lower()) or "") if header else "") \
            or replica_from(headers)
        if not 200 <= status < 300:
            return Ack(False, None, instance, f"HTTP {status}")
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            return Ack(True, None, instance, "")
        inst = get_path(doc, self._ack_instance)
        return Ack(True, as_int(get_path(doc, self._ack_id)), str(inst) if inst else instance, "")

    def read_requests(self, user: str, item: int, after: int = 0) -> list[ReadRequest]:
        return [
            ReadRequest("GET", t.format(user=quote(user), item=item, after=after, token=quote(self.token(user))),
                        name=f"GET {t}")
            for t in self.s["read_paths"]
        ]
