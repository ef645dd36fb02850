"""capacity.json: what a capacity search ran, step by step.

`gauntlet capacity` writes it into the capacity directory before the first step and
again after every step, so an interrupted search still says what it found:

    runs/<stamp>-capacity-<scenario>/
        capacity.json   this file: the plan, every step, the result per replica count
        capacity.html   the report (reports/capacity_html.py)
        steps.log       every step's own output
        steps/<run>/    one run directory per step (docs/architecture.md)

Run directories are stored relative to the capacity directory, so it can be moved.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from reports.records import RecordError, write_atomic

PLAN_FILE = "capacity.json"
PLAN_VERSION = 1
HELD, BROKE, GENERATOR = "held", "broke", "generator"
LOAD_KINDS = {"users": "users", "rate": "msg/s"}


@dataclass(frozen=True)
class CapacityStep:
    """One step: a short `gauntlet run` at one load level on one replica count."""

    replicas: int
    level: float  # users (load "users") or publishes/s (load "rate")
    outcome: str  # held | broke | generator (the load generator could not keep up)
    reason: str  # what broke, or what it held
    run_dir: str
    seconds: float  # wall time of the step, stack up to report
    failed: tuple[str, ...] = ()  # checks that failed
    unknown: tuple[str, ...] = ()  # checks that could not be judged
    measurement: str = ""  # the measurement's headline
    bottleneck: str = ""  # what sat at its limit (reports/resources.py)
    saturated: tuple[str, ...] = ()  # components at their limit, the longest first
    cpu: dict[str, float] = field(default_factory=dict)  # mean cores per component during the load
    machine_cpu: float | None = None  # mean busy cores of the machine
    other_cpu: float | None = None  # mean cores outside the run
    sockets_peak: int = 0
    acked_per_s: float = 0.0
    deliveries_per_s: float = 0.0
    delivery_p99_ms: float | None = None
    http_p95_ms: float | None = None

    @property
    def rate(self) -> float:  # the search (harness/rate_search.py) steps on `rate`
        return self.level

    @property
    def passed(self) -> bool:
        return self.outcome == HELD


@dataclass(frozen=True)
class CapacityResult:
    replicas: int
    held: float | None  # highest level that held every threshold
    broke: float | None  # lowest level that did not (or where the generator gave out)
    stopped: str  # why the search for this replica count ended
    steps: tuple[CapacityStep, ...] = ()

    @property
    def generator_bound(self) -> bool:
        return any(s.outcome == GENERATOR for s in self.steps)

    def knee_step(self) -> CapacityStep | None:
        """The first step past the knee: the lowest that broke (what saturated there)."""
        broken = [s for s in self.steps if not s.passed]
        return min(broken, key=lambda s: s.level) if broken else None

    def held_step(self) -> CapacityStep | None:
        held = [s for s in self.steps if s.passed]
        return max(held, key=lambda s: s.level) if held else None


@dataclass(frozen=True)
class CapacityPlan:
    scenario: str
    load: str  # users | rate
    replicas: tuple[int, ...]
    seed: int
    broker: str
    start: float
    max_level: float
    ramp_s: float
    hold_s: float
    slo: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    cores: int = 0
    started: float | None = None
    ended: float | None = None
    interrupted: bool = False
    conditions: str = ""  # the machine when it started (load average, other jobs)
    results: tuple[CapacityResult, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        return LOAD_KINDS.get(self.load, self.load)

    def result(self, replicas: int) -> CapacityResult | None:
        return next((r for r in self.results if r.replicas == replicas), None)

    def with_results(self, results: tuple[CapacityResult, ...]) -> CapacityPlan:
        return replace(self, results=results)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["version"] = PLAN_VERSION
        return doc


def write_plan(directory: Path, plan: CapacityPlan) -> Path:
    return write_atomic(Path(directory) / PLAN_FILE, json.dumps(plan.to_dict(), indent=2) + "\n")


def read_plan(directory: str | Path) -> CapacityPlan:
    """RecordError naming the file when it is missing or not a capacity plan."""
    path = Path(directory) / PLAN_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{directory} is not a capacity directory: no {PLAN_FILE}") from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: unreadable: {exc}") from None
    try:
        doc.pop("version", None)
        results = tuple(
            CapacityResult(**{**r, "steps": tuple(
                CapacityStep(**{**s, "failed": tuple(s.get("failed") or ()), "unknown": tuple(s.get("unknown") or ()),
                                "saturated": tuple(s.get("saturated") or ())}) for s in r.get("steps") or ())})
            for r in doc.pop("results", None) or ())
        return CapacityPlan(**{**doc, "replicas": tuple(doc["replicas"]), "slo": tuple(doc.get("slo") or ()),
                               "argv": tuple(doc.get("argv") or ()), "notes": tuple(doc.get("notes") or ()),
                               "results": results})
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"{path}: not a capacity plan ({type(exc).__name__}: {exc})") from None
