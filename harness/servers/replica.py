"""One replica of the app under test, started from the app's command template."""

from __future__ import annotations

import json
import os
import socket
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


def answers_2xx(url: str, timeout: float = 1.0) -> bool:
    """Any 2xx is healthy: apps answer a health route with 200, 204 or 202 alike."""
    return 200 <= http_status(url, timeout) < 300


def accepts_tcp(host: str, port: int, timeout: float = 0.5) -> bool:
    """The port accepts a connection: the health check of an app without a health route."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def holds_tcp(host: str, port: int, timeout: float = 0.5, linger: float = 0.3) -> bool:
    """The connection is accepted and stays open: through a forwarding proxy (Docker's
    published ports) a connect succeeds even when nothing listens behind it, and the
    proxy then closes it at once."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(linger)
            try:
                return sock.recv(1) != b""  # a server that speaks first is up too
            except (TimeoutError, socket.timeout):
                return True
    except OSError:
        return False


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
                                 on_start=self.on_start, kill_policy=KillPolicy(grace=self.grace))
        self.proc.start()

    @property
    def health_label(self) -> str:
        return f"accepting TCP on :{self.port}" if self.app.health == "tcp" else f"healthy at {self.app.health_path}"

    def healthy(self, timeout: float = 0.5) -> bool:
        if self.app.health == "tcp":
            return accepts_tcp(LOOPBACK, self.port, timeout)
        try:
            return answers_2xx(self.url + self.app.health_path, timeout)
        except OSError:
            return False

    def wait_healthy(self, deadline: float) -> None:
        self.proc.wait_ready(self.healthy, deadline, self.health_label)

    def ready(self) -> bool:
        if not self.app.ready_path:
            return self.healthy(1.0)
        try:
            return answers_2xx(self.url + self.app.ready_path, 1.0)
        except OSError:
            return False
