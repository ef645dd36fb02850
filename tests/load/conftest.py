"""Fixtures for the load side: a real stack (harness), Locust runs as subprocesses.

Locust monkey-patches the whole interpreter with gevent when imported, so the tests
never import it: scenario logic is tested through modules that do not import Locust,
and Locust itself only ever runs in a child process (its own session, killed by
process group on timeout, output to a log file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # load_support


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory):
    """Two reference-SUT replicas behind the LB, Redis broker, real Postgres/Redis."""
    from harness.spec import StackSpec
    from harness.stack import LocalStack

    base = tmp_path_factory.mktemp("stack")
    stack = LocalStack(StackSpec(replicas=2, broker="redis", runs_dir=base / "runs",
                                 state_path=base / "stack.json", fault_proxies=False))
    try:
        stack.up()
        yield stack, base / "stack.json"
    finally:
        stack.down()


@pytest.fixture
def locust_env(load_stack):
    stack, state_path = load_stack
    return {"GAUNTLET_STATE": str(state_path)}
