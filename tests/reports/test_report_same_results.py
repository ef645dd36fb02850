"""The checker's conclusions stay the same when its implementation changes for speed.

data/checker_golden.json holds, for seeded synthetic histories with faults (healed,
never healed, failed to heal), losses, duplicates, replays, reorders, misroutes and a
truncated last line, everything the checker concluded (checker_digest.py): every
verdict and summary, summary.json, every delivery and order table. It was written by
the implementation before the columnar reading and vectorised matching; each history
is rebuilt here and must come out the same, so a speedup changes no verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from checker_digest import GOLDEN, HISTORIES, digest

from tests.synthetic import build_run

_GOLDEN: dict[str, Any] = json.loads(GOLDEN.read_text())


def _differences(want: Any, got: Any, where: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{where}.{k}: missing" for k in want if k not in got]
        out += [f"{where}.{k}: unexpected" for k in got if k not in want]
        for k in want:
            if k in got:
                out += _differences(want[k], got[k], f"{where}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: {len(got)} items, expected {len(want)}"]
        return [d for i, (w, g) in enumerate(zip(want, got)) for d in _differences(w, g, f"{where}[{i}]")]
    return [] if want == got else [f"{where}: {got!r}, expected {want!r}"]


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_checker_concludes_what_it_did_before(name: str, tmp_path: Path) -> None:
    run = build_run(tmp_path / name, HISTORIES[name])
    differences = _differences(_GOLDEN[name], digest(run.run_dir))
    assert not differences, "\n".join(differences[:20])


def test_the_comparison_catches_a_changed_conclusion(tmp_path: Path) -> None:
    """Negative control: one lost delivery more, or one duplicate fewer, is a difference."""
    name = "seed-505"
    got = digest(build_run(tmp_path / name, HISTORIES[name]).run_dir)
    got["summary"]["delivery"]["counts"]["lost_eventual"] += 1
    got["tables"]["duplicates"] = got["tables"]["duplicates"][1:]
    differences = _differences(_GOLDEN[name], got)
    assert any("lost_eventual" in d for d in differences)
    assert any("duplicates" in d for d in differences)
