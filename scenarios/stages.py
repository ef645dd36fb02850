"""k6-style load stages: `--stages "30s:100,60s:100,30s:500,30s:0"`.

Each stage moves the user count linearly from where the previous stage ended to its
target over its duration (`0s:500` is a jump). scenarios/shape.py runs them as a
LoadTestShape; this module is plain Python (no Locust import) so it can be tested
and used without gevent's monkey-patching.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from common.units import format_duration, parse_duration

MAX_STAGES = 1000
MAX_USERS = 1_000_000
# Spawn rate used for a 0s stage (a jump): fast, but Locust still spawns in steps.
JUMP_SPAWN_RATE = 1000.0
EXAMPLE = "30s:100,60s:100,30s:0"


class StagesError(ValueError):
    """A --stages value that cannot be run; the message names the bad part."""


@dataclass(frozen=True)
class Stage:
    duration: float  # seconds
    target: int  # users at the end of the stage


def parse_stages(text: str) -> tuple[Stage, ...]:
    """Parse `<duration>:<users>,...`; raises StagesError with a one-line message."""
    if text is None or not str(text).strip():
        raise StagesError(f"invalid --stages '': expected <duration>:<users>,... e.g. {EXAMPLE}")
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) > MAX_STAGES:
        raise StagesError(f"invalid --stages: {len(parts)} stages, at most {MAX_STAGES}")
    stages = []
    for number, part in enumerate(parts, start=1):
        where = f"invalid --stages {text!r}: stage {number} {part!r}"
        if not part:
            raise StagesError(f"{where} is empty (stray comma?)")
        if part.count(":") != 1:
            raise StagesError(f"{where}: expected <duration>:<users>, e.g. 30s:100")
        duration_text, target_text = (s.strip() for s in part.split(":"))
        try:
            duration = parse_duration(duration_text)
        except ValueError:
            raise StagesError(f"{where}: bad duration {duration_text!r}, expected e.g. 30s, 2m, 1h30m") from None
        try:
            target = int(target_text)
        except ValueError:
            raise StagesError(f"{where}: users {target_text!r} is not a whole number") from None
        if target < 0 or target > MAX_USERS:
            raise StagesError(f"{where}: users must be between 0 and {MAX_USERS}")
        stages.append(Stage(duration, target))
    if sum(s.duration for s in stages) <= 0:
        raise StagesError(f"invalid --stages {text!r}: total duration is 0")
    return tuple(stages)


def argparse_stages(text: str) -> str:
    """argparse `type=`: validate at parse time (a one-line usage error, no traceback),
    but keep the string, because Locust ships parsed options to workers as plain values."""
    try:
        parse_stages(text)
    except StagesError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def describe(stages: tuple[Stage, ...]) -> str:
    return ", ".join(f"{format_duration(s.duration)}→{s.target}" for s in stages)


def target_at(stages: tuple[Stage, ...], elapsed: float) -> int | None:
    """Users the stages ask for at `elapsed` seconds, or None when the stages are over.

    Linear inside a stage; a 0s stage is a jump. Locust ticks the shape once a second,
    so the ramp is a staircase with one step per second.
    """
    start_users = 0
    stage_start = 0.0
    for stage in stages:
        stage_end = stage_start + stage.duration
        if elapsed < stage_end:
            progress = (elapsed - stage_start) / stage.duration
            return round(start_users + (stage.target - start_users) * progress)
        start_users = stage.target
        stage_start = stage_end
    return None


def spawn_rate_for(target: int, current: int) -> float:
    """Spawn fast enough to reach the tick's target before the next tick (1 s)."""
    return min(max(float(abs(target - current)), 1.0), JUMP_SPAWN_RATE)
