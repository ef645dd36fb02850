"""Helpers for fault tests: a small custom app, routing probes, WebSocket subscribers."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import websocket

from chaos.faults import CATALOGUE
from harness.tokens import user_token
from tests.support import TINY, wait_for

# TINY and wait_for are shared helpers, re-exported for the fault tests.
__all__ = ["TINY", "Prober", "Subscriber", "broadcast", "build", "get", "served_by", "wait_for"]


def get(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    """(status, json body); status 0 when nothing answered (refused, reset, timeout)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


def served_by(lb_url: str, n: int, path: str = "/whoami") -> Counter:
    """Which replicas answer `n` requests through the load balancer ('' = a failed request)."""
    seen = Counter()
    for _ in range(n):
        status, body = get(lb_url + path)
        seen[body.get("instance", "") if status == 200 else ""] += 1
    return seen


def build(kind: str, target: str, handle, **params):
    """A fault of the catalogue, built against the handle's current topology."""
    return CATALOGUE[kind].build(target, params, handle.topology())


class Prober:
    """Hits a URL continuously in a thread and counts answers: does the stack keep serving?"""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.url = url
        self.timeout = timeout
        self.ok = 0
        self.failures: list[str] = []
        self.instances: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, body = get(self.url, self.timeout)
            if status == 200:
                self.ok += 1
                self.instances[body.get("instance", "?")] += 1
            else:
                self.failures.append(f"{time.strftime('%H:%M:%S')} status {status}")
            time.sleep(0.02)

    def __enter__(self) -> "Prober":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


class Subscriber:
    """A WebSocket subscriber connected straight to one replica, recording message keys."""

    def __init__(self, replica_url: str, secret: str, user: str) -> None:
        url = replica_url.replace("http://", "ws://") + f"/ws?token={user_token(secret, user)}"
        self.ws = websocket.create_connection(url, timeout=5)
        init = json.loads(self.ws.recv())
        self.instance = init["instance"]
        self.seen: Counter = Counter()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self.ws.settimeout(0.5)
        while True:
            try:
                frame = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError, ValueError):
                return
            if frame.get("type") == "notification":
                with self._lock:
                    self.seen[(frame.get("data") or {}).get("key")] += 1

    def keys(self) -> Counter:
        with self._lock:
            return Counter(self.seen)

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except (websocket.WebSocketException, OSError):
            pass
        self._thread.join(5)


def broadcast(lb_url: str, publisher_key: str, key: str, timeout: float = 5.0) -> tuple[int, float]:
    """POST /api/broadcast; (status, seconds taken), status 0 when nothing answered in time."""
    body = json.dumps({"data": {"key": key, "sent_ts": time.time()}}).encode()
    req = urllib.request.Request(f"{lb_url}/api/broadcast", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {publisher_key}"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, time.monotonic() - t0
    except urllib.error.HTTPError as exc:
        return exc.code, time.monotonic() - t0
    except OSError:
        return 0, time.monotonic() - t0
