"""The `gauntlet` command from separate processes, as a user runs it from two terminals."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

TINY_TOML = """
[app]
command = "{python} tests/apps/tiny_app.py --listen {port}"
env = { TINY_INSTANCE = "{instance}", TINY_DB = "{database_url}", TINY_REDIS = "{redis_url}" }
health_path = "/healthz"
ready_path = "/readyz"
cwd = "%s"
""" % ROOT


def gauntlet(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_up_detach_status_down_from_separate_processes(tmp_path):
    (tmp_path / "gauntlet.toml").write_text(TINY_TOML)
    up = gauntlet("up", "--detach", "--replicas", "2", "--no-fault-proxies", cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        status = gauntlet("status", "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["lb_url"].startswith("http://127.0.0.1:")
        assert [r["name"] for r in doc["replicas"]] == ["r1", "r2"]
        assert all(r["pid"] for r in doc["replicas"])
        # Secrets only on request: not in the JSON, not in the URLs.
        secrets = json.loads(gauntlet("status", "--json", "--show-secrets", cwd=tmp_path).stdout)
        hidden = [secrets["secret"], secrets["publisher_key"], secrets["control_token"],
                  *(urlsplit(c["url"]).password for c in secrets["components"] if urlsplit(c["url"]).password)]
        assert len(hidden) == 5 and all(len(h) >= 16 for h in hidden), secrets
        for leaked in hidden:
            assert leaked not in status.stdout, f"status --json shows a secret: {leaked}"
        assert doc["secret"] == "(hidden; --show-secrets)"
        table = gauntlet("status", cwd=tmp_path)
        assert "r1" in table.stdout and "ready" in table.stdout and "nginx" in table.stdout
        assert not [h for h in hidden if h in table.stdout], "the table shows a password"
        again = gauntlet("up", "--detach", "--no-fault-proxies", cwd=tmp_path)
        assert again.returncode != 0 and "already up" in again.stderr
        pids = [doc["harness_pid"]] + [r["pid"] for r in doc["replicas"]] + [c["pid"] for c in doc["components"]]
    finally:
        down = gauntlet("down", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "stack down" in down.stdout
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if psutil.pid_exists(p)]
    assert not (tmp_path / ".gauntlet" / "stack.json").exists()
    assert gauntlet("status", cwd=tmp_path).returncode == 2


@pytest.mark.parametrize("args,message", [
    (["status"], "no running stack"),
    (["smoke"], "no running stack"),
    (["down"], "no running stack"),
    (["up", "--replicas", "0"], "replicas must be between"),
    (["up", "--broker", "kafka"], "unknown broker 'kafka'"),
    (["up", "--startup-timeout", "soon"], "invalid duration 'soon'"),
    (["up", "--config", "missing.toml"], "missing.toml does not exist"),
])
def test_bad_input_gets_one_clear_line_and_no_traceback(tmp_path, args, message):
    done = gauntlet(*args, cwd=tmp_path, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_project_config_is_refused_before_anything_starts(tmp_path):
    (tmp_path / "gauntlet.toml").write_text('[app]\ncommand = "x --port {prot}"\n')
    done = gauntlet("up", cwd=tmp_path, timeout=30)
    assert done.returncode == 2 and "unknown placeholder {prot}" in done.stderr
    assert not (tmp_path / "runs").exists()
