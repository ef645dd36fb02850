"""crash: SIGKILL a dependency's real server process (Postgres or Redis).

Unlike `down` (only the proxies go), the server itself dies: every connection breaks
at once and in-flight transactions are lost. What the app sees is the contract in
chaos/faults/contract.py: new connections refused, open ones closed, data kept or lost.

Refused, not accepted-then-closed: with a proxy in the path, a dead upstream would
leave the proxy listening, so a reconnecting client gets a connection, then EOF, which
no real crash produces (and which sends some clients' offline queues into a dead
socket). So while the server is dead its proxies are disabled, which closes their
listeners: exactly what a real Toxiproxy does for a disabled proxy, so a Docker
backend with real Toxiproxy containers gets the same view. They are disabled before
the kill (a reconnect between the kill and the disable would be accepted and closed)
and enabled again only once the server answers again.

Data: Postgres keeps every acknowledged commit (synchronous commit; the WAL is in the
kernel's page cache, which a process kill leaves intact), so `data=lost` is refused
for it. Redis keeps what its persistence gives: the stack's Redis writes an
append-only file, so it comes back with its data unless the stack runs it without
persistence; `data=lost` removes its data files after the kill, so it restarts empty,
as a Redis without persistence (or one whose volume is gone) does.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault, FaultError, choice_param, state
from chaos.faults.contract import CRASH_KEPT, CRASH_LOST, AppView
from chaos.faults.proxyops import disable_enabled, enable_again, proxy_client
from chaos.faults.targets import dependency_target, listeners, proxies_for
from chaos.target import StackHandle, Topology

DATA_CHOICES = ("default", "kept", "lost")


@dataclass
class Crash(Fault):
    kind = "crash"
    summary = "SIGKILL the Postgres or Redis server (all replicas lose it at once; connects refused while dead)"
    heals = "starts the server again on the same port (with its data or empty, per `data`), then opens its proxies"
    target_help = "postgres, redis or broker"
    app_sees = "new connections refused, open connections closed, data kept or lost (`data`)"

    data: str = choice_param("default", "what survives the restart: kept, lost (Redis only: restarts empty), or "
                                        "default (the stack's persistence: Postgres kept; Redis kept with its "
                                        "append-only file, lost without persistence)", DATA_CHOICES)
    disabled: list = state(factory=list)

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        return dependency_target(target, topology, per_replica=False)

    def check(self) -> None:
        if self.data == "lost" and self.target == "postgres":
            raise ValueError("crash: parameter data: Postgres keeps every acknowledged commit across a crash "
                             "(synchronous commit); data=lost is offered for Redis only")

    def settle(self, topology: Topology) -> None:
        self.check()  # the target may only now be known (`broker`)
        if self.data == "default":
            self.data = "kept" if self.target == "postgres" or topology.redis_persistent else "lost"
        elif self.data == "kept" and self.target == "redis" and not topology.redis_persistent:
            raise ValueError("crash: parameter data: this stack runs Redis without persistence "
                             "(--redis-persistence none), so a crash cannot keep its data")

    def view(self) -> AppView:
        return CRASH_LOST if self.data == "lost" else CRASH_KEPT

    def footprint(self, topology: Topology) -> frozenset[str]:
        # The server and, while it is dead, every replica's proxy listener to it (toxics
        # on those proxies may come and go meanwhile).
        proxies = proxies_for(self.target, topology.replicas) if topology.fault_proxies else []
        return frozenset({f"server:{self.target}", *listeners(proxies)})

    def inject(self, stack: StackHandle) -> None:
        if self.data == "default":
            self.settle(stack.topology())
        if stack.proxy_api_url():
            disable_enabled(proxy_client(stack), proxies_for(self.target, stack.replica_names()), self.disabled)
        try:
            stack.crash_dependency(self.target, keep_data=self.data != "lost")
        except ValueError as exc:
            raise FaultError(f"crash {self.target}: {exc}") from None

    def heal(self, stack: StackHandle) -> None:
        stack.restart_dependency(self.target)  # does nothing to a server that is running
        if self.disabled:
            # Only once it answers: a proxy open to a dead server accepts and closes.
            enable_again(proxy_client(stack), self.disabled)
