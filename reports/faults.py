"""The fault journal check: did every fault go in and come out as planned?

A fault that never healed leaves the rest of the run measuring a broken system, so
the run cannot vouch for anything after it (fail for a failed heal, unknown for one
still active when the run ended, or one the run died during). A fault that failed to
inject tested nothing.
"""

from __future__ import annotations

from reports.records import RunData
from reports.check import CheckResult, Verdict


def check(run: RunData) -> CheckResult:
    rows = [{"id": f.id, "kind": f.kind, "target": f.target, "start": f.start, "end": f.end,
             "outcome": f.outcome, "error": f.error, "params": f.params} for f in run.faults]
    details = {"faults": rows}
    if not run.faults:
        return CheckResult("faults", Verdict.PASS, "no faults in this run", details)
    heal_failed = [f for f in run.faults if f.outcome == "heal_failed"]
    active = [f for f in run.faults if f.outcome == "active"]
    interrupted = [f for f in run.faults if f.outcome == "interrupted"]
    not_injected = [f for f in run.faults if f.outcome == "inject_failed"]
    healed = len(run.faults) - len(heal_failed) - len(active) - len(not_injected) - len(interrupted)
    summary = f"{len(run.faults)} fault(s), {healed} injected and healed"

    def names(faults: list) -> str:
        return ", ".join(f"{f.id} ({f.label}{': ' + f.error if f.error else ''})" for f in faults)

    if heal_failed:
        return CheckResult("faults", Verdict.FAIL, f"{summary}; heal failed: {names(heal_failed)}", details)
    if active or not_injected or interrupted:
        parts = [summary]
        if active:
            parts.append(f"never healed: {names(active)}")
        if interrupted:
            parts.append(f"interrupted while active (the run died; its teardown ended them): {names(interrupted)}")
        if not_injected:
            parts.append(f"injection failed: {names(not_injected)}")
        return CheckResult("faults", Verdict.UNKNOWN, "; ".join(parts), details)
    return CheckResult("faults", Verdict.PASS, summary, details)
