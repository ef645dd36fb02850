"""Timelines: which faults to inject, when, for how long, on what; checked before anything starts.

```toml
name = "replica-kill"
description = "Kill one replica for 15 seconds while load runs."

[[fault]]
kind = "kill"        # a name from `gauntlet chaos list`
target = "r2"        # what it acts on: r2, redis, redis@r2, postgres, broker, all, stack
at = "20s"           # after the run's start
for = "15s"          # how long before heal; actions (restart, rolling-restart) take none
restart_after = "5s" # any other key is a parameter of the fault
```

`load_timeline` parses the file and the parameters; `Timeline.validate(topology)`
checks it against the stack that will run it (targets exist, the broker has a
dependency, fault proxies are there, no two faults hold one target at once). Every
problem is a `TimelineError` naming the file, the fault's index and what is wrong.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.faults import CATALOGUE, Fault
from chaos.target import Topology
from common.units import format_duration, parse_duration

TIMELINES_DIR = Path(__file__).resolve().parent / "timelines"
RESERVED = ("kind", "target", "at", "for")
TOP_LEVEL = ("name", "description", "fault")
MAX_FAULTS = 1000
# An action that usually takes no time still holds its target for this long in overlap checks.
MIN_ACTION_WINDOW = 0.5


class TimelineError(ValueError):
    """A timeline that must not be played; the message names the file, the fault and the problem."""


def fault_window(fault: Fault, at: float, duration: float | None, topology: Topology) -> tuple[float, float]:
    """When `fault` holds its footprint: its `for`, or as long as the action usually takes."""
    if duration is None:
        duration = max(MIN_ACTION_WINDOW, fault.nominal_seconds(topology))
    return at, at + duration


@dataclass(frozen=True)
class ScheduledFault:
    """One `[[fault]]` entry: a fault kind, its raw target and parameters, and its window."""

    index: int  # 1-based, as users count `[[fault]]` tables
    kind: str
    target: str
    at: float
    duration: float | None  # None: an action, done when its inject returns
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def fault_class(self) -> type[Fault]:
        return CATALOGUE[self.kind]

    def make(self, topology: Topology) -> Fault:
        """A fresh fault instance (faults carry state; each play gets its own)."""
        return self.fault_class.build(self.target, self.params, topology)

    def label(self) -> str:
        return f"fault #{self.index} ({self.kind} {self.target})"

    def to_toml(self) -> str:
        lines = ["[[fault]]", f"kind = {_toml(self.kind)}", f"target = {_toml(self.target)}",
                 f"at = {_toml(_seconds(self.at))}"]
        if self.duration is not None:
            lines.append(f"for = {_toml(_seconds(self.duration))}")
        lines += [f"{k} = {_toml(v)}" for k, v in self.params.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Timeline:
    name: str
    description: str
    faults: tuple[ScheduledFault, ...]
    source: str = "<timeline>"  # the file, for error messages

    def error(self, entry: ScheduledFault | None, message: str) -> TimelineError:
        where = f"{self.source}: {entry.label()}: " if entry else f"{self.source}: "
        return TimelineError(where + message)

    def validate(self, topology: Topology, run_duration: float | None = None) -> "Timeline":
        """Raise TimelineError unless every fault can run on `topology`; returns self."""
        footprints = []
        for entry in self.faults:
            try:
                fault = entry.make(topology)
            except ValueError as exc:
                raise self.error(entry, str(exc)) from None
            if run_duration is not None and entry.at >= run_duration:
                raise self.error(entry, f"starts at {format_duration(entry.at)}, but the run lasts only "
                                        f"{format_duration(run_duration)}")
            footprints.append((entry, fault_window(fault, entry.at, entry.duration, topology),
                               fault.footprint(topology)))
        for i, (a, (a0, a1), fa) in enumerate(footprints):
            for b, (b0, b1), fb in footprints[i + 1:]:
                shared = fa & fb
                if shared and a0 < b1 and b0 < a1:
                    what = ", ".join(sorted(s.split(":", 1)[-1] for s in shared))
                    raise self.error(b, f"overlaps fault #{a.index} ({a.kind} {a.target}, "
                                        f"{format_duration(a0)}..{format_duration(a1)}) on {what}; "
                                        f"one fault per target at a time")
        return self

    def end(self) -> float:
        """When the last fault is due to be healed (actions counted at their start)."""
        return max((e.at + (e.duration or 0.0) for e in self.faults), default=0.0)

    def to_toml(self) -> str:
        head = [f"name = {_toml(self.name)}", f"description = {_toml(self.description)}"]
        return "\n".join(head) + "\n\n" + "\n\n".join(e.to_toml() for e in self.faults) + "\n"


def parse_timeline(raw: dict[str, Any], source: str = "<timeline>") -> Timeline:
    """A timeline from its TOML document (or the same shape built in code, as the monkey does)."""
    unknown = [k for k in raw if k not in TOP_LEVEL]
    if unknown:
        raise TimelineError(f"{source}: unknown key {unknown[0]!r} (a timeline has name, description and "
                            f"[[fault]] tables)")
    name = raw.get("name", Path(source).stem)
    description = raw.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise TimelineError(f"{source}: name and description must be strings")
    tables = raw.get("fault", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise TimelineError(f"{source}: faults must be [[fault]] tables")
    if not tables:
        raise TimelineError(f"{source}: no faults (add [[fault]] tables)")
    if len(tables) > MAX_FAULTS:
        raise TimelineError(f"{source}: {len(tables)} faults; at most {MAX_FAULTS}")
    entries = tuple(_entry(i, table, source) for i, table in enumerate(tables, start=1))
    return Timeline(name, description, tuple(sorted(entries, key=lambda e: (e.at, e.index))), source)


def _entry(index: int, table: dict[str, Any], source: str) -> ScheduledFault:
    def fail(message: str) -> TimelineError:
        kind = table.get("kind", "?")
        return TimelineError(f"{source}: fault #{index} ({kind} {table.get('target', '')}): {message}".replace(" )", ")"))

    kind = table.get("kind")
    if not isinstance(kind, str) or not kind:
        raise fail("missing `kind` (one of: " + ", ".join(CATALOGUE) + ")")
    if kind not in CATALOGUE:
        raise fail(f"unknown fault {kind!r} (known: {', '.join(CATALOGUE)})")
    cls = CATALOGUE[kind]
    target = table.get("target", "")
    if not isinstance(target, str):
        raise fail(f"target must be a string like {cls.target_help!r}")
    if "at" not in table:
        raise fail("missing `at` (when to inject, after the run's start, e.g. at = \"20s\")")
    try:
        at = parse_duration(table["at"])
    except ValueError as exc:
        raise fail(f"at: {exc}") from None
    duration = None
    if cls.sustained:
        if "for" not in table:
            raise fail("missing `for` (how long the fault lasts before heal, e.g. for = \"15s\")")
        try:
            duration = parse_duration(table["for"])
        except ValueError as exc:
            raise fail(f"for: {exc}") from None
        if duration <= 0:
            raise fail("for: must be more than 0s")
    elif "for" in table:
        raise fail(f"{kind} is an action that lasts as long as it takes; remove `for`")
    params = {k: v for k, v in table.items() if k not in RESERVED}
    try:
        cls.build(target, params)  # parameters are checked now; targets against the stack later
    except ValueError as exc:
        raise fail(str(exc).removeprefix(f"{kind}: ")) from None
    return ScheduledFault(index, kind, target, at, duration, params)


def load_timeline(name_or_path: str | Path) -> Timeline:
    """Parse a timeline file, or a shipped one by name (`replica-kill`)."""
    path = resolve_timeline(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TimelineError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise TimelineError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TimelineError(f"{path}: not valid TOML: {exc}") from None
    return parse_timeline(raw, str(path))


def resolve_timeline(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    # A bare name, or the repo path of a shipped one run from elsewhere (installed package).
    shipped = TIMELINES_DIR / f"{path.stem}.toml"
    if (len(path.parts) == 1 or path.parent.name == "timelines") and shipped.is_file():
        return shipped
    names = ", ".join(shipped_timelines())
    raise TimelineError(f"{name_or_path}: no such timeline file (shipped timelines: {names})")


def shipped_timelines() -> list[str]:
    return sorted(p.stem for p in TIMELINES_DIR.glob("*.toml"))


def check_timeline(name_or_path: str | Path, spec, run_duration: float | None = None) -> Timeline:
    """Load and validate against a `harness.spec.StackSpec` before the stack starts."""
    return load_timeline(name_or_path).validate(Topology.from_spec(spec), run_duration)


def _seconds(value: float) -> str:
    """Exact to the millisecond (format_duration rounds), so a written timeline replays as played."""
    return f"{round(value, 3):g}s"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
