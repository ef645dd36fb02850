"""Target words as users write them: `r2`, `redis`, `postgres`, `broker`, `redis@r2`;
and the bases of the faults that take them: one replica, or a dependency's proxies."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.base import Fault, FaultError
from chaos.target import DEPENDENCIES, StackHandle, Topology

REPLICA_HELP = "a replica: r1, r2, ..."
DEPENDENCY_HELP = "postgres, redis or broker (all replicas), or e.g. redis@r2 (one replica's connection)"


def replica_target(target: str, topology: Topology) -> str:
    name = target.strip()
    if not name:
        raise ValueError(f"needs a target replica (replicas: {', '.join(topology.replicas) or 'none'})")
    if name not in topology.replicas:
        raise ValueError(f"no replica named {target!r} (replicas: {', '.join(topology.replicas) or 'none'})")
    return name


def dependency_name(word: str, topology: Topology) -> str:
    dep = word.strip().lower()
    if not dep:
        raise ValueError(f"needs a target dependency ({', '.join(DEPENDENCIES)}, broker)")
    if dep == "broker":
        return topology.broker_dependency()
    if dep not in DEPENDENCIES:
        raise ValueError(f"no dependency named {word!r} (dependencies: {', '.join(DEPENDENCIES)}, broker)")
    return dep


def split_dependency(target: str) -> tuple[str, str | None]:
    """`redis@r2` -> ("redis", "r2"); `redis` -> ("redis", None)."""
    dep, _, replica = target.partition("@")
    return dep, (replica or None)


def dependency_target(target: str, topology: Topology, *, per_replica: bool = True) -> str:
    dep, replica = split_dependency(target.strip())
    dep = dependency_name(dep, topology)
    if replica is None:
        return dep
    if not per_replica:
        raise ValueError(f"target {target!r}: this fault acts on the {dep} server itself; write just {dep!r}")
    return f"{dep}@{replica_target(replica, topology)}"


def need_proxies(topology: Topology, kind: str) -> None:
    if not topology.fault_proxies:
        raise ValueError(f"{kind} needs the fault proxies, but this stack runs without them (--no-fault-proxies)")


def proxy_name(dependency: str, replica: str) -> str:
    """The per-replica proxy the harness creates (harness/servers/faultproxy.py)."""
    return f"{dependency}-{replica}"


def proxies_for(target: str, replicas: list[str] | tuple[str, ...]) -> list[str]:
    dep, replica = split_dependency(target)
    return [proxy_name(dep, r) for r in ([replica] if replica else replicas)]


def listeners(proxies: list[str]) -> set[str]:
    """Footprint of faults that switch proxies off and on (down, partition, crash): two of
    them at once would enable a proxy the other still needs off. Toxics do not take it."""
    return {f"listener:{p}" for p in proxies}


@dataclass
class ReplicaFault(Fault):
    """A fault on one replica (`r2`), which it holds while active."""

    target_help = REPLICA_HELP

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        return replica_target(target, topology)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset({f"replica:{self.target}"})

    def running_pid(self, stack: StackHandle) -> int:
        """The replica's pid, looked up before signalling it: a dead one cannot be faulted."""
        pid = stack.replica_pid(self.target)
        if pid is None:
            raise FaultError(f"{self.kind} {self.target}: the replica is not running")
        return pid


@dataclass
class ProxyFault(Fault):
    """A fault on a dependency's fault proxies: every replica's (`redis`) or one's (`redis@r2`)."""

    target_help = DEPENDENCY_HELP

    @classmethod
    def resolve_target(cls, target: str, topology: Topology) -> str:
        need_proxies(topology, cls.kind)
        return dependency_target(target, topology)

    def footprint(self, topology: Topology) -> frozenset[str]:
        return frozenset(f"proxy:{p}" for p in proxies_for(self.target, topology.replicas))


@dataclass
class ListenerFault(ProxyFault):
    """A proxy fault that also switches its proxies off (holds their listeners)."""

    def footprint(self, topology: Topology) -> frozenset[str]:
        return super().footprint(topology) | listeners(proxies_for(self.target, topology.replicas))
