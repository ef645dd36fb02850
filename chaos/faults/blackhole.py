"""blackhole: packets vanish; open connections and new connects hang.

Toxiproxy's `timeout` toxic with timeout 0 on open connections: nothing passes and
nothing is closed, the network failure that only client-side timeouts detect. New
connects hang too, as a dropped SYN makes them (the embedded proxy's `syn_drop`); behind
a real Toxiproxy, which cannot do that, they are accepted and then hang, and the
journal says so (`connects`).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import choice_param, state
from chaos.faults.contract import BLACKHOLE, AppView
from chaos.faults.proxyops import drop_connects, proxy_client
from chaos.faults.targets import proxies_for
from chaos.faults.toxic import STREAMS, ToxicFault
from chaos.target import StackHandle


@dataclass
class Blackhole(ToxicFault):
    kind = "blackhole"
    summary = "silently drop a dependency's traffic: open connections and new connects hang (only timeouts notice)"
    heals = "removes the toxics; traffic flows again on the same connections"
    toxic_type = "timeout"
    app_sees = BLACKHOLE.describe()

    stream: str = choice_param("both", "direction: downstream, upstream, or both", STREAMS)
    connects: str | None = state()  # "hang", or "accepted" behind a real Toxiproxy

    def view(self) -> AppView:
        return BLACKHOLE

    def inject(self, stack: StackHandle) -> None:
        # Connects first: a client reconnecting meanwhile must not get a connection that works.
        hang = drop_connects(proxy_client(stack), self.toxics, proxies_for(self.target, stack.replica_names()),
                             fault_id=self.fault_id, kind=self.kind)
        self.connects = "hang" if hang else "accepted"
        super().inject(stack)

    def attributes(self) -> dict[str, int]:
        return {"timeout": 0}
