"""The two runs every example test module shares: a baseline and a Redis outage, each
made once per module through `gauntlet run --config`. A module names its example
(`EXAMPLE`) and installs it in its own `runs` fixture, which gives the runs' folder."""

from __future__ import annotations

import pytest

from examples_support import BASELINE_STAGES, OUTAGE, OUTAGE_STAGES, ExampleRun, run_example


@pytest.fixture(scope="module")
def baseline(request, runs) -> ExampleRun:
    return run_example(request.module.EXAMPLE, runs, "--stages", BASELINE_STAGES)


@pytest.fixture(scope="module")
def outage(request, runs) -> ExampleRun:
    return run_example(request.module.EXAMPLE, runs, "--stages", OUTAGE_STAGES, "--chaos", str(OUTAGE))
