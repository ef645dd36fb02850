"""The fault proxy process (chaos.proxy, Toxiproxy-compatible) and the proxies the
stack needs in it: one per replica per dependency, so a fault can hit one replica."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from harness.ports import LOOPBACK
from harness.process import ChildProcess, KillPolicy, StartError
from harness.servers.base import Server


class FaultProxyServer(Server):
    def __init__(self, port: int, log_path: Path) -> None:
        self.name = "faultproxy"
        self.port = port
        self.log_path = log_path
        self.proc: ChildProcess | None = None

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, deadline: float) -> None:
        argv = [sys.executable, "-m", "chaos.proxy", "--host", LOOPBACK, "--port", str(self.port)]
        self.proc = ChildProcess("faultproxy", argv, self.log_path, on_start=self.on_start,
                                 kill_policy=KillPolicy(grace=3.0))
        self.proc.start()
        self.proc.wait_ready(lambda: self._call("GET", "/version")[0] == 200, deadline, "serving its API")

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw and raw[:1] in b"[{" else raw)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw

    def ensure(self, name: str, upstream: str) -> str:
        """Create (or find) proxy `name` to `upstream`; return its listen address."""
        status, body = self._call("POST", "/proxies", {"name": name, "listen": f"{LOOPBACK}:0",
                                                       "upstream": upstream, "enabled": True})
        if status == 409:
            status, body = self._call("GET", f"/proxies/{name}")
        if status not in (200, 201) or not isinstance(body, dict):
            raise StartError(f"fault proxy: cannot create {name}: {status} {body!r}")
        return body["listen"]

    def remove(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def describe(self) -> list[dict]:
        if not self.alive():
            return []
        try:
            status, body = self._call("GET", "/proxies")
        except OSError:
            return []
        if status != 200 or not isinstance(body, dict):
            return []
        return [{"name": p["name"], "listen": p["listen"], "upstream": p["upstream"], "enabled": p["enabled"]}
                for p in sorted(body.values(), key=lambda p: p["name"])]
