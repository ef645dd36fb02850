"""What a client does right after it connects, before it counts as subscribed.

Real apps rarely subscribe by URL: a Socket.IO client emits `subscribe` with a room and
waits for the server's acknowledgement; a JSON-over-WebSocket client sends a
`{"op": "subscribe", ...}` frame and waits for `{"op": "subscribed"}`. The actions are
part of connecting: the subscriber is connected (and owed messages) only once they are
done, and an action that is refused or not answered in time is a connect failure, so
the reconnect policy and the records treat it like any other.

```toml
[[load.socketio.on_connect]]
emit = "subscribe"                 # the event
args = ["{user}"]                  # its arguments, templated: {user} {token}
ack = true                         # wait for the server's acknowledgement
ack_match = "ok=true"              # optional: the ack's first argument must match
timeout = "5s"                     # optional: how long to wait (default: --connect-timeout)

[[load.jsonws.on_connect]]
send = { op = "subscribe", channel = "{user}" }   # a JSON frame (a string is sent as text)
reply_match = "op=subscribed"      # optional: wait for a frame matching this
error_match = "op=error"           # optional: a frame matching this is a refusal
timeout = "5s"
```

Without `ack_match`, an ack is a refusal when its first argument is `false` or an
object whose `error` is set (the usual `callback({error})` shape); any other ack is
positive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.units import parse_duration

from scenarios.adapters.base import AdapterError, ConnectFailed
from scenarios.adapters.templates import check_json_template, render_json

ACTION_VARS = ("user", "token")
Match = tuple[tuple[str | int, ...], str] | None


def _timeout(raw: Any, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise AdapterError(f'{where}.timeout must be a duration, e.g. "5s", not {raw!r}')
    try:
        seconds = parse_duration(str(raw))
    except ValueError as exc:
        raise AdapterError(f"{where}.timeout: {exc}") from None
    if seconds <= 0:
        raise AdapterError(f"{where}.timeout must be more than 0")
    return seconds


def _table_list(raw: Any, section: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        raise AdapterError(f"[load.{section}] on_connect must be a list of tables, e.g. "
                           f"[[load.{section}.on_connect]]")
    return raw


def _keys(action: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(action) - set(allowed))
    if unknown:
        raise AdapterError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(allowed)}")


@dataclass(frozen=True)
class Emit:
    """A Socket.IO event emitted after connect, optionally waiting for its ack."""

    event: str
    args: tuple[Any, ...]
    ack: bool
    ack_match: Match
    timeout: float | None
    where: str

    def arguments(self, values: dict[str, str]) -> Any:
        """python-socketio's `data`: nothing, one argument, or a tuple of several."""
        rendered = tuple(render_json(a, values) for a in self.args)
        if not rendered:
            return None
        return rendered[0] if len(rendered) == 1 else rendered

    def refusal(self, reply: Any) -> str:
        """Why an ack is negative ("" when it is positive)."""
        from scenarios.adapters.declarative import matches

        first = reply[0] if isinstance(reply, tuple) and reply else reply
        if self.ack_match is not None:
            return "" if matches(first, self.ack_match) else f"negative ack to {self.event!r}: {str(first)[:120]}"
        if first is False or (isinstance(first, dict) and first.get("error")):
            return f"negative ack to {self.event!r}: {str(first)[:120]}"
        return ""


def socketio_actions(raw: Any, section: str = "socketio") -> tuple[Emit, ...]:
    from scenarios.adapters.declarative import parse_match

    actions = []
    for i, a in enumerate(_table_list(raw, section)):
        where = f"[load.{section}] on_connect[{i}]"
        _keys(a, ("emit", "args", "ack", "ack_match", "timeout"), where)
        event = a.get("emit")
        if not isinstance(event, str) or not event:
            raise AdapterError(f"{where}.emit must name the event to emit, e.g. \"subscribe\"")
        args = a.get("args", [])
        if not isinstance(args, list):
            args = [args]
        check_json_template(args, ACTION_VARS, f"{where}.args")
        ack_match = a.get("ack_match", "")
        ack = a.get("ack", bool(ack_match))
        if not isinstance(ack, bool):
            raise AdapterError(f"{where}.ack must be true or false")
        if ack_match and not ack:
            raise AdapterError(f"{where}: ack_match needs ack = true")
        actions.append(Emit(event, tuple(args), ack, parse_match(ack_match, f"{where}.ack_match"),
                            _timeout(a.get("timeout"), where), where))
    return tuple(actions)


@dataclass(frozen=True)
class Send:
    """A frame sent after connect, optionally waiting for the reply that confirms it."""

    frame: Any
    reply_match: Match
    error_match: Match
    timeout: float | None

    def render(self, values: dict[str, str]) -> str:
        import json

        rendered = render_json(self.frame, values)
        return rendered if isinstance(rendered, str) else json.dumps(rendered)


def jsonws_actions(raw: Any, section: str = "jsonws") -> tuple[Send, ...]:
    from scenarios.adapters.declarative import parse_match

    actions = []
    for i, a in enumerate(_table_list(raw, section)):
        where = f"[load.{section}] on_connect[{i}]"
        _keys(a, ("send", "reply_match", "error_match", "timeout"), where)
        if "send" not in a or not isinstance(a["send"], (dict, list, str)):
            raise AdapterError(f"{where}.send must be the frame to send: a table, a list or a string")
        check_json_template(a["send"], ACTION_VARS, f"{where}.send")
        reply = parse_match(a.get("reply_match", ""), f"{where}.reply_match")
        error = parse_match(a.get("error_match", ""), f"{where}.error_match")
        if error is not None and reply is None:
            raise AdapterError(f"{where}: error_match needs reply_match (what a positive reply looks like)")
        actions.append(Send(a["send"], reply, error, _timeout(a.get("timeout"), where)))
    return tuple(actions)


def await_reply(action: Send, next_frame: Callable[[float], Any], hold: Callable[[Any], None],
                timeout: float) -> None:
    """Read frames until the reply; frames that are not it are held for the subscriber
    (a message can arrive before the confirmation). ConnectFailed on refusal or timeout."""
    import time

    from scenarios.adapters.declarative import matches

    if action.reply_match is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConnectFailed(f"no reply matching {action.reply_match[1]!r} within {timeout:g}s")
        try:
            frame, raw = next_frame(left)
        except TimeoutError:
            continue
        if frame is not None and matches(frame, action.reply_match):
            return
        if frame is not None and action.error_match is not None and matches(frame, action.error_match):
            raise ConnectFailed(f"refused: {str(frame)[:120]}")
        hold(raw)
