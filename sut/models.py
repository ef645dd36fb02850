"""The notification record and its wire forms (WebSocket frame, broker message)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Notification:
    id: int
    user: str | None  # None = broadcast to every connected socket
    origin: str  # the replica that accepted the publish
    data: dict[str, Any]

    def frame(self, *, replay: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "notification", "id": self.id, "user": self.user, "origin": self.origin, "data": self.data,
        }
        if replay:
            body["replay"] = True
        return body

    def broker_payload(self) -> str:
        return json.dumps({"id": self.id, "user": self.user, "origin": self.origin, "data": self.data},
                          separators=(",", ":"))


@dataclass(frozen=True)
class NotificationRef:
    """A broker message that names a stored notification instead of carrying it
    (Postgres NOTIFY payloads are capped at 8000 bytes)."""

    id: int


def ref_payload(notification_id: int) -> str:
    return json.dumps({"id": notification_id, "ref": True}, separators=(",", ":"))


def parse_broker_payload(text: str | bytes) -> Notification | NotificationRef:
    """Raises ValueError for anything that is not a message we published."""
    try:
        raw = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        raise ValueError("no integer id")
    if raw.get("ref") is True:
        return NotificationRef(raw["id"])
    user, origin, data = raw.get("user"), raw.get("origin"), raw.get("data")
    if not (user is None or isinstance(user, str)) or not isinstance(origin, str) or not isinstance(data, dict):
        raise ValueError("bad notification fields")
    return Notification(raw["id"], user, origin, data)
