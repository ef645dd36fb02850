"""Brokers fan notifications out between replicas; Postgres stays the system of record.

Pick one with `make_broker(config)`. Every broker satisfies `sut.brokers.base.Broker`.
"""

from __future__ import annotations

from sut.brokers.base import Broker, GapHandler, MessageHandler, Resumable, StateHandler
from sut.config import Config


def make_broker(config: Config) -> Broker:
    if config.broker == "postgres":
        from sut.brokers.postgres import PostgresBroker

        return PostgresBroker(config.database_url, defects=config.defects)
    if config.broker == "redis":
        from sut.brokers.redis import RedisBroker

        assert config.redis_url is not None  # config guarantees it for this broker
        return RedisBroker(config.redis_url, defects=config.defects)
    if config.broker == "redis-streams":
        from sut.brokers.redis_streams import RedisStreamsBroker

        assert config.redis_url is not None  # config guarantees it for this broker
        return RedisStreamsBroker(config.redis_url, maxlen=config.stream_maxlen, defects=config.defects)
    from sut.brokers.memory import MemoryBroker

    return MemoryBroker()


__all__ = ["Broker", "GapHandler", "MessageHandler", "Resumable", "StateHandler", "make_broker"]
