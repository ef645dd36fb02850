"""Helpers for the load tests.

- Locust as a child process: never imported here, because importing it monkey-patches
  the test process with gevent; its own session, killed by process group at the
  deadline, output to a log file.
- Tiny real servers for the adapter tests, each on its own asyncio loop in a thread: a
  plain JSON-over-WebSocket service and a Socket.IO service (python-socketio on
  aiohttp). Both fan messages out to the sockets of a user, keep a history for resume
  and say which instance served a request, like a small realtime app would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio
from aiohttp import WSMsgType, web

from harness.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


# -- Locust in a child process -------------------------------------------------------------


@dataclass
class LocustResult:
    returncode: int
    log: str
    run_dir: Path

    def records(self, worker: str = "w0") -> Path:
        return self.run_dir / "records" / worker


def start_locust(args: list[str], cwd: Path, env: dict[str, str] | None, log, scenario: str = "ramp.py"):
    """Start `locust -f scenarios/<scenario> <args>` in its own session (the caller reaps it)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("GAUNTLET_RUN_DIR", None)
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / scenario), *args]
    if "--run-dir" not in args:
        cmd += ["--run-dir", str(cwd / "run")]
    return subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def run_locust(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 90.0,
               scenario: str = "ramp.py", log_name: str = "locust.log", signal_after: tuple[float, int] | None = None
               ) -> LocustResult:
    """Run locust to completion (or kill it at the deadline). `signal_after=(seconds, sig)`
    sends `sig` to its process group first, as Ctrl-C in a terminal or a supervisor would."""
    log_path = cwd / log_name
    run_dir = cwd / "run"
    with open(log_path, "wb") as log:
        proc = start_locust(args, cwd, env, log, scenario)
        try:
            if signal_after is not None:
                try:
                    proc.wait(timeout=signal_after[0])
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal_after[1])
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError(f"locust did not finish within {timeout}s; log:\n{log_path.read_text()[-3000:]}")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    return LocustResult(code, log_path.read_text(errors="replace"), run_dir)


@dataclass
class History:
    items: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0

    def add(self, user: str | None, payload: Any) -> dict[str, Any]:
        self.seq += 1
        item = {"seq": self.seq, "to": user, "payload": payload}
        self.items.append(item)
        return item

    def after(self, user: str, since: int) -> list[dict[str, Any]]:
        return [i for i in self.items if i["seq"] > since and i["to"] in (user, None)]


