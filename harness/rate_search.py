"""The highest fan-out rate a broker sustains: double the publish rate until a step
breaks a target, then bisect between the last step that held and the first that broke.

`RateSearch` is the search for one broker as a state machine (`next_rate`, `record`),
so the comparison can interleave the steps of every broker (A B C A B C: machine noise
hits all alike) and stop all of them on one time budget. A step is a short run of the
fanout scenario (harness/compare.py runs it); whether it held is decided by
reports/rate_step.py. Bisection is geometric: rates span orders of magnitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reports.compare_plan import RateResult, RateStep, RateTarget


@dataclass(frozen=True)
class RatePlan:
    """Bounds and shape of the search, the same for every broker."""

    start_rate: float = 100.0  # publishes/s, all publishers together
    max_rate: float = 20_000.0
    min_rate: float = 5.0
    resolution: float = 1.25  # stop when the broken rate is within this factor of the held one
    max_steps: int = 6  # per broker
    max_seconds: float = 900.0  # the whole search, every broker
    subscribers: int = 40
    ramp_s: float = 5.0
    hold_s: float = 20.0
    per_publisher: float = 50.0  # publishers = rate / this (at least 2): one publisher stays light
    max_publishers: int = 32
    target: RateTarget = field(default_factory=RateTarget)

    def validate(self) -> None:
        if not 1 <= self.max_steps <= 50:
            raise ValueError(f"--rate-steps must be between 1 and 50, not {self.max_steps}")
        if self.max_seconds < 10:
            raise ValueError("--rate-budget must be at least 10s")
        if not 1 <= self.subscribers <= 10_000:
            raise ValueError(f"--rate-subscribers must be between 1 and 10000, not {self.subscribers}")
        if self.hold_s < 3:
            raise ValueError("--rate-step must be at least 3s")
        if not 0 < self.start_rate <= self.max_rate:
            raise ValueError(f"--rate-start must be between 0 and {self.max_rate:g}, not {self.start_rate:g}")
        if self.target.delivery_p99_ms <= 0:
            raise ValueError("--rate-p99 must be more than 0")

    def publishers(self, rate: float) -> int:
        return max(2, min(self.max_publishers, math.ceil(rate / self.per_publisher)))

    def stages(self, rate: float) -> str:
        users = self.subscribers + self.publishers(rate)
        return f"{self.ramp_s:g}s:{users},{self.hold_s:g}s:{users}"

    def locust_args(self, rate: float) -> list[str]:
        n = self.publishers(rate)
        # Broadcasts only: every subscriber is owed every message, so the fan-out is
        # rate x subscribers deliveries per second, the load the broker is there for.
        return ["--publishers", str(n), "--publish-rate", f"{rate / n:.6g}", "--broadcast-ratio", "1",
                "--read-rate", "0"]


class RateSearch:
    """One broker's search. `next_rate()` is None once it is done (bracketed, out of
    steps, or at a bound); `stopped` then says why."""

    def __init__(self, broker: str, plan: RatePlan) -> None:
        self.broker = broker
        self.plan = plan
        self.steps: list[RateStep] = []
        self.held: float | None = None  # highest rate that held
        self.broke: float | None = None  # lowest rate that broke
        self.stopped = ""

    def next_rate(self) -> float | None:
        if self.stopped:
            return None
        p = self.plan
        if len(self.steps) >= p.max_steps:
            return self._stop(f"step budget ({p.max_steps} steps)")
        if not self.steps:
            return p.start_rate
        if self.broke is None:
            if self.held >= p.max_rate:
                return self._stop(f"held the highest rate tried ({p.max_rate:g} msg/s)")
            return min(self.held * 2, p.max_rate)
        if self.held is None:
            if self.broke / 2 < p.min_rate:
                return self._stop(f"broke even at {self.broke:g} msg/s")
            return self.broke / 2
        if self.broke / self.held <= p.resolution:
            return self._stop(f"bracketed within {100 * (p.resolution - 1):.0f} %")
        return round(math.sqrt(self.held * self.broke), 1)

    def record(self, step: RateStep) -> None:
        self.steps.append(step)
        if step.passed:
            self.held = step.rate if self.held is None else max(self.held, step.rate)
        else:
            self.broke = step.rate if self.broke is None else min(self.broke, step.rate)

    def out_of_time(self) -> None:
        if not self.stopped:
            self.stopped = f"time budget ({self.plan.max_seconds:g} s for the search)"

    def result(self) -> RateResult:
        return RateResult(self.broker, self.held, self.broke, self.stopped or "in progress", tuple(self.steps))

    def _stop(self, why: str) -> None:
        self.stopped = why
        return None
