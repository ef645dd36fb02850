"""The user classes every gauntlet scenario shares.

- SubscriberUser: one WebSocket subscriber through the load balancer (subscription.py)
- PublisherUser: open-model publishes over HTTP (publishing.py)
- ReaderUser: item and history reads over HTTP
- HostileUser: forged, truncated, extended, non-ASCII and foreign credentials over HTTP
  and WebSocket (hostile.py), a fixed count beside the others (--hostile, default 1)

Weights, the fixed publisher count, rates and timeouts come from the custom arguments
(settings.py), applied by the plugin before users spawn.
"""

from __future__ import annotations

import time

import gevent
from locust import User, constant, task
from locust.contrib.fasthttp import FastHttpUser

from scenarios.hostile import HostileClient
from scenarios.process import current
from scenarios.publishing import OpenModelPublisher
from scenarios.shapes import Shape, SlowReader, StalledReader, VanishingClient
from scenarios.subscription import Subscription


class SubscriberUser(User):
    weight = 8
    wait_time = constant(0)

    subscription: Subscription | None = None

    def make_shape(self, proc) -> Shape | None:
        return None

    @task
    def subscribe(self) -> None:
        # A fresh identity if a previous run() ended (only a bug ends it without a kill).
        if self.subscription is None or self.subscription.released:
            proc = current()
            self.subscription = Subscription(proc, self.environment.events.request.fire, self.make_shape(proc))
        self.subscription.run()

    def on_stop(self) -> None:
        if self.subscription is not None:
            self.subscription.release()


class SlowReaderUser(SubscriberUser):
    """A subscriber that pauses --slow-read-delay before each frame (shapes.py)."""

    weight = 0
    # Non-zero so that Locust keeps the class when it builds its environment (it drops
    # classes with no weight and no count); the plugin sets the real count (default 0).
    fixed_count = 1

    def make_shape(self, proc) -> Shape | None:
        return SlowReader(proc.settings.slow_read_delay)


class StalledReaderUser(SubscriberUser):
    """A subscriber that stops reading for --stall-for every --stall-every."""

    weight = 0
    fixed_count = 1  # see SlowReaderUser

    def make_shape(self, proc) -> Shape | None:
        return StalledReader(proc.settings.stall_every, proc.settings.stall_for, proc.rng())


class VanishingUser(SubscriberUser):
    """A subscriber that drops its socket without a close frame, then reconnects."""

    weight = 0
    fixed_count = 1  # see SlowReaderUser

    def make_shape(self, proc) -> Shape | None:
        return VanishingClient(proc.settings.vanish_every, proc.rng())


SHAPED_USERS = {SlowReaderUser: "slow_readers", StalledReaderUser: "stalled_readers", VanishingUser: "vanishing"}


class PublisherUser(FastHttpUser):
    weight = 1
    wait_time = constant(0)
    # Connections per publisher = the in-flight bound, so a send never queues for a
    # connection (that wait would hide in ts_sent). Set from --max-inflight.
    concurrency = 100
    network_timeout = 10.0
    connection_timeout = 10.0
    max_retries = 0  # a retried publish would be a second attempt with the same key

    def on_start(self) -> None:
        self.publisher = OpenModelPublisher(current(), self.client, self.environment.events.request.fire)

    @task
    def publish(self) -> None:
        self.publisher.run()

    def on_stop(self) -> None:
        publisher = getattr(self, "publisher", None)
        if publisher is not None:
            publisher.drain(grace=min(publisher.timeout, 5.0))


class ReaderUser(FastHttpUser):
    weight = 1
    wait_time = constant(1)  # replaced by constant_throughput(--read-rate)
    network_timeout = 10.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.proc = current()
        self.rng = self.proc.rng()

    @task
    def read(self) -> None:
        proc = self.proc
        user = f"u{self.rng.randrange(proc.addressable_users())}"
        item = self.rng.randint(1, proc.settings.item_count)
        after = max(0, proc.last_id - 100)
        for req in proc.adapter.read_requests(user, item, after):
            self.client.request(req.method, req.path, headers=dict(req.headers), name=req.name or req.path)


SLOW_REQUEST = "POST {path} (slow)"


class SlowRequestUser(FastHttpUser):
    """Keeps one request in flight that works --slow-request-time on the server, so a
    graceful stop (SIGTERM) always finds some: each must still complete (the shutdown
    check, reports/shutdown.py). POST, so the load balancer never retries it elsewhere."""

    weight = 0
    fixed_count = 1  # see SlowReaderUser; the plugin sets the real count (default 0)
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 10.0
    max_retries = 0

    def on_start(self) -> None:
        self.settings = current().settings
        self.rng = current().rng()
        # A random phase, so that slow requests are spread over time, not in step.
        gevent.sleep(self.rng.uniform(0, self.settings.slow_request_time))

    @task
    def slow(self) -> None:
        s = self.settings
        self.client.request("POST", s.slow_request_path, json={"delay": s.slow_request_time},
                            name=SLOW_REQUEST.format(path=s.slow_request_path))


class HostileUser(User):
    """Tries a broken credential about once per 1/--hostile-rate seconds; every try is a
    hostile.csv row. Its requests stay out of http.csv (they are meant to fail)."""

    weight = 0
    fixed_count = 1
    wait_time = constant(1)  # replaced by constant_throughput(--hostile-rate)

    def on_start(self) -> None:
        proc = current()
        self.proc = proc
        endpoint = getattr(proc.adapter, "endpoint", None)
        self.client = HostileClient(proc.adapter, proc.target.http_url,
                                    getattr(endpoint, "publisher_key", "") or "", proc.recorder.hostile,
                                    proc.rng(), proc.addressable_users,
                                    timeout=min(5.0, proc.settings.publish_timeout))

    @task
    def attack(self) -> None:
        if not self.client.kinds:
            self.wait_time = constant(3600)  # nothing this adapter presents can be broken
            return
        started = time.time()
        row = self.client.attempt()
        if row is None:
            return
        # Shown in Locust's statistics by kind and outcome, never as a Locust failure:
        # refusals are the point, and the security check judges acceptances.
        self.environment.events.request.fire(
            request_type="HOSTILE", name=f"{row[1]} {row[6]}", response_time=(time.time() - started) * 1000,
            response_length=0, exception=None, context={})


ALL_USERS = (SubscriberUser, SlowReaderUser, StalledReaderUser, VanishingUser, PublisherUser, ReaderUser,
             HostileUser, SlowRequestUser)
