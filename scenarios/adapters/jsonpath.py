"""Tiny JSON paths for adapter settings: `data.key`, `$.payload.items[0].id`.

Compiled once to a tuple of keys and indexes; lookup is a loop, because it runs for
every received frame.
"""

from __future__ import annotations

import re
from typing import Any

from scenarios.adapters.base import AdapterError

_TOKEN = re.compile(r"\.?([A-Za-z_$@][\w$@-]*)|\[(\d+)\]|\[\"([^\"]+)\"\]|\['([^']+)'\]")
_MISSING = object()


def compile_path(text: str, setting: str = "path") -> tuple[str | int, ...]:
    if not isinstance(text, str) or not text.strip():
        raise AdapterError(f"{setting}: expected a JSON path such as data.key, got {text!r}")
    src = text.strip()
    if src.startswith("$"):
        src = src[1:]
    steps: list[str | int] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise AdapterError(f"{setting}: cannot parse JSON path {text!r} at {src[pos:]!r}")
        name, index, dq, sq = m.groups()
        steps.append(int(index) if index is not None else (name or dq or sq))
        pos = m.end()
    return tuple(steps)


def get_path(doc: Any, steps: tuple[str | int, ...], default: Any = None) -> Any:
    cur = doc
    for step in steps:
        try:
            cur = cur[step]
        except (KeyError, IndexError, TypeError):
            return default
    return cur
