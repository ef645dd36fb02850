"""Helpers for the reference SUT's tests: replica processes, HTTP and WebSocket clients,
and a TCP gate that can cut one replica off from a dependency.

Every wait has a deadline; every process started here is reaped by its fixture.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from harness.ports import LOOPBACK, free_port
from harness.tokens import user_token

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret"
PUBLISHER_KEY = "test-publisher-key"


# ---------------------------------------------------------------- replica processes


@dataclass
class SutProcess:
    """One `python -m sut` child in its own session, output in a log file."""

    instance: str
    port: int
    log_path: Path
    argv: list[str]
    env: dict[str, str]
    popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def ws_url(self, user: str, token: str | None = None) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws?token={token if token is not None else user_token(SECRET, user)}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=ROOT, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"{self.instance} exited ({self.popen.returncode}) before {what}:\n"
                                     f"{self.log_text()[-3000:]}")
            try:
                if check():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.instance} not {what} within {timeout}s:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)

    def wait_healthy(self, timeout: float = 15.0) -> None:
        self.wait_until(lambda: http(self.url + "/api/health", timeout=1.0)[0] == 200, timeout, "healthy")

    def wait_ready(self, timeout: float = 15.0) -> None:
        self.wait_until(lambda: http(self.url + "/api/ready", timeout=2.0)[0] == 200, timeout, "ready")

    def metrics(self) -> dict[str, Any]:
        status, _, body = http(self.url + "/api/metrics")
        assert status == 200, body
        return body

    def signal(self, signum: int) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signum)
            except ProcessLookupError:
                pass

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """TERM, a short grace, then KILL the whole group; always reaps."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            if self.wait_exit(8.0) is None:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout=5)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class SutFactory:
    """Starts replicas for one test and stops every one of them afterwards."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[SutProcess] = []

    def spawn(
        self, instance: str, *, broker: str, database_url: str, redis_url: str | None = None,
        defects: str = "", extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
    ) -> SutProcess:
        port = free_port()
        argv = [sys.executable, "-m", "sut", "--port", str(port), "--instance", instance,
                "--broker", broker, "--database-url", database_url, *extra_args]
        if redis_url:
            argv += ["--redis-url", redis_url]
        child_env = {**os.environ, "SUT_SECRET": SECRET, "SUT_PUBLISHER_KEY": PUBLISHER_KEY,
                     "SUT_DEFECTS": defects, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = SutProcess(instance, port, self.log_dir / f"{instance}-{port}.log", argv, child_env)
        self.started.append(proc)
        proc.start()
        return proc

    def start(self, instance: str, **kwargs: Any) -> SutProcess:
        proc = self.spawn(instance, **kwargs)
        proc.wait_ready()
        return proc

    def start_many(self, names: list[str], **kwargs: Any) -> list[SutProcess]:
        procs = [self.spawn(name, **kwargs) for name in names]  # in parallel: they race on the schema
        for proc in procs:
            proc.wait_ready()
        return procs

    def stop_all(self) -> None:
        # TERM everyone first so the replicas shut down in parallel, then reap each.
        for proc in self.started:
            proc.signal(signal.SIGTERM)
        for proc in reversed(self.started):
            proc.stop()


# ---------------------------------------------------------------- HTTP


def http(
    url: str, method: str = "GET", body: Any = None, *, headers: dict[str, str] | None = None,
    raw: bytes | None = None, timeout: float = 10.0,
) -> tuple[int, dict[str, str], Any]:
    """(status, lower-cased headers, parsed JSON or None) for any status."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, head, payload = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, head, payload = exc.code, exc.headers, exc.read()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return status, {k.lower(): v for k, v in head.items()}, parsed


def publisher_headers(key: str = PUBLISHER_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def publish(base_url: str, user: str | None, data: dict[str, Any], timeout: float = 10.0) -> tuple[int, Any]:
    if user is None:
        status, _, body = http(base_url + "/api/broadcast", "POST", {"data": data},
                               headers=publisher_headers(), timeout=timeout)
    else:
        status, _, body = http(base_url + "/api/notifications", "POST", {"user": user, "data": data},
                               headers=publisher_headers(), timeout=timeout)
    return status, body


async def apublish(base_url: str, user: str | None, data: dict[str, Any], timeout: float = 10.0) -> tuple[int, Any]:
    return await asyncio.to_thread(publish, base_url, user, data, timeout)


# ---------------------------------------------------------------- WebSocket


@dataclass
class Subscriber:
    """A WebSocket client that records every frame it receives."""

    url: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    init: dict[str, Any] | None = None
    close_code: int | None = None
    _ws: Any = None
    _task: asyncio.Task | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, timeout: float = 5.0) -> Subscriber:
        self._ws = await asyncio.wait_for(websockets.connect(self.url, open_timeout=timeout), timeout)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for text in self._ws:
                frame = json.loads(text)
                if frame.get("type") == "init" and self.init is None:
                    self.init = frame
                else:
                    self.frames.append(frame)
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self._changed.set()

    @property
    def notifications(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == "notification"]

    def keys(self) -> list[str]:
        return [f["data"].get("key") for f in self.notifications]

    async def wait_for(self, predicate: Callable[[Subscriber], bool], timeout: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                     f"{len(self.frames)} frames, close code {self.close_code}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except asyncio.TimeoutError:
                pass

    async def wait_closed(self, timeout: float) -> int | None:
        await self.wait_for(lambda s: s._task.done(), timeout, "the socket to close")
        return self.close_code

    async def send(self, frame: Any) -> None:
        await self._ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except asyncio.TimeoutError:
                self._task.cancel()


async def subscribe(proc: SutProcess, user: str, timeout: float = 5.0) -> Subscriber:
    sub = await Subscriber(proc.ws_url(user)).connect(timeout)
    await sub.wait_for(lambda s: s.init is not None, timeout, "the init frame")
    return sub


# ---------------------------------------------------------------- TCP gate


class TcpGate:
    """A loopback TCP forwarder that can cut every connection and refuse new ones,
    so a fault hits one replica's link to a dependency and not the others'."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.is_open = True
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpGate:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, self.upstream_port), 2.0)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Close every forwarded connection and refuse new ones until `restore`."""
        self.is_open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.is_open = True

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), 5)
