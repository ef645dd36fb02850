"""One replica's components, wired together, with their start and stop order."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from sut.brokers import Broker, make_broker
from sut.cache import ItemCache
from sut.config import Config
from sut.db import Database
from sut.fanout import Fanout
from sut.hub import CLOSE_GOING_AWAY, Hub
from sut.publisher import Publisher

log = logging.getLogger("sut.replica")

READY_TIMEOUT = 1.0


@dataclass
class Replica:
    config: Config
    db: Database
    broker: Broker
    hub: Hub
    fanout: Fanout
    cache: ItemCache
    publisher: Publisher
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def build(cls, config: Config) -> Replica:
        db = Database(config.database_url, pool_size=config.db_pool_size, timeout=config.db_timeout,
                      items=config.items)
        broker = make_broker(config)
        hub = Hub(config.instance)
        # Seeded from the instance name: a defect run drops the same messages each time.
        seed = zlib.crc32(config.instance.encode())
        fanout = Fanout(hub, db, broker, config.defects, seed=seed)
        publisher = Publisher(db, broker, hub, config.instance)
        return cls(config, db, broker, hub, fanout, ItemCache(config.redis_url), publisher)

    async def start(self) -> None:
        """Never waits for Postgres or Redis: they are reached in the background."""
        if self.config.defects.names:
            log.warning("DEFECTS ENABLED: %s", ", ".join(self.config.defects.names))
        await self.db.start()
        await self.fanout.start()  # subscribes to broker events before the broker starts
        await self.broker.start()
        log.info("replica %s (pid %d) serving http://%s:%d, broker %s", self.config.instance, os.getpid(),
                 self.config.host, self.config.port, self.broker.kind)

    async def drain(self) -> None:
        """First step of a graceful shutdown: refuse new sockets, close ours with 1001."""
        self.hub.draining = True
        await self.hub.close_all(CLOSE_GOING_AWAY, "server shutting down", timeout=3.0)

    async def stop(self) -> None:
        await self.fanout.stop()
        await self.broker.stop()
        await self.cache.close()
        await self.db.stop()
        log.info("replica %s stopped", self.config.instance)

    async def readiness(self) -> list[str]:
        """Names of the failed checks; empty when ready."""

        async def database() -> bool:
            return self.db.schema_ready.is_set() and await self.db.ping(READY_TIMEOUT)

        db_ok, broker_ok = await asyncio.gather(database(), self.broker.ping(READY_TIMEOUT))
        failed = [name for name, ok in (("database", db_ok), ("broker", broker_ok)) if not ok]
        if self.hub.draining:
            failed.append("shutting-down")
        return failed

    def metrics(self) -> dict[str, Any]:
        """Counters since start. `delivered`: live frames sent (catch-up included);
        `replayed`: frames sent for a resume; `broker.catchup_messages`: notifications
        delivered by catch-up after a broker (re)connect; `broker.dropped_by_defect`:
        messages lost on purpose by `drop-fanout-1pct`; `broker.held_by_defect`: messages
        held back on purpose by `reorder-fanout`."""
        return {
            "instance": self.config.instance,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "sockets": self.hub.sockets,
            "users": self.hub.users,
            "published": self.publisher.published,
            "delivered": self.hub.delivered,
            "replayed": self.hub.replayed,
            "slow_closed": self.hub.slow_closed,
            "broker": {
                "kind": self.broker.kind,
                "connected": self.broker.is_connected(),
                **self.broker.metrics(),
                "catchups": self.fanout.catchups,
                "catchup_messages": self.fanout.catchup_messages,
                "dropped_by_defect": self.fanout.dropped_by_defect,
                "held_by_defect": self.fanout.held_by_defect,
            },
            "db": {
                "connected": self.db.connected,
                "reconnects": self.db.reconnects,
                "pool_size": self.config.db_pool_size,
            },
            "cache": self.cache.metrics(),
            "defects": self.config.defects.names,
        }
