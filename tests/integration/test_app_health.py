"""How the harness decides a replica of the user's app is up: any 2xx from its health
route, or a TCP connect for an app that has no health route."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.config import AppSpec, ConfigError, load_project_config
from harness.ports import free_port
from harness.process import StartError
from harness.servers.replica import Replica

ROOT = Path(__file__).resolve().parents[2]
APP = f"{{python}} {ROOT / 'tests' / 'apps' / 'bare_app.py'} --port {{port}}"
pytestmark = pytest.mark.integration


def _replica(tmp_path: Path, extra: str, **app) -> Replica:
    spec = AppSpec(command=APP + extra, env={}, is_reference=False, cwd=str(ROOT), **app)
    return Replica("r1", free_port(), spec, {}, tmp_path / "r1.log")


def _start(replica: Replica, seconds: float = 10.0) -> None:
    replica.spawn()
    replica.wait_healthy(time.monotonic() + seconds)


def test_any_2xx_from_the_health_route_is_healthy(tmp_path):
    replica = _replica(tmp_path, " --health /healthz --status 204", health_path="/healthz", ready_path=None)
    try:
        _start(replica)
        assert replica.ready()
    finally:
        replica.stop()


def test_a_health_route_that_answers_4xx_is_never_healthy(tmp_path):
    replica = _replica(tmp_path, "", health_path="/healthz", ready_path=None)
    try:
        with pytest.raises(StartError, match="was not healthy at /healthz in time"):
            _start(replica, seconds=2.0)
    finally:
        replica.stop()


def test_tcp_health_for_an_app_without_a_health_route(tmp_path):
    replica = _replica(tmp_path, "", health="tcp", ready_path=None)
    try:
        _start(replica)
        assert replica.ready()
        replica.stop()
        assert not replica.healthy(), "nothing listens once it is stopped"
    finally:
        replica.stop()


def test_the_health_shape_in_gauntlet_toml(tmp_path):
    (tmp_path / "gauntlet.toml").write_text('[app]\ncommand = "x --port {port}"\nhealth = "tcp"\n')
    assert load_project_config(cwd=tmp_path).app.health == "tcp"
    (tmp_path / "gauntlet.toml").write_text('[app]\ncommand = "x --port {port}"\nhealth = "grpc"\n')
    with pytest.raises(ConfigError, match="app.health must be one of http, tcp, not 'grpc'"):
        load_project_config(cwd=tmp_path)
    (tmp_path / "gauntlet.toml").write_text('[app]\ncommand = "x --port {port}"\nhealth = "tcp"\nhealth_path = "/h"\n')
    with pytest.raises(ConfigError, match="app.health_path is for health = \"http\""):
        load_project_config(cwd=tmp_path)
