"""`gauntlet smoke`: does a notification published on one replica reach every other?

Subscribers connect directly to each replica (so every replica has some, whatever the
load-balancing strategy), and notifications are published to each replica in turn, so
the publishing and the receiving replica are known for any app, whether or not it says
which instance it is. The result is a table of delivered / lost / duplicated per
(publisher instance → subscriber instance) pair. Clients speak the app's protocol: the
adapter of the project config's [load] table (the one the stack was brought up with,
or --config), the reference protocol by default.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from common.state import ReplicaState, StackState
from scenarios.adapters import AdapterError, ConnectFailed, Connection, Disconnected, Endpoint, make_adapter
from scenarios.config import LoadConfig
from scenarios.target import ws_url_for


@dataclass
class PairCounts:
    expected: int = 0
    delivered: int = 0
    duplicated: int = 0

    @property
    def lost(self) -> int:
        return self.expected - self.delivered


@dataclass
class SmokeResult:
    pairs: dict[tuple[str, str], PairCounts] = field(default_factory=dict)
    published: int = 0
    publish_failures: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return sum(p.lost for p in self.pairs.values())

    @property
    def duplicated(self) -> int:
        return sum(p.duplicated for p in self.pairs.values())

    @property
    def ok(self) -> bool:
        return self.published > 0 and self.lost == 0 and self.duplicated == 0 and not self.publish_failures

    def table(self) -> str:
        rows = [("publisher → subscriber", "expected", "delivered", "lost", "duplicated")]
        for (pub, sub), c in sorted(self.pairs.items()):
            rows.append((f"{pub} → {sub}", str(c.expected), str(c.delivered), str(c.lost), str(c.duplicated)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        verdict = "PASS" if self.ok else "FAIL"
        lines.append(f"{verdict}: {self.published} published, {self.lost} lost, {self.duplicated} duplicated"
                     + (f", {len(self.publish_failures)} publish failures" if self.publish_failures else ""))
        return "\n".join(lines)


class _Subscriber:
    """One socket on a known replica, read by its own thread until closed."""

    def __init__(self, user: str, instance: str, conn: Connection) -> None:
        self.user = user
        self.instance = instance
        self.conn = conn
        self.seen: Counter = Counter()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._listen, name=f"smoke-{user}", daemon=True)

    def _listen(self) -> None:
        while True:
            try:
                delivery = self.conn.receive()
            except Disconnected:
                return
            except Exception:  # a frame the adapter cannot read ends this listener, not the smoke
                return
            if delivery is not None and delivery.key:
                with self._lock:
                    self.seen[delivery.key] += 1

    def count(self, key: str) -> int:
        with self._lock:
            return self.seen[key]


def _endpoint(state: StackState, replica: ReplicaState) -> Endpoint:
    return Endpoint(replica.url, ws_url_for(replica.url), state.secret, state.publisher_key)


def _publish(adapter, base_url: str, user: str, key: str, timeout: float) -> None:
    """One publish through the adapter's request; raises OSError/ValueError when it is not acked."""
    req = adapter.publish_request(user, {"key": key, "sent_ts": time.time()})
    url = req.path if req.path.startswith(("http://", "https://")) else base_url + req.path
    http = urllib.request.Request(url, data=json.dumps(req.body).encode(), method=req.method,
                                  headers={"Content-Type": "application/json", **dict(req.headers)})
    try:
        with urllib.request.urlopen(http, timeout=timeout) as resp:
            ack = adapter.parse_ack(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        ack = adapter.parse_ack(exc.code, exc.headers, exc.read())
    if not ack.ok:
        raise ValueError(ack.error or "not acknowledged")


def run_smoke(state: StackState, messages: int = 30, per_replica: int = 2, timeout: float = 5.0,
              config: LoadConfig | None = None) -> SmokeResult:
    """Raises ValueError for bad arguments, AdapterError for unusable adapter settings."""
    if messages < 1:
        raise ValueError("--messages must be at least 1")
    config = config or LoadConfig()
    replicas = [r for r in state.replicas if r.status != "exited"]
    adapters = {r.name: make_adapter(config.adapter, _endpoint(state, r), config.adapter_settings)
                for r in replicas}
    subs: list[_Subscriber] = []
    result = SmokeResult()
    try:
        for r in replicas:
            for k in range(per_replica):
                user = f"smoke-{r.name}-{k}"
                try:
                    conn = adapters[r.name].connect(user, timeout)
                except ConnectFailed as exc:
                    raise ConnectFailed(f"{r.name}: {user} could not connect: {exc.reason}", exc.code) from None
                sub = _Subscriber(user, r.name, conn)
                sub.thread.start()
                subs.append(sub)
        expected: dict[str, tuple[str, _Subscriber]] = {}
        for i in range(messages):
            target = subs[i % len(subs)]
            # Each replica publishes in turn, so every pair gets messages whatever the LB does.
            origin = replicas[(i // len(subs)) % len(replicas)]
            key = f"smoke-{i}"
            try:
                _publish(adapters[origin.name], origin.url, target.user, key, timeout)
            except (OSError, ValueError, AdapterError) as exc:
                result.publish_failures.append(f"{key} via {origin.name}: {exc}")
                continue
            result.published += 1
            expected[key] = (origin.name, target)
        # Wait (bounded) until everything expected has arrived.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(s.count(k) == 0 for k, (_, s) in expected.items()):
            time.sleep(0.05)
        time.sleep(0.2)  # a duplicate would arrive right behind the original
        for key, (origin, sub) in expected.items():
            pair = result.pairs.setdefault((origin, sub.instance), PairCounts())
            pair.expected += 1
            count = sub.count(key)
            pair.delivered += 1 if count else 0
            pair.duplicated += max(0, count - 1)
        return result
    finally:
        for sub in subs:
            sub.conn.close()
        for sub in subs:
            sub.thread.join(timeout=5)
