"""What a check is and what it gives (DESIGN contract 4): a check is a function
`check(run) -> CheckResult`; verdicts order pass < unknown < fail and compose by taking
the worst. A check that raises does not crash the run's evaluation: `run_check` turns it
into `unknown` with the reason, because a checker bug says nothing about the system
under test (Jepsen's rule).

Every check module imports this; reports/verdict.py, which runs the checks, sits above
them all.
"""

from __future__ import annotations

import enum
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.records import RunData


class Verdict(enum.Enum):
    PASS = "pass"
    UNKNOWN = "unknown"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: Verdict) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}
# A run's exit code by its verdict. 2 is taken: bad input, before anything runs.
EXIT_CODES = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.UNKNOWN: 3}
EXIT_HELP = "exit status: 0 every check passed, 1 a check failed, 2 bad input, 3 a check could not be judged (unknown)"


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict.value, "summary": self.summary,
                "seconds": round(self.seconds, 4), "details": self.details}


Check = Callable[["RunData"], CheckResult]


def compose(verdicts: Iterable[Verdict | CheckResult]) -> Verdict:
    """The worst verdict; no checks at all is `unknown` (nothing was shown to hold)."""
    worst: Verdict | None = None
    for item in verdicts:
        v = item.verdict if isinstance(item, CheckResult) else item
        worst = v if worst is None or v > worst else worst
    return worst if worst is not None else Verdict.UNKNOWN


def run_check(name: str, check: Callable[[RunData], CheckResult | Sequence[CheckResult]],
              run: RunData) -> list[CheckResult]:
    """Run one check; an exception becomes an `unknown` result naming the error."""
    started = time.perf_counter()
    try:
        result = check(run)
    except Exception as exc:  # a checker crash must not take the evaluation down
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        return [CheckResult(name, Verdict.UNKNOWN, f"check crashed: {type(exc).__name__}: {exc}{where}",
                            {"error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exception(exc)[-6:]},
                            time.perf_counter() - started)]
    results = [result] if isinstance(result, CheckResult) else list(result)
    elapsed = time.perf_counter() - started
    return [CheckResult(r.name, r.verdict, r.summary, r.details, r.seconds or elapsed / max(1, len(results)))
            for r in results]
