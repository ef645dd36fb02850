"""The suite can catch broken systems: each deliberate defect of the reference SUT
(sut/defects.py), and the memory broker, must make at least one chaos test fail.

Each control reruns its catching test in a child pytest with the defect switched on
(`--gauntlet-defects`, `--gauntlet-broker`) and requires a test failure (not an error
in setup, not a pass). The same table is in docs/chaos-suite.md.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.chaos

PARTITION = "tests/chaos/test_chaos_dependencies.py::test_replica_partitioned_from_broker_is_unready_then_catches_up"
BASELINE = "tests/chaos/test_chaos_baseline.py::test_baseline_delivers_everything_within_targets[redis]"
SIGTERM = "tests/chaos/test_chaos_replicas.py::test_sigterm_is_graceful_sockets_close_with_1001"

# control → (the option that switches it on, the chaos test that must fail)
CONTROLS = {
    "no-broker-reconnect": (["--gauntlet-defects", "no-broker-reconnect"], PARTITION),
    "no-catchup": (["--gauntlet-defects", "no-catchup"], PARTITION),
    "dup-catchup": (["--gauntlet-defects", "dup-catchup"], PARTITION),
    "drop-fanout-1pct": (["--gauntlet-defects", "drop-fanout-1pct"], BASELINE),
    "ignore-sigterm": (["--gauntlet-defects", "ignore-sigterm"], SIGTERM),
    "memory-broker": (["--gauntlet-broker", "memory"], BASELINE),
}


@pytest.mark.parametrize("control", list(CONTROLS))
def test_defect_is_caught_by_the_chaos_suite(control, tmp_path):
    option, test_id = CONTROLS[control]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", test_id, "-q", "-p", "no:cacheprovider", "-m", "chaos",
         "--junitxml", str(tmp_path / "junit.xml"), *option],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 1, f"{control}: expected {test_id} to fail, pytest said: {summary}\n{done.stdout[-3000:]}"
    assert "1 failed" in summary and "error" not in summary, f"{control}: a setup error is not a catch: {summary}"
