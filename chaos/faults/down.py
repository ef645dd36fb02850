"""down: the dependency is unreachable: its proxies are disabled.

A disabled proxy closes its listener and every open connection, so connects are
refused at once: the quickly detected outage (a dead host with its port closed), as
opposed to `blackhole`, which only timeouts detect, and `crash`, which kills the real
server for every replica.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import state
from chaos.faults.contract import DOWN, AppView
from chaos.faults.proxyops import disable, enable_again, proxy_client
from chaos.faults.targets import ListenerFault, proxies_for
from chaos.target import StackHandle


@dataclass
class Down(ListenerFault):
    kind = "down"
    summary = "make a dependency unreachable: proxies disabled, connections closed, connects refused"
    heals = "enables the proxies again"
    app_sees = DOWN.describe()

    disabled: list = state(factory=list)

    def view(self) -> AppView:
        return DOWN

    def inject(self, stack: StackHandle) -> None:
        disable(proxy_client(stack), proxies_for(self.target, stack.replica_names()), self.disabled)

    def heal(self, stack: StackHandle) -> None:
        if self.disabled:
            enable_again(proxy_client(stack), self.disabled)
