"""compare.json: what a broker comparison ran, in the order it ran it.

`gauntlet compare` writes it into the comparison directory before the first run and
again after every run and rate-search step, so an interrupted comparison still says
what it has. The report reads nothing else to find the runs:

    runs/<stamp>-compare-<scenario>/
        compare.json    this file: brokers, seed, scenario, timeline, runs, rate search
        figures.json    the numbers of the report's table (reports/comparison.py)
        compare.html    the report (reports/compare_html.py)
        runs/<run>/     one run directory per broker and repeat (docs/architecture.md)
        rate/<run>/     one run directory per rate-search step

Run directories are stored relative to the comparison directory, so it can be moved.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from reports.records import RecordError, write_atomic

PLAN_FILE = "compare.json"
PLAN_VERSION = 1


@dataclass(frozen=True)
class RunEntry:
    """One run of the comparison: a broker, its repeat number, where it ran in the order."""

    broker: str
    repeat: int  # 1-based
    order: int  # 1-based position in the interleaved order
    run_dir: str  # relative to the comparison directory
    exit_code: int | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class RateTarget:
    """What a rate-search step must hold to count as sustained."""

    delivery_p99_ms: float = 250.0
    max_failed_share: float = 0.01  # publishes failed or unknown
    min_achieved_share: float = 0.9  # acknowledged publishes / offered, during the hold


@dataclass(frozen=True)
class RateStep:
    """One step of the fan-out rate search: a short fanout run at one publish rate."""

    broker: str
    rate: float  # offered publishes per second, all publishers together
    publishers: int
    subscribers: int
    achieved_per_s: float  # acknowledged publishes per second during the hold
    deliveries_per_s: float  # frames received per second during the hold
    delivery_p99_ms: float | None
    lost: int  # live-owed deliveries not received, plus any lost for good
    failed_share: float
    passed: bool
    reason: str  # why it failed, or what it held
    run_dir: str
    seconds: float  # wall time of the step, stack up to report


@dataclass(frozen=True)
class RateResult:
    """The search's outcome for one broker."""

    broker: str
    sustained: float | None  # highest rate that held every target
    broke_at: float | None  # lowest rate that did not
    stopped: str  # why the search ended
    steps: tuple[RateStep, ...] = ()


@dataclass(frozen=True)
class ComparePlan:
    scenario: str
    brokers: tuple[str, ...]
    repeats: int
    seed: int
    timeline: str = ""
    stages: str | None = None
    replicas: int = 3
    slo: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    started: float | None = None
    ended: float | None = None
    interrupted: bool = False
    runs: tuple[RunEntry, ...] = ()
    rate_target: RateTarget | None = None  # None: no rate search
    rate: tuple[RateResult, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def with_run(self, entry: RunEntry) -> ComparePlan:
        return replace(self, runs=self.runs + (entry,))

    def with_rate(self, results: tuple[RateResult, ...]) -> ComparePlan:
        return replace(self, rate=results)

    def runs_of(self, broker: str) -> list[RunEntry]:
        return [r for r in self.runs if r.broker == broker]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["version"] = PLAN_VERSION
        return doc


def write_plan(compare_dir: Path, plan: ComparePlan) -> Path:
    return write_atomic(Path(compare_dir) / PLAN_FILE, json.dumps(plan.to_dict(), indent=2) + "\n")


def read_plan(compare_dir: str | Path) -> ComparePlan:
    """RecordError naming the file when it is missing or not a comparison plan."""
    path = Path(compare_dir) / PLAN_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{compare_dir} is not a comparison directory: no {PLAN_FILE}") from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: unreadable: {exc}") from None
    try:
        target = doc.get("rate_target")
        return ComparePlan(
            scenario=str(doc["scenario"]), brokers=tuple(doc["brokers"]), repeats=int(doc["repeats"]),
            seed=int(doc["seed"]), timeline=str(doc.get("timeline") or ""), stages=doc.get("stages"),
            replicas=int(doc.get("replicas", 3)), slo=tuple(doc.get("slo") or ()), argv=tuple(doc.get("argv") or ()),
            started=doc.get("started"), ended=doc.get("ended"), interrupted=bool(doc.get("interrupted")),
            runs=tuple(RunEntry(**r) for r in doc.get("runs") or ()),
            rate_target=RateTarget(**target) if target else None,
            rate=tuple(RateResult(**{**r, "steps": tuple(RateStep(**s) for s in r.get("steps") or ())})
                       for r in doc.get("rate") or ()),
            notes=tuple(doc.get("notes") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"{path}: not a comparison plan ({type(exc).__name__}: {exc})") from None
