"""Fixtures for the reports tests: hand-written mini runs and seeded synthetic runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_support import MiniRun

from tests.synthetic import SyntheticRun, SyntheticSpec, build_run, default_faults


@pytest.fixture
def mini(tmp_path: Path) -> MiniRun:
    return MiniRun(tmp_path / "run")


# Every anomaly the checker knows, each injected a known number of times.
FULL_SPEC = SyntheticSpec(
    seed=3, faults=default_faults(120.0), lost=4, lost_live_only=3, lost_eventual_only=2, duplicated=5,
    replay_duplicated=2, unexpected=3, late=4, out_of_order=3, misrouted=2, failed_seen=1, connect_failures=4,
)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> SyntheticRun:
    return build_run(tmp_path_factory.mktemp("full") / "run", FULL_SPEC)


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> SyntheticRun:
    """No faults and no injected anomalies: the system delivered everything."""
    spec = SyntheticSpec(seed=5, faults=(), fail_fraction=0.002, unknown_fraction=0.003)
    return build_run(tmp_path_factory.mktemp("clean") / "run", spec)


@pytest.fixture(scope="session")
def reported_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SyntheticRun, Path]]:
    from reports.html import build_report

    run = build_run(tmp_path_factory.mktemp("report") / "run", FULL_SPEC)
    path = build_report(run.run_dir, slo=["ws_delivery_latency{path:cross}: p(99)<250",
                                          "delivery_lost_eventual: count==0"])
    yield run, path