class ThreadedServer:
    """An aiohttp app on 127.0.0.1 in a background thread; stop() always joins it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.before_cleanup()
            await runner.cleanup()
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def before_cleanup(self) -> None:
        pass

    def start(self) -> "ThreadedServer":
        self._thread.start()
        if not self._ready.wait(10) or self.error:
            raise RuntimeError(f"test server did not start: {self.error}")
        return self

    def call(self, coro_fn, timeout: float = 5.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(timeout)

    def stop(self) -> None:
        if self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class JsonWsServer(ThreadedServer):
    """`/stream?token=` -> {"kind":"hello","server","seq"} then {"kind":"event",...}."""

    def __init__(self, name: str = "s1") -> None:
        super().__init__()
        self.name = name
        self.history = History()
        self.sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.resumes: list[tuple[str, int]] = []
        self.subscribed: list[tuple[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stream", self.stream)
        app.router.add_post("/publish", self.publish)
        app.router.add_post("/publish-all", self.publish_all)
        return app

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        token = request.query.get("token", "")
        user = token.split(".", 1)[0]
        if not user:
            await ws.close(code=4401, message=b"no token")
            return ws
        self.sockets.setdefault(user, set()).add(ws)
        recent = [self._event(i) for i in self.history.after(user, 0)[-2:]]
        await ws.send_json({"kind": "hello", "server": self.name, "seq": self.history.seq, "recent": recent})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    if frame.get("op") == "sub":
                        await self._subscribe(ws, user, frame)
                    elif frame.get("op") == "resume":
                        self.resumes.append((user, frame["since"]))
                        for item in self.history.after(user, frame["since"]):
                            await ws.send_json(self._event(item, replay=True))
        finally:
            self.sockets[user].discard(ws)
        return ws

    async def _subscribe(self, ws: web.WebSocketResponse, user: str, frame: dict[str, Any]) -> None:
        """`{"op":"sub","to":channel}`: an event may overtake the confirmation, as on a busy
        server; `banned` is refused, `mute` gets no answer."""
        channel = frame.get("to", "")
        self.subscribed.append((user, channel))
        if channel == "banned":
            await ws.send_json({"kind": "error", "reason": "not allowed"})
            return
        if channel == "mute":
            return
        self.sockets.setdefault(channel, set()).add(ws)
        await ws.send_json(self._event({"seq": 0, "to": channel, "payload": {"key": "early", "sent_ts": 1.0}}))
        await ws.send_json({"kind": "subbed", "to": channel})

    def _event(self, item: dict[str, Any], replay: bool = False) -> dict[str, Any]:
        frame = {"kind": "event", "seq": item["seq"], "to": item["to"], "from": self.name, "payload": item["payload"]}
        if replay:
            frame["replayed"] = True
        return frame

    async def publish(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Key pk":
            return web.json_response({"error": "no"}, status=401)
        body = await request.json()
        item = self.history.add(body["to"], body["payload"])
        for ws in list(self.sockets.get(body["to"], ())):
            await ws.send_json(self._event(item))
        return web.json_response({"seq": item["seq"], "server": self.name}, status=202)

    async def publish_all(self, request: web.Request) -> web.Response:
        body = await request.json()
        item = self.history.add(None, body["payload"])
        for sockets in self.sockets.values():
            for ws in list(sockets):
                await ws.send_json(self._event(item))
        return web.json_response({"seq": item["seq"]}, status=201, headers={"X-Served-By": self.name})

    async def drop_all(self) -> None:
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1012, message=b"restart")


class SocketIoServer(ThreadedServer):
    """Socket.IO: auth {"token"} on connect, rooms per user, "init" and "notification"
    events, a "resume" event, and an HTTP publish endpoint."""

    def __init__(self, name: str = "io1", rooms_by_event: bool = False) -> None:
        super().__init__()
        self.name = name
        self.history = History()
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=[])
        self.users: dict[str, str] = {}
        self.subscribed: list[tuple[Any, ...]] = []
        sio = self.sio

        @sio.on("subscribe")
        async def subscribe(sid, *args):
            """A room per `subscribe` emit (rooms_by_event), acked `{"ok": true}`;
            room `banned` is refused with `{"ok": false, "error": ...}`, `mute` never acked."""
            self.subscribed.append(args)
            room = args[0] if args else ""
            if room == "banned":
                return {"ok": False, "error": "not allowed"}
            if room == "mute":
                await asyncio.sleep(30)
                return None
            await sio.enter_room(sid, room)
            return {"ok": True, "room": room}

        @sio.event
        async def connect(sid, environ, auth):
            token = (auth or {}).get("token", "")
            user = token.split(".", 1)[0]
            if not user:
                raise socketio.exceptions.ConnectionRefusedError("bad token")
            self.users[sid] = user
            if not rooms_by_event:
                await sio.enter_room(sid, user)
            await sio.emit("init", {"instance": self.name, "last_id": self.history.seq}, to=sid)

        @sio.event
        async def disconnect(sid, *args):
            self.users.pop(sid, None)

        @sio.on("resume")
        async def resume(sid, data):
            user = self.users.get(sid, "")
            for item in self.history.after(user, int(data["after"])):
                await sio.emit("notification", self._frame(item, replay=True), to=sid)

    def _frame(self, item: dict[str, Any], replay: bool = False) -> dict[str, Any]:
        return {"id": item["seq"], "user": item["to"], "origin": self.name, "data": item["payload"],
                "replay": replay}

    def app(self) -> web.Application:
        app = web.Application()
        self.sio.attach(app)
        app.router.add_post("/api/notifications", self.publish)
        return app

    async def publish(self, request: web.Request) -> web.Response:
        body = await request.json()
        item = self.history.add(body["user"], body["data"])
        await self.sio.emit("notification", self._frame(item), room=body["user"])
        return web.json_response({"id": item["seq"], "instance": self.name}, status=201)

    async def drop_all(self) -> None:
        for sid in list(self.users):
            await self.sio.disconnect(sid)

    async def before_cleanup(self) -> None:
        await self.drop_all()


# -- settings without Locust --------------------------------------------------------------


def make_settings(*argv: str):
    from scenarios.settings import parse_args

    return parse_args(list(argv))
