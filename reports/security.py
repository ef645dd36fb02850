"""The security check: did the app refuse every hostile attempt?

Reads hostile.csv (scenarios/hostile.py): one row per attempt with a broken credential
(forged, truncated, extended or non-ASCII token, another user's token, no or a wrong
publisher key), over HTTP and WebSocket. Any `accepted` attempt fails the check, and
the failure names the request. Attempts that got no answer or a 5xx (`error`) are
neither: they are counted, and when no attempt was answered at all the check cannot
judge. No attempts (hostile users off, or records from before they existed) is
unknown too: nothing showed that forged credentials are refused.
"""

from __future__ import annotations

from typing import Any

from reports.records import RunData
from reports.check import CheckResult, Verdict

NAME = "security"
EXAMPLES = 10


def _metas(run: RunData) -> list[dict]:
    import json

    metas = []
    for worker in run.workers:
        try:
            metas.append(json.loads((run.run_dir / "records" / worker / "meta.json").read_text()))
        except (OSError, ValueError):
            continue
    return metas


def applies(run: RunData) -> bool:
    """False only when the load said the target presents no credential at all (no
    token, no publisher key in any request): an app without authentication, where
    there is nothing to forge. The verdict's notes say so instead."""
    metas = _metas(run)
    return not (metas and len(run.hostile) == 0
                and all(isinstance(m.get("hostile_kinds"), list) and not m["hostile_kinds"] for m in metas))


NOT_APPLICABLE = ("security not judged: the load's adapter presents no credential (no {token} or "
                  "{publisher_key} in any request), so there is nothing to forge")


def check(run: RunData) -> CheckResult:
    h = run.hostile
    outcome = h["outcome"].astype(object)
    total = len(h)
    accepted = h[outcome == "accepted"]
    refused = int((outcome == "refused").sum())
    errors = int((outcome == "error").sum())
    by_kind = (h.assign(outcome=outcome).groupby(["kind", "outcome"], observed=True).size()
               .unstack(fill_value=0).reset_index().to_dict(orient="records")) if total else []
    details: dict[str, Any] = {"attempts": total, "accepted": len(accepted), "refused": refused,
                               "errors": errors, "by_kind": by_kind,
                               "transports": sorted(str(t) for t in h["transport"].dropna().unique())}
    if not total:
        off = _switched_off(run)
        why = "hostile users were switched off (--hostile 0)" if off else "no hostile attempt was recorded"
        return CheckResult(NAME, Verdict.UNKNOWN, f"no hostile attempts: {why}; nothing showed that forged "
                                                  "or foreign credentials are refused", details)
    if len(accepted):
        rows = accepted.head(EXAMPLES)
        details["accepted_attempts"] = [
            {"ts": float(r.ts), "kind": str(r.kind), "transport": str(r.transport), "request": str(r.request),
             "user": str(r.user), "status": None if _na(r.status) else int(r.status), "detail": str(r.detail)}
            for r in rows.itertuples()]
        first = details["accepted_attempts"][0]
        return CheckResult(NAME, Verdict.FAIL,
                           f"{len(accepted):,} of {total:,} hostile attempts accepted; first: {first['kind']} "
                           f"{first['request']} as {first['user']} → {first['detail']}", details)
    summary = f"0 of {total:,} hostile attempts accepted ({refused:,} refused"
    summary += f", {errors:,} unanswered or 5xx)" if errors else ")"
    if not refused:
        return CheckResult(NAME, Verdict.UNKNOWN, summary + ": none was answered, so none was refused", details)
    return CheckResult(NAME, Verdict.PASS, summary, details)


def _switched_off(run: RunData) -> bool:
    return any(meta.get("hostile") == 0 for meta in _metas(run))


def _na(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
