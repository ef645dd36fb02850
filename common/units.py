"""Durations as people write them in CLIs and timelines: "15s", "2m", "500ms", "1h30m"."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: str | int | float) -> float:
    """Return seconds. A bare number means seconds. Raises ValueError naming the bad text."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: expected e.g. 15s, 2m, 500ms")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return float(value)
    text = str(value).strip().lower()
    if not text:
        raise ValueError("invalid duration '': expected e.g. 15s, 2m, 500ms")
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or pos == 0:
            raise ValueError(
                f"invalid duration {value!r}: expected a number with a unit, e.g. 15s, 2m, 500ms, 1h30m"
            ) from None
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: 0.25 -> '250ms', 90 -> '1m30s'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    out = f"{hours}h" if hours else ""
    out += f"{minutes}m" if minutes else ""
    out += f"{rest}s" if rest else ""
    return out
