"""The records check: is there a history to judge, and did it arrive whole?

A run whose load generator never wrote a record cannot pass anything; one whose
writer was killed mid-line still can, but the report says what was dropped.
"""

from __future__ import annotations

from reports.records import RunData
from reports.check import CheckResult, Verdict


def check(run: RunData) -> CheckResult:
    counts = {kind: len(getattr(run, kind)) for kind in ("http", "pub", "recv", "conn", "users")}
    details = {"records": counts, "workers": list(run.workers), "warnings": list(run.warnings)}
    total = sum(counts.values())
    listed = ", ".join(f"{n:,} {kind}" for kind, n in counts.items() if n)
    if total == 0:
        return CheckResult("records", Verdict.UNKNOWN,
                           "no load records in records/<worker>/: the load generator wrote nothing", details)
    summary = f"{total:,} records from {len(run.workers)} worker(s): {listed}"
    if run.warnings:
        summary += f"; {len(run.warnings)} warning(s): {run.warnings[0]}"
    return CheckResult("records", Verdict.PASS, summary, details)
