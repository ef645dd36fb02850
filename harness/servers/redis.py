"""A Redis server child on a loopback port, with an append-only file so a crash fault
restarts it with its data (streams survive; pub/sub has nothing to keep)."""

from __future__ import annotations

import socket
from pathlib import Path

from harness.ports import LOOPBACK
from harness.process import ChildProcess, KillPolicy
from harness.servers.base import Server, which


def redis_ping(port: int, timeout: float = 0.5) -> bool:
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


class RedisServer(Server):
    def __init__(self, root: Path, port: int, log_path: Path) -> None:
        self.name = "redis"
        self.root = root
        self.port = port
        self.log_path = log_path
        self.binary = which("redis-server", "redis-server")
        self.proc: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def url_via(self, host_port: str) -> str:
        return f"redis://{host_port}/0"

    def start(self, deadline: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.root),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--protected-mode", "no", "--maxclients", "10000", "--loglevel", "warning",
            "--daemonize", "no",
        ]
        self.proc = ChildProcess("redis", argv, self.log_path, cwd=self.root, kill_policy=KillPolicy(grace=3.0))
        self.proc.start()
        self.proc.wait_ready(lambda: redis_ping(self.port), deadline, "answering PING")
