"""The user classes every gauntlet scenario shares.

- SubscriberUser: one WebSocket subscriber through the load balancer (subscription.py)
- PublisherUser: open-model publishes over HTTP (publishing.py)
- ReaderUser: item and history reads over HTTP

Weights, the fixed publisher count, rates and timeouts come from the custom arguments
(settings.py), applied by the plugin before users spawn.
"""

from __future__ import annotations

from locust import User, constant, task
from locust.contrib.fasthttp import FastHttpUser

from scenarios.process import current
from scenarios.publishing import OpenModelPublisher
from scenarios.subscription import Subscription


class SubscriberUser(User):
    weight = 8
    wait_time = constant(0)

    subscription: Subscription | None = None

    @task
    def subscribe(self) -> None:
        # A fresh identity if a previous run() ended (only a bug ends it without a kill).
        if self.subscription is None or self.subscription.released:
            self.subscription = Subscription(current(), self.environment.events.request.fire)
        self.subscription.run()

    def on_stop(self) -> None:
        if self.subscription is not None:
            self.subscription.release()


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


ALL_USERS = (SubscriberUser, PublisherUser, ReaderUser)
