"""One subscriber: hold a socket, record every message, reconnect and resume.

The subscriber keeps one identity (`sub`) across reconnects; each connection gets a
number (`conn`). Every frame becomes a recv.csv row; every connect, connect failure,
disconnect and resume a conn.csv row. Deliveries also go to Locust's statistics as
`WS deliver same-instance` / `cross-instance` / `replay` with the delivery latency,
so whoever watches the console or the web UI sees fan-out health live.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import gevent

from scenarios.adapters.base import ConnectFailed, Connection, Delivery, Disconnected
from scenarios.process import LoadProcess
from scenarios.reconnect_policy import ReconnectPolicy
from scenarios.resume import ResumePoint
from scenarios.shapes import Shape, describe

DELIVER_SAME = "deliver same-instance"
DELIVER_CROSS = "deliver cross-instance"
DELIVER_REPLAY = "deliver replay"
DELIVER_UNKNOWN = "deliver"
CONNECT = "connect"
# conn.csv detail of a subscriber the load generator stopped while it had no connection
# (a ramp-down, the end of the run): its time without a connection ends here, not at the
# end of the load (reports/subscribers.py).
STOPPED_UNCONNECTED = "stopped by load generator while not connected"
_NO_CONTEXT: dict[str, Any] = {}


class StormRequested(Exception):
    """A reconnect storm asked this subscriber to drop its socket and come straight back."""


class Subscription:
    def __init__(self, proc: LoadProcess, fire: Callable[..., None], shape: Shape | None = None) -> None:
        s = proc.settings
        self.proc = proc
        self.sub = proc.next_sub_id()
        self.slot = proc.slots.take()
        self.user = proc.user_for_slot(self.slot)
        self.rng = proc.rng()
        self.policy = ReconnectPolicy(s.reconnect_cap, s.reconnects_per_minute, self.rng)
        self.resume_point = ResumePoint(s.resume_margin)
        self.conn_no = 0
        self.connection: Connection | None = None
        self.instance = ""
        self._fire = fire
        self._stats = s.ws_stats
        self._padded = s.payload_size is not None
        self._storm = False
        self._storm_delay = 0.0
        self._storm_detail = "reconnect storm"
        self.shape = shape
        self.released = False
        # True from a failed connect or a drop until the next connect.
        self._unconnected = False

    # -- control from other greenlets -------------------------------------------------

    def storm(self, delay: float = 0.0) -> None:
        """Drop the socket now (no close handshake) and reconnect after `delay`."""
        self._storm_detail = "reconnect storm"
        self._storm = True
        self._storm_delay = delay
        conn = self.connection
        if conn is not None:
            conn.abort()

    def vanish(self) -> None:
        """Drop the socket without a close frame, as a client that lost its network."""
        if self.connection is None:
            return
        self._storm_detail = "vanished without a close"
        self._storm = True
        self._storm_delay = self.rng.uniform(0.1, 1.0)
        self.connection.abort()

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        """Connect, receive, reconnect; returns only by being killed (user stop)."""
        self.proc.subscriptions.add(self)
        watcher = gevent.spawn(self.shape.watch, self.vanish) if self.shape is not None else None
        try:
            # A big spawn step connects over the tick, not in one instant (connect_pacing.py).
            delay = self.proc.first_connects.delay(self.proc.settings.first_connect_spread, self.rng)
            first = True
            while True:
                if delay > 0:
                    gevent.sleep(delay)
                conn = self._connect()
                if conn is None:
                    delay = self.policy.delay()
                    continue
                if not first:
                    self._catch_up(conn)
                first = False
                started = time.monotonic()
                self._receive(conn)
                self.policy.connected_for(time.monotonic() - started)
                if self._storm:
                    self._storm = False
                    delay = self._storm_delay
                else:
                    delay = self.policy.delay()
        finally:
            if watcher is not None:
                watcher.kill(block=False)
            if self._unconnected:
                self.proc.recorder.conn((time.time(), self.sub, self.user, self.conn_no, "stop", "", None,
                                         STOPPED_UNCONNECTED))
            self.release()

    def _connect(self) -> Connection | None:
        proc = self.proc
        self.policy.attempted()
        t0 = time.time()
        try:
            conn = proc.adapter.connect(self.user, proc.settings.connect_timeout)
        except ConnectFailed as exc:
            now = time.time()
            self._unconnected = True
            proc.recorder.conn((now, self.sub, self.user, self.conn_no + 1, "connect_fail", "", exc.code,
                                exc.reason[:200]))
            self._fire(request_type="WS", name=CONNECT, response_time=(now - t0) * 1000, response_length=0,
                       exception=exc, context=_NO_CONTEXT)
            return None
        now = time.time()
        self._unconnected = False
        self.conn_no += 1
        self.connection = conn
        self.instance = conn.welcome.instance
        proc.sockets += 1
        self.resume_point.baseline(now, conn.welcome.last_id)
        proc.recorder.conn((now, self.sub, self.user, self.conn_no, "connect", self.instance, None,
                            describe(self.shape) if self.shape is not None else ""))
        self._fire(request_type="WS", name=CONNECT, response_time=(now - t0) * 1000, response_length=0,
                   exception=None, context=_NO_CONTEXT)
        return conn

    def _catch_up(self, conn: Connection) -> None:
        """After a reconnect: what the welcome carried, then ask for the rest.

        Welcome backlog messages newer than the resume point are part of what was
        missed (the server will not replay them to this socket again), so they are
        recorded as replayed deliveries. On the first connect the backlog predates the
        subscriber and is not recorded.
        """
        after = self.resume_point.after(self._disconnected_at)
        now = time.time()
        for d in conn.welcome.backlog:
            if after is not None and d.id is not None and d.id <= after:
                continue
            self._deliver(now, d)
        if after is None:
            return
        try:
            sent = conn.resume(after)
        except Disconnected:
            return  # the receive loop sees the closed socket and records it
        if sent:
            self.proc.recorder.conn((time.time(), self.sub, self.user, self.conn_no, "resume", self.instance,
                                     None, f"after={after}"))

    def _deliver(self, now: float, d: Delivery) -> None:
        """Record one delivery outside the hot loop (welcome backlog)."""
        if d.id is not None:
            self.resume_point.seen(now, d.id)
        self.proc.recorder.recv((now, self.sub, self.user, self.conn_no, self.instance, d.key, d.id, d.origin,
                                 d.sent_ts, 1 if d.replay else 0, self._intact(d)))
        if self._stats and d.sent_ts is not None:
            self._fire(request_type="WS", name=DELIVER_REPLAY, response_time=max(0.0, (now - d.sent_ts) * 1000),
                       response_length=0, exception=None, context=_NO_CONTEXT)

    def _intact(self, d: Delivery) -> int | None:
        """recv.csv's intact column: 1/0 for a padded payload, empty when not padded.
        With --payload-size every message of ours is padded, so a frame with our key
        but without its digest lost the pad on the way."""
        whole = d.intact
        if whole is None and self._padded and d.key is not None:
            whole = False
        return None if whole is None else int(whole)

    def _receive(self, conn: Connection) -> None:
        """Take frames until the connection ends; record the disconnect."""
        # Locals for the hot path: this loop runs for every message the process receives.
        receive = conn.receive if self.shape is None else self.shape.wrap(conn.receive)
        record = self.proc.recorder.recv
        seen = self.resume_point.seen
        fire = self._fire
        stats = self._stats
        now_f = time.time
        padded = self._padded
        sub, user, conn_no, instance = self.sub, self.user, self.conn_no, self.instance
        code: int | None = None
        detail = "stopped by load generator"  # unless the connection ends on its own
        ended = False
        try:
            while True:
                d = receive()
                if d is None:
                    continue
                now = now_f()
                msg_id = d.id
                if msg_id is not None:
                    seen(now, msg_id)
                whole = d.intact
                if whole is None and padded:
                    whole = False if d.key is not None else None
                record((now, sub, user, conn_no, instance, d.key, msg_id, d.origin, d.sent_ts,
                        1 if d.replay else 0, None if whole is None else int(whole)))
                if stats and d.sent_ts is not None:
                    if d.replay:
                        name = DELIVER_REPLAY
                    elif not instance or d.origin is None:
                        name = DELIVER_UNKNOWN
                    elif d.origin == instance:
                        name = DELIVER_SAME
                    else:
                        name = DELIVER_CROSS
                    latency = (now - d.sent_ts) * 1000
                    fire(request_type="WS", name=name, response_time=latency if latency > 0 else 0.0,
                         response_length=0, exception=None, context=_NO_CONTEXT)
        except Disconnected as exc:
            ended = True
            self._unconnected = True
            code = exc.code
            detail = self._storm_detail if self._storm else (exc.reason or "closed")
        finally:
            # Also on GreenletExit (the user is stopping): close, record, re-raise.
            self._disconnected_at = time.time()
            if ended:
                conn.close()
            else:
                # Closing a busy socket from inside the greenlet being killed can leave
                # libev watching a closed fd (a hard abort); a fresh greenlet closes it.
                gevent.spawn(conn.close)
            self.connection = None
            self.proc.sockets -= 1
            self.proc.recorder.conn((self._disconnected_at, sub, user, conn_no, "disconnect", instance, code,
                                     detail[:200]))

    _disconnected_at: float = 0.0

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.proc.subscriptions.discard(self)
        self.proc.slots.give(self.slot)
