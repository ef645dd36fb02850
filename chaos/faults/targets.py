"""Target words as users write them: `r2`, `redis`, `postgres`, `broker`, `redis@r2`."""

from __future__ import annotations

from chaos.target import DEPENDENCIES, Topology

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
