"""A seeded chaos monkey: a random timeline that the seed replays exactly.

    timeline = monkey_timeline(MonkeyConfig(seed=7, faults=("kill", "pause", "latency"),
                                            interval=(10, 30), duration=300), topology)

The monkey only writes a timeline; the player plays it like any other, so a monkey
run is journalled, validated and healed the same way, and `timeline.to_toml()` stores
it in the run directory for anyone to replay without the seed. Rules: faults never
overlap on a target, at least one replica is always left untouched, and every fault
is healed before the run's end.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from typing import Any

from chaos.faults import CATALOGUE
from chaos.target import DEPENDENCIES, Topology
from chaos.timeline import Timeline, TimelineError, fault_window, parse_timeline
from common.units import format_duration, parse_duration

DEFAULT_FAULTS = ("kill", "pause", "latency")
# Kinds whose targets the monkey picks itself; scale-in is left out because it renames
# the replica set under later faults.
REPLICA_KINDS = ("kill", "terminate", "pause", "restart", "drain")
DEPENDENCY_KINDS = ("latency", "bandwidth", "blackhole", "reset", "slow-close", "down")
STACK_KINDS = {"rolling-restart": "all", "scale-out": "stack"}
MONKEY_KINDS = (*REPLICA_KINDS, *DEPENDENCY_KINDS, "partition", "crash", "flush", *STACK_KINDS)
MAX_FAULTS = 500


def new_seed() -> int:
    return secrets.randbelow(2**31)


def parse_range(text: str, what: str = "interval") -> tuple[float, float]:
    """`10s..30s` (or a single `20s`) -> (10.0, 30.0)."""
    low, sep, high = str(text).partition("..")
    try:
        lo = parse_duration(low)
        hi = parse_duration(high) if sep else lo
    except ValueError as exc:
        raise ValueError(f"{what} {text!r}: {exc}; write e.g. 10s..30s") from None
    if hi < lo:
        raise ValueError(f"{what} {text!r}: the upper end is below the lower end")
    return lo, hi


@dataclass(frozen=True)
class MonkeyConfig:
    seed: int
    faults: tuple[str, ...] = DEFAULT_FAULTS
    interval: tuple[float, float] = (10.0, 30.0)  # between one fault's start and the next
    duration: float = 300.0  # every fault is healed before this
    hold: tuple[float, float] | None = None  # how long a fault lasts; default: half to all of the short interval

    def check(self) -> None:
        if not self.faults:
            raise ValueError("--faults: name at least one fault")
        for kind in self.faults:
            if kind not in CATALOGUE:
                raise ValueError(f"--faults: unknown fault {kind!r} (known: {', '.join(CATALOGUE)})")
            if kind not in MONKEY_KINDS:
                raise ValueError(f"--faults: the monkey does not play {kind!r} (it can: {', '.join(MONKEY_KINDS)})")
        if self.interval[0] < 1.0:
            raise ValueError("--interval: the shortest interval is 1s")
        if self.duration <= self.interval[0]:
            raise ValueError(f"--duration {format_duration(self.duration)} leaves no room for a fault every "
                             f"{format_duration(self.interval[0])}")

    def hold_range(self) -> tuple[float, float]:
        if self.hold is not None:
            return self.hold
        return max(1.0, self.interval[0] / 2), max(1.0, self.interval[0])


def _choices(kind: str, topology: Topology) -> list[tuple[str, dict[str, Any]]]:
    if kind in REPLICA_KINDS:
        return [(r, {}) for r in topology.replicas]
    if kind in DEPENDENCY_KINDS:
        return [(d, {}) for d in DEPENDENCIES]
    if kind == "partition":
        return [(r, {"dependency": d}) for r in topology.replicas for d in DEPENDENCIES]
    if kind == "crash":
        return [(d, {}) for d in DEPENDENCIES]
    if kind == "flush":
        return [("redis", {})]
    return [(STACK_KINDS[kind], {})]


def monkey_timeline(config: MonkeyConfig, topology: Topology) -> Timeline:
    config.check()
    rng = random.Random(config.seed)
    lo, hi = config.interval
    hold_lo, hold_hi = config.hold_range()
    kinds = sorted(set(config.faults), key=config.faults.index)
    tables: list[dict[str, Any]] = []
    windows: list[tuple[float, float, frozenset[str]]] = []
    t = rng.uniform(lo, hi)
    while t < config.duration and len(tables) < MAX_FAULTS:
        kind = rng.choice(kinds)
        cls = CATALOGUE[kind]
        hold = round(rng.uniform(hold_lo, hold_hi), 1) if cls.sustained else None
        start = round(t, 1)
        options = []
        for target, params in _choices(kind, topology):
            try:
                fault = cls.build(target, params, topology)
            except ValueError:
                continue  # e.g. latency without fault proxies
            _, end = fault_window(fault, start, hold, topology)
            footprint = fault.footprint(topology)
            if end >= config.duration or not _fits(start, end, footprint, windows, topology):
                continue
            options.append((target, params, end, footprint))
        if options:
            target, params, end, footprint = rng.choice(options)
            table: dict[str, Any] = {"kind": kind, "target": target, "at": f"{start}s", **params}
            if hold is not None:
                table["for"] = f"{hold}s"
            tables.append(table)
            windows.append((start, end, footprint))
        t += rng.uniform(lo, hi)
    if not tables:
        raise TimelineError(f"monkey (seed {config.seed}): no fault fits in {format_duration(config.duration)} "
                            f"with interval {format_duration(lo)}..{format_duration(hi)}")
    raw = {"name": f"monkey-{config.seed}",
           "description": (f"chaos monkey, seed {config.seed}: {', '.join(kinds)} every "
                           f"{format_duration(lo)}..{format_duration(hi)} for {format_duration(config.duration)}"),
           "fault": tables}
    return parse_timeline(raw, f"monkey seed {config.seed}").validate(topology, config.duration)


def _fits(start: float, end: float, footprint: frozenset[str],
          windows: list[tuple[float, float, frozenset[str]]], topology: Topology) -> bool:
    busy: set[str] = set()
    for w_start, w_end, w_footprint in windows:
        if w_start < end and start < w_end:
            busy |= w_footprint
    if busy & footprint:
        return False
    # Keep one replica whole: a monkey that takes every replica down at once proves nothing.
    touched = {_replica_of(k) for k in busy | footprint} - {None}
    return len(touched) < len(topology.replicas)


def _replica_of(resource: str) -> str | None:
    """The replica a resource takes out of service (a slow dependency takes out none)."""
    kind, _, name = resource.partition(":")
    return name if kind == "replica" else None


__all__ = ["MonkeyConfig", "monkey_timeline", "new_seed", "parse_range"]
