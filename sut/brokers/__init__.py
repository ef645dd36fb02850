"""Brokers fan notifications out between replicas; Postgres stays the system of record.

Pick one with `make_broker(config)`. Every broker satisfies `sut.brokers.base.Broker`.
"""

from __future__ import annotations

from sut.brokers.base import Broker, MessageHandler, StateHandler
from sut.config import Config


def make_broker(config: Config) -> Broker:
    if config.broker == "postgres":
        from sut.brokers.postgres import PostgresBroker

        return PostgresBroker(config.database_url, defects=config.defects)
    if config.broker == "redis":
        from sut.brokers.redis import RedisBroker

        assert config.redis_url is not None  # config guarantees it for this broker
        return RedisBroker(config.redis_url, defects=config.defects)
    from sut.brokers.memory import MemoryBroker

    return MemoryBroker()


__all__ = ["Broker", "MessageHandler", "StateHandler", "make_broker"]
