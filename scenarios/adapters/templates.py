"""Templates in adapter settings: `"{ws_url}?token={token}"`, and JSON bodies where a
value that is exactly `"{data}"` (or `"{after}"`) is replaced by the object itself."""

from __future__ import annotations

import string
from typing import Any

from scenarios.adapters.base import AdapterError


def check_template(template: str, allowed: tuple[str, ...], setting: str) -> None:
    try:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
    except ValueError as exc:
        raise AdapterError(f"{setting}: bad template {template!r}: {exc}") from None
    for name in names:
        if name not in allowed:
            raise AdapterError(
                f"{setting}: unknown placeholder {{{name}}} in {template!r}; known: "
                + ", ".join("{" + a + "}" for a in allowed)
            )


def check_json_template(value: Any, allowed: tuple[str, ...], setting: str) -> None:
    if isinstance(value, str):
        check_template(value, allowed, setting)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_json_template(v, allowed, f"{setting}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_json_template(v, allowed, f"{setting}[{i}]")


def render_json(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in values:
            whole = values[value[1:-1]]
            if not isinstance(whole, str):
                return whole  # "{data}" -> the object, "{after}" -> the number
        return value.format_map(values)
    if isinstance(value, dict):
        return {k: render_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_json(v, values) for v in value]
    return value
