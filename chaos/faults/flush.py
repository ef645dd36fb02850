"""flush: empty Redis (FLUSHALL) under the running app.

What an operator's `FLUSHALL`, an eviction storm or a failover to an empty replica does:
the server stays up, every connection stays open, and every key is gone at once:
channel-layer group memberships, presence sets, caches, stream entries not yet read.
Pub/sub has nothing stored, so its subscriptions survive. An action: instant, nothing
to heal (heal does nothing), journalled like every fault with the number of keys it
removed.

It talks to the server itself with the stack's own URL (credentials included), not
through a fault proxy, so it works on a stack without proxies too.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from chaos.faults.base import Fault, FaultError, state
from chaos.faults.contract import FLUSH, AppView
from chaos.faults.targets import dependency_name
from chaos.target import StackHandle, Topology

TIMEOUT = 5.0


@dataclass
class Flush(Fault):
    kind = "flush"
    summary = "empty Redis (FLUSHALL) under the running app: connections stay, every key is gone"
    heals = "nothing to undo (the data is gone, as in the real thing)"
    target_help = "redis, or broker when the broker is Redis"
    sustained = False
    app_sees = FLUSH.describe()

    keys: int | None = state()  # how many keys the flush removed, for the journal

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        dep = dependency_name(target, topology)
        if dep != "redis":
            raise ValueError(f"flush empties Redis; {dep!r} is not Redis (for Postgres use crash or down)")
        return dep

    def view(self) -> AppView:
        return FLUSH

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({f"server:{self.target}"})

    def inject(self, stack: StackHandle) -> None:
        client = redis.Redis.from_url(stack.dependency_url(self.target), socket_timeout=TIMEOUT,
                                      socket_connect_timeout=TIMEOUT)
        try:
            # Counted in the same transaction as the flush: nothing written in between is missed.
            with client.pipeline(transaction=True) as pipe:
                pipe.info("keyspace")
                pipe.flushall()
                info, _ = pipe.execute()
        except redis.RedisError as exc:
            raise FaultError(f"flush {self.target}: {exc}") from None
        finally:
            client.close()
        self.keys = sum(db.get("keys", 0) for db in info.values() if isinstance(db, dict))

    def heal(self, stack: StackHandle) -> None:
        """Nothing: flushed data does not come back."""
