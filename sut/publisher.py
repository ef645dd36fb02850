"""Accepting a notification: store it, fan it out, deliver to local sockets."""

from __future__ import annotations

from typing import Any

from sut.brokers import Broker
from sut.db import Database
from sut.hub import Hub
from sut.models import Notification


class Publisher:
    def __init__(self, db: Database, broker: Broker, hub: Hub, instance: str) -> None:
        self.db = db
        self.broker = broker
        self.hub = hub
        self.instance = instance
        self.published = 0

    async def publish(self, user: str | None, data: dict[str, Any]) -> Notification:
        """Raises DatabaseUnavailable; once this returns the notification is durable."""
        in_tx = self.broker.publish if self.broker.transactional else None
        notification = await self.db.insert_notification(user, data, self.instance, in_tx)
        if not self.broker.transactional:
            await self.broker.publish(notification, None)
        # This replica's own sockets need no broker round trip; the echo that comes
        # back through the broker is dropped by the hub as a duplicate.
        self.hub.deliver(notification)
        self.published += 1
        return notification
