"""Request bodies of the API, decoded into typed inputs with Toxiproxy's errors.

Toxiproxy decodes JSON into Go structs: missing fields take defaults, unknown fields
are ignored, a field of the wrong type is a 400 `bad request body: ...`. We follow
that, and name the field in the message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import bad_request_body, invalid_stream, invalid_toxic_type, missing_field
from .stream import Direction, parse_direction
from .toxics import TOXIC_TYPES, BadAttribute, Toxic, apply_attributes, new_toxic


@dataclass(frozen=True)
class ProxyInput:
    name: str
    listen: str
    upstream: str
    enabled: bool


@dataclass(frozen=True)
class ToxicHead:
    """A new toxic's shared fields, checked before its attributes (Toxiproxy's order:
    a duplicate name is a 409 even when the attributes are bad)."""

    name: str
    type: str
    stream: str
    direction: Direction
    toxicity: float


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise bad_request_body("EOF")  # what Go's decoder says about an empty body
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise bad_request_body("body is not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, or NaN/Infinity, which JSON does not have
        raise bad_request_body(f"invalid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request_body(f"{what} must be a JSON object, got {_json_type(value)}")
    return value


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = obj.get(key)
    if value is None:  # absent or null: Go leaves the default
        return default
    if isinstance(value, bool) and kind is not bool:
        raise bad_request_body(f"field {key} must be {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise bad_request_body(f"field {key} must be {_kind_name(kind)}, got {_json_type(value)}")
    return value


def proxy_input(value: Any, *, defaults: ProxyInput | None = None, where: str = "") -> ProxyInput:
    """A proxy to create (no defaults) or the new settings of one (defaults = current)."""
    obj = _object(value, "proxy")
    base = defaults or ProxyInput("", "", "", True)
    result = ProxyInput(
        name=_field(obj, "name", str, base.name),
        listen=_field(obj, "listen", str, base.listen),
        upstream=_field(obj, "upstream", str, base.upstream),
        enabled=_field(obj, "enabled", bool, base.enabled),
    )
    if defaults is None:
        if not result.name:
            raise missing_field("name" + where)
        if not result.upstream:
            raise missing_field("upstream" + where)
    return result


def proxy_list(value: Any) -> list[ProxyInput]:
    """The body of /populate: a JSON array of proxies, all checked before any is made."""
    if not isinstance(value, list):
        raise bad_request_body(f"populate expects a JSON array of proxies, got {_json_type(value)}")
    return [proxy_input(item, where=f" at proxy {i}") for i, item in enumerate(value, 1)]


def toxic_head(value: Any) -> ToxicHead:
    obj = _object(value, "toxic")
    stream = _field(obj, "stream", str, "downstream")
    direction = parse_direction(stream)
    if direction is None:
        raise invalid_stream()
    type_name = _field(obj, "type", str, "")
    name = _field(obj, "name", str, "") or f"{type_name}_{stream}"
    toxicity = _toxicity(obj, 1.0)
    if type_name not in TOXIC_TYPES:
        raise invalid_toxic_type()
    return ToxicHead(name, type_name, stream, direction, toxicity)


def new_toxic_attributes(head: ToxicHead, value: dict[str, Any]) -> Toxic:
    toxic = new_toxic(head.type)
    assert toxic is not None  # checked in toxic_head
    apply_toxic_attributes(toxic, value)
    return toxic


def apply_toxic_attributes(toxic: Toxic, value: dict[str, Any]) -> None:
    raw = value.get("attributes")
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise bad_request_body(f"field attributes must be a JSON object, got {_json_type(raw)}")
    try:
        apply_attributes(toxic, raw)
    except BadAttribute as exc:
        raise bad_request_body(str(exc)) from None


def toxic_update(value: Any, toxic: Toxic, toxicity: float) -> float:
    """Apply an update's attributes to `toxic`; returns the new toxicity.

    Attributes not mentioned keep their values, as in Toxiproxy."""
    obj = _object(value, "toxic")
    new_toxicity = _toxicity(obj, toxicity)
    apply_toxic_attributes(toxic, obj)
    return new_toxicity


def _toxicity(obj: dict[str, Any], default: float) -> float:
    value = _field(obj, "toxicity", (int, float), default)
    try:
        return float(value)
    except OverflowError:
        raise bad_request_body(f"field toxicity is out of range: {value}") from None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return names.get(kinds[0], kinds[0].__name__)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
