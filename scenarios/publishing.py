"""Open-model publishing: sends leave on schedule whatever the server does.

A closed loop (send, wait for the answer, send again) slows down exactly when the
system stalls, so the stall never shows in the numbers (coordinated omission). Here
each send is scheduled at `start + n / rate`, and the schedule never waits for an
answer: a send still waiting when the next slot comes leaves the schedule to another
greenlet. In-flight sends are bounded: past the bound a send is recorded as `fail`
with error `overload` instead of delaying the schedule.

Every attempt gets exactly one pub.csv row and one outcome (Jepsen's ok / fail /
info): `ok` on 2xx; `fail` when the request certainly had no effect (refused before
sending, 4xx, overload); `unknown` when it may have (timeout, connection lost after
sending, 5xx from the proxy or the app, interrupted at shutdown).
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import gevent
from gevent.pool import Group

from scenarios.adapters.base import AdapterError, TargetAdapter, replica_from
from scenarios.payload import padded
from scenarios.process import LoadProcess

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
OVERLOAD = "overload"
# Errors raised before a single byte of the request could reach the server.
NOT_SENT = (ConnectionRefusedError, socket.gaierror)


@dataclass(frozen=True)
class Outcome:
    outcome: str
    status: int | None
    id: int | None
    instance: str
    error: str


def classify(status: int, error: BaseException | None, adapter: TargetAdapter, headers: Any, body: bytes) -> Outcome:
    """Turn one HTTP exchange into a publish outcome."""
    if status and status > 0:
        if 200 <= status < 300:
            ack = adapter.parse_ack(status, headers, body)
            return Outcome(OK if ack.ok else FAIL, status, ack.id, ack.instance, ack.error)
        instance = ""
        try:
            instance = headers.get("X-Instance") or headers.get("x-instance") or replica_from(headers)
        except AttributeError:
            pass
        # 4xx: the request was refused as such. 5xx: the app or the proxy failed somewhere,
        # possibly after the message was stored, so its fate is unknown.
        return Outcome(FAIL if status < 500 else UNKNOWN, status, None, instance, f"HTTP {status}")
    if isinstance(error, NOT_SENT):
        return Outcome(FAIL, None, None, "", f"{type(error).__name__}: {error}"[:200])
    name = type(error).__name__ if error else "no response"
    return Outcome(UNKNOWN, None, None, "", f"{name}: {error}"[:200] if error else name)


HEAL_POLL_S = 0.2


def heals(journal: Any) -> list[str]:
    """Ids of the faults the journal says have healed (an `end` time), in order."""
    try:
        text = journal.read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if isinstance(record, dict) and record.get("end") is not None and record.get("id"):
            out.append(str(record["id"]))
    return out


def json_body(body: Any) -> bytes:
    """The request body as UTF-8 JSON, as browsers send it: multibyte text travels as
    itself, not as \\u escapes (which would hide a server's byte/character confusion)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class OpenModelPublisher:
    """One publisher user's schedule and in-flight sends.

    The greenlet that owns the schedule sends inline (no greenlet per request, which
    costs a third of the CPU of a request) and arms a timer for the next slot. If its
    send is still waiting for an answer when the slot comes, the timer hands the
    schedule to a new greenlet, so a slow answer never delays the next send.
    """

    def __init__(self, proc: LoadProcess, client: Any, fire: Callable[..., None]) -> None:
        s = proc.settings
        self.proc = proc
        self.client = client
        self.rng = proc.rng()
        self.rate = s.publish_rate
        self.broadcast_ratio = s.broadcast_ratio
        self.max_inflight = s.max_inflight
        self.timeout = s.publish_timeout
        self.payload = s.payload_size
        self.heal_burst = s.heal_burst
        self._watcher: gevent.Greenlet | None = None
        self.schedulers = Group()  # the schedule's owner and greenlets finishing a send
        self.sending = 0
        self._fire = fire
        self._tokens = itertools.count(1)
        self._owner = 0
        self._next_t = 0.0
        self._interval = 0.0

    def run(self) -> None:
        """Start the schedule; returns only by being killed (user stop)."""
        if self.rate > 0:
            self._interval = 1.0 / self.rate
            # A random phase, so that publishers started together do not send together.
            self._next_t = time.time() + self.rng.uniform(0, self._interval)
            self._owner = next(self._tokens)
            self.schedulers.spawn(self._schedule, self._owner)
        if self.heal_burst > 0:
            self._watcher = gevent.spawn(self._bursts_at_heals)
        while True:
            gevent.sleep(3600)

    def _bursts_at_heals(self) -> None:
        """At each fault's heal (a new heal line in the run's fault journal), send
        --heal-burst messages at once: the moment a broker reconnects and catches up is
        when a live frame races the catch-up. Bounded by --max-inflight like the rest."""
        journal = self.proc.recorder.directory.parent.parent / "faults.jsonl"
        healed: set[str] = set(heals(journal))  # heals before this publisher started are not its moment
        while True:
            gevent.sleep(HEAL_POLL_S)
            for fault_id in heals(journal):
                if fault_id in healed:
                    continue
                healed.add(fault_id)
                now = time.time()
                for _ in range(self.heal_burst):
                    if self.sending >= self.max_inflight:
                        self._overload(now)
                    else:
                        self.schedulers.spawn(self._send, now)

    def _schedule(self, token: int) -> None:
        loop = gevent.get_hub().loop
        while True:
            now = time.time()
            if self._next_t > now:
                gevent.sleep(self._next_t - now)
            if self._owner != token:
                return
            intended = self._next_t
            self._next_t += self._interval
            if self.sending >= self.max_inflight:
                self._overload(intended)
                if self._next_t <= time.time():
                    gevent.sleep(0)  # behind schedule: let the sends and the rest run
                continue
            timer = loop.timer(max(0.0, self._next_t - time.time()))
            timer.start(self._hand_over, token)
            try:
                self._send(intended)
            finally:
                timer.stop()
                timer.close()
            if self._owner != token:
                return  # the schedule moved on while this send waited

    def _hand_over(self, token: int) -> None:
        # A hub callback: must not block, so it only starts the next owner.
        if self._owner == token:
            self._owner = next(self._tokens)
            self.schedulers.spawn(self._schedule, self._owner)

    def drain(self, grace: float) -> None:
        """At stop: no new sends; in-flight ones get `grace` s, the rest end as unknown."""
        self._owner = -1
        if self._watcher is not None:
            self._watcher.kill(block=False)
        self.schedulers.join(timeout=grace)
        self.schedulers.kill(block=True, timeout=5)

    def _target(self) -> str | None:
        if self.broadcast_ratio > 0 and self.rng.random() < self.broadcast_ratio:
            return None
        return f"u{self.rng.randrange(self.proc.addressable_users())}"

    def _overload(self, intended: float) -> None:
        proc = self.proc
        user = self._target()
        proc.recorder.pub((proc.next_key(), "broadcast" if user is None else "user", user, intended, None, None,
                           FAIL, None, None, None, OVERLOAD))
        self._fire(request_type="PUB", name="publish overload", response_time=0, response_length=0,
                   exception=RuntimeError(f"{self.max_inflight} publishes in flight"), context={})

    def _send(self, intended: float) -> None:
        proc = self.proc
        key = proc.next_key()
        user = self._target()
        kind = "broadcast" if user is None else "user"
        sent = time.time()
        try:
            data: dict[str, Any] = {"key": key, "sent_ts": sent}
            if self.payload is not None:
                data = padded(data, self.payload.draw(self.rng), self.rng)
            req = proc.adapter.publish_request(user, data)
        except AdapterError as exc:
            proc.recorder.pub((key, kind, user, intended, None, None, FAIL, None, None, None, str(exc)[:200]))
            return
        outcome: Outcome | None = None
        self.sending += 1
        try:
            response = self.client.request(req.method, req.path, data=json_body(req.body),
                                           headers={**JSON_HEADERS, **req.headers}, name=req.name or req.path)
            error = getattr(response, "error", None)
            status = getattr(response, "status_code", 0) or 0
            body = b""
            if status:
                try:
                    body = response.content or b""
                except Exception as exc:  # the body was cut off: the server did answer
                    error = exc
            outcome = classify(status, error, proc.adapter, response.headers if status else {}, body)
        except gevent.GreenletExit:
            outcome = Outcome(UNKNOWN, None, None, "", "interrupted: load generator stopping")
            raise
        except Exception as exc:
            outcome = classify(0, exc, proc.adapter, {}, b"")
        finally:
            self.sending -= 1
            ack_ts = time.time() if outcome is not None and outcome.status else None
            if outcome is None:
                outcome = Outcome(UNKNOWN, None, None, "", "interrupted")
            if outcome.id is not None and outcome.id > proc.last_id:
                proc.last_id = outcome.id
            proc.recorder.pub((key, kind, user, intended, sent, ack_ts, outcome.outcome, outcome.status,
                               outcome.id, outcome.instance or None, outcome.error or None))
