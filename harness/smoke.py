"""`gauntlet smoke`: does a notification published on one replica reach every other?

Subscribers connect directly to each replica (so every replica has some, whatever the
load-balancing strategy), notifications are published through the load balancer, and
the result is a table of delivered / lost / duplicated per (publisher instance →
subscriber instance) pair.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import websockets

from harness.state import StackState
from harness.tokens import user_token


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


@dataclass
class _Subscriber:
    user: str
    instance: str
    seen: Counter = field(default_factory=Counter)


def _publish(state: StackState, user: str, key: str, timeout: float) -> tuple[str, int]:
    body = json.dumps({"user": user, "data": {"key": key, "sent_ts": time.time()}}).encode()
    req = urllib.request.Request(
        f"{state.lb_url}/api/notifications", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {state.publisher_key}"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
        return reply["instance"], reply["id"]


async def _run(state: StackState, messages: int, per_replica: int, timeout: float) -> SmokeResult:
    replicas = [r for r in state.replicas if r.status != "exited"]
    subs: list[_Subscriber] = []
    sockets = []
    result = SmokeResult()
    try:
        for r in replicas:
            for k in range(per_replica):
                user = f"smoke-{r.name}-{k}"
                ws_url = r.url.replace("http://", "ws://") + f"/ws?token={user_token(state.secret, user)}"
                ws = await asyncio.wait_for(websockets.connect(ws_url, open_timeout=timeout), timeout)
                init = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                subs.append(_Subscriber(user, init.get("instance", r.name)))
                sockets.append(ws)

        async def listen(sub: _Subscriber, ws) -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "notification":
                    sub.seen[frame["data"].get("key")] += 1

        listeners = [asyncio.create_task(listen(s, w)) for s, w in zip(subs, sockets)]
        expected: dict[str, tuple[str, _Subscriber]] = {}
        for i in range(messages):
            target = subs[i % len(subs)]
            key = f"smoke-{i}"
            try:
                origin, _ = await asyncio.to_thread(_publish, state, target.user, key, timeout)
            except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
                result.publish_failures.append(f"{key}: {exc}")
                continue
            result.published += 1
            expected[key] = (origin, target)
        # Wait (bounded) until everything expected has arrived.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(s.seen[k] == 0 for k, (_, s) in expected.items()):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # a duplicate would arrive right behind the original
        for t in listeners:
            t.cancel()
        for key, (origin, sub) in expected.items():
            pair = result.pairs.setdefault((origin, sub.instance), PairCounts())
            pair.expected += 1
            count = sub.seen[key]
            pair.delivered += 1 if count else 0
            pair.duplicated += max(0, count - 1)
        return result
    finally:
        for ws in sockets:
            await ws.close()


def run_smoke(state: StackState, messages: int = 30, per_replica: int = 2, timeout: float = 5.0) -> SmokeResult:
    if messages < 1:
        raise ValueError("--messages must be at least 1")
    return asyncio.run(_run(state, messages, per_replica, timeout))
