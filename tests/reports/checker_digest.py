"""What the checker concluded about a run, as plain JSON, to compare two implementations.

`digest(run_dir)` evaluates a run (every check, summary.json, junit.xml) and folds into
one document everything a verdict rests on: each check's verdict, summary and details,
summary.json without its machine-dependent fields, and every delivery table (lost,
duplicated, unexpected, misrouted, recovered, out of order, per phase, per replica pair,
order samples and violations), with the big per-delivery tables as column sums and
an order-sensitive fingerprint. The histories in HISTORIES are seeded synthetic runs
with faults, losses, duplicates, reorders and misroutes.

`python tests/reports/checker_digest.py` rewrites data/checker_golden.json from the
implementation in the tree: run it only when a change of verdict is intended.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.synthetic import SyntheticFault, SyntheticSpec  # noqa: E402

GOLDEN = Path(__file__).parent / "data" / "checker_golden.json"
SLO = ("ws_delivery_latency{path:cross}: p(99)<250", "delivery_lost_eventual: count==0",
       "publish_duration_corrected: p(99)<1000", "ws_delivery_latency: p(95)<100")


def _spec(seed: int) -> SyntheticSpec:
    """A history drawn from the seed: replicas, workers, faults (healed, never healed,
    failed to heal), and every anomaly a few times."""
    rng = np.random.default_rng(seed)
    duration = float(rng.choice([40.0, 60.0, 90.0]))
    instances = ("r1", "r2", "r3", "r4")[: int(rng.integers(2, 5))]
    faults = []
    for _ in range(int(rng.integers(0, 3))):
        kind = str(rng.choice(["partition", "kill"]))
        target = str(rng.choice(instances[1:]))
        at = float(rng.uniform(0.15, 0.6)) * duration
        outcome = str(rng.choice(["ok", "ok", "ok", "heal_failed", "active"]))
        faults.append(SyntheticFault(kind, target, at, float(rng.uniform(0.05, 0.15)) * duration, outcome=outcome))
    pick = lambda hi: int(rng.integers(0, hi + 1))  # noqa: E731
    return SyntheticSpec(
        seed=seed, name=f"golden-{seed}", duration=duration, instances=instances,
        subscribers=int(rng.integers(8, 40)), users=int(rng.integers(4, 16)), workers=int(rng.integers(1, 4)),
        publish_rate=float(rng.uniform(5.0, 25.0)), broadcast_fraction=float(rng.uniform(0.0, 0.3)),
        fail_fraction=float(rng.uniform(0.0, 0.05)), unknown_fraction=float(rng.uniform(0.0, 0.05)),
        late_joiners=pick(3), leavers=pick(3), flappers=pick(5), overlap_replays=pick(4),
        faults=tuple(sorted(faults, key=lambda f: f.at)),
        lost=pick(5), lost_live_only=pick(3), lost_eventual_only=pick(3), duplicated=pick(5),
        replay_duplicated=pick(2), unexpected=pick(3), late=pick(4), out_of_order=pick(4), misrouted=pick(2),
        failed_seen=pick(1), connect_failures=pick(3), truncate_last_line=bool(rng.integers(0, 2)),
    )


HISTORIES: dict[str, SyntheticSpec] = {f"seed-{s}": _spec(s) for s in (101, 202, 303, 404, 505, 606)}
# A system that delivered everything (the checks pass), and one that lost its
# subscribers before a fault healed (delivery unknown).
HISTORIES["clean"] = SyntheticSpec(seed=5, duration=60.0, faults=(), fail_fraction=0.002, unknown_fraction=0.003)
HISTORIES["unhealed"] = SyntheticSpec(seed=9, duration=60.0, faults=(SyntheticFault("partition", "r2", 40.0, 30.0,
                                                                                    outcome="active"),))


def _clean(value: Any) -> Any:
    """JSON-stable: numpy scalars to Python, NaN to None, floats rounded to 9 digits."""
    if isinstance(value, dict):  # "seconds": how long a check took, not what it found
        return {str(k): _clean(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if math.isnan(v) else (v if math.isinf(v) else float(f"{v:.9g}"))
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.reset_index() if frame.index.name else frame
    return _clean([{k: (None if (v is None or (not isinstance(v, str) and pd.isna(v))) else
                        (str(v) if not isinstance(v, (int, float, bool, np.integer, np.floating, np.bool_)) else v))
                    for k, v in row.items()} for row in out.to_dict(orient="records")])


def _fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """Row count, numeric column sums and an order-sensitive hash of every column."""
    doc: dict[str, Any] = {"rows": len(frame), "columns": {}}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            text = "\n".join("nan" if math.isnan(v) else f"{v:.6f}" for v in values)
            summary: Any = _clean(float(np.nansum(values)))
        else:
            text = "\n".join("" if (v is None or (not isinstance(v, str) and pd.isna(v))) else str(v)
                             for v in s.astype(object))
            summary = int(s.astype(object).nunique())
        doc["columns"][col] = [summary, hashlib.sha256(text.encode()).hexdigest()[:16]]
    return doc


def digest(run_dir: Path) -> dict[str, Any]:
    from reports import delivery
    from reports.records import load_run
    from reports.verdict import evaluate_run

    run = load_run(run_dir)
    verdict = evaluate_run(run, list(SLO))
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["run"].pop("dir", None)
    summary["run"].pop("versions", None)
    a = delivery.analyze(run)
    doc: dict[str, Any] = {
        "verdict": verdict.verdict.value, "exit_code": verdict.exit_code,
        "checks": [_clean(c.to_dict()) for c in verdict.checks],
        "summary": _clean(summary),
        "warnings": [w.replace(str(run_dir), "RUN") for w in run.warnings],
        "tables": {
            "lost": _table(a.lost), "duplicates": _table(a.duplicates), "unexpected": _table(a.unexpected),
            "misrouted": _table(a.misrouted), "recovered": _table(a.recovered),
            "out_of_order": _table(a.out_of_order), "by_phase": _table(a.by_phase), "matrix": _table(a.matrix),
            "corrupted": _table(a.corrupted),
        },
        "fingerprints": {
            "pairs": _fingerprint(a.pairs), "latency": _fingerprint(a.latency),
            "order_samples": _fingerprint(a.order.samples) if a.order else None,
            "order_violations": _fingerprint(a.order.violations) if a.order else None,
            "order_by_pair": _table(a.order.by_pair) if a.order else None,
        },
        "recovery": [_clean(r.to_dict()) for r in a.recovery],
        "records": {k: len(getattr(run, k)) for k in ("http", "pub", "recv", "conn", "users", "loadgen")},
    }
    return json.loads(json.dumps(_clean(doc), default=str))


def main() -> int:
    import tempfile

    from tests.synthetic import build_run

    out = {}
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        for name, spec in HISTORIES.items():
            run = build_run(Path(tmp) / name, spec)
            out[name] = digest(run.run_dir)
            print(name, out[name]["verdict"], out[name]["records"])
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
