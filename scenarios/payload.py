"""Notification payloads of a chosen size, in multibyte text, that a receiver can verify.

`--payload-size` is the size of the notification's `data` object as compact UTF-8 JSON,
in bytes: a fixed size (`2000`) or a range drawn uniformly per message (`40..12000`).
Besides the key and send time, `data` then carries `pad`, text of 1- to 4-byte UTF-8
characters (Latin, Greek, CJK, emoji), and `sha`, the first 16 hex digits of the
SHA-256 of `pad`. A subscriber recomputes the digest of what arrived: a payload cut
short or altered anywhere on its way (a broker's size limit, a re-encoding, a column
too narrow) is recorded as not intact, and the delivery check counts it corrupted.

Sizes below what the key and times take alone (about 60 bytes) get no padding. The
text avoids `"` and `\\`, whose JSON escapes would make the size inexact.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
PAD, DIGEST = "pad", "sha"
DIGEST_HEX = 16

# One of each UTF-8 width, and spaces so that the text wraps like prose in a viewer.
_ALPHABET = "gauntlet é ñ ø ß Ω λ Ж 中文 日本語 한국어 € ✓ 😀 🚀 𝄞 "
_PATTERN = _ALPHABET * 2048
_PATTERN_BYTES = _PATTERN.encode()
# Byte offsets where a character starts: a slice taken there begins with a whole character.
_STARTS: list[int] = []
_pos = 0
for _ch in _PATTERN[: len(_ALPHABET)]:
    _STARTS.append(_pos)
    _pos += len(_ch.encode())
_PERIOD = _pos


class PayloadSizeError(ValueError):
    """A --payload-size that is not a size or a range of sizes; the message says why."""


@dataclass(frozen=True)
class PayloadSize:
    """Bytes of `data` per message: `low` when fixed, else uniform in [low, high]."""

    low: int
    high: int

    def draw(self, rng: random.Random) -> int:
        return self.low if self.low == self.high else rng.randint(self.low, self.high)

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}..{self.high}"


def parse_payload_size(text: object) -> PayloadSize | None:
    """`""` -> None (no padding), `"2000"` / 2000 -> fixed, `"40..12000"` -> a range.
    Raises PayloadSizeError naming the bad text."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    raw = str(text).strip()
    low_text, sep, high_text = raw.partition("..")
    try:
        low = _bytes(low_text)
        high = _bytes(high_text) if sep else low
    except ValueError:
        raise PayloadSizeError(
            f"must be bytes (e.g. 2000) or a range low..high (e.g. 40..12000), not {raw!r}") from None
    if low < 1 or high > MAX_PAYLOAD_BYTES:
        raise PayloadSizeError(f"must be between 1 and {MAX_PAYLOAD_BYTES} bytes, not {raw!r}")
    if high < low:
        raise PayloadSizeError(f"range {raw!r} ends below where it starts")
    return PayloadSize(low, high)


def _bytes(text: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def text_of_bytes(n: int, rng: random.Random) -> str:
    """Exactly `n` bytes of UTF-8 text, starting at a random place in the pattern."""
    if n <= 0:
        return ""
    periods = (len(_PATTERN_BYTES) - n) // _PERIOD
    if periods >= 1:
        start = rng.randrange(periods) * _PERIOD + _STARTS[rng.randrange(len(_STARTS))]
        chunk = _PATTERN_BYTES[start:start + n]
    else:  # longer than the pattern: repeat it
        chunk = (_PATTERN_BYTES * (n // len(_PATTERN_BYTES) + 1))[:n]
    text = chunk.decode("utf-8", "ignore")  # drops a character cut at the end
    short = n - len(text.encode())
    return text + "." * short


def digest(pad: str) -> str:
    return hashlib.sha256(pad.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_HEX]


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def padded(data: dict[str, Any], size: int, rng: random.Random) -> dict[str, Any]:
    """`data` with `pad` and `sha` so that it is `size` bytes as compact UTF-8 JSON
    (or as small as it gets when `size` is below the bare fields)."""
    base = _size({**data, PAD: "", DIGEST: "0" * DIGEST_HEX})
    pad = text_of_bytes(size - base, rng)
    return {**data, PAD: pad, DIGEST: digest(pad)}


def intact(data: Any) -> bool | None:
    """Whether a received `data` object carries its pad unchanged; None when it was not
    padded (no digest to compare with)."""
    if type(data) is not dict or DIGEST not in data:
        return None
    pad = data.get(PAD)
    return type(pad) is str and digest(pad) == data[DIGEST]

