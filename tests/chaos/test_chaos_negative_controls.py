"""The suite can catch broken systems: each deliberate defect of the reference SUT
(sut/defects.py), and the memory broker, must make at least one chaos test fail.

Each control reruns its catching test in a child pytest with the defect switched on
(`--gauntlet-defects`, `--gauntlet-broker`) and requires a test failure (not an error
in setup, not a pass) that shows the defect: the failing check's own text, read from
the child's junit report, so an unrelated failure (a flaky timeout, another assert)
does not count as a catch. The same table is in docs/chaos-suite.md.
"""

import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.chaos

PARTITION = "tests/chaos/test_chaos_dependencies.py::test_replica_partitioned_from_broker_is_unready_then_catches_up"
BASELINE = "tests/chaos/test_chaos_baseline.py::test_baseline_delivers_everything_within_targets[redis]"
SIGTERM = "tests/chaos/test_chaos_replicas.py::test_sigterm_is_graceful_sockets_close_with_1001"

# The delivery check's failure reads "delivery fail: <problems> — <summary>" (CheckedRun.
# assert_passed); the problems, before the dash, name the categories that failed it.
def delivery_problem(category: str) -> str:
    return rf"delivery fail: [^—\n]*\b{category}\b[^—\n]* — "


# control → (the option that switches it on, the chaos test that must fail, a regex its
# failure text must match: the check that this defect breaks)
CONTROLS = {
    # The broker never reconnects, so r2 stays unready after the partition heals.
    "no-broker-reconnect": (["--gauntlet-defects", "no-broker-reconnect"], PARTITION,
                            r"timed out after 15s waiting for r2 to be ready again after the heal"),
    # What r2's subscribers missed while partitioned is never caught up.
    "no-catchup": (["--gauntlet-defects", "no-catchup"], PARTITION, delivery_problem("lost for good")),
    # The catch-up re-sends what was already delivered.
    "dup-catchup": (["--gauntlet-defects", "dup-catchup"], PARTITION, delivery_problem("duplicated")),
    # 1 % of fan-out is dropped with no fault running.
    "drop-fanout-1pct": (["--gauntlet-defects", "drop-fanout-1pct"], BASELINE,
                         delivery_problem("lost live in steady state")),
    # SIGTERM is ignored: no graceful shutdown at all.
    "ignore-sigterm": (["--gauntlet-defects", "ignore-sigterm"], SIGTERM, r"r2 did not exit within 8 s of SIGTERM"),
    # Every 20th broker message is held back 0.5 s: received behind newer ones, with no fault running.
    "reorder-fanout": (["--gauntlet-defects", "reorder-fanout"], BASELINE,
                       r"delivery_out_of_order\{phase:steady\}: count==0 fail: real-time order: count = [1-9]"),
    # No cross-instance fan-out: subscribers miss what other replicas publish, for good.
    "memory-broker": (["--gauntlet-broker", "memory"], BASELINE, delivery_problem("lost for good")),
}

TIMEOUT_S = 600
# After SIGINT the child pytest tears its stack down (fixtures' finalizers); give it time.
INTERRUPT_GRACE_S = 60


def stop_child(proc: subprocess.Popen) -> None:
    """Interrupt the child's process group as Ctrl-C would, so that pytest runs its
    teardown and brings the stack down; SIGKILL the group if it is still there after
    the grace period. SIGKILL alone would leave the stack's servers running."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(INTERRUPT_GRACE_S)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def failures(junit: Path) -> dict[str, list[str]]:
    """Test name → the texts (message and body) of its <failure> and <error> elements."""
    found: dict[str, list[str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        for element in [*case.findall("failure"), *case.findall("error")]:
            text = f"{element.tag}: {element.get('message') or ''}\n{element.text or ''}"
            found.setdefault(case.get("name", "?"), []).append(text)
    return found


@pytest.mark.parametrize("control", list(CONTROLS))
def test_defect_is_caught_by_the_chaos_suite(control, tmp_path):
    option, test_id, expected = CONTROLS[control]
    junit = tmp_path / "junit.xml"
    log = tmp_path / "pytest.log"
    with log.open("wb") as out:
        # Its own session, so that a timeout can interrupt the child and whatever it started.
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", test_id, "-q", "-p", "no:cacheprovider", "-m", "chaos",
             "--junitxml", str(junit), *option],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            returncode = proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            stop_child(proc)
    output = log.read_text(errors="replace")
    assert returncode is not None, f"{control}: {test_id} still running after {TIMEOUT_S}s\n{output[-3000:]}"
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    assert returncode == 1, f"{control}: expected {test_id} to fail, pytest said: {summary}\n{output[-3000:]}"
    assert "1 failed" in summary and "error" not in summary, f"{control}: a setup error is not a catch: {summary}"

    failed = failures(junit)
    name = test_id.rsplit("::", 1)[1]
    assert list(failed) == [name], f"{control}: expected only {name} to fail, junit has {list(failed)}"
    texts = failed[name]
    assert any(re.search(expected, text) for text in texts), (
        f"{control}: {name} failed, but not on the check this defect breaks (/{expected}/):\n"
        + "\n".join(text[:2000] for text in texts))
