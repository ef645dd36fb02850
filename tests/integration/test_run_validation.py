"""Every input of a run is checked before the first process starts: a bad one is one
line on stderr, exit code 2, and nothing was brought up (no run directory, no child)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

BAD_RUNS = [
    (["--duration", "0s"], "--duration must be more than 0"),
    (["--users", "5", "--duration", "0s"], "--duration must be more than 0"),
    (["--duration=-1s"], "invalid duration"),
    (["--duration", "soon"], "invalid duration 'soon'"),
    (["--users", "0"], "--users must be at least 1"),
    (["--users", "abc"], "invalid int value: 'abc'"),
    (["--stages", "10s:x"], "users 'x' is not a whole number"),
    (["--stages", "0s:10"], "total duration is 0"),
    (["--defects", "made-up"], "unknown defect 'made-up'"),
    (["--defects", ","], "names no defect"),
    (["--locust-args=--publish-rate abc"], "--locust-args: argument --publish-rate: invalid float value"),
    (["--locust-args=--bogus"], "--locust-args: unrecognized arguments: --bogus"),
    (["--locust-args=--broadcast-ratio 3"], "--broadcast-ratio must be between 0 and 1"),
    (["--locust-args=--stages 1s:1"], "--stages is set by gauntlet run; use --stages instead"),
    (["--locust-args=--host=http://10.0.0.1"], "--host is set by gauntlet run"),
    (["--locust-args='unclosed"], "--locust-args: No closing quotation"),
    (["--processes", "0"], "--processes must be between 1 and 64"),
    (["--slo", "http_req_duration: p(95)<<5"], "bad threshold: expected a number"),
    (["--chaos", "no-such-timeline"], "no-such-timeline"),
    (["--chaos", "demo", "--monkey"], "not both"),
    (["--monkey", "--faults", "kill,teleport"], "teleport"),
    (["--monkey", "--interval", "30s..10s"], "interval"),
    (["--replicas", "0"], "replicas must be between"),
    (["--broker", "kafka"], "unknown broker 'kafka'"),
    (["--startup-timeout", "0s"], "startup timeout must be positive"),
    (["--restart-delay", "later"], "invalid duration 'later'"),
    (["--config", "missing.toml"], "missing.toml does not exist"),
]


def gauntlet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args,message", BAD_RUNS, ids=[" ".join(a).replace(" ", "_") for a, _ in BAD_RUNS])
def test_a_bad_run_input_is_one_line_exit_2_before_anything_starts(tmp_path, args, message):
    t0 = time.monotonic()
    done = gauntlet("run", "ramp", *args, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr + done.stdout
    # One line; a bad threshold expression adds only an indented pointer under its text.
    assert lines[0].startswith("gauntlet") and all(line.startswith(" ") for line in lines[1:]), done.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in done.stderr and not done.stdout.strip()
    assert not (tmp_path / "runs").exists(), "a run directory was made before the input was checked"
    assert time.monotonic() - t0 < 60


def test_up_refuses_unknown_defects_before_anything_starts(tmp_path):
    done = gauntlet("up", "--defects", "made-up", cwd=tmp_path)
    assert done.returncode == 2 and "unknown defect 'made-up'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()
