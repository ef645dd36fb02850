"""One replica of the app under test, started from the app's command template."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from harness.config import AppSpec, reference_values
from harness.ports import LOOPBACK
from harness.process import ChildProcess, KillPolicy
from harness.servers.base import Server


def http_status(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def http_json(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}


class Replica(Server):
    def __init__(
        self,
        name: str,
        port: int,
        app: AppSpec,
        values: dict[str, str],
        log_path: Path,
        *,
        grace: float = 10.0,
    ) -> None:
        self.name = name
        self.port = port
        self.app = app
        self.values = {**reference_values(), **values, "port": str(port), "instance": name, "host": LOOPBACK}
        self.log_path = log_path
        self.grace = grace
        self.proc: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def database_url(self) -> str:
        return self.values.get("database_url", "")

    @property
    def redis_url(self) -> str:
        return self.values.get("redis_url", "")

    def spawn(self) -> None:
        """Start the process without waiting; `wait_healthy` waits (replicas start in parallel)."""
        argv, extra_env = self.app.render(self.values)
        env = {**os.environ, **extra_env, "PYTHONUNBUFFERED": "1"}
        self.proc = ChildProcess(self.name, argv, self.log_path, env=env, cwd=self.app.cwd,
                                 kill_policy=KillPolicy(grace=self.grace))
        self.proc.start()

    def wait_healthy(self, deadline: float) -> None:
        self.proc.wait_ready(lambda: http_status(self.url + self.app.health_path, 0.5) == 200,
                             deadline, f"healthy at {self.app.health_path}")

    def ready(self) -> bool:
        path = self.app.ready_path or self.app.health_path
        try:
            return http_status(self.url + path, 1.0) == 200
        except OSError:
            return False
