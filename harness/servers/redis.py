"""A Redis server child on a loopback port. With persistence `aof` (the default) it writes
an append-only file, so a crash fault restarts it with its data (streams survive; pub/sub
has nothing to keep); with `none` it keeps nothing, and a crash restarts it empty.

Clients need the password the recipe generates (`requirepass`, in a config file only
the owner reads, never on the command line); the app gets it in its `{redis_url}`."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from pathlib import Path

from harness.ports import LOOPBACK
from harness.process import ChildProcess, KillPolicy
from harness.servers.base import Server, which


def redis_ping(port: int, password: str = "", timeout: float = 0.5) -> bool:
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        expect = b"+PONG"
        if password:
            sock.sendall(_command("AUTH", password))
            expect = b"+OK\r\n+PONG"
        sock.sendall(b"PING\r\n")
        reply = b""
        while len(reply) < len(expect) and not reply.startswith(b"-"):
            chunk = sock.recv(64)
            if not chunk:
                break
            reply += chunk
        return reply.startswith(expect)


def _command(*parts: str) -> bytes:
    """One command in RESP, so a password with spaces or quotes stays one argument."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisServer(Server):
    def __init__(self, root: Path, port: int, log_path: Path, *, password: str | None = None,
                 persistence: str = "aof") -> None:
        self.name = "redis"
        self.password = password or secrets.token_hex(16)
        self.root = root
        self.port = port
        self.log_path = log_path
        self.persistence = persistence
        self.binary = which("redis-server", "redis-server")
        self.proc: ChildProcess | None = None

    @property
    def url(self) -> str:
        return self.url_via(f"{LOOPBACK}:{self.port}")

    def url_via(self, host_port: str) -> str:
        return f"redis://:{self.password}@{host_port}/0"

    def start(self, deadline: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f'requirepass "{self.password}"\n')
        argv = [
            self.binary, str(conf), "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.root),
            "--save", "", "--appendonly", "yes" if self.persistence == "aof" else "no", "--appendfsync", "everysec",
            "--protected-mode", "no", "--maxclients", "10000", "--loglevel", "warning",
            "--daemonize", "no",
        ]
        self.proc = ChildProcess("redis", argv, self.log_path, cwd=self.root, on_start=self.on_start,
                                 kill_policy=KillPolicy(grace=3.0))
        self.proc.start()
        self.proc.wait_ready(lambda: redis_ping(self.port, self.password), deadline, "answering PING")

    def wipe_data(self) -> None:
        """Remove what a restart would load (append-only file, snapshot): it comes back empty.
        Only for a server that is not running; the directory itself stays."""
        if self.alive():
            raise RuntimeError("redis: refusing to remove the data of a running server")
        for name in ("appendonlydir", "appendonly.aof", "dump.rdb"):
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
